// dlc migrate SRC DST [--verify] and dlc migrate receive: parses options,
// calls dlc::migrate (migrate/migrate.h) and prints. See docs/migrate.md.
#include <fstream>
#include <iostream>

#include "cli/cli.h"
#include "core/error.h"
#include "migrate/migrate.h"

namespace dlc::cli {

namespace {

using nlohmann::json;

void tls_options(po::options_description& d, migrate::TlsOptions& t) {
  d.add_options()
      ("tls-cert", po::value<std::string>(&t.cert)->value_name("PEM"), "certificate (chain) presented to the peer")
      ("tls-key", po::value<std::string>(&t.key)->value_name("PEM"), "its private key")
      ("tls-ca", po::value<std::string>(&t.ca)->value_name("PEM"), "CA bundle the peer's certificate must chain to")
      ("tls-pin", po::value<std::vector<std::string>>(&t.pins)->value_name("SHA256"),
       "pin the peer: SHA-256 of its certificate or public key (DER), hex; repeatable")
      ("tls-ciphersuites", po::value<std::string>(&t.ciphersuites)->value_name("LIST"),
       "TLS 1.3 cipher suites, e.g. TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

std::string rate_text(double bps) { return bps > 0 ? human_bytes(static_cast<std::uint64_t>(bps)) + "/s" : "n/a"; }

void print_preflight(Context& ctx, const migrate::Preflight& p) {
  ctx.say("pre-flight: " + std::to_string(p.files_to_send) + " of " + std::to_string(p.files_total) +
          " file(s) to send, " + human_bytes(p.bytes_to_send) + " of " + human_bytes(p.bytes_total));
  if (p.dest_free) ctx.say("  destination free space: " + human_bytes(p.dest_free) + (p.space_ok ? " (enough)" : " (NOT enough)"));
  ctx.say("  source read " + rate_text(p.read_bps) + ", destination write " + rate_text(p.write_bps) +
          (p.link_bps > 0 ? ", link " + rate_text(p.link_bps) + ", rtt " + std::to_string(p.rtt_ms) + " ms" : ""));
  ctx.say("  estimated duration: " + seconds_text(p.estimated_seconds));
}

int receive(Context& ctx, const std::vector<std::string>& args) {
  migrate::ReceiverOptions o;
  std::string root, port_file;
  ParseSpec spec;
  spec.usage = "dlc migrate receive --listen HOST:PORT --root DIR --tls-cert C --tls-key K --tls-ca CA [--region R]";
  spec.about =
      "Receives migrations from 'dlc migrate SRC dlc://HOST:PORT/PATH' over TLS 1.3 with mutual "
      "certificate authentication. Everything lands below --root (paths that would leave it are "
      "refused). Every chunk arrives with its hash and is checked before it is written; committed "
      "files are re-read from storage. The receiver attests --region/--site to senders, signed with "
      "its host key ($DLC_HOME/host-key.pem), so their residency policy can check where data goes. "
      "Volumes (a sender's block device or image) land as image files below --root "
      "(dlc://HOST:PORT/dir/name.img), or on a device named with --allow-device "
      "(dlc://HOST:PORT//dev/NAME), claimed exclusively; each chunk is written, synced and re-read "
      "from storage.\n"
      "Exit codes: 0 stopped cleanly (or --once session ok); 2 usage; 4 I/O; 5 peer refused (--once).";
  spec.options.add_options()
      ("listen", po::value<std::string>(&o.listen)->value_name("HOST:PORT"), "address to listen on (port 0: any free port)")
      ("root", po::value<std::string>(&root)->value_name("DIR"), "directory everything is received into")
      ("region", po::value<std::string>(&o.region)->value_name("REGION"), "region this receiver stores data in (attested)")
      ("site", po::value<std::string>(&o.site)->value_name("SITE"), "site / data centre (attested)")
      ("allow-device", po::value<std::vector<std::string>>(&o.allowed_devices)->value_name("DEV"),
       "let senders write a volume to this block device (dlc://HOST:PORT//dev/NAME); repeatable. "
       "Without it volumes land only as image files below --root")
      ("once", po::bool_switch(&o.once), "exit after one session")
      ("threads", po::value<unsigned>(&o.threads)->value_name("N"), "re-read threads")
      ("port-file", po::value<std::string>(&port_file)->value_name("FILE"), "write the port listened on to FILE");
  tls_options(spec.options, o.tls);
  spec.examples =
      "  dlc migrate receive --listen 0.0.0.0:7443 --root /srv/incoming --region cn-north-1 \\\n"
      "      --tls-cert recv.pem --tls-key recv.key --tls-ca tenant-ca.pem\n"
      "  dlc migrate receive --listen 0.0.0.0:7443 --root /srv/incoming --allow-device /dev/disk/by-id/nvme-X \\\n"
      "      --tls-cert recv.pem --tls-key recv.key --tls-ca tenant-ca.pem\n";
  po::variables_map vm;
  if (!parse_command(ctx, "migrate receive", spec, args, vm)) return 0;
  o.root = root;
  o.audit = &ctx.audit();
  o.command_line = ctx.argv();
  o.on_listening = [&](std::uint16_t port) {
    ctx.say("dlc migrate receive: listening on port " + std::to_string(port) + ", root " + root);
    std::cout.flush();
    if (!port_file.empty()) {
      std::ofstream f(port_file + ".tmp");
      f << port << "\n";
      f.close();
      std::rename((port_file + ".tmp").c_str(), port_file.c_str());
    }
  };
  migrate::run_receiver(o);
  return 0;
}

}  // namespace

// dlc exit PLAN: the tenant-exit flow. The lead wires it into cli/commands.cpp
// as {"exit", "tenant exit: classify, back up, migrate --verify, wipe", cmd_exit}.
int cmd_exit(Context& ctx, const std::vector<std::string>& args) {
  migrate::ExitOptions o;
  std::string plan;
  ParseSpec spec;
  spec.usage = "dlc exit PLAN [--yes] [--dry-run]";
  spec.about =
      "Runs a tenant exit (JR/T 0167-2020 11.3.5) as its plan describes (docs/migrate.md, \"Tenant "
      "exit\"): for every dataset, classify -> back up (optional) -> migrate --verify to the "
      "destination -> wipe the source, its replicas and its backups, each with a certificate of "
      "sanitization; then one signed exit report listing every dataset's verification result and "
      "every certificate, and whether the agreed erasure deadline was met. Resumable: re-run the same "
      "command. Nothing is wiped unless its migration verified and the source is unchanged since; "
      "without --yes the flow stops before erasure.\n"
      "Exit codes: 0 complete (or waiting for --yes); 1 a migration did not verify; 2 usage; 3 refused "
      "(residency, safety, changed source); 4 I/O.";
  spec.options.add_options()
      ("plan", po::value<std::string>(&plan)->value_name("PLAN"), "the exit plan (JSON)")
      ("yes", po::bool_switch(&o.yes), "confirm erasure of sources, replicas and backups after verification")
      ("dry-run", po::bool_switch(&o.dry_run), "residency check and pre-flight of every dataset only");
  spec.positional.add("plan", 1);
  spec.examples = "  dlc exit /etc/dlc/exit-t42.json            # migrate and verify, stop before erasure\n"
                  "  dlc exit /etc/dlc/exit-t42.json --yes      # ... and erase\n";
  po::variables_map vm;
  if (!parse_command(ctx, "exit", spec, args, vm)) return 0;
  if (plan.empty()) throw Error(Errc::usage, "dlc exit: no plan given", {}, {}, "run 'dlc exit --help'");
  o.plan = plan;
  o.progress = &ctx.progress();
  o.audit = &ctx.audit();
  o.command_line = ctx.argv();
  const migrate::ExitReport r = migrate::run_exit(o);
  if (ctx.json()) {
    json j = r.document;
    j["report_path"] = r.report_path.string();
    ctx.emit_json(j);
    return exit_code(r.code);
  }
  for (const auto& d : r.document["datasets"]) {
    const json m = d.value("migration", json::object());
    std::string erasure;
    if (d.contains("erasure") && d["erasure"].is_string()) erasure = d["erasure"].get<std::string>();
    else if (d.contains("erased_at")) erasure = "erased " + d["erased_at"].get<std::string>();
    else if (d.contains("erasure") && d["erasure"].is_object()) erasure = d["erasure"].value("refused", std::string("refused"));
    else erasure = "not complete";
    ctx.say("dataset " + d.value("name", std::string()) + ": migration " + m.value("outcome", std::string("?")) +
            "; " + erasure);
  }
  ctx.say("exit " + r.outcome + (r.document.value("within_deadline", true) ? "" : " (deadline passed)") +
          "; report " + r.report_path.string());
  return exit_code(r.code);
}

int cmd_migrate(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "receive") return receive(ctx, {args.begin() + 1, args.end()});
  migrate::MigrateOptions o;
  std::string hash = "sha256", bwlimit, policy, labels, state_dir, manifest_out, report_out;
  bool no_xattrs = false, no_sparse = false;
  ParseSpec spec;
  spec.usage = "dlc migrate SRC DST [--verify] [--policy FILE --labels FILE --dest-region R] [options]\n"
               "       dlc migrate receive --listen HOST:PORT --root DIR [TLS options]";
  spec.about =
      "Migrates a directory tree, a block device or an image file to a local directory, device or "
      "image, or to a dlc receiver (DST = dlc://HOST:PORT/PATH, mutual TLS 1.3). Before a byte "
      "moves: the residency policy is checked against the classification labels and the "
      "destination's region (violations refuse the whole migration, exit 3, listing the paths with "
      "masked reasons), free space is checked and the link measured (--dry-run stops there). Files "
      "are copied with modes, owners, times, symlinks, hard links, xattrs and holes, hashed while "
      "read; with --verify the destination is re-read from storage and both manifests (per-file "
      "hashes, Merkle roots) must match; a signed report carries both roots. Re-running the same "
      "command resumes: verified files are not sent again. A live source: --passes N repeats passes "
      "that send what changed; --final is the verified cut-over.\n"
      "Exit codes: 0 done (verified with --verify); 1 verification failed (paths named); 2 usage; "
      "3 refused by policy or safety (nothing written); 4 I/O; 5 TLS authentication; 130 interrupted "
      "(run again to resume).";
  spec.options.add_options()
      ("source", po::value<std::string>(&o.source)->value_name("SRC"), "tree, block device or image file")
      ("destination", po::value<std::string>(&o.destination)->value_name("DST"), "directory, device, image or dlc://HOST:PORT/PATH")
      ("verify", po::bool_switch(&o.verify), "re-read the destination from storage and compare manifests")
      ("dry-run", po::bool_switch(&o.dry_run), "residency check and pre-flight only")
      ("passes", po::value<unsigned>(&o.passes)->value_name("N"), "up to N copy passes over a live source (default 1)")
      ("final", po::bool_switch(&o.final_pass), "cut-over pass: needs --verify; fails if the source still changes")
      ("bwlimit", po::value<std::string>(&bwlimit)->value_name("RATE"), "limit to RATE bytes/s (e.g. 100M) to protect production I/O")
      ("hash", po::value<std::string>(&hash)->value_name("ALG"), "sha256 (default), sm3 or blake2b-256")
      ("threads", po::value<unsigned>(&o.threads)->value_name("N"), "copy/hash threads (default: one per core)")
      ("policy", po::value<std::string>(&policy)->value_name("FILE"), "residency policy (docs/formats/residency-policy.md)")
      ("labels", po::value<std::string>(&labels)->value_name("FILE"), "labels manifest from 'dlc classify --label'")
      ("dest-region", po::value<std::string>(&o.dest_region)->value_name("REGION"), "region the destination stores data in")
      ("dest-site", po::value<std::string>(&o.dest_site)->value_name("SITE"), "site of the destination")
      ("approval", po::value<std::vector<std::string>>(&o.approvals)->value_name("ID"),
       "security-assessment id of a policy exception that applies; repeatable")
      ("attestation-key", po::value<std::string>(&o.attestation_key)->value_name("PUB"),
       "the receiver's host public key (pins its region attestation)")
      ("no-xattrs", po::bool_switch(&no_xattrs), "do not copy or compare extended attributes")
      ("no-sparse", po::bool_switch(&no_sparse), "do not record sparse maps")
      ("restart", po::bool_switch(&o.restart), "forget the resume journal and start afresh")
      ("state-dir", po::value<std::string>(&state_dir)->value_name("DIR"), "journal, manifests and reports (default $DLC_HOME/migrate/<id>)")
      ("manifest-out", po::value<std::string>(&manifest_out)->value_name("FILE"), "also write the signed source manifest here")
      ("report", po::value<std::string>(&report_out)->value_name("FILE"), "also write the signed report here");
  std::string backup_to;
  spec.options.add_options()
      ("backup-to", po::value<std::string>(&backup_to)->value_name("REPO"),
       "take a dlc backup snapshot of SRC into REPO before the first byte moves (9.5c)")
      ("backup-key-file", po::value<std::string>(&o.backup_key.key_file)->value_name("PATH"), "unlock REPO with a key file")
      ("backup-key-command", po::value<std::string>(&o.backup_key.key_command)->value_name("CMD"),
       "unlock REPO with the secret this command prints (KMS)")
      ("backup-passphrase-command", po::value<std::string>(&o.backup_key.passphrase_command)->value_name("CMD"),
       "command printing REPO's passphrase (else the file named by $DLC_PASSPHRASE_FILE, else a prompt)");
  tls_options(spec.options, o.tls);
  spec.positional.add("source", 1).add("destination", 1);
  spec.examples =
      "  dlc migrate /data /mnt/new --verify\n"
      "  dlc migrate /data /mnt/new --verify --policy residency.json --labels labels.json --dest-region cn-north-1\n"
      "  dlc migrate /dev/vdb /dev/vdc --verify\n"
      "  dlc migrate /data dlc://10.0.0.5:7443/tenant42 --verify --tls-cert c.pem --tls-key c.key --tls-ca ca.pem\n"
      "  dlc migrate /dev/vdb dlc://10.0.0.5:7443/vols/db.img --verify --tls-cert c.pem --tls-key c.key --tls-ca ca.pem\n";
  po::variables_map vm;
  if (!parse_command(ctx, "migrate", spec, args, vm)) return 0;
  if (o.source.empty() || o.destination.empty())
    throw Error(Errc::usage, "dlc migrate: SRC and DST are required", {}, {}, "run 'dlc migrate --help'");
  o.alg = crypto::hash_from_name(hash);
  if (!bwlimit.empty()) o.bwlimit = migrate::parse_rate(bwlimit);
  if (!policy.empty()) o.policy = policy;
  if (!labels.empty()) o.labels = labels;
  o.xattrs = !no_xattrs;
  o.sparse = !no_sparse;
  o.state_dir = state_dir;
  if (!backup_to.empty()) o.backup_repo = backup_to;
  o.manifest_out = manifest_out;
  o.report_out = report_out;
  o.progress = &ctx.progress();
  o.audit = &ctx.audit();
  o.command_line = ctx.argv();

  const migrate::MigrateReport r = migrate::run_migrate(o);
  if (ctx.json()) {
    json j = r.document.is_null() ? json{{"outcome", r.outcome},
                                         {"reason", r.refusal},
                                         {"residency", r.residency.to_json()},
                                         {"preflight", r.preflight.to_json()},
                                         {"migration", r.migration}}
                                  : r.document;
    j["report_path"] = r.report_path.string();
    ctx.emit_json(j);
    return exit_code(r.code);
  }
  if (r.code == Errc::refused) {
    std::cerr << "dlc: migration refused: " << r.refusal << "; nothing was written\n";
    std::size_t n = 0;
    for (const auto& v : r.residency.violations) {
      if (n++ >= 100) {
        std::cerr << "dlc:   ... and " << (r.residency.violations.size() - 100) << " more (use --json for all)\n";
        break;
      }
      std::cerr << "dlc:   " << v.path << ": " << v.reason << '\n';
    }
    return exit_code(r.code);
  }
  if (r.residency.checked)
    ctx.say("residency: policy " + r.residency.policy_name + " allows all " + std::to_string(r.residency.files_checked) +
            " file(s) in region " + r.residency.region + " (" + r.residency.region_source + ")" +
            (r.residency.approvals_used.empty() ? "" : ", with approval(s) " + [&] {
              std::string s;
              for (const auto& a : r.residency.approvals_used) s += (s.empty() ? "" : ", ") + a;
              return s;
            }()));
  else
    ctx.say("residency: not checked (no --policy)");
  print_preflight(ctx, r.preflight);
  if (r.outcome == "dry-run") {
    ctx.say("dry run: nothing was written");
    return 0;
  }
  ctx.say(std::string(r.resumed ? "resumed; " : "") + "sent " + std::to_string(r.files_sent) +
          (r.source.kind == migrate::Endpoint::Kind::volume ? " chunk(s), " : " file(s), ") +
          human_bytes(r.bytes_sent) + "; skipped " + std::to_string(r.files_skipped) +
          " already verified; removed " + std::to_string(r.files_removed) + "; " +
          std::to_string(r.passes_run) + " pass(es) in " + seconds_text(r.seconds));
  if (r.backup.is_object())
    ctx.say("backup: snapshot " + r.backup.value("snapshot", std::string("?")) + " in " +
            r.backup.value("repo", std::string("?")) + (r.backup.value("reused", false) ? " (taken by an earlier run)" : ""));
  ctx.say("source root      " + r.source_root);
  if (!r.dest_root.empty()) ctx.say("destination root " + r.dest_root);
  if (r.comparison && !r.comparison->ok) {
    std::cerr << "dlc: migration NOT verified: " << r.comparison->differences.size() << " difference(s)\n";
    std::size_t n = 0;
    for (const auto& d : r.comparison->differences) {
      if (n++ >= 50) {
        std::cerr << "dlc:   ... (see the report)\n";
        break;
      }
      std::cerr << "dlc:   " << d.kind << ": " << d.path << (d.detail.empty() ? "" : " (" + d.detail + ")") << '\n';
    }
    std::cerr << "dlc: run the same command again to re-send what did not verify\n";
  } else if (o.verify) {
    ctx.say("verified: every entry matches (roots equal)");
  }
  ctx.say("manifest " + r.manifest_path.string());
  ctx.say("report   " + r.report_path.string());
  return exit_code(r.code);
}

}  // namespace dlc::cli
