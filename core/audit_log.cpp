// The audit log writer and the host key (format: docs/formats/audit-log.md).
//
// Writers protocol, in short:
//  - every append takes flock(LOCK_EX) on the log, reads the last record from
//    the end of the file (never the whole file), appends its line(s) with one
//    write() and fsyncs, then unlocks;
//  - a writer holds flock(LOCK_SH) on <log>.writers for its whole life, so a
//    new writer can tell a crashed writer's unsealed records (nobody holds the
//    lock) from a live writer's (somebody does);
//  - lines that are not records (cut short by a crash) are never truncated:
//    the next writer terminates them and acknowledges them in an
//    "audit recover" record, which also notes records left unsealed.
#include "core/audit_log.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>

#include "core/audit_internal.h"
#include "core/fs.h"
#include "core/error.h"
#include "core/runtime.h"

namespace dlc::audit {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- shared helpers ------------------------------------------------------------

namespace detail {

std::optional<json> parse_record_shaped(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto is_string = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string();
  };
  auto seq = j.find("seq");
  if (!is_string("v") || !is_string("type") || !is_string("hash") || seq == j.end() ||
      !seq->is_number_unsigned())
    return std::nullopt;
  return j;
}

bool is_lower_hex(std::string_view s, std::size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

static std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string sha256_hex(std::string_view data) {
  return lower(crypto::to_hex(crypto::sha256(data)));
}

json key_json(const crypto::Ed25519PublicKey& key) {
  const auto raw = key.raw();
  return json{{"fingerprint", lower(key.fingerprint())}, {"public", lower(crypto::to_hex(raw))}};
}

std::optional<crypto::Ed25519PublicKey> key_from_json(const json& key) {
  if (!key.is_object()) return std::nullopt;
  auto pub = key.find("public");
  auto fp = key.find("fingerprint");
  if (pub == key.end() || fp == key.end() || !pub->is_string() || !fp->is_string())
    return std::nullopt;
  const std::string& hex = pub->get_ref<const std::string&>();
  if (!is_lower_hex(hex, 64)) return std::nullopt;
  try {
    auto k = crypto::Ed25519PublicKey::from_raw(crypto::from_hex(hex));
    if (lower(k.fingerprint()) != fp->get_ref<const std::string&>()) return std::nullopt;
    return k;
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::string checkpoint_message(const json& checkpoint) {
  json m = checkpoint;
  m.erase("hash");
  m.erase("sig");
  return canonical_json(m);
}

std::string head_message(const json& head) {
  json m = head;
  m.erase("sig");
  return canonical_json(m);
}

}  // namespace detail

std::string canonical_json(const json& value) {
  try {
    // nlohmann's defaults are the canonical form: objects are std::map (keys in
    // byte order = code point order), no whitespace, no ASCII escaping.
    return value.dump();
  } catch (const json::exception& e) {
    throw Error(Errc::io, "cannot serialize an audit record", {}, e.what());
  }
}

std::string record_hash(const json& record) {
  json r = record;
  r.erase("hash");
  return detail::sha256_hex(canonical_json(r));
}

fs::path head_path(const fs::path& log) {
  fs::path h = log;
  h += ".head";
  return h;
}

namespace {

using detail::kZeroHash;

// ---- UTF-8 and JSON normalization ---------------------------------------------

// Strings cleaned; non-integer numbers become strings (their float formatting
// is not reproducible across languages, integers are).
json normalized(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return printable_utf8(v.get_ref<const std::string&>());
    case json::value_t::object: {
      json out = json::object();
      for (const auto& [k, x] : v.items()) out[printable_utf8(k)] = normalized(x);
      return out;
    }
    case json::value_t::array: {
      json out = json::array();
      for (const auto& x : v) out.push_back(normalized(x));
      return out;
    }
    case json::value_t::number_float:
    case json::value_t::binary:
      return v.dump();
    default:
      return v;
  }
}

// ---- who is writing --------------------------------------------------------------

struct Identity {
  std::string host;
  std::string user;
  std::uint64_t uid = 0;
  std::optional<std::string> sudo_user;
};

Identity current_identity() {
  Identity id;
  id.host = printable_utf8(host_name());
  const uid_t uid = ::getuid();
  id.uid = uid;
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    id.user = printable_utf8(found->pw_name);
  else
    id.user = std::to_string(uid);  // no passwd entry (containers): the uid is the name
  if (const char* s = std::getenv("SUDO_USER"); s != nullptr && *s != '\0')
    id.sudo_user = printable_utf8(s);
  return id;
}

// ---- file plumbing -----------------------------------------------------------------

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_;
};

class Flock {
 public:
  Flock(int fd, const fs::path& path) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw_errno("cannot lock audit log", path.string());
    }
  }
  ~Flock() { ::flock(fd_, LOCK_UN); }
  Flock(const Flock&) = delete;
  Flock& operator=(const Flock&) = delete;

 private:
  int fd_;
};

void write_all(int fd, std::string_view data, const char* what, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what, path.string());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string pread_string(int fd, off_t offset, std::size_t len, const fs::path& path) {
  std::string out(len, '\0');
  std::size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pread(fd, out.data() + done, len - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read audit log", path.string());
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

// Offset of the last '\n' strictly before `end`, or -1. Reads backwards in chunks.
off_t last_newline_before(int fd, off_t end, const fs::path& path) {
  constexpr off_t kChunk = 4096;
  while (end > 0) {
    const off_t start = std::max<off_t>(0, end - kChunk);
    const std::string chunk = pread_string(fd, start, static_cast<std::size_t>(end - start), path);
    const auto pos = chunk.rfind('\n');
    if (pos != std::string::npos) return start + static_cast<off_t>(pos);
    end = start;
  }
  return -1;
}

fs::path parent_of(const fs::path& p) {
  fs::path d = p.parent_path();
  return d.empty() ? fs::path(".") : d;
}

std::string read_small_file(int fd, const fs::path& path, const char* what, std::size_t limit) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what, path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) break;
  }
  return out;
}

// ---- the end of the log --------------------------------------------------------------

constexpr std::size_t kMaxLine = 16u << 20;  // a longer line is damage, not a record
constexpr std::size_t kMaxIncomplete = 64;   // non-record lines a writer acknowledges

struct Incomplete {
  std::uint64_t bytes = 0;
  std::string sha256;
};

struct Tail {
  off_t size = 0;
  std::optional<json> last;            // the last record: the chain continues from it
  off_t last_start = 0;                // where that record's line starts
  bool needs_newline = false;          // the file does not end with '\n'
  std::vector<Incomplete> incomplete;  // non-record lines after `last`, in file order
};

[[noreturn]] void throw_damaged(const fs::path& path, const std::string& detail) {
  throw Error(Errc::check_failed, "audit log is damaged", path.string(), detail,
              "run 'dlc audit verify " + path.string() +
                  "'; keep the damaged log as evidence and move it aside to start a new one");
}

Tail read_tail(int fd, const fs::path& path) {
  Tail t;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("cannot read audit log", path.string());
  t.size = st.st_size;
  if (t.size == 0) return t;
  std::deque<Incomplete> incomplete;
  // `nl` is the offset of the '\n' that ends the line being looked at.
  off_t nl = t.size - 1;
  if (pread_string(fd, t.size - 1, 1, path) != "\n") {
    t.needs_newline = true;
    nl = t.size;  // the unterminated fragment ends at EOF
  }
  while (nl >= 0) {
    const off_t start = last_newline_before(fd, nl, path) + 1;
    const auto len = static_cast<std::size_t>(nl - start);
    if (len > kMaxLine) throw_damaged(path, "a line of " + std::to_string(len) + " bytes");
    const std::string text = pread_string(fd, start, len, path);
    if (auto r = detail::parse_record_shaped(text)) {
      if (r->at("v").get<std::string>() != kFormat)
        throw Error(
            Errc::check_failed, "audit log has an unsupported format", path.string(),
            "its last record is " + r->at("v").dump() + ", this dlc writes " + std::string(kFormat),
            "pass --audit-log PATH to write a new log");
      t.last = std::move(r);
      t.last_start = start;
      break;
    }
    incomplete.push_front({len, detail::sha256_hex(text)});
    if (incomplete.size() > kMaxIncomplete)
      throw_damaged(path, "more than " + std::to_string(kMaxIncomplete) +
                              " lines at its end are not records");
    nl = start - 1;
  }
  t.incomplete.assign(incomplete.begin(), incomplete.end());
  return t;
}

struct Unsealed {
  std::uint64_t records = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
};

// Event records after the last checkpoint, counted backwards from the tail.
Unsealed count_unsealed(int fd, const Tail& t, const fs::path& path) {
  Unsealed u;
  if (!t.last || t.last->at("type") == "checkpoint") return u;
  u.records = 1;
  u.first_seq = u.last_seq = t.last->at("seq").get<std::uint64_t>();
  off_t nl = t.last_start - 1;
  while (nl >= 0) {
    const off_t start = last_newline_before(fd, nl, path) + 1;
    const auto len = static_cast<std::size_t>(nl - start);
    nl = start - 1;
    if (len > kMaxLine) continue;
    auto r = detail::parse_record_shaped(pread_string(fd, start, len, path));
    if (!r) continue;
    if (r->at("type") == "checkpoint") break;
    ++u.records;
    u.first_seq = r->at("seq").get<std::uint64_t>();
  }
  return u;
}

// The hash of the first record of the file: the log's identity in its head.
std::string first_record_hash(int fd, const fs::path& path) {
  off_t offset = 0;
  std::string pending;
  for (std::size_t lines = 0; lines <= kMaxIncomplete;) {
    std::string chunk = pread_string(fd, offset, 65536, path);
    if (chunk.empty()) break;
    offset += static_cast<off_t>(chunk.size());
    pending += chunk;
    std::size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      if (auto r = detail::parse_record_shaped(std::string_view(pending).substr(0, pos)))
        return r->at("hash").get<std::string>();
      pending.erase(0, pos + 1);
      ++lines;
    }
    if (pending.size() > kMaxLine) break;
  }
  throw_damaged(path, "no record near its start");
}

struct Chain {
  std::uint64_t seq = 0;
  std::string hash{kZeroHash};
};

}  // namespace

// ---- AuditLog ----------------------------------------------------------------------

struct AuditLog::State {
  const fs::path& path;
  const HostKey& key;
  UniqueFd log;
  UniqueFd writers;
  std::mutex mutex;  // flock does not exclude threads sharing one descriptor
  std::uint64_t unsealed = 0;
  Identity id = current_identity();
  std::string first_hash;

  State(const fs::path& p, const HostKey& k) : path(p), key(k) {}

  json base(const char* type) const {
    json r = json::object();
    r["v"] = std::string(kFormat);
    r["type"] = type;
    r["host"] = id.host;
    r["user"] = id.user;
    r["uid"] = id.uid;
    if (id.sudo_user) r["sudo_user"] = *id.sudo_user;
    r["pid"] = static_cast<std::uint64_t>(::getpid());
    return r;
  }

  json event_record(const Event& e) const {
    json r = base("event");
    r["command"] = e.command;
    r["args"] = mask_arguments(e.args);
    r["target"] = e.target;
    r["outcome"] = e.outcome;
    r["details"] = e.details.is_object() ? e.details : json{{"value", e.details}};
    return normalized(r);
  }

  // Sets seq, prev, time (and for a checkpoint head_seq, head_hash, key, sig),
  // then hash; returns the record's line.
  std::string seal(json& r, Chain& c) const {
    r["seq"] = c.seq + 1;
    r["prev"] = c.hash;
    r["time"] = now_rfc3339();
    if (r["type"] == "checkpoint") {
      r["head_seq"] = c.seq;
      r["head_hash"] = c.hash;
      r["key"] = detail::key_json(key.public_key());
      const auto sig = key.private_key().sign(crypto::as_bytes(detail::checkpoint_message(r)));
      r["sig"] = detail::lower(crypto::to_hex(sig));
    }
    r["hash"] = record_hash(r);
    c = {r["seq"].get<std::uint64_t>(), r["hash"].get<std::string>()};
    return canonical_json(r) + "\n";
  }

  // Starts the bytes to append: terminates a cut-short last line and, when
  // there are non-record lines or unsealed records to account for, a recovery
  // record. Returns the number of records it added (0 or 1).
  std::uint64_t begin(const Tail& t, const Unsealed& u, std::string& out, Chain& c) const {
    if (t.needs_newline) out += "\n";
    if (t.last) c = {t.last->at("seq").get<std::uint64_t>(), t.last->at("hash").get<std::string>()};
    if (t.incomplete.empty() && u.records == 0) return 0;
    json details = json::object();
    std::string reason;
    if (u.records > 0) {
      details["unsealed"] = {
          {"records", u.records}, {"first_seq", u.first_seq}, {"last_seq", u.last_seq}};
      reason = "a writer stopped without sealing its records";
    }
    if (!t.incomplete.empty()) {
      json lines = json::array();
      for (const auto& i : t.incomplete)
        lines.push_back({{"bytes", i.bytes}, {"sha256", i.sha256}});
      details["incomplete"] = std::move(lines);
      reason +=
          std::string(reason.empty() ? "" : "; ") + "lines cut short by a crash are not records";
    }
    details["reason"] = reason;
    json r = base("event");
    r["command"] = std::string(detail::kRecoverCommand);
    r["args"] = json::array();
    r["target"] = printable_utf8(path.string());
    r["outcome"] = "recovered";
    r["details"] = std::move(details);
    out += seal(r, c);
    notice(NoticeLevel::warning, "audit log " + path.string() + ": " + reason + " (noted at seq " +
                                     std::to_string(c.seq) + ")");
    return 1;
  }

  // Appends out with one write() and fsyncs. On a failed or short write the
  // partial bytes (ours; the lock is held) are cut off again.
  void commit(const std::string& out, off_t size_before) const {
    const int fd = log.get();
    std::string_view rest = out;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : ENOSPC;
        if (::ftruncate(fd, size_before) != 0)
          notice(NoticeLevel::warning,
                 "audit log " + path.string() + ": could not remove a partly written record");
        throw_errno("cannot write audit log", path.string(), err,
                    "free space on its file system or pass --audit-log PATH");
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd) != 0) throw_errno("cannot sync audit log", path.string());
  }

  void write_head(const json& checkpoint) {
    if (first_hash.empty()) first_hash = first_record_hash(log.get(), path);
    json h = json::object();
    h["v"] = std::string(kFormat);
    h["type"] = "head";
    h["log"] = first_hash;
    h["seq"] = checkpoint.at("seq");
    h["hash"] = checkpoint.at("hash");
    h["time"] = checkpoint.at("time");
    h["host"] = checkpoint.at("host");
    h["key"] = detail::key_json(key.public_key());
    const auto sig = key.private_key().sign(crypto::as_bytes(detail::head_message(h)));
    h["sig"] = detail::lower(crypto::to_hex(sig));
    write_file_atomic(head_path(path), canonical_json(h) + "\n", 0644);
  }
};

AuditLog::AuditLog(fs::path path, HostKey key)
    : path_(std::move(path)), key_(std::move(key)), state_(std::make_unique<State>(path_, key_)) {
  State& s = *state_;
  const std::string hint =
      "run as root, or pass --audit-log PATH or set DLC_HOME to a writable directory";
  bool created = true;
  s.log = UniqueFd(::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!s.log && errno == EEXIST) {
    created = false;
    s.log = UniqueFd(::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  }
  if (!s.log) throw_errno("cannot open audit log", path_.string(), errno, hint);
  struct stat st {};
  if (::fstat(s.log.get(), &st) != 0) throw_errno("cannot open audit log", path_.string());
  if (!S_ISREG(st.st_mode))
    throw Error(Errc::io, "cannot open audit log", path_.string(), "not a regular file", hint);
  if (created) fsync_dir(parent_of(path_));

  fs::path writers = path_;
  writers += ".writers";
  s.writers = UniqueFd(::open(writers.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!s.writers) throw_errno("cannot open audit log lock file", writers.string(), errno, hint);

  // Under the log lock, so that no other writer probes while we convert our
  // probe (LOCK_EX) into the shared "alive" lock.
  Flock lock(s.log.get(), path_);
  if (::flock(s.writers.get(), LOCK_EX | LOCK_NB) == 0) {
    // Nobody else is writing: an unsealed end was left by a writer that died.
    const Tail t = read_tail(s.log.get(), path_);
    const Unsealed u = count_unsealed(s.log.get(), t, path_);
    std::string out;
    Chain c;
    s.unsealed += s.begin(t, u, out, c);
    if (!out.empty()) s.commit(out, t.size);
  } else if (errno != EWOULDBLOCK) {
    throw_errno("cannot lock audit log lock file", writers.string());
  }
  while (::flock(s.writers.get(), LOCK_SH) != 0) {
    if (errno != EINTR) throw_errno("cannot lock audit log lock file", writers.string());
  }
}

AuditLog::~AuditLog() {
  if (!state_ || state_->unsealed == 0) return;
  try {
    checkpoint();
  } catch (const std::exception& e) {
    notice(NoticeLevel::warning, std::string("could not seal the audit log: ") + e.what());
  }
}

Appended AuditLog::append(const Event& event) {
  State& s = *state_;
  Appended result;
  {
    std::lock_guard guard(s.mutex);
    json record = s.event_record(event);
    Flock lock(s.log.get(), path_);
    const Tail t = read_tail(s.log.get(), path_);
    std::string out;
    Chain c;
    s.unsealed += s.begin(t, Unsealed{}, out, c);
    out += s.seal(record, c);
    ++s.unsealed;  // before commit: a written record whose fsync failed is still sealed later
    s.commit(out, t.size);
    result = {c.seq, c.hash};
    if (s.unsealed < kSealEvery) return result;
  }
  // The record is written: failing to seal it now must not make the caller
  // think the operation was not recorded. The next checkpoint seals it.
  try {
    checkpoint();
  } catch (const Error& e) {
    notice(NoticeLevel::warning, std::string("could not seal the audit log: ") + e.what());
  }
  return result;
}

void AuditLog::checkpoint() {
  State& s = *state_;
  std::lock_guard guard(s.mutex);
  Flock lock(s.log.get(), path_);
  const Tail t = read_tail(s.log.get(), path_);
  std::string out;
  Chain c;
  s.begin(t, Unsealed{}, out, c);
  const bool sealed = t.last && t.incomplete.empty() && t.last->at("type") == "checkpoint";
  if (c.seq == 0 || sealed) {  // an empty log, or nothing new since the last checkpoint
    if (!out.empty()) s.commit(out, t.size);
    s.unsealed = 0;
    return;
  }
  json cp = s.base("checkpoint");
  out += s.seal(cp, c);
  s.commit(out, t.size);
  s.unsealed = 0;
  s.write_head(cp);
}

// ---- HostKey -------------------------------------------------------------------------

namespace {

const char* const kKeyHint =
    "restore host-key.pem from a backup; to start over, move the key and the audit log aside "
    "(a new key starts a new log)";

void ensure_public_file(const fs::path& dir, const HostKey& key) {
  const fs::path pub = dir / "host-key.pub";
  const std::string want = key.public_key().to_pem();
  UniqueFd fd(::open(pub.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd && read_small_file(fd.get(), pub, "cannot read host public key", 65536) == want) return;
  try {
    write_file_atomic(pub, want, 0644);
  } catch (const Error& e) {
    notice(NoticeLevel::warning, e.what());
  }
}

}  // namespace

HostKey::HostKey(crypto::Ed25519PrivateKey priv, fs::path path)
    : priv_(std::move(priv)), pub_(priv_.public_key()), path_(std::move(path)) {}

HostKey HostKey::load(const fs::path& private_pem) {
  UniqueFd fd(::open(private_pem.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    throw_errno(
        "cannot read host key", private_pem.string(), errno,
        "set DLC_HOME to the directory that holds host-key.pem, or restore it from a backup");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot read host key", private_pem.string());
  if (!S_ISREG(st.st_mode))
    throw Error(Errc::auth, "unusable key file", private_pem.string(), "not a regular file",
                kKeyHint);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(Errc::auth, "unusable key file", private_pem.string(),
                std::string("other users may read it (mode ") + mode + ")",
                "chmod 600 " + private_pem.string() +
                    ", and consider the key exposed: start a new key and log");
  }
  constexpr std::size_t kLimit = 65536;
  if (static_cast<std::uint64_t>(st.st_size) > kLimit)
    throw Error(Errc::auth, "unusable key file", private_pem.string(), "too large to be a key",
                kKeyHint);
  SecureBuffer pem(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < pem.size()) {
    const ssize_t n = ::read(fd.get(), pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read host key", private_pem.string());
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  try {
    auto priv = crypto::Ed25519PrivateKey::from_pem(
        std::string_view(reinterpret_cast<const char*>(pem.data()), done));
    return HostKey(std::move(priv), private_pem);
  } catch (const Error& e) {
    if (e.code() != Errc::auth && e.code() != Errc::usage) throw;
    throw Error(Errc::auth, "unusable key file", private_pem.string(),
                "not an Ed25519 private key in PKCS#8 PEM", kKeyHint);
  }
}

HostKey HostKey::load_or_create(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error(Errc::io, "cannot create the dlc state directory", dir.string(), ec.message(),
                "run as root, or set DLC_HOME to a writable directory");
  const fs::path pem = dir / "host-key.pem";
  for (int attempt = 0; attempt < 3; ++attempt) {
    struct stat st {};
    if (::lstat(pem.c_str(), &st) == 0) {
      HostKey key = load(pem);
      ensure_public_file(dir, key);
      return key;
    }
    if (errno != ENOENT) throw_errno("cannot read host key", pem.string());

    // Create beside it, then link(): atomic and never replaces, so of two
    // first users one wins and the other loads the winner's complete file.
    auto priv = crypto::Ed25519PrivateKey::generate();
    const SecureBuffer text = priv.to_pem();
    const fs::path tmp = dir / (".host-key.pem." + std::to_string(::getpid()) + "." +
                                crypto::to_hex(crypto::random_bytes(8)));
    {
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!fd) throw_errno("cannot create host key", tmp.string());
      try {
        write_all(fd.get(), {reinterpret_cast<const char*>(text.data()), text.size()},
                  "cannot create host key", tmp);
        if (::fsync(fd.get()) != 0) throw_errno("cannot create host key", tmp.string());
      } catch (...) {
        ::unlink(tmp.c_str());
        throw;
      }
    }
    const int rc = ::link(tmp.c_str(), pem.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    if (rc == 0) {
      fsync_dir(dir);
      HostKey key(std::move(priv), pem);
      ensure_public_file(dir, key);
      notice(NoticeLevel::info, "created host key " + pem.string() + " (fingerprint " +
                                    key.public_key().fingerprint() + ")");
      return key;
    }
    if (err != EEXIST) throw_errno("cannot create host key", pem.string(), err);
  }
  throw Error(Errc::io, "cannot create host key", pem.string(), "it keeps appearing and vanishing");
}

crypto::Ed25519PublicKey load_public_key(const fs::path& file) {
  const std::string hint =
      "pass the host's host-key.pub (SubjectPublicKeyInfo PEM, see 'dlc audit pubkey') or its "
      "64-hex raw public key";
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot read public key file", file.string(), errno, hint);
  std::string text = read_small_file(fd.get(), file, "cannot read public key file", 65536);
  if (text.size() > 65536)
    throw Error(Errc::auth, "unusable public key file", file.string(), "too large to be a key",
                hint);
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  const std::string trimmed =
      first == std::string::npos ? "" : text.substr(first, last - first + 1);
  try {
    if (detail::is_lower_hex(detail::lower(trimmed), 64))
      return crypto::Ed25519PublicKey::from_raw(crypto::from_hex(detail::lower(trimmed)));
    if (trimmed.find("PRIVATE KEY") != std::string::npos)
      throw Error(Errc::auth, "unusable public key file", file.string(),
                  "it holds a private key, not a public key", hint);
    return crypto::Ed25519PublicKey::from_pem(trimmed);
  } catch (const Error& e) {
    if (e.info().what == "unusable public key file") throw;
    throw Error(Errc::auth, "unusable public key file", file.string(),
                "not an Ed25519 public key (SubjectPublicKeyInfo PEM or 64 hex digits)", hint);
  }
}

}  // namespace dlc::audit
