// dlc verify tree | manifest | migration: manifests of trees and volumes
// (docs/formats/manifest.md), checked against what is on storage now. Wired
// into `dlc verify` by cli/cmd_verify.cpp.
#include <iostream>

#include "cli/cli.h"
#include "core/audit_log.h"
#include "core/error.h"
#include "migrate/migrate.h"
#include "verify/verify.h"

namespace dlc::cli {

namespace {

using nlohmann::json;

std::optional<crypto::Ed25519PublicKey> pin_key(const std::string& pubkey) {
  if (!pubkey.empty()) return audit::load_public_key(pubkey);
  const auto own = dlc_home() / "host-key.pub";
  std::error_code ec;
  if (std::filesystem::exists(own, ec)) return audit::load_public_key(own);
  return std::nullopt;
}

verify::CompareOptions ignore_options(const std::vector<std::string>& ignore) {
  verify::CompareOptions c;
  for (const auto& i : ignore) {
    if (i == "mtime") c.mtime = false;
    else if (i == "owner") c.owner = false;
    else if (i == "mode") c.mode = false;
    else if (i == "xattrs") c.xattrs = false;
    else if (i == "sparse") c.sparse = false;
    else if (i == "hardlinks") c.hardlinks = false;
    else if (i == "root") c.root_metadata = false;
    else
      throw Error(Errc::usage, "bad value for --ignore", "'" + i + "'", {},
                  "use mtime, owner, mode, xattrs, sparse, hardlinks or root");
  }
  return c;
}

void print_differences(Context& ctx, const verify::Comparison& c, std::size_t limit) {
  std::size_t n = 0;
  for (const auto& d : c.differences) {
    if (n++ >= limit) {
      std::cerr << "dlc:   ... and " << (c.differences.size() - limit) << " more (use --json for all)\n";
      break;
    }
    std::cerr << "dlc:   " << d.kind << ": " << d.path << (d.detail.empty() ? "" : " (" + d.detail + ")") << '\n';
  }
  (void)ctx;
}

int report_comparison(Context& ctx, const std::string& what, const verify::Comparison& c,
                      const std::vector<std::string>& problems, const std::vector<std::string>& warnings,
                      json extra) {
  const bool ok = c.ok && problems.empty();
  if (ctx.json()) {
    json j = verify::to_json(c, 100000);
    j["ok"] = ok;
    j["problems"] = problems;
    j["warnings"] = warnings;
    j.update(extra);
    ctx.emit_json(j);
  } else {
    if (ok) {
      ctx.say(what + ": verified (" + std::to_string(c.compared) + " entries, root " + c.actual_root + ")");
    } else {
      std::cerr << "dlc: " << what << ": NOT verified: " << c.differences.size() << " difference(s)"
                << (problems.empty() ? "" : ", " + std::to_string(problems.size()) + " problem(s)") << '\n';
      print_differences(ctx, c, 50);
    }
    for (const auto& p : problems) std::cerr << "dlc:   problem: " << p << '\n';
    for (const auto& w : warnings) ctx.say("  warning: " + w);
  }
  return ok ? 0 : 1;
}

int manifest_create(Context& ctx, const std::vector<std::string>& args) {
  std::string path, out, hash = "sha256";
  unsigned threads = 0;
  bool no_xattrs = false, no_sparse = false, volume = false, cached = false, unsigned_ = false;
  ParseSpec spec;
  spec.usage = "dlc verify manifest create PATH -o MANIFEST [--hash ALG] [--volume]";
  spec.about =
      "Writes a dlc-manifest/1 of a directory tree (every name with its type, size, mode, owner, "
      "mtime, symlink target, hard-link group, xattrs, sparse map and content hash, and a Merkle "
      "root over all of them) or of a volume (block device or, with --volume, an image file; hashed "
      "per chunk). Content is read from storage (O_DIRECT, or the page cache dropped first), on every "
      "core. The manifest is signed with the host key ($DLC_HOME/host-key.pem). Format: "
      "docs/formats/manifest.md.\nExit codes: 0 written; 2 usage; 4 unreadable.";
  spec.options.add_options()
      ("path", po::value<std::string>(&path)->value_name("PATH"), "the tree, device or image")
      ("output,o", po::value<std::string>(&out)->value_name("MANIFEST"), "where to write the manifest")
      ("hash", po::value<std::string>(&hash)->value_name("ALG"), "sha256 (default), sm3 or blake2b-256")
      ("threads", po::value<unsigned>(&threads)->value_name("N"), "hashing threads (default: one per core)")
      ("volume", po::bool_switch(&volume), "treat a regular file as a volume image")
      ("no-xattrs", po::bool_switch(&no_xattrs), "do not record extended attributes")
      ("no-sparse", po::bool_switch(&no_sparse), "do not record sparse maps")
      ("cached", po::bool_switch(&cached), "allow reads from the page cache (faster, weaker)")
      ("unsigned", po::bool_switch(&unsigned_), "do not sign the manifest");
  spec.positional.add("path", 1);
  spec.examples = "  dlc verify manifest create /data -o data.manifest.json --hash sm3\n";
  po::variables_map vm;
  if (!parse_command(ctx, "verify manifest create", spec, args, vm)) return 0;
  if (path.empty() || out.empty())
    throw Error(Errc::usage, "dlc verify manifest create: PATH and -o MANIFEST are required", {}, {},
                "run 'dlc verify manifest create --help'");
  verify::ScanOptions so;
  so.root = path;
  so.alg = crypto::hash_from_name(hash);
  so.threads = threads;
  so.xattrs = !no_xattrs;
  so.sparse = !no_sparse;
  so.volume = volume;
  so.no_cache = !cached;
  so.progress = &ctx.progress();
  verify::Manifest m = verify::build_manifest(so);
  std::optional<audit::HostKey> key;
  if (!unsigned_) key = audit::HostKey::load_or_create(dlc_home());
  verify::save_manifest(m, out, key ? &*key : nullptr);
  if (ctx.json())
    ctx.emit_json({{"manifest", out}, {"kind", m.kind}, {"entries", m.entries.size()}, {"files", m.files()},
                   {"bytes", m.bytes()}, {"merkle_root", m.merkle_root}, {"hash", hash},
                   {"read_method", m.read_method}, {"signed", !unsigned_}});
  else
    ctx.say("manifest " + out + ": " + std::to_string(m.entries.size()) + " entries, " +
            human_bytes(m.bytes()) + ", root " + m.merkle_root + (unsigned_ ? " (unsigned)" : " (signed)"));
  return 0;
}

int manifest_check(Context& ctx, const std::vector<std::string>& args) {
  std::string path, pubkey;
  ParseSpec spec;
  spec.usage = "dlc verify manifest check MANIFEST [--pubkey KEY]";
  spec.about =
      "Checks a manifest by itself: its format, entry order, Merkle root and signature (against "
      "--pubkey, else $DLC_HOME/host-key.pub, else the embedded key, reported as unpinned).\n"
      "Exit codes: 0 intact; 1 altered or badly signed; 2 usage; 4 unreadable.";
  spec.options.add_options()
      ("manifest", po::value<std::string>(&path)->value_name("MANIFEST"), "the manifest")
      ("pubkey", po::value<std::string>(&pubkey)->value_name("KEY"), "public key to pin (PEM or 64 hex)");
  spec.positional.add("manifest", 1);
  po::variables_map vm;
  if (!parse_command(ctx, "verify manifest check", spec, args, vm)) return 0;
  if (path.empty()) throw Error(Errc::usage, "dlc verify manifest check: no manifest given");
  verify::Manifest m;
  try {
    m = verify::load_manifest(path);
  } catch (const Error& e) {
    if (e.code() != Errc::check_failed) throw;
    std::cerr << "dlc: manifest " << path << " is NOT intact: " << e.what() << '\n';
    return 1;
  }
  const verify::SignatureCheck s = verify::check_signature(verify::to_json(m), pin_key(pubkey));
  const bool ok = s.valid;
  if (ctx.json()) {
    ctx.emit_json({{"manifest", path}, {"ok", ok}, {"merkle_root", m.merkle_root}, {"signed", s.present},
                   {"signature_valid", s.valid}, {"pinned", s.pinned}, {"key_fingerprint", s.key_fingerprint},
                   {"problem", s.problem}});
  } else if (ok) {
    ctx.say("manifest " + path + ": intact (" + std::to_string(m.entries.size()) + " entries, root " +
            m.merkle_root + "; signed by key " + s.key_fingerprint + (s.pinned ? ", pinned)" : ", unpinned)"));
  } else {
    std::cerr << "dlc: manifest " << path << " is NOT valid: " << s.problem << '\n';
  }
  return ok ? 0 : 1;
}

}  // namespace

int cmd_verify_manifest(Context& ctx, const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "create") return manifest_create(ctx, rest);
  if (sub == "check") return manifest_check(ctx, rest);
  (sub == "--help" || sub == "-h" ? std::cout : std::cerr)
      << "Usage: dlc verify manifest create PATH -o MANIFEST [options]\n"
         "       dlc verify manifest check MANIFEST [--pubkey KEY]\n";
  return sub == "--help" || sub == "-h" ? 0 : 2;
}

int cmd_verify_tree(Context& ctx, const std::vector<std::string>& args) {
  std::string path, manifest, pubkey;
  std::vector<std::string> ignore;
  unsigned threads = 0;
  bool cached = false;
  ParseSpec spec;
  spec.usage = "dlc verify tree PATH --manifest MANIFEST [--pubkey KEY] [--ignore WHAT]...";
  spec.about =
      "Re-reads PATH from storage, builds its manifest the way MANIFEST was built (same hash, same "
      "recorded fields) and compares: every missing, extra or different entry is named with the kind "
      "of difference (content, size, mode, owner, mtime, target, xattrs, hardlink, sparse, type). The "
      "manifest's Merkle root and signature are checked first.\n"
      "Exit codes: 0 identical; 1 differences or a bad manifest; 2 usage; 4 unreadable.";
  spec.options.add_options()
      ("path", po::value<std::string>(&path)->value_name("PATH"), "the tree, device or image to check")
      ("manifest,m", po::value<std::string>(&manifest)->value_name("MANIFEST"), "the manifest to check against")
      ("pubkey", po::value<std::string>(&pubkey)->value_name("KEY"), "public key to pin the manifest's signature")
      ("ignore", po::value<std::vector<std::string>>(&ignore)->value_name("WHAT"),
       "do not compare: mtime, owner, mode, xattrs, sparse, hardlinks, root")
      ("threads", po::value<unsigned>(&threads)->value_name("N"), "hashing threads")
      ("cached", po::bool_switch(&cached), "allow reads from the page cache");
  spec.positional.add("path", 1);
  spec.examples = "  dlc verify tree /data --manifest data.manifest.json\n";
  po::variables_map vm;
  if (!parse_command(ctx, "verify tree", spec, args, vm)) return 0;
  if (path.empty() || manifest.empty())
    throw Error(Errc::usage, "dlc verify tree: PATH and --manifest are required", {}, {},
                "run 'dlc verify tree --help'");
  const verify::CompareOptions co = ignore_options(ignore);
  verify::Manifest expected;
  try {
    expected = verify::load_manifest(manifest);
  } catch (const Error& e) {
    if (e.code() != Errc::check_failed) throw;
    std::cerr << "dlc: manifest " << manifest << " is NOT intact: " << e.what() << '\n';
    return 1;
  }
  std::vector<std::string> problems, warnings;
  const verify::SignatureCheck s = verify::check_signature(verify::to_json(expected), pin_key(pubkey));
  if (s.present && !s.valid) problems.push_back("manifest: " + s.problem);
  if (!s.present) warnings.push_back("the manifest is not signed");
  else if (s.valid && !s.pinned) warnings.push_back("the manifest's signature was checked against its embedded key (unpinned)");
  verify::ScanOptions so;
  so.root = path;
  so.alg = expected.alg;
  so.threads = threads;
  so.no_cache = !cached;
  so.xattrs = expected.xattrs;
  so.sparse = expected.sparse;
  so.progress = &ctx.progress();
  if (expected.kind == "volume") {
    so.volume = true;
    if (!expected.entries.empty()) so.chunk_size = expected.entries.front().chunk_size;
  }
  const verify::Manifest actual = verify::build_manifest(so);
  const verify::Comparison c = verify::compare(expected, actual, co);
  return report_comparison(ctx, "tree " + path, c, problems, warnings, {{"path", path}, {"manifest", manifest}});
}

int cmd_verify_migration(Context& ctx, const std::vector<std::string>& args) {
  std::string dst, manifest, report, pubkey;
  unsigned threads = 0;
  ParseSpec spec;
  spec.usage = "dlc verify migration --manifest MANIFEST DST [--report REPORT] [--pubkey KEY]";
  spec.about =
      "Re-verifies a finished migration at any later time: re-reads DST from storage, hashes it "
      "independently and compares it with the signed source manifest the migration wrote "
      "($DLC_HOME/migrate/<id>/source-manifest.json, or --manifest-out). With --report, the signed "
      "migration report is checked too and must carry the manifest's root.\n"
      "Exit codes: 0 verified; 1 differences, bad signatures or a mismatched report; 2 usage; 4 unreadable.";
  spec.options.add_options()
      ("destination", po::value<std::string>(&dst)->value_name("DST"), "the migrated tree, device or image")
      ("manifest,m", po::value<std::string>(&manifest)->value_name("MANIFEST"), "the source manifest")
      ("report", po::value<std::string>(&report)->value_name("REPORT"), "the signed migration report")
      ("pubkey", po::value<std::string>(&pubkey)->value_name("KEY"),
       "public key to pin the signatures (default: $DLC_HOME/host-key.pub when present)")
      ("threads", po::value<unsigned>(&threads)->value_name("N"), "hashing threads");
  spec.positional.add("destination", 1);
  spec.examples = "  dlc verify migration --manifest /var/lib/dlc/migrate/ab12.../source-manifest.json /mnt/new\n";
  po::variables_map vm;
  if (!parse_command(ctx, "verify migration", spec, args, vm)) return 0;
  if (dst.empty() || manifest.empty())
    throw Error(Errc::usage, "dlc verify migration: DST and --manifest are required", {}, {},
                "run 'dlc verify migration --help'");
  migrate::VerifyMigrationOptions o;
  o.manifest = manifest;
  o.destination = dst;
  if (!report.empty()) o.report = report;
  o.pubkey = pin_key(pubkey);
  o.threads = threads;
  o.progress = &ctx.progress();
  migrate::VerifyMigrationResult r;
  try {
    r = migrate::verify_migration(o);
  } catch (const Error& e) {
    if (e.code() != Errc::check_failed) throw;
    std::cerr << "dlc: manifest " << manifest << " is NOT intact: " << e.what() << '\n';
    return 1;
  }
  audit::Event ev;
  ev.command = "verify migration";
  ev.args = ctx.argv();
  ev.target = dst;
  ev.outcome = r.ok() ? "ok" : "failed";
  ev.details = {{"manifest", manifest}, {"differences", r.comparison.differences.size()},
                {"expected_root", r.comparison.expected_root}, {"actual_root", r.comparison.actual_root}};
  ctx.audit().append(ev);
  return report_comparison(ctx, "migration to " + dst, r.comparison, r.problems, r.warnings,
                           {{"destination", dst}, {"manifest", manifest}});
}

}  // namespace dlc::cli
