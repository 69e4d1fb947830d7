// Progress reporting of backup, restore, check --read-data and the
// verification job, through a recording ProgressSink: one task each, its
// total the bytes the operation goes through, updates monotonic and never past
// the total, the last one the total, then end(ok).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <mutex>
#include <random>

#include "backup/backup.h"
#include "backup/progress.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

class RecordingSink final : public ProgressSink {
 public:
  struct Task {
    std::string label;
    std::uint64_t total = 0;
    std::vector<std::uint64_t> updates;
    bool ended = false, ok = false;
  };
  int begin(std::string label, std::uint64_t total) override {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back({std::move(label), total, {}, false, false});
    return static_cast<int>(tasks_.size()) - 1;
  }
  void update(int task, std::uint64_t done) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& t = tasks_.at(static_cast<std::size_t>(task));
    EXPECT_FALSE(t.ended) << t.label << ": update after end";
    t.updates.push_back(done);
  }
  void end(int task, bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& t = tasks_.at(static_cast<std::size_t>(task));
    EXPECT_FALSE(t.ended) << t.label << ": ended twice";
    t.ended = true;
    t.ok = ok;
  }
  std::vector<Task> tasks() {
    std::lock_guard<std::mutex> lock(mu_);
    return tasks_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<Task> tasks_;
};

// A finished task: monotonic updates, none past the total, the last the total.
void expect_complete(const RecordingSink::Task& t, const std::string& label, std::uint64_t total,
                     std::size_t min_updates) {
  SCOPED_TRACE(label);
  EXPECT_EQ(t.label, label);
  EXPECT_EQ(t.total, total);
  EXPECT_TRUE(t.ended);
  EXPECT_TRUE(t.ok);
  ASSERT_FALSE(t.updates.empty());
  for (std::size_t i = 1; i < t.updates.size(); ++i) EXPECT_LE(t.updates[i - 1], t.updates[i]) << "update " << i;
  for (auto u : t.updates) EXPECT_LE(u, total);
  EXPECT_EQ(t.updates.back(), total);
  // Reported as it goes, not only at the end.
  EXPECT_GE(t.updates.size(), min_updates);
}

std::string random_string(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(dir_ / "pass", "progress test passphrase\n");
    ::setenv("DLC_PASSPHRASE_FILE", (dir_ / "pass").c_str(), 1);
    ::setenv("DLC_HOME", (dir_ / "home").c_str(), 1);
    src_ = dir_ / "src";
    fs::create_directories(src_ / "a" / "b");
    test::write_file(src_ / "a" / "random.bin", random_string(3 << 20, 1));
    test::write_file(src_ / "a" / "copy.bin", random_string(3 << 20, 1));  // dedups
    std::string text;
    for (int i = 0; i < 40000; ++i) text.append("line ").append(std::to_string(i)).append(" of a log\n");
    test::write_file(src_ / "a" / "b" / "log.txt", text);
    test::write_file(src_ / "empty", "");
    test::write_file(src_ / "skip.tmp", random_string(1 << 20, 2));  // excluded
    fs::create_symlink("a/random.bin", src_ / "link");
    src_bytes_ = 2 * (3u << 20) + text.size();
    InitOptions io;
    io.repo = dir_ / "repo";
    io.scrypt_n = 1 << 12;
    io.chunker = {64 * 1024, 256 * 1024, 1024 * 1024};
    init(io);
  }
  template <typename T>
  T opts() {
    T o;
    o.repo = dir_ / "repo";
    o.key.prompt = false;
    o.progress = &sink_;
    return o;
  }
  BackupOptions backup_opts() {
    auto o = opts<BackupOptions>();
    o.paths = {src_};
    o.excludes = {"*.tmp"};
    return o;
  }

  test::TempDir dir_;
  fs::path src_;
  std::uint64_t src_bytes_ = 0;
  RecordingSink sink_;
};

TEST_F(ProgressTest, BackupReportsBytesOfThePreWalkedTotal) {
  BackupResult r = run_backup(backup_opts());
  EXPECT_EQ(r.bytes_read, src_bytes_);
  auto tasks = sink_.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  expect_complete(tasks[0], "backup", src_bytes_, 8);  // per chunk (>= 256 KiB apart)

  // An unchanged backup reads nothing, yet goes through every file.
  sink_.clear();
  r = run_backup(backup_opts());
  EXPECT_EQ(r.bytes_read, 0u);
  EXPECT_EQ(r.files_unmodified, 4u);  // with the empty one
  tasks = sink_.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].total, src_bytes_);
  EXPECT_TRUE(tasks[0].ok);
  ASSERT_FALSE(tasks[0].updates.empty());
  EXPECT_EQ(tasks[0].updates.back(), src_bytes_);
}

TEST_F(ProgressTest, RestoreCheckAndVerifyJobReachTheirTotals) {
  run_backup(backup_opts());
  sink_.clear();

  auto ro = opts<RestoreOptions>();
  ro.target = dir_ / "out";
  RestoreResult rr = run_restore(ro);
  EXPECT_TRUE(rr.failed.empty());
  EXPECT_EQ(rr.bytes, src_bytes_);
  auto tasks = sink_.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  expect_complete(tasks[0], "restore", src_bytes_, 8);

  sink_.clear();
  auto co = opts<CheckOptions>();
  co.read_data = true;
  co.state_dir = dir_ / "state";
  CheckResult cr = run_check(co);
  EXPECT_TRUE(cr.ok);
  tasks = sink_.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  expect_complete(tasks[0], "read data", cr.bytes_total, 1);  // per pack
  EXPECT_EQ(cr.bytes_read, cr.bytes_total);

  // Structure only: no data task.
  sink_.clear();
  co.read_data = false;
  run_check(co);
  EXPECT_TRUE(sink_.tasks().empty());

  sink_.clear();
  auto vo = opts<VerifyBackupOptions>();
  vo.state_dir = dir_ / "state";
  vo.against = src_;
  VerifyBackupResult vr = run_verify_backup(vo);
  EXPECT_TRUE(vr.ok()) << vr.report.dump(2);
  tasks = sink_.tasks();
  ASSERT_EQ(tasks.size(), 2u);
  expect_complete(tasks[0], "read data", vr.check.bytes_total, 1);
  expect_complete(tasks[1], "compare with source", src_bytes_, 3);  // per file
}

TEST_F(ProgressTest, AFailedOperationEndsItsTaskNotOk) {
  stop_requested() = true;  // as after SIGINT: the backup stops at once
  EXPECT_THROW(run_backup(backup_opts()), Error);
  stop_requested() = false;
  auto tasks = sink_.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].label, "backup");
  EXPECT_TRUE(tasks[0].ended);
  EXPECT_FALSE(tasks[0].ok);
}

TEST(ProgressTask, NullSinksAndClamping) {
  ProgressTask none(nullptr, "x", 10);
  none.add(5);
  none.finish(true);
  ProgressTask null(&null_progress(), "x", 10);
  EXPECT_FALSE(null.active());

  RecordingSink sink;
  {
    ProgressTask t(&sink, "grew", 1000000);
    t.add(100);     // below the 256 KiB step: not reported yet
    t.add(599900);
    t.add(600000);  // the file grew while it was read: shown as the total, no more
    t.add(600000);
    t.finish(true);
  }
  auto tasks = sink.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].updates, (std::vector<std::uint64_t>{600000, 1000000}));
  EXPECT_TRUE(tasks[0].ok);
}

}  // namespace
}  // namespace dlc::backup
