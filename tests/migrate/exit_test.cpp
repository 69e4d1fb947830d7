// The tenant-exit flow (11.3.5): classify -> back up -> migrate --verify ->
// wipe source, replicas and backups -> one signed exit report; resumable; it
// never wipes what did not verify or changed since.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "backup/backup.h"
#include "core/audit_log.h"
#include "migrate/migrate.h"
#include "support/test_support.h"
#include "verify/verify.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Exit : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DLC_HOME", (t_.path() / "home").c_str(), 1);
    fs::create_directories(t_.path() / "data/ledger/2026");
    write_file(t_.path() / "data/ledger/2026/q1.csv", "account,amount\n1,100\n");
    write_file(t_.path() / "data/ledger/notes.txt", "internal\n");
    fs::create_directories(t_.path() / "mirror/ledger");
    write_file(t_.path() / "mirror/ledger/q1.csv", "account,amount\n1,100\n");
    write_file(t_.path() / "replicas.json",
               json({{"dataset", "ledger"}, {"tenant", "t-42"},
                     {"replicas", {{{"id", "mirror"}, {"kind", "dir"}, {"path", (t_.path() / "mirror/ledger").string()}}}}})
                   .dump());
    fs::create_directories(t_.path() / "old-backup");
    write_file(t_.path() / "old-backup/pack", "backup bytes");
    plan_ = {{"format", "dlc-exit-plan/1"},
             {"tenant", "t-42"},
             {"erase_by", "2099-12-31"},
             {"destination", "new"},
             {"classify", true},
             {"wipe", {{"method", "zero"}, {"operator", "Ops A"}, {"organisation", "Bank"}}},
             {"datasets",
              {{{"name", "ledger"}, {"path", "data/ledger"}, {"replicas", "replicas.json"}, {"backups", {"old-backup"}}}}}};
    audit_ = std::make_unique<audit::AuditLog>(t_.path() / "home/audit.jsonl",
                                               audit::HostKey::load_or_create(t_.path() / "home"));
  }
  migrate::ExitReport run(bool yes) {
    write_file(t_.path() / "plan.json", plan_.dump(2));
    migrate::ExitOptions o;
    o.plan = t_.path() / "plan.json";
    o.yes = yes;
    o.audit = audit_.get();
    return migrate::run_exit(o);
  }
  TempDir t_;
  json plan_;
  std::unique_ptr<audit::AuditLog> audit_;
};

TEST_F(Exit, MigratesVerifiesThenWipesEverythingWithCertificates) {
  const auto first = run(false);
  EXPECT_EQ(first.outcome, "awaiting-confirmation");
  EXPECT_EQ(first.code, Errc::ok);
  EXPECT_EQ(read_file(t_.path() / "new/ledger/2026/q1.csv"), "account,amount\n1,100\n");
  EXPECT_TRUE(fs::exists(t_.path() / "data/ledger/notes.txt")) << "wiped without --yes";
  EXPECT_EQ(first.document["datasets"][0]["migration"]["outcome"], "verified");

  const auto done = run(true);
  EXPECT_EQ(done.outcome, "complete") << done.document.dump(2);
  EXPECT_EQ(done.code, Errc::ok);
  EXPECT_FALSE(fs::exists(t_.path() / "data/ledger/notes.txt"));
  EXPECT_FALSE(fs::exists(t_.path() / "mirror/ledger/q1.csv"));
  EXPECT_FALSE(fs::exists(t_.path() / "old-backup/pack"));
  EXPECT_EQ(read_file(t_.path() / "new/ledger/notes.txt"), "internal\n");
  const json& ds = done.document["datasets"][0];
  ASSERT_TRUE(ds["erasure"].is_array());
  EXPECT_GE(ds["erasure"].size(), 3u);
  for (const auto& e : ds["erasure"]) EXPECT_FALSE(e.value("certificate_id", std::string()).empty()) << e.dump();
  EXPECT_TRUE(done.document["within_deadline"].get<bool>());
  EXPECT_TRUE(verify::check_signature(done.document, std::nullopt).valid);
  EXPECT_EQ(ds["classification"]["files"], 2);
}

TEST_F(Exit, NothingIsWipedWhenTheMigrationIsRefused) {
  json p = {{"format", "dlc-residency-policy/1"}, {"locations", {{"cn", {"cn-*"}}}}, {"default", "deny"},
            {"rules", json::array()}};
  write_file(t_.path() / "policy.json", p.dump());
  plan_["policy"] = "policy.json";
  plan_["dest_region"] = "eu-west-1";
  const auto r = run(true);
  EXPECT_EQ(r.code, Errc::refused);
  EXPECT_EQ(r.outcome, "incomplete");
  EXPECT_TRUE(fs::exists(t_.path() / "data/ledger/notes.txt"));
  EXPECT_TRUE(fs::exists(t_.path() / "mirror/ledger/q1.csv"));
  EXPECT_FALSE(fs::exists(t_.path() / "new/ledger"));
}

TEST_F(Exit, ASourceThatChangedAfterVerificationIsNotWiped) {
  run(false);
  write_file(t_.path() / "data/ledger/late.csv", "written after the migration verified\n");
  const auto r = run(true);
  EXPECT_EQ(r.code, Errc::refused);
  EXPECT_TRUE(fs::exists(t_.path() / "data/ledger/late.csv"));
  // The next run migrates the change, verifies, and then erases.
  const auto again = run(true);
  EXPECT_EQ(again.outcome, "complete") << again.document.dump(2);
  EXPECT_EQ(read_file(t_.path() / "new/ledger/late.csv"), "written after the migration verified\n");
  EXPECT_FALSE(fs::exists(t_.path() / "data/ledger/late.csv"));
}

TEST_F(Exit, MembersOfTheWrongTypeAreRefusedBeforeAnythingRuns) {
  // Fuzz finding: a wrong type threw a JSON exception mid-flow, and a
  // negative "passes" wrapped to 4294967295.
  const json good = plan_;
  const std::vector<std::function<void(json&)>> breakages = {
      [](json& p) { p["datasets"][0]["passes"] = -1; },
      [](json& p) { p["datasets"][0]["passes"] = 0; },
      [](json& p) { p["datasets"][0]["passes"] = 2.5; },
      [](json& p) { p["datasets"][0]["path"] = 42; },
      [](json& p) { p["datasets"][0]["backups"] = "old-backup"; },
      [](json& p) { p["datasets"][0] = "ledger"; },
      [](json& p) { p["wipe"]["method"] = json::array(); },
      [](json& p) { p["classify"] = "yes"; },
      [](json& p) { p["approvals"] = {1, 2}; },
      [](json& p) { p["tls"] = "none"; },
      [](json& p) { p["backup"] = {{"key_file", "k"}}; },
  };
  for (std::size_t i = 0; i < breakages.size(); ++i) {
    plan_ = good;
    breakages[i](plan_);
    try {
      run(true);
      ADD_FAILURE() << "breakage " << i << " was accepted: " << plan_.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage) << i << ": " << e.what();
    }
    EXPECT_TRUE(fs::exists(t_.path() / "data/ledger/notes.txt")) << i;
    EXPECT_FALSE(fs::exists(t_.path() / "new/ledger")) << i;
  }
}

}  // namespace
}  // namespace dlc::test
