// dlc verify backup: the scheduled backup verification job. Wired into
// cmd_verify.cpp by its owner: `if (sub == "backup") return cmd_verify_backup(ctx, rest);`
#include <iostream>

#include "backup/backup.h"
#include "cli/cli.h"
#include "core/error.h"

namespace dlc::cli {

int cmd_verify_backup(Context& ctx, const std::vector<std::string>& args) {
  namespace bk = dlc::backup;
  bk::VerifyBackupOptions o;
  std::string repo, against, report, metrics, state_dir, subset;
  ParseSpec spec;
  spec.usage =
      "dlc verify backup --repo DIR [--subset PCT] [--against PATH [--snapshot ID]] [--report FILE] [--metrics-file FILE]";
  spec.about =
      "Scheduled verification of a backup repository (JR/T 0167 9.7b): the checker of 'dlc backup "
      "check --read-data'. --subset PCT reads the least recently verified PCT % of the data, "
      "remembering coverage between runs, so N runs of 100/N % cover everything. --against compares a "
      "snapshot with the live source tree. Writes a report signed with the host key and a Prometheus "
      "textfile metric.\nExit codes: 0 no damage; 1 damage (or files corrupt against the source); 2 "
      "usage; 3 repository locked by prune; 4 I/O error; 5 wrong key.";
  spec.options.add_options()("repo,r", po::value<std::string>(&repo)->value_name("DIR"), "repository (default: $DLC_REPOSITORY)")(
      "subset", po::value<std::string>(&subset)->value_name("PCT"), "verify this percentage of the data (least recently verified first)")(
      "against", po::value<std::string>(&against)->value_name("PATH"), "compare the snapshot with this live directory")(
      "snapshot", po::value<std::string>(&o.snapshot)->default_value("latest"), "snapshot for --against")(
      "report", po::value<std::string>(&report)->value_name("FILE"), "write the signed JSON report here")(
      "metrics-file", po::value<std::string>(&metrics)->value_name("FILE"),
      "write Prometheus metrics here (node_exporter textfile collector)")(
      "state-dir", po::value<std::string>(&state_dir)->value_name("DIR"),
      "where coverage is remembered (default $DLC_HOME/backup-verify)")(
      "threads", po::value<unsigned>(&o.threads), "worker threads")(
      "lock-wait", po::value<double>(&o.lock_wait_seconds), "wait for a prune to finish")(
      "key-file", po::value<std::string>(&o.key.key_file), "unlock with a key file")(
      "key-command", po::value<std::string>(&o.key.key_command), "unlock with a key command")(
      "pkcs11-module", po::value<std::string>(&o.key.pkcs11_module), "PKCS#11 module")(
      "pkcs11-token", po::value<std::string>(&o.key.pkcs11_token), "PKCS#11 token label")(
      "pkcs11-key", po::value<std::string>(&o.key.pkcs11_key), "PKCS#11 key label")(
      "passphrase-command", po::value<std::string>(&o.key.passphrase_command),
      "command printing the passphrase (else $DLC_PASSPHRASE_FILE names a file)");
  spec.examples =
      "  dlc verify backup --repo /backup/repo --subset 10 --report /var/lib/dlc/verify.json \\\n"
      "      --metrics-file /var/lib/node_exporter/textfile/dlc_backup.prom\n";
  po::variables_map vm;
  if (!parse_command(ctx, "verify backup", spec, args, vm)) return 0;
  if (repo.empty())
    if (const char* env = std::getenv("DLC_REPOSITORY"); env && *env) repo = env;
  if (repo.empty()) throw Error(Errc::usage, "no repository given", {}, {}, "pass --repo DIR or set DLC_REPOSITORY");
  o.repo = repo;
  o.key.prompt = false;  // a scheduled job never waits for a terminal
  o.progress = &ctx.progress();  // a null sink unless stderr is a terminal
  if (!subset.empty()) {
    std::string t = subset;
    if (t.back() == '%') t.pop_back();
    char* end = nullptr;
    const double pct = std::strtod(t.c_str(), &end);
    if (*end != '\0' || !(pct > 0 && pct <= 100))
      throw Error(Errc::usage, "bad --subset", subset, {}, "give a percentage in (0, 100]");
    o.subset_percent = pct;
  }
  if (!against.empty()) o.against = against;
  o.report_file = report;
  o.metrics_file = metrics;
  o.state_dir = state_dir;
  bk::VerifyBackupResult r = bk::run_verify_backup(o);
  ctx.audit().append({"verify backup", ctx.argv(), repo, r.ok() ? "ok" : "failed",
                      {{"damaged_blobs", r.check.damaged_blobs.size()},
                       {"errors", r.check.errors.size()},
                       {"packs_read", r.check.packs_read},
                       {"packs_never_verified", r.check.packs_never_verified},
                       {"report", report}}});
  if (ctx.json()) {
    ctx.emit_json(r.report);
  } else {
    const auto& c = r.check;
    ctx.say(std::string(r.ok() ? "backup verified: no damage" : "backup verification FAILED") + " (" +
            std::to_string(c.packs_read) + " of " + std::to_string(c.packs_total) + " packs read, " +
            human_bytes(c.bytes_read) + "; " + std::to_string(c.packs_never_verified) + " never verified)");
    for (const auto& e : c.errors) std::cerr << "dlc: error: " << e << '\n';
    for (const auto& b : c.damaged_blobs)
      std::cerr << "dlc: damaged " << b.type << " blob " << b.id << " in pack " << b.pack << ": " << b.reason << '\n';
    for (const auto& f : c.affected_files) std::cerr << "dlc: affected: snapshot " << f.snapshot.substr(0, 8) << " " << f.path << '\n';
    if (r.against.is_object()) {
      ctx.say("against " + r.against.value("path", "") + ": " + std::to_string(r.against.value("compared", 0)) +
              " compared, " + std::to_string(r.against["changed"].size()) + " changed, " +
              std::to_string(r.against["missing"].size()) + " missing, " + std::to_string(r.against["added"].size()) +
              " added, " + std::to_string(r.against["corrupt"].size()) + " corrupt");
      for (const auto& p : r.against["corrupt"]) std::cerr << "dlc: corrupt (same size and mtime, other bytes): " << p.get<std::string>() << '\n';
    }
    if (!report.empty()) ctx.say("signed report: " + report);
  }
  return r.ok() ? 0 : 1;
}

}  // namespace dlc::cli
