// Internal to dlc::migrate: the tree and volume engines that run_migrate
// (migrate.cpp) drives after residency and pre-flight have passed.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "migrate/destination.h"
#include "migrate/journal.h"
#include "migrate/migrate.h"
#include "verify/verify.h"

namespace dlc::migrate {

// Bytes per second across all sending threads (--bwlimit).
class RateLimiter {
 public:
  explicit RateLimiter(std::uint64_t bps) : bps_(bps), start_(std::chrono::steady_clock::now()) {}
  void take(std::uint64_t n) {
    if (!bps_) return;
    std::chrono::steady_clock::time_point due;
    {
      std::lock_guard<std::mutex> lk(mu_);
      sent_ += n;
      due = start_ + std::chrono::nanoseconds(static_cast<std::int64_t>(
                         static_cast<double>(sent_) / static_cast<double>(bps_) * 1e9));
    }
    std::this_thread::sleep_until(due);
  }

 private:
  std::uint64_t bps_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::uint64_t sent_ = 0;
};

struct TreeResult {
  verify::Manifest source;
  std::optional<verify::Manifest> dest;
  std::optional<verify::Comparison> comparison;
  std::uint64_t files_sent = 0, bytes_sent = 0, files_skipped = 0, files_removed = 0;
  unsigned passes = 0;
  std::vector<verify::Difference> copy_failures;  // re-read mismatches during the copy
  std::vector<std::string> source_changed;        // final pass: paths that changed meanwhile
  nlohmann::json profile;                         // thread-ms per phase, wall ms of copy and check
};

// Whether a source file may be skipped: the journal knows it with the same
// identity and the destination holds a file of that size.
bool unchanged(const JournalRecord& r, const verify::Entry& e);

// walk: the first walk of the source (sorted or not).
TreeResult migrate_tree(const MigrateOptions& o, const std::filesystem::path& src, Destination& dest,
                        Journal& journal, std::vector<verify::Entry> walk);

struct VolumeResult {
  verify::Manifest source;
  std::optional<verify::Manifest> dest;
  std::optional<verify::Comparison> comparison;
  std::uint64_t chunks_sent = 0, bytes_sent = 0, chunks_skipped = 0;
  unsigned passes = 0;
  std::vector<std::uint64_t> source_changed_chunks;  // changed under the final check (--final)
  std::vector<verify::Difference> copy_failures;  // chunks whose re-read at the receiver differed
  nlohmann::json profile;                         // thread-ms per phase, wall ms of copy and check
};
VolumeResult migrate_volume(const MigrateOptions& o, const std::string& src, const std::string& dst,
                            Journal& journal);

class RemoteVolume;
// To a remote receiver: chunks hashed while read, sent with their hash,
// journalled once the receiver re-read them from its storage and they matched.
VolumeResult migrate_volume_remote(const MigrateOptions& o, const std::string& src, RemoteVolume& dst,
                                   Journal& journal);

}  // namespace dlc::migrate
