#include "wipe/interlocks.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "wipe/util.h"

namespace dlc::wipe {

namespace fs = std::filesystem;

namespace {

fs::path class_dir(const SysPaths& p, const std::string& name) {
  return p.sys / "class" / "block" / name;
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    out.push_back(it->path().filename().string());
  return out;
}

// The whole disk of a partition (its parent directory in sysfs).
std::string parent_disk(const SysPaths& p, const std::string& name) {
  // Fake trees (tests) name the parent in a "parent" file; sysfs nests the
  // partition's directory inside its disk's.
  if (auto fake = util::read_text(class_dir(p, name) / "parent")) return *fake;
  std::error_code ec;
  fs::path real = fs::canonical(class_dir(p, name), ec);
  if (ec) return {};
  return real.parent_path().filename().string();
}

bool is_partition(const SysPaths& p, const std::string& name) {
  std::error_code ec;
  return fs::exists(class_dir(p, name) / "partition", ec);
}

// Block device name for a path: the device node itself (S_ISBLK) or, for any
// other file, the device holding its filesystem. "" when unknown (btrfs and
// other filesystems with anonymous device numbers).
std::string name_for_path(const SysPaths& p, const std::string& path, bool* is_block = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  if (is_block) *is_block = S_ISBLK(st.st_mode);
  dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
  if (::major(d) == 0) return {};
  return block_name_of(::major(d), ::minor(d), p);
}

bool intersects(const std::set<std::string>& a, const std::set<std::string>& b) {
  for (const auto& x : a)
    if (b.count(x)) return true;
  return false;
}

bool is_system_mount(const std::string& mp) {
  return mp == "/" || mp == "/boot" || mp == "/boot/efi" || mp == "/usr" || mp == "/var" ||
         mp == "/efi";
}

void collect_chains(const SysPaths& p, const std::string& name, const std::string& prefix,
                    std::vector<std::string>& out, int depth) {
  auto holders = list_dir(class_dir(p, name) / "holders");
  if (holders.empty()) {
    if (depth > 0) out.push_back(prefix);
    return;
  }
  if (depth > 16) {
    out.push_back(prefix + " <- ...");
    return;
  }
  for (const auto& h : holders) {
    std::string label = h;
    auto dmname = util::read_text(class_dir(p, h) / "dm" / "name");
    if (dmname && !dmname->empty()) {
      // The dm uuid's prefix names the subsystem that made the target
      // (lvm2, cryptsetup, multipath); a bare dmsetup table has none.
      const std::string uuid = util::read_text_or(class_dir(p, h) / "dm" / "uuid");
      const char* kind = uuid.rfind("LVM-", 0) == 0      ? "LVM logical volume "
                         : uuid.rfind("CRYPT-", 0) == 0  ? "dm-crypt "
                         : uuid.rfind("mpath-", 0) == 0  ? "dm-multipath "
                                                         : "dm ";
      label += " (" + std::string(kind) + *dmname + ")";
    } else if (h.rfind("md", 0) == 0) {
      // md's sysfs names the personality: "md0 (md raid1)"; an array being
      // assembled has no level yet.
      auto level = util::read_text(class_dir(p, h) / "md" / "level");
      label += " (md " + (level && !level->empty() ? *level : std::string("array")) + ")";
    } else if (h.rfind("bcache", 0) == 0) {
      label += " (bcache)";
    }
    collect_chains(p, h, prefix + " <- " + label, out, depth + 1);
  }
}

}  // namespace

std::set<std::string> disk_and_partitions(const std::string& disk, const SysPaths& p) {
  std::set<std::string> out{disk};
  for (const auto& e : list_dir(class_dir(p, disk))) {
    std::error_code ec;
    if (fs::exists(class_dir(p, disk) / e / "partition", ec)) out.insert(e);
  }
  // Fake trees list partitions in class/block with a "parent" file.
  for (const auto& e : list_dir(p.sys / "class" / "block")) {
    if (out.count(e)) continue;
    if (is_partition(p, e) && parent_disk(p, e) == disk) out.insert(e);
  }
  return out;
}

std::set<std::string> dependency_closure(const std::string& name, const SysPaths& p) {
  std::set<std::string> seen;
  std::vector<std::string> stack{name};
  while (!stack.empty()) {
    std::string n = stack.back();
    stack.pop_back();
    if (n.empty() || !seen.insert(n).second) continue;
    if (is_partition(p, n)) stack.push_back(parent_disk(p, n));
    for (const auto& s : list_dir(class_dir(p, n) / "slaves")) stack.push_back(s);
    auto backing = util::read_text(class_dir(p, n) / "loop" / "backing_file");
    if (backing && !backing->empty()) stack.push_back(name_for_path(p, *backing));
  }
  return seen;
}

std::vector<std::string> holder_chains(const std::string& disk, const SysPaths& p) {
  std::vector<std::string> out;
  for (const auto& n : disk_and_partitions(disk, p)) collect_chains(p, n, n, out, 0);
  return out;
}

InterlockReport check_interlocks(const DeviceIdentity& id, const SysPaths& p) {
  InterlockReport r;
  const std::set<std::string> ours = disk_and_partitions(id.disk, p);
  const std::string who = id.partition ? id.node + " (on disk " + id.disk + ")" : id.node;

  if (id.read_only) r.refusals.push_back(who + " is read-only (ro=1); it cannot be overwritten");

  for (const auto& chain : holder_chains(id.disk, p))
    r.refusals.push_back(who + " has holders: " + chain +
                         "; stop the device-mapper/md/LVM/bcache device first "
                         "(dmsetup remove, mdadm --stop, vgchange -an)");

  std::map<std::string, std::set<std::string>> cache;
  auto closure_of = [&](const std::string& name) -> const std::set<std::string>& {
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, dependency_closure(name, p)).first;
    return it->second;
  };

  for (const auto& m : util::read_mountinfo(p.mountinfo)) {
    std::string name;
    auto colon = m.devnum.find(':');
    if (colon != std::string::npos) {
      std::uint32_t maj = static_cast<std::uint32_t>(std::stoul(m.devnum.substr(0, colon)));
      std::uint32_t min = static_cast<std::uint32_t>(std::stoul(m.devnum.substr(colon + 1)));
      if (maj != 0) name = block_name_of(maj, min, p);
    }
    std::set<std::string> deps;
    if (!name.empty()) deps = closure_of(name);
    if (!m.source.empty() && m.source[0] == '/') {
      bool blk = false;
      std::string src = name_for_path(p, m.source, &blk);
      if (blk && !src.empty()) {
        const auto& more = closure_of(src);
        deps.insert(more.begin(), more.end());
      }
    }
    if (!intersects(deps, ours)) continue;
    if (is_system_mount(m.mountpoint))
      r.refusals.push_back(who + " backs the running system: " + m.source + " is mounted on " +
                           m.mountpoint + " (" + m.fstype + ")");
    else
      r.refusals.push_back(who + " is mounted: " + m.source + " on " + m.mountpoint + " (" +
                           m.fstype + "); unmount it first");
  }

  // btrfs spreads one mounted filesystem over member devices that mountinfo
  // does not list.
  for (const auto& uuid : list_dir(p.sys / "fs" / "btrfs")) {
    for (const auto& member : list_dir(p.sys / "fs" / "btrfs" / uuid / "devices")) {
      if (intersects(closure_of(member), ours))
        r.refusals.push_back(who + " is a member of the mounted btrfs filesystem " + uuid +
                             " (via " + member + ")");
    }
  }

  {
    std::ifstream in(p.swaps);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      std::string file;
      ss >> file;
      if (file.empty()) continue;
      file = util::unescape_octal(file);
      bool blk = false;
      std::string n = name_for_path(p, file, &blk);
      if (n.empty()) continue;
      if (intersects(closure_of(n), ours))
        r.refusals.push_back(who + " is in use as swap (" + file + "); run swapoff " + file +
                             " first");
    }
  }

  for (const auto& e : list_dir(p.sys / "class" / "block")) {
    auto backing = util::read_text(class_dir(p, e) / "loop" / "backing_file");
    if (!backing || backing->empty() || ours.count(e)) continue;
    bool blk = false;
    std::string n = name_for_path(p, *backing, &blk);
    if (blk && !n.empty() && intersects(closure_of(n), ours))
      r.refusals.push_back(who + " is the backing device of " + e + "; detach it (losetup -d /dev/" +
                           e + ") first");
  }
  return r;
}

std::vector<std::string> probe_signatures(const DeviceIdentity& id, const SysPaths& p) {
  std::vector<std::string> out;
  std::set<std::string> names = id.partition ? std::set<std::string>{id.name}
                                             : disk_and_partitions(id.disk, p);
  for (const auto& n : names) {
    std::string node = (p.dev / n).string();
    blkid_probe pr = blkid_new_probe_from_filename(node.c_str());
    if (!pr) continue;
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID |
                                              BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
                                              BLKID_SUBLKS_VERSION);
    blkid_probe_enable_partitions(pr, 1);
    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
    int rc = blkid_do_safeprobe(pr);
    if (rc == -2) {
      out.push_back("ambivalent signatures (several filesystems claim it) on " + node);
    } else if (rc == 0) {
      std::map<std::string, std::string> v;
      int count = blkid_probe_numof_values(pr);
      for (int i = 0; i < count; ++i) {
        const char* name = nullptr;
        const char* data = nullptr;
        std::size_t len = 0;
        if (blkid_probe_get_value(pr, i, &name, &data, &len) == 0 && name && data)
          v[name] = std::string(data, len ? len - 1 : 0);
      }
      std::string s;
      auto add = [&](const char* key, const std::string& label) {
        auto it = v.find(key);
        if (it != v.end() && !it->second.empty()) s += (s.empty() ? "" : " ") + label + it->second;
      };
      add("TYPE", "");
      add("PTTYPE", "partition table ");
      add("UUID", "UUID=");
      add("PTUUID", "PTUUID=");
      add("LABEL", "LABEL=");
      add("USAGE", "usage=");
      if (!s.empty()) out.push_back(s + " on " + node);
    }
    blkid_free_probe(pr);
  }
  return out;
}

bool exclusive_open_possible(const std::string& node, std::string* why) {
  int fd = ::open(node.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (why)
      *why = err == EBUSY ? node + " is in use elsewhere: an exclusive open (O_EXCL) failed with "
                                   "EBUSY (mounted, swap, RAID/dm member or opened exclusively "
                                   "by another program)"
                          : node + ": cannot open exclusively: " + std::strerror(err);
    return false;
  }
  ::close(fd);
  return true;
}

}  // namespace dlc::wipe
