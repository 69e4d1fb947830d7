// dlc audit, run as the real binary: exit codes, messages and JSON are the
// contract with operators, schedulers and SIEM collectors.
#include <gtest/gtest.h>

#include <sstream>

#include "core/audit_log.h"
#include "support/test_support.h"

namespace {

namespace fs = std::filesystem;
using dlc::test::read_file;
using dlc::test::run_dlc;
using dlc::test::RunResult;
using dlc::test::TempDir;
using dlc::test::write_file;
using nlohmann::json;

class AuditCli : public ::testing::Test {
 protected:
  TempDir home;
  fs::path log = home / "audit.jsonl";

  // A log written by the library, as every dlc command writes it.
  void write_log(int events) {
    dlc::audit::AuditLog l(log, dlc::audit::HostKey::load_or_create(home.path()));
    for (int i = 0; i < events; ++i)
      l.append({"backup create",
                {"dlc", "backup", "create", "--passphrase", "secret"},
                "/srv/repo",
                "ok"});
  }

  RunResult dlc(const std::vector<std::string>& args) {
    return run_dlc(args, {}, {{"DLC_HOME", home.path().string()}});
  }

  void tamper_line(std::size_t index) {
    std::istringstream in(read_file(log));
    std::string text, l;
    for (std::size_t i = 0; std::getline(in, l); ++i) {
      if (i == index) l.replace(l.find("\"ok\""), 4, "\"no\"");
      text += l + "\n";
    }
    write_file(log, text);
  }
};

std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST_F(AuditCli, VerifyIntactLogExitsZero) {
  write_log(3);
  const auto r = dlc({"audit", "verify", log.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("OK: 3 records, 1 checkpoints, last seq 4, key ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(unpinned)"), std::string::npos);
}

TEST_F(AuditCli, VerifyDefaultsToTheLogInDlcHome) {
  write_log(1);
  const auto r = dlc({"audit", "verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("OK: 1 records", 0), 0u) << r.out;
}

TEST_F(AuditCli, VerifyPinnedToTheExportedPublicKey) {
  write_log(2);
  const auto exported = dlc({"audit", "pubkey"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_NE(exported.out.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
  EXPECT_NE(exported.out.find("fingerprint: "), std::string::npos);
  write_file(home / "exported.pub", exported.out);  // the output as saved by an operator
  const auto r =
      dlc({"audit", "verify", log.string(), "--pubkey", (home / "exported.pub").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(pinned)"), std::string::npos) << r.out;
}

TEST_F(AuditCli, TamperedLogExitsOneNamingTheLine) {
  write_log(3);
  tamper_line(1);
  const auto r = dlc({"audit", "verify", log.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("TAMPERED: line 2 (seq 2): hash mismatch", 0), 0u) << r.out;
}

TEST_F(AuditCli, TruncatedLogExitsOne) {
  write_log(2);
  write_log(2);
  std::istringstream in(read_file(log));
  std::string text, l;
  for (int i = 0; i < 3 && std::getline(in, l); ++i) text += l + "\n";
  write_file(log, text);
  const auto r = dlc({"audit", "verify", log.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("truncated: log ends at seq 3, the signed head says 6"), std::string::npos)
      << r.out;
}

TEST_F(AuditCli, MissingLogExitsFourWithOneLineNamingThePath) {
  const std::string missing = (home / "nope.jsonl").string();
  const auto r = dlc({"audit", "verify", missing});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(AuditCli, UnusablePublicKeyFileExitsFive) {
  write_log(1);
  write_file(home / "bad.pub", "not a key\n");
  const auto r = dlc({"audit", "verify", log.string(), "--pubkey", (home / "bad.pub").string()});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_NE(r.err.find("unusable public key file"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST_F(AuditCli, UsageErrorsExitTwo) {
  EXPECT_EQ(dlc({"audit", "verify", "--bogus"}).exit_code, 2);
  EXPECT_EQ(dlc({"audit", "bogus"}).exit_code, 2);
  EXPECT_EQ(dlc({"audit"}).exit_code, 2);
  EXPECT_EQ(dlc({"audit", "show", "--last", "many"}).exit_code, 2);
}

TEST_F(AuditCli, JsonReportParses) {
  write_log(2);
  auto r = dlc({"--json", "audit", "verify", log.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["records"], 2);
  EXPECT_EQ(j["head_seq"], 3);
  EXPECT_EQ(j["log"], log.string());

  tamper_line(0);
  r = dlc({"audit", "verify", log.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1);
  j = json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["first_bad_line"], 1);
  EXPECT_EQ(j["first_bad_seq"], 1);
}

TEST_F(AuditCli, ShowPrintsRecordsWithMaskedArguments) {
  write_log(3);
  auto r = dlc({"audit", "show", log.string(), "--last", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(r.out), 2u) << r.out;
  EXPECT_NE(r.out.find("seq 3  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checkpoint  seals seq 3"), std::string::npos) << r.out;

  r = dlc({"--json", "audit", "show"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json all = json::parse(r.out);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0]["command"], "backup create");
  EXPECT_EQ(all[0]["args"][4], "***");
  EXPECT_EQ(r.out.find("secret"), std::string::npos);
}

TEST_F(AuditCli, HeadPrintsTheSignedHead) {
  write_log(2);
  auto r = dlc({"audit", "head", log.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("signature  valid"), std::string::npos) << r.out;
  r = dlc({"--json", "audit", "head", log.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json h = json::parse(r.out);
  EXPECT_EQ(h["seq"], 3);
  EXPECT_EQ(h["type"], "head");

  EXPECT_EQ(dlc({"audit", "head", (home / "none.jsonl").string()}).exit_code, 4);
}

TEST_F(AuditCli, EveryAuditCommandHasHelpWithExamples) {
  for (const char* sub : {"verify", "show", "head", "pubkey"}) {
    const auto r = dlc({"audit", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub << r.err;
    EXPECT_NE(r.out.find("Usage: dlc audit "), std::string::npos) << sub;
    EXPECT_NE(r.out.find("Examples:"), std::string::npos) << sub;
  }
  const auto r = dlc({"audit", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("verify"), std::string::npos);
}

}  // namespace
