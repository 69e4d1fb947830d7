// dlc verify: `certificate` checks a certificate of sanitization (signature,
// canonical form, NIST SP 800-88 fields, outcome) and renders it as text or a
// printable HTML page. `backup` (cli/cmd_verify_backup.cpp) and `manifest`,
// `tree`, `migration` (cli/cmd_verify_tree.cpp) belong to their tools; any
// other subcommand is a usage error.
#include <fstream>
#include <iostream>

#include "cli/cli.h"
#include "core/audit_log.h"
#include "core/error.h"
#include "core/fs.h"
#include "wipe/wipe.h"

namespace dlc::cli {

namespace {

using nlohmann::json;

int verify_certificate(Context& ctx, const std::vector<std::string>& args) {
  std::string cert, pubkey, render, output;
  bool check_audit = false;
  ParseSpec spec;
  spec.usage = "dlc verify certificate CERT [--pubkey KEY] [--render text|html|json] [--output FILE]";
  spec.about =
      "Checks a certificate of sanitization written by 'dlc wipe': the Ed25519 signature "
      "(against --pubkey, the host's host-key.pub, or else the key the certificate embeds, "
      "reported as unpinned), that the file is byte-for-byte its signed canonical form, the "
      "NIST SP 800-88 fields, and that its outcome certifies the medium as sanitized or "
      "destroyed. --render prints it for people (text, or an HTML page to print).\n"
      "Exit codes: 0 valid; 1 invalid (altered, wrong key, fields missing, or not sanitized); "
      "2 usage; 4 unreadable.";
  spec.options.add_options()
      ("cert", po::value<std::string>(&cert)->value_name("CERT"), "the .cert.json file")
      ("pubkey", po::value<std::string>(&pubkey)->value_name("KEY"),
       "public key to pin: host-key.pub (PEM) or 64 hex digits in a file")
      ("render", po::value<std::string>(&render)->value_name("FORMAT"),
       "also print the certificate: text | html | json")
      ("output,o", po::value<std::string>(&output)->value_name("FILE"),
       "write the rendering to FILE instead of stdout")
      ("check-audit", po::bool_switch(&check_audit),
       "also check the link into the audit log (--audit-log, else the log the certificate "
       "names): the log verifies and its record names this certificate");
  spec.positional.add("cert", 1);
  spec.examples =
      "  dlc verify certificate /var/lib/dlc/certificates/<id>.cert.json \\\n"
      "      --pubkey /var/lib/dlc/host-key.pub\n"
      "  dlc verify certificate CERT --render html -o cert.html\n";
  po::variables_map vm;
  if (!parse_command(ctx, "verify certificate", spec, args, vm)) return 0;
  if (cert.empty())
    throw Error(Errc::usage, "dlc verify certificate: no certificate given", {}, {},
                "run 'dlc verify certificate --help'");
  if (!render.empty() && render != "text" && render != "html" && render != "json")
    throw Error(Errc::usage, "bad value for --render", "'" + render + "'", {}, "use text, html or json");
  std::string pem;
  if (!pubkey.empty()) pem = audit::load_public_key(pubkey).to_pem();

  wipe::CertificateCheck c = wipe::verify_certificate(cert, pem);
  bool ok = c.ok();
  json audit_link = nullptr;
  if (check_audit && c.certificate.is_object()) {
    wipe::AuditLinkCheck a = wipe::check_audit_link(c.certificate, ctx.globals().audit_log);
    audit_link = {{"ok", a.ok}, {"log", a.log}, {"problem", a.problem}};
    if (!a.ok) {
      ok = false;
      c.problems.push_back("audit link: " + a.problem);
    }
  }
  if (ctx.json()) {
    ctx.emit_json({{"certificate", cert},
                   {"valid", ok},
                   {"signature_ok", c.signature_ok},
                   {"fields_ok", c.fields_ok},
                   {"sanitized", c.sanitized},
                   {"key_pinned", c.key_pinned},
                   {"key_fingerprint", c.key_fingerprint},
                   {"problems", c.problems},
                   {"audit_link", audit_link},
                   {"warnings", c.warnings},
                   {"id", c.certificate.is_object() ? c.certificate.value("id", "") : ""},
                   {"outcome", c.certificate.is_object() ? c.certificate.value("outcome", "") : ""}});
  } else {
    const std::string id = c.certificate.is_object() ? c.certificate.value("id", "?") : "?";
    if (ok) {
      ctx.say("certificate " + id + ": valid (" +
              c.certificate.value("sanitization", json::object()).value("category", "") + ", " +
              c.certificate.value("outcome", "") + "; signed by key " + c.key_fingerprint +
              (c.key_pinned ? ", pinned" : ", unpinned") +
              (check_audit ? "; audit record linked" : "") + ")");
    } else {
      std::cerr << "dlc: certificate " << cert << " is NOT valid\n";
    }
    for (const auto& p : c.problems) std::cerr << "dlc:   problem: " << p << '\n';
    for (const auto& w : c.warnings) ctx.say("  warning: " + w);
  }
  if (!render.empty() && c.certificate.is_object()) {
    std::string text = render == "html"   ? wipe::render_certificate_html(c.certificate)
                       : render == "json" ? c.certificate.dump(2) + "\n"
                                          : wipe::render_certificate_text(c.certificate);
    if (!ok && render != "json")
      text = (render == "html" ? "<!-- NOT VALID: see dlc verify certificate -->\n"
                               : "*** NOT VALID: this certificate failed verification ***\n") +
             text;
    if (!output.empty())
      write_file_atomic(output, text, 0644, ParentDir::create);
    else
      std::cout << text;
  }
  return ok ? 0 : 1;
}

}  // namespace

// cli/cmd_verify_backup.cpp (the backup tool's scheduled verification job).
int cmd_verify_backup(Context& ctx, const std::vector<std::string>& args);
// cli/cmd_verify_tree.cpp (manifests of trees and volumes, finished migrations).
int cmd_verify_manifest(Context& ctx, const std::vector<std::string>& args);
int cmd_verify_tree(Context& ctx, const std::vector<std::string>& args);
int cmd_verify_migration(Context& ctx, const std::vector<std::string>& args);

int cmd_verify(Context& ctx, const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "certificate") return verify_certificate(ctx, rest);
  if (sub == "backup") return cmd_verify_backup(ctx, rest);
  if (sub == "manifest") return cmd_verify_manifest(ctx, rest);
  if (sub == "tree") return cmd_verify_tree(ctx, rest);
  if (sub == "migration") return cmd_verify_migration(ctx, rest);
  if (sub == "--help" || sub == "-h" || sub.empty()) {
    (sub.empty() ? std::cerr : std::cout)
        << "Usage: dlc verify <subcommand> [options]\n\nSubcommands:\n"
           "  certificate CERT   check a certificate of sanitization (signature, fields, outcome)\n"
           "  backup --repo DIR  scheduled verification of a backup repository\n"
           "  manifest create|check   signed manifests of trees and volumes\n"
           "  tree PATH --manifest M  compare a tree with its manifest\n"
           "  migration --manifest M DST   re-verify a finished migration\n";
    return sub.empty() ? 2 : 0;
  }
  std::cerr << "dlc: unknown verify subcommand " << sub
            << "; see dlc verify --help (certificate, backup, manifest, tree, migration)\n";
  return 2;
}

}  // namespace dlc::cli
