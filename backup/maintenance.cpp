// forget, prune, repair index, stats, locations and key slot management.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_set>

#include "backup/backup.h"
#include "backup/checker.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "backup/uploader.h"
#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

namespace {

// Every blob (trees and data) the snapshots reference. Throws Errc::refused
// when a tree cannot be read (`what` names the operation): pruning then could
// destroy what a repair might still save, and sizes would be wrong.
std::unordered_set<BlobId, BlobIdHash> used_blobs(const Repository& repo, const std::vector<Snapshot>& snaps,
                                                  const std::string& what) {
  std::unordered_set<BlobId, BlobIdHash> used;
  for (const auto& s : snaps) {
    std::vector<BlobId> stack{blob_id_from_hex(s.doc.at("tree").get<std::string>())};
    while (!stack.empty()) {
      BlobId t = stack.back();
      stack.pop_back();
      if (!used.insert(t).second) continue;
      json doc;
      try {
        doc = repo.read_tree(t);
      } catch (const Error& e) {
        throw Error(Errc::refused, "cannot " + what + " a damaged repository", repo.path().string(),
                    std::string("snapshot ") + s.id.substr(0, 8) + ": " + e.what(),
                    "run 'dlc backup check --read-data', then 'dlc backup repair index' or forget the damaged snapshots");
      }
      for (const json& n : doc.at("nodes")) {
        if (n.contains("subtree")) stack.push_back(blob_id_from_hex(n["subtree"].get<std::string>()));
        for (const json& h : n.value("content", json::array())) used.insert(blob_id_from_hex(h.get<std::string>()));
      }
    }
  }
  return used;
}

void remove_file(const fs::path& p) {
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) throw_errno("cannot delete", p.string());
}

PruneResult prune_on(Repository& repo, bool dry_run, const UnusedLimit& max_unused) {
  PruneResult r;
  r.dry_run = dry_run;
  repo.load_index();
  const std::vector<Snapshot> snaps = repo.snapshots();
  const auto used = used_blobs(repo, snaps, "prune");
  const Index& index = repo.index();
  std::uint64_t temp_files = 0;
  auto disk = packs_on_disk(repo.path(), &temp_files);

  // Packs whose blobs are all used stay; packs with none are deleted; partly
  // used packs are repacked, most unused first, until what unused data is
  // left is within max_unused.
  struct Partly {
    std::size_t pack;
    std::uint64_t live_blobs, used_bytes, unused_bytes;
  };
  std::vector<PackInfo> keep;
  std::vector<std::size_t> repack, drop;
  std::vector<Partly> partly;
  for (std::size_t i = 0; i < index.packs().size(); ++i) {
    const PackInfo& p = index.packs()[i];
    if (!disk.count(hex(p.id))) continue;  // missing: nothing to keep or delete (check reports it)
    std::uint64_t live = 0, used_bytes = 0, unused_bytes = 0;
    for (std::uint32_t j = 0; j < p.blobs.size(); ++j) {
      if (used.count(p.blobs[j].id) && index.is_primary(static_cast<std::uint32_t>(i), j)) {
        ++live;
        used_bytes += p.blobs[j].length;
      } else {
        unused_bytes += p.blobs[j].length;
      }
    }
    r.used_bytes += used_bytes;
    if (live == p.blobs.size()) {
      keep.push_back(p);
    } else if (live == 0) {
      drop.push_back(i);
      r.blobs_removed += p.blobs.size();
      r.bytes_freed += p.size;
    } else {
      partly.push_back({i, live, used_bytes, unused_bytes});
    }
  }
  std::vector<PackUsage> usage;
  for (const auto& c : partly) usage.push_back({c.used_bytes, c.unused_bytes});
  std::vector<char> chosen(partly.size(), 0);
  for (std::size_t k : packs_to_repack(usage, r.used_bytes, max_unused)) chosen[k] = 1;
  for (std::size_t k = 0; k < partly.size(); ++k) {
    const Partly& c = partly[k];
    const PackInfo& p = index.packs()[c.pack];
    if (chosen[k]) {
      repack.push_back(c.pack);
      r.blobs_removed += p.blobs.size() - c.live_blobs;
    } else {
      keep.push_back(p);
      ++r.packs_partly_used_kept;
      r.blobs_unused_kept += p.blobs.size() - c.live_blobs;
      r.unused_bytes_kept += c.unused_bytes;
    }
  }
  std::set<std::string> indexed;
  for (const auto& p : index.packs()) indexed.insert(hex(p.id));
  std::vector<std::string> orphans;
  for (const auto& [name, size] : disk)
    if (!indexed.count(name)) {
      orphans.push_back(name);
      r.bytes_freed += size;
    }
  r.packs_deleted = drop.size();
  r.packs_repacked = repack.size();
  r.orphans_deleted = orphans.size();
  r.tmp_deleted = temp_files;
  if (dry_run) return r;

  // Repack: copy the live blobs of partly used packs into new packs.
  std::vector<PackInfo> written;
  if (!repack.empty()) {
    Uploader up(repo, false);
    Uploader::Worker w;
    std::uint64_t before = 0;
    for (std::size_t i : repack) {
      const PackInfo& p = index.packs()[i];
      before += p.size;
      for (std::uint32_t j = 0; j < p.blobs.size(); ++j) {
        const BlobEntry& b = p.blobs[j];
        if (!used.count(b.id) || !index.is_primary(static_cast<std::uint32_t>(i), j)) continue;
        const Bytes plain = repo.read_blob(b.id);
        up.store(w, b.type, plain);
      }
    }
    up.flush(w);
    written = up.wait_all();
    std::uint64_t after = 0;
    for (const auto& p : written) after += p.size;
    if (before > after) r.bytes_freed += before - after;
  }
  r.packs_written = written.size();
  // New index first, then the old index files, then the packs.
  for (auto& p : written) keep.push_back(std::move(p));
  const std::vector<std::string> old_index = repo.index_files();
  if (!keep.empty()) repo.write_index(keep);
  for (const auto& name : old_index) remove_file(repo.path() / "index" / name);
  fsync_dir(repo.path() / "index");
  r.index_files_replaced = old_index.size();
  for (std::size_t i : drop) remove_file(pack_path(repo.path(), index.packs()[i].id));
  for (std::size_t i : repack) remove_file(pack_path(repo.path(), index.packs()[i].id));
  for (const auto& name : orphans) remove_file(repo.path() / "data" / name.substr(0, 2) / name);
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(repo.path() / "data", ec))
    for (const auto& f : fs::directory_iterator(d.path(), ec))
      if (is_temp_name(f.path().filename().string())) remove_file(f.path());
  for (const char* dir : {"index", "snapshots", "keys", ""})
    for (const auto& f : fs::directory_iterator(repo.path() / dir, ec))
      if (is_temp_name(f.path().filename().string())) remove_file(f.path());
  repo.load_index();
  return r;
}

std::string bucket(std::int64_t ns, const char* fmt) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

}  // namespace

UnusedLimit parse_unused_limit(const std::string& text) {
  auto bad = [&] {
    return Error(Errc::usage, "not a limit of unused data", text, {},
                 "give a percentage (5%), a size (0, 500K, 200M, 1.5G, 2T) or 'unlimited'");
  };
  UnusedLimit l;
  if (text == "unlimited") {
    l.kind = UnusedLimit::Kind::unlimited;
    return l;
  }
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) throw bad();
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw bad();
  }
  const std::string unit = text.substr(used);
  if (!std::isfinite(v) || v < 0) throw bad();
  if (unit == "%") {
    if (v >= 100) throw Error(Errc::usage, "the unused share must be below 100%", text, {}, "or give 'unlimited'");
    l.kind = UnusedLimit::Kind::percent;
    l.percent = v;
    return l;
  }
  static const std::pair<const char*, int> units[] = {{"", 0}, {"B", 0}, {"K", 10}, {"k", 10}, {"M", 20}, {"m", 20},
                                                       {"G", 30}, {"g", 30}, {"T", 40}, {"t", 40}};
  for (const auto& [name, shift] : units) {
    if (unit != name) continue;
    const double bytes = v * static_cast<double>(std::uint64_t{1} << shift);
    if (bytes >= 1.8e19) throw bad();
    l.bytes = static_cast<std::uint64_t>(bytes);
    return l;
  }
  throw bad();
}

std::uint64_t unused_allowed(const UnusedLimit& l, std::uint64_t used) {
  switch (l.kind) {
    case UnusedLimit::Kind::unlimited:
      return ~std::uint64_t{0};
    case UnusedLimit::Kind::percent:  // unused <= p % of used + unused
      return static_cast<std::uint64_t>(static_cast<long double>(used) * l.percent / (100.0L - l.percent));
    case UnusedLimit::Kind::bytes:
      break;
  }
  return l.bytes;
}

std::vector<std::size_t> packs_to_repack(const std::vector<PackUsage>& partly, std::uint64_t total_used,
                                         const UnusedLimit& limit) {
  std::vector<std::size_t> order(partly.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    const PackUsage &a = partly[x], &b = partly[y];
    // a's unused share > b's, without division: a.unused * b.total > b.unused * a.total
    const unsigned __int128 l = static_cast<unsigned __int128>(a.unused_bytes) * (b.used_bytes + b.unused_bytes);
    const unsigned __int128 r = static_cast<unsigned __int128>(b.unused_bytes) * (a.used_bytes + a.unused_bytes);
    return l != r ? l > r : a.unused_bytes > b.unused_bytes;
  });
  std::uint64_t unused_left = 0;
  for (const auto& p : partly) unused_left += p.unused_bytes;
  const std::uint64_t allowed = unused_allowed(limit, total_used);
  std::vector<std::size_t> out;
  for (std::size_t i : order) {
    if (unused_left <= allowed) break;
    out.push_back(i);
    unused_left -= partly[i].unused_bytes;
  }
  return out;
}

PruneResult run_prune(const PruneOptions& opts) {
  auto repo = Repository::open(opts, LockMode::exclusive);
  return prune_on(*repo, opts.dry_run, opts.max_unused);
}

ForgetResult run_forget(const ForgetOptions& opts) {
  auto repo = Repository::open(opts, LockMode::exclusive);
  std::vector<Snapshot> snaps = repo->snapshots();
  std::set<std::string> remove;
  ForgetResult r;
  const bool policy = opts.keep_last || opts.keep_hourly || opts.keep_daily || opts.keep_weekly ||
                      opts.keep_monthly || opts.keep_yearly;
  if (!opts.snapshots.empty()) {
    if (policy) throw Error(Errc::usage, "give snapshots or a --keep-* policy, not both");
    for (const auto& ref : opts.snapshots) remove.insert(repo->find_snapshot(ref).id);
  } else {
    if (!policy)
      throw Error(Errc::usage, "no --keep-* policy and no snapshot given", {}, {},
                  "e.g. --keep-daily 7 --keep-weekly 4 --keep-monthly 12");
    // Per group (host + paths), newest first.
    std::map<std::string, std::vector<const Snapshot*>> groups;
    for (const auto& s : snaps) groups[s.doc.value("host", "") + "\n" + s.doc.value("paths", json::array()).dump()].push_back(&s);
    for (auto& [key, list] : groups) {
      std::reverse(list.begin(), list.end());
      std::set<std::string> keep;
      for (std::size_t i = 0; i < list.size() && i < opts.keep_last; ++i) keep.insert(list[i]->id);
      const std::pair<unsigned, const char*> rules[] = {{opts.keep_hourly, "%Y%m%d%H"}, {opts.keep_daily, "%Y%m%d"},
                                                        {opts.keep_weekly, "%G%V"},      {opts.keep_monthly, "%Y%m"},
                                                        {opts.keep_yearly, "%Y"}};
      for (const auto& [n, fmt] : rules) {
        if (!n) continue;
        std::string last;
        unsigned count = 0;
        for (const Snapshot* s : list) {
          const std::string b = bucket(s->time_ns, fmt);
          if (b == last) continue;
          last = b;
          if (count++ < n) keep.insert(s->id);
        }
      }
      for (const Snapshot* s : list)
        if (!keep.count(s->id)) remove.insert(s->id);
    }
  }
  for (const auto& s : snaps) (remove.count(s.id) ? r.removed : r.kept).push_back(s.id);
  if (!opts.dry_run) {
    for (const auto& id : r.removed) remove_file(repo->path() / "snapshots" / id);
    fsync_dir(repo->path() / "snapshots");
    if (opts.prune) r.prune = prune_on(*repo, false, opts.max_unused);
  } else if (opts.prune) {
    r.prune = PruneResult{};
    r.prune->dry_run = true;
  }
  return r;
}

RepairResult run_repair_index(const RepoOptions& opts) {
  auto repo = Repository::open(opts, LockMode::exclusive);
  RepairResult r;
  const std::vector<std::string> old_index = list_names(repo->path() / "index");
  std::vector<PackInfo> packs;
  for (const auto& [name, size] : packs_on_disk(repo->path())) {
    const fs::path p = repo->path() / "data" / name.substr(0, 2) / name;
    try {
      Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) throw_errno("cannot open", p.string());
      PackHeader h;
      PackInfo info;
      info.blobs = read_pack_table(fd.get(), size, p,
                                   [&](std::uint32_t key_id, const BlobId& salt) { return repo->pack_aead(key_id, salt); }, &h);
      if (hex(h.salt) != name) throw Error(Errc::io, "pack id does not match its file name", p.string());
      info.id = h.salt;
      info.key_id = h.key_id;
      info.size = size;
      r.blobs_indexed += info.blobs.size();
      packs.push_back(std::move(info));
    } catch (const Error& e) {
      ++r.packs_unreadable;
      r.unreadable.push_back(name + ": " + e.what());
    }
  }
  r.packs_indexed = packs.size();
  if (!packs.empty()) repo->write_index(packs);
  for (const auto& name : old_index) remove_file(repo->path() / "index" / name);
  fsync_dir(repo->path() / "index");
  r.index_files_removed = old_index.size();
  return r;
}

StatsResult run_stats(const RepoOptions& opts) {
  auto repo = Repository::open(opts, LockMode::shared);
  repo->load_index();
  StatsResult r;
  r.cipher = std::string(crypto::aead_name(repo->cipher()));
  const auto snaps = repo->snapshots();
  r.snapshots = snaps.size();
  for (const auto& s : snaps) {
    walk_tree(*repo, blob_id_from_hex(s.doc.at("tree").get<std::string>()), [&](const std::string&, const json& n) {
      if (n.value("type", "") == "file") {
        ++r.files;
        r.restore_size += n.value("size", std::uint64_t{0});
      }
      return true;
    });
  }
  for (const auto& id : used_blobs(*repo, snaps, "compute statistics of")) {
    if (const BlobEntry* e = repo->index().find(id)) {
      r.unique_raw += e->raw_length;
      r.stored += e->length;
      ++r.blobs;
    }
  }
  r.packs = repo->index().packs().size();
  r.index_files = repo->index_files().size();
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(repo->path(), ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) r.repo_size += it->file_size(ec);
  return r;
}

LocationInfo run_locations(const LocationsOptions& opts) {
  const bool change = opts.set_region || opts.set_site;
  auto repo = Repository::open(opts, change ? LockMode::exclusive : LockMode::none, change);
  if (change) {
    json loc = {{"region", opts.set_region.value_or(repo->config().region)},
                {"site", opts.set_site.value_or(repo->config().site)}};
    repo->rewrite_config({{"location", loc}});
  }
  LocationInfo r;
  std::error_code ec;
  const fs::path canon = fs::canonical(repo->path(), ec);
  r.repo_path = ec ? fs::absolute(repo->path()).string() : canon.string();
  r.host = host_name();
  r.region = repo->config().region;
  r.site = repo->config().site;
  r.repo_id = repo->config().id;
  struct stat st{};
  if (::stat(r.repo_path.c_str(), &st) == 0)
    r.device_number = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  // The mount holding the repository: the longest mount point that prefixes its path.
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  std::size_t best = 0;
  while (std::getline(mi, line)) {
    std::istringstream is(line);
    std::string id, parent, devno, root, mnt;
    is >> id >> parent >> devno >> root >> mnt;
    const std::string mp = mnt;
    const bool prefix = r.repo_path == mp || mp == "/" ||
                        (r.repo_path.compare(0, mp.size(), mp) == 0 && r.repo_path.size() > mp.size() && r.repo_path[mp.size()] == '/');
    if (!prefix || mp.size() < best) continue;
    std::string tok;
    while (is >> tok && tok != "-") {
    }
    std::string fstype, source;
    is >> fstype >> source;
    best = mp.size();
    r.mount_point = mp;
    r.filesystem = fstype;
    r.device = source;
    if (r.device_number.empty()) r.device_number = devno;
  }
  for (auto it = fs::recursive_directory_iterator(repo->path(), ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) r.repo_size += it->file_size(ec);
  return r;
}

// ---- key slots --------------------------------------------------------------------------

namespace {
KeySlotInfo slot_info(const json& s) {
  return {s.value("id", ""), s.value("type", ""), s.value("label", ""), s.value("created", ""),
          s.value("host", ""), s.value("user", ""), slot_detail(s)};
}
}  // namespace

KeyListResult run_key_list(const RepoOptions& opts, bool unlock) {
  auto repo = Repository::open(opts, LockMode::none, unlock);
  KeyListResult r;
  for (const auto& s : repo->slots()) r.slots.push_back(slot_info(s));
  if (unlock) {
    r.current_data_key = repo->current_key_id();
    r.data_keys = static_cast<std::uint32_t>(repo->data_keys().size());
  }
  return r;
}

KeySlotInfo run_key_add(const KeyAddOptions& opts) {
  auto repo = Repository::open(opts, LockMode::shared);
  const std::string id = repo->add_slot(opts.new_key, opts.label, opts.scrypt_n, opts.create_pkcs11_key);
  for (const auto& s : repo->slots())
    if (s.value("id", "") == id) return slot_info(s);
  throw Error(Errc::io, "the new key slot cannot be read back", id);
}

KeySlotInfo run_key_remove(const RepoOptions& opts, const std::string& slot_id) {
  auto repo = Repository::open(opts, LockMode::exclusive);
  const auto slots = repo->slots();
  std::optional<json> victim;
  for (const auto& s : slots)
    if (s.value("id", "") == slot_id) victim = s;
  if (!victim) throw Error(Errc::usage, "no such key slot", slot_id, {}, "see 'dlc backup key list'");
  if (slots.size() == 1)
    throw Error(Errc::refused, "will not remove the last key slot", slot_id, "the repository would become unreadable",
                "add another slot first");
  if (slot_id == repo->unlocked_slot())
    throw Error(Errc::refused, "will not remove the slot used to unlock", slot_id, {},
                "unlock with another slot to remove this one");
  remove_file(repo->path() / "keys" / slot_id);
  fsync_dir(repo->path() / "keys");
  return slot_info(*victim);
}

RotateResult run_key_rotate(const RepoOptions& opts) {
  auto repo = Repository::open(opts, LockMode::exclusive);
  RotateResult r;
  r.old_key = repo->current_key_id();
  repo->add_data_key();
  repo->save_keyring();
  r.new_key = repo->current_key_id();
  r.data_keys = static_cast<std::uint32_t>(repo->data_keys().size());
  return r;
}

InitResult init(const InitOptions& opts) { return Repository::create(opts); }

}  // namespace dlc::backup
