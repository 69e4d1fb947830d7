// Packs and index files: round trips, and damage that must be detected.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/index.h"
#include "backup/pack.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

using crypto::Bytes;

using crypto::AeadAlg;

struct Written {
  PackInfo info;
  std::vector<Bytes> plains;
};

Written write_pack(const fs::path& repo, AeadAlg alg, const SecureBuffer& key) {
  PackWriter w(repo, alg, key, 7);
  Written out;
  for (int i = 0; i < 5; ++i) {
    Bytes plain = crypto::random_bytes(1000 + 100 * static_cast<std::size_t>(i));
    BlobId id = crypto::sha256(plain);
    Bytes buf(plain);
    buf.resize(plain.size() + crypto::kAeadTagSize);
    w.add(i == 4 ? BlobType::tree : BlobType::data, id, 0, static_cast<std::uint32_t>(plain.size()), buf, plain.size());
    out.plains.push_back(plain);
  }
  out.info = w.finish();
  return out;
}

class PackTest : public ::testing::TestWithParam<AeadAlg> {};

TEST_P(PackTest, RoundTripsThroughTheTableAndEveryBlob) {
  test::TempDir dir;
  const AeadAlg alg = GetParam();
  SecureBuffer key = crypto::random_key(crypto::aead_key_size(alg));
  Written w = write_pack(dir.path(), alg, key);
  const fs::path p = pack_path(dir.path(), w.info.id);
  ASSERT_TRUE(fs::exists(p));
  EXPECT_EQ(fs::file_size(p), w.info.size);
  int fd = ::open(p.c_str(), O_RDONLY);
  PackHeader h;
  auto aead_for = [&](std::uint32_t kid, const BlobId& salt) {
    EXPECT_EQ(kid, 7u);
    return crypto::Aead(alg, derive_pack_key(alg, key, salt));
  };
  auto table = read_pack_table(fd, w.info.size, p, aead_for, &h);
  ASSERT_EQ(table.size(), 5u);
  EXPECT_EQ(h.salt, w.info.id);
  crypto::Aead aead(alg, derive_pack_key(alg, key, w.info.id));
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].id, w.info.blobs[i].id);
    Bytes sealed(table[i].length);
    pread_all(fd, sealed.data(), sealed.size(), table[i].offset, p);
    EXPECT_EQ(open_blob(aead, table[i], sealed), w.plains[i]);
  }
  ::close(fd);
}

TEST_P(PackTest, AFlippedByteFailsAuthentication) {
  test::TempDir dir;
  const AeadAlg alg = GetParam();
  SecureBuffer key = crypto::random_key(crypto::aead_key_size(alg));
  Written w = write_pack(dir.path(), alg, key);
  const BlobEntry& e = w.info.blobs[2];
  Bytes sealed(e.length);
  int fd = ::open(pack_path(dir.path(), w.info.id).c_str(), O_RDONLY);
  pread_all(fd, sealed.data(), sealed.size(), e.offset, "pack");
  ::close(fd);
  sealed[10] ^= 0x01;
  crypto::Aead aead(alg, derive_pack_key(alg, key, w.info.id));
  try {
    open_blob(aead, e, sealed);
    FAIL() << "a flipped byte was not detected";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), Errc::auth);
  }
  // The wrong key (e.g. another pack's) fails too.
  Bytes good(e.length);
  fd = ::open(pack_path(dir.path(), w.info.id).c_str(), O_RDONLY);
  pread_all(fd, good.data(), good.size(), e.offset, "pack");
  ::close(fd);
  crypto::Aead wrong(alg, derive_pack_key(alg, key, w.info.blobs[0].id));
  EXPECT_THROW(open_blob(wrong, e, good), Error);
}

TEST_P(PackTest, ATruncatedPackHasNoFooter) {
  test::TempDir dir;
  const AeadAlg alg = GetParam();
  SecureBuffer key = crypto::random_key(crypto::aead_key_size(alg));
  Written w = write_pack(dir.path(), alg, key);
  const fs::path p = pack_path(dir.path(), w.info.id);
  fs::resize_file(p, w.info.size - 5);
  int fd = ::open(p.c_str(), O_RDONLY);
  EXPECT_THROW(read_pack_table(fd, w.info.size - 5, p,
                               [&](std::uint32_t, const BlobId& s) { return crypto::Aead(alg, derive_pack_key(alg, key, s)); }),
               Error);
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(AllCiphers, PackTest,
                         ::testing::Values(AeadAlg::aes_256_gcm, AeadAlg::aes_128_gcm, AeadAlg::chacha20_poly1305,
                                           AeadAlg::sm4_gcm),
                         [](const auto& info) {
                           std::string n(crypto::aead_name(info.param));
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(IndexTest, EncodesAndDecodesAndFindsBlobs) {
  std::vector<PackInfo> packs(3);
  for (std::size_t p = 0; p < packs.size(); ++p) {
    crypto::random_bytes(packs[p].id);
    packs[p].size = 1000 * (p + 1);
    packs[p].key_id = static_cast<std::uint32_t>(p);
    for (int b = 0; b < 4; ++b) {
      BlobEntry e;
      crypto::random_bytes(e.id);
      e.offset = 48 + 100 * static_cast<std::uint64_t>(b);
      e.length = 100;
      e.raw_length = 84;
      e.flags = kBlobZstd;
      packs[p].blobs.push_back(e);
    }
  }
  packs[2].blobs[0].id = packs[0].blobs[0].id;  // a duplicate blob
  const Bytes enc = Index::encode(packs);
  auto dec = Index::decode(enc, "index");
  ASSERT_EQ(dec.size(), 3u);
  Index idx;
  for (auto& p : dec) idx.add_pack(p);
  EXPECT_EQ(idx.blob_count(), 11u);
  const PackInfo* where = nullptr;
  const BlobEntry* e = idx.find(packs[1].blobs[3].id, &where);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(where->id, packs[1].id);
  EXPECT_EQ(e->offset, packs[1].blobs[3].offset);
  EXPECT_TRUE(idx.is_primary(0, 0));
  EXPECT_FALSE(idx.is_primary(2, 0));  // the duplicate's first location wins
}

TEST(IndexTest, TruncatedOrGarbledIndexIsAnError) {
  std::vector<PackInfo> packs(1);
  packs[0].blobs.resize(3);
  Bytes enc = Index::encode(packs);
  Bytes cut(enc.begin(), enc.end() - 7);
  EXPECT_THROW(Index::decode(cut, "index"), Error);
  enc[0] = 'X';
  EXPECT_THROW(Index::decode(enc, "index"), Error);
}

}  // namespace
}  // namespace dlc::backup
