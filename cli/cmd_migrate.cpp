#include "cli/cli.h"

namespace dlc::cli {

int cmd_migrate(Context& ctx, const std::vector<std::string>& args) {
  return not_available(ctx, args, "migrate", "verified migration", "#6");
}

}  // namespace dlc::cli
