#include "cli/cli.h"

namespace dlc::cli {

int cmd_classify(Context& ctx, const std::vector<std::string>& args) {
  return not_available(ctx, args, "classify", "classification of sensitive data", "#5");
}

}  // namespace dlc::cli
