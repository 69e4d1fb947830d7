#include "cli/cli.h"

namespace dlc::cli {

int cmd_verify(Context& ctx, const std::vector<std::string>& args) {
  return not_available(ctx, args, "verify", "verification of manifests, backups, migrations and certificates", "#3/#4/#6");
}

}  // namespace dlc::cli
