// dlc: entry point. Parses the global options and the command name, runs the
// command, and maps the one error type to an exit code and a one-line message.
#include <csignal>
#include <cstring>
#include <iostream>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"

namespace po = boost::program_options;
using dlc::cli::Context;
using dlc::cli::Globals;

namespace {

void on_stop_signal(int) { dlc::stop_requested().store(true); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void print_overview(std::ostream& os, const po::options_description& globals) {
  os << "dlc " << DLC_VERSION
     << " - data lifecycle and secure erasure for regulated clouds (JR/T 0167-2020)\n\n"
        "Usage: dlc [global options] <command> [options] [arguments]\n\nCommands:\n";
  for (const auto& c : dlc::cli::commands()) {
    os << "  " << c.name << std::string(10 - std::min<size_t>(9, std::strlen(c.name)), ' ')
       << c.summary << '\n';
  }
  os << '\n' << globals
     << "\nExit codes:\n"
        "  0  success\n"
        "  1  check failed: verification found damage or tampering, or findings at/above the fail level\n"
        "  2  usage error: unknown command or option, bad value\n"
        "  3  refused by a safety interlock or a policy; nothing was changed\n"
        "  4  I/O or runtime error\n"
        "  5  authentication failed: wrong passphrase or key\n"
        "  130 interrupted by a signal; the operation can be resumed\n"
        "\nRun 'dlc <command> --help' for a command's options and examples.\n";
}

int run(int argc, char** argv) {
  Globals g;
  bool help = false;
  bool version = false;
  po::options_description visible = dlc::cli::global_options(g);
  po::options_description all;
  all.add(visible);
  all.add_options()("help,h", po::bool_switch(&help))("version", po::bool_switch(&version))(
      "command", po::value<std::string>())("subargs", po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add("command", 1).add("subargs", -1);

  po::variables_map vm;
  po::parsed_options parsed = po::command_line_parser(argc, argv)
                                  .options(all)
                                  .positional(pos)
                                  .allow_unregistered()
                                  .style(po::command_line_style::unix_style ^ po::command_line_style::allow_guessing)
                                  .run();
  po::store(parsed, vm);
  po::notify(vm);

  std::vector<std::string> full(argv, argv + argc);
  if (version) {
    std::cout << "dlc " << DLC_VERSION << '\n';
    return 0;
  }
  if (!vm.count("command")) {
    if (help) {
      print_overview(std::cout, visible);
      return 0;
    }
    // Leftover options with no command are unknown global options.
    auto rest = po::collect_unrecognized(parsed.options, po::exclude_positional);
    if (!rest.empty())
      throw dlc::Error(dlc::Errc::usage, "unknown option", rest.front(), {},
                       "run 'dlc --help' for the global options");
    print_overview(std::cerr, visible);
    return 2;
  }
  const std::string name = vm["command"].as<std::string>();
  if (name == "help") {
    print_overview(std::cout, visible);
    return 0;
  }
  std::vector<std::string> args = po::collect_unrecognized(parsed.options, po::include_positional);
  args.erase(args.begin());  // the command name
  if (help) args.emplace_back("--help");

  for (const auto& c : dlc::cli::commands()) {
    if (name == c.name) {
      Context ctx(g, full);
      return c.run(ctx, args);
    }
  }
  throw dlc::Error(dlc::Errc::usage, "unknown command", "'" + name + "'", {},
                   "run 'dlc --help' for the list of commands");
}

}  // namespace

int main(int argc, char** argv) {
  install_signal_handlers();
  try {
    return run(argc, argv);
  } catch (const dlc::Error& e) {
    std::cerr << "dlc: " << e.what() << '\n';
    return dlc::exit_code(e.code());
  } catch (const po::error& e) {
    std::cerr << "dlc: " << e.what() << "; run 'dlc --help' or 'dlc <command> --help'\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "dlc: out of memory\n";
    return 4;
  } catch (const std::exception& e) {
    std::cerr << "dlc: internal error: " << e.what() << '\n';
    return 4;
  }
}
