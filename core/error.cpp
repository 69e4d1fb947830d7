#include "core/error.h"

#include <cstring>

namespace dlc {

int exit_code(Errc code) noexcept { return static_cast<int>(code); }

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::check_failed: return "check-failed";
    case Errc::usage: return "usage";
    case Errc::refused: return "refused";
    case Errc::io: return "io";
    case Errc::auth: return "auth";
    case Errc::interrupted: return "interrupted";
  }
  return "unknown";
}

std::string format_error(const ErrorInfo& info) {
  std::string m = info.what;
  if (!info.target.empty()) m += (m.empty() ? "" : " ") + info.target;
  if (!info.detail.empty()) m += ": " + info.detail;
  if (!info.hint.empty()) m += "; " + info.hint;
  return m;
}

Error::Error(Errc code, ErrorInfo info)
    : std::runtime_error(format_error(info)), code_(code), info_(std::move(info)) {}

Error::Error(Errc code, std::string what, std::string target, std::string detail,
             std::string hint)
    : Error(code, ErrorInfo{std::move(what), std::move(target), std::move(detail),
                            std::move(hint)}) {}

void throw_errno(std::string what, std::string target, int err, std::string hint) {
  throw Error(Errc::io, std::move(what), std::move(target), std::strerror(err), std::move(hint));
}

}  // namespace dlc
