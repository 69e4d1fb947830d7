// dlc verify backup: the scheduled verification job (JR/T 0167 9.7b). The
// same checker as 'dlc backup check'; a percentage subset reads the least
// recently verified packs first (coverage remembered per repository in
// $DLC_HOME/backup-verify/<repo-id>.json), so N runs of 100/N % cover all.
// --against compares a snapshot with the live tree. The report is signed
// with the host's Ed25519 key over its canonical JSON; a Prometheus textfile
// lets monitoring alert on damage or on stale coverage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "backup/backup.h"
#include "backup/checker.h"
#include "backup/progress.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "core/audit_log.h"
#include "core/error.h"
#include "core/signed_doc.h"

namespace dlc::backup {

using nlohmann::json;

namespace {

// Chunk ids of a live file, as the archiver would compute them.
std::optional<std::vector<BlobId>> live_ids(const Repository& repo, const Chunker& chunker, const fs::path& p) {
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::nullopt;
  std::vector<BlobId> ids;
  Bytes buf;
  try {
    for_each_chunk(fd.get(), chunker, buf, p.string(), [&](crypto::ByteView c) { ids.push_back(repo.blob_id(c)); });
  } catch (const Error&) {
    return std::nullopt;
  }
  return ids;
}

json compare_against(const Repository& repo, const Snapshot& snap, const fs::path& live_root, bool& ok,
                     ProgressSink* sink) {
  json out = {{"snapshot", snap.id}, {"path", live_root.string()}, {"compared", 0},
              {"missing", json::array()}, {"added", json::array()}, {"changed", json::array()},
              {"corrupt", json::array()}};
  const Chunker chunker = repo.make_chunker();
  // Find the snapshot node for live_root.
  BlobId tree = blob_id_from_hex(snap.doc.at("tree").get<std::string>());
  for (const auto& part : live_root.relative_path()) {
    json doc = repo.read_tree(tree);
    bool found = false;
    for (const json& n : doc.at("nodes"))
      if (node_name(n) == part.string() && n.contains("subtree")) {
        tree = blob_id_from_hex(n["subtree"].get<std::string>());
        found = true;
      }
    if (!found)
      throw Error(Errc::usage, "the snapshot does not contain", live_root.string(), "snapshot " + snap.id.substr(0, 8),
                  "give a directory the snapshot backed up");
  }
  std::uint64_t compared = 0;
  // Files whose size and mtime match are re-chunked and hashed afterwards, on
  // all cores (the walk itself is metadata only).
  struct ToHash {
    fs::path path;
    std::vector<BlobId> want;
    std::uint64_t size = 0;
  };
  std::vector<ToHash> to_hash;
  std::function<void(const BlobId&, const fs::path&)> cmp = [&](const BlobId& t, const fs::path& dir) {
    std::set<std::string> names;
    const json doc = repo.read_tree(t);  // named: the loop must not outlive it
    for (const json& n : doc.at("nodes")) {
      const std::string name = node_name(n);
      names.insert(name);
      const fs::path p = dir / name;
      struct stat st{};
      if (::lstat(p.c_str(), &st) != 0) {
        out["missing"].push_back(p.string());
        continue;
      }
      ++compared;
      const std::string type = n.value("type", "");
      if (type != node_type(st)) {
        out["changed"].push_back(p.string());
        continue;
      }
      if (type == "dir" && n.contains("subtree")) {
        cmp(blob_id_from_hex(n["subtree"].get<std::string>()), p);
      } else if (type == "file") {
        const bool same_meta = n.value("size", std::uint64_t{0}) == static_cast<std::uint64_t>(st.st_size) &&
                               n.value("mtime", std::int64_t{0}) ==
                                   static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        if (!same_meta) {
          out["changed"].push_back(p.string());
          continue;
        }
        ToHash t{p, {}, static_cast<std::uint64_t>(st.st_size)};
        for (const json& h : n.value("content", json::array())) t.want.push_back(blob_id_from_hex(h.get<std::string>()));
        to_hash.push_back(std::move(t));
      }
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (!names.count(e.path().filename().string())) out["added"].push_back(e.path().string());
  };
  cmp(tree, live_root);
  std::uint64_t bytes = 0;
  for (const auto& t : to_hash) bytes += t.size;
  ProgressTask progress(sink, "compare with source", bytes);
  std::vector<char> corrupt(to_hash.size(), 0);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  const unsigned n = std::max(1u, std::min<unsigned>(repo.threads(), static_cast<unsigned>(to_hash.size())));
  for (unsigned i = 0; i < n; ++i)
    threads.emplace_back([&] {
      for (std::size_t k; (k = next.fetch_add(1)) < to_hash.size();) {
        if (stop_requested().load()) break;
        try {  // a worker thread: nothing may escape it
          auto ids = live_ids(repo, chunker, to_hash[k].path);
          corrupt[k] = !ids || *ids != to_hash[k].want;
        } catch (const std::exception&) {
          corrupt[k] = 1;
        }
        progress.add(to_hash[k].size);
      }
    });
  for (auto& t : threads) t.join();
  if (stop_requested().load())
    throw Error(Errc::interrupted, "verification interrupted", live_root.string(), {}, "run it again");
  progress.finish(true);
  for (std::size_t k = 0; k < to_hash.size(); ++k) {
    if (!corrupt[k]) continue;
    // Same size and mtime but other bytes: silent corruption of the source or
    // of the snapshot. Either way the copy cannot be trusted.
    out["corrupt"].push_back(to_hash[k].path.string());
    ok = false;
  }
  out["compared"] = compared;
  return out;
}

}  // namespace

json sign_report(json report) {
  sign_json(report, audit::HostKey::load_or_create(dlc_home()), kReportSignatureDomain);
  return report;
}

bool verify_report_signature(const json& report) {
  return check_json_signature(report, kReportSignatureDomain, std::nullopt).valid;
}

std::string prometheus_metrics(const VerifyBackupResult& r, const std::string& repo) {
  std::string label = repo;
  for (std::size_t i = 0; i < label.size(); ++i)
    if (label[i] == '"' || label[i] == '\\') label.insert(i++, 1, '\\');
  const std::string l = "{repo=\"" + label + "\"}";
  std::ostringstream o;
  auto metric = [&](const char* name, const char* help, double v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n" << name << l << ' ' << std::fixed << v << '\n';
  };
  const auto& c = r.check;
  metric("dlc_backup_verify_ok", "1 when the last verification found no damage", r.ok() ? 1 : 0);
  metric("dlc_backup_verify_last_run_timestamp_seconds", "when the last verification ended",
         static_cast<double>(now_ns()) / 1e9);
  metric("dlc_backup_verify_duration_seconds", "duration of the last verification", c.seconds);
  metric("dlc_backup_verify_bytes_read", "pack bytes read and verified by the last run", static_cast<double>(c.bytes_read));
  metric("dlc_backup_verify_packs_read", "packs verified by the last run", static_cast<double>(c.packs_read));
  metric("dlc_backup_verify_packs_total", "packs in the repository", static_cast<double>(c.packs_total));
  metric("dlc_backup_verify_packs_never_verified", "packs no run has verified yet", static_cast<double>(c.packs_never_verified));
  metric("dlc_backup_verify_damaged_blobs", "damaged or lost blobs found", static_cast<double>(c.damaged_blobs.size()));
  metric("dlc_backup_verify_errors", "structural errors found", static_cast<double>(c.errors.size()));
  metric("dlc_backup_verify_affected_snapshots", "snapshots with damaged data", static_cast<double>(c.affected_snapshots.size()));
  metric("dlc_backup_verify_against_corrupt_files", "files whose bytes differ from the live source at equal size and mtime",
         r.against.is_object() ? static_cast<double>(r.against.value("corrupt", json::array()).size()) : 0.0);
  return o.str();
}

VerifyBackupResult run_verify_backup(const VerifyBackupOptions& opts) {
  VerifyBackupResult r;
  auto repo = Repository::open(opts, LockMode::shared);
  CheckOptions co;
  static_cast<RepoOptions&>(co) = opts;
  co.read_data = true;
  co.state_dir = opts.state_dir;
  if (opts.subset_percent) co.subset = Subset{*opts.subset_percent, 0, 0};
  r.check = run_check_on(*repo, co);
  if (opts.against) {
    std::error_code ec;
    fs::path live = fs::absolute(*opts.against, ec).lexically_normal();
    std::string s = live.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    r.against = compare_against(*repo, repo->find_snapshot(opts.snapshot), fs::path(s), r.against_ok, opts.progress);
  }
  json report = {{"format", "dlc-backup-verify-report/1"},
                 {"tool", std::string("dlc ") + DLC_VERSION},
                 {"time", rfc3339(now_ns())},
                 {"host", host_name()},
                 {"repo", opts.repo.string()},
                 {"repo_id", repo->config().id},
                 {"cipher", std::string(crypto::aead_name(repo->cipher()))},
                 {"mode", opts.subset_percent ? "subset" : "full"},
                 {"subset_percent", opts.subset_percent.value_or(100.0)},
                 {"ok", r.ok()},
                 {"check", to_json(r.check)}};
  if (opts.against) report["against"] = r.against;
  r.report = sign_report(report);
  if (!opts.report_file.empty()) write_atomic(opts.report_file, crypto::as_bytes(r.report.dump(2) + "\n"), 0644);
  if (!opts.metrics_file.empty())
    write_atomic(opts.metrics_file, crypto::as_bytes(prometheus_metrics(r, opts.repo.string())), 0644);
  return r;
}

}  // namespace dlc::backup
