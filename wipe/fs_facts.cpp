#include "wipe/fs_facts.h"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "wipe/interlocks.h"
#include "wipe/util.h"

namespace dlc::wipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Magic {
  unsigned long magic;
  const char* name;
};
// statfs f_type values (linux/magic.h and the filesystems' own headers).
const Magic kMagics[] = {
    {0xEF53, "ext2/3/4"},        {0x9123683E, "btrfs"},   {0x2FC12FC1, "zfs"},
    {0xCA451A4E, "bcachefs"},    {0x3434, "nilfs2"},      {0xF2F52010, "f2fs"},
    {0x794C7630, "overlay"},     {0x58465342, "xfs"},     {0x6969, "nfs"},
    {0xFF534D42, "cifs"},        {0xFE534D42, "smb2"},    {0x01021994, "tmpfs"},
    {0x858458F6, "ramfs"},       {0x65735546, "fuse"},    {0x4D44, "vfat"},
    {0x5346544E, "ntfs"},        {0x2011BAB0, "exfat"},   {0x52654973, "reiserfs"},
    {0x3153464A, "jfs"},         {0xF15F, "ecryptfs"},    {0x73717368, "squashfs"},
};

// The mount holding path: the longest mount point that prefixes its real path.
util::MountInfoRow mount_of(const std::string& path, const SysPaths& p) {
  std::error_code ec;
  const std::string real = fs::weakly_canonical(path, ec).string();
  util::MountInfoRow best;
  for (auto& m : util::read_mountinfo(p.mountinfo)) {
    const std::string& mp = m.mountpoint;
    const bool prefix = real == mp || mp == "/" ||
                        (real.size() > mp.size() && real.compare(0, mp.size(), mp) == 0 && real[mp.size()] == '/');
    if (prefix && mp.size() >= best.mountpoint.size()) best = std::move(m);
  }
  return best;
}

}  // namespace

std::string FsFacts::assurance() const {
  if (cow || log_structured || overlay || network || shared_extents) return "none";
  if (!rotational || data_journal || ram || !medium_known) return "limited";
  return "full";
}

std::vector<std::string> FsFacts::warnings() const {
  std::vector<std::string> w;
  const std::string rec =
      " Overwriting cannot guarantee the old blocks are gone here: use crypto-erase (keep such "
      "data encrypted and destroy the key) or sanitize the whole device.";
  if (cow)
    w.push_back(fstype + " is copy-on-write: an overwrite is written to new blocks and the old "
                         "ones stay until reused (and in every snapshot)." + rec);
  if (log_structured)
    w.push_back(fstype + " is log-structured: overwrites are appended elsewhere and old blocks "
                         "survive until cleaned." + rec);
  if (overlay)
    w.push_back("overlayfs: the file's original may live in a read-only lower layer that is "
                "not modified." + rec);
  if (network)
    w.push_back(fstype + " is a network filesystem: the server decides where the bytes go "
                         "(snapshots, replicas, CoW)." + rec);
  if (shared_extents)
    w.push_back("the file shares extents with other files or snapshots (reflink, dedup): "
                "overwriting them triggers copy-on-write and the shared blocks keep the old "
                "data." + rec);
  if (data_journal)
    w.push_back("the filesystem journals data (data=journal): copies of old data can remain in "
                "its journal until it wraps.");
  if (ram)
    w.push_back(fstype + " is memory-backed: old pages may have been written to swap.");
  if (medium_known && !rotational)
    w.push_back("the filesystem is on flash (" +
                [&] {
                  std::string s;
                  for (const auto& m : media) s += (s.empty() ? "" : ", ") + m;
                  return s;
                }() +
                "): the flash translation layer remaps writes, so old pages can survive an "
                "in-place overwrite. For Purge, sanitize or crypto-erase the device.");
  if (!medium_known && !ram && !network)
    w.push_back("the medium under the filesystem could not be determined; whether old copies "
                "survive on it is unknown.");
  return w;
}

json FsFacts::to_json() const {
  return {{"fstype", fstype},
          {"mountpoint", mountpoint},
          {"source", source},
          {"media", media},
          {"copy_on_write", cow},
          {"log_structured", log_structured},
          {"overlay", overlay},
          {"network", network},
          {"memory_backed", ram},
          {"data_journal", data_journal},
          {"shared_extents", shared_extents},
          {"assurance", assurance()}};
}

FsFacts examine_fs(const std::string& path, int fd, bool check_extents, const SysPaths& paths) {
  FsFacts f;
  struct statfs sf {};
  std::string magic_name;
  if (::fstatfs(fd, &sf) == 0) {
    for (const auto& m : kMagics)
      if (static_cast<unsigned long>(sf.f_type) == m.magic) magic_name = m.name;
  }
  util::MountInfoRow m = mount_of(path, paths);
  f.mountpoint = m.mountpoint;
  f.source = m.source;
  f.fstype = !m.fstype.empty() ? m.fstype : magic_name;
  const std::string t = f.fstype;
  f.cow = magic_name == "btrfs" || magic_name == "zfs" || magic_name == "bcachefs" ||
          magic_name == "nilfs2" || t == "btrfs" || t == "zfs";
  f.log_structured = magic_name == "f2fs";
  f.overlay = magic_name == "overlay";
  f.network = magic_name == "nfs" || magic_name == "cifs" || magic_name == "smb2" ||
              t.rfind("nfs", 0) == 0 || t == "cifs" || t.rfind("fuse.sshfs", 0) == 0 ||
              t == "glusterfs" || t == "ceph";
  f.ram = magic_name == "tmpfs" || magic_name == "ramfs";
  f.data_journal = m.superopts.find("data=journal") != std::string::npos;

  // The media under the filesystem: leaves of the dependency closure of its device.
  struct stat st {};
  if (!f.ram && !f.network && ::fstat(fd, &st) == 0) {
    std::string name;
    if (::major(st.st_dev) != 0) name = block_name_of(::major(st.st_dev), ::minor(st.st_dev), paths);
    if (name.empty() && !m.source.empty() && m.source[0] == '/') {
      struct stat bs {};
      if (::stat(m.source.c_str(), &bs) == 0 && S_ISBLK(bs.st_mode))
        name = block_name_of(::major(bs.st_rdev), ::minor(bs.st_rdev), paths);
    }
    if (!name.empty()) {
      bool any = false, all_rot = true;
      for (const auto& n : dependency_closure(name, paths)) {
        fs::path cls = paths.sys / "class" / "block" / n;
        std::error_code ec;
        if (fs::exists(cls / "partition", ec)) continue;
        if (fs::exists(cls / "loop" / "backing_file", ec)) continue;  // stacked: look below
        bool has_slaves = false;
        for (fs::directory_iterator it(cls / "slaves", ec), end; !ec && it != end; it.increment(ec))
          has_slaves = true;
        if (has_slaves) continue;
        bool rot = util::read_text_or(cls / "queue" / "rotational", "1") == "1";
        if (n.rfind("zram", 0) == 0) {
          f.ram = true;
          rot = true;
        }
        f.media.push_back(n + (rot ? " (rotational)" : " (flash)"));
        any = true;
        all_rot = all_rot && rot;
      }
      f.medium_known = any;
      f.rotational = all_rot;
    }
  }

  if (check_extents) {
    // FIEMAP: shared extents (reflink, dedup, snapshots).
    constexpr unsigned kCount = 256;
    std::vector<char> buf(sizeof(fiemap) + kCount * sizeof(fiemap_extent));
    std::uint64_t start = 0;
    for (int rounds = 0; rounds < 4096; ++rounds) {
      auto* fm = reinterpret_cast<fiemap*>(buf.data());
      std::fill(buf.begin(), buf.end(), 0);
      fm->fm_start = start;
      fm->fm_length = ~0ull - start;
      fm->fm_flags = FIEMAP_FLAG_SYNC;
      fm->fm_extent_count = kCount;
      if (::ioctl(fd, FS_IOC_FIEMAP, fm) != 0 || fm->fm_mapped_extents == 0) break;
      bool last = false;
      for (unsigned i = 0; i < fm->fm_mapped_extents; ++i) {
        const fiemap_extent& e = fm->fm_extents[i];
        if (e.fe_flags & FIEMAP_EXTENT_SHARED) f.shared_extents = true;
        if (e.fe_flags & FIEMAP_EXTENT_LAST) last = true;
        start = e.fe_logical + e.fe_length;
      }
      if (last || f.shared_extents) break;
    }
  }
  return f;
}

}  // namespace dlc::wipe
