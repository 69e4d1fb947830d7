// The command table: one entry per subcommand, each implemented in cmd_<name>.cpp.
#include "cli/cli.h"

namespace dlc::cli {

int cmd_classify(Context&, const std::vector<std::string>&);
int cmd_backup(Context&, const std::vector<std::string>&);
int cmd_verify(Context&, const std::vector<std::string>&);
int cmd_migrate(Context&, const std::vector<std::string>&);
int cmd_wipe(Context&, const std::vector<std::string>&);
int cmd_audit(Context&, const std::vector<std::string>&);
int cmd_exit(Context&, const std::vector<std::string>&);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"classify", "find, grade, label and mask sensitive data", cmd_classify},
      {"backup", "encrypted, deduplicated backup and restore", cmd_backup},
      {"verify", "verify certificates, manifests, trees, backups, migrations", cmd_verify},
      {"migrate", "residency-checked, end-to-end verified migration", cmd_migrate},
      {"wipe", "verifiable erasure of devices, files, free space and replicas", cmd_wipe},
      {"exit", "tenant exit: classify, back up, migrate --verify, then wipe, one report", cmd_exit},
      {"audit", "verify and inspect the tamper-evident audit log", cmd_audit},
  };
  return table;
}

}  // namespace dlc::cli
