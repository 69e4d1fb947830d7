// Patterns, method plans, sampling and extent slicing: the pieces every
// overwrite is made of.
#include <gtest/gtest.h>

#include <set>

#include "core/crypto.h"
#include "core/error.h"
#include "wipe/erase_method.h"
#include "wipe/pattern.h"

using namespace dlc;
using namespace dlc::wipe;

namespace {

crypto::Bytes seed32() { return crypto::random_bytes(32); }

std::vector<std::string> labels(const MethodPlan& p) {
  std::vector<std::string> v;
  for (const auto& s : p.passes) v.push_back(s.label());
  return v;
}

}  // namespace

TEST(MethodPlan, NamedMethodsResolveToTheirPasses) {
  EXPECT_EQ(labels(plan_method("zero", 1, false, {}, 100)), (std::vector<std::string>{"zero"}));
  EXPECT_EQ(labels(plan_method("one", 1, false, {}, 100)), (std::vector<std::string>{"one"}));
  EXPECT_EQ(labels(plan_method("random", 2, false, {}, 100)),
            (std::vector<std::string>{"random", "random"}));
  EXPECT_EQ(labels(plan_method("dod-3pass", 1, true, {}, 100)),
            (std::vector<std::string>{"zero", "one", "random", "zero"}));
  auto nist = plan_method("nist-clear", 1, false, {}, 100);
  EXPECT_EQ(labels(nist), (std::vector<std::string>{"zero"}));
  EXPECT_EQ(nist.verify, VerifyMode::all);  // Clear = one pass + verification
  EXPECT_EQ(plan_method("zero", 1, false, {}, 100).verify, VerifyMode::last);
  EXPECT_EQ(plan_method("zero", 1, false, VerifyMode::none, 100).verify, VerifyMode::none);
}

TEST(MethodPlan, CustomPatternsParseHexAndRandom) {
  auto p = plan_method("custom:55,0xAA,924924,random", 1, false, {}, 100);
  EXPECT_EQ(labels(p), (std::vector<std::string>{"0x55", "0xaa", "0x924924", "random"}));
  EXPECT_EQ(p.passes[2].bytes, (std::vector<std::uint8_t>{0x92, 0x49, 0x24}));
}

TEST(MethodPlan, BadInputIsAUsageErrorNamingTheChoices) {
  for (const char* m : {"gutmann", "custom:", "custom:5", "custom:zz", ""}) {
    try {
      plan_method(m, 1, false, {}, 100);
      FAIL() << m;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage) << m;
    }
  }
  EXPECT_THROW(plan_method("zero", 0, false, {}, 100), Error);
  EXPECT_THROW(plan_method("zero", 1, false, {}, 0), Error);
  EXPECT_THROW(plan_method("zero", 1, false, {}, 101), Error);
}

TEST(MethodPlan, RoundTripsThroughJson) {
  auto p = plan_method("custom:55aa,random", 2, true, VerifyMode::all, 12.5);
  auto q = MethodPlan::from_json(p.to_json());
  EXPECT_EQ(labels(p), labels(q));
  EXPECT_EQ(q.verify, VerifyMode::all);
  EXPECT_DOUBLE_EQ(q.sample_percent, 12.5);
}

TEST(Pattern, RandomIsBlockAddressableSoVerificationCanRegenerateAnyRange) {
  auto seed = seed32();
  PassSpec r;
  r.kind = PatternKind::random;
  PatternGenerator a(r, seed, 0, 1 << 20), b(r, seed, 0, 1 << 20);
  std::vector<std::uint8_t> whole(256 * 1024), part(4096);
  a.fill(0, whole);
  b.fill(64 * 1024, part);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + 64 * 1024));
  EXPECT_EQ(b.first_mismatch(0, whole), whole.size());
  whole[100000] ^= 1;
  EXPECT_EQ(b.first_mismatch(0, whole), 100000u);
}

TEST(Pattern, EachPassAndEachJobGetsItsOwnStream) {
  auto s1 = seed32(), s2 = seed32();
  PassSpec r;
  r.kind = PatternKind::random;
  std::vector<std::uint8_t> x(4096), y(4096), z(4096);
  PatternGenerator(r, s1, 0, 4096).fill(0, x);
  PatternGenerator(r, s1, 1, 4096).fill(0, y);
  PatternGenerator(r, s2, 0, 4096).fill(0, z);
  EXPECT_NE(x, y);
  EXPECT_NE(x, z);
  EXPECT_NE(derive_pass_key(s1, 0).span()[0] + 0, -1);  // derivation works
  EXPECT_EQ(seed_commitment(s1), seed_commitment(s1));
  EXPECT_NE(seed_commitment(s1), seed_commitment(s2));
}

TEST(Pattern, RandomPatternFailsClosedWithoutASeed) {
  PassSpec r;
  r.kind = PatternKind::random;
  EXPECT_THROW(PatternGenerator(r, crypto::ByteView(), 0, 4096), Error);
}

TEST(Pattern, MultiBytePatternsKeepTheirPhaseAtAnyOffset) {
  PassSpec p;
  p.bytes = {0x92, 0x49, 0x24};
  PatternGenerator g(p, {}, 0, 8192);
  std::vector<std::uint8_t> buf(8192);
  g.fill(4096, buf);
  for (std::size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i], p.bytes[(4096 + i) % 3]) << i;
  EXPECT_EQ(g.first_mismatch(4096, buf), buf.size());
  EXPECT_EQ(g.first_mismatch(0, buf), 0u);  // wrong phase
}

TEST(Sampling, SpreadsUniformlyIncludesFirstAndLastAndIsReproducible) {
  auto seed = crypto::random_bytes(16);
  const std::uint64_t unit = 1 << 20, total = 1000 * unit + 4096;  // last unit is partial
  auto s = choose_samples(total, unit, 5, seed);
  std::uint64_t bytes = 0;
  for (const auto& e : s) bytes += e.length;
  EXPECT_EQ(s.front().offset, 0u);
  EXPECT_EQ(s.back().offset + s.back().length, total);
  EXPECT_GE(bytes, 50 * unit);
  EXPECT_LE(bytes, 52 * unit);
  // One sample per stratum: no two samples more than two strata apart are missing.
  for (std::size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i].offset - s[i - 1].offset, 2 * 21 * unit);
  auto again = choose_samples(total, unit, 5, seed);
  ASSERT_EQ(again.size(), s.size());
  for (std::size_t i = 0; i < s.size(); ++i) EXPECT_EQ(again[i].offset, s[i].offset);
  auto other = choose_samples(total, unit, 5, crypto::random_bytes(16));
  bool differs = other.size() != s.size();
  for (std::size_t i = 0; !differs && i < s.size(); ++i) differs = other[i].offset != s[i].offset;
  EXPECT_TRUE(differs) << "samples are chosen afresh with each seed";
  auto all = choose_samples(total, unit, 100, seed);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].length, total);
}

TEST(Extents, SliceMapsLogicalRangesOntoExtents) {
  std::vector<io::Extent> ext = {{0, 4096}, {65536, 8192}, {1 << 20, 4096}};
  auto s = slice_extents(ext, 2048, 8192);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].offset, 2048u);
  EXPECT_EQ(s[0].length, 2048u);
  EXPECT_EQ(s[1].offset, 65536u);
  EXPECT_EQ(s[1].length, 6144u);
  auto tail = slice_extents(ext, 12288, 100000);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].offset, 1u << 20);
  EXPECT_EQ(tail[0].length, 4096u);
}
