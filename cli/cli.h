// The dlc command line: shared plumbing for the per-command files (cmd_*.cpp).
// cli/ only parses options, calls a tool library and prints; no logic lives here.
#pragma once

#include <boost/program_options.hpp>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/audit_log.h"
#include "core/runtime.h"

namespace dlc::cli {

namespace po = boost::program_options;

struct Globals {
  bool json = false;
  bool quiet = false;
  bool verbose = false;
  std::string audit_log;  // empty: <dlc_home>/audit.jsonl
};

class Context {
 public:
  Context(Globals globals, std::vector<std::string> argv);
  ~Context();

  const Globals& globals() const { return globals_; }
  bool json() const { return globals_.json; }
  // The full command line as typed, for audit records (masked there).
  const std::vector<std::string>& argv() const { return argv_; }

  // Human text (suppressed by --quiet and --json) and verbose-only text.
  std::ostream& out();
  void say(const std::string& line);
  void detail(const std::string& line);
  // Machine output: one JSON document on stdout (with --json).
  void emit_json(const nlohmann::json& doc);

  // The audit log, opened on first use (host key under dlc_home()).
  audit::AuditLog& audit();
  // Progress display on a TTY; a null sink for --json, --quiet or a pipe.
  ProgressSink& progress();

 private:
  Globals globals_;
  std::vector<std::string> argv_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<ProgressSink> progress_;
};

// A subcommand: name, one-line summary, and its entry point, which receives
// the arguments after the command name.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(Context& ctx, const std::vector<std::string>& args);
};
const std::vector<Command>& commands();

// The options every command accepts (also accepted before the command name).
po::options_description global_options(Globals& g);

// Parses a command's arguments with its options plus the global ones.
// Prints help and returns false when --help was given. Throws Errc::usage on
// unknown options or bad values, naming the option and the command.
struct ParseSpec {
  std::string usage;     // "dlc audit verify LOG [--pubkey KEY]"
  std::string about;     // a paragraph on what it does
  std::string examples;  // example lines
  po::options_description options{"Options"};
  po::positional_options_description positional;
};
bool parse_command(Context& ctx, const std::string& command, ParseSpec& spec,
                   const std::vector<std::string>& args, po::variables_map& vm);

// Progress renderer for a terminal: one line per task, bytes, rate and ETA.
std::unique_ptr<ProgressSink> make_tty_progress(std::FILE* stream);

std::string human_bytes(std::uint64_t bytes);

}  // namespace dlc::cli
