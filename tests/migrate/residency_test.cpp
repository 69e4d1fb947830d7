// The residency policy engine (docs/formats/residency-policy.md): location
// groups, conjunctive rules, default deny, exceptions scoped by rule, path and
// expiry, stale labels, on-the-fly classification, masked reasons.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.h"
#include "migrate/migrate.h"
#include "support/test_support.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Residency : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = t_.path() / "src";
    fs::create_directories(src_ / "exports");
    write_file(src_ / "exports/pi.csv", "pi");
    write_file(src_ / "cards.csv", "cards");
    write_file(src_ / "public.txt", "public");
    labels({{"exports/pi.csv", 3, "C2", {{"mobile", 5}}}, {"cards.csv", 4, "C3", {{"cvv", 2}}},
            {"public.txt", 1, "none", {}}});
    policy(json::array({{{"assessment_id", "SA-1"}, {"expires", "2099-01-01"}, {"rules", {"pi-cn"}},
                         {"allow", {"hk"}}, {"paths", {"exports/*"}}}}));
  }
  struct L {
    std::string path;
    int level;
    std::string cat;
    json types;
  };
  void labels(const std::vector<L>& ls) {
    json files = json::array();
    for (const auto& l : ls) {
      struct stat st{};
      ::stat((src_ / l.path).c_str(), &st);
      files.push_back({{"path", (src_ / l.path).string()}, {"size", st.st_size}, {"status", "classified"},
                       {"mtime_ns", static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec},
                       {"level", l.level}, {"category", l.cat}, {"personal_information", l.cat != "none"},
                       {"types", l.types.is_null() ? json::object() : l.types}});
    }
    write_file(t_.path() / "labels.json", json({{"format", "dlc-labels"}, {"version", 1}, {"files", files}}).dump());
  }
  void policy(json exceptions, const std::string& unlabelled = "refuse") {
    json p = {{"format", "dlc-residency-policy/1"},
              {"name", "test"},
              {"locations", {{"cn", {"cn-*"}}, {"hk", {"ap-east-1"}}, {"any", {"*"}}}},
              {"default", "deny"},
              {"unlabelled", unlabelled},
              {"rules",
               {{{"id", "pi-cn"}, {"when", {{"personal_information", true}}}, {"allow", {"cn"}}},
                {{"id", "l4-cn"}, {"when", {{"min_level", 4}}}, {"allow", {"cn"}}},
                {{"id", "pub"}, {"when", {{"max_level", 1}}}, {"allow", {"any"}}}}},
              {"exceptions", exceptions}};
    write_file(t_.path() / "policy.json", p.dump());
  }
  migrate::ResidencyResult check(const std::string& region, std::vector<std::string> approvals = {},
                                 bool with_labels = true) {
    migrate::ResidencyInput in;
    in.policy = t_.path() / "policy.json";
    if (with_labels) in.labels = t_.path() / "labels.json";
    in.source_root = src_;
    for (const auto& e : verify::walk_tree(src_, false))
      if (e.type == verify::EntryType::file) in.files.push_back(e);
    in.region = region;
    in.approvals = std::move(approvals);
    in.today = "2026-11-25";
    return migrate::check_residency(in);
  }
  std::string reason(const migrate::ResidencyResult& r, const std::string& path) {
    for (const auto& v : r.violations)
      if (v.path == path) return v.reason;
    return {};
  }
  TempDir t_;
  fs::path src_;
};

TEST_F(Residency, EverythingMayStayInChina) {
  const auto r = check("cn-north-1");
  EXPECT_TRUE(r.ok) << (r.violations.empty() ? "" : r.violations[0].reason);
  EXPECT_EQ(r.files_checked, 3u);
  EXPECT_EQ(r.groups, (std::vector<std::string>{"any", "cn"}));
}

TEST_F(Residency, PersonalInformationAndHighLevelsMayNotLeave) {
  const auto r = check("eu-west-1");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.violations.size(), 2u);
  EXPECT_EQ(reason(r, "public.txt"), "");
  const std::string cards = reason(r, "cards.csv");
  EXPECT_NE(cards.find("level 4, C3 personal information (cvv x2)"), std::string::npos) << cards;
  EXPECT_NE(cards.find("rule pi-cn allows only cn"), std::string::npos) << cards;
  EXPECT_NE(cards.find("rule l4-cn allows only cn"), std::string::npos) << cards;
}

TEST_F(Residency, AnExceptionRelaxesOnlyItsRuleAndPaths) {
  const auto r = check("ap-east-1", {"SA-1"});
  EXPECT_EQ(reason(r, "exports/pi.csv"), "");  // relaxed: pi-cn, exports/*
  EXPECT_NE(reason(r, "cards.csv"), "");       // not under exports/, and l4-cn is not relaxed
  EXPECT_EQ(r.approvals_used, std::vector<std::string>{"SA-1"});
  const auto without = check("ap-east-1");
  EXPECT_NE(reason(without, "exports/pi.csv"), "");
}

TEST_F(Residency, ExpiredAndUnknownApprovals) {
  policy(json::array({{{"assessment_id", "SA-1"}, {"expires", "2026-11-24"}, {"allow", {"hk"}}}}));
  const auto r = check("ap-east-1", {"SA-1"});
  EXPECT_NE(reason(r, "exports/pi.csv").find("SA-1 (expired 2026-11-24)"), std::string::npos);
  try {
    check("ap-east-1", {"SA-404"});
    FAIL() << "an unknown approval was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
  }
}

TEST_F(Residency, StaleOrMissingLabelsAreRefusedByDefault) {
  write_file(src_ / "public.txt", "changed since it was labelled");
  write_file(src_ / "unlabelled.txt", "x");
  const auto r = check("cn-north-1");
  EXPECT_NE(reason(r, "public.txt").find("no current classification label"), std::string::npos);
  EXPECT_NE(reason(r, "unlabelled.txt").find("no current classification label"), std::string::npos);
  EXPECT_EQ(r.files_labelled, 2u);
}

TEST_F(Residency, UnlabelledDataIsClassifiedOnTheFlyWhenThePolicySaysSo) {
  policy(json::array(), "classify");
  write_file(src_ / "contacts.txt", "name: Li Lei, mobile: 13812345678, email: lilei@example.com\n");
  const auto r = check("eu-west-1", {}, false);
  EXPECT_EQ(r.files_classified, 4u);
  const std::string why = reason(r, "contacts.txt");
  EXPECT_NE(why.find("personal information"), std::string::npos) << why;
  EXPECT_EQ(why.find("13812345678"), std::string::npos) << "raw value in a reason";
}

TEST_F(Residency, MalformedPoliciesAreUsageErrors) {
  write_file(t_.path() / "policy.json", R"({"format":"dlc-residency-policy/1","locations":{},"rules":[{"id":"x","allow":["nowhere"]}]})");
  try {
    check("cn-north-1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("unknown location group"), std::string::npos);
  }
}

TEST_F(Residency, LabelsWithNumbersOfTheWrongKindAreUsageErrors) {
  // Found by tests/fuzz/classify_labels: a float out of range (mtime_ns 1.7e21)
  // was converted to an integer with undefined behaviour; negatives wrapped.
  for (const json& bad : {json{{"mtime_ns", 1.76176e21}}, json{{"size", -1}}, json{{"level", 1e300}},
                          json{{"level", 4294967299}}, json{{"types", {{"mobile", 2.5}}}}}) {
    json doc = json::parse(read_file(t_.path() / "labels.json"));
    for (auto& f : doc["files"]) f.update(bad);
    write_file(t_.path() / "labels-bad.json", doc.dump());
    migrate::ResidencyInput in;
    in.policy = t_.path() / "policy.json";
    in.labels = t_.path() / "labels-bad.json";
    in.source_root = src_;
    for (const auto& e : verify::walk_tree(src_, false))
      if (e.type == verify::EntryType::file) in.files.push_back(e);
    in.region = "cn-north-1";
    in.today = "2026-11-25";
    try {
      migrate::check_residency(in);
      ADD_FAILURE() << "accepted labels with " << bad.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage) << e.what();
      EXPECT_NE(std::string(e.what()).find("malformed labels manifest"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace dlc::test
