#include "wipe/journal.h"

#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/crypto.h"
#include "core/error.h"
#include "core/runtime.h"
#include "wipe/util.h"

namespace dlc::wipe {

namespace fs = std::filesystem;

nlohmann::json JournalData::to_json() const {
  return {{"format", "dlc-wipe-journal"},
          {"version", version},
          {"stable_id", stable_id},
          {"device", device},
          {"pin", pin},
          {"identity", identity},
          {"plan", plan},
          {"seed", seed_hex},
          {"certificate_id", certificate_id},
          {"started_at", started_at},
          {"audit_started", audit_started},
          {"pass", pass},
          {"offset", offset},
          {"phase", phase},
          {"completed_passes", completed_passes},
          {"interruptions", interruptions},
          {"bytes_written", bytes_written},
          {"updated_at", updated_at},
          {"pid", pid}};
}

namespace {

// A JSON integer that fits T. get<T>() converts a float out of T's range with
// undefined behaviour (an offset of 1e34) and wraps negative numbers.
template <class T>
T integer_member(const nlohmann::json& v, const char* key) {
  if (v.is_number_unsigned()) {
    if (const auto x = v.get<std::uint64_t>(); std::in_range<T>(x)) return static_cast<T>(x);
  } else if (v.is_number_integer()) {
    if (const auto x = v.get<std::int64_t>(); std::in_range<T>(x)) return static_cast<T>(x);
  }
  throw Error(Errc::io, "cannot parse wipe journal", {}, std::string("\"") + key + "\" is not an integer in range",
              "remove it to start over (the wipe then restarts from the beginning)");
}

}  // namespace

JournalData JournalData::from_json(const nlohmann::json& j) {
  if (j.value("format", "") != "dlc-wipe-journal" || !j.contains("version") ||
      integer_member<int>(j["version"], "version") != 1)
    throw Error(Errc::io, "not a dlc wipe journal (version 1)");
  JournalData d;
  d.stable_id = j.at("stable_id").get<std::string>();
  d.device = j.at("device").get<std::string>();
  d.pin = j.at("pin");
  d.identity = j.value("identity", nlohmann::json::object());
  d.plan = j.at("plan");
  d.seed_hex = j.at("seed").get<std::string>();
  d.certificate_id = j.at("certificate_id").get<std::string>();
  d.started_at = j.at("started_at").get<std::string>();
  d.audit_started = j.value("audit_started", nlohmann::json::object());
  d.pass = integer_member<unsigned>(j.at("pass"), "pass");
  d.offset = integer_member<std::uint64_t>(j.at("offset"), "offset");
  d.phase = j.at("phase").get<std::string>();
  d.completed_passes = j.value("completed_passes", nlohmann::json::array());
  d.interruptions = j.value("interruptions", nlohmann::json::array());
  d.bytes_written = j.contains("bytes_written") ? integer_member<std::uint64_t>(j["bytes_written"], "bytes_written") : 0;
  d.updated_at = j.value("updated_at", "");
  d.pid = j.contains("pid") ? integer_member<long>(j["pid"], "pid") : 0L;
  return d;
}

fs::path Journal::default_dir() { return dlc_home() / "journal"; }

fs::path Journal::path_for(const fs::path& dir, const std::string& stable_id) {
  auto h = crypto::sha256(stable_id);
  return dir / ("wipe-" + crypto::to_hex(crypto::ByteView(h.data(), 8)) + ".json");
}

std::optional<Journal> Journal::load(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path);
  if (!in) throw_errno("cannot read wipe journal", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return Journal(path, JournalData::from_json(nlohmann::json::parse(ss.str())));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(Errc::io, "cannot parse wipe journal", path.string(), e.what(),
                "remove it to start over (the wipe then restarts from the beginning)");
  }
}

Journal::Journal(fs::path path, JournalData data) : path_(std::move(path)), data_(std::move(data)) {}

void Journal::save() {
  data_.updated_at = now_rfc3339(3);
  data_.pid = static_cast<long>(::getpid());
  write_file_atomic(path_, data_.to_json().dump(2) + "\n", 0600, ParentDir::create);
}

void Journal::checkpoint(unsigned pass, std::uint64_t offset, const std::string& phase) {
  data_.pass = pass;
  data_.offset = offset;
  data_.phase = phase;
  save();
}

void Journal::remove() {
  std::error_code ec;
  fs::remove(path_, ec);
  if (ec) throw Error(Errc::io, "cannot remove wipe journal", path_.string(), ec.message());
  fsync_dir(path_.parent_path());
}

}  // namespace dlc::wipe
