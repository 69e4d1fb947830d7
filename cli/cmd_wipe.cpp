#include "cli/cli.h"

namespace dlc::cli {

int cmd_wipe(Context& ctx, const std::vector<std::string>& args) {
  return not_available(ctx, args, "wipe", "verifiable erasure", "#3");
}

}  // namespace dlc::cli
