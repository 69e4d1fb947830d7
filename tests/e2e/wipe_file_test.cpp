// `dlc wipe file|dir|free-space` end to end on filesystems made on loop
// devices this test creates: names gone, old content gone from the raw device
// (a marker is looked for in the backing file), symlinks never followed, and
// copy-on-write filesystems reported honestly.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "support/test_support.h"

using dlc::test::LoopDevice;
using dlc::test::run_dlc;
using dlc::test::run_shell;
using dlc::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Runs an undo command (umount, swapoff) when the test ends, however it ends:
// a failed ASSERT or an exception leaves the test body early, and a loop
// device that stays mounted or swapped on could not be detached.
class Undo {
 public:
  explicit Undo(std::string command) : command_(std::move(command)) {}
  ~Undo() { now(); }
  void now() {
    if (!command_.empty()) dlc::test::run_shell(command_);
    command_.clear();
  }

 private:
  std::string command_;
};
std::string unmount_cmd(const std::string& dir) {
  return "umount " + dir + " 2>/dev/null || umount -l " + dir;
}

// Reads the whole backing file with O_DIRECT (not through the page cache) and
// looks for marker.
bool raw_contains(const fs::path& file, const std::string& marker) {
  int fd = ::open(file.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  constexpr std::size_t kChunk = 1 << 20;
  void* buf = nullptr;
  if (::posix_memalign(&buf, 4096, kChunk) != 0) return false;
  std::string carry;
  bool found = false;
  for (off_t off = 0; !found; off += kChunk) {
    ssize_t n = ::pread(fd, buf, kChunk, off);
    if (n <= 0) break;
    std::string window = carry + std::string(static_cast<char*>(buf), static_cast<std::size_t>(n));
    found = window.find(marker) != std::string::npos;
    carry = window.substr(window.size() > marker.size() ? window.size() - marker.size() : 0);
  }
  ::free(buf);
  ::close(fd);
  return found;
}

std::string new_marker() {
  return "DLC-MARKER-" + dlc::crypto::to_hex(dlc::crypto::random_bytes(12));
}

std::string marked_content(const std::string& marker, std::size_t size) {
  std::string s;
  while (s.size() < size) s += marker + "|customer 6222020200112233445|";
  s.resize(size);
  return s;
}

// A filesystem of type fstype on a loop device, mounted on a temp dir.
class MountedFs {
 public:
  MountedFs(std::uint64_t size, const std::string& mkfs) : loop_(size) {
    ok_ = run_shell(mkfs + " " + loop_.device() + " >/dev/null 2>&1").exit_code == 0 &&
          run_shell("mount " + loop_.device() + " " + mnt_.path().string()).exit_code == 0;
  }
  ~MountedFs() { unmount(); }
  void unmount() {
    if (ok_) run_shell(unmount_cmd(mnt_.path().string()));
    ok_ = false;
  }
  bool ok() const { return ok_; }
  fs::path operator/(const std::string& n) const { return mnt_.path() / n; }
  const fs::path& mnt() const { return mnt_.path(); }
  const fs::path& backing() const { return loop_.backing_file(); }

 private:
  LoopDevice loop_;
  TempDir mnt_;
  bool ok_ = false;
};

json parse_json(const std::string& s) {
  try {
    return json::parse(s);
  } catch (...) {
    ADD_FAILURE() << "not JSON: " << s;
    return json::object();
  }
}

}  // namespace

TEST(WipeFileCli, OldContentIsGoneFromTheRawDeviceAndNoNameIsLeft) {
  DLC_REQUIRE_LOOP_DEVICES();
  MountedFs f(64 << 20, "mkfs.ext4 -q -F");
  ASSERT_TRUE(f.ok());
  const std::string marker = new_marker();
  fs::create_directories(f / "tenant");
  dlc::test::write_file(f / "tenant" / "accounts.csv", marked_content(marker, 300000));
  run_shell("sync");
  ASSERT_TRUE(raw_contains(f.backing(), marker)) << "the marker must be on the device before";

  TempDir home;
  auto r = run_dlc({"--json", "wipe", "file", (f / "tenant" / "accounts.csv").string(), "--method",
                    "random", "--yes"},
                   {}, {{"DLC_HOME", home.path().string()}});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  json rep = parse_json(r.out);
  const json& t = rep["targets"][0];
  EXPECT_EQ(t["outcome"], "sanitized");
  EXPECT_EQ(t["evidence"]["verification"]["result"], "passed");
  EXPECT_EQ(t["identity"]["filesystem"]["fstype"], "ext4");
  EXPECT_TRUE(t["evidence"]["io"]["direct_io"].get<bool>());
  EXPECT_TRUE(fs::is_empty(f / "tenant")) << "no file and no renamed leftover";
  auto v = run_dlc({"verify", "certificate", t["certificate"].get<std::string>()}, {},
                   {{"DLC_HOME", home.path().string()}});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  f.unmount();
  EXPECT_FALSE(raw_contains(f.backing(), marker)) << "old content still on the raw device";
}

TEST(WipeFileCli, SymlinksAreRefusedAndTheirTargetsUntouched) {
  TempDir d, home;
  dlc::test::write_file(d / "real.txt", "keep me\n");
  fs::create_symlink(d / "real.txt", d / "link");
  auto r = run_dlc({"wipe", "file", (d / "link").string(), "--yes"}, {},
                   {{"DLC_HOME", home.path().string()}});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(dlc::test::read_file(d / "real.txt"), "keep me\n");
  EXPECT_TRUE(fs::is_symlink(d / "link"));
}

TEST(WipeFileCli, HardLinkedFilesNeedForce) {
  TempDir d, home;
  dlc::test::write_file(d / "a", "shared data\n");
  fs::create_hard_link(d / "a", d / "b");
  auto r = run_dlc({"wipe", "file", (d / "a").string(), "--yes"}, {}, {{"DLC_HOME", home.path().string()}});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(dlc::test::read_file(d / "b"), "shared data\n");
  auto f = run_dlc({"wipe", "file", (d / "a").string(), "--yes", "--force"}, {},
                   {{"DLC_HOME", home.path().string()}});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_FALSE(fs::exists(d / "a"));
  EXPECT_EQ(fs::file_size(d / "b"), 0u) << "the other name keeps no data";
}

TEST(WipeDirCli, WipesTheTreeNamesIncludedWithoutFollowingSymlinksOut) {
  DLC_REQUIRE_LOOP_DEVICES();
  MountedFs f(64 << 20, "mkfs.ext4 -q -F");
  ASSERT_TRUE(f.ok());
  TempDir outside, home;
  dlc::test::write_file(outside / "victim.txt", "outside the tree\n");
  const std::string marker = new_marker();
  fs::path root = f / "tenant-42";
  fs::create_directories(root / "a" / "b");
  dlc::test::write_file(root / "top.db", marked_content(marker, 70000));
  dlc::test::write_file(root / "a" / "mid.log", marked_content(marker, 5000));
  dlc::test::write_file(root / "a" / "b" / "deep.bin", marked_content(marker, 1 << 20));
  dlc::test::write_file(root / "a" / "empty", "");
  fs::create_symlink(outside / "victim.txt", root / "a" / "escape");
  fs::create_directory_symlink(outside.path(), root / "a" / "escape-dir");
  ASSERT_EQ(::mkfifo((root / "a" / "fifo").c_str(), 0600), 0);
  run_shell("sync");
  auto r = run_dlc({"--json", "wipe", "dir", root.string(), "--yes"}, {},
                   {{"DLC_HOME", home.path().string()}});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  json t = parse_json(r.out)["targets"][0];
  EXPECT_EQ(t["outcome"], "sanitized");
  EXPECT_EQ(t["identity"]["files"], 4);
  EXPECT_EQ(t["identity"]["other_names"], 3);
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::is_empty(f.mnt()) ||
              (fs::exists(f / "lost+found") &&
               std::distance(fs::directory_iterator(f.mnt()), fs::directory_iterator()) == 1));
  EXPECT_EQ(dlc::test::read_file(outside / "victim.txt"), "outside the tree\n");
  f.unmount();
  EXPECT_FALSE(raw_contains(f.backing(), marker));
}

TEST(WipeFreeSpaceCli, ClearsTheSpaceOfDeletedData) {
  DLC_REQUIRE_LOOP_DEVICES();
  MountedFs f(32 << 20, "mkfs.ext4 -q -F");
  ASSERT_TRUE(f.ok());
  const std::string marker = new_marker();
  dlc::test::write_file(f / "old.csv", marked_content(marker, 2 << 20));
  run_shell("sync");
  fs::remove(f / "old.csv");
  run_shell("sync");
  f.unmount();
  ASSERT_TRUE(raw_contains(f.backing(), marker)) << "deleted data stays on the device";
  // Mount again and clear the free space.
  TempDir home;
  ASSERT_TRUE(fs::exists(f.backing()));
  std::string dev = dlc::test::run_shell("losetup -j " + f.backing().string() + " | cut -d: -f1").out;
  while (!dev.empty() && dev.back() == '\n') dev.pop_back();
  Undo unmount(unmount_cmd(f.mnt().string()));
  ASSERT_EQ(run_shell("mount " + dev + " " + f.mnt().string()).exit_code, 0);
  auto r = run_dlc({"--json", "wipe", "free-space", f.mnt().string(), "--method", "zero"}, {},
                   {{"DLC_HOME", home.path().string()}});
  json t = parse_json(r.out)["targets"][0];
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(t["outcome"], "sanitized");
  EXPECT_GT(t["evidence"]["bytes_filled"].get<std::uint64_t>(), 20u << 20);
  EXPECT_EQ(t["evidence"]["verification"]["result"], "passed");
  unmount.now();
  EXPECT_FALSE(raw_contains(f.backing(), marker));
}

TEST(WipeFileCli, CopyOnWriteFilesystemsAreReportedHonestly) {
  DLC_REQUIRE_LOOP_DEVICES();
  if (run_shell("command -v mkfs.btrfs").exit_code != 0) GTEST_SKIP() << "btrfs-progs not installed";
  MountedFs f(128 << 20, "mkfs.btrfs -q -f");
  if (!f.ok()) GTEST_SKIP() << "cannot make or mount btrfs here";
  dlc::test::write_file(f / "secret.txt", marked_content(new_marker(), 100000));
  run_shell("sync");
  TempDir home;
  auto r = run_dlc({"--json", "wipe", "file", (f / "secret.txt").string(), "--yes"}, {},
                   {{"DLC_HOME", home.path().string()}});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json t = parse_json(r.out)["targets"][0];
  EXPECT_EQ(t["outcome"], "overwritten-not-erased");
  EXPECT_EQ(t["evidence"]["assurance"], "none");
  bool says_cow = false, recommends = false;
  for (const auto& w : t["warnings"]) {
    says_cow |= w.get<std::string>().find("copy-on-write") != std::string::npos;
    recommends |= w.get<std::string>().find("crypto-erase") != std::string::npos;
  }
  EXPECT_TRUE(says_cow);
  EXPECT_TRUE(recommends);
}
