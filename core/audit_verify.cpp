// Reading and verifying an audit log (format: docs/formats/audit-log.md).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <regex>

#include "core/audit_internal.h"
#include "core/audit_log.h"
#include "core/error.h"

namespace dlc::audit {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using detail::is_lower_hex;
using detail::kZeroHash;

constexpr std::size_t kMaxWarnings = 100;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int open_log(const fs::path& log) {
  const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw_errno("cannot read audit log", log.string(), errno,
                "check the path (default: $DLC_HOME/audit.jsonl) and that you may read it");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(Errc::io, "cannot read audit log", log.string(), "not a regular file",
                "pass the path of an audit log file");
  }
  return fd;
}

// Lines of a file, each with whether it ended in '\n'. Streams; never holds
// more than a block plus one line.
class LineReader {
 public:
  LineReader(int fd, const fs::path& path, std::uint64_t limit)
      : fd_(fd), path_(path), left_(limit) {}

  bool next(std::string& line, bool& terminated) {
    for (;;) {
      const auto nl = buf_.find('\n', scan_);
      if (nl != std::string::npos) {
        line.assign(buf_, pos_, nl - pos_);
        pos_ = scan_ = nl + 1;
        terminated = true;
        return true;
      }
      if (eof_) {
        if (pos_ >= buf_.size()) return false;
        line.assign(buf_, pos_);
        pos_ = scan_ = buf_.size();
        terminated = false;
        return true;
      }
      buf_.erase(0, pos_);
      scan_ = buf_.size();
      pos_ = 0;
      char block[65536];
      ssize_t n = 0;
      if (left_ > 0) {
        do
          n = ::read(fd_, block,
                     static_cast<std::size_t>(std::min<std::uint64_t>(sizeof block, left_)));
        while (n < 0 && errno == EINTR);
      }
      if (n < 0) throw_errno("cannot read audit log", path_.string());
      if (n == 0) eof_ = true;
      left_ -= static_cast<std::uint64_t>(n > 0 ? n : 0);
      buf_.append(block, static_cast<std::size_t>(n > 0 ? n : 0));
    }
  }

 private:
  int fd_;
  const fs::path& path_;
  std::string buf_;
  std::size_t pos_ = 0;   // start of the next line in buf_
  std::size_t scan_ = 0;  // where to look for '\n' next
  std::uint64_t left_;    // bytes still to read
  bool eof_ = false;
};

// The log's size at a moment when no writer is in the middle of a write
// (writers append under LOCK_EX), so that reading up to it never sees a line a
// live writer has half written. `also` runs under the same lock (the head file
// is replaced under the writers' lock too). Best effort where flock is not
// supported (the size is then taken unlocked).
std::uint64_t quiescent_size(int fd, const fs::path& path, const std::function<void()>& also = {}) {
  int rc;
  do rc = ::flock(fd, LOCK_SH);
  while (rc != 0 && errno == EINTR);
  struct stat st {};
  const int stat_rc = ::fstat(fd, &st);
  const int stat_err = errno;
  try {
    if (also) also();
  } catch (...) {
    if (rc == 0) ::flock(fd, LOCK_UN);
    throw;
  }
  if (rc == 0) ::flock(fd, LOCK_UN);
  if (stat_rc != 0) throw_errno("cannot read audit log", path.string(), stat_err);
  return static_cast<std::uint64_t>(st.st_size);
}

// "2026-11-25T12:43:10.123456789Z" → (seconds since the epoch, nanoseconds).
std::optional<std::pair<std::int64_t, long>> parse_time(const std::string& t) {
  static const std::regex format(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$)");
  if (!std::regex_match(t, format)) return std::nullopt;
  std::tm tm{};
  int year, mon, day, hour, min, sec;
  long ns;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%9ldZ", &year, &mon, &day, &hour, &min, &sec,
                  &ns) != 7)
    return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return std::make_pair(static_cast<std::int64_t>(::timegm(&tm)), ns);
}

std::string short_hash(const std::string& h) { return h.substr(0, 16) + "…"; }

bool is_uint(const json& r, const char* k) {
  auto it = r.find(k);
  return it != r.end() && it->is_number_unsigned();
}
bool is_str(const json& r, const char* k) {
  auto it = r.find(k);
  return it != r.end() && it->is_string();
}
bool is_hex(const json& r, const char* k, std::size_t len) {
  return is_str(r, k) && is_lower_hex(r.at(k).get_ref<const std::string&>(), len);
}

// The first field of a record that is missing or of the wrong type, or "".
std::string malformed_field(const json& r, bool checkpoint) {
  for (const char* k : {"time", "host", "user"})
    if (!is_str(r, k)) return k;
  for (const char* k : {"uid", "pid"})
    if (!is_uint(r, k)) return k;
  if (r.contains("sudo_user") && !is_str(r, "sudo_user")) return "sudo_user";
  if (!is_hex(r, "prev", 64)) return "prev";
  if (!is_hex(r, "hash", 64)) return "hash";
  if (checkpoint) {
    if (!is_uint(r, "head_seq")) return "head_seq";
    if (!is_hex(r, "head_hash", 64)) return "head_hash";
    if (!r.contains("key") || !r.at("key").is_object()) return "key";
    if (!is_hex(r, "sig", 128)) return "sig";
    return "";
  }
  for (const char* k : {"command", "target", "outcome"})
    if (!is_str(r, k)) return k;
  if (!r.contains("args") || !r.at("args").is_array()) return "args";
  for (const auto& a : r.at("args"))
    if (!a.is_string()) return "args";
  if (!r.contains("details") || !r.at("details").is_object()) return "details";
  return "";
}

bool is_recover(const json& r) {
  return r.value("type", "") == "event" && r.value("command", "") == detail::kRecoverCommand &&
         r.contains("details") && r.at("details").is_object();
}

struct NonRecord {  // a line that is not a record, waiting for a recovery note
  std::uint64_t line = 0;
  std::uint64_t bytes = 0;
  std::string sha256;
  bool terminated = true;
};

bool acknowledges(const json& recover, const std::vector<NonRecord>& lines) {
  const json& d = recover.at("details");
  auto it = d.find("incomplete");
  if (it == d.end() || !it->is_array() || it->size() != lines.size()) return false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const json& e = (*it)[i];
    if (!e.is_object() || e.value("sha256", "") != lines[i].sha256 || !e.contains("bytes") ||
        !e.at("bytes").is_number_unsigned() || e.at("bytes").get<std::uint64_t>() != lines[i].bytes)
      return false;
  }
  return true;
}

bool verify_sig(const crypto::Ed25519PublicKey& key, const json& obj, const std::string& message) {
  if (!is_hex(obj, "sig", 128)) return false;
  try {
    const auto sig = crypto::from_hex(obj.at("sig").get<std::string>());
    return key.verify(crypto::as_bytes(message), sig);
  } catch (const Error&) {
    return false;
  }
}

class Verifier {
 public:
  Verifier(const fs::path& log, const std::optional<crypto::Ed25519PublicKey>& pubkey)
      : log_(log), key_(pubkey) {
    if (key_) {
      key_hex_ = detail::key_json(*key_).at("public").get<std::string>();
      rep_.key_fingerprint = key_->fingerprint();
      rep_.pinned = true;
    }
  }

  VerifyReport run() {
    Fd fd(open_log(log_));
    const std::uint64_t size = quiescent_size(fd.get(), log_, [this] { load_head(); });
    LineReader reader(fd.get(), log_, size);
    std::string text;
    bool terminated = false;
    while (reader.next(text, terminated)) {
      ++line_;
      auto rec = detail::parse_record_shaped(text);
      if (!rec) {
        pending_.push_back({line_, text.size(), detail::sha256_hex(text), terminated});
        continue;
      }
      if (!terminated)
        return fail(line_, seq_of(*rec),
                    "truncated record: the last line has no newline (a write was cut short or the "
                    "log was cut)");
      if (!check_record(*rec)) return rep_;
    }
    if (!pending_.empty()) return fail_non_record(pending_.front());
    finish_warnings();
    if (!check_head()) return rep_;
    rep_.ok = true;
    return rep_;
  }

 private:
  static std::uint64_t seq_of(const json& r) { return r.at("seq").get<std::uint64_t>(); }

  VerifyReport& fail(std::optional<std::uint64_t> line, std::optional<std::uint64_t> seq,
                     std::string problem) {
    rep_.ok = false;
    rep_.first_bad_line = line;
    rep_.first_bad_seq = seq;
    rep_.problem = std::move(problem);
    return rep_;
  }

  VerifyReport& fail_non_record(const NonRecord& n) {
    if (!n.terminated)
      return fail(n.line, std::nullopt,
                  "truncated record: the last line has no newline and is not a whole record (a "
                  "write was cut short or the log was cut)");
    return fail(n.line, std::nullopt,
                n.bytes == 0 ? "empty line: not a dlc-audit/1 record"
                             : "unparsable line: not a dlc-audit/1 record (" +
                                   std::to_string(n.bytes) + " bytes)");
  }

  void warn(std::string w) {
    if (rep_.warnings.size() < kMaxWarnings) {
      rep_.warnings.push_back(std::move(w));
    } else {
      ++dropped_warnings_;
    }
  }

  std::string at(std::uint64_t line, std::uint64_t seq) const {
    return "line " + std::to_string(line) + " (seq " + std::to_string(seq) + ")";
  }

  // False after recording the first problem.
  bool check_record(const json& r) {
    const std::uint64_t seq = seq_of(r);
    const std::string& hash = r.at("hash").get_ref<const std::string&>();

    // Lines before this one that are not records must be acknowledged by it.
    if (!pending_.empty()) {
      if (!is_recover(r) || !acknowledges(r, pending_)) {
        fail_non_record(pending_.front());
        return false;
      }
      warn("lines " + std::to_string(pending_.front().line) + "-" +
           std::to_string(pending_.back().line) + ": " + std::to_string(pending_.size()) +
           " line(s) cut short by a crash, acknowledged by the recovery record at " +
           at(line_, seq));
      pending_.clear();
    } else if (is_recover(r) && r.at("details").contains("incomplete")) {
      fail(line_, seq,
           "the recovery record acknowledges cut-short lines that are not before it (lines were "
           "deleted)");
      return false;
    }

    if (r.at("v").get_ref<const std::string&>() != kFormat) {
      fail(line_, seq,
           "unknown format " + r.at("v").dump() + " (expected " + std::string(kFormat) + ")");
      return false;
    }
    const std::string& type = r.at("type").get_ref<const std::string&>();
    if (type != "event" && type != "checkpoint") {
      fail(line_, seq, "unknown record type " + r.at("type").dump());
      return false;
    }
    if (record_hash(r) != hash) {
      fail(line_, seq, "hash mismatch: the record was changed after it was written");
      return false;
    }
    const bool checkpoint = type == "checkpoint";
    if (const std::string field = malformed_field(r, checkpoint); !field.empty()) {
      fail(line_, seq, "malformed record: field '" + field + "' is missing or has the wrong type");
      return false;
    }

    // The chain.
    const std::string& prev = r.at("prev").get_ref<const std::string&>();
    if (last_line_ == 0) {
      if (seq != 1) {
        fail(line_, seq,
             "the log starts at seq " + std::to_string(seq) + ", not 1: the first " +
                 std::to_string(seq - 1) + " record(s) were removed");
        return false;
      }
      if (prev != kZeroHash) {
        fail(line_, seq,
             "prev of the first record is not 64 zeros: records before it were removed");
        return false;
      }
      first_hash_ = hash;
    } else if (seq <= last_seq_) {
      fail(line_, seq,
           "seq " + std::to_string(seq) + " repeats or goes back after " +
               at(last_line_, last_seq_) + ": a record was duplicated, inserted or moved");
      return false;
    } else if (seq != last_seq_ + 1) {
      fail(line_, seq,
           "seq gap: expected seq " + std::to_string(last_seq_ + 1) + " after " +
               at(last_line_, last_seq_) + ", found " + std::to_string(seq) + ": " +
               std::to_string(seq - last_seq_ - 1) + " record(s) deleted or moved");
      return false;
    } else if (prev != last_hash_) {
      fail(line_, seq,
           "prev does not match the hash of the previous record, " + at(last_line_, last_seq_) +
               ": that record was changed and re-hashed, or this one was inserted or replaced");
      return false;
    }

    // One system clock: a step back is reported, not failed (ordering is
    // proven by the chain, and NTP or an operator may step the clock).
    const std::string& time = r.at("time").get_ref<const std::string&>();
    const auto t = parse_time(time);
    if (!t) {
      fail(line_, seq,
           "malformed time \"" + time + "\" (expected RFC 3339 UTC with 9 fractional digits)");
      return false;
    }
    if (last_time_ && *t < *last_time_) {
      const double back = static_cast<double>(last_time_->first - t->first) +
                          static_cast<double>(last_time_->second - t->second) / 1e9;
      char amount[32];
      std::snprintf(amount, sizeof amount, "%.9f", back);
      warn(at(line_, seq) + ": time goes back by " + amount + " s (" + last_time_text_ + " -> " +
           time + "): the system clock was set back");
    }

    if (checkpoint) {
      if (!check_checkpoint(r, seq)) return false;
      ++rep_.checkpoints;
      unsealed_ = 0;
      last_checkpoint_seq_ = seq;
    } else {
      ++rep_.records;
      if (unsealed_++ == 0) first_unsealed_ = seq;
      if (is_recover(r)) note_recovery(r, seq);
    }

    if (head_ && seq == head_seq_) {
      head_line_ = line_;
      head_record_hash_ = hash;
      head_record_is_checkpoint_ = checkpoint;
    }
    last_seq_ = seq;
    last_hash_ = hash;
    last_line_ = line_;
    last_time_ = t;
    last_time_text_ = time;
    return true;
  }

  // Accepts k as the verifying key (the first one the log names when not
  // pinned) or explains why it is not.
  std::optional<std::string> key_problem(const crypto::Ed25519PublicKey& k, const char* whose) {
    const std::string hex = detail::key_json(k).at("public").get<std::string>();
    if (!key_) {
      key_ = k;
      key_hex_ = hex;
      rep_.key_fingerprint = k.fingerprint();
      return std::nullopt;
    }
    if (hex == key_hex_) return std::nullopt;
    if (rep_.pinned)
      return std::string(whose) + " signed by key " + k.fingerprint() + ", not the pinned key " +
             rep_.key_fingerprint;
    return std::string(whose) + " signed by key " + k.fingerprint() +
           ", but the log's checkpoints use key " + rep_.key_fingerprint + " (the key changed)";
  }

  bool check_checkpoint(const json& r, std::uint64_t seq) {
    if (r.at("head_seq").get<std::uint64_t>() != seq - 1 || r.at("head_hash") != r.at("prev")) {
      fail(line_, seq, "checkpoint does not seal the record before it (head_seq/head_hash)");
      return false;
    }
    const auto k = detail::key_from_json(r.at("key"));
    if (!k) {
      fail(line_, seq,
           "checkpoint key is malformed (its fingerprint does not belong to its public key)");
      return false;
    }
    if (auto problem = key_problem(*k, "checkpoint")) {
      fail(line_, seq, *problem);
      return false;
    }
    if (!verify_sig(*key_, r, detail::checkpoint_message(r))) {
      fail(line_, seq, "bad checkpoint signature: the checkpoint was forged or changed");
      return false;
    }
    return true;
  }

  void note_recovery(const json& r, std::uint64_t seq) {
    const json& d = r.at("details");
    auto u = d.find("unsealed");
    if (u == d.end() || !u->is_object()) return;
    warn(at(line_, seq) + ": recovery: a writer stopped without sealing " +
         u->value("records", json(0)).dump() + " record(s), seq " +
         u->value("first_seq", json(0)).dump() + "-" + u->value("last_seq", json(0)).dump() +
         "; they were unsigned until a later checkpoint");
  }

  void finish_warnings() {
    rep_.last_seq = last_seq_;
    if (unsealed_ > 0)
      warn(std::to_string(unsealed_) + " record(s) after the last checkpoint (seq " +
           std::to_string(first_unsealed_) + "-" + std::to_string(last_seq_) +
           ") are not signed yet: a writer is still running, or one stopped without sealing");
  }

  // ---- the head file ----

  void load_head() {
    try {
      head_ = read_head(log_);
    } catch (const Error& e) {
      head_error_ = e.what();
      return;
    }
    if (head_ && is_uint(*head_, "seq")) head_seq_ = head_->at("seq").get<std::uint64_t>();
  }

  bool check_head() {
    const std::string hp = head_path(log_).string();
    if (!head_error_.empty()) {
      fail(std::nullopt, std::nullopt, "head file unusable: " + head_error_);
      return false;
    }
    if (!head_) {
      if (rep_.checkpoints > 0)
        warn("no head file " + hp + ": records removed from the end of the log cannot be detected");
      return finish_key_warnings();
    }
    const json& h = *head_;
    if (!is_str(h, "v") || h.at("v") != std::string(kFormat) || !is_str(h, "type") ||
        h.at("type") != "head" || !is_uint(h, "seq") || !is_hex(h, "hash", 64) ||
        !is_hex(h, "log", 64) || !is_str(h, "time") || !h.contains("key")) {
      fail(std::nullopt, std::nullopt, "head file " + hp + " is malformed");
      return false;
    }
    const auto k = detail::key_from_json(h.at("key"));
    if (!k) {
      fail(std::nullopt, std::nullopt, "head file " + hp + " names a malformed key");
      return false;
    }
    if (auto problem = key_problem(*k, "head file")) {
      fail(std::nullopt, std::nullopt, *problem);
      return false;
    }
    if (!verify_sig(*key_, h, detail::head_message(h))) {
      fail(std::nullopt, std::nullopt,
           "head file " + hp + " has a bad signature: it was forged or changed");
      return false;
    }
    rep_.head_seq = head_seq_;
    if (last_line_ > 0 && h.at("log") != first_hash_) {
      fail(std::nullopt, std::nullopt,
           "head file " + hp + " belongs to a different log: it names first record " +
               short_hash(h.at("log").get<std::string>()) + ", this log's is " +
               short_hash(first_hash_));
      return false;
    }
    if (head_seq_ > last_seq_) {
      fail(line_ + 1, last_seq_ + 1,
           "truncated: log ends at seq " + std::to_string(last_seq_) + ", the signed head says " +
               std::to_string(head_seq_));
      return false;
    }
    if (!head_record_is_checkpoint_ || head_record_hash_ != h.at("hash")) {
      fail(head_line_, head_seq_,
           "head file does not match this log: the signed head says seq " +
               std::to_string(head_seq_) + " is checkpoint " +
               short_hash(h.at("hash").get<std::string>()) + ", the log has " +
               (head_record_is_checkpoint_ ? "checkpoint " : "record ") +
               short_hash(head_record_hash_) + " (the log was rewritten from there)");
      return false;
    }
    if (head_seq_ < last_checkpoint_seq_)
      warn("head file seals seq " + std::to_string(head_seq_) + " but the last checkpoint is seq " +
           std::to_string(last_checkpoint_seq_) +
           ": a writer stopped before updating it, or an older head file was put back");
    return finish_key_warnings();
  }

  bool finish_key_warnings() {
    if (key_ && !rep_.pinned)
      warn("unpinned: signatures were checked against the key the log names (" +
           rep_.key_fingerprint + "); pass --pubkey with the host's public key to pin it");
    if (dropped_warnings_ > 0)
      rep_.warnings.push_back("... and " + std::to_string(dropped_warnings_) + " more warning(s)");
    return true;
  }

  const fs::path& log_;
  VerifyReport rep_;
  std::optional<crypto::Ed25519PublicKey> key_;
  std::string key_hex_;
  std::optional<json> head_;
  std::string head_error_;
  std::uint64_t head_seq_ = 0;
  std::uint64_t head_line_ = 0;
  std::string head_record_hash_;
  bool head_record_is_checkpoint_ = false;

  std::uint64_t line_ = 0;
  std::uint64_t last_line_ = 0;  // line of the last record (0: none yet)
  std::uint64_t last_seq_ = 0;
  std::string last_hash_{kZeroHash};
  std::optional<std::pair<std::int64_t, long>> last_time_;
  std::string last_time_text_;
  std::string first_hash_;
  std::uint64_t unsealed_ = 0;
  std::uint64_t first_unsealed_ = 0;
  std::uint64_t last_checkpoint_seq_ = 0;
  std::vector<NonRecord> pending_;
  std::size_t dropped_warnings_ = 0;
};

}  // namespace

VerifyReport verify(const fs::path& log, const std::optional<crypto::Ed25519PublicKey>& pubkey) {
  return Verifier(log, pubkey).run();
}

json to_json(const VerifyReport& r) {
  json j = json::object();
  j["ok"] = r.ok;
  j["records"] = r.records;
  j["checkpoints"] = r.checkpoints;
  j["last_seq"] = r.last_seq;
  j["first_bad_line"] = r.first_bad_line ? json(*r.first_bad_line) : json(nullptr);
  j["first_bad_seq"] = r.first_bad_seq ? json(*r.first_bad_seq) : json(nullptr);
  j["problem"] = r.problem;
  j["warnings"] = r.warnings;
  j["key_fingerprint"] = r.key_fingerprint;
  j["pinned"] = r.pinned;
  j["head_seq"] = r.head_seq ? json(*r.head_seq) : json(nullptr);
  return j;
}

std::vector<LogLine> read_log(const fs::path& log, std::optional<std::size_t> last) {
  Fd fd(open_log(log));
  LineReader reader(fd.get(), log, quiescent_size(fd.get(), log));
  std::deque<LogLine> lines;
  std::string text;
  bool terminated = false;
  std::uint64_t n = 0;
  while (reader.next(text, terminated)) {
    LogLine l;
    l.line = ++n;
    l.record = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (l.record.is_discarded()) {
      l.record = nullptr;
      l.error = text.empty() ? "empty line" : "not JSON";
    }
    if (!terminated)
      l.error = l.error.empty() ? "no newline (cut short?)" : l.error + ", no newline";
    lines.push_back(std::move(l));
    if (last && lines.size() > *last) lines.pop_front();
  }
  return {std::make_move_iterator(lines.begin()), std::make_move_iterator(lines.end())};
}

std::optional<json> read_head(const fs::path& log) {
  const fs::path path = head_path(log);
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot read audit head file", path.string());
  }
  Fd fd(raw);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read audit head file", path.string());
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (1u << 20)) break;
  }
  json h = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object())
    throw Error(Errc::check_failed, "audit head file is damaged", path.string(),
                "not a JSON object",
                "it is rewritten at the next checkpoint; compare with the copy anchored elsewhere");
  return h;
}

bool head_signature_valid(const json& head) noexcept {
  try {
    if (!head.is_object() || !head.contains("key")) return false;
    const auto k = detail::key_from_json(head.at("key"));
    return k && verify_sig(*k, head, detail::head_message(head));
  } catch (...) {
    return false;
  }
}

}  // namespace dlc::audit
