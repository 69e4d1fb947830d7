#include "migrate/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <sstream>

#include "core/audit_log.h"
#include "core/error.h"
#include "verify/verify.h"

namespace dlc::migrate {

using nlohmann::json;

Journal::Journal(const std::filesystem::path& dir, const json& header, bool restart) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(Errc::io, "cannot create the migration state directory", dir.string(), ec.message(),
                      "set DLC_HOME to a writable directory");
  path_ = dir / "journal.jsonl";
  if (restart) std::filesystem::remove(path_, ec);
  bool have_header = false;
  if (std::filesystem::exists(path_, ec)) {
    std::istringstream in(verify::read_text_file(path_));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception&) {
        continue;  // a line cut short by a crash
      }
      const std::string t = j.value("t", std::string());
      if (t == "header") {
        if (j.value("pair", json()) != header)
          throw Error(Errc::refused, "the resume journal belongs to another migration", path_.string(),
                      "it was written for a different source, destination or hash",
                      "pass --restart to start this migration afresh");
        have_header = true;
      } else if (t == "c" || t == "v") {
        JournalRecord r;
        r.hash = j.value("h", std::string());
        r.size = j.value("s", std::uint64_t{0});
        r.ino = j.value("i", std::uint64_t{0});
        r.mtime_ns = j.value("m", std::int64_t{0});
        r.ctime_ns = j.value("ct", std::int64_t{0});
        r.verified = t == "v";
        files_[verify::get_bytes(j, "p")] = r;
      } else if (t == "x") {
        files_.erase(verify::get_bytes(j, "p"));
      }
    }
  }
  resumed_ = !files_.empty();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw_errno("cannot open the resume journal", path_.string());
  if (!have_header) append(audit::canonical_json({{"t", "header"}, {"pair", header}}) + "\n");
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t Journal::verified_count() const {
  std::size_t n = 0;
  for (const auto& [p, r] : files_) n += r.verified;
  return n;
}

void Journal::append(const std::string& lines) {
  std::size_t done = 0;
  while (done < lines.size()) {
    const ssize_t w = ::write(fd_, lines.data() + done, lines.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write the resume journal", path_.string());
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fdatasync(fd_) != 0) throw_errno("cannot sync the resume journal", path_.string());
}

void Journal::record(const std::vector<std::pair<std::string, JournalRecord>>& recs) {
  if (recs.empty()) return;
  std::string lines;
  for (const auto& [p, r] : recs) {
    json j = {{"t", r.verified ? "v" : "c"}, {"h", r.hash}, {"s", r.size}, {"i", r.ino},
              {"m", r.mtime_ns}, {"ct", r.ctime_ns}};
    verify::put_bytes(j, "p", p);
    lines += audit::canonical_json(j) + "\n";
  }
  std::lock_guard<std::mutex> lk(mu_);
  append(lines);
  for (const auto& [p, r] : recs) files_[p] = r;
}

void Journal::forget(const std::vector<std::string>& paths) {
  if (paths.empty()) return;
  std::string lines;
  for (const auto& p : paths) {
    json j = {{"t", "x"}};
    verify::put_bytes(j, "p", p);
    lines += audit::canonical_json(j) + "\n";
  }
  std::lock_guard<std::mutex> lk(mu_);
  append(lines);
  for (const auto& p : paths) files_.erase(p);
}

void Journal::note(const json& event) {
  json j = event;
  j["t"] = "note";
  std::lock_guard<std::mutex> lk(mu_);
  append(audit::canonical_json(j) + "\n");
}

}  // namespace dlc::migrate
