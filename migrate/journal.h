// Internal to dlc::migrate: the resume journal of one SRC/DST pair, JSON Lines
// in <state_dir>/journal.jsonl (docs/migrate.md, "Resume"). A file is recorded
// once it is durable at the destination ("c": copied) or, with --verify, once
// it was re-read from storage and matched ("v": verified), together with the
// source's size, mtime, ctime and inode at the time it was read: a later run
// skips it while the source still has the same identity. A last line without
// its '\n' (kill -9 while appending) is dropped and cut off the file; any
// other damage (a line that is not a record, a mistyped member, records
// before the header) is one Errc::io dlc::Error naming the line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dlc::migrate {

struct JournalRecord {
  std::string hash;  // source content hash (hex)
  std::uint64_t size = 0, ino = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
  bool verified = false;
};

class Journal {
 public:
  // Opens (creating) <dir>/journal.jsonl. header identifies the pair; an
  // existing journal with another header (other hash, other pair) is
  // Errc::refused, a damaged one Errc::io (the hint: --restart).
  Journal(const std::filesystem::path& dir, const nlohmann::json& header, bool restart);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  bool resumed() const { return resumed_; }  // records existed when opened
  const std::map<std::string, JournalRecord>& files() const { return files_; }
  std::size_t verified_count() const;
  // Appends records and syncs the journal once.
  void record(const std::vector<std::pair<std::string, JournalRecord>>& recs);
  void forget(const std::vector<std::string>& paths);
  void note(const nlohmann::json& event);  // passes, finishes (informational)
  const std::filesystem::path& path() const { return path_; }

 private:
  void append(const std::string& lines);
  std::filesystem::path path_;
  int fd_ = -1;
  bool resumed_ = false;
  std::mutex mu_;
  std::map<std::string, JournalRecord> files_;
};

}  // namespace dlc::migrate
