// `dlc wipe replicas` accounts for every replica in one report and fails when
// one is not wiped; `dlc wipe record-destruction` issues a Destroy
// certificate that verifies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

using dlc::test::LoopDevice;
using dlc::test::run_dlc;
using dlc::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json parse_json(const std::string& s) {
  try {
    return json::parse(s);
  } catch (...) {
    ADD_FAILURE() << "not JSON: " << s;
    return json::object();
  }
}

std::map<std::string, std::string> env(const TempDir& home) {
  return {{"DLC_HOME", home.path().string()}};
}

}  // namespace

TEST(WipeReplicasCli, OneUnreachableReplicaFailsTheJobAndEveryReplicaIsAccountedFor) {
  DLC_REQUIRE_LOOP_DEVICES();
  TempDir d, home;
  LoopDevice loop(16 << 20);
  dlc::test::write_file(d / "orders.db", std::string(100000, 'o'));
  fs::create_directories(d / "mirror" / "2024");
  dlc::test::write_file(d / "mirror" / "2024" / "orders.db", std::string(50000, 'm'));
  json list = {{"dataset", "orders-2024"},
               {"tenant", "t-42"},
               {"replicas",
                {{{"id", "primary"}, {"kind", "file"}, {"path", (d / "orders.db").string()}},
                 {{"id", "mirror"}, {"kind", "dir"}, {"path", (d / "mirror").string()}},
                 {{"id", "raw-volume"}, {"kind", "device"}, {"path", loop.device()}},
                 {{"id", "dr-site"}, {"kind", "file"}, {"path", (d / "gone" / "orders.db").string()}}}}};
  dlc::test::write_file(d / "list.json", list.dump(2));
  auto r = run_dlc({"--json", "wipe", "replicas", "--list", (d / "list.json").string(), "--yes"}, {},
                   env(home));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  json rep = parse_json(r.out);
  ASSERT_EQ(rep["targets"].size(), 1u);
  const json& set = rep["targets"][0];
  EXPECT_EQ(set["outcome"], "failed");
  EXPECT_EQ(set["evidence"]["wiped"], 3);
  EXPECT_EQ(set["evidence"]["unreachable"], 1);
  ASSERT_EQ(set["evidence"]["replicas"].size(), 4u);
  std::map<std::string, std::string> outcome;
  for (const auto& a : set["evidence"]["replicas"]) outcome[a["id"]] = a["outcome"];
  EXPECT_EQ(outcome["primary"], "wiped");
  EXPECT_EQ(outcome["mirror"], "wiped");
  EXPECT_EQ(outcome["raw-volume"], "wiped");
  EXPECT_EQ(outcome["dr-site"], "unreachable");
  EXPECT_FALSE(fs::exists(d / "orders.db"));
  EXPECT_FALSE(fs::exists(d / "mirror"));
  // The set's signed report verifies as a document but does not certify the dataset.
  auto v = run_dlc({"verify", "certificate", set["certificate"].get<std::string>()}, {}, env(home));
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.err.find("failed"), std::string::npos) << v.err;
}

TEST(WipeReplicasCli, AllReplicasWipedGivesOneCertifiedReport) {
  TempDir d, home;
  dlc::test::write_file(d / "a.db", "replica a\n");
  dlc::test::write_file(d / "b.db", "replica b\n");
  json list = {{"dataset", "ds"},
               {"replicas",
                {{{"kind", "file"}, {"path", (d / "a.db").string()}},
                 {{"kind", "file"}, {"path", (d / "b.db").string()}}}}};
  dlc::test::write_file(d / "list.json", list.dump());
  auto r = run_dlc({"--json", "wipe", "replicas", "--list", (d / "list.json").string()}, {}, env(home));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json set = parse_json(r.out)["targets"][0];
  EXPECT_EQ(set["outcome"], "sanitized");
  auto v = run_dlc({"verify", "certificate", set["certificate"].get<std::string>(), "--pubkey",
                    (home / "host-key.pub").string()},
                   {}, env(home));
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

TEST(WipeReplicasCli, BadListsAreUsageErrors) {
  TempDir d, home;
  dlc::test::write_file(d / "bad.json", "{\"replicas\": []}");
  EXPECT_EQ(run_dlc({"wipe", "replicas", "--list", (d / "bad.json").string()}, {}, env(home)).exit_code, 2);
  dlc::test::write_file(d / "notjson.json", "replicas:");
  EXPECT_EQ(run_dlc({"wipe", "replicas", "--list", (d / "notjson.json").string()}, {}, env(home)).exit_code, 2);
  // Members of the wrong type (a fuzzing finding: a JSON exception escaped).
  for (const char* list :
       {R"({"dataset": 7, "replicas": [{"kind": "file", "path": "/x"}]})",
        R"({"dataset": "d", "replicas": [{"kind": "file", "path": ["/x"]}]})",
        R"({"dataset": "d", "replicas": [{"kind": "file", "path": "/x", "host": 1}]})",
        R"({"dataset": "d", "tenant": {}, "replicas": [{"kind": "file", "path": "/x"}]})"}) {
    dlc::test::write_file(d / "typed.json", list);
    auto r = run_dlc({"wipe", "replicas", "--list", (d / "typed.json").string(), "--yes"}, {}, env(home));
    EXPECT_EQ(r.exit_code, 2) << list << "\n" << r.err;
    EXPECT_NE(r.err.find("must be a string"), std::string::npos) << r.err;
  }
}

TEST(RecordDestructionCli, IssuesADestroyCertificateThatVerifies) {
  TempDir home;
  auto r = run_dlc({"--json", "wipe", "record-destruction", "--method", "shred", "--media-type", "hdd",
                    "--make", "Seagate", "--model", "ST4000NM0035", "--serial", "ZC1A2B3C",
                    "--details", "particle size 2 mm", "--operator", "Li Wei", "--witness",
                    "Zhang Min", "--organisation", "Example Bank", "--location", "Shanghai DC2"},
                   {}, env(home));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json t = parse_json(r.out)["targets"][0];
  EXPECT_EQ(t["outcome"], "destroyed");
  const std::string cert = t["certificate"];
  auto v = run_dlc({"verify", "certificate", cert, "--pubkey", (home / "host-key.pub").string()}, {},
                   env(home));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  json c = json::parse(dlc::test::read_file(cert));
  EXPECT_EQ(c["sanitization"]["category"], "destroy");
  EXPECT_EQ(c["media"]["serial"], "ZC1A2B3C");
  EXPECT_EQ(c["validation"]["witness"], "Zhang Min");
  EXPECT_EQ(c["destination"], "destroyed");
  auto txt = run_dlc({"verify", "certificate", cert, "--render", "text"}, {}, env(home));
  EXPECT_NE(txt.out.find("particle size 2 mm"), std::string::npos);
}

TEST(RecordDestructionCli, DegaussingFlashIsRefusedAndUnidentifiedMediaIsAUsageError) {
  TempDir home;
  auto r = run_dlc({"wipe", "record-destruction", "--method", "degauss", "--media-type", "ssd",
                    "--model", "X", "--serial", "1"},
                   {}, env(home));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(run_dlc({"wipe", "record-destruction", "--method", "shred"}, {}, env(home)).exit_code, 2);
  EXPECT_EQ(run_dlc({"wipe", "record-destruction", "--method", "microwave", "--serial", "1"}, {},
                    env(home)).exit_code, 2);
}
