// dlc backup through the real binary: init, backup, snapshots, ls, restore
// with metadata, forget/prune, stats, locations, exit codes and audit records.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "support/test_support.h"

namespace fs = std::filesystem;
using dlc::test::read_file;
using dlc::test::run_dlc;
using dlc::test::RunResult;
using dlc::test::write_file;
using nlohmann::json;

namespace {

class BackupCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "pass", "s3cret-passphrase\n");
    env_ = {{"DLC_PASSPHRASE_FILE", (dir_ / "pass").string()}, {"DLC_HOME", (dir_ / "home").string()}};
    repo_ = (dir_ / "repo").string();
    src_ = dir_ / "src";
    fs::create_directories(src_ / "docs");
    std::string text;
    for (int i = 0; i < 20000; ++i) text.append("row ").append(std::to_string(i)).append(",alice,bob,100.00\n");
    write_file(src_ / "docs" / "ledger.csv", text);
    write_file(src_ / "docs" / "note.txt", "hello");
    ::chmod((src_ / "docs" / "note.txt").c_str(), 0640);
    fs::create_symlink("docs/note.txt", src_ / "link");
    fs::create_hard_link(src_ / "docs" / "ledger.csv", src_ / "ledger-hardlink.csv");
    {  // a sparse file: 8 MiB with 4 KiB of data in the middle
      write_file(src_ / "sparse.img", "");
      fs::resize_file(src_ / "sparse.img", 8 << 20);
      FILE* f = std::fopen((src_ / "sparse.img").c_str(), "r+b");
      std::fseek(f, 4 << 20, SEEK_SET);
      std::fputs(std::string(4096, 'x').c_str(), f);
      std::fclose(f);
    }
    xattr_ok_ = ::setxattr((src_ / "docs" / "note.txt").c_str(), "user.dlc-class", "C2", 2, 0) == 0;
  }
  RunResult dlc(std::vector<std::string> args, std::map<std::string, std::string> extra = {}) {
    auto env = env_;
    for (auto& [k, v] : extra) env[k] = v;
    return run_dlc(args, "", env);
  }
  void init(const std::string& cipher = "aes-256-gcm") {
    RunResult r = dlc({"backup", "init", "--repo", repo_, "--cipher", cipher, "--scrypt-n", "4096", "--chunker",
                       "64,256,1024", "--region", "cn-north-1", "--site", "dc-bj-2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::map<std::string, std::string> tree_listing(const fs::path& root) {
    std::map<std::string, std::string> m;
    for (auto& e : fs::recursive_directory_iterator(root)) {
      struct stat st{};
      ::lstat(e.path().c_str(), &st);
      std::ostringstream v;
      if (S_ISDIR(st.st_mode)) {
        v << st.st_mode;  // dir mtimes change when restored children are written
      } else {
        v << st.st_mode << ' ' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec;
        if (S_ISREG(st.st_mode)) v << ' ' << st.st_size << ' ' << read_file(e.path());
        if (S_ISLNK(st.st_mode)) v << " -> " << fs::read_symlink(e.path()).string();
      }
      m[fs::relative(e.path(), root).string()] = v.str();
    }
    return m;
  }

  dlc::test::TempDir dir_;
  std::map<std::string, std::string> env_;
  std::string repo_;
  fs::path src_;
  bool xattr_ok_ = false;
};

TEST_F(BackupCli, BackupAndRestoreKeepContentAndMetadata) {
  init("sm4-gcm");
  RunResult b = dlc({"--json", "backup", "backup", "--repo", repo_, src_.string(), "--tag", "daily"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  json bj = json::parse(b.out);
  EXPECT_EQ(bj["files_new"], 4);
  RunResult s = dlc({"--json", "backup", "snapshots", "--repo", repo_});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  json sj = json::parse(s.out);
  ASSERT_EQ(sj.size(), 1u);
  EXPECT_EQ(sj[0]["tags"][0], "daily");
  EXPECT_EQ(sj[0]["id"], bj["snapshot"]);
  RunResult ls = dlc({"backup", "ls", "--repo", repo_, "latest"});
  EXPECT_NE(ls.out.find("ledger.csv"), std::string::npos);
  EXPECT_NE(ls.out.find("-> docs/note.txt"), std::string::npos);

  const fs::path out = dir_ / "out";
  RunResult r = dlc({"backup", "restore", "--repo", repo_, "--target", out.string(), "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path restored = out / src_.relative_path();
  EXPECT_EQ(tree_listing(restored), tree_listing(src_));
  struct stat a{}, c{};
  ::stat((restored / "docs" / "ledger.csv").c_str(), &a);
  ::stat((restored / "ledger-hardlink.csv").c_str(), &c);
  EXPECT_EQ(a.st_ino, c.st_ino) << "hardlink not restored as a hardlink";
  ::stat((restored / "sparse.img").c_str(), &a);
  ::stat((src_ / "sparse.img").c_str(), &c);
  EXPECT_EQ(a.st_size, 8 << 20);
  EXPECT_LT(a.st_blocks * 512, 1 << 20) << "sparse file restored dense";
  if (xattr_ok_) {
    char v[16] = {};
    EXPECT_EQ(::getxattr((restored / "docs" / "note.txt").c_str(), "user.dlc-class", v, sizeof v), 2);
    EXPECT_STREQ(v, "C2");
  }
  // --include restores only what matches.
  const fs::path part = dir_ / "part";
  r = dlc({"backup", "restore", "--repo", repo_, "--target", part.string(), "--include", (src_ / "docs").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(part / src_.relative_path() / "docs" / "note.txt"));
  EXPECT_FALSE(fs::exists(part / src_.relative_path() / "sparse.img"));
}

TEST_F(BackupCli, ExcludedPathsAreNotBackedUp) {
  init();
  RunResult b = dlc({"backup", "backup", "--repo", repo_, src_.string(), "--exclude", "*.csv", "--exclude",
                     (src_ / "sparse.img").string()});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string ls = dlc({"backup", "ls", "--repo", repo_}).out;
  EXPECT_EQ(ls.find(".csv"), std::string::npos) << ls;
  EXPECT_EQ(ls.find("sparse.img"), std::string::npos) << ls;
  EXPECT_NE(ls.find("note.txt"), std::string::npos) << ls;
}

TEST_F(BackupCli, VerifyBackupJobWritesSignedReportAndMetricsAndFailsOnDamage) {
  init();
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  const fs::path report = dir_ / "report.json", prom = dir_ / "m.prom";
  RunResult v = dlc({"verify", "backup", "--repo", repo_, "--subset", "50", "--against", src_.string(), "--report",
                     report.string(), "--metrics-file", prom.string()});
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  json rj = json::parse(read_file(report));
  EXPECT_EQ(rj["ok"], true);
  EXPECT_EQ(rj["mode"], "subset");
  EXPECT_EQ(rj["signature"]["algorithm"], "ed25519");
  EXPECT_NE(read_file(prom).find("dlc_backup_verify_ok{repo=\"" + repo_ + "\"} 1"), std::string::npos);
  // Damage every pack: the job fails with exit 1 and says so in its metrics.
  for (auto& e : fs::recursive_directory_iterator(fs::path(repo_) / "data")) {
    if (!e.is_regular_file()) continue;
    std::string b = read_file(e.path());
    b[60] = static_cast<char>(b[60] ^ 0x10);
    write_file(e.path(), b);
  }
  v = dlc({"verify", "backup", "--repo", repo_, "--report", report.string(), "--metrics-file", prom.string()});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_EQ(json::parse(read_file(report))["ok"], false);
  EXPECT_NE(read_file(prom).find("dlc_backup_verify_ok{repo=\"" + repo_ + "\"} 0"), std::string::npos);
}

TEST_F(BackupCli, WrongOrMissingPassphraseChangesNothing) {
  init();
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  auto before = tree_listing(repo_);
  write_file(dir_ / "wrong", "not-it\n");
  RunResult r = dlc({"backup", "backup", "--repo", repo_, src_.string()}, {{"DLC_PASSPHRASE_FILE", (dir_ / "wrong").string()}});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("wrong passphrase"), std::string::npos) << r.err;
  EXPECT_EQ(tree_listing(repo_), before);
  write_file(dir_ / "bad.key", std::string(64, 'k'));
  r = dlc({"backup", "restore", "--repo", repo_, "--target", (dir_ / "o").string(), "--key-file", (dir_ / "bad.key").string()});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  r = dlc({"backup", "backup", "--repo", repo_, src_.string()}, {{"DLC_PASSPHRASE_FILE", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.err;  // no passphrase source (not a terminal)
  EXPECT_EQ(tree_listing(repo_), before);
  r = dlc({"backup", "snapshots", "--repo", (dir_ / "nothing").string()});
  EXPECT_EQ(r.exit_code, 4);
}

TEST_F(BackupCli, AuditRecordsAreWrittenWithoutSecrets) {
  init();
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  ASSERT_EQ(dlc({"backup", "restore", "--repo", repo_, "--target", (dir_ / "o").string()}).exit_code, 0);
  const std::string log = read_file(dir_ / "home" / "audit.jsonl");
  EXPECT_NE(log.find("\"backup init\""), std::string::npos);
  EXPECT_NE(log.find("\"backup backup\""), std::string::npos);
  EXPECT_NE(log.find("\"backup restore\""), std::string::npos);
  EXPECT_EQ(log.find("s3cret"), std::string::npos);
  EXPECT_EQ(dlc({"audit", "verify"}).exit_code, 0);
}

TEST_F(BackupCli, ForgetPruneStatsAndLocations) {
  init("chacha20-poly1305");
  for (int i = 0; i < 3; ++i) {
    write_file(src_ / std::string("gen").append(std::to_string(i)), std::string(300000, static_cast<char>('a' + i)).append(std::to_string(i)));
    ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  }
  RunResult st = dlc({"--json", "backup", "stats", "--repo", repo_});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  json before = json::parse(st.out);
  EXPECT_EQ(before["snapshots"], 3);
  RunResult f = dlc({"--json", "backup", "forget", "--repo", repo_, "--keep-last", "1", "--prune"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  json fj = json::parse(f.out);
  EXPECT_EQ(fj["removed"].size(), 2u);
  json after = json::parse(dlc({"--json", "backup", "stats", "--repo", repo_}).out);
  EXPECT_EQ(after["snapshots"], 1);
  EXPECT_LE(after["repo_size"].get<long>(), before["repo_size"].get<long>());
  RunResult c = dlc({"backup", "check", "--repo", repo_, "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  RunResult loc = dlc({"--json", "backup", "locations", "--repo", repo_});
  ASSERT_EQ(loc.exit_code, 0) << loc.err;
  json lj = json::parse(loc.out);
  EXPECT_EQ(lj["region"], "cn-north-1");
  EXPECT_EQ(lj["site"], "dc-bj-2");
  EXPECT_FALSE(lj["filesystem"].get<std::string>().empty());
  EXPECT_FALSE(lj["mount_point"].get<std::string>().empty());
  ASSERT_EQ(dlc({"backup", "locations", "--repo", repo_, "--set-region", "cn-east-2"}).exit_code, 0);
  EXPECT_EQ(json::parse(dlc({"--json", "backup", "locations", "--repo", repo_}).out)["region"], "cn-east-2");
  // An edited config no longer authenticates.
  std::string cfg = read_file(fs::path(repo_) / "config");
  cfg.replace(cfg.find("cn-east-2"), 9, "us-west-1");
  write_file(fs::path(repo_) / "config", cfg);
  EXPECT_EQ(dlc({"backup", "stats", "--repo", repo_}).exit_code, 5);
}

TEST_F(BackupCli, PruneMaxUnusedToleratesUnusedDataInPartlyUsedPacks) {
  init();
  std::mt19937_64 rng(7);
  std::string big(4 << 20, '\0');
  for (auto& c : big) c = static_cast<char>(rng());
  write_file(src_ / "big.bin", big);
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string(), "--threads", "1"}).exit_code, 0);
  for (std::size_t i = 1 << 20; i < (2u << 20); ++i) big[i] = static_cast<char>(rng());  // a new middle MiB
  write_file(src_ / "big.bin", big);
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string(), "--threads", "1"}).exit_code, 0);

  RunResult bad = dlc({"backup", "prune", "--repo", repo_, "--max-unused", "lots"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("unlimited"), std::string::npos) << bad.err;  // says what is accepted

  // Unlimited: the old middle stays in its (partly used) pack; nothing is repacked.
  RunResult f = dlc({"--json", "backup", "forget", "--repo", repo_, "--keep-last", "1", "--prune", "--max-unused",
                     "unlimited"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  const json fp = json::parse(f.out)["prune"];
  EXPECT_EQ(fp["packs_repacked"], 0);
  EXPECT_GE(fp["packs_partly_used_kept"].get<int>(), 1) << fp.dump();
  EXPECT_GE(fp["unused_bytes_kept"].get<long>(), 1 << 20) << fp.dump();
  // 0 repacks exactly those packs, then nothing unused is left.
  RunResult dry = dlc({"--json", "backup", "prune", "--repo", repo_, "--max-unused", "0", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(json::parse(dry.out)["packs_repacked"], fp["packs_partly_used_kept"]);
  RunResult p = dlc({"--json", "backup", "prune", "--repo", repo_, "--max-unused", "0"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(json::parse(p.out)["packs_partly_used_kept"], 0);
  EXPECT_EQ(json::parse(dlc({"--json", "backup", "prune", "--repo", repo_, "--dry-run"}).out)["packs_repacked"], 0);
  RunResult c = dlc({"backup", "check", "--repo", repo_, "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  const fs::path out = dir_ / "out";
  ASSERT_EQ(dlc({"backup", "restore", "--repo", repo_, "--target", out.string()}).exit_code, 0);
  EXPECT_EQ(read_file(out / src_.relative_path() / "big.bin"), big);
}

}  // namespace
