// Safety interlocks that run before any byte is written to a device:
// resolve a partition to its whole disk, then refuse when the disk or any of
// its partitions is mounted (directly, through dm/md/loop stacking, or as a
// btrfs member), has holders, is active swap, backs the running system
// (/, /boot, /boot/efi, /usr, /var), backs a loop device, or is read-only.
// --force overrides none of these. Signatures found by libblkid safeprobe are
// shown to the operator before the typed confirmation.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "wipe/device_info.h"

namespace dlc::wipe {

struct InterlockReport {
  std::vector<std::string> refusals;    // each one a full sentence naming the reason
  std::vector<std::string> signatures;  // "ext4 UUID=... LABEL=... on /dev/loop3p1"
  bool ok() const { return refusals.empty(); }
};

// The kernel names of a whole disk and its partitions.
std::set<std::string> disk_and_partitions(const std::string& disk, const SysPaths& paths = {});

// Kernel names a block device depends on: itself, its whole disk when it is a
// partition, its slaves (dm/md members) recursively and, for loop devices,
// the device holding the backing file.
std::set<std::string> dependency_closure(const std::string& name, const SysPaths& paths = {});

// Holders of the disk or its partitions, as "loop3p1 <- dm-0 <- dm-1" chains.
std::vector<std::string> holder_chains(const std::string& disk, const SysPaths& paths = {});

// The static checks (sysfs and procfs only: nothing is opened).
InterlockReport check_interlocks(const DeviceIdentity& id, const SysPaths& paths = {});

// libblkid safeprobe of the device and its partitions (read-only).
std::vector<std::string> probe_signatures(const DeviceIdentity& id, const SysPaths& paths = {});

// Tries open(O_RDONLY|O_EXCL) and closes again: false (with the reason) when
// someone holds the device (mounted, swap, md, another O_EXCL opener).
bool exclusive_open_possible(const std::string& node, std::string* why);

}  // namespace dlc::wipe
