// What a filesystem and its medium allow an in-place overwrite to achieve:
// copy-on-write and log-structured filesystems, reflinked/shared extents,
// overlay lower layers, network filesystems, data journaling and flash media
// all keep old copies out of the overwrite's reach. Used to report honestly
// and to set a file wipe's assurance.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wipe/device_info.h"

namespace dlc::wipe {

struct FsFacts {
  std::string fstype;        // from statfs f_type and the mount table
  std::string mountpoint;
  std::string source;        // mount source (/dev/sdb1)
  std::vector<std::string> media;  // leaf devices: "vda (rotational)", "nvme0n1 (flash)"
  bool rotational = true;    // every leaf device is rotational
  bool medium_known = false;
  bool cow = false;          // btrfs, zfs, bcachefs, nilfs2
  bool log_structured = false;  // f2fs
  bool overlay = false;
  bool network = false;
  bool ram = false;          // tmpfs / ramfs
  bool data_journal = false; // ext3/4 data=journal
  bool shared_extents = false;  // FIEMAP_EXTENT_SHARED seen (reflink, dedup, snapshot)
  // none: overwrite does not reach the old blocks; limited: it does, but
  // copies may survive elsewhere (flash remapping, journal, swap); full.
  std::string assurance() const;
  std::vector<std::string> warnings() const;
  nlohmann::json to_json() const;
};

// Facts for an open file (fd) at path; for a directory or mount point, fd may
// be any fd on that filesystem (FIEMAP is then skipped).
FsFacts examine_fs(const std::string& path, int fd, bool check_extents, const SysPaths& paths = {});

}  // namespace dlc::wipe
