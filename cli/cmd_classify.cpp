// dlc classify: find, grade, label and mask sensitive data (classify/classify.h).
// Parses options, calls the library, prints; raw values never reach this file.
#include <iostream>
#include <sstream>

#include "classify/classify.h"
#include "cli/cli.h"
#include "core/error.h"
#include "core/fs.h"

namespace dlc::cli {

namespace {

namespace fs = std::filesystem;
namespace cls = dlc::classify;

int classify_mask(Context& ctx, const std::vector<std::string>& args) {
  ParseSpec spec;
  std::string in, out, policy;
  double min_conf = -1;
  bool force = false;
  spec.usage = "dlc classify mask IN OUT [--policy FILE] [--min-confidence X] [--force]";
  spec.about =
      "Writes a masked copy of a text, CSV/TSV, JSON or log file (JR/T 0167 8c): every finding\n"
      "at or above the confidence threshold is replaced by its masked form (110105********123X,\n"
      "6222 **** **** 1234, passwords as ********, private key bodies removed). GB18030 input\n"
      "stays GB18030 and gzip input stays gzip. OUT is written atomically; an existing OUT is\n"
      "replaced only with --force. An audit record (counts only) is appended.";
  spec.examples =
      "  dlc classify mask customers.csv customers.masked.csv\n"
      "  dlc classify mask app.log.gz app.masked.log.gz --min-confidence 0.4\n";
  spec.options.add_options()("in", po::value(&in)->required()->value_name("IN"), "file to mask")(
      "out", po::value(&out)->required()->value_name("OUT"), "where to write the masked copy")(
      "policy", po::value(&policy)->value_name("FILE"),
      "grading policy (JSON, see docs/classify.md)")(
      "min-confidence", po::value(&min_conf)->value_name("X"),
      "mask findings at or above this confidence (default: the policy's, 0.5)")(
      "force", po::bool_switch(&force), "replace OUT if it exists");
  spec.positional.add("in", 1).add("out", 1);
  po::variables_map vm;
  if (!parse_command(ctx, "classify mask", spec, args, vm)) return 0;

  cls::MaskOptions o;
  o.input = in;
  o.output = out;
  if (!policy.empty()) o.policy_file = policy;
  if (vm.count("min-confidence")) o.min_confidence = min_conf;
  o.force = force;
  const cls::MaskResult r = cls::mask_file(o);

  audit::Event ev;
  ev.command = "classify mask";
  ev.args = ctx.argv();
  ev.target = out;
  ev.outcome = "ok";
  ev.details = {
      {"input", in},      {"masked", r.masked},     {"counts", cls::counts_to_json(r.counts)},
      {"level", r.level}, {"encoding", r.encoding}, {"gzip", r.gzip}};
  ctx.audit().append(ev);

  if (ctx.json()) {
    ctx.emit_json({{"input", in},
                   {"output", out},
                   {"masked", r.masked},
                   {"counts", cls::counts_to_json(r.counts)},
                   {"level", r.level},
                   {"encoding", r.encoding},
                   {"gzip", r.gzip},
                   {"bytes_in", r.bytes_in},
                   {"bytes_out", r.bytes_out}});
  } else {
    std::string line = "masked " + std::to_string(r.masked) + " values in " + in + " -> " + out;
    ctx.say(line);
  }
  return 0;
}

int classify_scan(Context& ctx, const std::vector<std::string>& args) {
  ParseSpec spec;
  std::vector<std::string> paths, include, exclude;
  std::string policy, output, label, binary = "strings";
  double min_conf = -1;
  int fail_level = 0;
  unsigned threads = 0;
  std::size_t max_findings = 1000, show = 20;
  bool csv = false, xattr = false;
  spec.usage = "dlc classify PATH... [options]\n       dlc classify mask IN OUT [options]";
  spec.about =
      "Finds sensitive data and personal information in files and directories (recursively):\n"
      "resident IDs (GB 11643), unified social credit codes (GB 32100), bank cards (Luhn + BIN),\n"
      "mobile numbers, passports and travel permits, e-mail, IP addresses, IBANs, private keys,\n"
      "cloud access keys, JWTs, passwords/secrets in configs and connection strings, CVV/PIN.\n"
      "Every candidate is validated by its check rules; context words and CSV/JSON field names\n"
      "raise or lower confidence, and CSV/TSV columns are classified as a whole. Each finding\n"
      "carries a JR/T 0171 category (C1-C3), a JR/T 0197 level (1-5) and a MASKED sample; raw\n"
      "values are never printed. Reads UTF-8 and GB18030/GBK text, gzip files, and the printable\n"
      "runs of binary files. --label writes a labels manifest for 'dlc migrate'.\n"
      "Exit status: 0 done, 1 the dataset's level is at or above --fail-level, 2 usage,\n"
      "4 an input could not be read.";
  spec.examples =
      "  dlc classify /data/exports\n"
      "  dlc classify dump.sql.gz --fail-level 3          # gate a pipeline\n"
      "  dlc --json classify logs/ --include '*.log' > report.json\n"
      "  dlc classify /data --csv --output findings.csv\n"
      "  dlc classify /data --label /data/.dlc-labels.json --xattr\n"
      "  dlc classify mask customers.csv customers.masked.csv\n";
  spec.options.add_options()("path", po::value(&paths)->value_name("PATH"),
                             "files or directories to classify")(
      "include", po::value(&include)->value_name("GLOB"),
      "only files whose relative path or name matches (repeatable)")(
      "exclude", po::value(&exclude)->value_name("GLOB"),
      "skip files and directories whose relative path or name matches (repeatable)")(
      "policy", po::value(&policy)->value_name("FILE"),
      "grading policy overriding the default (JSON, see docs/classify.md)")(
      "min-confidence", po::value(&min_conf)->value_name("X"),
      "report findings at or above this confidence, 0..1 (default: the policy's, 0.5)")(
      "fail-level", po::value(&fail_level)->value_name("N"),
      "exit 1 when the dataset's level is N (1-5) or above")("csv", po::bool_switch(&csv),
                                                             "findings as CSV instead of text")(
      "output,o", po::value(&output)->value_name("FILE"),
      "write the report (JSON, or CSV with --csv) to FILE atomically; print the summary")(
      "label", po::value(&label)->value_name("MANIFEST"),
      "write a labels manifest (docs/formats/labels.md) for 'dlc migrate'")(
      "xattr", po::bool_switch(&xattr), "with --label: also set user.dlc.level on each file")(
      "binary", po::value(&binary)->value_name("MODE"),
      "binary files: 'strings' scans their printable runs (default), 'skip' skips them")(
      "threads", po::value(&threads)->value_name("N"), "worker threads (default: one per core)")(
      "max-findings", po::value(&max_findings)->value_name("N"),
      "findings listed per file in reports (counts are always complete; default 1000)")(
      "show", po::value(&show)->value_name("N"), "findings shown per file in text (default 20)");
  spec.positional.add("path", -1);
  po::variables_map vm;
  if (!parse_command(ctx, "classify", spec, args, vm)) return 0;

  if (paths.empty())
    throw Error(Errc::usage, "dlc classify: no PATH given", {}, {},
                "run 'dlc classify --help' for its options");
  if (vm.count("fail-level") && (fail_level < 1 || fail_level > 5))
    throw Error(Errc::usage, "invalid --fail-level", std::to_string(fail_level), {},
                "give a level from 1 to 5");
  if (binary != "strings" && binary != "skip")
    throw Error(Errc::usage, "invalid --binary", binary, {}, "use 'strings' or 'skip'");
  if (xattr && label.empty())
    throw Error(Errc::usage, "--xattr needs --label", {}, {}, "add --label MANIFEST");

  cls::ClassifyOptions o;
  for (const auto& p : paths) o.inputs.emplace_back(p);
  o.include = include;
  o.exclude = exclude;
  if (!policy.empty()) o.policy_file = policy;
  if (vm.count("min-confidence")) o.min_confidence = min_conf;
  o.threads = threads;
  o.max_findings_per_file = max_findings;
  o.binary = binary == "skip" ? cls::BinaryMode::skip : cls::BinaryMode::strings;
  o.hash_files = !label.empty();
  o.progress = &ctx.progress();
  const cls::DatasetReport r = cls::scan(o);

  if (!output.empty()) {
    write_file_atomic(output, csv ? cls::to_csv(r) : cls::to_json(r).dump(2) + "\n", kModeFromUmask);
    std::ostringstream os;
    cls::write_human(os, r, ctx.globals().verbose, show);
    ctx.out() << os.str();
  } else if (ctx.json()) {
    ctx.emit_json(cls::to_json(r));
  } else if (csv) {
    if (!ctx.globals().quiet) std::cout << cls::to_csv(r);
  } else {
    std::ostringstream os;
    cls::write_human(os, r, ctx.globals().verbose, show);
    ctx.out() << os.str();
  }

  if (!label.empty()) {
    const cls::LabelResult lr = cls::write_labels(r, {label, xattr});
    audit::Event ev;
    ev.command = "classify label";
    ev.args = ctx.argv();
    ev.target = label;
    ev.outcome = "ok";
    ev.details = {{"roots", r.roots},
                  {"files", lr.files},
                  {"level", r.level},
                  {"findings", r.total},
                  {"counts", cls::counts_to_json(r.counts)},
                  {"xattrs_set", lr.xattrs_set},
                  {"xattr_failures", lr.xattr_failures}};
    ctx.audit().append(ev);
    ctx.detail("labels manifest written to " + label);
  }

  for (const auto& f : r.files)
    if (!f.error.empty()) std::cerr << "dlc: classify: " << f.error << '\n';
  if (fail_level > 0 && r.level >= fail_level) {
    if (!ctx.json() && !csv)
      ctx.say("dlc classify: dataset level " + std::to_string(r.level) +
              " is at or above --fail-level " + std::to_string(fail_level));
    return 1;
  }
  return r.files_failed > 0 ? 4 : 0;
}

}  // namespace

int cmd_classify(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty() && args.front() == "mask")
    return classify_mask(ctx, std::vector<std::string>(args.begin() + 1, args.end()));
  return classify_scan(ctx, args);
}

}  // namespace dlc::cli
