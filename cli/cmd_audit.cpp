// dlc audit: verify and inspect the tamper-evident audit log (core/audit_log.h).
// These subcommands only read: they never append to the log they examine.
#include <iostream>

#include "cli/cli.h"
#include "core/error.h"

namespace dlc::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kLogOption =
    "the audit log (default: the --audit-log global option, else $DLC_HOME/audit.jsonl)";

fs::path log_path(const Context& ctx, const std::string& given) {
  if (!given.empty()) return given;
  if (!ctx.globals().audit_log.empty()) return ctx.globals().audit_log;
  return dlc_home() / "audit.jsonl";
}

std::string where(const audit::VerifyReport& r) {
  std::string s;
  if (r.first_bad_line) s += "line " + std::to_string(*r.first_bad_line);
  if (r.first_bad_seq)
    s +=
        (s.empty() ? "seq " : " (seq ") + std::to_string(*r.first_bad_seq) + (s.empty() ? "" : ")");
  return s.empty() ? s : s + ": ";
}

int audit_verify(Context& ctx, const std::vector<std::string>& args) {
  ParseSpec spec;
  std::string log, pubkey;
  spec.usage = "dlc audit verify [LOG] [--pubkey FILE]";
  spec.about =
      "Checks that the audit log is complete and unchanged: every record's hash, the hash chain,\n"
      "contiguous sequence numbers, every checkpoint's Ed25519 signature and the signed head file\n"
      "(<LOG>.head), which reveals records cut from the end. Reports the first bad record.\n"
      "Without --pubkey the signatures are checked against the key the log itself names, which\n"
      "proves integrity only if that key is trusted: pin the host's key for real assurance.\n"
      "Exit status: 0 intact, 1 tampered or truncated, 4 log unreadable, 5 public key unusable.";
  spec.examples =
      "  dlc audit verify\n"
      "  dlc audit verify /var/lib/dlc/audit.jsonl --pubkey /srv/keys/host42.pub\n"
      "  dlc --json audit verify audit.jsonl      # report as JSON for monitoring\n";
  spec.options.add_options()("log", po::value(&log)->value_name("LOG"), kLogOption)(
      "pubkey", po::value(&pubkey)->value_name("FILE"),
      "verify every signature against this public key (host-key.pub PEM from 'dlc audit "
      "pubkey', or its 64-hex raw key) instead of the key named in the log");
  spec.positional.add("log", 1);
  po::variables_map vm;
  if (!parse_command(ctx, "audit verify", spec, args, vm)) return 0;

  const fs::path path = log_path(ctx, log);
  std::optional<crypto::Ed25519PublicKey> key;
  if (!pubkey.empty()) key = audit::load_public_key(pubkey);
  const audit::VerifyReport r = audit::verify(path, key);

  if (ctx.json()) {
    json j = audit::to_json(r);
    j["log"] = path.string();
    ctx.emit_json(j);
  } else if (r.ok) {
    ctx.say("OK: " + std::to_string(r.records) + " records, " + std::to_string(r.checkpoints) +
            " checkpoints, last seq " + std::to_string(r.last_seq) + ", key " +
            (r.key_fingerprint.empty() ? std::string("none") : r.key_fingerprint) +
            (r.key_fingerprint.empty() ? ""
             : r.pinned                ? " (pinned)"
                                       : " (unpinned)"));
    for (const auto& w : r.warnings) ctx.say("warning: " + w);
  } else {
    // The verdict is the result, so it is printed even with --quiet (to stderr then).
    const std::string line = "TAMPERED: " + where(r) + r.problem;
    if (ctx.globals().quiet)
      std::cerr << "dlc: " << path.string() << ": " << line << '\n';
    else
      ctx.say(line);
    for (const auto& w : r.warnings) ctx.say("warning: " + w);
  }
  return r.ok ? 0 : 1;
}

std::string or_dash(const json& r, const char* key) {
  auto it = r.find(key);
  if (it == r.end()) return "-";
  std::string s = it->is_string() ? it->get<std::string>() : it->dump();
  return s.empty() ? "-" : s;
}

int audit_show(Context& ctx, const std::vector<std::string>& args) {
  ParseSpec spec;
  std::string log;
  std::size_t last = 0;
  spec.usage = "dlc audit show [LOG] [--last N]";
  spec.about =
      "Prints the audit log's records, one per line: time, seq, user (and the sudo user),\n"
      "command, target and outcome; checkpoints show the record they seal and their key.\n"
      "It does not verify anything: run 'dlc audit verify' for that.";
  spec.examples =
      "  dlc audit show --last 20\n"
      "  dlc --json audit show /var/lib/dlc/audit.jsonl   # all records as a JSON array\n";
  spec.options.add_options()("log", po::value(&log)->value_name("LOG"), kLogOption)(
      "last", po::value(&last)->value_name("N"), "only the last N lines of the log");
  spec.positional.add("log", 1);
  po::variables_map vm;
  if (!parse_command(ctx, "audit show", spec, args, vm)) return 0;

  const auto lines = audit::read_log(
      log_path(ctx, log), vm.count("last") ? std::optional<std::size_t>(last) : std::nullopt);
  if (ctx.json()) {
    json out = json::array();
    for (const auto& l : lines)
      out.push_back(l.record.is_object() ? l.record : json{{"line", l.line}, {"error", l.error}});
    ctx.emit_json(out);
    return 0;
  }
  for (const auto& l : lines) {
    if (!l.record.is_object()) {
      ctx.say("line " + std::to_string(l.line) + ": " +
              (l.error.empty() ? "not a record" : l.error));
      continue;
    }
    const json& r = l.record;
    std::string text = or_dash(r, "time") + "  seq " + or_dash(r, "seq") + "  ";
    if (r.value("type", "") == "checkpoint") {
      text += "checkpoint  seals seq " + or_dash(r, "head_seq") + "  key " +
              (r.contains("key") && r["key"].is_object() ? or_dash(r["key"], "fingerprint") : "-");
    } else {
      std::string user = or_dash(r, "user");
      if (r.contains("sudo_user")) user += " (sudo " + or_dash(r, "sudo_user") + ")";
      text += user + "  " + or_dash(r, "command") + "  " + or_dash(r, "target") + "  " +
              or_dash(r, "outcome");
    }
    if (!l.error.empty()) text += "  [" + l.error + "]";
    ctx.say(text);
  }
  return 0;
}

int audit_head(Context& ctx, const std::vector<std::string>& args) {
  ParseSpec spec;
  std::string log;
  spec.usage = "dlc audit head [LOG]";
  spec.about =
      "Prints the signed head of the audit log (<LOG>.head): the seq and hash of the last\n"
      "checkpoint, signed with the host key. Copy it to a system the host cannot rewrite (a SIEM,\n"
      "a ticket, a WORM store): a later 'dlc audit verify' that does not reach that seq and hash\n"
      "proves that records were removed. The signature shown is checked against the key the head\n"
      "names; 'dlc audit verify --pubkey' pins it.";
  spec.examples =
      "  dlc audit head\n"
      "  dlc --json audit head | logger -t dlc-audit-head    # anchor it in syslog/SIEM\n";
  spec.options.add_options()("log", po::value(&log)->value_name("LOG"), kLogOption);
  spec.positional.add("log", 1);
  po::variables_map vm;
  if (!parse_command(ctx, "audit head", spec, args, vm)) return 0;

  const fs::path path = log_path(ctx, log);
  const auto head = audit::read_head(path);
  if (!head)
    throw Error(Errc::io, "no audit head file", audit::head_path(path).string(),
                "the log has no checkpoint yet (or the path is wrong)",
                "any dlc command that writes the log seals it and creates the head file");
  const bool valid = audit::head_signature_valid(*head);
  if (ctx.json()) {
    ctx.emit_json(*head);
  } else {
    const json& h = *head;
    ctx.say("head of " + path.string());
    ctx.say("  seq        " + or_dash(h, "seq"));
    ctx.say("  hash       " + or_dash(h, "hash"));
    ctx.say("  time       " + or_dash(h, "time"));
    ctx.say("  host       " + or_dash(h, "host"));
    ctx.say("  key        " +
            (h.contains("key") && h["key"].is_object() ? or_dash(h["key"], "fingerprint") : "-"));
    ctx.say(std::string("  signature  ") + (valid ? "valid under the key it names" : "INVALID"));
    ctx.say("anchor this line:");
    ctx.say(audit::canonical_json(h));
  }
  if (!valid && ctx.globals().quiet)
    std::cerr << "dlc: " << audit::head_path(path).string() << ": bad signature\n";
  return valid ? 0 : 1;
}

int audit_pubkey(Context& ctx, const std::vector<std::string>& args) {
  ParseSpec spec;
  spec.usage = "dlc audit pubkey";
  spec.about =
      "Prints this host's audit public key (SubjectPublicKeyInfo PEM) and its fingerprint,\n"
      "creating the host key in $DLC_HOME on first use. Keep a copy off the host and pass it to\n"
      "'dlc audit verify --pubkey' so that a verifier does not trust the key the log names.";
  spec.examples =
      "  dlc audit pubkey > host42.pub\n"
      "  dlc --json audit pubkey\n";
  po::variables_map vm;
  if (!parse_command(ctx, "audit pubkey", spec, args, vm)) return 0;

  const fs::path home = dlc_home();
  const audit::HostKey key = audit::HostKey::load_or_create(home);
  const auto& pub = key.public_key();
  if (ctx.json()) {
    ctx.emit_json({{"fingerprint", pub.fingerprint()},
                   {"public", crypto::to_hex(pub.raw())},
                   {"pem", pub.to_pem()},
                   {"file", (home / "host-key.pub").string()}});
  } else {
    // The fingerprint line follows the PEM block, which PEM readers ignore, so
    // the output can be saved as the key file directly.
    ctx.out() << pub.to_pem();
    ctx.say("fingerprint: " + pub.fingerprint());
    ctx.detail("file: " + (home / "host-key.pub").string());
  }
  return 0;
}

void print_overview(std::ostream& os) {
  os << "Usage: dlc audit <verify|show|head|pubkey> [options]\n\n"
        "The audit log records every dlc operation (who, when, on what, with what outcome) as\n"
        "hash-chained JSON Lines sealed by Ed25519-signed checkpoints (JR/T 0167 10.4, 11.4.6b;\n"
        "format: docs/formats/audit-log.md). These commands only read it.\n\n"
        "Commands:\n"
        "  verify   check the log is complete and unchanged (exit 1 if not)\n"
        "  show     print the records\n"
        "  head     print the signed head, to anchor in an external system\n"
        "  pubkey   print the host's public key, to pin verification to it\n\n"
        "Examples:\n"
        "  dlc audit verify --pubkey host42.pub\n"
        "  dlc audit show --last 20\n\n"
        "Run 'dlc audit <command> --help' for its options.\n";
}

}  // namespace

int cmd_audit(Context& ctx, const std::vector<std::string>& args) {
  if (args.empty()) {
    print_overview(std::cerr);
    return 2;
  }
  const std::string& sub = args.front();
  if (sub == "--help" || sub == "-h" || sub == "help") {
    print_overview(std::cout);
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "verify") return audit_verify(ctx, rest);
  if (sub == "show") return audit_show(ctx, rest);
  if (sub == "head") return audit_head(ctx, rest);
  if (sub == "pubkey") return audit_pubkey(ctx, rest);
  throw Error(Errc::usage, "unknown audit command", "'" + sub + "'", {},
              "run 'dlc audit --help' for verify, show, head and pubkey");
}

}  // namespace dlc::cli
