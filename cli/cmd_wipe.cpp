// dlc wipe: parses the options of each subcommand into one WipeOptions, asks
// for the typed confirmation on a terminal, calls the wipe library and prints
// its report. No wipe logic lives here.
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "cli/cli.h"
#include "core/error.h"
#include "wipe/util.h"
#include "wipe/wipe.h"

namespace dlc::cli {

namespace {

using nlohmann::json;

struct WipeArgs {
  std::string method = "nist-clear";
  unsigned passes = 1;
  bool final_zero = false;
  std::string verify;
  double sample = 100;
  bool yes = false, force = false, resume = false, discard = false;
  bool whole_drive = false, dry_run = false, unrestricted = false, exit_failure = false;
  std::string cert_dir, journal_dir;
  std::string checkpoint = "1G";
  std::string rate;
  unsigned queue_depth = 32;
  std::string block_size = "1M";
  wipe::CertificateFields f;
};

void add_technique(po::options_description& d, WipeArgs& a, bool with_method = true,
                   bool devices = false) {
  if (with_method)
    d.add_options()
        ("method,m",
         po::value<std::string>(&a.method)->value_name("M")->default_value(devices ? "auto" : "nist-clear"),
         devices ? "auto: the strongest Purge an NVMe drive supports, else nist-clear "
                   "(docs/nvme.md); overwrite (Clear): zero | one | random | dod-3pass | nist-clear | "
                   "custom:PAT[,PAT...] (PAT: hex bytes like 55, aa, 924924, or random); "
                   "NVMe Purge: "
                   "sanitize-crypto | sanitize-block | sanitize-overwrite | format-crypto | "
                   "format-user-data (docs/nvme.md)"
                 : "zero | one | random | dod-3pass | nist-clear | custom:PAT[,PAT...] (PAT: hex "
                   "bytes like 55, aa, 924924, or random)")
        ("passes,n", po::value<unsigned>(&a.passes)->value_name("N")->default_value(1),
         "repeat the method's passes N times")
        ("final-zero", po::bool_switch(&a.final_zero), "add a final zero pass (blanking)");
  d.add_options()
      ("verify", po::value<std::string>(&a.verify)->value_name("MODE"),
       "none | last | all: read back and compare after the last pass or every pass "
       "(default: all for nist-clear, last otherwise)")
      ("sample", po::value<double>(&a.sample)->value_name("PERCENT")->default_value(100),
       "verify only PERCENT of the data in uniformly spread 1 MiB samples, always including "
       "the first and the last (seed recorded in the certificate); 100 = full read-back "
       "(default 100 for overwrites, 1 after an NVMe Purge)")
      ("rate-limit", po::value<std::string>(&a.rate)->value_name("BYTES"),
       "cap the write rate per target, bytes per second (K/M/G suffixes), e.g. 200M")
      ("queue-depth", po::value<unsigned>(&a.queue_depth)->value_name("N")->default_value(32),
       "I/O requests in flight per target")
      ("block-size", po::value<std::string>(&a.block_size)->value_name("BYTES")->default_value("1M"),
       "bytes per I/O request (multiple of 4096)")
      ("cert-dir", po::value<std::string>(&a.cert_dir)->value_name("DIR"),
       "where certificates are written (default: $DLC_HOME/certificates)");
}

void add_safety(po::options_description& d, WipeArgs& a) {
  d.add_options()
      ("yes,y", po::bool_switch(&a.yes), "do not ask for the typed confirmation")
      ("force", po::bool_switch(&a.force),
       "override soft refusals (an unfinished journal, hard-linked files); never overrides "
       "mounted, root, holders, swap or in-use refusals");
}

void add_fields(po::options_description& d, WipeArgs& a) {
  d.add_options()
      ("operator", po::value<std::string>(&a.f.operator_name)->value_name("NAME"),
       "who performs the sanitization (default: the login user)")
      ("title", po::value<std::string>(&a.f.operator_title)->value_name("TITLE"), "the operator's title")
      ("organisation", po::value<std::string>(&a.f.organisation)->value_name("ORG"),
       "for which organisation")
      ("location", po::value<std::string>(&a.f.location)->value_name("WHERE"), "where it is done")
      ("contact", po::value<std::string>(&a.f.contact)->value_name("CONTACT"), "phone or e-mail")
      ("witness", po::value<std::string>(&a.f.witness)->value_name("NAME"),
       "second person validating the sanitization")
      ("asset", po::value<std::string>(&a.f.asset_tag)->value_name("TAG"), "asset tag of the medium")
      ("tenant", po::value<std::string>(&a.f.tenant)->value_name("ID"), "tenant the data belonged to")
      ("source", po::value<std::string>(&a.f.source)->value_name("TEXT"),
       "why/where from: \"tenant exit\", \"RMA\", \"decommission rack 12\"")
      ("classification", po::value<std::string>(&a.f.pre_classification)->value_name("LEVEL"),
       "pre-sanitization classification, e.g. \"JR/T 0197 level 4\"")
      ("post-classification", po::value<std::string>(&a.f.post_classification)->value_name("LEVEL"),
       "post-sanitization classification")
      ("backed-up", po::value<std::string>(&a.f.backed_up)->value_name("yes|no|unknown"),
       "whether the data was backed up")
      ("backup-location", po::value<std::string>(&a.f.backup_location)->value_name("WHERE"),
       "where the backup is")
      ("destination", po::value<std::string>(&a.f.destination)->value_name("DEST"),
       "after sanitization: internal-reuse | external-reuse | recycling | manufacturer | "
       "destroyed | other:TEXT")
      ("notes", po::value<std::string>(&a.f.notes)->value_name("TEXT"), "free-text notes");
}

wipe::WipeOptions to_options(Context& ctx, const WipeArgs& a, const po::variables_map* vm = nullptr) {
  wipe::WipeOptions o;
  if (vm && vm->count("sample") && !(*vm)["sample"].defaulted()) o.purge_sample_percent = a.sample;
  o.whole_drive = a.whole_drive;
  o.dry_run = a.dry_run;
  o.sanitize_unrestricted = a.unrestricted;
  o.sanitize_exit_failure = a.exit_failure;
  o.method = a.method;
  o.passes = a.passes;
  o.final_zero = a.final_zero;
  if (!a.verify.empty()) o.verify = wipe::verify_mode_from_name(a.verify);
  o.sample_percent = a.sample;
  o.yes = a.yes;
  o.force = a.force;
  o.resume = a.resume;
  o.discard = a.discard;
  o.cert = a.f;
  if (!o.cert.backed_up.empty() && o.cert.backed_up != "yes" && o.cert.backed_up != "no" &&
      o.cert.backed_up != "unknown")
    throw Error(Errc::usage, "bad value for --backed-up", "'" + o.cert.backed_up + "'", {},
                "use yes, no or unknown");
  o.cert_dir = a.cert_dir;
  o.journal_dir = a.journal_dir;
  o.checkpoint_bytes = wipe::util::parse_size(a.checkpoint, "--checkpoint");
  if (!a.rate.empty()) o.rate_limit = wipe::util::parse_size(a.rate, "--rate-limit");
  o.queue_depth = a.queue_depth;
  o.block_size = wipe::util::parse_size(a.block_size, "--block-size");
  if (o.block_size == 0 || o.block_size % 4096 != 0 || o.block_size > (64u << 20))
    throw Error(Errc::usage, "bad value for --block-size", a.block_size, {},
                "use a multiple of 4096 up to 64M");
  if (o.queue_depth == 0 || o.queue_depth > 1024)
    throw Error(Errc::usage, "bad value for --queue-depth", std::to_string(o.queue_depth), {},
                "use 1 to 1024");
  o.progress = &ctx.progress();
  o.audit = &ctx.audit();
  o.command_line = ctx.argv();
  return o;
}

// The typed confirmation: only on a terminal.
void install_confirm(wipe::WipeOptions& o) {
  if (!::isatty(STDIN_FILENO)) return;
  o.confirm = [](const wipe::TargetPreview& p) {
    std::ostream& e = std::cerr;
    const json& id = p.identity;
    e << "\nAbout to ERASE " << p.path << "\n"
      << "  model " << id.value("vendor", "") << " " << id.value("model", "") << ", serial "
      << id.value("serial", "") << ", WWN " << id.value("wwn", "") << "\n"
      << "  size " << human_bytes(id.value("size_bytes", std::uint64_t{0})) << " ("
      << id.value("size_bytes", std::uint64_t{0}) << " bytes), sectors "
      << id.value("logical_sector_size", 0) << "/" << id.value("physical_sector_size", 0)
      << ", transport " << id.value("transport", "") << ", media " << id.value("media", "")
      << "\n  plan: " << p.plan << "\n";
    if (p.signatures.empty())
      e << "  signatures: none found\n";
    for (const auto& s : p.signatures) e << "  signature: " << s << "\n";
    for (const auto& w : p.warnings) e << "  note: " << w << "\n";
    std::string name = id.value("kernel_name", "");
    const bool purge = p.plan.find("(NIST SP 800-88 Purge)") != std::string::npos;
    e << (purge ? "The drive will ERASE every namespace the plan names. "
                : "Every byte on it will be overwritten. ")
      << "Type the device name (" << p.path << ") to confirm: " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) return false;
    line = wipe::util::trim(line);
    return line == p.path || line == id.value("node", "") || (!name.empty() && line == name);
  };
}

std::string summary_line(const wipe::TargetReport& t) {
  std::ostringstream s;
  s << t.path << ": " << t.outcome;
  const json& ev = t.evidence;
  if (ev.contains("plan_text")) return s.str() + ": " + ev["plan_text"].get<std::string>();
  if (ev.contains("plan")) s << " (" << ev["plan"].value("method", "") << ")";
  if (ev.contains("bytes_written"))
    s << "; " << human_bytes(ev.value("bytes_written", std::uint64_t{0})) << " written";
  if (ev.contains("verification")) {
    const json& v = ev["verification"];
    s << "; verification " << v.value("result", "not-performed");
    if (v.contains("bytes_verified"))
      s << " (" << v.value("method", "") << ", " << human_bytes(v.value("bytes_verified", std::uint64_t{0}))
        << ")";
  }
  return s.str();
}

void print_target(Context& ctx, const wipe::TargetReport& t, const std::string& indent = "") {
  ctx.say(indent + summary_line(t));
  if (!t.error.empty()) std::cerr << "dlc: " << t.path << ": " << t.error << '\n';
  if (t.evidence.contains("verification")) {
    for (const auto& m : t.evidence["verification"].value("first_mismatches", json::array()))
      ctx.say(indent + "  mismatch at offset " + std::to_string(m.value("offset", std::uint64_t{0})) +
              " (" + std::to_string(m.value("length", std::uint64_t{0})) + " bytes, pass " +
              (m.contains("pass") ? m["pass"].dump() : std::string("?")) + ")");
  }
  if (t.evidence.contains("method_choice") && t.evidence["method_choice"].value("requested", "") == "auto") {
    ctx.say(indent + "  method: " + t.evidence["method_choice"].value("why", ""));
    for (const auto& c : t.evidence["method_choice"].value("considered", json::array()))
      ctx.say(indent + "    " + c.get<std::string>());
  }
  if (t.evidence.contains("resume") && (t.outcome == "interrupted" || t.outcome == "failed"))
    ctx.say(indent + "  resume with: " + t.evidence["resume"].get<std::string>());
  if (!t.certificate_path.empty())
    ctx.say(indent + "  certificate: " + t.certificate_path.string() + " (printable: " +
            t.certificate_html.string() + ")");
  for (const auto& w : t.warnings) ctx.say(indent + "  note: " + w);
  for (const auto& c : t.children) print_target(ctx, c, indent + "  ");
}

int finish(Context& ctx, const wipe::JobReport& r) {
  // The progress display leaves its last line open on a terminal.
  if (!ctx.json() && !ctx.globals().quiet && ::isatty(STDERR_FILENO)) std::cerr << '\n';
  if (ctx.json()) {
    ctx.emit_json(r.to_json());
  } else {
    for (const auto& t : r.targets) print_target(ctx, t);
  }
  return exit_code(r.code);
}

const char* kExitCodes =
    "\nExit codes: 0 sanitized (wipe device --dry-run: would proceed); 1 verification failed; 2 usage; "
    "3 refused by a safety interlock or a method the drive lacks (nothing written); 4 I/O or "
    "device error; 130 interrupted (resume with --resume; a sanitize keeps running in the drive).";

int wipe_device(Context& ctx, const std::vector<std::string>& args) {
  WipeArgs a;
  std::vector<std::string> devices;
  ParseSpec spec;
  spec.usage = "dlc wipe device DEV... [options]   (DEV: block device, or NVMe controller /dev/nvmeX)";
  spec.about =
      "Overwrites whole block devices (several at once, one io_uring engine each), verifies "
      "by read-back, and writes a signed certificate of sanitization per device. On NVMe "
      "drives --method auto runs the strongest Purge the drive supports (Sanitize crypto "
      "erase > block erase > overwrite > Format NVM crypto erase > user data erase, else an "
      "overwrite) and verifies it by the drive's status and a read-back sample. Before any "
      "byte is written or any erasing command is sent it refuses devices that are mounted (or "
      "a partition is), have holders (dm, md, LVM), are active swap, back the running system, "
      "or are open elsewhere (for a Purge: every namespace it erases), and asks you to type "
      "the device name after showing its identity, signatures and plan.";
  spec.about += kExitCodes;
  spec.options.add_options()("device", po::value<std::vector<std::string>>(&devices)->value_name("DEV"),
                             "block device(s) to wipe");
  add_technique(spec.options, a, true, true);
  add_safety(spec.options, a);
  spec.options.add_options()
      ("whole-drive", po::bool_switch(&a.whole_drive),
       "allow an NVMe Purge that erases other namespaces too (Sanitize always erases the whole "
       "NVM subsystem; Format NVM does when the drive's FNA says so)")
      ("dry-run", po::bool_switch(&a.dry_run),
       "resolve each device, run the interlocks, choose the method and print the plan; erase "
       "nothing (exit 3 when a device would be refused)")
      ("sanitize-unrestricted", po::bool_switch(&a.unrestricted),
       "start a sanitize in unrestricted completion mode (AUSE=1): if it fails, the drive may "
       "leave failure mode with --sanitize-exit-failure; default: restricted (only a successful "
       "sanitize ends failure mode)")
      ("sanitize-exit-failure", po::bool_switch(&a.exit_failure),
       "only leave NVMe sanitize failure mode (Sanitize action 1) after a failed unrestricted "
       "sanitize; NOTHING is erased (exit 1)")
      ("resume", po::bool_switch(&a.resume),
       "continue an interrupted wipe of DEV from its journal (same method and seed)")
      ("discard", po::bool_switch(&a.discard),
       "after the overwrite, issue BLKSECDISCARD (or BLKDISCARD) and report which one worked")
      ("checkpoint", po::value<std::string>(&a.checkpoint)->value_name("BYTES")->default_value("1G"),
       "journal checkpoint interval (resume granularity)")
      ("journal-dir", po::value<std::string>(&a.journal_dir)->value_name("DIR"),
       "where resume journals live (default: $DLC_HOME/journal)");
  add_fields(spec.options, a);
  spec.positional.add("device", -1);
  spec.examples =
      "  dlc wipe device /dev/sdb --operator 'Li Wei' --organisation 'Example Bank DC2' \\\n"
      "      --witness 'Zhang Min' --asset A-1029 --destination recycling\n"
      "  dlc wipe device /dev/sdb /dev/sdc --method dod-3pass --verify all --yes\n"
      "  dlc wipe device /dev/sdd --method random --sample 5 --final-zero\n"
      "  dlc wipe device /dev/sdb --resume          # after an interruption\n"
      "  dlc wipe device /dev/nvme0n1 --method auto --dry-run   # what would be done, and why\n"
      "  dlc wipe device /dev/nvme0n1 --method auto --asset A-2210 --destination recycling\n"
      "  dlc wipe device /dev/nvme1 --method sanitize-crypto   # the whole drive\n";
  po::variables_map vm;
  if (!parse_command(ctx, "wipe device", spec, args, vm)) return 0;
  if (devices.empty())
    throw Error(Errc::usage, "dlc wipe device: no device given", {}, {},
                "run 'dlc wipe device --help'");
  wipe::WipeOptions o = to_options(ctx, a, &vm);
  install_confirm(o);
  return finish(ctx, wipe::wipe_devices(devices, o));
}

int wipe_file(Context& ctx, const std::vector<std::string>& args) {
  WipeArgs a;
  std::vector<std::string> files;
  ParseSpec spec;
  spec.usage = "dlc wipe file PATH... [options]";
  spec.about =
      "Overwrites regular files in place (their data extents and the slack of the last "
      "block), fsyncs, verifies, truncates, renames to a random name and unlinks. Symlinks "
      "are refused, never followed. Reports honestly when the filesystem (copy-on-write, "
      "reflinks, log-structured) or the medium (flash) cannot guarantee that the old blocks "
      "are gone.";
  spec.about += kExitCodes;
  spec.options.add_options()("path", po::value<std::vector<std::string>>(&files)->value_name("PATH"),
                             "file(s) to wipe");
  add_technique(spec.options, a);
  add_safety(spec.options, a);
  add_fields(spec.options, a);
  spec.positional.add("path", -1);
  spec.examples = "  dlc wipe file /srv/keys/tenant42.pem --method random --yes\n"
                  "  dlc wipe file a.db b.db --method dod-3pass --tenant t-42 --yes\n";
  po::variables_map vm;
  if (!parse_command(ctx, "wipe file", spec, args, vm)) return 0;
  if (files.empty())
    throw Error(Errc::usage, "dlc wipe file: no file given", {}, {}, "run 'dlc wipe file --help'");
  wipe::WipeOptions o = to_options(ctx, a);
  return finish(ctx, wipe::wipe_files(files, o));
}

int wipe_dir(Context& ctx, const std::vector<std::string>& args) {
  WipeArgs a;
  std::string dir;
  ParseSpec spec;
  spec.usage = "dlc wipe dir PATH [options]";
  spec.about =
      "Wipes a directory tree bottom-up: every regular file as 'dlc wipe file' does, then the "
      "names (renamed to random names, then removed), the directory itself included. Never "
      "follows symlinks (a link is removed, its target untouched) and never crosses into "
      "another filesystem; device nodes, fifos and sockets are only unlinked.";
  spec.about += kExitCodes;
  spec.options.add_options()("path", po::value<std::string>(&dir)->value_name("PATH"), "directory");
  add_technique(spec.options, a);
  add_safety(spec.options, a);
  add_fields(spec.options, a);
  spec.positional.add("path", 1);
  spec.examples = "  dlc wipe dir /srv/tenants/t-42 --tenant t-42 --source 'tenant exit' --yes\n";
  po::variables_map vm;
  if (!parse_command(ctx, "wipe dir", spec, args, vm)) return 0;
  if (dir.empty())
    throw Error(Errc::usage, "dlc wipe dir: no directory given", {}, {}, "run 'dlc wipe dir --help'");
  wipe::WipeOptions o = to_options(ctx, a);
  return finish(ctx, wipe::wipe_dir(dir, o));
}

int wipe_free_space(Context& ctx, const std::vector<std::string>& args) {
  WipeArgs a;
  std::string mp;
  ParseSpec spec;
  spec.usage = "dlc wipe free-space MOUNTPOINT [options]";
  spec.about =
      "Clears the space released by deleted data: fills the free space of a mounted "
      "filesystem with the pattern until it is full, fsyncs, verifies by read-back, and "
      "deletes the fill files. Reports what it cannot reach (filesystem metadata and journal, "
      "snapshots, copy-on-write, flash over-provisioning).";
  spec.about += kExitCodes;
  spec.options.add_options()("mountpoint", po::value<std::string>(&mp)->value_name("MOUNTPOINT"),
                             "mount point");
  add_technique(spec.options, a);
  add_safety(spec.options, a);
  add_fields(spec.options, a);
  spec.positional.add("mountpoint", 1);
  spec.examples = "  dlc wipe free-space /srv/data --method random\n";
  po::variables_map vm;
  if (!parse_command(ctx, "wipe free-space", spec, args, vm)) return 0;
  if (mp.empty())
    throw Error(Errc::usage, "dlc wipe free-space: no mount point given", {}, {},
                "run 'dlc wipe free-space --help'");
  wipe::WipeOptions o = to_options(ctx, a);
  return finish(ctx, wipe::wipe_free_space(mp, o));
}

int wipe_replicas(Context& ctx, const std::vector<std::string>& args) {
  WipeArgs a;
  std::string list;
  ParseSpec spec;
  spec.usage = "dlc wipe replicas --list FILE [options]";
  spec.about =
      "Wipes every replica of one dataset, listed in a JSON file (docs/wipe.md, \"Replica "
      "lists\"): files, directories and block devices. Produces one report that accounts for "
      "every replica as wiped, failed or unreachable, plus a certificate per wiped replica; "
      "one replica not wiped makes the whole job fail (JR/T 0167 9.6 ext c).";
  spec.about += kExitCodes;
  spec.options.add_options()("list", po::value<std::string>(&list)->value_name("FILE"),
                             "the replica list (JSON)");
  add_technique(spec.options, a);
  add_safety(spec.options, a);
  add_fields(spec.options, a);
  spec.examples = "  dlc wipe replicas --list orders-replicas.json --tenant t-42 --yes\n";
  po::variables_map vm;
  if (!parse_command(ctx, "wipe replicas", spec, args, vm)) return 0;
  if (list.empty())
    throw Error(Errc::usage, "dlc wipe replicas: --list FILE is required", {}, {},
                "run 'dlc wipe replicas --help'");
  wipe::WipeOptions o = to_options(ctx, a);
  install_confirm(o);
  return finish(ctx, wipe::wipe_replicas(list, o));
}

int wipe_record_destruction(Context& ctx, const std::vector<std::string>& args) {
  WipeArgs a;
  wipe::DestructionRecord r;
  std::string size;
  ParseSpec spec;
  spec.usage = "dlc wipe record-destruction --method M (--device DEV | --model M --serial S) [options]";
  spec.about =
      "Records the physical destruction of media (shredding, disintegration, pulverizing, "
      "incineration, melting, degaussing done by other equipment) as a signed Destroy-category "
      "certificate. dlc performs no I/O: it records what the operator and witness state. "
      "With --device, the identity of a present device is read (read-only) first.";
  spec.about += kExitCodes;
  spec.options.add_options()
      ("method", po::value<std::string>(&r.method)->value_name("M"),
       "shred | disintegrate | pulverize | incinerate | melt | degauss")
      ("device", po::value<std::string>(&r.device)->value_name("DEV"),
       "read make/model/serial/WWN/size from this device (read-only)")
      ("media-type", po::value<std::string>(&r.media_type)->value_name("TYPE"),
       "hdd | ssd | nvme | tape | optical | flash | other")
      ("make", po::value<std::string>(&r.make)->value_name("MAKE"), "manufacturer")
      ("model", po::value<std::string>(&r.model)->value_name("MODEL"), "model")
      ("serial", po::value<std::string>(&r.serial)->value_name("SERIAL"), "serial number")
      ("wwn", po::value<std::string>(&r.wwn)->value_name("WWN"), "WWN / EUI-64 / NGUID")
      ("size", po::value<std::string>(&size)->value_name("BYTES"), "capacity (K/M/G/T suffixes)")
      ("details", po::value<std::string>(&r.details)->value_name("TEXT"),
       "particle size, equipment, vendor, vendor certificate number")
      ("date", po::value<std::string>(&r.date)->value_name("DATE"),
       "when it was destroyed (default: now)")
      ("cert-dir", po::value<std::string>(&a.cert_dir)->value_name("DIR"),
       "where certificates are written (default: $DLC_HOME/certificates)");
  add_fields(spec.options, a);
  spec.examples =
      "  dlc wipe record-destruction --method shred --model 'ST4000NM' --serial ZC1A2B3C \\\n"
      "      --details 'particle size 2 mm, HSM Powerline' --operator 'Li Wei' \\\n"
      "      --witness 'Zhang Min' --organisation 'Example Bank DC2' --location 'Shanghai'\n";
  po::variables_map vm;
  if (!parse_command(ctx, "wipe record-destruction", spec, args, vm)) return 0;
  if (!size.empty()) r.size_bytes = wipe::util::parse_size(size, "--size");
  r.location = a.f.location;
  wipe::WipeOptions o = to_options(ctx, a);
  return finish(ctx, wipe::record_destruction(r, o));
}

}  // namespace

int cmd_wipe(Context& ctx, const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "device") return wipe_device(ctx, rest);
  if (sub == "file") return wipe_file(ctx, rest);
  if (sub == "dir") return wipe_dir(ctx, rest);
  if (sub == "free-space") return wipe_free_space(ctx, rest);
  if (sub == "replicas") return wipe_replicas(ctx, rest);
  if (sub == "record-destruction") return wipe_record_destruction(ctx, rest);
  const char* usage =
      "Usage: dlc wipe <subcommand> [options]\n\n"
      "Verifiable erasure with a signed certificate of sanitization (NIST SP 800-88) per target.\n\n"
      "Subcommands:\n"
      "  device DEV...          overwrite block devices (interlocks, confirmation, resume)\n"
      "  file PATH...           overwrite, rename and unlink files\n"
      "  dir PATH               wipe a directory tree, names included\n"
      "  free-space MOUNTPOINT  fill the free space of a filesystem with the pattern\n"
      "  replicas --list FILE   wipe every replica of a dataset, one report for all\n"
      "  record-destruction     certify physically destroyed media (no I/O)\n\n"
      "Run 'dlc wipe <subcommand> --help' for options and examples. Certificates are checked\n"
      "with 'dlc verify certificate CERT'.\n";
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << usage;
    return 0;
  }
  std::cerr << usage;
  if (!sub.empty())
    throw Error(Errc::usage, "unknown wipe subcommand", "'" + sub + "'", {}, "see the list above");
  return 2;
}

}  // namespace dlc::cli
