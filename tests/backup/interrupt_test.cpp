// A backup stopped mid-way (SIGINT sets stop_requested()) while chunks are
// queued for the workers: the queued jobs still point into the files being
// read, which must outlive the workers (run under ASan this catches a
// use-after-free); the repository stays valid and the next backup succeeds.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <random>
#include <thread>

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

TEST(Interrupt, StoppingABackupMidwayLeavesAValidRepository) {
  test::TempDir dir;
  test::write_file(dir / "pass", "interrupt test passphrase\n");
  ::setenv("DLC_PASSPHRASE_FILE", (dir / "pass").c_str(), 1);
  ::setenv("DLC_HOME", (dir / "home").c_str(), 1);
  const fs::path src = dir / "src";
  for (int d = 0; d < 4; ++d) {
    fs::create_directories(src / std::to_string(d));
    for (int f = 0; f < 8; ++f)
      test::write_file(src / std::to_string(d) / std::to_string(f), random_string(768 << 10, 100 * d + f));
  }
  InitOptions io;
  io.repo = dir / "repo";
  io.scrypt_n = 1 << 12;
  io.chunker = {16 * 1024, 64 * 1024, 256 * 1024};  // many chunks in flight
  init(io);
  BackupOptions bo;
  bo.repo = io.repo;
  bo.key.prompt = false;
  bo.threads = 2;
  bo.paths = {src};
  int interrupted = 0;
  for (int delay_ms : {0, 2, 5, 10, 20, 40}) {
    SCOPED_TRACE(delay_ms);
    stop_requested() = false;
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      stop_requested() = true;
    });
    try {
      run_backup(bo);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::interrupted) << e.what();
      ++interrupted;
    }
    stopper.join();
    stop_requested() = false;
    CheckOptions co;
    static_cast<RepoOptions&>(co) = bo;
    co.read_data = true;
    co.state_dir = dir / "state";
    const CheckResult c = run_check(co);
    EXPECT_TRUE(c.ok) << to_json(c).dump(2);
  }
  EXPECT_GT(interrupted, 0);
  bo.force_read = true;
  const BackupResult r = run_backup(bo);
  EXPECT_EQ(r.bytes_read, 32u * (768u << 10));
}

}  // namespace
}  // namespace dlc::backup
