// `dlc wipe device` end to end, on loop devices this test creates: the
// interlocks refuse (exit 3) and leave the data intact, kill -9 then --resume
// finishes and verifies, certificates verify and a changed byte fails.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

using dlc::test::LoopDevice;
using dlc::test::run_dlc;
using dlc::test::run_shell;
using dlc::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

extern char** environ;

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

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A loop device with partition scanning (losetup -P) over a file this test creates.
class PartitionedLoop {
 public:
  explicit PartitionedLoop(std::uint64_t size) {
    file_ = dir_ / "disk.img";
    run_shell("fallocate -l " + std::to_string(size) + " " + file_.string());
    auto r = run_shell("losetup -P --find --show --direct-io=on " + file_.string());
    if (r.exit_code != 0) throw std::runtime_error("losetup -P failed: " + r.err);
    dev_ = trim(r.out);
  }
  ~PartitionedLoop() {
    if (!dev_.empty()) run_shell("losetup -d " + dev_);
  }
  const std::string& device() const { return dev_; }

 private:
  TempDir dir_;
  fs::path file_;
  std::string dev_;
};

std::map<std::string, std::string> home_env(const TempDir& home) {
  return {{"DLC_HOME", home.path().string()}};
}

std::string marker_file_check(const std::string& mnt) {
  return dlc::test::read_file(fs::path(mnt) / "precious.txt");
}

// Mounts an ext4 filesystem holding precious.txt on dev at dir.
bool make_fs_and_mount(const std::string& dev, const fs::path& dir) {
  if (run_shell("mkfs.ext4 -q -F " + dev).exit_code != 0) return false;
  fs::create_directories(dir);
  if (run_shell("mount " + dev + " " + dir.string()).exit_code != 0) return false;
  dlc::test::write_file(dir / "precious.txt", "tenant data that must survive a refused wipe\n");
  run_shell("sync");
  return true;
}

json parse_json(const std::string& s) {
  try {
    return json::parse(s);
  } catch (...) {
    ADD_FAILURE() << "not JSON: " << s;
    return json::object();
  }
}

pid_t spawn_dlc(const std::vector<std::string>& args, const TempDir& home) {
  std::vector<std::string> argv{DLC_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "DLC_HOME=", 9) != 0) envs.emplace_back(*e);
  envs.push_back("DLC_HOME=" + home.path().string());
  std::vector<char*> av, ev;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  for (auto& e : envs) ev.push_back(e.data());
  ev.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, av[0], &fa, nullptr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// The one journal under home/journal, parsed (null when none yet).
json read_journal(const TempDir& home) {
  std::error_code ec;
  for (fs::directory_iterator it(home / "journal", ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    try {
      return json::parse(dlc::test::read_file(it->path()));
    } catch (...) {
    }
  }
  return nullptr;
}

bool device_is_all(const std::string& dev, unsigned char value) {
  int fd = ::open(dev.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  void* buf = nullptr;
  if (::posix_memalign(&buf, 4096, 1 << 20) != 0) return false;
  bool ok = true;
  for (off_t off = 0;; off += 1 << 20) {
    ssize_t n = ::pread(fd, buf, 1 << 20, off);
    if (n <= 0) break;
    auto* p = static_cast<unsigned char*>(buf);
    for (ssize_t i = 0; i < n; ++i)
      if (p[i] != value) ok = false;
  }
  ::free(buf);
  ::close(fd);
  return ok;
}

}  // namespace

TEST(WipeDeviceCli, WipesVerifiesAndIssuesACertificateThatVerifies) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(32 << 20);
  TempDir home;
  auto r = run_dlc({"--json", "wipe", "device", loop.device(), "--method", "dod-3pass", "--yes",
                    "--operator", "Li Wei", "--organisation", "Example Bank", "--witness",
                    "Zhang Min", "--asset", "A-1029", "--destination", "recycling"},
                   {}, home_env(home));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json rep = parse_json(r.out);
  ASSERT_EQ(rep["targets"].size(), 1u);
  const json& t = rep["targets"][0];
  EXPECT_EQ(t["outcome"], "sanitized");
  EXPECT_EQ(t["identity"]["transport"], "loop");
  EXPECT_EQ(t["identity"]["size_bytes"], 32 << 20);
  EXPECT_EQ(t["evidence"]["passes"].size(), 3u);
  const std::string cert = t["certificate"];
  const std::string pub = (home / "host-key.pub").string();
  auto v = run_dlc({"verify", "certificate", cert, "--pubkey", pub}, {}, home_env(home));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("valid"), std::string::npos);
  auto linked = run_dlc({"verify", "certificate", cert, "--pubkey", pub, "--check-audit"}, {},
                        home_env(home));
  EXPECT_EQ(linked.exit_code, 0) << linked.err;
  EXPECT_NE(linked.out.find("audit record linked"), std::string::npos) << linked.out;
  auto html = run_dlc({"verify", "certificate", cert, "--render", "html"}, {}, home_env(home));
  EXPECT_NE(html.out.find("Zhang Min"), std::string::npos);

  // One changed byte: exit 1.
  std::string text = dlc::test::read_file(cert);
  std::size_t at = text.find("A-1029");
  ASSERT_NE(at, std::string::npos);
  text[at] = 'B';
  dlc::test::write_file(cert, text);
  auto bad = run_dlc({"verify", "certificate", cert, "--pubkey", pub}, {}, home_env(home));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("NOT valid"), std::string::npos);

  // The audit log holds the job and verifies.
  auto a = run_shell("grep -c '\"wipe device\"' " + (home / "audit.jsonl").string());
  EXPECT_GE(std::stoi(trim(a.out)), 2);
}

TEST(WipeDeviceCli, WithoutATerminalAndWithoutYesItIsRefused) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(16 << 20);
  TempDir home;
  auto r = run_dlc({"wipe", "device", loop.device()}, {}, home_env(home));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("--yes"), std::string::npos) << r.err;
}

TEST(WipeDeviceCli, OnATerminalTheOperatorMustTypeTheDeviceName) {
  DLC_REQUIRE_LOOP_DEVICES();
  if (run_shell("command -v script").exit_code != 0) GTEST_SKIP() << "script(1) is not installed";
  LoopDevice loop(16 << 20);
  TempDir home;
  const std::string cmd = std::string(DLC_BINARY) + " wipe device " + loop.device() + " --method zero";
  auto typed = [&](const std::string& answer) {
    return run_shell("printf '" + answer + "\\n' | DLC_HOME=" + home.path().string() +
                     " script -qec '" + cmd + "' /dev/null");
  };
  auto wrong = typed("/dev/sda");
  EXPECT_EQ(wrong.exit_code, 3) << wrong.out;
  EXPECT_NE(wrong.out.find("Type the device name"), std::string::npos) << wrong.out;
  EXPECT_NE(wrong.out.find("transport loop"), std::string::npos) << wrong.out;
  auto right = typed(loop.device());
  EXPECT_EQ(right.exit_code, 0) << right.out;
  EXPECT_NE(right.out.find("sanitized"), std::string::npos) << right.out;
}

TEST(WipeDeviceCli, AMountedDeviceIsRefusedAndLeftIntact) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(32 << 20);
  TempDir home, mnt;
  Undo unmount(unmount_cmd(mnt.path().string()));
  ASSERT_TRUE(make_fs_and_mount(loop.device(), mnt.path()));
  auto r = run_dlc({"wipe", "device", loop.device(), "--yes", "--force"}, {}, home_env(home));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("mounted"), std::string::npos) << r.err;
  EXPECT_EQ(marker_file_check(mnt.path().string()), "tenant data that must survive a refused wipe\n");
  run_shell("umount " + mnt.path().string());
  // Still a valid ext4 with the file after unmounting.
  ASSERT_EQ(run_shell("mount " + loop.device() + " " + mnt.path().string()).exit_code, 0);
  EXPECT_EQ(marker_file_check(mnt.path().string()), "tenant data that must survive a refused wipe\n");
}

TEST(WipeDeviceCli, AMountedPartitionRefusesTheWholeDisk) {
  DLC_REQUIRE_LOOP_DEVICES();
  if (run_shell("command -v sfdisk").exit_code != 0) GTEST_SKIP() << "sfdisk (fdisk) is not installed";
  PartitionedLoop disk(64 << 20);
  ASSERT_EQ(run_shell("printf 'label: gpt\\n,20M\\n,\\n' | sfdisk -q " + disk.device()).exit_code, 0);
  run_shell("partx -u " + disk.device() + " 2>/dev/null; udevadm settle 2>/dev/null; sleep 0.2");
  const std::string p2 = disk.device() + "p2";
  if (!fs::exists(p2)) GTEST_SKIP() << "the kernel did not create " << p2;
  TempDir home, mnt;
  Undo unmount(unmount_cmd(mnt.path().string()));
  ASSERT_TRUE(make_fs_and_mount(p2, mnt.path()));
  auto whole = run_dlc({"wipe", "device", disk.device(), "--yes"}, {}, home_env(home));
  EXPECT_EQ(whole.exit_code, 3);
  EXPECT_NE(whole.err.find("mounted"), std::string::npos) << whole.err;
  auto sibling = run_dlc({"wipe", "device", disk.device() + "p1", "--yes"}, {}, home_env(home));
  EXPECT_EQ(sibling.exit_code, 3) << sibling.err;
  EXPECT_EQ(marker_file_check(mnt.path().string()), "tenant data that must survive a refused wipe\n");
  unmount.now();
  // The partition table survived.
  EXPECT_NE(run_shell("sfdisk -d " + disk.device()).out.find("gpt"), std::string::npos);
}

TEST(WipeDeviceCli, ActiveSwapIsRefused) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(32 << 20);
  ASSERT_EQ(run_shell("mkswap " + loop.device() + " >/dev/null").exit_code, 0);
  if (run_shell("swapon " + loop.device()).exit_code != 0) GTEST_SKIP() << "swapon not possible";
  Undo swapoff("swapoff " + loop.device());
  TempDir home;
  auto r = run_dlc({"wipe", "device", loop.device(), "--yes", "--force"}, {}, home_env(home));
  swapoff.now();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("swap"), std::string::npos) << r.err;
  EXPECT_NE(run_shell("blkid -p " + loop.device()).out.find("swap"), std::string::npos);
}

TEST(WipeDeviceCli, HoldersAreRefused) {
  DLC_REQUIRE_LOOP_DEVICES();
  if (!fs::exists("/dev/mapper/control") || run_shell("command -v dmsetup").exit_code != 0)
    GTEST_SKIP() << "device-mapper is not available in this kernel (the holder logic is covered "
                    "by the fake-sysfs tests in test_wipe_interlocks)";
  LoopDevice loop(32 << 20);
  const std::string name = "dlc-test-" + std::to_string(::getpid());
  if (run_shell("dmsetup create " + name + " --table '0 65536 linear " + loop.device() + " 0'")
          .exit_code != 0)
    GTEST_SKIP() << "dmsetup create failed";
  Undo remove("dmsetup remove " + name);
  TempDir home;
  auto r = run_dlc({"wipe", "device", loop.device(), "--yes", "--force"}, {}, home_env(home));
  remove.now();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("holders"), std::string::npos) << r.err;
}

TEST(WipeDeviceCli, KillDashNineThenResumeFinishesVerifiesAndRecordsTheInterruption) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(64 << 20);
  TempDir home;
  pid_t pid = spawn_dlc({"wipe", "device", loop.device(), "--method", "one", "--yes",
                         "--rate-limit", "24M", "--checkpoint", "4M"},
                        home);
  ASSERT_GT(pid, 0);
  // Wait until the journal shows progress into the pass, then kill -9.
  json j;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    j = read_journal(home);
    if (!j.is_null() && j["phase"] == "write" && j["offset"].get<std::uint64_t>() >= (8u << 20)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(j.is_null()) << "no journal appeared";
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  j = read_journal(home);
  const std::uint64_t offset = j["offset"];
  ASSERT_GT(offset, 0u);
  ASSERT_LT(offset, 64u << 20) << "the wipe finished before it could be killed";
  EXPECT_FALSE(device_is_all(loop.device(), 0xff));

  // Without --resume a new wipe is refused (the journal says one is unfinished).
  auto again = run_dlc({"wipe", "device", loop.device(), "--yes"}, {}, home_env(home));
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;

  auto r = run_dlc({"--json", "wipe", "device", loop.device(), "--resume", "--yes"}, {},
                   home_env(home));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json rep = parse_json(r.out);
  const json& t = rep["targets"][0];
  EXPECT_EQ(t["outcome"], "sanitized");
  EXPECT_EQ(t["evidence"]["verification"]["result"], "passed");
  ASSERT_EQ(t["evidence"]["interruptions"].size(), 1u);
  EXPECT_EQ(t["evidence"]["interruptions"][0]["offset"], offset);
  EXPECT_EQ(t["evidence"]["passes"][0]["resumed_at_offset"], offset);
  EXPECT_TRUE(device_is_all(loop.device(), 0xff));
  json cert = json::parse(dlc::test::read_file(t["certificate"].get<std::string>()));
  EXPECT_EQ(cert["interruptions"].size(), 1u);
  EXPECT_TRUE(read_journal(home).is_null()) << "the journal is deleted at the end";
  auto v = run_dlc({"verify", "certificate", t["certificate"].get<std::string>()}, {}, home_env(home));
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

TEST(WipeDeviceCli, SigtermStopsWithExit130AndTheWipeResumes) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(32 << 20);
  TempDir home;
  pid_t pid = spawn_dlc({"wipe", "device", loop.device(), "--method", "random", "--yes",
                         "--rate-limit", "16M", "--checkpoint", "2M"},
                        home);
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    json j = read_journal(home);
    if (!j.is_null() && j["offset"].get<std::uint64_t>() >= (4u << 20)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  ASSERT_FALSE(read_journal(home).is_null());
  auto r = run_dlc({"wipe", "device", loop.device(), "--resume", "--yes"}, {}, home_env(home));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(WipeDeviceCli, UsageErrorsExitTwo) {
  TempDir home;
  EXPECT_EQ(run_dlc({"wipe", "device"}, {}, home_env(home)).exit_code, 2);
  EXPECT_EQ(run_dlc({"wipe", "device", "/dev/null", "--method", "gutmann", "--yes"}, {}, home_env(home)).exit_code, 2);
  EXPECT_EQ(run_dlc({"wipe", "bogus"}, {}, home_env(home)).exit_code, 2);
  EXPECT_EQ(run_dlc({"wipe", "device", "--help"}, {}, home_env(home)).exit_code, 0);
  EXPECT_EQ(run_dlc({"verify", "no-such-check", "x"}, {}, home_env(home)).exit_code, 2);
}
