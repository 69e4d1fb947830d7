// The real dlc binary: exit codes, report formats, mask, labels, bad input,
// and that no raw value reaches any output or the audit log.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "support/test_support.h"

namespace fs = std::filesystem;
using dlc::test::read_file;
using dlc::test::run_dlc;
using dlc::test::TempDir;
using dlc::test::write_file;

namespace {

const std::vector<std::string> kRaw = {"11010519491231002X", "6222021234567890128", "13812345678",
                                       "S3cr3t!pass", "zhang.san@example.com"};

class ClassifyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(data_ / "sub");
    write_file(data_ / "customers.csv",
               "name,id_no,phone,card_no\n张三," + kRaw[0] + "," + kRaw[2] + "," + kRaw[1] + "\n");
    write_file(data_ / "sub/app.conf", "db_password=" + kRaw[3] + "\nadmin=" + kRaw[4] + "\n");
    write_file(data_ / "sub/readme.txt", "nothing sensitive\n");
  }
  dlc::test::RunResult dlc(const std::vector<std::string>& args) {
    return run_dlc(args, {}, {{"DLC_HOME", home_.path().string()}});
  }
  void expect_no_raw(const std::string& text, const std::string& where) {
    for (const auto& raw : kRaw)
      EXPECT_EQ(text.find(raw), std::string::npos) << raw << " in " << where;
  }
  TempDir home_;
  TempDir dir_;
  fs::path data_ = dir_ / "data";
};

}  // namespace

TEST_F(ClassifyCli, HumanSummaryShowsMaskedSamplesOnly) {
  auto r = dlc({"classify", data_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("110105********002X"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("column id_no: resident_id"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dataset: level 4 (C3)"), std::string::npos) << r.out;
  expect_no_raw(r.out + r.err, "text output");
}

TEST_F(ClassifyCli, FailLevelGatesPipelines) {
  EXPECT_EQ(dlc({"classify", data_.string(), "--fail-level", "4"}).exit_code, 1);
  EXPECT_EQ(dlc({"classify", data_.string(), "--fail-level", "5"}).exit_code, 0);
  EXPECT_EQ(dlc({"classify", (data_ / "sub/readme.txt").string(), "--fail-level", "2"}).exit_code,
            0);
}

TEST_F(ClassifyCli, JsonAndCsvReports) {
  auto j = dlc({"--json", "classify", data_.string()});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["dataset"]["level"], 4);
  EXPECT_EQ(doc["dataset"]["files_scanned"], 3);
  EXPECT_EQ(doc["dataset"]["counts"]["resident_id"], 1);
  EXPECT_EQ(doc["dataset"]["counts"]["password"], 1);
  expect_no_raw(j.out, "--json");

  auto c = dlc({"classify", data_.string(), "--csv"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out.rfind("path,line,offset,row,column,type,category,level,confidence,masked\n", 0),
            0u);
  EXPECT_NE(c.out.find(",id_no,resident_id,C2,3,"), std::string::npos) << c.out;
  expect_no_raw(c.out, "--csv");

  const fs::path report = dir_ / "report.json";
  auto o = dlc({"classify", data_.string(), "--output", report.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto saved = nlohmann::json::parse(read_file(report));
  EXPECT_EQ(saved["dataset"]["findings_total"], 5);
  expect_no_raw(read_file(report), "--output");
}

TEST_F(ClassifyCli, LabelWritesAManifestAndAnAuditRecord) {
  const fs::path manifest = dir_ / "labels.json";
  auto r = dlc({"classify", data_.string(), "--label", manifest.string(), "--xattr"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(read_file(manifest));
  EXPECT_EQ(doc["format"], "dlc-labels");
  EXPECT_EQ(doc["dataset"]["level"], 4);
  EXPECT_EQ(doc["files"].size(), 3u);
  expect_no_raw(read_file(manifest), "labels manifest");
  const std::string log = read_file(home_ / "audit.jsonl");
  EXPECT_NE(log.find("classify label"), std::string::npos);
  expect_no_raw(log, "audit log");
}

TEST_F(ClassifyCli, MaskWritesAMaskedCopy) {
  const fs::path out = dir_ / "masked.csv";
  auto r = dlc({"classify", "mask", (data_ / "customers.csv").string(), out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string masked = read_file(out);
  EXPECT_EQ(masked,
            "name,id_no,phone,card_no\n张三,110105********002X,138****5678,6222***********0128\n");
  expect_no_raw(masked + r.out + r.err, "masked copy");
  const std::string log = read_file(home_ / "audit.jsonl");
  EXPECT_NE(log.find("classify mask"), std::string::npos);
  expect_no_raw(log, "audit log");
  // An existing output is refused without --force.
  auto again = dlc({"classify", "mask", (data_ / "customers.csv").string(), out.string()});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_EQ(dlc({"classify", "mask", (data_ / "customers.csv").string(), out.string(), "--force"})
                .exit_code,
            0);
}

TEST_F(ClassifyCli, BadInputIsAClearError) {
  auto missing = dlc({"classify", (dir_ / "nope").string()});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_NE(missing.err.find("cannot read input"), std::string::npos) << missing.err;
  EXPECT_EQ(dlc({"classify"}).exit_code, 2);
  EXPECT_EQ(dlc({"classify", data_.string(), "--fail-level", "9"}).exit_code, 2);
  EXPECT_EQ(dlc({"classify", data_.string(), "--no-such-option"}).exit_code, 2);
  EXPECT_EQ(dlc({"classify", data_.string(), "--binary", "maybe"}).exit_code, 2);
  EXPECT_EQ(dlc({"classify", "mask", (data_ / "customers.csv").string()}).exit_code, 2);
  write_file(dir_ / "policy.json", "{not json");
  auto bad_policy = dlc({"classify", data_.string(), "--policy", (dir_ / "policy.json").string()});
  EXPECT_EQ(bad_policy.exit_code, 2);
  EXPECT_NE(bad_policy.err.find("invalid classification policy"), std::string::npos);
  auto help = dlc({"classify", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--fail-level"), std::string::npos);
}

// Follow-up: a key with escaped newlines in a JSON document is masked to its
// BEGIN/END markers and the document stays JSON; a CSV note holding newlines
// keeps the masked cells in their columns.
TEST_F(ClassifyCli, MaskKeepsJsonKeysAndMultilineCsvRecords) {
  const std::string body = "MIIEowIBAAKCAQEA7bq0BodyOfTheKeyWhichMustNeverLeak0123456789abcdefghij";
  const std::string key =
      "-----BEGIN RSA PRIVATE KEY-----\\n" + body + "\\n-----END RSA PRIVATE KEY-----";
  write_file(dir_ / "svc.json", "{\"name\": \"svc\", \"private_key\": \"" + key + "\"}\n");
  auto j = dlc({"classify", "mask", (dir_ / "svc.json").string(), (dir_ / "svc.masked.json").string()});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const std::string masked_json = read_file(dir_ / "svc.masked.json");
  EXPECT_EQ(masked_json.find(body), std::string::npos);
  auto doc = nlohmann::json::parse(masked_json);
  EXPECT_EQ(doc["private_key"],
            "-----BEGIN RSA PRIVATE KEY-----\n[REDACTED by dlc]\n-----END RSA PRIVATE KEY-----");
  auto report = dlc({"--json", "classify", (dir_ / "svc.json").string()});
  EXPECT_EQ(report.out.find(body), std::string::npos);

  write_file(dir_ / "notes.csv", "name,note,id_no\n张三,\"called twice,\nasked for " + kRaw[2] +
                                     "\"," + kRaw[0] + "\n李四,none,-\n");
  auto c = dlc({"classify", "mask", (dir_ / "notes.csv").string(), (dir_ / "notes.masked.csv").string()});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(read_file(dir_ / "notes.masked.csv"),
            "name,note,id_no\n张三,\"called twice,\nasked for 138****5678\",110105********002X\n"
            "李四,none,-\n");
  auto csv = dlc({"classify", (dir_ / "notes.csv").string(), "--csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  // The ID is on line 3, in row 1 (the note's newline does not end the record).
  EXPECT_NE(csv.out.find("notes.csv,3,61,1,id_no,resident_id,"), std::string::npos) << csv.out;
  expect_no_raw(csv.out + read_file(dir_ / "notes.masked.csv"), "multi-line CSV");
}
