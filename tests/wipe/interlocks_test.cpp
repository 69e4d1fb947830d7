// Interlocks: against a fake sysfs/procfs tree for the stacks this machine
// cannot build (dm, md, btrfs members, root on dm), against the real system
// for the running root filesystem (read-only: nothing is opened for writing),
// and against real loop devices the test creates. Real dm and md holders on a
// real kernel are in the QEMU guest (tests/e2e/nvme_qemu_test.cpp).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

#include "support/test_support.h"
#include "wipe/device_info.h"
#include "wipe/interlocks.h"

using namespace dlc::wipe;
namespace fs = std::filesystem;
using dlc::test::TempDir;

namespace {

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text << "\n";
}

bool mentions(const InterlockReport& r, const std::string& word) {
  for (const auto& s : r.refusals)
    if (s.find(word) != std::string::npos) return true;
  return false;
}

// A fake tree: disk sdx (8:16) with partition sdx1 (8:17); disk sdy (8:32)
// under dm-1 (253:1); dm-0 (253:0) holds sdx1.
struct FakeSys {
  TempDir dir;
  SysPaths paths;
  FakeSys() {
    paths.sys = dir / "sys";
    paths.mountinfo = dir / "mountinfo";
    paths.swaps = dir / "swaps";
    paths.dev = dir / "dev";
    disk("sdx", "8:16");
    part("sdx1", "sdx", "8:17");
    disk("sdy", "8:32");
    disk("dm-0", "253:0");
    disk("dm-1", "253:1");
    put(paths.sys / "class/block/dm-1/slaves/sdy/.keep", "");
    put(paths.mountinfo, "22 1 254:0 / / rw - ext4 /dev/vda rw");
    put(paths.swaps, "Filename Type Size Used Priority");
  }
  void disk(const std::string& n, const std::string& devnum) {
    put(paths.sys / "class/block" / n / "dev", devnum);
    put(paths.sys / "dev/block" / devnum / "name", n);
    fs::create_directories(paths.sys / "class/block" / n / "holders");
  }
  void part(const std::string& n, const std::string& parent, const std::string& devnum) {
    disk(n, devnum);
    put(paths.sys / "class/block" / n / "partition", "1");
    put(paths.sys / "class/block" / n / "parent", parent);
  }
  DeviceIdentity id(const std::string& name) {
    DeviceIdentity d;
    d.name = d.disk = name;
    d.node = "/dev/" + name;
    d.size = 1 << 30;
    return d;
  }
};

}  // namespace

TEST(Interlocks, AnIdleDiskPasses) {
  FakeSys f;
  EXPECT_TRUE(check_interlocks(f.id("sdx"), f.paths).ok());
  EXPECT_EQ(disk_and_partitions("sdx", f.paths), (std::set<std::string>{"sdx", "sdx1"}));
}

TEST(Interlocks, HoldersOfAPartitionRefuseTheWholeDiskNamingTheChain) {
  FakeSys f;
  put(f.paths.sys / "class/block/sdx1/holders/dm-0/.keep", "");
  put(f.paths.sys / "class/block/dm-0/dm/name", "vg0-data");
  auto r = check_interlocks(f.id("sdx"), f.paths);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "sdx1 <- dm-0 (dm vg0-data)"));
}

TEST(Interlocks, DmHoldersAreNamedByTheSubsystemThatMadeThem) {
  // lvm2, cryptsetup and multipathd put their prefix in the dm uuid.
  FakeSys f;
  put(f.paths.sys / "class/block/sdx1/holders/dm-0/.keep", "");
  put(f.paths.sys / "class/block/dm-0/dm/name", "vg0-data");
  put(f.paths.sys / "class/block/dm-0/dm/uuid", "LVM-abcDEF0123456789abcDEF0123456789abcDEF0123456789abcDEF01\n");
  put(f.paths.sys / "class/block/dm-0/holders/dm-1/.keep", "");
  put(f.paths.sys / "class/block/dm-1/dm/name", "secret");
  put(f.paths.sys / "class/block/dm-1/dm/uuid", "CRYPT-LUKS2-0123456789abcdef-secret");
  auto r = check_interlocks(f.id("sdx"), f.paths);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "sdx1 <- dm-0 (LVM logical volume vg0-data) <- dm-1 (dm-crypt secret)"));
}

TEST(Interlocks, AnMdHolderIsNamedWithItsLevel) {
  // As the real kernel shows it (tests/nvme/guest_init.sh builds one): the
  // member's holders/ lists md0, and md0/md/level names the personality.
  FakeSys f;
  put(f.paths.sys / "class/block/sdy/holders/md0/.keep", "");
  put(f.paths.sys / "class/block/md0/md/level", "raid1");
  auto r = check_interlocks(f.id("sdy"), f.paths);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "has holders: sdy <- md0 (md raid1)"));
  // An array still being assembled has no level yet.
  put(f.paths.sys / "class/block/sdx/holders/md1/.keep", "");
  fs::create_directories(f.paths.sys / "class/block/md1/md");
  EXPECT_TRUE(mentions(check_interlocks(f.id("sdx"), f.paths), "sdx <- md1 (md array)"));
}

TEST(Interlocks, AMountedPartitionRefusesTheDisk) {
  FakeSys f;
  put(f.paths.mountinfo, "22 1 254:0 / / rw - ext4 /dev/vda rw\n40 22 8:17 / /srv rw - xfs /dev/sdx1 rw");
  auto r = check_interlocks(f.id("sdx"), f.paths);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "is mounted: /dev/sdx1 on /srv"));
  EXPECT_TRUE(check_interlocks(f.id("sdy"), f.paths).ok());
}

TEST(Interlocks, RootOnDeviceMapperRefusesItsSlaveDisk) {
  FakeSys f;
  put(f.paths.mountinfo, "22 1 253:1 / / rw - ext4 /dev/mapper/root rw");
  auto r = check_interlocks(f.id("sdy"), f.paths);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "backs the running system"));
}

TEST(Interlocks, MountPointNamesWithSpacesAreDecoded) {
  FakeSys f;
  put(f.paths.mountinfo, "40 22 8:17 / /mnt/my\\040disk rw - ext4 /dev/sdx1 rw");
  auto r = check_interlocks(f.id("sdx"), f.paths);
  EXPECT_TRUE(mentions(r, "/mnt/my disk"));
}

TEST(Interlocks, BtrfsMembersAndReadOnlyDevicesAreRefused) {
  FakeSys f;
  put(f.paths.sys / "fs/btrfs/1234-uuid/devices/sdx1/.keep", "");
  EXPECT_TRUE(mentions(check_interlocks(f.id("sdx"), f.paths), "btrfs"));
  DeviceIdentity ro = f.id("sdy");
  ro.read_only = true;
  EXPECT_TRUE(mentions(check_interlocks(ro, f.paths), "read-only"));
}

TEST(Interlocks, TheRunningRootFilesystemsDiskIsRefused) {
  // Reads the real mount table and sysfs; opens nothing for writing.
  struct stat st {};
  ASSERT_EQ(::stat("/", &st), 0);
  if (::major(st.st_dev) == 0) GTEST_SKIP() << "root has an anonymous device number here";
  std::string name = block_name_of(::major(st.st_dev), ::minor(st.st_dev));
  if (name.empty()) GTEST_SKIP() << "root is not on a block device";
  DeviceIdentity id;
  id.name = name;
  id.node = "/dev/" + name;
  id.disk = name;
  if (fs::exists("/sys/class/block/" + name + "/partition"))
    id.disk = fs::canonical("/sys/class/block/" + name).parent_path().filename().string();
  auto r = check_interlocks(id);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "backs the running system")) << r.refusals.front();
}

TEST(Interlocks, RealLoopDeviceIdentityAndIdleCheck) {
  DLC_REQUIRE_LOOP_DEVICES();
  dlc::test::LoopDevice loop(16 << 20);
  DeviceIdentity id = read_device_identity(loop.device());
  EXPECT_EQ(id.transport, "loop");
  EXPECT_EQ(id.size, 16u << 20);
  EXPECT_EQ(id.loop_backing, loop.backing_file().string());
  EXPECT_TRUE(id.loop_direct_io);
  EXPECT_EQ(id.logical_sector, 512u);
  EXPECT_EQ(id.stable_id().rfind("loop-backing:", 0), 0u);
  EXPECT_TRUE(check_interlocks(id).ok());
  std::string why;
  EXPECT_TRUE(exclusive_open_possible(id.node, &why)) << why;
}

TEST(Interlocks, RealActiveSwapIsRefusedAndExclusiveOpenFails) {
  DLC_REQUIRE_LOOP_DEVICES();
  dlc::test::LoopDevice loop(16 << 20);
  if (dlc::test::run_shell("mkswap " + loop.device() + " >/dev/null && swapon " + loop.device())
          .exit_code != 0)
    GTEST_SKIP() << "swapon is not possible here";
  struct SwapOff {
    std::string dev;
    ~SwapOff() { dlc::test::run_shell("swapoff " + dev); }  // even if a check throws
  } swapoff{loop.device()};
  DeviceIdentity id = read_device_identity(loop.device());
  auto r = check_interlocks(id);
  std::string why;
  bool excl = exclusive_open_possible(id.node, &why);
  auto sigs = probe_signatures(id);
  EXPECT_TRUE(mentions(r, "swap"));
  EXPECT_FALSE(excl);
  ASSERT_FALSE(sigs.empty());
  EXPECT_NE(sigs[0].find("swap"), std::string::npos) << sigs[0];
}
