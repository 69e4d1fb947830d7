// Identity of a block device from sysfs and the block ioctls: what the
// certificate names and what is pinned before and after a wipe, so that a
// device swapped underneath a long job is noticed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dlc::wipe {

// Where the kernel's tables live; tests point these at a fake tree.
struct SysPaths {
  std::filesystem::path sys = "/sys";
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
  std::filesystem::path swaps = "/proc/swaps";
  std::filesystem::path dev = "/dev";
};

struct DeviceIdentity {
  std::string path;         // as given (/dev/disk/by-id/... resolved below)
  std::string node;         // canonical node, /dev/sdb
  std::string name;         // kernel name, sdb / nvme0n1 / loop3 / sdb1
  std::string disk;         // whole disk kernel name (== name unless a partition)
  bool partition = false;
  std::uint32_t major = 0, minor = 0;
  std::string vendor, model, serial, wwn, firmware;
  std::string transport;    // nvme | sata | sas | scsi | usb | virtio | mmc | loop | zram | unknown
  std::string media;        // hdd | ssd | nvme | virtual | unknown
  bool rotational = false;
  bool removable = false;
  bool read_only = false;
  std::uint64_t size = 0;   // bytes (BLKGETSIZE64)
  std::uint32_t logical_sector = 512;   // BLKSSZGET
  std::uint32_t physical_sector = 512;  // BLKPBSZGET
  std::string loop_backing;             // loop devices: backing file
  std::uint64_t loop_backing_inode = 0;
  std::uint64_t loop_backing_dev = 0;
  bool loop_direct_io = false;

  // Stable across reboots and renames where the hardware says so: WWN, else
  // model+serial, else (loop) backing file identity, else node+size.
  std::string stable_id() const;
  // The fields compared before and after a job.
  nlohmann::json pin() const;
  nlohmann::json to_json() const;
};

// Reads the identity of the block device at path. Opens it read-only (never
// for writing) for the size ioctls. Throws Errc::usage when path is not a
// block device, Errc::io when it cannot be read.
DeviceIdentity read_device_identity(const std::string& path, const SysPaths& paths = {});

// Kernel name of the block device with this major:minor ("" if unknown).
std::string block_name_of(std::uint32_t major, std::uint32_t minor, const SysPaths& paths = {});

}  // namespace dlc::wipe
