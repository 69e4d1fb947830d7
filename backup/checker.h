// Shared by check, verify backup, prune and stats.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backup/repository.h"

namespace dlc::backup {

// Pack files in data/<xx>/ by id with their sizes; counts temp files.
std::map<std::string, std::uint64_t> packs_on_disk(const fs::path& repo, std::uint64_t* temp_files = nullptr);

// Verification coverage: when each pack was last read whole and verified.
fs::path coverage_file(const fs::path& state_dir, const std::string& repo_id);
std::map<std::string, std::int64_t> load_coverage(const fs::path& file);
void save_coverage(const fs::path& file, const std::map<std::string, std::int64_t>& coverage);
// Packs to read for a subset: bucket n of m, or the least recently verified
// packs until percent of the packed bytes is covered.
std::vector<std::size_t> select_packs(const std::vector<PackInfo>& packs, const Subset& s,
                                      const std::map<std::string, std::int64_t>& coverage);

CheckResult run_check_on(Repository& repo, const CheckOptions& opts);

}  // namespace dlc::backup
