// The checker: structure (index, packs on disk, snapshots, trees, every
// referenced blob indexed), then optionally the data: every selected pack is
// read whole, its table opened and compared with the index, every blob
// opened, decompressed and its keyed hash recomputed. Damage is mapped back to
// the files and snapshots that reference it. Reads run on all cores.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "backup/backup.h"
#include "backup/checker.h"
#include "backup/progress.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

std::map<std::string, std::uint64_t> packs_on_disk(const fs::path& repo, std::uint64_t* temp_files) {
  std::map<std::string, std::uint64_t> out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(repo / "data", ec)) {
    if (!d.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(d.path(), ec)) {
      const std::string name = f.path().filename().string();
      if (is_temp_name(name)) {
        if (temp_files) ++*temp_files;
        continue;
      }
      out[name] = f.file_size(ec);
    }
  }
  return out;
}

// ---- verification coverage state ----------------------------------------------------

fs::path coverage_file(const fs::path& state_dir, const std::string& repo_id) {
  const fs::path dir = state_dir.empty() ? dlc_home() / "backup-verify" : state_dir;
  return dir / (repo_id + ".json");
}

std::map<std::string, std::int64_t> load_coverage(const fs::path& file) {
  std::map<std::string, std::int64_t> m;
  try {
    if (!fs::exists(file)) return m;
    const Bytes b = read_file_bytes(file);
    json doc = json::parse(b.begin(), b.end());
    const json packs = doc.value("packs", json::object());  // named: items() must not outlive it
    for (const auto& [k, v] : packs.items()) m[k] = v.get<std::int64_t>();
  } catch (const std::exception& e) {
    notice(NoticeLevel::warning, "ignoring unreadable verification state " + file.string() + ": " + e.what());
  }
  return m;
}

void save_coverage(const fs::path& file, const std::map<std::string, std::int64_t>& m) {
  json packs = json::object();
  for (const auto& [k, v] : m) packs[k] = v;
  json doc = {{"format", "dlc-backup-verify-state/1"}, {"packs", packs}};
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  try {
    write_atomic(file, crypto::as_bytes(doc.dump() + "\n"), 0600);
  } catch (const Error& e) {
    notice(NoticeLevel::warning, std::string("cannot save the verification state: ") + e.what());
  }
}

namespace {

struct PackCheck {
  std::vector<DamagedBlob> damaged;
  std::vector<std::string> errors;
  std::uint64_t blobs = 0, bytes = 0;
};

// Reads one pack whole and verifies every blob in it.
// fd: the pack opened (else errno says why not).
PackCheck verify_pack(const Repository& repo, const PackInfo& pack, Fd fd, Bytes& buf, BlobScratch& scratch) {
  PackCheck out;
  const std::string pid = hex(pack.id);
  const fs::path path = pack_path(repo.path(), pack.id);
  auto damage_all = [&](const std::string& why) {
    for (const auto& b : pack.blobs) out.damaged.push_back({hex(b.id), std::string(blob_type_name(b.type)), pid, why});
  };
  if (!fd) {
    damage_all(std::string("pack unreadable: ") + std::strerror(errno));
    return out;
  }
  struct stat st{};
  ::fstat(fd.get(), &st);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  if (buf.size() < size) buf.resize(size);
  try {
    pread_all(fd.get(), buf.data(), size, 0, path);
  } catch (const Error& e) {
    damage_all(e.what());
    return out;
  }
  out.bytes = size;
  // The table: it must authenticate and agree with the index.
  std::map<std::uint64_t, const BlobEntry*> table_at;
  std::vector<BlobEntry> table;
  try {
    PackHeader h = parse_pack_prefix({buf.data(), std::min<std::size_t>(size, kPackPrefixSize)}, path);
    if (h.salt != pack.id) throw Error(Errc::io, "pack id does not match its file name", path.string());
    if (size < kPackPrefixSize + kPackFooterSize) throw Error(Errc::io, "pack too short", path.string());
    const std::uint32_t tlen = get_u32(buf.data() + size - kPackFooterSize);
    if (tlen + kPackPrefixSize + kPackFooterSize > size) throw Error(Errc::io, "pack table length out of range", path.string());
    crypto::Aead aead = repo.pack_aead(h.key_id, h.salt);
    table = decode_table(aead, {buf.data(), kPackPrefixSize}, {buf.data() + size - kPackFooterSize - tlen, tlen}, path);
  } catch (const Error& e) {
    out.errors.push_back("pack " + pid + ": table unreadable: " + e.what());
    // Blobs may still open on their own: fall through with the index's view.
  }
  for (const auto& t : table) table_at[t.offset] = &t;
  std::optional<crypto::Aead> pack_aead;
  try {
    pack_aead.emplace(repo.pack_aead(pack.key_id, pack.id));
  } catch (const Error& e) {  // e.g. the index names a data key the keyring lacks
    damage_all(e.what());
    return out;
  }
  crypto::Aead& aead = *pack_aead;
  for (const auto& b : pack.blobs) {
    const std::string id = hex(b.id);
    const std::string type(blob_type_name(b.type));
    if (!table.empty()) {
      auto it = table_at.find(b.offset);
      if (it == table_at.end() || it->second->id != b.id || it->second->length != b.length)
        out.errors.push_back("pack " + pid + ": index entry for blob " + id + " disagrees with the pack table");
    }
    if (b.offset > size || b.length > size - b.offset) {
      out.damaged.push_back({id, type, pid, "beyond the end of the pack (truncated)"});
      continue;
    }
    ++out.blobs;
    std::span<std::uint8_t> sealed(buf.data() + b.offset, b.length);
    try {
      const crypto::ByteView plain = open_blob_view(aead, b, sealed, scratch);
      if (repo.blob_id(plain) != b.id) out.damaged.push_back({id, type, pid, "content does not match its id"});
    } catch (const Error& e) {
      out.damaged.push_back({id, type, pid, e.code() == Errc::auth ? "does not authenticate (altered or corrupted)" : e.what()});
    }
  }
  return out;
}

}  // namespace

std::vector<std::size_t> select_packs(const std::vector<PackInfo>& packs, const Subset& s,
                                      const std::map<std::string, std::int64_t>& coverage) {
  std::vector<std::size_t> out;
  if (s.m > 0) {
    for (std::size_t i = 0; i < packs.size(); ++i)
      if (packs[i].id[0] % s.m == s.n - 1) out.push_back(i);
    return out;
  }
  std::vector<std::size_t> order(packs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto last = [&](std::size_t i) {
    auto it = coverage.find(hex(packs[i].id));
    return it == coverage.end() ? std::int64_t{0} : it->second;
  };
  // Least recently verified first (never verified = 0); ties by id.
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto la = last(a), lb = last(b);
    return la != lb ? la < lb : packs[a].id < packs[b].id;
  });
  std::uint64_t total = 0;
  for (const auto& p : packs) total += p.size;
  const double want = static_cast<double>(total) * s.percent / 100.0;
  std::uint64_t got = 0;
  for (std::size_t i : order) {
    if (static_cast<double>(got) >= want && !out.empty()) break;
    out.push_back(i);
    got += packs[i].size;
  }
  return out;
}

CheckResult run_check_on(Repository& repo, const CheckOptions& opts) {
  const std::int64_t start = now_ns();
  CheckResult r;
  std::vector<std::string> index_errors;
  repo.load_index(&index_errors);
  for (auto& e : index_errors) r.errors.push_back(e + " (run 'dlc backup repair index')");
  const Index& index = repo.index();
  r.packs_total = index.packs().size();

  std::unordered_map<BlobId, DamagedBlob, BlobIdHash> damaged;
  auto add_damage = [&](const DamagedBlob& d) { damaged.emplace(blob_id_from_hex(d.id), d); };

  // Packs on disk against the index.
  std::uint64_t temp_files = 0;
  auto disk = packs_on_disk(repo.path(), &temp_files);
  std::set<std::string> indexed;
  for (const auto& p : index.packs()) {
    const std::string pid = hex(p.id);
    indexed.insert(pid);
    r.bytes_total += p.size;
    auto it = disk.find(pid);
    if (it == disk.end()) {
      r.errors.push_back("pack " + pid + " is missing (" + std::to_string(p.blobs.size()) + " blobs)");
      for (const auto& b : p.blobs) add_damage({hex(b.id), std::string(blob_type_name(b.type)), pid, "pack missing"});
    } else if (it->second != p.size) {
      r.errors.push_back("pack " + pid + " has " + std::to_string(it->second) + " bytes, the index says " +
                         std::to_string(p.size));
      for (const auto& b : p.blobs)
        if (b.offset > it->second || b.length > it->second - b.offset)
          add_damage({hex(b.id), std::string(blob_type_name(b.type)), pid, "beyond the end of the pack (truncated)"});
    }
  }
  std::uint64_t orphans = 0;
  for (const auto& [name, size] : disk)
    if (!indexed.count(name)) ++orphans;
  if (orphans)
    r.warnings.push_back(std::to_string(orphans) + " pack(s) not in the index (left by an interrupted backup, "
                         "or the index is incomplete): 'dlc backup repair index' indexes them, 'dlc backup prune' removes them");
  if (temp_files) r.warnings.push_back(std::to_string(temp_files) + " temp file(s) from interrupted writes ('dlc backup prune' removes them)");

  // Snapshots and trees: every tree readable, every referenced blob indexed.
  std::vector<Snapshot> snaps;
  for (const auto& name : list_names(repo.path() / "snapshots")) {
    try {
      snaps.push_back(parse_snapshot(name, repo.read_object("snapshots", name, ObjectKind::snapshot)));
    } catch (const std::exception& e) {
      r.errors.push_back("snapshot " + name + " unreadable: " + e.what());
      r.affected_snapshots.push_back(name);
    }
  }
  r.snapshots = snaps.size();
  std::unordered_set<BlobId, BlobIdHash> seen_trees;
  for (const auto& s : snaps) {
    const BlobId root = blob_id_from_hex(s.doc.at("tree").get<std::string>());
    std::vector<std::pair<BlobId, std::string>> stack{{root, "/"}};
    while (!stack.empty()) {
      auto [tid, path] = stack.back();
      stack.pop_back();
      if (!seen_trees.insert(tid).second) continue;
      ++r.trees;
      json doc;
      try {
        doc = repo.read_tree(tid);
      } catch (const Error& e) {
        const PackInfo* p = nullptr;
        index.find(tid, &p);
        add_damage({hex(tid), "tree", p ? hex(p->id) : "", e.what()});
        continue;
      }
      for (const json& n : doc.at("nodes")) {
        const std::string child = (path == "/" ? "" : path) + "/" + node_name(n);
        if (n.contains("subtree")) stack.push_back({blob_id_from_hex(n["subtree"].get<std::string>()), child});
        for (const json& h : n.value("content", json::array())) {
          const BlobId id = blob_id_from_hex(h.get<std::string>());
          if (!index.has(id) && !damaged.count(id)) add_damage({hex(id), "data", "", "not in the index (lost)"});
        }
      }
    }
  }

  // Data.
  const bool read = opts.read_data || opts.subset.has_value();
  const fs::path cov_file = coverage_file(opts.state_dir, repo.config().id);
  std::map<std::string, std::int64_t> coverage = load_coverage(cov_file);
  if (read) {
    const auto& packs = index.packs();
    std::vector<std::size_t> sel;
    if (opts.subset) {
      sel = select_packs(packs, *opts.subset, coverage);
    } else {
      for (std::size_t i = 0; i < packs.size(); ++i) sel.push_back(i);
    }
    std::uint64_t sel_bytes = 0;
    for (std::size_t i : sel)
      if (disk.count(hex(packs[i].id))) sel_bytes += packs[i].size;
    ProgressTask progress(opts.progress, "read data", sel_bytes);
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::vector<std::thread> threads;
    const unsigned n = std::max(1u, std::min<unsigned>(repo.threads(), static_cast<unsigned>(sel.size())));
    const std::int64_t now = now_ns();
    // The kernel reads packs ahead of the threads (two per thread in flight),
    // so that a thread rarely waits for a read.
    std::vector<PackPrefetcher::Item> items;
    for (std::size_t i : sel) items.push_back({pack_path(repo.path(), packs[i].id), 0, packs[i].size});
    PackPrefetcher prefetcher(std::move(items), 2 * std::size_t{n});
    for (unsigned t = 0; t < n; ++t) {
      threads.emplace_back([&] {
        Bytes buf;
        std::optional<BlobScratch> scratch;
        try {
          scratch.emplace();
        } catch (const std::exception& e) {  // a worker thread: nothing may escape it
          std::lock_guard<std::mutex> lock(mu);
          r.errors.push_back(e.what());
          return;
        }
        for (std::size_t k; (k = next.fetch_add(1)) < sel.size();) {
          if (stop_requested().load()) break;
          const PackInfo& p = packs[sel[k]];
          if (!disk.count(hex(p.id))) {  // already reported missing
            prefetcher.take(k);
            continue;
          }
          PackCheck c;
          try {
            Fd fd = prefetcher.take(k);
            c = verify_pack(repo, p, std::move(fd), buf, *scratch);
          } catch (const std::exception& e) {  // a worker thread: nothing may escape it
            c.errors.push_back("pack " + hex(p.id) + ": " + e.what());
          }
          std::lock_guard<std::mutex> lock(mu);
          ++r.packs_read;
          r.blobs_read += c.blobs;
          r.bytes_read += c.bytes;
          for (auto& e : c.errors) r.errors.push_back(std::move(e));
          for (auto& d : c.damaged) add_damage(d);
          coverage[hex(p.id)] = now;
          progress.add(p.size);
        }
      });
    }
    for (auto& t : threads) t.join();
    if (stop_requested().load())
      throw Error(Errc::interrupted, "check interrupted", repo.path().string(), {}, "run it again");
    progress.finish(true);
  }
  // Forget packs that are gone; report coverage.
  std::map<std::string, std::int64_t> kept;
  std::int64_t oldest = 0;
  for (const auto& p : index.packs()) {
    const std::string pid = hex(p.id);
    auto it = coverage.find(pid);
    if (it == coverage.end()) {
      ++r.packs_never_verified;
      continue;
    }
    kept[pid] = it->second;
    if (oldest == 0 || it->second < oldest) oldest = it->second;
  }
  if (oldest) r.oldest_verification = rfc3339(oldest);
  if (read) save_coverage(cov_file, kept);

  // Map damage to files and snapshots.
  if (!damaged.empty()) {
    std::set<std::string> snaps_hit;
    for (const auto& s : snaps) {
      const BlobId root = blob_id_from_hex(s.doc.at("tree").get<std::string>());
      if (damaged.count(root)) {
        r.affected_files.push_back({s.id, "/"});
        snaps_hit.insert(s.id);
        continue;
      }
      walk_tree(
          repo, root,
          [&](const std::string& path, const json& n) {
            bool hit = n.contains("subtree") && damaged.count(blob_id_from_hex(n["subtree"].get<std::string>()));
            for (const json& h : n.value("content", json::array()))
              if (damaged.count(blob_id_from_hex(h.get<std::string>()))) hit = true;
            if (hit) {
              r.affected_files.push_back({s.id, path});
              snaps_hit.insert(s.id);
            }
            return true;
          },
          [&](const std::string&, const std::string&) {});
    }
    for (const auto& id : snaps_hit) r.affected_snapshots.push_back(id);
    for (auto& [id, d] : damaged) r.damaged_blobs.push_back(d);
    std::sort(r.damaged_blobs.begin(), r.damaged_blobs.end(),
              [](const DamagedBlob& a, const DamagedBlob& b) { return a.id < b.id; });
  }
  std::sort(r.affected_snapshots.begin(), r.affected_snapshots.end());
  r.affected_snapshots.erase(std::unique(r.affected_snapshots.begin(), r.affected_snapshots.end()),
                             r.affected_snapshots.end());
  r.ok = r.errors.empty() && r.damaged_blobs.empty();
  r.seconds = static_cast<double>(now_ns() - start) / 1e9;
  return r;
}

CheckResult run_check(const CheckOptions& opts) {
  auto repo = Repository::open(opts, LockMode::shared);
  return run_check_on(*repo, opts);
}

json to_json(const CheckResult& r) {
  // Paths (file names need not be UTF-8) and messages go out as UTF-8 JSON.
  auto text = [](const std::vector<std::string>& v) {
    json a = json::array();
    for (const auto& s : v) a.push_back(printable_utf8(s));
    return a;
  };
  json blobs = json::array();
  for (const auto& b : r.damaged_blobs)
    blobs.push_back({{"id", b.id}, {"type", b.type}, {"pack", b.pack}, {"reason", printable_utf8(b.reason)}});
  json files = json::array();
  for (const auto& f : r.affected_files) files.push_back({{"snapshot", f.snapshot}, {"path", printable_utf8(f.path)}});
  return {{"ok", r.ok},
          {"errors", text(r.errors)},
          {"warnings", text(r.warnings)},
          {"damaged_blobs", blobs},
          {"affected_files", files},
          {"affected_snapshots", r.affected_snapshots},
          {"snapshots", r.snapshots},
          {"trees", r.trees},
          {"packs_total", r.packs_total},
          {"packs_read", r.packs_read},
          {"blobs_read", r.blobs_read},
          {"bytes_read", r.bytes_read},
          {"bytes_total", r.bytes_total},
          {"packs_never_verified", r.packs_never_verified},
          {"oldest_verification", r.oldest_verification},
          {"seconds", r.seconds}};
}

}  // namespace dlc::backup
