// File wipes through the library: only data extents are overwritten (holes
// stay holes), a failed verification keeps the file, filesystem facts are
// read, and the refusals of dir and free-space wipes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include "core/audit_log.h"
#include "support/test_support.h"
#include "wipe/fs_facts.h"
#include "wipe/wipe.h"

using namespace dlc;
using namespace dlc::wipe;
using dlc::test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Env {
  TempDir home;
  std::unique_ptr<audit::AuditLog> log;
  WipeOptions opts;
  Env() {
    log = std::make_unique<audit::AuditLog>(home / "audit.jsonl",
                                            audit::HostKey::load_or_create(home.path()));
    opts.audit = log.get();
    opts.yes = true;
    opts.cert_dir = home / "certs";
    opts.method = "zero";
  }
};

void pwrite_at(const fs::path& p, off_t off, const std::string& data) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), off), static_cast<ssize_t>(data.size()));
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

TEST(FileWipe, OnlyDataExtentsAreOverwrittenAndTheFileIsRemoved) {
  TempDir d;
  Env env;
  fs::path f = d / "sparse.db";
  pwrite_at(f, 0, std::string(100, 'a'));
  pwrite_at(f, 64 << 20, std::string(5000, 'b'));  // a 64 MiB hole in between
  JobReport r = wipe_files({f.string()}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  const auto& io = r.targets[0].evidence["io"];
  EXPECT_EQ(io["extents"], 2);
  EXPECT_EQ(io["bytes_covered"], 4096 + 8192);  // each extent widened to 4 KiB blocks
  EXPECT_FALSE(fs::exists(f));
  EXPECT_TRUE(fs::is_empty(d.path()));
  EXPECT_TRUE(fs::exists(r.targets[0].certificate_path));
}

TEST(FileWipe, AFailedVerificationKeepsTheFileAndSaysWhere) {
  TempDir d;
  Env env;
  fs::path f = d / "keys.pem";
  pwrite_at(f, 0, std::string(3 * 4096, 'k'));
  env.opts.before_verify = [](const std::string& path, unsigned) { pwrite_at(path, 4096, "X"); };
  JobReport r = wipe_files({f.string()}, env.opts);
  EXPECT_EQ(r.code, Errc::check_failed);
  const TargetReport& t = r.targets[0];
  EXPECT_EQ(t.outcome, "verification-failed");
  EXPECT_EQ(t.evidence["verification"]["first_mismatches"][0]["offset"], 4096);
  EXPECT_TRUE(fs::exists(f));
}

TEST(FileWipe, FilesystemFactsNameTheFilesystemAndItsMedium) {
  TempDir d;
  fs::path f = d / "x";
  pwrite_at(f, 0, "x");
  int fd = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  FsFacts facts = examine_fs(f.string(), fd, true);
  ::close(fd);
  EXPECT_FALSE(facts.fstype.empty());
  EXPECT_FALSE(facts.mountpoint.empty());
  EXPECT_FALSE(facts.shared_extents);
  EXPECT_FALSE(facts.assurance().empty());
  if (facts.fstype == "ext4") {
    EXPECT_FALSE(facts.cow);
    EXPECT_NE(facts.assurance(), "none");
  }
}

TEST(FileWipe, RefusalsOfDirectoryAndFreeSpaceWipes) {
  Env env;
  TempDir d;
  fs::create_directory_symlink(d.path(), d / "loop");
  EXPECT_THROW(wipe_dir((d / "loop").string(), env.opts), Error);
  EXPECT_TRUE(fs::exists(d.path()));
  // A mount point is refused (a tmpfs this test mounts: were the check broken,
  // only the test's own file would be at stake).
  TempDir mnt;
  if (::geteuid() == 0 && test::run_shell("mount -t tmpfs -o size=1m dlc-test " + mnt.path().string()).exit_code == 0) {
    struct Unmount {
      std::string dir;
      ~Unmount() { test::run_shell("umount " + dir + " 2>/dev/null || umount -l " + dir); }
    } unmount{mnt.path().string()};
    test::write_file(mnt / "keep", "keep\n");
    try {
      wipe_dir(mnt.path().string(), env.opts);
      ADD_FAILURE() << "wiping a mount point was not refused";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::refused);
    }
    EXPECT_EQ(test::read_file(mnt / "keep"), "keep\n");
  }
  try {
    wipe_free_space(d.path().string(), env.opts);  // a plain directory, not a mount point
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
  }
}
