#include "backup/pack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>

#include "core/error.h"

namespace dlc::backup {

namespace {
constexpr char kPackMagic[] = "DLCPACK1";
constexpr char kPackEnd[] = "DLCPEND1";
constexpr std::string_view kPackKeyInfo = "dlc-backup/1 pack";
}  // namespace

std::string_view blob_type_name(BlobType t) { return t == BlobType::tree ? "tree" : "data"; }

SecureBuffer derive_pack_key(crypto::AeadAlg alg, crypto::ByteView data_key, crypto::ByteView salt) {
  return crypto::hkdf_sha256(data_key, salt, crypto::as_bytes(kPackKeyInfo), crypto::aead_key_size(alg));
}

std::array<std::uint8_t, 12> blob_nonce(std::uint64_t offset) {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(offset >> (8 * i));
  return n;
}

std::array<std::uint8_t, 33> blob_aad(BlobType type, const BlobId& id) {
  std::array<std::uint8_t, 33> a{};
  a[0] = static_cast<std::uint8_t>(type);
  std::copy(id.begin(), id.end(), a.begin() + 1);
  return a;
}

fs::path pack_path(const fs::path& repo, const BlobId& id) {
  const std::string h = hex(id);
  return repo / "data" / h.substr(0, 2) / h;
}

namespace {
std::array<std::uint8_t, 12> table_nonce() {
  std::array<std::uint8_t, 12> n{};
  n[0] = 1;
  return n;
}
// Draws the pack's salt (its id) and derives its key.
SecureBuffer new_pack_key(crypto::AeadAlg alg, crypto::ByteView data_key, BlobId& salt) {
  crypto::random_bytes(salt);
  return derive_pack_key(alg, data_key, salt);
}
}  // namespace

PackWriter::PackWriter(const fs::path& repo, crypto::AeadAlg alg, crypto::ByteView data_key,
                       std::uint32_t key_id)
    : repo_(repo), aead_(alg, new_pack_key(alg, data_key, info_.id)) {
  info_.key_id = key_id;
  final_ = pack_path(repo, info_.id);
  std::error_code ec;
  fs::create_directories(final_.parent_path(), ec);
  tmp_ = temp_path_for(final_);
  fd_.reset(::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd_) throw_errno("cannot create pack", tmp_.string(), errno, "check permissions and free space");
  append(prefix_, kPackMagic);
  prefix_.resize(8);
  put_u32(prefix_, key_id);
  put_u32(prefix_, 0);
  append(prefix_, info_.id);
  write_all(fd_.get(), prefix_, tmp_);
  offset_ = prefix_.size();
}

PackWriter::~PackWriter() {
  if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void PackWriter::add(BlobType type, const BlobId& id, std::uint8_t flags, std::uint32_t raw_length,
                     std::span<std::uint8_t> buf, std::size_t plain_len) {
  const std::size_t sealed = plain_len + crypto::kAeadTagSize;
  if (buf.size() < sealed) throw Error(Errc::usage, "pack buffer lacks room for the tag");
  const auto nonce = blob_nonce(offset_);
  const auto aad = blob_aad(type, id);
  aead_.seal(nonce, aad, {buf.data(), plain_len}, buf.subspan(0, sealed));
  write_all(fd_.get(), {buf.data(), sealed}, tmp_);
  info_.blobs.push_back({id, type, flags, offset_, static_cast<std::uint32_t>(sealed), raw_length});
  offset_ += sealed;
}

PackInfo PackWriter::finish(bool sync_dir) {
  Bytes table;
  table.reserve(4 + info_.blobs.size() * kTableEntrySize + crypto::kAeadTagSize);
  put_u32(table, static_cast<std::uint32_t>(info_.blobs.size()));
  for (const auto& b : info_.blobs) {
    table.push_back(static_cast<std::uint8_t>(b.type));
    table.push_back(b.flags);
    append(table, b.id);
    put_u64(table, b.offset);
    put_u32(table, b.length);
    put_u32(table, b.raw_length);
  }
  Bytes sealed = aead_.seal(table_nonce(), prefix_, table);
  put_u32(sealed, static_cast<std::uint32_t>(sealed.size()));
  append(sealed, std::string_view(kPackEnd, 8));
  write_all(fd_.get(), sealed, tmp_);
  offset_ += sealed.size();
  if (::fdatasync(fd_.get()) != 0) throw_errno("cannot fsync pack", tmp_.string());
  fd_.reset();
  if (::rename(tmp_.c_str(), final_.c_str()) != 0) throw_errno("cannot rename pack", tmp_.string());
  done_ = true;
  if (sync_dir) fsync_dir(final_.parent_path());
  info_.size = offset_;
  return info_;
}

PackHeader parse_pack_prefix(crypto::ByteView p, const fs::path& what) {
  if (p.size() < kPackPrefixSize || std::memcmp(p.data(), kPackMagic, 8) != 0)
    throw Error(Errc::io, "not a dlc pack file (bad magic)", what.string());
  PackHeader h;
  h.key_id = get_u32(p.data() + 8);
  std::copy(p.begin() + 16, p.begin() + 48, h.salt.begin());
  return h;
}

std::vector<BlobEntry> decode_table(crypto::Aead& aead, crypto::ByteView prefix48,
                                    crypto::ByteView sealed_table, const fs::path& what) {
  Bytes table = aead.open(table_nonce(), prefix48, sealed_table);
  if (table.size() < 4) throw Error(Errc::io, "pack table too short", what.string());
  const std::uint32_t n = get_u32(table.data());
  if (table.size() != 4 + std::size_t{n} * kTableEntrySize)
    throw Error(Errc::io, "pack table has a wrong length", what.string());
  std::vector<BlobEntry> out(n);
  const std::uint8_t* p = table.data() + 4;
  for (auto& e : out) {
    e.type = static_cast<BlobType>(p[0]);
    e.flags = p[1];
    std::memcpy(e.id.data(), p + 2, 32);
    e.offset = get_u64(p + 34);
    e.length = get_u32(p + 42);
    e.raw_length = get_u32(p + 46);
    p += kTableEntrySize;
  }
  return out;
}

std::vector<BlobEntry> read_pack_table(int fd, std::uint64_t size, const fs::path& what,
                                       const std::function<crypto::Aead(std::uint32_t, const BlobId&)>& aead_for,
                                       PackHeader* header_out) {
  if (size < kPackPrefixSize + kPackFooterSize)
    throw Error(Errc::io, "pack file too short", what.string(), std::to_string(size) + " bytes");
  std::uint8_t prefix[kPackPrefixSize], footer[kPackFooterSize];
  pread_all(fd, prefix, sizeof prefix, 0, what);
  pread_all(fd, footer, sizeof footer, size - kPackFooterSize, what);
  if (std::memcmp(footer + 4, kPackEnd, 8) != 0)
    throw Error(Errc::io, "pack file has no footer (truncated?)", what.string());
  const std::uint32_t tlen = get_u32(footer);
  if (tlen + kPackPrefixSize + kPackFooterSize > size)
    throw Error(Errc::io, "pack table length is out of range", what.string());
  PackHeader h = parse_pack_prefix({prefix, sizeof prefix}, what);
  Bytes sealed(tlen);
  pread_all(fd, sealed.data(), tlen, size - kPackFooterSize - tlen, what);
  if (header_out) *header_out = h;
  crypto::Aead aead = aead_for(h.key_id, h.salt);
  std::vector<BlobEntry> entries = decode_table(aead, {prefix, sizeof prefix}, sealed, what);
  const std::uint64_t end = size - kPackFooterSize - tlen;
  for (const auto& e : entries)  // offset + length could wrap: compare with what is left
    if (e.offset < kPackPrefixSize || e.length < crypto::kAeadTagSize || e.offset > end || e.length > end - e.offset)
      throw Error(Errc::io, "pack table points outside the pack", what.string());
  return entries;
}

namespace {
// Decrypts in place; returns the stored plaintext's length.
std::size_t open_sealed(crypto::Aead& aead, const BlobEntry& e, std::span<std::uint8_t> sealed) {
  if (sealed.size() < crypto::kAeadTagSize)
    throw Error(Errc::auth, "authentication failed", hex(e.id), "the sealed blob is shorter than its tag");
  const auto nonce = blob_nonce(e.offset);
  const auto aad = blob_aad(e.type, e.id);
  const std::size_t plain_len = sealed.size() - crypto::kAeadTagSize;
  aead.open(nonce, aad, sealed, sealed.subspan(0, plain_len));
  return plain_len;
}
// dlc writes one frame that declares its size: anything else, or a raw
// length that disagrees, is damage, found before allocating that length.
void check_frame(const BlobEntry& e, const std::uint8_t* frame, std::size_t len) {
  const unsigned long long declared = ZSTD_getFrameContentSize(frame, len);
  if (declared != e.raw_length)
    throw Error(Errc::io, "blob does not decompress", hex(e.id),
                declared == ZSTD_CONTENTSIZE_ERROR     ? "not a zstd frame"
                : declared == ZSTD_CONTENTSIZE_UNKNOWN ? "the zstd frame does not declare its size"
                                                       : "wrong length");
}
}  // namespace

Bytes open_blob(crypto::Aead& aead, const BlobEntry& e, std::span<std::uint8_t> sealed) {
  const std::size_t plain_len = open_sealed(aead, e, sealed);
  if (!(e.flags & kBlobZstd)) return Bytes(sealed.begin(), sealed.begin() + static_cast<std::ptrdiff_t>(plain_len));
  check_frame(e, sealed.data(), plain_len);
  Bytes out(e.raw_length);
  const std::size_t got = ZSTD_decompress(out.data(), out.size(), sealed.data(), plain_len);
  if (ZSTD_isError(got) || got != e.raw_length)
    throw Error(Errc::io, "blob does not decompress", hex(e.id),
                ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong length");
  return out;
}

void prefetch_range(int fd, std::uint64_t offset, std::uint64_t length) {
  constexpr std::uint64_t kStep = 128u << 10;
  // The range comes from the index, which may be damaged (a pack size of 2^60
  // made this loop for hours): never past the end of the file.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < 0 || offset >= static_cast<std::uint64_t>(st.st_size)) return;
  length = std::min(length, static_cast<std::uint64_t>(st.st_size) - offset);
  for (std::uint64_t o = offset; o < offset + length; o += kStep)
    if (::posix_fadvise(fd, static_cast<off_t>(o), static_cast<off_t>(std::min(kStep, offset + length - o)),
                        POSIX_FADV_WILLNEED) != 0)
      return;  // only a hint
}

PackPrefetcher::PackPrefetcher(std::vector<Item> items, std::size_t ahead)
    : items_(std::move(items)), fds_(items_.size()), state_(items_.size(), 0), ahead_(std::max<std::size_t>(ahead, 1)) {
  thread_ = std::thread([this] { loop(); });
}

PackPrefetcher::~PackPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PackPrefetcher::loop() {
  for (std::size_t i = 0; i < items_.size(); ++i) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || i < taken_ + ahead_; });
      if (stop_) return;
      if (state_[i] != 0) continue;  // a worker got there first
    }
    Fd fd(::open(items_[i].path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) prefetch_range(fd.get(), items_[i].offset, items_[i].length);
    std::lock_guard<std::mutex> lock(mu_);
    if (state_[i] == 0 && fd) {
      fds_[i] = std::move(fd);
      state_[i] = 1;
    }
  }
}

Fd PackPrefetcher::take(std::size_t i) {
  Fd fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_[i] == 1) fd = std::move(fds_[i]);
    state_[i] = 2;
    taken_ = std::max(taken_, i + 1);
  }
  cv_.notify_all();
  if (!fd) fd.reset(::open(items_[i].path.c_str(), O_RDONLY | O_CLOEXEC));
  return fd;
}

BlobScratch::BlobScratch() : dctx_(ZSTD_createDCtx()) {
  if (!dctx_) throw Error(Errc::io, "cannot create a zstd context", {}, "out of memory");
}
BlobScratch::~BlobScratch() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_)); }

crypto::ByteView open_blob_view(crypto::Aead& aead, const BlobEntry& e, std::span<std::uint8_t> sealed,
                                BlobScratch& s) {
  const std::size_t plain_len = open_sealed(aead, e, sealed);
  if (!(e.flags & kBlobZstd)) {
    if (plain_len != e.raw_length)
      throw Error(Errc::io, "blob has a wrong length", hex(e.id),
                  std::to_string(plain_len) + " bytes, the index says " + std::to_string(e.raw_length));
    return {sealed.data(), plain_len};
  }
  check_frame(e, sealed.data(), plain_len);
  if (s.cap_ < e.raw_length) {
    s.buf_.reset(new std::uint8_t[e.raw_length]);  // uninitialised: zstd writes every byte it returns
    s.cap_ = e.raw_length;
  }
  const std::size_t got =
      ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(s.dctx_), s.buf_.get(), e.raw_length, sealed.data(), plain_len);
  if (ZSTD_isError(got) || got != e.raw_length)
    throw Error(Errc::io, "blob does not decompress", hex(e.id),
                ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong length");
  return {s.buf_.get(), got};
}

}  // namespace dlc::backup
