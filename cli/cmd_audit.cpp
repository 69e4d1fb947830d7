#include "cli/cli.h"

namespace dlc::cli {

// Placeholder until the audit log lands (being written now).
int cmd_audit(Context& ctx, const std::vector<std::string>& args) {
  return not_available(ctx, args, "audit", "the audit log verifier", "#2");
}

}  // namespace dlc::cli
