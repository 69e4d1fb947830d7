// run_migrate: endpoints, the destination's region, the residency check
// (before a byte moves), pre-flight, the engines, the signed manifests and
// report, and the audit records. Also `verify_migration` and small parsers.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/io_engine.h"
#include "core/text.h"
#include "migrate/engine.h"
#include "migrate/remote.h"

namespace dlc::migrate {

using nlohmann::json;
namespace fs = std::filesystem;

std::string Endpoint::display() const {
  if (kind != Kind::remote) return path;
  const bool v6 = host.find(':') != std::string::npos;
  return "dlc://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" + path;
}

Endpoint parse_endpoint(const std::string& text, bool must_exist) {
  Endpoint e;
  if (text.rfind("dlc://", 0) == 0) {
    e.kind = Endpoint::Kind::remote;
    std::string rest = text.substr(6);
    const auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    e.path = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
    std::string port;
    if (!hostport.empty() && hostport[0] == '[') {
      const auto close = hostport.find(']');
      if (close == std::string::npos) throw Error(Errc::usage, "bad destination", text, "unclosed [", "dlc://host:port/path");
      e.host = hostport.substr(1, close - 1);
      if (close + 1 < hostport.size() && hostport[close + 1] == ':') port = hostport.substr(close + 2);
    } else {
      const auto colon = hostport.rfind(':');
      e.host = hostport.substr(0, colon);
      if (colon != std::string::npos) port = hostport.substr(colon + 1);
    }
    if (e.host.empty() || port.empty())
      throw Error(Errc::usage, "bad remote destination", text, "host and port are required",
                  "write dlc://HOST:PORT/PATH");
    try {
      const unsigned long p = std::stoul(port);
      if (p == 0 || p > 65535) throw std::out_of_range("port");
      e.port = static_cast<std::uint16_t>(p);
    } catch (const std::exception&) {
      throw Error(Errc::usage, "bad port in", text, {}, "write dlc://HOST:PORT/PATH");
    }
    if (e.path.empty()) e.path = ".";
    return e;
  }
  e.path = text;
  struct stat st{};
  if (::stat(text.c_str(), &st) != 0) {
    if (must_exist) throw_errno("cannot open source", text);
    e.kind = Endpoint::Kind::tree;  // decided by the source's kind in run_migrate
    return e;
  }
  e.kind = S_ISDIR(st.st_mode) ? Endpoint::Kind::tree : Endpoint::Kind::volume;
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    throw Error(Errc::usage, "not a directory, block device or image file", text);
  return e;
}

std::uint64_t parse_rate(const std::string& text) {
  if (text.empty()) throw Error(Errc::usage, "empty rate", {}, {}, "write e.g. 100M (bytes per second)");
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw Error(Errc::usage, "bad rate", "'" + text + "'", {}, "write e.g. 100M, 1.5G, 512K (bytes per second)");
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 's' || unit.back() == 'S')) unit.pop_back();
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  double mult = 1;
  if (unit == "K" || unit == "k") mult = 1024;
  else if (unit == "M" || unit == "m") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "g") mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty())
    throw Error(Errc::usage, "bad rate unit", "'" + text + "'", {}, "use K, M or G (bytes per second)");
  if (v <= 0 || !std::isfinite(v)) throw Error(Errc::usage, "rate must be positive", "'" + text + "'");
  return static_cast<std::uint64_t>(v * mult);
}

json Preflight::to_json() const {
  return {{"files_total", files_total},     {"bytes_total", bytes_total},
          {"files_to_send", files_to_send}, {"bytes_to_send", bytes_to_send},
          {"dest_free", dest_free},         {"space_ok", space_ok},
          {"read_bps", static_cast<std::uint64_t>(read_bps)},
          {"write_bps", static_cast<std::uint64_t>(write_bps)},
          {"link_bps", static_cast<std::uint64_t>(link_bps)},
          {"rtt_us", static_cast<std::uint64_t>(rtt_ms * 1000)},
          {"estimated_ms", static_cast<std::uint64_t>(estimated_seconds * 1000)}};
}

namespace {

// Reads up to `limit` bytes of the biggest source files with O_DIRECT.
double measure_read_bps(const fs::path& src, const std::vector<verify::Entry>& files, std::uint64_t limit) {
  std::vector<const verify::Entry*> big;
  for (const auto& e : files) big.push_back(&e);
  std::sort(big.begin(), big.end(), [](auto* a, auto* b) { return a->size > b->size; });
  io::AlignedBuffer buf(4u << 20);
  std::uint64_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto* e : big) {
    if (done >= limit || e->size == 0) break;
    const fs::path p = src / e->path;
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECT);
    if (fd < 0) fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    std::uint64_t off = 0;
    while (done < limit) {
      const ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
      if (r <= 0) break;
      off += static_cast<std::uint64_t>(r);
      done += static_cast<std::uint64_t>(r);
    }
    ::close(fd);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s > 0 && done ? static_cast<double>(done) / s : 0;
}

// The migration key: one resume journal and state directory per SRC/DST pair.
std::string pair_key(const std::string& src, const std::string& dst, const std::string& kind) {
  const auto d = crypto::sha256(src + "\n" + dst + "\n" + kind);
  return crypto::to_hex(crypto::ByteView(d.data(), 8));
}

void audit_event(const MigrateOptions& o, const std::string& outcome, const std::string& target,
                 const json& details) {
  if (!o.audit) return;
  audit::Event ev;
  ev.command = "migrate";
  ev.args = o.command_line;
  ev.target = target;
  ev.outcome = outcome;
  ev.details = details;
  o.audit->append(ev);
}

std::string sha256_file(const fs::path& p) {
  return crypto::to_hex(crypto::sha256(verify::read_text_file(p)));
}

json manifest_summary(const verify::Manifest& m) {
  return {{"kind", m.kind}, {"merkle_root", m.merkle_root}, {"entries", m.entries.size()},
          {"files", m.files()}, {"bytes", m.bytes()}, {"read_method", m.read_method}};
}

}  // namespace

MigrateReport run_migrate(const MigrateOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  MigrateReport rep;
  rep.id = crypto::to_hex(crypto::random_bytes(8));
  const std::string started_at = dlc::now_rfc3339();
  rep.source = parse_endpoint(o.source, true);
  if (rep.source.kind == Endpoint::Kind::remote)
    throw Error(Errc::usage, "the source must be local", o.source, {},
                "run dlc migrate on the source host; the destination may be dlc://HOST:PORT/PATH");
  rep.destination = parse_endpoint(o.destination, false);
  const bool volume = rep.source.kind == Endpoint::Kind::volume;
  const bool remote = rep.destination.kind == Endpoint::Kind::remote;
  struct stat dst_st{};
  const bool dst_exists = !remote && ::stat(o.destination.c_str(), &dst_st) == 0;
  if (!remote && !volume && dst_exists && !S_ISDIR(dst_st.st_mode))
    throw Error(Errc::usage, "the destination of a tree must be a directory", o.destination);
  if (!remote && volume && dst_exists && S_ISDIR(dst_st.st_mode))
    throw Error(Errc::usage, "the destination of a volume must be a block device or an image file",
                o.destination, {}, "name a device or a file path");
  if (o.final_pass && !o.verify)
    throw Error(Errc::usage, "--final needs --verify", {}, {}, "the cut-over pass must be verified");

  const std::string src_abs = fs::absolute(o.source).lexically_normal().string();
  if (!remote) {
    // Copying a tree into itself (or onto its own parent) would never end.
    std::error_code cec;
    const fs::path a = fs::weakly_canonical(o.source, cec), b = fs::weakly_canonical(o.destination, cec);
    auto within = [](const fs::path& inner, const fs::path& outer) {
      auto i = inner.begin(), o2 = outer.begin();
      for (; o2 != outer.end() && !o2->empty(); ++o2, ++i)
        if (i == inner.end() || *i != *o2) return false;
      return true;
    };
    if (!a.empty() && !b.empty() && (within(a, b) || within(b, a)))
      throw Error(Errc::usage, "source and destination overlap", o.source + " and " + o.destination, {},
                  "choose a destination outside the source tree");
  }
  const std::string dst_id = remote ? rep.destination.display() : fs::absolute(o.destination).lexically_normal().string();
  const std::string kind = volume ? "volume" : "tree";
  rep.migration = pair_key(src_abs, dst_id, kind);
  rep.state_dir = o.state_dir.empty() ? dlc_home() / "migrate" / rep.migration : o.state_dir;
  const json target_details = {{"migration", rep.migration}, {"run", rep.id}, {"source", src_abs},
                               {"destination", dst_id}, {"kind", kind}};
  audit_event(o, "started", src_abs + " -> " + dst_id, target_details);

  auto refuse = [&](const std::string& why, const json& extra) {
    rep.outcome = "refused";
    rep.code = Errc::refused;
    rep.refusal = why;
    json d = target_details;
    d["reason"] = why;
    d.update(extra);
    audit_event(o, "refused", src_abs + " -> " + dst_id, d);
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
  };

  try {
    // ---- What is to move ----------------------------------------------------------
    std::vector<verify::Entry> walk;
    std::vector<verify::Entry> files;
    if (volume) {
      io::OpenOptions ro;
      io::File f = io::File::open(o.source, ro);
      verify::Entry e;
      e.path = ".";
      e.type = verify::EntryType::volume;
      e.size = f.size();
      files.push_back(e);
    } else {
      walk = verify::walk_tree(o.source, o.xattrs);
      for (const auto& e : walk)
        if (e.type == verify::EntryType::file) files.push_back(e);
    }
    for (const auto& f : files) {
      rep.preflight.files_total += 1;
      rep.preflight.bytes_total += f.size;
    }

    // ---- The destination and where it is --------------------------------------------
    LocalOptions lo{o.alg, o.threads, o.xattrs, o.sparse};
    std::unique_ptr<Destination> dest;
    std::unique_ptr<RemoteVolume> rvol;  // a volume to a remote receiver
    if (remote && volume) rvol = make_remote_volume(rep.destination, o);
    else if (remote) dest = make_remote_destination(rep.destination, o);
    else if (!volume) dest = make_local_destination(o.destination, lo);
    DestInfo info;
    if (dest) info = dest->info();
    if (rvol) info.attestation = rvol->info().attestation;
    std::string region = o.dest_region, site = o.dest_site, region_source = o.dest_region.empty() ? "" : "--dest-region";
    if (remote) {
      const json& a = info.attestation;
      const std::string ar = a.value("region", std::string());
      if (!ar.empty()) {
        if (!region.empty() && region != ar)
          return refuse("the receiver attests region " + ar + " but --dest-region says " + region,
                        {{"attested_region", ar}});
        region = ar;
        site = a.value("site", std::string());
        region_source = "receiver attestation (key " + a.value("key_fingerprint", std::string("?")) +
                        (o.attestation_key.empty() ? ", unpinned)" : ", pinned)");
      }
    } else if (region.empty()) {
      const fs::path cfg = dlc_home() / "site.json";
      std::error_code ec;
      if (fs::exists(cfg, ec)) {
        const json j = verify::read_json_file(cfg, "site configuration");
        region = j.value("region", std::string());
        site = j.value("site", std::string());
        region_source = "config " + cfg.string();
      }
    }

    // ---- Residency, before anything is written ------------------------------------------
    if (o.policy) {
      if (region.empty())
        return refuse("the destination's region is unknown",
                      {{"hint", "pass --dest-region, configure $DLC_HOME/site.json, or use a receiver started with --region"}});
      ResidencyInput in;
      in.policy = *o.policy;
      in.labels = o.labels;
      in.source_root = src_abs;
      in.files = files;
      in.region = region;
      in.site = site;
      in.region_source = region_source;
      in.approvals = o.approvals;
      in.volume = volume;
      rep.residency = check_residency(in);
      if (!rep.residency.ok) {
        std::vector<std::string> paths;
        for (const auto& v : rep.residency.violations) {
          if (paths.size() >= 50) break;
          paths.push_back(v.path);
        }
        return refuse(std::to_string(rep.residency.violations.size()) +
                          " file(s) may not move to region " + region + " under policy " +
                          rep.residency.policy_name,
                      {{"violations", rep.residency.violations.size()}, {"paths", paths}});
      }
    } else {
      rep.residency.checked = false;
      rep.residency.region = region;
      rep.residency.site = site;
      rep.residency.region_source = region_source;
    }

    // ---- Ownership of the destination and pre-flight ---------------------------------------
    const fs::path journal_path = rep.state_dir / "journal.jsonl";
    std::error_code ec;
    // Ours: this pair has a journal (even when --restart is about to forget it).
    const bool ours = fs::exists(journal_path, ec);
    const bool have_journal = !o.restart && ours;
    if (dest && info.exists && !info.empty && !ours)
      return refuse("the destination is not empty and was not written by this migration",
                    {{"hint", "choose an empty or new destination"}});
    if (volume && dst_exists && S_ISREG(dst_st.st_mode) && dst_st.st_size > 0 && !ours)
      return refuse("the destination image exists and was not written by this migration",
                    {{"hint", "choose a new image path or a device"}});
    if (rvol) {
      const RemoteVolumeInfo& rv = rvol->info();
      if (!rv.device && rv.exists && rv.size > 0 && !ours)
        return refuse("the destination image exists at the receiver and was not written by this migration",
                      {{"target", rv.target}, {"hint", "choose a new image path"}});
      if (rv.device && rv.size < files.front().size)
        return refuse("the receiver's device is smaller than the source",
                      {{"target", rv.target}, {"device_bytes", rv.size}, {"source_bytes", files.front().size}});
    }
    const json header = {{"source", src_abs}, {"destination", dst_id}, {"hash", crypto::hash_name(o.alg)},
                         {"kind", kind}};
    {
      // Bytes still to send: what the journal does not already hold.
      std::map<std::string, JournalRecord> known;
      if (have_journal) {
        Journal peek(rep.state_dir, header, false);
        known = peek.files();
      }
      for (const auto& f : files) {
        auto it = known.find(f.path);
        if (!volume && it != known.end() && unchanged(it->second, f)) continue;
        rep.preflight.files_to_send += 1;
        rep.preflight.bytes_to_send += f.size;
      }
      if (volume) {
        std::uint64_t have = 0;
        for (const auto& [k, r] : known) have += r.size;
        rep.preflight.bytes_to_send -= std::min(have, rep.preflight.bytes_to_send);
      }
    }
    if (dest) {
      rep.preflight.dest_free = info.free_bytes;
      // A filesystem that reports no size at all (ramfs) cannot be checked: not refused.
      rep.preflight.space_ok = info.free_unknown || info.free_bytes >= rep.preflight.bytes_to_send;
      rep.preflight.write_bps = dest->measure_write_bps(8u << 20);
      auto [bps, rtt] = dest->measure_link();
      rep.preflight.link_bps = bps;
      rep.preflight.rtt_ms = rtt;
    } else if (rvol) {
      const RemoteVolumeInfo& rv = rvol->info();
      if (rv.device) {
        rep.preflight.space_ok = true;  // the device is at least as large (checked above)
      } else {
        rep.preflight.dest_free = rv.free_bytes;
        rep.preflight.space_ok = rv.free_bytes >= rep.preflight.bytes_to_send;
      }
      rep.preflight.write_bps = rvol->measure_write_bps(8u << 20);
      auto [bps, rtt] = rvol->measure_link();
      rep.preflight.link_bps = bps;
      rep.preflight.rtt_ms = rtt;
    } else {
      rep.preflight.space_ok = true;  // checked against the device size by the engine
    }
    rep.preflight.read_bps = volume ? 0 : measure_read_bps(o.source, files, 16u << 20);
    {
      double rate = 0;
      for (double r : {rep.preflight.read_bps, rep.preflight.write_bps, rep.preflight.link_bps})
        if (r > 0) rate = rate > 0 ? std::min(rate, r) : r;
      if (o.bwlimit) rate = rate > 0 ? std::min(rate, static_cast<double>(o.bwlimit)) : static_cast<double>(o.bwlimit);
      if (rate > 0) {
        rep.preflight.estimated_seconds = static_cast<double>(rep.preflight.bytes_to_send) / rate;
        if (o.verify && rep.preflight.read_bps > 0)
          rep.preflight.estimated_seconds += static_cast<double>(rep.preflight.bytes_total) / rep.preflight.read_bps;
      }
    }
    if (!rep.preflight.space_ok)
      return refuse("not enough free space at the destination",
                    {{"need", rep.preflight.bytes_to_send}, {"free", rep.preflight.dest_free}});
    if (o.dry_run) {
      rep.outcome = "dry-run";
      rep.code = Errc::ok;
      json d = target_details;
      d["preflight"] = rep.preflight.to_json();
      audit_event(o, "dry-run", src_abs + " -> " + dst_id, d);
      if (dest) dest->close();
      if (rvol) rvol->close();
      rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return rep;
    }

    // ---- Back up first (9.5c) ---------------------------------------------------------
    if (o.backup_repo) {
      if (volume)
        throw Error(Errc::usage, "--backup-to backs up trees only", o.source, {},
                    "snapshot the volume with your storage's tools, or migrate a mounted tree");
      const fs::path record = rep.state_dir / "backup.json";
      std::error_code bec;
      if (!o.restart && fs::exists(record, bec)) {
        rep.backup = verify::read_json_file(record, "backup record");  // taken by an earlier run
        rep.backup["reused"] = true;
      } else {
        backup::BackupOptions bo;
        bo.repo = *o.backup_repo;
        bo.key = o.backup_key;
        bo.threads = o.threads;
        bo.paths = {fs::path(src_abs)};
        bo.tags = {"dlc-migrate", "migration:" + rep.migration};
        bo.progress = o.progress;
        const backup::BackupResult br = backup::run_backup(bo);
        rep.backup = {{"repo", fs::absolute(*o.backup_repo).lexically_normal().string()},
                      {"snapshot", br.snapshot_id},
                      {"taken_at", dlc::now_rfc3339()},
                      {"files", br.files_new + br.files_changed + br.files_unmodified},
                      {"bytes", br.bytes_total}};
        dlc::write_file_atomic(record, rep.backup.dump(2) + "\n", 0600, ParentDir::create);
        json d = target_details;
        d["backup"] = rep.backup;
        audit_event(o, "backed-up", src_abs + " -> " + dst_id, d);
      }
    }

    // ---- The copy -----------------------------------------------------------------------
    Journal journal(rep.state_dir, header, o.restart);
    rep.resumed = journal.resumed();
    verify::Manifest source_m;
    std::optional<verify::Manifest> dest_m;
    std::optional<verify::Comparison> cmp;
    if (volume) {
      VolumeResult vr = rvol ? migrate_volume_remote(o, o.source, *rvol, journal)
                             : migrate_volume(o, o.source, o.destination, journal);
      if (rvol) rvol->close();
      if (!vr.comparison && !vr.copy_failures.empty()) {
        verify::Comparison c;
        c.ok = false;
        c.differences = vr.copy_failures;
        vr.comparison = c;
      }
      rep.files_sent = vr.chunks_sent;
      rep.files_skipped = vr.chunks_skipped;
      rep.bytes_sent = vr.bytes_sent;
      rep.passes_run = vr.passes;
      rep.profile = std::move(vr.profile);
      source_m = std::move(vr.source);
      dest_m = std::move(vr.dest);
      cmp = std::move(vr.comparison);
    } else {
      dest->prepare();
      TreeResult tr = migrate_tree(o, o.source, *dest, journal, std::move(walk));
      dest->close();
      rep.files_sent = tr.files_sent;
      rep.bytes_sent = tr.bytes_sent;
      rep.files_skipped = tr.files_skipped;
      rep.files_removed = tr.files_removed;
      rep.passes_run = tr.passes;
      rep.profile = std::move(tr.profile);
      source_m = std::move(tr.source);
      dest_m = std::move(tr.dest);
      cmp = std::move(tr.comparison);
      if (!cmp && !tr.copy_failures.empty()) {
        verify::Comparison c;
        c.ok = false;
        c.differences = tr.copy_failures;
        cmp = c;
      }
    }
    rep.entries = source_m.entries.size();
    rep.source_root = source_m.merkle_root;
    if (dest_m) {
      dest_m->root = dst_id;
      rep.dest_root = dest_m->merkle_root;
    }
    rep.comparison = cmp;

    // ---- Manifests, report, audit ----------------------------------------------------------
    const audit::HostKey key = audit::HostKey::load_or_create(dlc_home());
    rep.manifest_path = rep.state_dir / "source-manifest.json";
    verify::save_manifest(source_m, rep.manifest_path, &key);
    if (!o.manifest_out.empty()) verify::save_manifest(source_m, o.manifest_out, &key);
    if (dest_m) {
      rep.dest_manifest_path = rep.state_dir / "dest-manifest.json";
      verify::save_manifest(*dest_m, rep.dest_manifest_path, &key);
    }
    if (o.verify) {
      rep.outcome = cmp && cmp->ok ? "verified" : "verification-failed";
      rep.code = cmp && cmp->ok ? Errc::ok : Errc::check_failed;
    } else {
      rep.outcome = cmp && !cmp->ok ? "verification-failed" : "copied";
      rep.code = cmp && !cmp->ok ? Errc::check_failed : Errc::ok;
    }
    json src_j = manifest_summary(source_m);
    src_j["path"] = src_abs;
    src_j["manifest"] = rep.manifest_path.string();
    src_j["manifest_sha256"] = sha256_file(rep.manifest_path);
    json dst_j = {{"path", dst_id}, {"region", region}, {"site", site}, {"region_source", region_source}};
    if (dest_m) {
      dst_j.update(manifest_summary(*dest_m));
      dst_j["manifest"] = rep.dest_manifest_path.string();
      dst_j["manifest_sha256"] = sha256_file(rep.dest_manifest_path);
    }
    if (remote && !info.attestation.is_null()) dst_j["attestation"] = info.attestation;
    json verification = {{"performed", o.verify}};
    if (cmp) verification.update(verify::to_json(*cmp, 200));
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json doc = {{"format", std::string(kReportFormat)},
                {"id", rep.id},
                {"migration", rep.migration},
                {"started_at", started_at},
                {"finished_at", dlc::now_rfc3339()},
                {"host", host_name()},
                {"user", user_name()},
                {"tool", std::string("dlc ") + DLC_VERSION},
                {"hash", std::string(crypto::hash_name(o.alg))},
                {"outcome", rep.outcome},
                {"source", src_j},
                {"destination", dst_j},
                {"residency", rep.residency.to_json(200)},
                {"preflight", rep.preflight.to_json()},
                {"transfer",
                 {{"passes", rep.passes_run},
                  {"final", o.final_pass},
                  {"resumed", rep.resumed},
                  {"sent", rep.files_sent},
                  {"bytes_sent", rep.bytes_sent},
                  {"skipped_verified", rep.files_skipped},
                  {"removed", rep.files_removed},
                  {"bwlimit", o.bwlimit},
                  {"unit", volume ? "chunk" : "file"},
                  {"profile", rep.profile.is_null() ? json::object() : rep.profile},
                  {"milliseconds", static_cast<std::uint64_t>(rep.seconds * 1000)}}},
                {"verification", verification},
                {"backup", rep.backup}};
    json fin = target_details;
    fin["outcome"] = rep.outcome;
    fin["source_root"] = rep.source_root;
    fin["dest_root"] = rep.dest_root;
    fin["files_sent"] = rep.files_sent;
    fin["bytes_sent"] = rep.bytes_sent;
    if (o.audit) {
      audit::Event ev;
      ev.command = "migrate";
      ev.args = o.command_line;
      ev.target = src_abs + " -> " + dst_id;
      ev.outcome = rep.code == Errc::ok ? "ok" : "failed";
      ev.details = fin;
      const audit::Appended a = o.audit->append(ev);
      doc["audit"] = {{"seq", a.seq}, {"hash", a.hash}};
    }
    verify::sign_document(doc, key);
    rep.document = doc;
    rep.report_path = rep.state_dir / ("report-" + rep.id + ".json");
    const std::string text = doc.dump(2) + "\n";
    dlc::write_file_atomic(rep.report_path, text, 0644, ParentDir::create);
    dlc::write_file_atomic(rep.state_dir / "report.json", text, 0644, ParentDir::create);
    if (!o.report_out.empty()) dlc::write_file_atomic(o.report_out, text, 0644, ParentDir::create);
    journal.note({{"finished", rep.id}, {"outcome", rep.outcome}});
    return rep;
  } catch (const Error& e) {
    json d = target_details;
    d["error"] = e.what();
    audit_event(o, e.code() == Errc::interrupted ? "interrupted" : "failed", src_abs + " -> " + dst_id, d);
    throw;
  }
}

VerifyMigrationResult verify_migration(const VerifyMigrationOptions& o) {
  VerifyMigrationResult r;
  const verify::Manifest expected = verify::load_manifest(o.manifest);
  r.manifest_signature = verify::check_signature(verify::to_json(expected), o.pubkey);
  if (!r.manifest_signature.valid) r.problems.push_back("manifest: " + r.manifest_signature.problem);
  else if (!r.manifest_signature.pinned)
    r.warnings.push_back("manifest: signed by key " + r.manifest_signature.key_fingerprint +
                         " but no --pubkey was given to pin it");
  if (o.report) {
    const json rep = verify::read_json_file(*o.report, "migration report");
    r.report_signature = verify::check_signature(rep, o.pubkey);
    if (!r.report_signature->valid) r.problems.push_back("report: " + r.report_signature->problem);
    const std::string root = rep.value("source", json::object()).value("merkle_root", std::string());
    if (root != expected.merkle_root)
      r.problems.push_back("report: its source root does not match the manifest's");
  }
  verify::ScanOptions so;
  so.root = o.destination;
  so.alg = expected.alg;
  so.threads = o.threads;
  so.no_cache = true;
  so.xattrs = expected.xattrs;
  so.sparse = expected.sparse;
  so.progress = o.progress;
  if (expected.kind == "volume") {
    so.volume = true;
    so.chunk_size = expected.entries.empty() ? so.chunk_size : expected.entries.front().chunk_size;
    so.volume_length = expected.bytes();
  }
  const verify::Manifest actual = verify::build_manifest(so);
  r.comparison = verify::compare(expected, actual);
  return r;
}

}  // namespace dlc::migrate
