// Manifest documents: JSON form, Merkle root, comparison and signed documents
// (docs/formats/manifest.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/fs.h"
#include "verify/verify.h"

namespace dlc::verify {

using nlohmann::json;

namespace {

constexpr const char* kTypeNames[] = {"file",    "dir",      "symlink", "fifo",
                                      "chardev", "blockdev", "socket",  "volume"};

std::string hex_of(std::string_view bytes) {
  return crypto::to_hex(crypto::as_bytes(bytes));
}

std::string octal(std::uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

[[noreturn]] void malformed(const std::string& what) {
  throw Error(Errc::check_failed, "malformed manifest", {}, what,
              "the file is not a dlc-manifest/1 document or was altered");
}

Digest digest_of(crypto::HashAlg alg, std::string_view prefix, crypto::ByteView a,
                 crypto::ByteView b = {}) {
  crypto::Hasher h(alg);
  h.update(prefix);
  h.update(a);
  if (!b.empty()) h.update(b);
  return h.final();
}

Digest merkle(const std::vector<Digest>& leaves, std::size_t lo, std::size_t hi,
              crypto::HashAlg alg) {
  const std::size_t n = hi - lo;
  if (n == 1) return leaves[lo];
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  const Digest l = merkle(leaves, lo, lo + k, alg);
  const Digest r = merkle(leaves, lo + k, hi, alg);
  return digest_of(alg, std::string_view("\x01", 1), l, r);
}

}  // namespace

std::string_view type_name(EntryType t) noexcept { return kTypeNames[static_cast<int>(t)]; }

std::optional<EntryType> type_from_name(std::string_view name) noexcept {
  for (int i = 0; i < 8; ++i)
    if (name == kTypeNames[i]) return static_cast<EntryType>(i);
  return std::nullopt;
}

std::uint64_t Manifest::files() const {
  return static_cast<std::uint64_t>(std::count_if(
      entries.begin(), entries.end(), [](const Entry& e) { return e.type == EntryType::file; }));
}

std::uint64_t Manifest::bytes() const {
  std::uint64_t n = 0;
  for (const auto& e : entries)
    if (e.type == EntryType::file || e.type == EntryType::volume) n += e.size;
  return n;
}

void put_bytes(json& obj, const std::string& key, const std::string& bytes) {
  if (valid_utf8(bytes))
    obj[key] = bytes;
  else
    obj[key + "_hex"] = hex_of(bytes);
}

std::string get_bytes(const json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it != obj.end() && it->is_string()) return it->get<std::string>();
  auto h = obj.find(key + "_hex");
  if (h != obj.end() && h->is_string()) {
    try {
      const crypto::Bytes b = crypto::from_hex(h->get<std::string>());
      return std::string(b.begin(), b.end());
    } catch (const Error&) {
      malformed("bad hex in " + key + "_hex");
    }
  }
  return {};
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 0 || c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      i += 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// ---- JSON ------------------------------------------------------------------------

json to_json(const Entry& e) {
  json j = json::object();
  put_bytes(j, "path", e.path);
  j["type"] = std::string(type_name(e.type));
  if (e.type != EntryType::volume) {
    j["mode"] = octal(e.mode);
    j["uid"] = e.uid;
    j["gid"] = e.gid;
    j["mtime_ns"] = e.mtime_ns;
  }
  if (e.type == EntryType::file || e.type == EntryType::symlink || e.type == EntryType::volume)
    j["size"] = e.size;
  if (e.type == EntryType::file || e.type == EntryType::volume) j["hash"] = e.hash;
  if (e.type == EntryType::symlink) put_bytes(j, "target", e.target);
  if (e.type == EntryType::chardev || e.type == EntryType::blockdev) j["rdev"] = e.rdev;
  if (e.hardlink) j["hardlink"] = e.hardlink;
  if (!e.xattrs.empty()) {
    json x = json::object();
    for (const auto& a : e.xattrs) {
      if (valid_utf8(a.name))
        x[a.name] = hex_of(a.value);
      else
        x["hex:" + hex_of(a.name)] = hex_of(a.value);
    }
    j["xattrs"] = std::move(x);
  }
  if (e.sparse) {
    json s = json::array();
    for (const auto& d : *e.sparse) s.push_back(json::array({d.offset, d.length}));
    j["sparse"] = std::move(s);
  }
  if (e.type == EntryType::volume) {
    j["chunk_size"] = e.chunk_size;
    j["chunks"] = e.chunks;
  }
  return j;
}

// A JSON integer that fits T. get<T>() converts a float out of T's range with
// undefined behaviour (an mtime of 1.7e26) and wraps negative numbers.
template <class T>
static T integer_member(const json& v, const char* key) {
  if (v.is_number_unsigned()) {
    if (const auto x = v.get<std::uint64_t>(); std::in_range<T>(x)) return static_cast<T>(x);
  } else if (v.is_number_integer()) {
    if (const auto x = v.get<std::int64_t>(); std::in_range<T>(x)) return static_cast<T>(x);
  }
  malformed(std::string("entry field ") + key + " is not an integer in range");
}

Entry entry_from_json(const json& j) {
  if (!j.is_object()) malformed("an entry is not an object");
  Entry e;
  try {
    e.path = get_bytes(j, "path");
    if (e.path.empty()) malformed("an entry has no path");
    const auto t = type_from_name(j.at("type").get<std::string>());
    if (!t) malformed("unknown entry type");
    e.type = *t;
    if (e.type != EntryType::volume) {
      e.mode = static_cast<std::uint32_t>(std::stoul(j.at("mode").get<std::string>(), nullptr, 8));
      e.uid = integer_member<std::uint32_t>(j.at("uid"), "uid");
      e.gid = integer_member<std::uint32_t>(j.at("gid"), "gid");
      e.mtime_ns = integer_member<std::int64_t>(j.at("mtime_ns"), "mtime_ns");
    }
    e.size = j.contains("size") ? integer_member<std::uint64_t>(j["size"], "size") : 0;
    e.hash = j.value("hash", std::string());
    if (e.type == EntryType::symlink) e.target = get_bytes(j, "target");
    e.rdev = j.contains("rdev") ? integer_member<std::uint64_t>(j["rdev"], "rdev") : 0;
    e.hardlink = j.contains("hardlink") ? integer_member<std::uint32_t>(j["hardlink"], "hardlink") : 0;
    if (auto x = j.find("xattrs"); x != j.end()) {
      for (const auto& [k, v] : x->items()) {
        Xattr a;
        if (k.rfind("hex:", 0) == 0) {
          const auto b = crypto::from_hex(k.substr(4));
          a.name.assign(b.begin(), b.end());
        } else {
          a.name = k;
        }
        const auto b = crypto::from_hex(v.get<std::string>());
        a.value.assign(b.begin(), b.end());
        e.xattrs.push_back(std::move(a));
      }
      std::sort(e.xattrs.begin(), e.xattrs.end(),
                [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
    }
    if (auto s = j.find("sparse"); s != j.end()) {
      std::vector<DataExtent> ext;
      for (const auto& d : *s) ext.push_back({integer_member<std::uint64_t>(d.at(0), "sparse"), integer_member<std::uint64_t>(d.at(1), "sparse")});
      e.sparse = std::move(ext);
    }
    if (e.type == EntryType::volume) {
      e.chunk_size = integer_member<std::uint64_t>(j.at("chunk_size"), "chunk_size");
      e.chunks = j.at("chunks").get<std::vector<std::string>>();
    }
  } catch (const json::exception& ex) {
    malformed(std::string("entry field: ") + ex.what());
  } catch (const std::invalid_argument&) {
    malformed("bad mode");
  } catch (const std::out_of_range&) {
    malformed("bad mode");
  }
  return e;
}

std::string merkle_root(const std::vector<Entry>& entries, crypto::HashAlg alg) {
  if (entries.empty()) return crypto::to_hex(crypto::hash(alg, {}));
  std::vector<Digest> leaves;
  leaves.reserve(entries.size());
  for (const auto& e : entries) {
    const std::string c = audit::canonical_json(to_json(e));
    leaves.push_back(digest_of(alg, std::string_view("\x00", 1), crypto::as_bytes(c)));
  }
  return crypto::to_hex(merkle(leaves, 0, leaves.size(), alg));
}

std::string volume_hash(const std::vector<std::string>& chunk_hex, crypto::HashAlg alg) {
  crypto::Hasher h(alg);
  for (const auto& c : chunk_hex) {
    const auto b = crypto::from_hex(c);
    h.update(b);
  }
  return crypto::to_hex(h.final());
}

void finalize(Manifest& m) {
  std::sort(m.entries.begin(), m.entries.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  // Hard-link groups: inodes that more than one entry of this manifest share.
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<std::size_t>> inodes;
  bool have_inodes = false;
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    const Entry& e = m.entries[i];
    if (e.ino == 0) continue;
    have_inodes = true;
    if (e.type != EntryType::dir && e.nlink > 1) inodes[{e.dev, e.ino}].push_back(i);
  }
  if (have_inodes) {
    for (auto& e : m.entries) e.hardlink = 0;
    std::vector<std::vector<std::size_t>> groups;
    for (auto& [k, members] : inodes)
      if (members.size() > 1) groups.push_back(members);
    std::sort(groups.begin(), groups.end(),
              [](const auto& a, const auto& b) { return a.front() < b.front(); });
    std::uint32_t n = 0;
    for (const auto& g : groups) {
      ++n;
      for (std::size_t i : g) m.entries[i].hardlink = n;
    }
  }
  m.merkle_root = merkle_root(m.entries, m.alg);
}

json to_json(const Manifest& m) {
  json entries = json::array();
  for (const auto& e : m.entries) entries.push_back(to_json(e));
  json j = {{"format", std::string(kManifestFormat)},
            {"kind", m.kind},
            {"hash", std::string(crypto::hash_name(m.alg))},
            {"created", m.created},
            {"host", m.host},
            {"tool", m.tool},
            {"read_method", m.read_method},
            {"recorded", {{"xattrs", m.xattrs}, {"sparse", m.sparse}}},
            {"totals",
             {{"entries", m.entries.size()}, {"files", m.files()}, {"bytes", m.bytes()}}},
            {"merkle_root", m.merkle_root},
            {"entries", std::move(entries)}};
  put_bytes(j, "root", m.root);
  if (!m.signature.is_null()) j["signature"] = m.signature;
  return j;
}

Manifest manifest_from_json(const json& j) {
  if (!j.is_object() || j.value("format", std::string()) != kManifestFormat)
    malformed("\"format\" is not \"" + std::string(kManifestFormat) + "\"");
  Manifest m;
  try {
    m.kind = j.at("kind").get<std::string>();
    if (m.kind != "tree" && m.kind != "volume") malformed("unknown kind");
    m.alg = crypto::hash_from_name(j.at("hash").get<std::string>());
    m.root = get_bytes(j, "root");
    m.created = j.value("created", std::string());
    m.host = j.value("host", std::string());
    m.tool = j.value("tool", std::string());
    m.read_method = j.value("read_method", std::string());
    const json rec = j.value("recorded", json::object());
    m.xattrs = rec.value("xattrs", true);
    m.sparse = rec.value("sparse", true);
    for (const auto& e : j.at("entries")) m.entries.push_back(entry_from_json(e));
    m.merkle_root = j.at("merkle_root").get<std::string>();
    if (j.contains("signature")) m.signature = j["signature"];
  } catch (const json::exception& ex) {
    malformed(ex.what());
  } catch (const Error& e) {
    if (e.code() == Errc::check_failed) throw;
    malformed(e.what());
  }
  for (std::size_t i = 1; i < m.entries.size(); ++i)
    if (!(m.entries[i - 1].path < m.entries[i].path))
      malformed("entries are not sorted by path or a path repeats: " +
                printable(m.entries[i].path));
  const std::string root = merkle_root(m.entries, m.alg);
  if (root != m.merkle_root)
    throw Error(Errc::check_failed, "manifest does not match its Merkle root", {},
                "computed " + root.substr(0, 16) + "..., recorded " +
                    m.merkle_root.substr(0, std::min<std::size_t>(16, m.merkle_root.size())) + "...",
                "the manifest was altered after it was written");
  return m;
}

void save_manifest(Manifest& m, const fs::path& path, const audit::HostKey* key) {
  m.signature = nullptr;
  json doc = to_json(m);
  if (key) {
    sign_document(doc, *key);
    m.signature = doc["signature"];
  }
  write_file_atomic(path, audit::canonical_json(doc) + "\n", 0644, ParentDir::create);
}

Manifest load_manifest(const fs::path& path) {
  return manifest_from_json(read_json_file(path, "manifest"));
}

// ---- Comparison --------------------------------------------------------------------

namespace {

std::string xattr_names(const std::vector<Xattr>& a, const std::vector<Xattr>& b) {
  std::map<std::string, std::pair<const std::string*, const std::string*>> all;
  for (const auto& x : a) all[x.name].first = &x.value;
  for (const auto& x : b) all[x.name].second = &x.value;
  std::string out;
  for (const auto& [name, v] : all) {
    const char* what = nullptr;
    if (!v.first) what = "extra";
    else if (!v.second) what = "missing";
    else if (*v.first != *v.second) what = "value differs";
    if (!what) continue;
    if (!out.empty()) out += ", ";
    out += printable(name) + " " + what;
  }
  return out;
}

std::string time_str(std::int64_t ns) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns / 1000000000),
                static_cast<long long>(ns % 1000000000));
  return buf;
}

void compare_entry(const Entry& x, const Entry& y, const CompareOptions& o,
                   std::vector<Difference>& out) {
  const std::string p = printable(x.path);
  auto add = [&](const char* kind, std::string detail) {
    out.push_back({p, kind, std::move(detail)});
  };
  if (x.type != y.type) {
    add("type", std::string(type_name(x.type)) + " expected, found " + std::string(type_name(y.type)));
    return;
  }
  const bool meta = x.path != "." || o.root_metadata;
  if (x.type == EntryType::file || x.type == EntryType::volume) {
    if (x.size != y.size)
      add("size", std::to_string(x.size) + " bytes expected, found " + std::to_string(y.size));
    else if (x.hash != y.hash)
      add("content", "content hash differs (expected " + x.hash.substr(0, 16) + "..., found " +
                         y.hash.substr(0, 16) + "...)");
    if (x.type == EntryType::volume && x.chunks.size() == y.chunks.size() &&
        x.chunk_size == y.chunk_size) {
      std::string bad;
      int shown = 0;
      for (std::size_t i = 0; i < x.chunks.size(); ++i) {
        if (x.chunks[i] == y.chunks[i]) continue;
        if (shown++ < 8) {
          if (!bad.empty()) bad += ", ";
          bad += "offset " + std::to_string(i * x.chunk_size);
        }
      }
      if (!bad.empty()) out.back().detail += "; differing chunks at " + bad + (shown > 8 ? ", ..." : "");
    }
  }
  if (x.type == EntryType::symlink && x.target != y.target) add("target", "symlink target differs");
  if ((x.type == EntryType::chardev || x.type == EntryType::blockdev) && x.rdev != y.rdev)
    add("device", "device number differs");
  if (x.type == EntryType::volume) return;
  if (meta && o.mode && x.mode != y.mode) add("mode", octal(x.mode) + " expected, found " + octal(y.mode));
  if (meta && o.owner && (x.uid != y.uid || x.gid != y.gid))
    add("owner", std::to_string(x.uid) + ":" + std::to_string(x.gid) + " expected, found " +
                     std::to_string(y.uid) + ":" + std::to_string(y.gid));
  if (meta && o.mtime && x.mtime_ns != y.mtime_ns)
    add("mtime", time_str(x.mtime_ns) + " expected, found " + time_str(y.mtime_ns));
  if (meta && o.xattrs && x.xattrs != y.xattrs) add("xattrs", xattr_names(x.xattrs, y.xattrs));
  if (o.hardlinks && x.hardlink != y.hardlink)
    add("hardlink", x.hardlink ? (y.hardlink ? "hard-link group " + std::to_string(x.hardlink) +
                                                   " expected, found group " +
                                                   std::to_string(y.hardlink)
                                             : "hard link expected, found a separate file")
                               : "separate file expected, found a hard link");
  if (o.sparse && x.type == EntryType::file && x.sparse != y.sparse)
    add("sparse", x.sparse ? (y.sparse ? "data extents differ" : "holes expected, found none")
                           : "no holes expected, found holes");
}

}  // namespace

Comparison compare(const Manifest& a, const Manifest& b, const CompareOptions& o) {
  Comparison c;
  c.expected_root = a.merkle_root;
  c.actual_root = b.merkle_root;
  c.roots_equal = a.merkle_root == b.merkle_root && a.alg == b.alg;
  CompareOptions opts = o;
  if (!a.xattrs || !b.xattrs) opts.xattrs = false;
  if (!a.sparse || !b.sparse) opts.sparse = false;
  if (a.alg != b.alg)
    throw Error(Errc::usage, "manifests use different hashes", {},
                std::string(crypto::hash_name(a.alg)) + " and " + std::string(crypto::hash_name(b.alg)),
                "build both with the same --hash");
  std::size_t i = 0, j = 0;
  while (i < a.entries.size() || j < b.entries.size()) {
    if (j == b.entries.size() || (i < a.entries.size() && a.entries[i].path < b.entries[j].path)) {
      c.differences.push_back({printable(a.entries[i].path), "missing",
                               std::string(type_name(a.entries[i].type)) + " not found"});
      ++i;
    } else if (i == a.entries.size() || b.entries[j].path < a.entries[i].path) {
      c.differences.push_back({printable(b.entries[j].path), "extra",
                               std::string(type_name(b.entries[j].type)) + " not in the manifest"});
      ++j;
    } else {
      compare_entry(a.entries[i], b.entries[j], opts, c.differences);
      ++c.compared;
      ++i;
      ++j;
    }
  }
  c.ok = c.differences.empty();
  return c;
}

json to_json(const Comparison& c, std::size_t max_differences) {
  json diffs = json::array();
  std::map<std::string, std::uint64_t> by_kind;
  for (const auto& d : c.differences) {
    ++by_kind[d.kind];
    if (diffs.size() < max_differences)
      diffs.push_back({{"path", d.path}, {"kind", d.kind}, {"detail", d.detail}});
  }
  return {{"ok", c.ok},
          {"compared", c.compared},
          {"expected_root", c.expected_root},
          {"actual_root", c.actual_root},
          {"roots_equal", c.roots_equal},
          {"differences", c.differences.size()},
          {"by_kind", by_kind},
          {"listed", diffs}};
}

// ---- Signed documents ---------------------------------------------------------------

void sign_document(json& doc, const audit::HostKey& key) { sign_json(doc, key, kSignatureDomain); }

SignatureCheck check_signature(const json& doc, const std::optional<crypto::Ed25519PublicKey>& pin) {
  return check_json_signature(doc, kSignatureDomain, pin);
}

// ---- Files ------------------------------------------------------------------------------

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("cannot read", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw_errno("cannot read", path.string());
  return ss.str();
}

json read_json_file(const fs::path& path, const std::string& what) {
  const std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Errc::check_failed, "cannot parse " + what, path.string(), e.what(),
                "the file is not JSON or was cut short");
  }
}

}  // namespace dlc::verify
