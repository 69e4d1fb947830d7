// Reliability of a real repository driven through the real binary: kill -9
// mid-backup, a flipped byte in a pack, a lost or truncated index, concurrent
// backups, and prune against a held lock.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace fs = std::filesystem;
using dlc::test::read_file;
using dlc::test::run_dlc;
using dlc::test::run_shell;
using dlc::test::RunResult;
using dlc::test::write_file;
using nlohmann::json;

namespace {

std::string random_string(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class Reliability : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "pass", "reliable\n");
    env_ = {{"DLC_PASSPHRASE_FILE", (dir_ / "pass").string()}, {"DLC_HOME", (dir_ / "home").string()}};
    repo_ = (dir_ / "repo").string();
    src_ = dir_ / "src";
    fs::create_directories(src_);
    ASSERT_EQ(dlc({"backup", "init", "--repo", repo_, "--scrypt-n", "4096", "--chunker", "64,256,1024"}).exit_code, 0);
  }
  RunResult dlc(std::vector<std::string> args) { return run_dlc(args, "", env_); }
  std::string env_prefix() const {
    std::string s;
    for (const auto& [k, v] : env_) s += k + "='" + v + "' ";
    return s;
  }
  void make_files(const fs::path& dir, int n, std::size_t size, unsigned seed) {
    fs::create_directories(dir);
    for (int i = 0; i < n; ++i)
      write_file(dir / std::string("f").append(std::to_string(i)), random_string(size, seed + static_cast<unsigned>(i)));
  }
  json check_json(bool read_data = true) {
    RunResult r = dlc({"--json", "backup", "check", "--repo", repo_, read_data ? "--read-data" : "--threads=2"});
    last_check_exit_ = r.exit_code;
    return json::parse(r.out);
  }
  std::map<std::string, std::string> contents(const fs::path& root) {
    std::map<std::string, std::string> m;
    for (auto& e : fs::recursive_directory_iterator(root))
      if (e.is_regular_file()) m[fs::relative(e.path(), root).string()] = read_file(e.path());
    return m;
  }

  dlc::test::TempDir dir_;
  std::map<std::string, std::string> env_;
  std::string repo_;
  fs::path src_;
  int last_check_exit_ = -1;
};

TEST_F(Reliability, KillNineDuringBackupLeavesAValidRepository) {
  make_files(src_, 48, 1 << 20, 100);
  for (const char* delay : {"0.02", "0.05", "0.08", "0.12"}) {
    RunResult k = run_shell(env_prefix() + "timeout -s KILL " + delay + " " DLC_BINARY " backup backup --repo " + repo_ +
                            " " + src_.string());
    json c = check_json();
    EXPECT_EQ(last_check_exit_, 0) << "after kill at " << delay << " s: " << c.dump(2);
    EXPECT_TRUE(c["ok"].get<bool>());
  }
  RunResult b = dlc({"backup", "backup", "--repo", repo_, src_.string()});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult p = dlc({"backup", "prune", "--repo", repo_});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  json c = check_json();
  EXPECT_EQ(last_check_exit_, 0) << c.dump(2);
  EXPECT_TRUE(c["warnings"].empty()) << "prune left orphans or temp files: " << c.dump(2);
  ASSERT_EQ(dlc({"backup", "restore", "--repo", repo_, "--target", (dir_ / "out").string(), "--verify"}).exit_code, 0);
  EXPECT_EQ(contents(dir_ / "out" / src_.relative_path()), contents(src_));
}

TEST_F(Reliability, InterruptedBackupIndexesWhatItStoredAndResumes) {
  make_files(src_, 64, 1 << 20, 700);
  RunResult r = run_shell(env_prefix() + "timeout --preserve-status -s INT 0.05 " DLC_BINARY " backup backup --repo " + repo_ + " " +
                          src_.string());
  ASSERT_TRUE(r.exit_code == 130 || r.exit_code == 0) << r.exit_code << r.err;
  json c = check_json();
  EXPECT_EQ(last_check_exit_, 0) << c.dump(2);
  if (r.exit_code == 130) {
    EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
    EXPECT_EQ(json::parse(dlc({"--json", "backup", "snapshots", "--repo", repo_}).out).size(), 0u);
    EXPECT_TRUE(c["warnings"].empty()) << "stored packs were not indexed: " << c.dump(2);
  }
  RunResult b = dlc({"--json", "backup", "backup", "--repo", repo_, src_.string()});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  if (r.exit_code == 130 && c["packs_total"].get<int>() > 0) {
    EXPECT_GT(json::parse(b.out)["blobs_known"].get<int>(), 0) << "the rerun stored everything again";
  }
}

TEST_F(Reliability, AFlippedByteIsFoundNamedAndEverythingElseRestores) {
  make_files(src_, 8, 600 * 1024, 200);
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  // The largest pack holds file data; flip one byte inside its first blob.
  fs::path victim;
  std::uintmax_t best = 0;
  for (auto& e : fs::recursive_directory_iterator(fs::path(repo_) / "data"))
    if (e.is_regular_file() && e.file_size() > best) best = e.file_size(), victim = e.path();
  {
    int fd = ::open(victim.c_str(), O_RDWR);
    unsigned char b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, 48 + 1000), 1);
    b ^= 0x20;
    ASSERT_EQ(::pwrite(fd, &b, 1, 48 + 1000), 1);
    ::close(fd);
  }
  EXPECT_EQ(check_json(false)["ok"], true) << "a structure-only check reads no data";
  json c = check_json();
  EXPECT_EQ(last_check_exit_, 1);
  ASSERT_EQ(c["damaged_blobs"].size(), 1u) << c.dump(2);
  EXPECT_EQ(c["damaged_blobs"][0]["pack"], victim.filename().string());
  EXPECT_NE(c["damaged_blobs"][0]["reason"].get<std::string>().find("authenticate"), std::string::npos);
  ASSERT_EQ(c["affected_files"].size(), 1u) << c.dump(2);
  ASSERT_EQ(c["affected_snapshots"].size(), 1u);
  const std::string bad = c["affected_files"][0]["path"];
  // Restore reports the damaged file and restores every other one intact.
  const fs::path out = dir_ / "out";
  RunResult r = dlc({"backup", "restore", "--repo", repo_, "--target", out.string(), "--verify"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(fs::path(bad).filename().string()), std::string::npos) << r.err;
  auto want = contents(src_);
  auto got = contents(out / src_.relative_path());
  want.erase(fs::path(bad).filename().string());
  got.erase(fs::path(bad).filename().string());
  EXPECT_EQ(got, want);
}

TEST_F(Reliability, ATruncatedOrDeletedIndexIsDetectedAndRepaired) {
  make_files(src_, 6, 400 * 1024, 300);
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  auto index_files = [&] {
    std::vector<fs::path> v;
    for (auto& e : fs::directory_iterator(fs::path(repo_) / "index")) v.push_back(e.path());
    return v;
  };
  ASSERT_EQ(index_files().size(), 1u);
  fs::resize_file(index_files()[0], fs::file_size(index_files()[0]) / 2);
  json c = check_json();
  EXPECT_EQ(last_check_exit_, 1);
  EXPECT_FALSE(c["errors"].empty());
  RunResult rs = dlc({"backup", "restore", "--repo", repo_, "--target", (dir_ / "x").string()});
  EXPECT_EQ(rs.exit_code, 4);
  EXPECT_NE(rs.err.find("repair index"), std::string::npos) << rs.err;
  RunResult rep = dlc({"--json", "backup", "repair", "index", "--repo", repo_});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_GT(json::parse(rep.out)["blobs_indexed"].get<int>(), 6);
  c = check_json();
  EXPECT_EQ(last_check_exit_, 0) << c.dump(2);
  // Deleted outright: the snapshot's blobs are lost until repair.
  for (auto& f : index_files()) fs::remove(f);
  c = check_json(false);
  EXPECT_EQ(last_check_exit_, 1);
  EXPECT_FALSE(c["damaged_blobs"].empty());
  ASSERT_EQ(dlc({"backup", "repair", "index", "--repo", repo_}).exit_code, 0);
  EXPECT_EQ(check_json()["ok"], true);
  ASSERT_EQ(dlc({"backup", "restore", "--repo", repo_, "--target", (dir_ / "out").string(), "--verify"}).exit_code, 0);
  EXPECT_EQ(contents(dir_ / "out" / src_.relative_path()), contents(src_));
}

TEST_F(Reliability, TwoConcurrentBackupsBothSucceed) {
  make_files(src_ / "a", 10, 1 << 20, 400);
  make_files(src_ / "b", 10, 1 << 20, 500);
  const std::string cmd = env_prefix() + DLC_BINARY " -q backup backup --repo " + repo_ + " ";
  RunResult r = run_shell("(" + cmd + (src_ / "a").string() + " & " + cmd + (src_ / "b").string() +
                          " & wait %1; a=$?; wait %2; b=$?; echo $a $b)");
  EXPECT_EQ(r.out, "0 0\n") << r.err;
  RunResult s = dlc({"--json", "backup", "snapshots", "--repo", repo_});
  EXPECT_EQ(json::parse(s.out).size(), 2u);
  EXPECT_EQ(check_json()["ok"], true);
}

TEST_F(Reliability, PruneRefusesOrWaitsWhileABackupHoldsTheLock) {
  make_files(src_, 2, 100 * 1024, 600);
  ASSERT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  // Hold the shared lock as a running backup, restore or check does.
  int fd = ::open((fs::path(repo_) / "lock").c_str(), O_RDWR);
  ASSERT_EQ(::flock(fd, LOCK_SH), 0);
  RunResult p = dlc({"backup", "prune", "--repo", repo_});
  EXPECT_EQ(p.exit_code, 3) << p.err;
  EXPECT_NE(p.err.find("locked"), std::string::npos);
  // Backups share the lock meanwhile.
  EXPECT_EQ(dlc({"backup", "backup", "--repo", repo_, src_.string()}).exit_code, 0);
  std::thread release([fd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::flock(fd, LOCK_UN);
    ::close(fd);
  });
  p = dlc({"backup", "prune", "--repo", repo_, "--lock-wait", "10"});
  release.join();
  EXPECT_EQ(p.exit_code, 0) << p.err;
}

}  // namespace
