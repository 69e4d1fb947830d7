// dlc::Error: the one error type of dlc. Thrown where a failure happens,
// caught once in cli/ and mapped to an exit code and a one-line message:
//   dlc: <what failed> <target>: <detail>; <what to do>
// e.g. "dlc: cannot open audit log /var/lib/dlc/audit.jsonl: Permission denied;
//       run as root or pass --audit-log PATH".
// Messages never carry key material or raw sensitive values.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dlc {

// Exit codes are part of the CLI contract (docs/design.md, "Exit codes").
enum class Errc : int {
  ok = 0,
  check_failed = 1,   // verification found damage, findings at/above the fail level, tampering
  usage = 2,          // bad command line, unknown option, tool not built yet
  refused = 3,        // refused by a safety interlock or a policy (nothing was changed)
  io = 4,             // I/O or runtime error (missing file, device error, out of space)
  auth = 5,           // authentication failed: wrong passphrase or key, unusable key file
  interrupted = 130,  // stopped by SIGINT/SIGTERM; state is consistent and resumable
};

int exit_code(Errc code) noexcept;
std::string_view errc_name(Errc code) noexcept;

struct ErrorInfo {
  std::string what;    // what failed: "cannot open audit log"
  std::string target;  // on what: a path, a device, a record ("" when none)
  std::string detail;  // why: "Permission denied" ("" when none)
  std::string hint;    // what to do: "run as root or pass --audit-log PATH"
};

class Error : public std::runtime_error {
 public:
  Error(Errc code, ErrorInfo info);
  Error(Errc code, std::string what, std::string target = {}, std::string detail = {},
        std::string hint = {});

  Errc code() const noexcept { return code_; }
  const ErrorInfo& info() const noexcept { return info_; }

 private:
  Errc code_;
  ErrorInfo info_;
};

// Formats "what target: detail; hint" with the empty parts left out.
std::string format_error(const ErrorInfo& info);

// Throws an Errc::io Error whose detail is strerror(err).
[[noreturn]] void throw_errno(std::string what, std::string target, int err = errno,
                              std::string hint = {});

}  // namespace dlc
