#include "wipe/device_info.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "wipe/util.h"

namespace dlc::wipe {

namespace fs = std::filesystem;

namespace {

// SCSI VPD page 0x80 (unit serial number): 4-byte header, then ASCII.
std::string vpd80_serial(const fs::path& p) {
  auto raw = util::read_text(p);
  if (!raw || raw->size() <= 4) return {};
  std::string s;
  for (std::size_t i = 4; i < raw->size(); ++i) {
    unsigned char c = static_cast<unsigned char>((*raw)[i]);
    if (std::isprint(c)) s.push_back(static_cast<char>(c));
  }
  return util::trim(s);
}

std::string printable(std::string s) {
  std::string out;
  for (char c : s)
    if (std::isprint(static_cast<unsigned char>(c))) out.push_back(c);
  return util::trim(out);
}

std::string transport_of(const std::string& devpath, const fs::path& devdir) {
  if (devpath.find("/virtual/block/loop") != std::string::npos) return "loop";
  if (devpath.find("/virtual/block/zram") != std::string::npos) return "zram";
  if (devpath.find("/virtual/block/") != std::string::npos) return "virtual";
  if (devpath.find("/nvme") != std::string::npos) {
    auto t = util::read_text(devdir / "device" / "transport");
    return t && !t->empty() && *t != "pcie" ? "nvme-" + *t : "nvme";
  }
  if (devpath.find("/usb") != std::string::npos) return "usb";
  if (devpath.find("/mmc") != std::string::npos) return "mmc";
  if (devpath.find("/virtio") != std::string::npos) return "virtio";
  if (devpath.find("/ata") != std::string::npos) return "sata";
  if (devpath.find("/end_device-") != std::string::npos ||
      devpath.find("/sas_") != std::string::npos)
    return "sas";
  if (devpath.find("/host") != std::string::npos && devpath.find("/target") != std::string::npos)
    return "scsi";
  return "unknown";
}

}  // namespace

std::string block_name_of(std::uint32_t major, std::uint32_t minor, const SysPaths& paths) {
  fs::path link = paths.sys / "dev" / "block" / (std::to_string(major) + ":" + std::to_string(minor));
  std::error_code ec;
  fs::path target = fs::read_symlink(link, ec);
  if (ec) {
    // A fake tree in tests may use a directory holding a "name" file instead.
    auto n = util::read_text(link / "name");
    return n ? *n : std::string();
  }
  return target.filename().string();
}

std::string DeviceIdentity::stable_id() const {
  if (!wwn.empty()) return "wwn:" + wwn;
  if (!serial.empty()) return "serial:" + model + "/" + serial;
  if (!loop_backing.empty())
    return "loop-backing:" + std::to_string(loop_backing_dev) + ":" +
           std::to_string(loop_backing_inode);
  return "node:" + node + ":" + std::to_string(size);
}

nlohmann::json DeviceIdentity::pin() const {
  return {{"model", model},   {"serial", serial}, {"wwn", wwn},
          {"size", size},     {"logical_sector", logical_sector},
          {"loop_backing_inode", loop_backing_inode},
          {"loop_backing_dev", loop_backing_dev}, {"stable_id", stable_id()}};
}

nlohmann::json DeviceIdentity::to_json() const {
  nlohmann::json j = {
      {"path", path},
      {"node", node},
      {"kernel_name", name},
      {"whole_disk", disk},
      {"partition", partition},
      {"dev", std::to_string(major) + ":" + std::to_string(minor)},
      {"vendor", vendor},
      {"model", model},
      {"serial", serial},
      {"wwn", wwn},
      {"firmware", firmware},
      {"transport", transport},
      {"media", media},
      {"rotational", rotational},
      {"removable", removable},
      {"read_only", read_only},
      {"size_bytes", size},
      {"logical_sector_size", logical_sector},
      {"physical_sector_size", physical_sector},
  };
  if (!loop_backing.empty()) {
    j["loop_backing_file"] = loop_backing;
    j["loop_direct_io"] = loop_direct_io;
  }
  return j;
}

DeviceIdentity read_device_identity(const std::string& path, const SysPaths& paths) {
  DeviceIdentity id;
  id.path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      throw Error(Errc::io, "no such device", path, std::strerror(errno),
                  "check the path (lsblk lists block devices)");
    throw_errno("cannot stat", path);
  }
  if (!S_ISBLK(st.st_mode))
    throw Error(Errc::usage, "not a block device", path, {},
                "use 'dlc wipe file' for regular files and 'dlc wipe dir' for directories");
  id.major = ::major(st.st_rdev);
  id.minor = ::minor(st.st_rdev);
  id.name = block_name_of(id.major, id.minor, paths);
  if (id.name.empty())
    throw Error(Errc::io, "cannot find the device in sysfs", path,
                std::to_string(id.major) + ":" + std::to_string(id.minor));
  id.node = (paths.dev / id.name).string();

  fs::path cls = paths.sys / "class" / "block" / id.name;
  std::error_code ec;
  fs::path real = fs::canonical(cls, ec);
  if (ec) real = cls;
  id.partition = fs::exists(cls / "partition", ec);
  fs::path diskdir = id.partition ? real.parent_path() : real;
  id.disk = id.partition ? diskdir.filename().string() : id.name;

  // Hardware identity lives on the whole disk.
  fs::path dev = diskdir / "device";
  id.vendor = printable(util::read_text_or(dev / "vendor"));
  id.model = printable(util::read_text_or(dev / "model"));
  id.firmware = printable(util::read_text_or(dev / "firmware_rev", util::read_text_or(dev / "rev")));
  id.serial = printable(util::read_text_or(dev / "serial", util::read_text_or(diskdir / "serial")));
  if (id.serial.empty()) id.serial = vpd80_serial(dev / "vpd_pg80");
  id.wwn = printable(util::read_text_or(diskdir / "wwid", util::read_text_or(dev / "wwid")));
  if (id.wwn.empty()) id.wwn = printable(util::read_text_or(diskdir / "device" / "wwn"));
  id.transport = transport_of(real.string(), diskdir);
  id.rotational = util::read_text_or(diskdir / "queue" / "rotational", "0") == "1";
  id.removable = util::read_text_or(diskdir / "removable", "0") == "1";
  id.read_only = util::read_text_or(cls / "ro", "0") == "1";
  if (id.transport == "loop") {
    id.loop_backing = util::read_text_or(diskdir / "loop" / "backing_file");
    id.loop_direct_io = util::read_text_or(diskdir / "loop" / "dio", "0") == "1";
    struct stat bst {};
    if (!id.loop_backing.empty() && ::stat(id.loop_backing.c_str(), &bst) == 0) {
      id.loop_backing_inode = bst.st_ino;
      id.loop_backing_dev = bst.st_dev;
    }
    if (id.model.empty()) id.model = "Linux loop device";
  }
  if (id.transport == "loop" || id.transport == "zram" || id.transport == "virtual")
    id.media = "virtual";
  else if (id.transport.rfind("nvme", 0) == 0)
    id.media = "nvme";
  else
    id.media = id.rotational ? "hdd" : "ssd";

  // Sizes from the ioctls; a read-only open is all that is needed.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_errno("cannot open device read-only", path);
  std::uint64_t bytes = 0;
  int lbs = 0;
  unsigned int pbs = 0;
  if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
    int err = errno;
    ::close(fd);
    throw_errno("BLKGETSIZE64 failed", path, err);
  }
  if (::ioctl(fd, BLKSSZGET, &lbs) != 0) lbs = 512;
  if (::ioctl(fd, BLKPBSZGET, &pbs) != 0) pbs = static_cast<unsigned>(lbs);
  ::close(fd);
  id.size = bytes;
  id.logical_sector = static_cast<std::uint32_t>(lbs > 0 ? lbs : 512);
  id.physical_sector = pbs ? pbs : id.logical_sector;
  return id;
}

}  // namespace dlc::wipe
