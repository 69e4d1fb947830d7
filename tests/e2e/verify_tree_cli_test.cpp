// dlc verify manifest create|check and dlc verify tree through the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;

TEST(VerifyTreeCli, ManifestThenTreeVerifiesAndNamesDifferences) {
  TempDir t;
  const std::map<std::string, std::string> env = {{"DLC_HOME", (t / "home").string()}};
  fs::create_directories(t / "tree/sub");
  write_file(t / "tree/a.txt", "alpha\n");
  write_file(t / "tree/sub/b.bin", std::string(70000, 'b'));
  const std::string m = (t / "m.json").string();
  RunResult c = run_dlc({"verify", "manifest", "create", (t / "tree").string(), "-o", m, "--hash", "sm3"}, {}, env);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("(signed)"), std::string::npos) << c.out;
  RunResult ok = run_dlc({"verify", "tree", (t / "tree").string(), "--manifest", m}, {}, env);
  EXPECT_EQ(ok.exit_code, 0) << ok.err << ok.out;
  EXPECT_NE(ok.out.find("verified"), std::string::npos);
  RunResult chk = run_dlc({"verify", "manifest", "check", m}, {}, env);
  EXPECT_EQ(chk.exit_code, 0) << chk.err;
  EXPECT_NE(chk.out.find("pinned"), std::string::npos) << chk.out;

  write_file(t / "tree/sub/b.bin", std::string(70000, 'c'));
  write_file(t / "tree/extra", "x");
  RunResult bad = run_dlc({"--json", "verify", "tree", (t / "tree").string(), "--manifest", m}, {}, env);
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  const auto j = nlohmann::json::parse(bad.out);
  EXPECT_FALSE(j["ok"].get<bool>());
  bool content = false, extra = false;
  for (const auto& d : j["listed"]) {
    content |= d["kind"] == "content" && d["path"] == "sub/b.bin";
    extra |= d["kind"] == "extra" && d["path"] == "extra";
  }
  EXPECT_TRUE(content) << bad.out;
  EXPECT_TRUE(extra) << bad.out;

  // An altered manifest is refused (exit 1), never trusted.
  std::string text = read_file(m);
  const auto pos = text.find("\"mode\":\"0644\"");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 13, "\"mode\":\"0666\"");
  write_file(t / "bad.json", text);
  RunResult tampered = run_dlc({"verify", "manifest", "check", (t / "bad.json").string()}, {}, env);
  EXPECT_EQ(tampered.exit_code, 1) << tampered.err;
}

}  // namespace
}  // namespace dlc::test
