// The scheduled verification job: coverage over runs, signed report,
// Prometheus metrics, damage, and comparison against the live source.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <set>

#include "backup/backup.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

std::string random_string(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class VerifyJob : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(dir_ / "pass", "verify-me\n");
    ::setenv("DLC_PASSPHRASE_FILE", (dir_ / "pass").c_str(), 1);
    ::setenv("DLC_HOME", (dir_ / "home").c_str(), 1);
    InitOptions io;
    io.repo = dir_ / "repo";
    io.scrypt_n = 1 << 12;
    io.chunker = {64 * 1024, 256 * 1024, 1024 * 1024};
    init(io);
    src_ = dir_ / "src";
    // Four backups of new data: several packs to spread over runs.
    for (unsigned b = 0; b < 4; ++b) {
      fs::create_directories(src_ / std::to_string(b));
      for (unsigned i = 0; i < 3; ++i)
        test::write_file(src_ / std::to_string(b) / std::string("f").append(std::to_string(i)),
                        random_string(300 * 1024, b * 10 + i));
      BackupOptions bo = base<BackupOptions>();
      bo.paths = {src_};
      run_backup(bo);
    }
  }
  template <typename T>
  T base() {
    T o;
    o.repo = dir_ / "repo";
    o.key.prompt = false;
    return o;
  }
  VerifyBackupOptions job() {
    auto o = base<VerifyBackupOptions>();
    o.state_dir = dir_ / "state";
    o.report_file = dir_ / "report.json";
    o.metrics_file = dir_ / "dlc_backup.prom";
    return o;
  }
  test::TempDir dir_;
  fs::path src_;
};

TEST_F(VerifyJob, SubsetRunsCoverEverythingLeastRecentlyVerifiedFirst) {
  auto o = job();
  o.subset_percent = 25;
  std::uint64_t total = 0, never = ~std::uint64_t{0};
  for (int run = 1; run <= 4; ++run) {
    VerifyBackupResult r = run_verify_backup(o);
    EXPECT_TRUE(r.ok());
    total = r.check.packs_total;
    EXPECT_GT(r.check.packs_read, 0u);
    EXPECT_LT(r.check.packs_read, total);
    if (run == 1) {
      EXPECT_GT(r.check.packs_never_verified, 0u);
    }
    // Unverified packs go first, so coverage only grows until it is complete.
    EXPECT_TRUE(r.check.packs_never_verified < never || r.check.packs_never_verified == 0);
    never = r.check.packs_never_verified;
  }
  EXPECT_EQ(never, 0u) << "4 runs of 25% did not cover everything";
  ASSERT_GE(total, 4u);
}

TEST_F(VerifyJob, ReportIsSignedAndMetricsAreWritten) {
  VerifyBackupResult r = run_verify_backup(job());
  ASSERT_TRUE(r.ok());
  const std::string text = test::read_file(dir_ / "report.json");
  nlohmann::json report = nlohmann::json::parse(text);
  EXPECT_EQ(report["format"], "dlc-backup-verify-report/1");
  EXPECT_TRUE(verify_report_signature(report));
  report["ok"] = false;  // tampering breaks the signature
  EXPECT_FALSE(verify_report_signature(report));
  const std::string prom = test::read_file(dir_ / "dlc_backup.prom");
  EXPECT_NE(prom.find("dlc_backup_verify_ok{repo=\"" + (dir_ / "repo").string() + "\"} 1"), std::string::npos) << prom;
  EXPECT_NE(prom.find("# TYPE dlc_backup_verify_packs_never_verified gauge"), std::string::npos);
}

TEST_F(VerifyJob, DamageFailsTheJob) {
  fs::path pack;
  for (auto& e : fs::recursive_directory_iterator(dir_ / "repo" / "data"))
    if (e.is_regular_file() && e.file_size() > 200 * 1024) pack = e.path();
  ASSERT_FALSE(pack.empty());
  int fd = ::open(pack.c_str(), O_RDWR);
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, 5000), 1);
  b ^= 1;
  ASSERT_EQ(::pwrite(fd, &b, 1, 5000), 1);
  ::close(fd);
  VerifyBackupResult r = run_verify_backup(job());
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.check.damaged_blobs.empty());
  EXPECT_NE(test::read_file(dir_ / "dlc_backup.prom").find("dlc_backup_verify_ok{repo=\"" + (dir_ / "repo").string() + "\"} 0"),
            std::string::npos);
  EXPECT_TRUE(verify_report_signature(nlohmann::json::parse(test::read_file(dir_ / "report.json"))));
}

TEST_F(VerifyJob, AgainstTheLiveSourceSeparatesChangesFromCorruption) {
  auto o = job();
  o.against = src_;
  VerifyBackupResult r = run_verify_backup(o);
  EXPECT_TRUE(r.ok()) << r.against.dump(2);
  EXPECT_EQ(r.against["compared"], 16);
  // An ordinary edit (new mtime) is a change, not damage.
  test::write_file(src_ / "0" / "f0", "edited");
  test::write_file(src_ / "new-file", "x");
  // Same size and mtime, other bytes: silent corruption.
  const fs::path victim = src_ / "1" / "f1";
  struct stat st{};
  ::stat(victim.c_str(), &st);
  std::string data = test::read_file(victim);
  data[1234] ^= 0x55;
  test::write_file(victim, data);
  timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, victim.c_str(), times, 0);
  r = run_verify_backup(o);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.against["corrupt"], nlohmann::json::array({victim.string()}));
  EXPECT_EQ(r.against["changed"], nlohmann::json::array({(src_ / "0" / "f0").string()}));
  EXPECT_EQ(r.against["added"], nlohmann::json::array({(src_ / "new-file").string()}));
}

}  // namespace
}  // namespace dlc::backup
