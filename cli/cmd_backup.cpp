#include "cli/cli.h"

namespace dlc::cli {

int cmd_backup(Context& ctx, const std::vector<std::string>& args) {
  return not_available(ctx, args, "backup", "encrypted backup and restore", "#4");
}

}  // namespace dlc::cli
