// The chunker: deterministic, boundaries that survive an insertion, and the
// min/avg/max contract.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "backup/chunker.h"
#include "core/error.h"
#include "support/test_support.h"

#include <fcntl.h>
#include <unistd.h>

namespace dlc::backup {
namespace {

using crypto::Bytes;

Bytes random_data(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<std::uint8_t>(rng());
  return b;
}

std::vector<std::size_t> cut_all(const Chunker& c, const Bytes& data) {
  std::vector<std::size_t> cuts;
  std::size_t pos = 0;
  while (pos < data.size()) {
    const std::size_t n = c.next(data.data() + pos, data.size() - pos, true);
    EXPECT_GT(n, 0u);
    pos += n;
    cuts.push_back(pos);
  }
  return cuts;
}

const ChunkerParams kParams{16 * 1024, 64 * 1024, 256 * 1024};

TEST(Chunker, IsDeterministicForOneSeedAndDiffersAcrossSeeds) {
  const Bytes seed1 = random_data(2048, 1), seed2 = random_data(2048, 2);
  const Bytes data = random_data(4 << 20, 7);
  EXPECT_EQ(cut_all(Chunker(kParams, seed1), data), cut_all(Chunker(kParams, seed1), data));
  EXPECT_NE(cut_all(Chunker(kParams, seed1), data), cut_all(Chunker(kParams, seed2), data));
}

TEST(Chunker, RespectsMinAvgMax) {
  const Chunker c(kParams, random_data(2048, 3));
  const Bytes data = random_data(16 << 20, 9);
  auto cuts = cut_all(c, data);
  std::size_t prev = 0;
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    const std::size_t len = cuts[i] - prev;
    EXPECT_LE(len, kParams.max_size);
    if (i + 1 < cuts.size()) {
      EXPECT_GE(len, kParams.min_size);
    }
    prev = cuts[i];
  }
  const double avg = static_cast<double>(data.size()) / static_cast<double>(cuts.size());
  // Normalized chunking centres the mean near avg (+ min, since hashing starts there).
  EXPECT_GT(avg, kParams.avg_size * 0.6);
  EXPECT_LT(avg, kParams.avg_size * 2.0);
}

TEST(Chunker, BoundariesSurviveAnInsertionShift) {
  const Chunker c(kParams, random_data(2048, 4));
  const Bytes data = random_data(8 << 20, 11);
  Bytes shifted = random_data(777, 12);  // 777 new bytes in front
  shifted.insert(shifted.end(), data.begin(), data.end());
  auto a = cut_all(c, data);
  auto b = cut_all(c, shifted);
  std::set<std::size_t> sa(a.begin(), a.end());
  std::size_t common = 0;
  for (std::size_t x : b)
    if (x >= 777 && sa.count(x - 777)) ++common;
  // All but the first one or two boundaries realign.
  EXPECT_GE(common + 2, a.size());
}

TEST(Chunker, SmallInputIsOneChunkAndNeedsMoreDataWithoutEof) {
  const Chunker c(kParams, random_data(2048, 5));
  const Bytes data = random_data(1000, 1);
  EXPECT_EQ(c.next(data.data(), data.size(), true), 1000u);
  EXPECT_EQ(c.next(data.data(), data.size(), false), 0u);
  const Bytes zeros(1 << 20, 0);
  EXPECT_EQ(c.next(zeros.data(), zeros.size(), false), kParams.max_size);
}

TEST(Chunker, StreamingAFileCutsWhereTheWholeBufferDoes) {
  const Chunker c(kParams, random_data(2048, 6));
  const Bytes data = random_data(5 << 20, 13);
  test::TempDir dir;
  test::write_file(dir / "f", std::string(data.begin(), data.end()));
  const int fd = ::open((dir / "f").c_str(), O_RDONLY);
  Bytes buf;
  std::vector<std::size_t> cuts;
  std::size_t pos = 0;
  const std::uint64_t total = for_each_chunk(fd, c, buf, "f", [&](crypto::ByteView chunk) {
    EXPECT_TRUE(std::equal(chunk.begin(), chunk.end(), data.begin() + static_cast<std::ptrdiff_t>(pos)));
    pos += chunk.size();
    cuts.push_back(pos);
  });
  ::close(fd);
  EXPECT_EQ(total, data.size());
  EXPECT_EQ(cuts, cut_all(c, data));
}

TEST(Chunker, RejectsBadParameters) {
  const Bytes seed = random_data(2048, 1);
  EXPECT_THROW(Chunker({1024, 4096, 8192}, seed), Error);           // min too small
  EXPECT_THROW(Chunker({64 * 1024, 100000, 1 << 20}, seed), Error);  // avg not a power of two
  EXPECT_THROW(Chunker({64 * 1024, 32 * 1024, 1 << 20}, seed), Error);
}

}  // namespace
}  // namespace dlc::backup
