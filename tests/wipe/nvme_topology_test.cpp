// Mapping NVMe devices to controller and namespace through sysfs, on a fake
// sysfs tree laid out as Linux 6.1 lays it out (real symlinks), with device
// nodes made by mknod in a temporary directory (only stat()ed, never opened):
// a plain controller with a partitioned namespace, a native-multipath
// subsystem whose block devices hang off nvme-subsys1 with two controllers
// (one resetting), a controller character device, and a SCSI disk.
#include "wipe/nvme_topology.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "support/test_support.h"

using namespace dlc::wipe;
using namespace dlc::wipe::nvme;
using dlc::test::TempDir;
using dlc::test::write_file;
namespace fs = std::filesystem;

namespace {

class FakeSys {
 public:
  FakeSys() {
    sys_ = tmp_ / "sys";
    dev_ = tmp_ / "dev";
    fs::create_directories(dev_);
    const std::string pci = "devices/pci0000:00/0000:00:04.0/nvme/";
    // Controller nvme0, namespace nvme0n1 with a partition.
    ctrl("nvme0", pci + "nvme0", "live", "DLCTEST0001", "nqn.2019-08.org.qemu:DLCTEST0001");
    dir(pci + "nvme0/nvme0n1");
    file(pci + "nvme0/nvme0n1/nsid", "1");
    file(pci + "nvme0/nvme0n1/size", "131072");
    file(pci + "nvme0/nvme0n1/queue/logical_block_size", "512");
    link(pci + "nvme0/nvme0n1/device", "../../nvme0");
    dir(pci + "nvme0/nvme0n1/nvme0n1p1");
    file(pci + "nvme0/nvme0n1/nvme0n1p1/partition", "1");
    block("nvme0n1", pci + "nvme0/nvme0n1", 259, 0);
    block("nvme0n1p1", pci + "nvme0/nvme0n1/nvme0n1p1", 259, 1);
    subsys("nvme-subsys0", {{"nvme0", pci + "nvme0"}}, "nqn.2019-08.org.qemu:DLCTEST0001");

    // Native multipath: nvme-subsys1 with controllers nvme1 (resetting) and nvme2 (live).
    const std::string pci2 = "devices/pci0000:00/0000:00:05.0/nvme/";
    const std::string pci3 = "devices/pci0000:00/0000:00:06.0/nvme/";
    ctrl("nvme1", pci2 + "nvme1", "resetting", "DLCTEST0002", "nqn.2019-08.org.qemu:dlcsub");
    ctrl("nvme2", pci3 + "nvme2", "live", "DLCTEST0002", "nqn.2019-08.org.qemu:dlcsub");
    const std::string vs = "devices/virtual/nvme-subsystem/nvme-subsys1/";
    for (int n : {1, 2}) {
      const std::string head = "nvme1n" + std::to_string(n);
      dir(vs + head);
      file(vs + head + "/nsid", std::to_string(n));
      file(vs + head + "/size", "65536");
      link(vs + head + "/device", "../../nvme-subsys1");
      block(head, vs + head, 259, 1 + n);
      for (const auto& [c, base] :
           {std::pair{std::string("nvme1"), pci2}, std::pair{std::string("nvme2"), pci3}}) {
        const std::string path = c + "c" + c.substr(4) + "n" + std::to_string(n);
        dir(base + c + "/" + path);
        file(base + c + "/" + path + "/nsid", std::to_string(n));
        link("class/block/" + path, "../../" + base + c + "/" + path);
      }
    }
    subsys("nvme-subsys1", {{"nvme1", pci2 + "nvme1"}, {"nvme2", pci3 + "nvme2"}},
           "nqn.2019-08.org.qemu:dlcsub");
    link(vs + "nvme1n1/../nvme1n1x", "nvme1n1");  // noise the mapper must ignore
    // Controller character devices.
    link("dev/char/247:1", "../../" + pci2 + "nvme1");
    node("nvme1", S_IFCHR, 247, 1);
    link("dev/char/247:0", "../../" + pci + "nvme0");
    node("nvme0", S_IFCHR, 247, 0);
    // A SCSI disk.
    dir("devices/pci0000:00/0000:00:07.0/host0/target0:0:0/0:0:0:0/block/sda");
    link("devices/pci0000:00/0000:00:07.0/host0/target0:0:0/0:0:0:0/block/sda/device",
         "../../../0:0:0:0");
    block("sda", "devices/pci0000:00/0000:00:07.0/host0/target0:0:0/0:0:0:0/block/sda", 8, 0);
  }

  SysPaths paths() const {
    SysPaths p;
    p.sys = sys_;
    p.dev = dev_;
    return p;
  }
  std::string dev(const std::string& name) const { return (dev_ / name).string(); }

 private:
  void dir(const std::string& rel) { fs::create_directories(sys_ / rel); }
  void file(const std::string& rel, const std::string& text) {
    fs::create_directories((sys_ / rel).parent_path());
    write_file(sys_ / rel, text + "\n");
  }
  void link(const std::string& rel, const std::string& target) {
    fs::create_directories((sys_ / rel).parent_path());
    fs::create_symlink(target, sys_ / rel);
  }
  void node(const std::string& name, mode_t type, unsigned maj, unsigned min) {
    ASSERT_EQ(::mknod((dev_ / name).c_str(), type | 0600, ::makedev(maj, min)), 0) << name;
  }
  void block(const std::string& name, const std::string& rel, unsigned maj, unsigned min) {
    link("class/block/" + name, "../../" + rel);
    link("dev/block/" + std::to_string(maj) + ":" + std::to_string(min), "../../" + rel);
    node(name, S_IFBLK, maj, min);
  }
  void ctrl(const std::string& name, const std::string& rel, const std::string& state,
            const std::string& serial, const std::string& nqn) {
    file(rel + "/state", state);
    file(rel + "/model", "QEMU NVMe Ctrl                          ");
    file(rel + "/serial", serial + "        ");
    file(rel + "/firmware_rev", "7.2.22  ");
    file(rel + "/subsysnqn", nqn);
    file(rel + "/transport", "pcie");
    link("class/nvme/" + name, "../../" + rel);
  }
  void subsys(const std::string& name, std::vector<std::pair<std::string, std::string>> ctrls,
              const std::string& nqn) {
    const std::string rel = "devices/virtual/nvme-subsystem/" + name;
    file(rel + "/subsysnqn", nqn);
    for (const auto& [c, target] : ctrls) link(rel + "/" + c, "../../../../" + target);
    link("class/nvme-subsystem/" + name, "../../" + rel);
  }

  TempDir tmp_;
  fs::path sys_, dev_;
};

bool can_mknod() { return ::geteuid() == 0; }

}  // namespace

TEST(NvmeTopology, ANamespaceMapsToItsControllerAndNsid) {
  if (!can_mknod()) GTEST_SKIP() << "mknod needs root";
  FakeSys f;
  auto t = map_nvme(f.dev("nvme0n1"), f.paths());
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->controller_target);
  EXPECT_FALSE(t->partition);
  EXPECT_FALSE(t->multipath);
  EXPECT_EQ(t->block, "nvme0n1");
  EXPECT_EQ(t->nsid, 1u);
  EXPECT_EQ(t->controller, "nvme0");
  EXPECT_EQ(t->controller_node, f.dev("nvme0"));
  EXPECT_EQ(t->subsystem, "nvme-subsys0");
  EXPECT_EQ(t->subsysnqn, "nqn.2019-08.org.qemu:DLCTEST0001");
  ASSERT_EQ(t->namespaces.size(), 1u);
  EXPECT_EQ(t->block_of(1), "nvme0n1");
  EXPECT_EQ(t->to_json()["admin_device"], f.dev("nvme0"));
}

TEST(NvmeTopology, APartitionMapsToItsNamespaceAndSaysSo) {
  if (!can_mknod()) GTEST_SKIP() << "mknod needs root";
  FakeSys f;
  auto t = map_nvme(f.dev("nvme0n1p1"), f.paths());
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->partition);
  EXPECT_EQ(t->block, "nvme0n1");
  EXPECT_EQ(t->nsid, 1u);
  EXPECT_EQ(t->controller, "nvme0");
}

TEST(NvmeTopology, NativeMultipathGoesThroughTheSubsystemToALiveController) {
  if (!can_mknod()) GTEST_SKIP() << "mknod needs root";
  FakeSys f;
  auto t = map_nvme(f.dev("nvme1n2"), f.paths());
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->multipath);
  EXPECT_EQ(t->subsystem, "nvme-subsys1");
  EXPECT_EQ(t->nsid, 2u);
  EXPECT_EQ(t->controllers, (std::vector<std::string>{"nvme1", "nvme2"}));
  EXPECT_EQ(t->controller, "nvme2");  // nvme1 is resetting
  EXPECT_EQ(t->controller_node, f.dev("nvme2"));
  EXPECT_EQ(t->subsysnqn, "nqn.2019-08.org.qemu:dlcsub");
  ASSERT_EQ(t->namespaces.size(), 2u);  // the hidden per-path nvme1c1n1 are not namespaces
  EXPECT_EQ(t->block_of(1), "nvme1n1");
  EXPECT_EQ(t->block_of(2), "nvme1n2");
}

TEST(NvmeTopology, AControllerCharacterDeviceNamesEveryNamespaceItReaches) {
  if (!can_mknod()) GTEST_SKIP() << "mknod needs root";
  FakeSys f;
  auto t = map_nvme(f.dev("nvme1"), f.paths());
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->controller_target);
  EXPECT_EQ(t->controller, "nvme1");
  EXPECT_EQ(t->nsid, 0u);
  ASSERT_EQ(t->namespaces.size(), 2u);
  EXPECT_EQ(t->namespaces[0].block, "nvme1n1");
  DeviceIdentity id = read_controller_identity(*t, f.paths());
  EXPECT_EQ(id.model, "QEMU NVMe Ctrl");
  EXPECT_EQ(id.serial, "DLCTEST0002");
  EXPECT_EQ(id.firmware, "7.2.22");
  EXPECT_EQ(id.wwn, "nqn.2019-08.org.qemu:dlcsub");
  EXPECT_EQ(id.media, "nvme");
  EXPECT_EQ(id.size, 2u * 65536 * 512);
}

TEST(NvmeTopology, APlainControllerNodeNamesItsOwnNamespaces) {
  if (!can_mknod()) GTEST_SKIP() << "mknod needs root";
  FakeSys f;
  auto t = map_nvme(f.dev("nvme0"), f.paths());
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->controller_target);
  EXPECT_EQ(t->controller_node, f.dev("nvme0"));
  ASSERT_EQ(t->namespaces.size(), 1u);
  EXPECT_EQ(t->namespaces[0].block, "nvme0n1");
  EXPECT_EQ(read_controller_identity(*t, f.paths()).size, 131072u * 512);
}

TEST(NvmeTopology, OtherDevicesAreNotNvme) {
  if (!can_mknod()) GTEST_SKIP() << "mknod needs root";
  FakeSys f;
  EXPECT_FALSE(map_nvme(f.dev("sda"), f.paths()));
  EXPECT_FALSE(map_nvme("/nonexistent", f.paths()));
  EXPECT_FALSE(map_nvme("/dev/null", f.paths()));  // a character device, but no NVMe controller
}
