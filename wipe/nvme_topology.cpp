#include "wipe/nvme_topology.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "wipe/util.h"

namespace dlc::wipe::nvme {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// nvme0, nvme12: a controller.
bool is_controller_name(std::string_view s) {
  return s.size() > 4 && s.substr(0, 4) == "nvme" && digits(s.substr(4));
}

// nvme0n1: a namespace block device (not the hidden per-path nvme0c1n1).
bool is_namespace_name(std::string_view s) {
  if (s.size() < 7 || s.substr(0, 4) != "nvme") return false;
  auto n = s.find('n', 4);
  return n != std::string_view::npos && digits(s.substr(4, n - 4)) && digits(s.substr(n + 1));
}

// nvme0c1n1: the hidden per-controller path of a multipath namespace head.
bool is_path_name(std::string_view s) {
  if (s.size() < 9 || s.substr(0, 4) != "nvme") return false;
  auto c = s.find('c', 4);
  auto n = c == std::string_view::npos ? c : s.find('n', c);
  return n != std::string_view::npos && digits(s.substr(4, c - 4)) &&
         digits(s.substr(c + 1, n - c - 1)) && digits(s.substr(n + 1));
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The last component of a symlink's target ("" when it is not a link).
std::string link_name(const fs::path& link) {
  std::error_code ec;
  fs::path t = fs::read_symlink(link, ec);
  return ec ? std::string() : t.filename().string();
}

std::uint32_t nsid_of(const SysPaths& p, const std::string& block) {
  if (auto v = util::read_u64(p.sys / "class" / "block" / block / "nsid"))
    return static_cast<std::uint32_t>(*v);
  // Kernels before 5.x have no nsid attribute; the name's last number is the
  // namespace's position, which equals its id on nearly every drive.
  auto n = block.rfind('n');
  if (n != std::string::npos && digits(block.substr(n + 1)))
    return static_cast<std::uint32_t>(std::stoul(block.substr(n + 1)));
  return 0;
}

std::string subsystem_of_controller(const SysPaths& p, const std::string& ctrl) {
  for (const auto& s : entries(p.sys / "class" / "nvme-subsystem")) {
    std::error_code ec;
    if (fs::exists(p.sys / "class" / "nvme-subsystem" / s / ctrl, ec)) return s;
  }
  return {};
}

void fill_subsystem(Topology& t, const SysPaths& p) {
  const fs::path sub = p.sys / "class" / "nvme-subsystem" / t.subsystem;
  std::map<std::uint32_t, std::string> ns;
  if (!t.subsystem.empty()) {
    for (const auto& e : entries(sub)) {
      if (is_controller_name(e)) t.controllers.push_back(e);
      if (is_namespace_name(e)) ns.emplace(nsid_of(p, e), e);  // multipath heads
    }
    t.subsysnqn = util::read_text_or(sub / "subsysnqn");
  }
  if (t.controllers.empty() && !t.controller.empty()) t.controllers.push_back(t.controller);
  // Namespaces private to a controller (no multipath) hang off the controller.
  for (const auto& c : t.controllers)
    for (const auto& e : entries(p.sys / "class" / "nvme" / c))
      if (is_namespace_name(e)) ns.emplace(nsid_of(p, e), e);
  for (const auto& [id, name] : ns) t.namespaces.push_back({id, name});
  if (t.subsysnqn.empty() && !t.controller.empty())
    t.subsysnqn = util::read_text_or(p.sys / "class" / "nvme" / t.controller / "subsysnqn");
}

// The controller admin commands go to: the first live one of the subsystem.
std::string pick_controller(const SysPaths& p, const std::vector<std::string>& ctrls) {
  for (const auto& c : ctrls)
    if (util::read_text_or(p.sys / "class" / "nvme" / c / "state") == "live") return c;
  return ctrls.empty() ? std::string() : ctrls.front();
}

}  // namespace

std::string Topology::block_of(std::uint32_t id) const {
  for (const auto& n : namespaces)
    if (n.nsid == id) return n.block;
  return {};
}

json Topology::to_json() const {
  json ns = json::array();
  for (const auto& n : namespaces)
    ns.push_back({{"nsid", n.nsid}, {"block_device", n.block.empty() ? "" : "/dev/" + n.block}});
  return {{"path", path},
          {"controller_target", controller_target},
          {"partition", partition},
          {"block_device", block.empty() ? "" : "/dev/" + block},
          {"nsid", nsid},
          {"controller", controller},
          {"admin_device", controller_node},
          {"controllers", controllers},
          {"subsystem", subsystem},
          {"subsystem_nqn", subsysnqn},
          {"native_multipath", multipath},
          {"namespaces", ns}};
}

bool is_character_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

std::optional<Topology> map_nvme(const std::string& path, const SysPaths& p) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  Topology t;
  t.path = path;
  if (S_ISCHR(st.st_mode)) {
    const std::string dev =
        std::to_string(::major(st.st_rdev)) + ":" + std::to_string(::minor(st.st_rdev));
    std::string name = link_name(p.sys / "dev" / "char" / dev);
    std::error_code ec;
    if (!is_controller_name(name) || !fs::exists(p.sys / "class" / "nvme" / name, ec))
      return std::nullopt;
    t.controller_target = true;
    t.controller = name;
    t.subsystem = subsystem_of_controller(p, name);
    fill_subsystem(t, p);
    // Only the namespaces this controller reaches (its own namespace disks, or
    // the per-path nodes nvme0c0n1 of multipath heads); the subsystem may have others.
    std::set<std::uint32_t> reach;
    for (const auto& e : entries(p.sys / "class" / "nvme" / name))
      if (is_namespace_name(e) || is_path_name(e)) reach.insert(nsid_of(p, e));
    std::erase_if(t.namespaces, [&](const NamespaceRef& n) { return !reach.count(n.nsid); });
    t.controller_node = (p.dev / name).string();
    return t;
  }
  if (!S_ISBLK(st.st_mode)) return std::nullopt;
  std::string name = block_name_of(::major(st.st_rdev), ::minor(st.st_rdev), p);
  if (name.empty()) return std::nullopt;
  fs::path cls = p.sys / "class" / "block" / name;
  std::error_code ec;
  std::string disk = name;
  if (fs::exists(cls / "partition", ec)) {
    t.partition = true;
    if (auto parent = util::read_text(cls / "parent")) {
      disk = *parent;  // fake trees in tests
    } else {
      fs::path real = fs::canonical(cls, ec);
      if (ec) return std::nullopt;
      disk = real.parent_path().filename().string();
    }
  }
  const std::string up = link_name(p.sys / "class" / "block" / disk / "device");
  if (up.rfind("nvme-subsys", 0) == 0) {
    t.multipath = true;
    t.subsystem = up;
  } else if (is_controller_name(up)) {
    t.controller = up;
    t.subsystem = subsystem_of_controller(p, up);
  } else {
    return std::nullopt;
  }
  t.block = disk;
  t.nsid = nsid_of(p, disk);
  fill_subsystem(t, p);
  if (t.multipath) t.controller = pick_controller(p, t.controllers);
  if (t.controller.empty())
    throw Error(Errc::io, "no NVMe controller found for", path,
                "sysfs lists no controller under " +
                    (p.sys / "class" / "nvme-subsystem" / t.subsystem).string(),
                "check 'nvme list-subsys'; every path to the namespace may be down");
  t.controller_node = (p.dev / t.controller).string();
  // The namespace named is reached through the block device named.
  bool found = false;
  for (auto& n : t.namespaces)
    if (n.nsid == t.nsid) {
      n.block = disk;
      found = true;
    }
  if (!found) {
    t.namespaces.push_back({t.nsid, disk});
    std::sort(t.namespaces.begin(), t.namespaces.end(),
              [](const NamespaceRef& a, const NamespaceRef& b) { return a.nsid < b.nsid; });
  }
  return t;
}

DeviceIdentity read_controller_identity(const Topology& t, const SysPaths& p) {
  DeviceIdentity id;
  id.path = t.path;
  id.node = t.controller_node;
  id.name = t.controller;
  id.disk = t.controller;
  struct stat st {};
  if (::stat(t.path.c_str(), &st) != 0) throw_errno("cannot stat", t.path);
  id.major = ::major(st.st_rdev);
  id.minor = ::minor(st.st_rdev);
  const fs::path c = p.sys / "class" / "nvme" / t.controller;
  auto clean = [](std::string s) { return util::trim(s); };
  id.model = clean(util::read_text_or(c / "model"));
  id.serial = clean(util::read_text_or(c / "serial"));
  id.firmware = clean(util::read_text_or(c / "firmware_rev"));
  id.wwn = t.subsysnqn;
  auto tr = util::read_text_or(c / "transport", "pcie");
  id.transport = tr.empty() || tr == "pcie" ? "nvme" : "nvme-" + tr;
  id.media = "nvme";
  std::uint32_t lbs = 0;
  for (const auto& n : t.namespaces) {
    if (n.block.empty()) continue;
    const fs::path b = p.sys / "class" / "block" / n.block;
    id.size += util::read_u64(b / "size").value_or(0) * 512;
    auto l = util::read_u64(b / "queue" / "logical_block_size");
    if (l && (lbs == 0 || *l < lbs)) lbs = static_cast<std::uint32_t>(*l);
  }
  id.logical_sector = lbs ? lbs : 512;
  id.physical_sector = id.logical_sector;
  return id;
}

}  // namespace dlc::wipe::nvme
