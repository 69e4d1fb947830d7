// Where an NVMe device sits, from sysfs alone (no admin command): the
// namespace block device -> its namespace id and the controller admin
// commands go to, also with native multipath (the block device then hangs off
// an nvme-subsystem whose controllers are listed under
// /sys/class/nvme-subsystem/), and every namespace of the subsystem visible on
// this host. A controller character device (/dev/nvme0) names the whole
// controller: every namespace.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "wipe/device_info.h"

namespace dlc::wipe::nvme {

struct NamespaceRef {
  std::uint32_t nsid = 0;
  std::string block;  // kernel name of its block device here (nvme0n1); "" when none
};

struct Topology {
  std::string path;                      // as given
  bool controller_target = false;        // a controller (/dev/nvmeX) was named: all its namespaces
  bool partition = false;                // a partition of a namespace was named
  std::string block;                     // the namespace's block device (whole disk) kernel name
  std::uint32_t nsid = 0;                // the namespace named (0 for a controller target)
  std::string controller;                // nvme0: the controller admin commands go to
  std::string controller_node;           // /dev/nvme0
  std::vector<std::string> controllers;  // every controller of the subsystem seen here
  std::string subsystem;                 // nvme-subsys0 ("" when sysfs does not say)
  std::string subsysnqn;
  bool multipath = false;                // the block device is a native-multipath namespace head
  std::vector<NamespaceRef> namespaces;  // namespaces of the subsystem seen here, by nsid

  // Kernel name of the block device of namespace nsid ("" when it has none here).
  std::string block_of(std::uint32_t nsid) const;
  nlohmann::json to_json() const;
};

// Maps a block device (namespace or one of its partitions) or an NVMe
// controller character device to its topology; nullopt when it is not NVMe.
// Reads sysfs only.
std::optional<Topology> map_nvme(const std::string& path, const SysPaths& paths = {});

// Identity of a controller character device (/dev/nvme0) for the report, the
// certificate and the pin: model, serial, firmware from sysfs, the subsystem
// NQN as its world-wide name, and the total size of its namespaces.
DeviceIdentity read_controller_identity(const Topology& topo, const SysPaths& paths = {});

// Whether path is a character device (a controller node rather than a disk).
bool is_character_device(const std::string& path);

}  // namespace dlc::wipe::nvme
