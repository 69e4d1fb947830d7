// The resume journal of a device wipe: where an interrupted job stands, so
// that `dlc wipe device DEV --resume` continues after kill -9 or power loss.
// One JSON file per device under $DLC_HOME/journal/ (0600 in a 0700
// directory), replaced atomically (temp, fsync, rename, fsync dir) at each
// checkpoint, after the bytes it covers were fdatasync'ed. It holds the
// random-pattern job seed: a pattern seed, not a data key (docs/wipe.md,
// "Threat model"); the journal is deleted when the job ends.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace dlc::wipe {

struct JournalData {
  int version = 1;
  std::string stable_id;       // DeviceIdentity::stable_id()
  std::string device;          // path as given
  nlohmann::json pin;          // DeviceIdentity::pin()
  nlohmann::json identity;     // DeviceIdentity::to_json() at the start
  nlohmann::json plan;         // MethodPlan::to_json()
  std::string seed_hex;        // 32-byte random-pattern job seed
  std::string certificate_id;
  std::string started_at;
  nlohmann::json audit_started = nlohmann::json::object();  // {seq, hash}
  unsigned pass = 0;           // current pass, 0-based
  std::uint64_t offset = 0;    // bytes of this pass known durable
  std::string phase = "write"; // write | verify
  nlohmann::json completed_passes = nlohmann::json::array();
  nlohmann::json interruptions = nlohmann::json::array();
  std::uint64_t bytes_written = 0;  // over the whole job, rewrites included
  std::string updated_at;
  long pid = 0;
  nlohmann::json to_json() const;
  static JournalData from_json(const nlohmann::json& j);
};

class Journal {
 public:
  static std::filesystem::path default_dir();  // $DLC_HOME/journal
  static std::filesystem::path path_for(const std::filesystem::path& dir,
                                        const std::string& stable_id);
  // nullopt when there is no journal; throws Errc::io when it cannot be parsed.
  static std::optional<Journal> load(const std::filesystem::path& path);

  Journal(std::filesystem::path path, JournalData data);
  JournalData& data() { return data_; }
  const JournalData& data() const { return data_; }
  const std::filesystem::path& path() const { return path_; }

  void save();  // atomic replace
  void checkpoint(unsigned pass, std::uint64_t offset, const std::string& phase);
  void remove();

 private:
  std::filesystem::path path_;
  JournalData data_;
};

}  // namespace dlc::wipe
