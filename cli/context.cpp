#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"

namespace dlc::cli {

namespace {
// Discards everything written to it (--quiet, --json).
class NullStream : public std::ostream {
 public:
  NullStream() : std::ostream(nullptr) {}
};
NullStream g_null;
}  // namespace

Context::Context(Globals globals, std::vector<std::string> argv)
    : globals_(std::move(globals)), argv_(std::move(argv)) {
  const bool verbose = globals_.verbose;
  const bool quiet = globals_.quiet;
  set_notice_sink([verbose, quiet](NoticeLevel level, std::string_view msg) {
    if (level == NoticeLevel::debug && !verbose) return;
    if (level == NoticeLevel::info && (quiet || !verbose)) return;
    if (level == NoticeLevel::warning && quiet) return;
    std::cerr << "dlc: " << (level == NoticeLevel::warning ? "warning: " : "") << msg << '\n';
  });
}

Context::~Context() = default;

std::ostream& Context::out() {
  if (globals_.quiet || globals_.json) return g_null;
  return std::cout;
}

void Context::say(const std::string& line) { out() << line << '\n'; }

void Context::detail(const std::string& line) {
  if (globals_.verbose) out() << line << '\n';
}

void Context::emit_json(const nlohmann::json& doc) {
  if (globals_.json) std::cout << doc.dump(2) << '\n';
}

audit::AuditLog& Context::audit() {
  if (!audit_) {
    std::filesystem::path home = dlc_home();
    std::filesystem::path log =
        globals_.audit_log.empty() ? home / "audit.jsonl" : std::filesystem::path(globals_.audit_log);
    std::error_code ec;
    std::filesystem::create_directories(home, ec);
    if (ec)
      throw Error(Errc::io, "cannot create the dlc state directory", home.string(), ec.message(),
                  "run as root, or set DLC_HOME to a writable directory");
    audit_ = std::make_unique<audit::AuditLog>(log, audit::HostKey::load_or_create(home));
  }
  return *audit_;
}

ProgressSink& Context::progress() {
  if (globals_.json || globals_.quiet || !::isatty(STDERR_FILENO)) return null_progress();
  if (!progress_) progress_ = make_tty_progress(stderr);
  return *progress_;
}

po::options_description global_options(Globals& g) {
  po::options_description d("Global options");
  d.add_options()
      ("json", po::bool_switch(&g.json), "machine-readable JSON on stdout instead of text")
      ("quiet,q", po::bool_switch(&g.quiet), "print only errors")
      ("verbose,v", po::bool_switch(&g.verbose), "print more detail")
      ("audit-log", po::value<std::string>(&g.audit_log)->value_name("PATH"),
       "audit log to append to (default: $DLC_HOME/audit.jsonl, DLC_HOME defaults to /var/lib/dlc)");
  return d;
}

bool parse_command(Context& ctx, const std::string& command, ParseSpec& spec,
                   const std::vector<std::string>& args, po::variables_map& vm) {
  (void)ctx;
  spec.options.add_options()("help,h", po::bool_switch(), "show this help");
  try {
    po::parsed_options parsed = po::command_line_parser(args)
                                    .options(spec.options)
                                    .positional(spec.positional)
                                    .style(po::command_line_style::unix_style ^
                                           po::command_line_style::allow_guessing)
                                    .run();
    po::store(parsed, vm);
    // Look at --help before notify(), which would reject missing required
    // options before the help is shown.
    if (vm.count("help") != 0 && vm["help"].as<bool>()) {
      Globals shown;  // for the help text only: globals were parsed before the command
      std::cout << "Usage: " << spec.usage << "\n\n"
                << spec.about << "\n\n"
                << spec.options << '\n'
                << global_options(shown);
      if (!spec.examples.empty()) std::cout << "\nExamples:\n" << spec.examples;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(Errc::usage, "dlc " + command + ": " + e.what(), {}, {},
                "run 'dlc " + command + " --help' for its options");
  }
  return true;
}

std::string human_bytes(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace dlc::cli
