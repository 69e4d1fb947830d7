// The migration engines through the library: a byte damaged after the copy
// and before verification is caught and re-sent by the next run; passes over
// a live source send what changed; volumes between loop devices (and image
// files) verify, and a damaged chunk is named by its offset.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include <fstream>

#include "backup/backup.h"
#include "core/error.h"
#include "migrate/migrate.h"
#include "support/test_support.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;

void flip(const fs::path& p, std::uint64_t offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x20));
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u + seed;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

// Built with append: GCC 12 warns falsely (-Wrestrict) on "f" + std::to_string(...).
std::string fname(int i) {
  std::string n("f");
  n.append(std::to_string(i));
  return n;
}

class Engine : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("DLC_HOME", (t_.path() / "home").c_str(), 1); }
  migrate::MigrateOptions opts(const fs::path& src, const fs::path& dst) {
    migrate::MigrateOptions o;
    o.source = src.string();
    o.destination = dst.string();
    o.verify = true;
    return o;
  }
  TempDir t_;
};

TEST_F(Engine, DamageBeforeVerificationIsCaughtAndResentNextTime) {
  const fs::path src = t_.path() / "src", dst = t_.path() / "dst";
  fs::create_directories(src / "d");
  write_file(src / "d/a.bin", pattern(300000, 1));
  write_file(src / "b.txt", "bee\n");
  auto o = opts(src, dst);
  o.before_verify = [&](const fs::path& root) { flip(root / "d/a.bin", 4242); };
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verification-failed");
  EXPECT_EQ(r.code, Errc::check_failed);
  ASSERT_TRUE(r.comparison);
  ASSERT_FALSE(r.comparison->differences.empty());
  EXPECT_EQ(r.comparison->differences[0].path, "d/a.bin");
  EXPECT_EQ(r.comparison->differences[0].kind, "content");
  EXPECT_NE(r.source_root, r.dest_root);
  o.before_verify = nullptr;
  const auto again = migrate::run_migrate(o);
  EXPECT_EQ(again.outcome, "verified");
  EXPECT_EQ(again.files_sent, 1u);
  EXPECT_EQ(again.files_skipped, 1u);
  EXPECT_EQ(again.source_root, again.dest_root);
  EXPECT_EQ(read_file(dst / "d/a.bin"), read_file(src / "d/a.bin"));
}

// The destination's filesystem refuses O_DIRECT (ramfs): files are written
// buffered, made durable by the batch's fdatasync wave, and re-read after
// their pages are dropped; the manifest says so, and damage is still caught.
TEST_F(Engine, ATreeToAFilesystemThatRefusesODirectVerifies) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a ramfs";
  const fs::path src = t_.path() / "src", mnt = t_.path() / "ram";
  fs::create_directories(src / "d");
  fs::create_directories(mnt);
  for (int i = 0; i < 30; ++i) write_file(src / "d" / fname(i), pattern(static_cast<std::size_t>(i) * 70001 + 1, i));
  write_file(src / "big.bin", pattern((9u << 20) + 3, 99));
  ASSERT_EQ(::mount("dlc-test", mnt.c_str(), "ramfs", 0, "mode=0700"), 0) << std::strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const int probe = ::open((mnt / "probe").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
  if (probe >= 0) {
    ::close(probe);
    GTEST_SKIP() << "ramfs accepts O_DIRECT on this kernel";
  }
  ::unlink((mnt / "probe").c_str());
  auto o = opts(src, mnt / "dst");
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified");
  EXPECT_EQ(r.files_sent, 31u);
  EXPECT_EQ(r.source_root, r.dest_root);
  EXPECT_EQ(r.document["destination"]["read_method"], "fadvise-dontneed");
  // Every byte was re-read from the destination (the profile counts them).
  std::uint64_t bytes = 0;
  for (const auto& f : fs::recursive_directory_iterator(src))
    if (f.is_regular_file()) bytes += f.file_size();
  EXPECT_EQ(r.document["transfer"]["profile"]["reread_bytes"].get<std::uint64_t>(), bytes);
  EXPECT_EQ(read_file(mnt / "dst/big.bin"), read_file(src / "big.bin"));
  auto o2 = o;
  o2.restart = true;
  o2.before_verify = [&](const fs::path& root) { flip(root / "d" / fname(7), 100); };
  const auto bad = migrate::run_migrate(o2);
  EXPECT_EQ(bad.outcome, "verification-failed");
}

TEST_F(Engine, PassesOverALiveSourceSendWhatChanged) {
  const fs::path src = t_.path() / "src", dst = t_.path() / "dst";
  fs::create_directories(src);
  for (int i = 0; i < 5; ++i) write_file(src / fname(i), pattern(50000, static_cast<unsigned>(i)));
  auto o = opts(src, dst);
  o.passes = 3;
  bool changed = false;
  o.after_commit = [&](std::uint64_t) {
    if (changed) return;
    changed = true;  // the application keeps writing during the bulk pass
    write_file(src / "f2", "rewritten while migrating");
    write_file(src / "new", "created while migrating");
    fs::remove(src / "f4");
  };
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified") << (r.comparison && !r.comparison->differences.empty()
                                           ? r.comparison->differences[0].path + " " + r.comparison->differences[0].kind
                                           : "");
  EXPECT_EQ(r.passes_run, 2u);
  EXPECT_EQ(read_file(dst / "f2"), "rewritten while migrating");
  EXPECT_EQ(read_file(dst / "new"), "created while migrating");
  EXPECT_FALSE(fs::exists(dst / "f4"));
  EXPECT_EQ(r.files_removed, 1u);
}

TEST_F(Engine, BandwidthLimitIsHonoured) {
  const fs::path src = t_.path() / "src", dst = t_.path() / "dst";
  fs::create_directories(src);
  write_file(src / "x", pattern(3 << 20, 7));
  auto o = opts(src, dst);
  o.bwlimit = 4 << 20;  // 3 MiB at 4 MiB/s: at least 0.75 s
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = migrate::run_migrate(o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.outcome, "verified");
  EXPECT_GE(s, 0.7);
}

TEST_F(Engine, BackupIsTakenBeforeTheFirstByteMovesAndOnlyOnce) {
  const fs::path src = t_.path() / "src", dst = t_.path() / "dst", repo = t_.path() / "repo";
  fs::create_directories(src);
  write_file(src / "ledger.csv", pattern(200000, 5));
  backup::InitOptions io;
  io.repo = repo;
  io.key.key_file = (t_.path() / "repo.key").string();
  io.key.prompt = false;
  backup::init(io);
  auto o = opts(src, dst);
  o.backup_repo = repo;
  o.backup_key = io.key;
  bool copied_before_backup = false;
  o.after_commit = [&](std::uint64_t) {
    backup::RepoOptions ro;
    ro.repo = repo;
    ro.key = io.key;
    copied_before_backup |= backup::list_snapshots(ro).empty();
  };
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified");
  EXPECT_FALSE(copied_before_backup);
  ASSERT_TRUE(r.backup.is_object());
  const std::string snap = r.backup["snapshot"];
  EXPECT_FALSE(snap.empty());
  EXPECT_EQ(r.document["backup"]["snapshot"], snap);
  const auto again = migrate::run_migrate(o);  // resumed: the same snapshot is reused
  EXPECT_EQ(again.backup["snapshot"], snap);
  backup::RepoOptions ro;
  ro.repo = repo;
  ro.key = io.key;
  EXPECT_EQ(backup::list_snapshots(ro).size(), 1u);
}

TEST_F(Engine, ImageToImageVerifiesAndResumesByChunk) {
  const fs::path img = t_.path() / "src.img", out = t_.path() / "out.img";
  write_file(img, pattern((70 << 20) + 1234, 3));  // 3 chunks, unaligned tail
  auto o = opts(img, out);
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified");
  EXPECT_EQ(r.files_sent, 3u);
  EXPECT_EQ(read_file(out), read_file(img));
  // Where the time went, per phase (a volume's profile used to be empty).
  const auto& prof = r.document["transfer"]["profile"];
  for (const char* k : {"source_read_ms", "source_hash_ms", "write_ms", "sync_ms", "copy_wall_ms", "verify_wall_ms"})
    EXPECT_TRUE(prof.contains(k) && prof[k].is_number_unsigned()) << k << ": " << prof.dump();
  const auto again = migrate::run_migrate(o);
  EXPECT_EQ(again.outcome, "verified");
  EXPECT_EQ(again.files_sent, 0u);
  EXPECT_EQ(again.files_skipped, 3u);
}

// Rewrites n bytes of an image at offset, as an application writing to a
// live volume would (durably, so O_DIRECT readers see it).
void rewrite(const fs::path& p, std::uint64_t offset, const std::string& bytes) {
  const int fd = ::open(p.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
  ::fdatasync(fd);
  ::close(fd);
}

TEST_F(Engine, PassesOverALiveVolumeSendOnlyTheChunksThatChanged) {
  const fs::path img = t_.path() / "src.img", out = t_.path() / "out.img";
  write_file(img, pattern((96 << 20) + 512, 4));  // 4 chunks, unaligned tail
  auto o = opts(img, out);
  o.passes = 3;
  o.threads = 1;  // chunks in order: chunk 0 is sent when the hook first runs
  o.after_commit = [&](std::uint64_t sent) {
    // The application writes to chunks already sent: chunk 0, then the tail.
    if (sent == 1) rewrite(img, 100, "written while migrating");
    if (sent == 4) rewrite(img, (96 << 20) + 500, "tail!");
  };
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified") << (r.comparison && !r.comparison->differences.empty()
                                           ? r.comparison->differences[0].detail
                                           : "");
  // The second pass re-read everything and sent the two changed chunks; the
  // third re-read found no change (for a volume, that check is a pass).
  EXPECT_EQ(r.passes_run, 3u);
  EXPECT_EQ(r.files_sent, 6u);  // 4 + chunk 0 + the tail chunk
  EXPECT_EQ(read_file(out), read_file(img));
  EXPECT_EQ(r.document["transfer"]["passes"], 3);
}

TEST_F(Engine, TheFinalCheckOfAVolumeFailsWhenTheSourceStillChangesAndTheNextRunSendsIt) {
  const fs::path img = t_.path() / "src.img", out = t_.path() / "out.img";
  write_file(img, pattern(70 << 20, 5));  // 3 chunks
  auto o = opts(img, out);
  o.final_pass = true;
  o.threads = 1;
  bool changed = false;
  o.after_commit = [&](std::uint64_t) {
    if (changed) return;
    changed = true;
    rewrite(img, (32 << 20) - 3, "spans chunks 0 and 1?");  // chunk 0 sent; 1 not yet read
  };
  const auto r = migrate::run_migrate(o);
  // Chunk 1 was read after the write and is consistent; chunk 0 is not.
  EXPECT_EQ(r.outcome, "verification-failed");
  EXPECT_EQ(r.code, Errc::check_failed);
  EXPECT_EQ(r.passes_run, 2u);  // the copy and the final check
  ASSERT_TRUE(r.comparison);
  ASSERT_EQ(r.comparison->differences.size(), 1u);
  EXPECT_EQ(r.comparison->differences[0].kind, "source-changed");
  EXPECT_NE(r.comparison->differences[0].detail.find("offset 0:"), std::string::npos)
      << r.comparison->differences[0].detail;

  // Quiesced: the next run sends chunk 0 again (nothing else) and the final check passes.
  o.after_commit = nullptr;
  const auto again = migrate::run_migrate(o);
  EXPECT_EQ(again.outcome, "verified");
  EXPECT_EQ(again.files_sent, 1u);
  EXPECT_EQ(again.files_skipped, 2u);
  EXPECT_EQ(again.passes_run, 2u);
  EXPECT_EQ(read_file(out), read_file(img));
}

TEST_F(Engine, DeviceToDeviceBetweenLoopDevicesVerifies) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice a(96 << 20), b(128 << 20);
  {
    const int fd = ::open(a.device().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string data = pattern(96 << 20, 9);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    ::fsync(fd);
    ::close(fd);
  }
  auto o = opts(a.device(), b.device());
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified");
  EXPECT_EQ(r.source_root, r.dest_root);
  EXPECT_EQ(r.bytes_sent, 96u << 20);

  // Damage the destination's second chunk before verification of a fresh run.
  auto o2 = o;
  o2.restart = true;
  o2.before_verify = [&](const fs::path& dev) {
    const int fd = ::open(dev.c_str(), O_RDWR);
    char c = 'X';
    ::pwrite(fd, &c, 1, (32 << 20) + 5);
    ::fsync(fd);
    ::close(fd);
  };
  const auto bad = migrate::run_migrate(o2);
  EXPECT_EQ(bad.outcome, "verification-failed");
  ASSERT_TRUE(bad.comparison && !bad.comparison->differences.empty());
  EXPECT_NE(bad.comparison->differences[0].detail.find("offset 33554432"), std::string::npos)
      << bad.comparison->differences[0].detail;

  // A smaller destination is refused before anything is written.
  LoopDevice small(64 << 20);
  try {
    migrate::run_migrate(opts(a.device(), small.device()));
    FAIL() << "a smaller device was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
  }
}

}  // namespace
}  // namespace dlc::test
