#include "backup/tree.h"

#include <grp.h>
#include <pwd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

namespace {
std::int64_t ns(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

void put_string(json& n, const char* key, const std::string& value) {
  if (valid_utf8(value))
    n[key] = value;
  else
    n[std::string(key) + "_hex"] = crypto::to_hex(crypto::as_bytes(value));
}

std::string user_name(uid_t uid) {
  static std::mutex mu;
  static std::map<uid_t, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(uid);
  if (it != cache.end()) return it->second;
  passwd pw{}, *res = nullptr;
  char buf[4096];
  std::string name = ::getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res ? pw.pw_name : "";
  return cache[uid] = name;
}

std::string group_name(gid_t gid) {
  static std::mutex mu;
  static std::map<gid_t, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(gid);
  if (it != cache.end()) return it->second;
  group gr{}, *res = nullptr;
  char buf[4096];
  std::string name = ::getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res ? gr.gr_name : "";
  return cache[gid] = name;
}
}  // namespace

std::string node_type(const struct stat& st) {
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFCHR: return "chardev";
    case S_IFBLK: return "blockdev";
    case S_IFSOCK: return "socket";
    default: return "unknown";
  }
}

json node_from_stat(const fs::path& path, const std::string& name, const struct stat& st,
                    std::vector<std::string>* warnings) {
  json n = json::object();
  put_string(n, "name", name);
  n["type"] = node_type(st);
  n["mode"] = st.st_mode & 07777;
  n["uid"] = st.st_uid;
  n["gid"] = st.st_gid;
  n["user"] = user_name(st.st_uid);
  n["group"] = group_name(st.st_gid);
  n["mtime"] = ns(st.st_mtim);
  n["atime"] = ns(st.st_atim);
  n["ctime"] = ns(st.st_ctim);
  n["inode"] = st.st_ino;
  n["dev"] = st.st_dev;
  n["links"] = st.st_nlink;
  if (S_ISREG(st.st_mode)) {
    n["size"] = st.st_size;
    if (st.st_size > 0 && static_cast<std::uint64_t>(st.st_blocks) * 512 < static_cast<std::uint64_t>(st.st_size))
      n["sparse"] = true;
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) n["rdev"] = st.st_rdev;
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t len = ::readlink(path.c_str(), target.data(), target.size());
    if (len < 0) {
      if (warnings) warnings->push_back("cannot read symlink " + path.string());
      len = 0;
    }
    target.resize(static_cast<std::size_t>(len));
    put_string(n, "target", target);
  }
  // Extended attributes (user.*, security.*, trusted.* as the process may read them).
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len > 0) {
    std::string names(static_cast<std::size_t>(len), '\0');
    len = ::llistxattr(path.c_str(), names.data(), names.size());
    json x = json::object();
    for (std::size_t i = 0; len > 0 && i < static_cast<std::size_t>(len);) {
      std::string key(names.c_str() + i);
      i += key.size() + 1;
      ssize_t vlen = ::lgetxattr(path.c_str(), key.c_str(), nullptr, 0);
      if (vlen < 0) continue;
      Bytes v(static_cast<std::size_t>(vlen));
      vlen = ::lgetxattr(path.c_str(), key.c_str(), v.data(), v.size());
      if (vlen < 0) {
        if (warnings) warnings->push_back("cannot read xattr " + key + " of " + path.string());
        continue;
      }
      v.resize(static_cast<std::size_t>(vlen));
      x[key] = crypto::to_hex(v);
    }
    if (!x.empty()) n["xattrs"] = x;
  }
  return n;
}

void validate_tree(const json& doc, const std::string& what) {
  auto damaged = [&](const std::string& why) {
    return Error(Errc::io, "damaged tree", what, why, "run 'dlc backup check'");
  };
  if (!doc.is_object() || !doc.contains("nodes") || !doc["nodes"].is_array())
    throw damaged("not an object with a list of nodes");
  std::set<std::string> names;
  for (const json& n : doc["nodes"]) {
    if (!n.is_object()) throw damaged("a node is not an object");
    if (n.contains("name") == n.contains("name_hex") || !json_string_or_absent(n, "name") ||
        !json_hex_or_absent(n, "name_hex"))
      throw damaged("a node has no name, or two");
    const std::string name = node_name(n);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
      throw damaged("node name \"" + printable_utf8(name) + "\" is not a file name");
    if (!names.insert(name).second) throw damaged("node name \"" + printable_utf8(name) + "\" repeats");
    for (const char* k : {"type", "user", "group", "target"})
      if (!json_string_or_absent(n, k)) throw damaged(std::string("node member \"") + k + "\" is not a string");
    for (const char* k : {"mode", "uid", "gid"})
      if (!json_uint_or_absent(n, k, UINT32_MAX)) throw damaged(std::string("node member \"") + k + "\" is out of range");
    for (const char* k : {"inode", "dev", "links", "size", "rdev"})
      if (!json_uint_or_absent(n, k)) throw damaged(std::string("node member \"") + k + "\" is not an unsigned integer");
    for (const char* k : {"mtime", "atime", "ctime"})
      if (!json_int_or_absent(n, k)) throw damaged(std::string("node member \"") + k + "\" is not an integer");
    if (n.contains("sparse") && !n["sparse"].is_boolean()) throw damaged("node member \"sparse\" is not a boolean");
    if (!json_hex_or_absent(n, "subtree", 32) || !json_hex_or_absent(n, "target_hex"))
      throw damaged("node member \"subtree\" or \"target_hex\" is not hex");
    if (n.contains("content")) {
      const json& c = n["content"];
      if (!c.is_array() || !std::all_of(c.begin(), c.end(), [](const json& h) { return is_hex_string(h, 32); }))
        throw damaged("node member \"content\" is not a list of blob ids");
    }
    if (n.contains("xattrs")) {
      const json& x = n["xattrs"];
      if (!x.is_object() || !std::all_of(x.begin(), x.end(), [](const json& v) { return is_hex_string(v); }))
        throw damaged("node member \"xattrs\" is not an object of hex values");
    }
  }
}

std::string node_name(const json& node) {
  if (auto it = node.find("name"); it != node.end()) return it->get<std::string>();
  const Bytes b = crypto::from_hex(node.at("name_hex").get<std::string>());
  return std::string(b.begin(), b.end());
}

namespace {
void walk(const Repository& repo, const BlobId& tree, const std::string& prefix,
          const std::function<bool(const std::string&, const json&)>& fn,
          const std::function<void(const std::string&, const std::string&)>& on_bad) {
  json doc;
  try {
    doc = repo.read_tree(tree);
  } catch (const Error& e) {
    if (!on_bad) throw;
    on_bad(prefix.empty() ? "/" : prefix, e.what());
    return;
  }
  for (const json& n : doc.at("nodes")) {
    const std::string path = prefix + "/" + node_name(n);
    if (!fn(path, n)) continue;
    if (n.value("type", "") == "dir" && n.contains("subtree"))
      walk(repo, blob_id_from_hex(n["subtree"].get<std::string>()), path, fn, on_bad);
  }
}
}  // namespace

void walk_tree(const Repository& repo, const BlobId& root,
               const std::function<bool(const std::string&, const json&)>& fn,
               const std::function<void(const std::string&, const std::string&)>& on_bad_tree) {
  walk(repo, root, "", fn, on_bad_tree);
}

}  // namespace dlc::backup
