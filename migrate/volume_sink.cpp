// The receiving end of a remote volume migration: see volume_sink.h.
#include "migrate/volume_sink.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/text.h"

namespace dlc::migrate {

namespace fs = std::filesystem;

namespace {

std::string resolved(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return {};
  return buf;
}

// openat2 beneath dirfd, never through a symlink or magic link.
int open_beneath(int dirfd, const std::string& rel, std::uint64_t flags, std::uint64_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  return static_cast<int>(fd);
}

// openat2 refuses a symlink (ELOOP) or a way out of the root (EXDEV): a refusal.
[[noreturn]] void beneath_error(const std::string& what, const std::string& path) {
  const int err = errno;
  if (err == ELOOP || err == EXDEV)
    throw Error(Errc::refused, "refusing an image path through a symbolic link or out of the receiver's root", path,
                std::strerror(err), "name a plain path below --root");
  throw_errno(what, path, err);
}

struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct VolumeSink::Lane {
  io::File file;                   // O_DIRECT where the filesystem allows it
  int plain = -1;                  // buffered descriptor for unaligned tails
  std::unique_ptr<io::Engine> engine;
  io::AlignedBuffer tail;
  std::uint64_t lbs = 1;
  ~Lane() {
    if (plain >= 0) ::close(plain);
  }
};

VolumeSink::VolumeSink(const fs::path& root, const std::string& path, crypto::HashAlg alg,
                       const std::vector<std::string>& allowed_devices)
    : root_(root), alg_(alg) {
  if (!path.empty() && path[0] == '/') {
    // A device: only one the receiver's operator named with --allow-device.
    const std::string real = resolved(path);
    bool allowed = false;
    for (const auto& a : allowed_devices)
      if (!real.empty() && resolved(a) == real) allowed = true;
    if (!allowed)
      throw Error(Errc::refused, "the receiver does not allow writing this device", path, {},
                  "start the receiver with --allow-device " + path +
                      ", or send to an image path below its --root (dlc://HOST:PORT/dir/name.img)");
    struct stat st{};
    if (::stat(real.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
      throw Error(Errc::refused, "not a block device", path, {}, "name a whole device or partition");
    target_ = real;
    device_ = true;
    return;
  }
  if (!plain_relative_path(path, false))
    throw Error(Errc::refused, "refusing a volume destination outside the receiver's root", path, {},
                "name an image file below the root (dlc://HOST:PORT/dir/name.img) or an allowed device "
                "(dlc://HOST:PORT//dev/NAME)");
  rel_ = path;
  target_ = (fs::absolute(root_) / path).lexically_normal().string();
}

VolumeSink::~VolumeSink() { close(); }

nlohmann::json VolumeSink::info() const {
  nlohmann::json j = {{"target", target_}, {"device", device_}, {"exists", false}, {"size", 0}, {"free", 0}};
  if (device_) {
    io::OpenOptions ro;
    ro.mode = io::OpenMode::read;
    ro.direct = false;
    io::File f = io::File::open(target_, ro);
    j["exists"] = true;
    j["size"] = f.size();
    return j;
  }
  struct statvfs vs{};
  if (::statvfs(root_.c_str(), &vs) == 0) j["free"] = static_cast<std::uint64_t>(vs.f_bavail) * vs.f_frsize;
  FdGuard rootfd{::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (rootfd.fd < 0) throw_errno("cannot open the receiver's root", root_.string());
  struct stat st{};
  FdGuard f{open_beneath(rootfd.fd, rel_, O_PATH)};
  if (f.fd >= 0 && ::fstat(f.fd, &st) == 0) {
    if (!S_ISREG(st.st_mode))
      throw Error(Errc::refused, "the volume destination exists and is not a regular file", target_, {},
                  "choose another image path");
    j["exists"] = true;
    j["size"] = static_cast<std::uint64_t>(st.st_size);
  } else if (f.fd < 0 && errno != ENOENT) {
    beneath_error("cannot open", target_);
  }
  return j;
}

void VolumeSink::open(std::uint64_t size, std::uint64_t chunk_size) {
  if (opened_) throw Error(Errc::io, "protocol error: the volume is already open", target_);
  if (chunk_size == 0 || chunk_size % 4096 != 0 || chunk_size > (256ull << 20))
    throw Error(Errc::io, "protocol error: bad chunk size", target_, std::to_string(chunk_size));
  size_ = size;
  chunk_ = chunk_size;
  if (device_) {
    io::OpenOptions wo;
    wo.mode = io::OpenMode::read_write;
    wo.exclusive = true;  // refused while mounted or held; kept for the whole session
    holder_ = std::make_unique<io::File>(io::File::open(target_, wo));
    if (holder_->size() < size)
      throw Error(Errc::refused, "the destination device is smaller than the volume", target_,
                  std::to_string(holder_->size()) + " < " + std::to_string(size) + " bytes",
                  "choose a device at least as large as the source");
    io_path_ = target_;
    direct_ = holder_->direct();
  } else {
    FdGuard rootfd{::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (rootfd.fd < 0) throw_errno("cannot open the receiver's root", root_.string());
    // Parent directories, created one component at a time beneath the root.
    FdGuard dir{::dup(rootfd.fd)};
    const auto slash = rel_.rfind('/');
    const std::string parent = slash == std::string::npos ? std::string() : rel_.substr(0, slash);
    const std::string name = slash == std::string::npos ? rel_ : rel_.substr(slash + 1);
    std::size_t pos = 0;
    while (!parent.empty() && pos <= parent.size()) {
      const auto s = parent.find('/', pos);
      const std::string part = parent.substr(pos, s == std::string::npos ? std::string::npos : s - pos);
      int next = open_beneath(dir.fd, part, O_RDONLY | O_DIRECTORY);
      if (next < 0 && errno == ENOENT) {
        if (::mkdirat(dir.fd, part.c_str(), 0700) != 0 && errno != EEXIST)
          throw_errno("cannot create directory", (root_ / parent.substr(0, s)).string());
        ::fsync(dir.fd);
        next = open_beneath(dir.fd, part, O_RDONLY | O_DIRECTORY);
      }
      if (next < 0) beneath_error("cannot open directory", (root_ / parent.substr(0, s)).string());
      ::close(dir.fd);
      dir.fd = next;
      if (s == std::string::npos) break;
      pos = s + 1;
    }
    const int fd = open_beneath(dir.fd, name, O_RDWR | O_CREAT, 0600);
    if (fd < 0) beneath_error("cannot create the image", target_);
    image_fd_ = fd;
    struct stat st{};
    if (::fstat(fd, &st) != 0) throw_errno("cannot stat", target_);
    if (!S_ISREG(st.st_mode))
      throw Error(Errc::refused, "the volume destination is not a regular file", target_, {}, "choose another image path");
    if (static_cast<std::uint64_t>(st.st_size) != size && ::ftruncate(fd, static_cast<off_t>(size)) != 0)
      throw_errno("cannot size the image", target_);
    // The image's name and size are durable before any chunk is acknowledged.
    if (::fsync(fd) != 0) throw_errno("cannot sync", target_);
    if (::fsync(dir.fd) != 0) throw_errno("cannot sync the directory of", target_);
    io_path_ = "/proc/self/fd/" + std::to_string(fd);
    const int p = ::open(io_path_.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    direct_ = p >= 0;
    if (p >= 0) ::close(p);
    else if (errno != EINVAL) throw_errno("cannot open", target_);
    else
      notice_once("migrate-sink-o-direct", "the filesystem of " + target_ +
                                               " refuses O_DIRECT: chunks are written buffered, synced, and re-read "
                                               "after dropping them from the page cache");
  }
  opened_ = true;
}

VolumeSink::Lane& VolumeSink::lane(unsigned i) {
  std::lock_guard<std::mutex> lk(mu_);
  if (lanes_.size() <= i) lanes_.resize(i + 1);
  if (!lanes_[i]) {
    auto l = std::make_unique<Lane>();
    io::OpenOptions wo;
    wo.mode = io::OpenMode::read_write;
    wo.direct = direct_;
    l->file = io::File::open(io_path_, wo);
    l->lbs = l->file.direct() ? l->file.logical_block_size() : 1;
    l->plain = ::open(io_path_.c_str(), O_RDWR | O_CLOEXEC);
    if (l->plain < 0) throw_errno("cannot open", target_);
    io::EngineOptions eo;
    eo.queue_depth = 8;
    l->engine = std::make_unique<io::Engine>(eo);
    l->tail = io::AlignedBuffer(std::max<std::size_t>(4096, static_cast<std::size_t>(l->lbs)));
    lanes_[i] = std::move(l);
  }
  return *lanes_[i];
}

std::string VolumeSink::reread(Lane& l, std::uint64_t offset, std::uint64_t len) {
  crypto::Hasher h(alg_);
  const int fd = l.file.fd();
  if (!l.file.direct()) {
    // The filesystem refuses O_DIRECT: drop the (clean, synced) pages so the
    // buffered read goes to storage, and drop them again afterwards.
    ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
  }
  const std::uint64_t aligned = len / l.lbs * l.lbs;
  if (aligned) {
    io::Extent ext{offset, aligned};
    l.engine->read(l.file, std::span<const io::Extent>(&ext, 1),
                   [&](std::uint64_t, std::span<const std::uint8_t> b) { h.update(b); });
  }
  if (aligned < len) {
    // O_DIRECT needs whole blocks: ask for the rounded-up length (the image
    // ends there; a device is a whole number of blocks), hash what is ours.
    const std::uint64_t want = (len - aligned + l.lbs - 1) / l.lbs * l.lbs;
    if (l.tail.size() < want) l.tail = io::AlignedBuffer(static_cast<std::size_t>(want));
    ssize_t got;
    do {
      got = ::pread(fd, l.tail.data(), want, static_cast<off_t>(offset + aligned));
    } while (got < 0 && errno == EINTR);
    if (got < static_cast<ssize_t>(len - aligned)) throw_errno("cannot re-read", target_);
    h.update(crypto::ByteView(l.tail.data(), len - aligned));
  }
  if (!l.file.direct())
    ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
  return crypto::to_hex(h.final());
}

void VolumeSink::write_chunk(unsigned lane_index, std::uint64_t index, std::uint64_t offset, crypto::ByteView data,
                             const std::string& hash_hex) {
  if (!opened_) throw Error(Errc::io, "protocol error: volume data before vopen", target_);
  const std::uint64_t nchunks = (size_ + chunk_ - 1) / chunk_;
  if (index >= nchunks || offset != index * chunk_ || data.size() != std::min(chunk_, size_ - offset))
    throw Error(Errc::io, "protocol error: a chunk does not fit the volume", target_,
                "chunk " + std::to_string(index) + " at offset " + std::to_string(offset) + ", " +
                    std::to_string(data.size()) + " bytes");
  // Integrity in transit (9.2b): nothing damaged is written.
  Stopwatch sw;
  const bool intact = crypto::to_hex(crypto::hash(alg_, data)) == hash_hex;
  check_ns_.fetch_add(sw.lap(), std::memory_order_relaxed);
  if (!intact)
    throw Error(Errc::check_failed, "a chunk arrived damaged", target_,
                "chunk " + std::to_string(index) + " at offset " + std::to_string(offset) +
                    ": its hash does not match what the sender computed",
                "run the same command again: verified chunks are kept, this one is sent again");
  Lane& l = lane(lane_index);
  sw.lap();
  const std::uint64_t len = data.size();
  const std::uint64_t aligned = len / l.lbs * l.lbs;
  if (aligned) {
    io::Extent ext{offset, aligned};
    l.engine->write(l.file, std::span<const io::Extent>(&ext, 1), [&](std::uint64_t at, std::span<std::uint8_t> b) {
      std::memcpy(b.data(), data.data() + (at - offset), b.size());
    });
  }
  if (aligned < len) {  // an unaligned tail (image files): a buffered write, synced below
    std::uint64_t done = aligned;
    while (done < len) {
      const ssize_t w = ::pwrite(l.plain, data.data() + done, len - done, static_cast<off_t>(offset + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw_errno("cannot write", target_);
      done += static_cast<std::uint64_t>(w);
    }
  }
  write_ns_.fetch_add(sw.lap(), std::memory_order_relaxed);
  l.file.sync();  // fdatasync: the chunk (and the tail's pages: same inode) is on stable storage
  sync_ns_.fetch_add(sw.lap(), std::memory_order_relaxed);
  ChunkResult r;
  r.index = index;
  r.hash = reread(l, offset, len);
  reread_ns_.fetch_add(sw.lap(), std::memory_order_relaxed);
  std::lock_guard<std::mutex> lk(mu_);
  done_.push_back(std::move(r));
}

nlohmann::json VolumeSink::profile() const {
  auto ms = [](const std::atomic<std::uint64_t>& ns) { return ns.load() / 1000000; };
  return {{"check_hash_ms", ms(check_ns_)}, {"write_ms", ms(write_ns_)}, {"sync_ms", ms(sync_ns_)},
          {"reread_ms", ms(reread_ns_)}};
}

std::vector<ChunkResult> VolumeSink::take_results() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<ChunkResult> out;
  out.swap(done_);
  return out;
}

verify::Manifest VolumeSink::scan(unsigned threads) {
  if (!opened_) throw Error(Errc::io, "protocol error: scan before vopen", target_);
  const std::uint64_t nchunks = (size_ + chunk_ - 1) / chunk_;
  std::vector<std::string> hashes(nchunks);
  std::atomic<std::uint64_t> next{0};
  std::mutex err_mu;
  std::exception_ptr err;
  auto worker = [&](unsigned t) {
    try {
      Lane& l = lane(t);
      for (;;) {
        if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted");
        const std::uint64_t i = next.fetch_add(1);
        if (i >= nchunks) return;
        hashes[i] = reread(l, i * chunk_, std::min(chunk_, size_ - i * chunk_));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_mu);
      if (!err) err = std::current_exception();
    }
  };
  const unsigned n = static_cast<unsigned>(std::min<std::uint64_t>(
      threads ? threads : std::max(2u, std::thread::hardware_concurrency()), std::max<std::uint64_t>(1, nchunks)));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n; ++t) pool.emplace_back(worker, t);
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);

  verify::Manifest m;
  m.kind = "volume";
  m.alg = alg_;
  m.root = target_;
  m.created = dlc::now_rfc3339();
  m.host = host_name();
  m.tool = std::string("dlc ") + DLC_VERSION;
  m.read_method = direct_ ? "direct" : "fadvise-dontneed";
  m.xattrs = m.sparse = false;
  verify::Entry e;
  e.path = ".";
  e.type = verify::EntryType::volume;
  e.size = size_;
  e.chunk_size = chunk_;
  e.chunks = std::move(hashes);
  e.hash = verify::volume_hash(e.chunks, alg_);
  m.entries.push_back(std::move(e));
  verify::finalize(m);
  return m;
}

void VolumeSink::close() {
  std::lock_guard<std::mutex> lk(mu_);
  lanes_.clear();
  holder_.reset();
  if (image_fd_ >= 0) ::close(image_fd_);
  image_fd_ = -1;
  opened_ = false;
}

bool plain_relative_path(const std::string& p, bool dot_ok) {
  if (p == ".") return dot_ok;
  if (p.empty() || p[0] == '/') return false;
  std::size_t pos = 0;
  for (;;) {
    const auto slash = p.find('/', pos);
    const std::string part = p.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

}  // namespace dlc::migrate
