#include <gtest/gtest.h>

#include "core/error.h"

namespace dlc {
namespace {

TEST(Error, MessageNamesWhatTargetDetailAndHint) {
  Error e(Errc::io, "cannot open audit log", "/var/lib/dlc/audit.jsonl", "Permission denied",
          "run as root or pass --audit-log PATH");
  EXPECT_EQ(std::string(e.what()),
            "cannot open audit log /var/lib/dlc/audit.jsonl: Permission denied; run as root or "
            "pass --audit-log PATH");
  EXPECT_EQ(e.code(), Errc::io);
  EXPECT_EQ(exit_code(e.code()), 4);
}

TEST(Error, EmptyPartsAreLeftOut) {
  EXPECT_EQ(format_error({"unknown command", "'frob'", "", "run 'dlc --help'"}),
            "unknown command 'frob'; run 'dlc --help'");
  EXPECT_EQ(format_error({"bad", "", "", ""}), "bad");
}

TEST(Error, ThrowErrnoCarriesStrerror) {
  try {
    throw_errno("cannot open", "/nonexistent", ENOENT);
    FAIL() << "throw_errno returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_EQ(e.info().detail, "No such file or directory");
    EXPECT_EQ(e.info().target, "/nonexistent");
  }
}

TEST(Error, ExitCodesAreTheDocumentedOnes) {
  EXPECT_EQ(exit_code(Errc::ok), 0);
  EXPECT_EQ(exit_code(Errc::check_failed), 1);
  EXPECT_EQ(exit_code(Errc::usage), 2);
  EXPECT_EQ(exit_code(Errc::refused), 3);
  EXPECT_EQ(exit_code(Errc::io), 4);
  EXPECT_EQ(exit_code(Errc::auth), 5);
  EXPECT_EQ(exit_code(Errc::interrupted), 130);
}

}  // namespace
}  // namespace dlc
