// Classification policy files (classify::Policy::load, docs/classify.md
// "Policy file") with members of the wrong kind (found by
// tests/fuzz/classify_policy_fuzz.cpp): each is one Errc::usage dlc::Error,
// never a silently converted value or a float-to-int conversion.
#include <gtest/gtest.h>

#include "classify/policy.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::classify {
namespace {

TEST(ClassifyPolicy, LevelsAndCountsOfTheWrongKindAreRefused) {
  test::TempDir dir;
  const auto file = dir / "policy.json";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // 3.5e121 used to be converted to int (undefined behaviour).
      {R"({"types": {"uscc": {"level": 35555555555555555555555555555555555555555555555555e72}}})", "level of uscc"},
      {R"({"types": {"uscc": {"level": 3.5}}})", "level of uscc"},
      // 2^32 + 3 used to wrap to level 3 and be accepted.
      {R"({"types": {"uscc": {"level": 4294967299}}})", "level of uscc"},
      {R"({"types": {"uscc": {"level": "3"}}})", "level of uscc"},
      {R"({"types": {"uscc": 5}})", "rule of uscc"},
      {R"({"volume_rules": [{"category": "C2", "min_findings": 5, "level": 1e300}]})", "volume rule level"},
      {R"({"volume_rules": [{"category": "C2", "min_findings": 5, "level": 4294967300}]})", "volume rule level"},
      {R"({"volume_rules": [{"category": "C2", "min_findings": -1, "level": 4}]})", "min_findings"},
      {R"({"volume_rules": [{"category": "C2", "min_findings": 1e30, "level": 4}]})", "min_findings"},
  };
  for (const auto& [text, what] : cases) {
    test::write_file(file, text);
    try {
      Policy::load(file);
      ADD_FAILURE() << "loaded " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage) << e.what();
      EXPECT_NE(std::string(e.what()).find("invalid classification policy"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  }

  test::write_file(file, R"({"types": {"uscc": {"level": 5}},
      "volume_rules": [{"category": "C2", "min_findings": 0, "level": 1}]})");
  const Policy p = Policy::load(file);
  EXPECT_EQ(p.types[static_cast<std::size_t>(InfoType::uscc)].level, 5);
  ASSERT_EQ(p.volume.size(), 1u);
  EXPECT_EQ(p.volume[0].level, 1);
}

}  // namespace
}  // namespace dlc::classify
