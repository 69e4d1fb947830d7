// dlc backup: parses options, calls backup/backup.h, prints. No logic here.
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "backup/backup.h"
#include "cli/cli.h"
#include "core/error.h"

namespace dlc::cli {

namespace {

using nlohmann::json;
namespace bk = dlc::backup;

const char* kExitCodes =
    "Exit codes: 0 ok; 1 check found damage; 2 usage; 3 refused (repository locked, last key "
    "slot); 4 I/O error; 5 wrong passphrase or key (nothing was changed).";

// Options shared by every subcommand that opens a repository.
struct RepoArgs {
  std::string repo;
  unsigned threads = 0;
  double lock_wait = 0;
  bk::KeySource key;
};

void add_repo_options(ParseSpec& spec, RepoArgs& a, bool with_key = true) {
  spec.options.add_options()(
      "repo,r", po::value<std::string>(&a.repo)->value_name("DIR"),
      "repository directory (default: $DLC_REPOSITORY)")(
      "threads", po::value<unsigned>(&a.threads)->value_name("N"), "worker threads (default: one per core)")(
      "lock-wait", po::value<double>(&a.lock_wait)->value_name("SECONDS"),
      "wait this long for a conflicting lock instead of refusing at once");
  if (!with_key) return;
  spec.options.add_options()(
      "key-file", po::value<std::string>(&a.key.key_file)->value_name("PATH"), "unlock with a key file slot")(
      "key-command", po::value<std::string>(&a.key.key_command)->value_name("CMD"),
      "unlock with a command slot: CMD prints the key (e.g. a KMS decrypt call)")(
      "pkcs11-module", po::value<std::string>(&a.key.pkcs11_module)->value_name("PATH"),
      "PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so); PIN from the file named by $DLC_PKCS11_PIN_FILE or a prompt")(
      "pkcs11-token", po::value<std::string>(&a.key.pkcs11_token)->value_name("LABEL"), "PKCS#11 token label")(
      "pkcs11-key", po::value<std::string>(&a.key.pkcs11_key)->value_name("LABEL"), "label of the AES key on the token")(
      "passphrase-command", po::value<std::string>(&a.key.passphrase_command)->value_name("CMD"),
      "command printing the passphrase (else the file named by $DLC_PASSPHRASE_FILE, else a prompt)");
}

void fill(bk::RepoOptions& o, const RepoArgs& a, Context& ctx) {
  o.repo = a.repo;
  if (o.repo.empty())
    if (const char* env = std::getenv("DLC_REPOSITORY"); env && *env) o.repo = env;
  if (o.repo.empty())
    throw Error(Errc::usage, "no repository given", {}, {}, "pass --repo DIR or set DLC_REPOSITORY");
  o.threads = a.threads;
  o.lock_wait_seconds = a.lock_wait;
  o.key = a.key;
  o.progress = &ctx.progress();
}

// Runs a data-changing command with an audit record of its outcome.
template <typename Fn>
auto audited(Context& ctx, const std::string& command, const std::string& target, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    try {
      ctx.audit().append({command, ctx.argv(), target,
                          e.code() == Errc::interrupted ? "interrupted" : e.code() == Errc::auth ? "refused" : "failed",
                          {{"error", e.what()}, {"code", std::string(errc_name(e.code()))}}});
    } catch (const Error&) {
    }
    throw;
  }
}

void record(Context& ctx, const std::string& command, const std::string& target, const json& details,
            const std::string& outcome = "ok") {
  ctx.audit().append({command, ctx.argv(), target, outcome, details});
}

std::string repo_target(const bk::RepoOptions& o) { return o.repo.string(); }

bool parse(Context& ctx, const std::string& cmd, ParseSpec& spec, const std::vector<std::string>& args,
           po::variables_map& vm) {
  spec.about += std::string("\n") + kExitCodes;
  return parse_command(ctx, "backup " + cmd, spec, args, vm);
}

std::string short_id(const std::string& id) { return id.substr(0, 8); }

// ---- init ---------------------------------------------------------------------------

int do_init(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::InitOptions o;
  std::string chunker;
  ParseSpec spec;
  spec.usage = "dlc backup init --repo DIR [--cipher NAME] [--key-file PATH | --pkcs11-* | --key-command CMD]";
  spec.about =
      "Creates an encrypted repository: a random master key wrapped by a first key slot (a passphrase "
      "by default, or a key file, a PKCS#11 token key, or an external key command).";
  add_repo_options(spec, a);
  spec.options.add_options()(
      "cipher", po::value<std::string>(&o.cipher)->default_value("aes-256-gcm"),
      "aes-256-gcm | aes-128-gcm | chacha20-poly1305 | sm4-gcm")(
      "label", po::value<std::string>(&o.label), "label of the first key slot")(
      "region", po::value<std::string>(&o.region), "region tag reported by 'locations' (e.g. cn-north-1)")(
      "site", po::value<std::string>(&o.site), "site tag reported by 'locations' (e.g. dc-beijing-2)")(
      "compression", po::value<int>(&o.compression_level)->default_value(3), "zstd level, 0 = off")(
      "chunker", po::value<std::string>(&chunker)->value_name("MIN,AVG,MAX"), "chunk sizes in KiB (default 128,512,2048)")(
      "scrypt-n", po::value<std::uint64_t>(&o.scrypt_n)->default_value(1u << 15), "scrypt cost of a passphrase slot");
  spec.examples =
      "  DLC_PASSPHRASE_FILE=/etc/dlc/pass dlc backup init --repo /backup/repo --cipher sm4-gcm\n"
      "  dlc backup init --repo /backup/repo --key-file /etc/dlc/repo.key\n";
  po::variables_map vm;
  if (!parse(ctx, "init", spec, args, vm)) return 0;
  bk::RepoOptions ro;
  fill(ro, a, ctx);
  o.repo = ro.repo;
  o.key = a.key;
  if (!chunker.empty()) {
    unsigned mn = 0, av = 0, mx = 0;
    if (std::sscanf(chunker.c_str(), "%u,%u,%u", &mn, &av, &mx) != 3)
      throw Error(Errc::usage, "bad --chunker", chunker, {}, "give MIN,AVG,MAX in KiB");
    o.chunker = {mn * 1024, av * 1024, mx * 1024};
  }
  bk::InitResult r = audited(ctx, "backup init", o.repo.string(), [&] { return bk::init(o); });
  record(ctx, "backup init", o.repo.string(),
         {{"repo_id", r.repo_id}, {"cipher", r.cipher}, {"slot", r.slot_id}, {"slot_type", r.slot_type}});
  if (ctx.json())
    ctx.emit_json({{"repo", o.repo.string()}, {"id", r.repo_id}, {"cipher", r.cipher}, {"slot", r.slot_id},
                   {"slot_type", r.slot_type}});
  else
    ctx.say("created repository " + r.repo_id + " at " + o.repo.string() + " (" + r.cipher + ", " + r.slot_type +
            " slot " + r.slot_id + ")");
  return 0;
}

// ---- backup -------------------------------------------------------------------------

int do_backup(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::BackupOptions o;
  std::vector<std::string> paths;
  ParseSpec spec;
  spec.usage = "dlc backup backup --repo DIR PATH... [--exclude PATTERN]... [--tag TAG]...";
  spec.about =
      "Backs up files and directories into a new snapshot: content-defined chunks, deduplicated, "
      "compressed and sealed with the repository cipher. Files unchanged since the parent snapshot "
      "(same size, mtime, ctime, inode) are not read again.";
  add_repo_options(spec, a);
  spec.options.add_options()("path", po::value<std::vector<std::string>>(&paths), "paths to back up")(
      "exclude,e", po::value<std::vector<std::string>>(&o.excludes)->value_name("PATTERN"),
      "skip paths or names matching this glob (repeatable)")(
      "tag", po::value<std::vector<std::string>>(&o.tags)->value_name("TAG"), "tag the snapshot (repeatable)")(
      "host", po::value<std::string>(&o.host), "host name recorded (default: this host)")(
      "parent", po::value<std::string>(&o.parent), "parent snapshot (default: latest with the same paths)")(
      "force", po::bool_switch(&o.force_read), "read every file, ignoring the parent");
  spec.positional.add("path", -1);
  spec.examples = "  dlc backup backup --repo /backup/repo /srv/data --exclude '*.tmp' --tag daily\n";
  po::variables_map vm;
  if (!parse(ctx, "backup", spec, args, vm)) return 0;
  fill(o, a, ctx);
  for (const auto& p : paths) o.paths.emplace_back(p);
  bk::BackupResult r = audited(ctx, "backup backup", repo_target(o), [&] { return bk::run_backup(o); });
  json details = {{"snapshot", r.snapshot_id},       {"parent", r.parent_id},
                  {"paths", paths},                  {"files_new", r.files_new},
                  {"files_changed", r.files_changed}, {"files_unmodified", r.files_unmodified},
                  {"bytes_read", r.bytes_read},      {"bytes_added", r.bytes_new_stored},
                  {"warnings", r.warnings.size()}};
  record(ctx, "backup backup", repo_target(o), details);
  for (const auto& w : r.warnings) notice(NoticeLevel::warning, w);
  if (ctx.json()) {
    details["dirs"] = r.dirs;
    details["bytes_total"] = r.bytes_total;
    details["blobs_new"] = r.blobs_new;
    details["blobs_known"] = r.blobs_known;
    details["bytes_new_raw"] = r.bytes_new_raw;
    details["packs_written"] = r.packs_written;
    details["seconds"] = r.seconds;
    details["warnings"] = r.warnings;
    ctx.emit_json(details);
  } else {
    ctx.say("snapshot " + short_id(r.snapshot_id) + " saved" +
            (r.parent_id.empty() ? "" : " (parent " + short_id(r.parent_id) + ")"));
    ctx.say("  files: " + std::to_string(r.files_new) + " new, " + std::to_string(r.files_changed) + " changed, " +
            std::to_string(r.files_unmodified) + " unmodified; " + std::to_string(r.dirs) + " directories");
    std::ostringstream s;
    s << "  " << human_bytes(r.bytes_read) << " read, " << human_bytes(r.bytes_new_raw) << " new ("
      << human_bytes(r.bytes_new_stored) << " stored) in " << std::fixed << std::setprecision(2) << r.seconds << " s";
    ctx.say(s.str());
  }
  return 0;
}

// ---- snapshots / ls ---------------------------------------------------------------------

int do_snapshots(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  ParseSpec spec;
  spec.usage = "dlc backup snapshots --repo DIR";
  spec.about = "Lists the snapshots, oldest first.";
  add_repo_options(spec, a);
  po::variables_map vm;
  if (!parse(ctx, "snapshots", spec, args, vm)) return 0;
  bk::RepoOptions o;
  fill(o, a, ctx);
  auto list = bk::list_snapshots(o);
  if (ctx.json()) {
    json arr = json::array();
    for (const auto& s : list)
      arr.push_back({{"id", s.id}, {"time", s.time}, {"host", s.host}, {"user", s.user}, {"paths", s.paths},
                     {"tags", s.tags}, {"tree", s.tree}, {"parent", s.parent}, {"key_id", s.key_id},
                     {"summary", s.summary}});
    ctx.emit_json(arr);
    return 0;
  }
  for (const auto& s : list) {
    std::string paths;
    for (const auto& p : s.paths) paths.append(paths.empty() ? "" : " ").append(p);
    std::string tags;
    for (const auto& t : s.tags) tags.append(tags.empty() ? "" : ",").append(t);
    ctx.say(short_id(s.id) + "  " + s.time.substr(0, 19) + "  " + s.host + "  " + paths +
            (tags.empty() ? "" : "  [" + tags + "]"));
  }
  ctx.say(std::to_string(list.size()) + " snapshot(s)");
  return 0;
}

int do_ls(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  std::string snap = "latest";
  ParseSpec spec;
  spec.usage = "dlc backup ls --repo DIR [SNAPSHOT]";
  spec.about = "Lists the files of a snapshot (default: the latest).";
  add_repo_options(spec, a);
  spec.options.add_options()("snapshot", po::value<std::string>(&snap), "snapshot id, prefix, or latest");
  spec.positional.add("snapshot", 1);
  po::variables_map vm;
  if (!parse(ctx, "ls", spec, args, vm)) return 0;
  bk::RepoOptions o;
  fill(o, a, ctx);
  auto list = bk::list_files(o, snap);
  if (ctx.json()) {
    json arr = json::array();
    for (const auto& e : list)
      arr.push_back({{"path", e.path}, {"type", e.type}, {"mode", e.mode}, {"size", e.size},
                     {"mtime_ns", e.mtime_ns}, {"target", e.target}, {"sparse", e.sparse}});
    ctx.emit_json(arr);
    return 0;
  }
  for (const auto& e : list) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", e.mode);
    ctx.say(e.type.substr(0, 4) + " " + mode + " " + std::to_string(e.size) + "\t" + e.path +
            (e.target.empty() ? "" : " -> " + e.target));
  }
  return 0;
}

// ---- restore -----------------------------------------------------------------------------

int do_restore(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::RestoreOptions o;
  std::string target;
  ParseSpec spec;
  spec.usage = "dlc backup restore --repo DIR [SNAPSHOT] --target DIR [--include PATTERN]... [--verify]";
  spec.about =
      "Restores a snapshot (default: latest) under DIR, with modes, owners (as root), times, "
      "symlinks, hardlinks, xattrs and sparse files. --verify re-reads every restored file.";
  add_repo_options(spec, a);
  spec.options.add_options()("snapshot", po::value<std::string>(&o.snapshot), "snapshot id, prefix, or latest")(
      "target,t", po::value<std::string>(&target)->value_name("DIR"), "where to restore")(
      "include,i", po::value<std::vector<std::string>>(&o.includes)->value_name("PATTERN"),
      "restore only paths matching this glob or below it (repeatable)")(
      "verify", po::bool_switch(&o.verify), "re-read the restored files and compare with the snapshot");
  spec.positional.add("snapshot", 1);
  po::variables_map vm;
  if (!parse(ctx, "restore", spec, args, vm)) return 0;
  fill(o, a, ctx);
  o.target = target;
  bk::RestoreResult r = audited(ctx, "backup restore", repo_target(o), [&] { return bk::run_restore(o); });
  const bool ok = r.failed.empty();
  record(ctx, "backup restore", repo_target(o),
         {{"snapshot", r.snapshot_id}, {"target", target}, {"files", r.files}, {"bytes", r.bytes},
          {"verified", o.verify}, {"failed", r.failed.size()}},
         ok ? "ok" : "failed");
  for (const auto& w : r.warnings) notice(NoticeLevel::warning, w);
  for (const auto& f : r.failed) std::cerr << "dlc: not restored: " << f << '\n';
  if (ctx.json()) {
    ctx.emit_json({{"snapshot", r.snapshot_id}, {"target", target}, {"files", r.files}, {"dirs", r.dirs},
                   {"others", r.others}, {"bytes", r.bytes}, {"verified_files", r.verified_files},
                   {"failed", r.failed}, {"warnings", r.warnings}, {"seconds", r.seconds}});
  } else {
    std::ostringstream s;
    s << "restored snapshot " << short_id(r.snapshot_id) << " to " << target << ": " << r.files << " files, "
      << r.dirs << " directories, " << human_bytes(r.bytes) << " in " << std::fixed << std::setprecision(2)
      << r.seconds << " s";
    if (o.verify) s << "; " << r.verified_files << " verified";
    ctx.say(s.str());
  }
  return ok ? 0 : 1;
}

// ---- check ----------------------------------------------------------------------------------

bk::Subset parse_subset(const std::string& s) {
  bk::Subset sub;
  unsigned n = 0, m = 0;
  char c = 0;
  if (std::sscanf(s.c_str(), "%u/%u%c", &n, &m, &c) == 2) {
    if (m == 0 || n == 0 || n > m) throw Error(Errc::usage, "bad subset", s, {}, "n/m needs 1 <= n <= m");
    sub.n = n;
    sub.m = m;
    return sub;
  }
  std::string t = s;
  if (!t.empty() && t.back() == '%') t.pop_back();
  char* end = nullptr;
  const double pct = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || !(pct > 0 && pct <= 100))
    throw Error(Errc::usage, "bad subset", s, {}, "give a percentage (0-100, e.g. 10%) or n/m");
  sub.percent = pct;
  return sub;
}

void print_check(Context& ctx, const bk::CheckResult& r) {
  if (ctx.json()) {
    ctx.emit_json(bk::to_json(r));
    return;
  }
  std::ostringstream s;
  s << "checked " << r.snapshots << " snapshots, " << r.trees << " trees, " << r.packs_total << " packs";
  if (r.packs_read) s << "; read " << r.packs_read << " packs (" << human_bytes(r.bytes_read) << ", " << r.blobs_read << " blobs)";
  s << " in " << std::fixed << std::setprecision(2) << r.seconds << " s";
  ctx.say(s.str());
  for (const auto& w : r.warnings) ctx.say("  warning: " + w);
  for (const auto& e : r.errors) std::cerr << "dlc: error: " << e << '\n';
  for (const auto& b : r.damaged_blobs)
    std::cerr << "dlc: damaged " << b.type << " blob " << b.id << " in pack " << b.pack << ": " << b.reason << '\n';
  for (const auto& f : r.affected_files) std::cerr << "dlc: affected: snapshot " << short_id(f.snapshot) << " " << f.path << '\n';
  if (!r.affected_snapshots.empty()) {
    std::string ids;
    for (const auto& id : r.affected_snapshots) ids.append(" ").append(short_id(id));
    std::cerr << "dlc: affected snapshots:" << ids << '\n';
  }
  ctx.say(r.ok ? "no errors were found" : "the repository is damaged (see above)");
}

int do_check(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::CheckOptions o;
  std::string subset;
  ParseSpec spec;
  spec.usage = "dlc backup check --repo DIR [--read-data | --read-data-subset PCT%|n/m]";
  spec.about =
      "Checks the repository: index, packs, snapshots and trees; with --read-data also every blob "
      "(decrypt, decompress, keyed hash). Damage is reported with the blobs, files and snapshots it "
      "affects. A percentage subset reads the least recently verified packs first, so N runs of "
      "100/N % cover everything.";
  add_repo_options(spec, a);
  spec.options.add_options()("read-data", po::bool_switch(&o.read_data), "read and verify all data")(
      "read-data-subset", po::value<std::string>(&subset)->value_name("PCT%|n/m"), "read part of the data");
  po::variables_map vm;
  if (!parse(ctx, "check", spec, args, vm)) return 0;
  fill(o, a, ctx);
  if (!subset.empty()) o.subset = parse_subset(subset);
  bk::CheckResult r = bk::run_check(o);
  print_check(ctx, r);
  return r.ok ? 0 : 1;
}

// ---- forget / prune ------------------------------------------------------------------------------

void print_prune(Context& ctx, const bk::PruneResult& p) {
  ctx.say(std::string(p.dry_run ? "would delete " : "deleted ") + std::to_string(p.packs_deleted) + " packs, repacked " +
          std::to_string(p.packs_repacked) + " into " + std::to_string(p.packs_written) + ", removed " +
          std::to_string(p.orphans_deleted) + " orphan packs and " + std::to_string(p.tmp_deleted) +
          " temp files; " + human_bytes(p.bytes_freed) + " freed");
  if (p.packs_partly_used_kept)
    ctx.say(std::string(p.dry_run ? "would leave " : "left ") + human_bytes(p.unused_bytes_kept) + " unused in " +
            std::to_string(p.packs_partly_used_kept) + " partly used packs (--max-unused; " +
            human_bytes(p.used_bytes) + " used)");
}

json prune_json(const bk::PruneResult& p) {
  return {{"packs_deleted", p.packs_deleted}, {"packs_repacked", p.packs_repacked}, {"packs_written", p.packs_written},
          {"orphans_deleted", p.orphans_deleted}, {"tmp_deleted", p.tmp_deleted}, {"blobs_removed", p.blobs_removed},
          {"bytes_freed", p.bytes_freed}, {"index_files_replaced", p.index_files_replaced}, {"used_bytes", p.used_bytes},
          {"packs_partly_used_kept", p.packs_partly_used_kept}, {"blobs_unused_kept", p.blobs_unused_kept},
          {"unused_bytes_kept", p.unused_bytes_kept}, {"dry_run", p.dry_run}};
}

const char* kMaxUnusedHelp =
    "unused data to tolerate in partly used packs instead of repacking them: a share of the packed data "
    "(5%), a size (200M, 1G) or 'unlimited' (only packs nobody uses are deleted); default 0: every "
    "partly used pack is repacked, so nothing of a forgotten snapshot stays";

int do_forget(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::ForgetOptions o;
  std::string max_unused;
  ParseSpec spec;
  spec.usage = "dlc backup forget --repo DIR [--keep-last N] [--keep-daily N] ... [--prune [--max-unused LIMIT]] [SNAPSHOT...]";
  spec.about =
      "Removes snapshots: the ones named, or those no --keep-* rule keeps (per host and path set). "
      "--prune then removes the data only they used.";
  add_repo_options(spec, a);
  spec.options.add_options()("keep-last", po::value<unsigned>(&o.keep_last), "keep the N latest")(
      "keep-hourly", po::value<unsigned>(&o.keep_hourly), "keep the latest of each of the N last hours")(
      "keep-daily", po::value<unsigned>(&o.keep_daily), "keep the latest of each of the N last days")(
      "keep-weekly", po::value<unsigned>(&o.keep_weekly), "keep the latest of each of the N last weeks")(
      "keep-monthly", po::value<unsigned>(&o.keep_monthly), "keep the latest of each of the N last months")(
      "keep-yearly", po::value<unsigned>(&o.keep_yearly), "keep the latest of each of the N last years")(
      "dry-run,n", po::bool_switch(&o.dry_run), "only show what would be removed")(
      "prune", po::bool_switch(&o.prune), "prune afterwards")(
      "max-unused", po::value<std::string>(&max_unused)->value_name("LIMIT"), kMaxUnusedHelp)(
      "snapshot", po::value<std::vector<std::string>>(&o.snapshots), "snapshots to forget");
  spec.positional.add("snapshot", -1);
  po::variables_map vm;
  if (!parse(ctx, "forget", spec, args, vm)) return 0;
  fill(o, a, ctx);
  if (!max_unused.empty()) o.max_unused = bk::parse_unused_limit(max_unused);
  bk::ForgetResult r = audited(ctx, "backup forget", repo_target(o), [&] { return bk::run_forget(o); });
  json details = {{"removed", r.removed}, {"kept", r.kept.size()}, {"dry_run", o.dry_run}};
  if (r.prune) details["prune"] = prune_json(*r.prune);
  if (!o.dry_run) record(ctx, "backup forget", repo_target(o), details);
  if (ctx.json()) {
    details["kept"] = r.kept;
    ctx.emit_json(details);
    return 0;
  }
  for (const auto& id : r.removed) ctx.say((o.dry_run ? "would remove " : "removed ") + short_id(id));
  ctx.say(std::to_string(r.kept.size()) + " snapshot(s) kept, " + std::to_string(r.removed.size()) +
          (o.dry_run ? " would be removed" : " removed"));
  if (r.prune) print_prune(ctx, *r.prune);
  return 0;
}

int do_prune(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::PruneOptions o;
  std::string max_unused;
  ParseSpec spec;
  spec.usage = "dlc backup prune --repo DIR [--max-unused LIMIT] [--dry-run]";
  spec.about =
      "Removes data no snapshot uses: unused packs, the unused part of partly used packs (repacked), "
      "orphan packs and temp files left by interrupted backups. Takes the exclusive lock: it waits "
      "(--lock-wait) or refuses while a backup, restore or check runs.";
  add_repo_options(spec, a);
  spec.options.add_options()("dry-run,n", po::bool_switch(&o.dry_run), "only show what would be removed")(
      "max-unused", po::value<std::string>(&max_unused)->value_name("LIMIT"), kMaxUnusedHelp);
  po::variables_map vm;
  if (!parse(ctx, "prune", spec, args, vm)) return 0;
  fill(o, a, ctx);
  if (!max_unused.empty()) o.max_unused = bk::parse_unused_limit(max_unused);
  bk::PruneResult r = audited(ctx, "backup prune", repo_target(o), [&] { return bk::run_prune(o); });
  if (!o.dry_run) record(ctx, "backup prune", repo_target(o), prune_json(r));
  if (ctx.json())
    ctx.emit_json(prune_json(r));
  else
    print_prune(ctx, r);
  return 0;
}

// ---- stats / locations / repair ------------------------------------------------------------------

int do_stats(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  ParseSpec spec;
  spec.usage = "dlc backup stats --repo DIR";
  spec.about = "Sizes: what a restore of every snapshot writes, the distinct data, and the repository on disk.";
  add_repo_options(spec, a);
  po::variables_map vm;
  if (!parse(ctx, "stats", spec, args, vm)) return 0;
  bk::RepoOptions o;
  fill(o, a, ctx);
  bk::StatsResult r = bk::run_stats(o);
  json j = {{"snapshots", r.snapshots}, {"files", r.files}, {"restore_size", r.restore_size},
            {"unique_raw", r.unique_raw}, {"stored", r.stored}, {"repo_size", r.repo_size}, {"blobs", r.blobs},
            {"packs", r.packs}, {"index_files", r.index_files}, {"cipher", r.cipher}};
  if (ctx.json()) {
    ctx.emit_json(j);
    return 0;
  }
  ctx.say("snapshots:        " + std::to_string(r.snapshots) + " (" + std::to_string(r.files) + " files)");
  ctx.say("restore size:     " + human_bytes(r.restore_size));
  ctx.say("distinct data:    " + human_bytes(r.unique_raw) + " in " + std::to_string(r.blobs) + " blobs");
  ctx.say("stored (sealed):  " + human_bytes(r.stored) + " in " + std::to_string(r.packs) + " packs");
  ctx.say("repository size:  " + human_bytes(r.repo_size) + " (" + r.cipher + ")");
  if (r.stored)
    ctx.say("dedup+compression ratio: " + std::to_string(static_cast<double>(r.restore_size) / static_cast<double>(r.stored)).substr(0, 5));
  return 0;
}

int do_locations(Context& ctx, const std::vector<std::string>& args) {
  RepoArgs a;
  bk::LocationsOptions o;
  std::string region, site;
  ParseSpec spec;
  spec.usage = "dlc backup locations --repo DIR [--set-region R] [--set-site S]";
  spec.about =
      "Where this repository's data physically is (JR/T 0167 9.7c): path, host, filesystem, mount, "
      "device, and the region/site tags set at init (changing them needs the key and is audited).";
  add_repo_options(spec, a);
  spec.options.add_options()("set-region", po::value<std::string>(&region), "change the region tag")(
      "set-site", po::value<std::string>(&site), "change the site tag");
  po::variables_map vm;
  if (!parse(ctx, "locations", spec, args, vm)) return 0;
  fill(o, a, ctx);
  if (vm.count("set-region")) o.set_region = region;
  if (vm.count("set-site")) o.set_site = site;
  const bool changing = o.set_region || o.set_site;
  bk::LocationInfo r = changing ? audited(ctx, "backup locations", repo_target(o), [&] { return bk::run_locations(o); })
                                : bk::run_locations(o);
  json j = {{"repo_id", r.repo_id}, {"path", r.repo_path}, {"host", r.host}, {"filesystem", r.filesystem},
            {"mount_point", r.mount_point}, {"device", r.device}, {"device_number", r.device_number},
            {"region", r.region}, {"site", r.site}, {"size", r.repo_size}};
  if (changing) record(ctx, "backup locations", repo_target(o), {{"region", r.region}, {"site", r.site}});
  if (ctx.json()) {
    ctx.emit_json(j);
    return 0;
  }
  ctx.say("repository " + r.repo_id);
  ctx.say("  path:        " + r.repo_path);
  ctx.say("  host:        " + r.host);
  ctx.say("  filesystem:  " + r.filesystem + " mounted at " + r.mount_point);
  ctx.say("  device:      " + r.device + " (" + r.device_number + ")");
  ctx.say("  region:      " + (r.region.empty() ? std::string("(not set)") : r.region));
  ctx.say("  site:        " + (r.site.empty() ? std::string("(not set)") : r.site));
  ctx.say("  size:        " + human_bytes(r.repo_size));
  return 0;
}

int do_repair(Context& ctx, const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "index" && args[0] != "--help" && args[0] != "-h"))
    throw Error(Errc::usage, "dlc backup repair: say what to repair", {}, {}, "run 'dlc backup repair index'");
  std::vector<std::string> rest(args.begin() + (args[0] == "index" ? 1 : 0), args.end());
  RepoArgs a;
  ParseSpec spec;
  spec.usage = "dlc backup repair index --repo DIR";
  spec.about = "Rebuilds the index from the pack files (after a lost, truncated or damaged index).";
  add_repo_options(spec, a);
  po::variables_map vm;
  if (!parse(ctx, "repair index", spec, rest, vm)) return 0;
  bk::RepoOptions o;
  fill(o, a, ctx);
  bk::RepairResult r = audited(ctx, "backup repair index", repo_target(o), [&] { return bk::run_repair_index(o); });
  json j = {{"packs_indexed", r.packs_indexed}, {"blobs_indexed", r.blobs_indexed},
            {"packs_unreadable", r.packs_unreadable}, {"index_files_removed", r.index_files_removed},
            {"unreadable", r.unreadable}};
  record(ctx, "backup repair index", repo_target(o), j);
  if (ctx.json()) {
    ctx.emit_json(j);
  } else {
    ctx.say("index rebuilt: " + std::to_string(r.packs_indexed) + " packs, " + std::to_string(r.blobs_indexed) +
            " blobs; " + std::to_string(r.index_files_removed) + " old index files removed");
    for (const auto& u : r.unreadable) std::cerr << "dlc: unreadable pack: " << u << '\n';
  }
  return r.packs_unreadable ? 1 : 0;
}

// ---- key -----------------------------------------------------------------------------------------

int do_key(Context& ctx, const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  RepoArgs a;
  ParseSpec spec;
  add_repo_options(spec, a);
  po::variables_map vm;
  if (sub == "list") {
    bool unlock = false;
    spec.usage = "dlc backup key list --repo DIR [--unlock]";
    spec.about = "Lists the key slots (no key needed); --unlock also shows the data keys.";
    spec.options.add_options()("unlock", po::bool_switch(&unlock), "unlock to show the data key generations");
    if (!parse(ctx, "key list", spec, rest, vm)) return 0;
    bk::RepoOptions o;
    fill(o, a, ctx);
    bk::KeyListResult r = bk::run_key_list(o, unlock);
    if (ctx.json()) {
      json arr = json::array();
      for (const auto& s : r.slots)
        arr.push_back({{"id", s.id}, {"type", s.type}, {"label", s.label}, {"created", s.created},
                       {"host", s.host}, {"user", s.user}, {"detail", s.detail}});
      json j = {{"slots", arr}};
      if (unlock) j["data_keys"] = r.data_keys, j["current_data_key"] = r.current_data_key;
      ctx.emit_json(j);
      return 0;
    }
    for (const auto& s : r.slots)
      ctx.say(s.id + "  " + s.type + "  " + s.created.substr(0, 19) + "  " + s.user + "@" + s.host + "  " + s.detail +
              (s.label.empty() ? "" : "  \"" + s.label + "\""));
    if (unlock)
      ctx.say(std::to_string(r.data_keys) + " data key(s); new data is sealed with key " +
              std::to_string(r.current_data_key));
    return 0;
  }
  if (sub == "add") {
    bk::KeyAddOptions o;
    spec.usage = "dlc backup key add --repo DIR [unlock options] (--new-key-file PATH | --new-pkcs11-* | --new-key-command CMD | --new-passphrase)";
    spec.about =
        "Adds a key slot wrapping the same master key (no data is re-encrypted). The new passphrase "
        "comes from --new-passphrase-command, the file named by $DLC_NEW_PASSPHRASE_FILE, or a prompt.";
    bool passphrase = false;
    spec.options.add_options()("new-key-file", po::value<std::string>(&o.new_key.key_file), "new key file slot (created if missing)")(
        "new-key-command", po::value<std::string>(&o.new_key.key_command), "new command slot")(
        "new-pkcs11-module", po::value<std::string>(&o.new_key.pkcs11_module), "new PKCS#11 slot: module")(
        "new-pkcs11-token", po::value<std::string>(&o.new_key.pkcs11_token), "new PKCS#11 slot: token label")(
        "new-pkcs11-key", po::value<std::string>(&o.new_key.pkcs11_key),
        "new PKCS#11 slot: AES key label (generated on the token, not extractable, when absent)")(
        "new-passphrase", po::bool_switch(&passphrase), "new passphrase slot")(
        "new-passphrase-command", po::value<std::string>(&o.new_key.passphrase_command), "command printing the new passphrase")(
        "label", po::value<std::string>(&o.label), "label of the new slot")(
        "scrypt-n", po::value<std::uint64_t>(&o.scrypt_n)->default_value(1u << 15), "scrypt cost");
    if (!parse(ctx, "key add", spec, rest, vm)) return 0;
    fill(o, a, ctx);
    o.new_key.passphrase_env = "DLC_NEW_PASSPHRASE_FILE";
    if (o.new_key.kind() == "passphrase" && !passphrase && o.new_key.passphrase_command.empty())
      throw Error(Errc::usage, "dlc backup key add: say which slot to add", {}, {},
                  "pass --new-passphrase, --new-key-file, --new-pkcs11-* or --new-key-command");
    bk::KeySlotInfo s = audited(ctx, "backup key add", repo_target(o), [&] { return bk::run_key_add(o); });
    record(ctx, "backup key add", repo_target(o), {{"slot", s.id}, {"type", s.type}, {"label", s.label}});
    if (ctx.json())
      ctx.emit_json({{"id", s.id}, {"type", s.type}, {"label", s.label}, {"detail", s.detail}});
    else
      ctx.say("added " + s.type + " slot " + s.id);
    return 0;
  }
  if (sub == "remove") {
    std::string id;
    spec.usage = "dlc backup key remove --repo DIR SLOT [unlock options]";
    spec.about = "Retires a key slot (audited). Refuses the last slot and the slot used to unlock.";
    spec.options.add_options()("slot", po::value<std::string>(&id), "slot id");
    spec.positional.add("slot", 1);
    if (!parse(ctx, "key remove", spec, rest, vm)) return 0;
    bk::RepoOptions o;
    fill(o, a, ctx);
    if (id.empty()) throw Error(Errc::usage, "dlc backup key remove: no slot given", {}, {}, "see 'dlc backup key list'");
    bk::KeySlotInfo s = audited(ctx, "backup key remove", repo_target(o), [&] { return bk::run_key_remove(o, id); });
    record(ctx, "backup key remove", repo_target(o), {{"slot", s.id}, {"type", s.type}, {"label", s.label}});
    if (ctx.json())
      ctx.emit_json({{"removed", s.id}, {"type", s.type}});
    else
      ctx.say("removed " + s.type + " slot " + s.id);
    return 0;
  }
  if (sub == "rotate") {
    spec.usage = "dlc backup key rotate --repo DIR [unlock options]";
    spec.about =
        "Creates a new data key: new data is sealed with it, existing data stays readable with the "
        "older keys. Key slots are unchanged.";
    if (!parse(ctx, "key rotate", spec, rest, vm)) return 0;
    bk::RepoOptions o;
    fill(o, a, ctx);
    bk::RotateResult r = audited(ctx, "backup key rotate", repo_target(o), [&] { return bk::run_key_rotate(o); });
    record(ctx, "backup key rotate", repo_target(o), {{"old_key", r.old_key}, {"new_key", r.new_key}});
    if (ctx.json())
      ctx.emit_json({{"old_key", r.old_key}, {"new_key", r.new_key}, {"data_keys", r.data_keys}});
    else
      ctx.say("data key " + std::to_string(r.new_key) + " is now used for new data (" + std::to_string(r.data_keys) +
              " data keys kept for reading)");
    return 0;
  }
  (sub == "--help" || sub == "-h" ? std::cout : std::cerr)
      << "Usage: dlc backup key list|add|remove|rotate [options]\n";
  return sub == "--help" || sub == "-h" ? 0 : 2;
}

struct Sub {
  const char* name;
  const char* summary;
  int (*run)(Context&, const std::vector<std::string>&);
};

const Sub kSubs[] = {
    {"init", "create an encrypted repository", do_init},
    {"backup", "back up paths into a new snapshot", do_backup},
    {"snapshots", "list snapshots", do_snapshots},
    {"ls", "list the files of a snapshot", do_ls},
    {"restore", "restore a snapshot", do_restore},
    {"check", "check the repository (--read-data, --read-data-subset)", do_check},
    {"forget", "remove snapshots by policy (--keep-*) [--prune]", do_forget},
    {"prune", "remove unused data, orphans and temp files", do_prune},
    {"stats", "repository sizes", do_stats},
    {"locations", "where the backup data physically is (region/site tags)", do_locations},
    {"repair", "repair index: rebuild the index from the packs", do_repair},
    {"key", "key slots: list, add, remove, rotate", do_key},
};

}  // namespace

int cmd_backup(Context& ctx, const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  for (const auto& s : kSubs)
    if (sub == s.name) return s.run(ctx, rest);
  std::ostream& os = sub == "--help" || sub == "-h" ? std::cout : std::cerr;
  os << "Usage: dlc backup <subcommand> [options]\n\nSubcommands:\n";
  for (const auto& s : kSubs) os << "  " << std::left << std::setw(11) << s.name << s.summary << '\n';
  os << "\nThe scheduled verification job is 'dlc verify backup'. " << kExitCodes << '\n';
  if (sub == "--help" || sub == "-h") return 0;
  if (!sub.empty()) std::cerr << "dlc backup: unknown subcommand '" << sub << "'\n";
  return 2;
}

}  // namespace dlc::cli
