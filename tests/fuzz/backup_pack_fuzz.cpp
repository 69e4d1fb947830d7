// Backup pack files (docs/formats/backup-repository.md, "Blobs and packs"):
// prefix, footer and sealed table parsing (read_pack_table), then every blob
// opened and decompressed (open_blob) the way `check --read-data` does.
//
// Every input is used three ways, with the fixture repository's keys:
//  1. as a whole pack file (fuzzed ciphertext, prefix and footer);
//  2. as the plaintext of a pack table: sealed (the real AEAD, nonce 01||0^11,
//     aad = prefix) into the fixture's pack in place of its own table, so the
//     entry decoding and range checks see fuzzed entries and the fixture's
//     real blobs authenticate;
//  3. as a blob: type u8 | flags u8 | raw length u32 LE | stored plaintext,
//     sealed at offset 48 and opened (zstd frames included).
#include <fcntl.h>
#include <unistd.h>

#include "backup/pack.h"
#include "backup/repository.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;
using namespace dlc::backup;

namespace {

std::unique_ptr<Repository> g_repo;
Bytes g_pack;              // the fixture's pack file
std::size_t g_blobs_end;   // where its table starts
PackHeader g_header;
fs::path g_file;

crypto::Aead aead_for(std::uint32_t key_id, const BlobId& salt) { return g_repo->pack_aead(key_id, salt); }

// What verify_pack (backup/checker.cpp) does with a pack read whole.
void read_pack(std::string_view bytes) {
  fuzz::write_file(g_file, bytes);
  Fd fd(::open(g_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fuzz::fail("cannot open " + g_file.string());
  fuzz::accept_dlc_errors([&] {
    PackHeader h;
    const std::vector<BlobEntry> entries = read_pack_table(fd.get(), bytes.size(), g_file, aead_for, &h);
    crypto::Aead aead = aead_for(h.key_id, h.salt);
    Bytes buf(bytes.begin(), bytes.end());
    for (const auto& e : entries) {
      if (e.offset > buf.size() || e.length > buf.size() - e.offset)
        fuzz::fail("read_pack_table accepted an entry outside the pack");
      std::span<std::uint8_t> sealed(buf.data() + e.offset, e.length);
      fuzz::accept_dlc_errors([&] { (void)open_blob(aead, e, sealed); });
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const auto& fx = fuzz::backup_fixture();
  g_repo = Repository::open(fx.options(), LockMode::none);
  fs::path pack;
  for (const auto& e : fs::recursive_directory_iterator(fx.work / "data"))
    if (e.is_regular_file() && (pack.empty() || e.path() < pack)) pack = e.path();
  const std::string bytes = fuzz::read_file(pack);
  g_pack.assign(bytes.begin(), bytes.end());
  g_header = parse_pack_prefix({g_pack.data(), kPackPrefixSize}, pack);
  const std::uint32_t tlen = get_u32(g_pack.data() + g_pack.size() - kPackFooterSize);
  g_blobs_end = g_pack.size() - kPackFooterSize - tlen;
  g_file = fuzz::fresh_dir("pack") / "pack";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_view(data, size);

  // 1. A pack file.
  read_pack(input);

  // 2. A table plaintext inside the fixture's pack.
  {
    crypto::Aead aead = aead_for(g_header.key_id, g_header.salt);
    std::array<std::uint8_t, 12> table_nonce{};
    table_nonce[0] = 1;
    Bytes file(g_pack.begin(), g_pack.begin() + static_cast<std::ptrdiff_t>(g_blobs_end));
    const Bytes sealed = aead.seal(table_nonce, {g_pack.data(), kPackPrefixSize}, crypto::as_bytes(input));
    append(file, sealed);
    put_u32(file, static_cast<std::uint32_t>(sealed.size()));
    append(file, std::string_view("DLCPEND1"));
    read_pack({reinterpret_cast<const char*>(file.data()), file.size()});
  }

  // 3. One blob's stored plaintext.
  if (size >= 6) {
    crypto::Aead aead = aead_for(g_header.key_id, g_header.salt);
    BlobEntry e;
    e.type = static_cast<BlobType>(data[0]);
    e.flags = data[1];
    e.raw_length = get_u32(data + 2);
    e.offset = kPackPrefixSize;
    const crypto::ByteView plain(data + 6, size - 6);
    e.id = crypto::sha256(plain);
    e.length = static_cast<std::uint32_t>(plain.size() + crypto::kAeadTagSize);
    Bytes sealed = aead.seal(blob_nonce(e.offset), blob_aad(e.type, e.id), plain);
    fuzz::accept_dlc_errors([&] { (void)open_blob(aead, e, sealed); });
  }
  return 0;
}
