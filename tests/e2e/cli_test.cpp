// The dlc command line contract: help, version, unknown commands, subcommands and
// options, and the one-line error format with documented exit codes.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace dlc::test {
namespace {

bool one_line(const std::string& s) {
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

TEST(Cli, HelpListsEveryCommandAndExitCodes) {
  RunResult r = run_dlc({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* c : {"classify", "backup", "verify", "migrate", "wipe", "audit"})
    EXPECT_NE(r.out.find(c), std::string::npos) << c;
  EXPECT_NE(r.out.find("Exit codes"), std::string::npos);
  EXPECT_NE(r.out.find("--json"), std::string::npos);
  EXPECT_NE(r.out.find("--audit-log"), std::string::npos);
}

TEST(Cli, VersionPrintsTheVersion) {
  RunResult r = run_dlc({"--version"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("dlc ", 0), 0u);
}

TEST(Cli, NoCommandIsAUsageError) {
  RunResult r = run_dlc({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Usage"), std::string::npos);
}

TEST(Cli, UnknownCommandIsOneLineAndExit2) {
  RunResult r = run_dlc({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dlc --help"), std::string::npos) << r.err;
}

TEST(Cli, UnknownGlobalOptionIsExit2) {
  RunResult r = run_dlc({"--no-such-option"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--no-such-option"), std::string::npos) << r.err;
}

TEST(Cli, UnknownCommandOptionNamesOptionAndCommand) {
  RunResult r = run_dlc({"audit", "verify", "--no-such-option"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("no-such-option"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dlc audit"), std::string::npos) << r.err;
}

TEST(Cli, GlobalOptionsAreAcceptedAfterTheCommand) {
  RunResult before = run_dlc({"--json", "audit", "--help"});
  RunResult after = run_dlc({"audit", "--help", "--json"});
  EXPECT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* c : {"classify", "backup", "verify", "migrate", "wipe", "audit"}) {
    RunResult r = run_dlc({c, "--help"});
    EXPECT_EQ(r.exit_code, 0) << c << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << c;
  }
}

// Every tool names an unknown subcommand on stderr, points at its help, and
// exits 2 (usage) without doing anything.
TEST(Cli, UnknownSubcommandsAreUsageErrorsNamingThem) {
  for (const char* c : {"backup", "verify", "wipe", "audit"}) {
    RunResult r = run_dlc({c, "no-such-subcommand"});
    EXPECT_EQ(r.exit_code, 2) << c;
    EXPECT_NE(r.err.find("no-such-subcommand"), std::string::npos) << c << ": " << r.err;
    EXPECT_EQ(r.out, "") << c;
  }
}

}  // namespace
}  // namespace dlc::test
