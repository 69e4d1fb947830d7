// dlc::audit: the tamper-evident audit log (JR/T 0167 10.4, 7.2.4c, 11.4.6b).
// Append-only JSON Lines. Every record carries a sequence number, an RFC 3339
// UTC time with nanoseconds from CLOCK_REALTIME, host, user/uid, command and
// (masked) arguments, target, outcome, the hash of the previous record and its
// own hash. Signed checkpoint records (Ed25519 host key) seal the chain; a
// signed head file beside the log lets verification detect truncation.
// The format ("dlc-audit/1") is specified in docs/formats/audit-log.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/text.h"

namespace dlc::audit {

inline constexpr std::string_view kFormat = "dlc-audit/1";
// A writer seals (appends a checkpoint) after this many of its own records.
inline constexpr std::uint64_t kSealEvery = 64;

// The host's Ed25519 signing key: created on first use as
// <dir>/host-key.pem (0600, PKCS#8 PEM) with the public half in
// <dir>/host-key.pub (0644, SubjectPublicKeyInfo PEM). Creation is race-free
// between processes: the first creator wins, the others load its key.
class HostKey {
 public:
  static HostKey load_or_create(const std::filesystem::path& dir);
  // Throws Errc::io when the file cannot be read, Errc::auth ("unusable key
  // file") when it is not an Ed25519 private key or other users can read it.
  static HostKey load(const std::filesystem::path& private_pem);
  const crypto::Ed25519PrivateKey& private_key() const noexcept { return priv_; }
  const crypto::Ed25519PublicKey& public_key() const noexcept { return pub_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  HostKey(crypto::Ed25519PrivateKey priv, std::filesystem::path path);
  crypto::Ed25519PrivateKey priv_;
  crypto::Ed25519PublicKey pub_;
  std::filesystem::path path_;
};

// Reads a public key to pin verification to: SubjectPublicKeyInfo PEM (the
// host-key.pub file, or `dlc audit pubkey` output) or the 64-hex raw key.
// Throws Errc::io when unreadable, Errc::auth ("unusable public key file")
// when it holds no Ed25519 public key.
crypto::Ed25519PublicKey load_public_key(const std::filesystem::path& file);

struct Event {
  std::string command;            // "wipe device", "backup init"
  std::vector<std::string> args;  // the command line; append() masks it (mask_arguments)
  std::string target;             // what was acted on: a path, device, repository
  std::string outcome;            // "ok", "failed", "refused", "started", "interrupted"
  nlohmann::json details = nlohmann::json::object();  // tool-specific, never secrets
};

struct Appended {
  std::uint64_t seq = 0;
  std::string hash;  // hex SHA-256 of the record
};

class AuditLog {
 public:
  // Opens (creating if needed, 0600) the log at path, signing with key. When
  // no other writer is alive and the log does not end with a checkpoint (a
  // writer crashed), appends an "audit recover" record first.
  AuditLog(std::filesystem::path path, HostKey key);
  ~AuditLog();  // writes a checkpoint if records were appended since the last one
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one record under an exclusive lock (safe across processes and
  // threads), fsyncs it, and returns its sequence number and hash. Seals
  // automatically after every kSealEvery records of this writer.
  Appended append(const Event& event);
  // Appends a signed checkpoint over the current head (unless the log already
  // ends with one) and atomically replaces the signed head file.
  void checkpoint();

  const std::filesystem::path& path() const noexcept { return path_; }
  const HostKey& key() const noexcept { return key_; }

 private:
  struct State;
  std::filesystem::path path_;
  HostKey key_;
  std::unique_ptr<State> state_;  // fds, locks, counters
};

struct VerifyReport {
  bool ok = false;
  std::uint64_t records = 0;      // event records checked
  std::uint64_t checkpoints = 0;  // signatures checked
  std::uint64_t last_seq = 0;
  std::optional<std::uint64_t> first_bad_line;  // 1-based line in the file
  std::optional<std::uint64_t> first_bad_seq;
  std::string problem;                    // what is wrong, one sentence (empty when ok)
  std::vector<std::string> warnings;      // e.g. "3 records after the last checkpoint are unsigned"
  std::string key_fingerprint;            // the key the signatures were checked against
  bool pinned = false;                    // key_fingerprint came from --pubkey, not from the log
  std::optional<std::uint64_t> head_seq;  // seq sealed by the signed head file, if present
};

// Verifies the log: every hash, the chain, sequence numbers, times that do not
// go backwards, every checkpoint signature (against pubkey if given, else the
// key the log names, which is then reported as unpinned), and the signed head.
// Stops at the first bad record. Throws Errc::io when the log cannot be read.
VerifyReport verify(const std::filesystem::path& log,
                    const std::optional<crypto::Ed25519PublicKey>& pubkey);
nlohmann::json to_json(const VerifyReport& report);

// One line of a log, for display (dlc audit show). record is null when the
// line is not JSON; error then says why.
struct LogLine {
  std::uint64_t line = 0;
  nlohmann::json record;
  std::string error;
};
// All lines, or only the last `last` ones. Throws Errc::io when unreadable.
std::vector<LogLine> read_log(const std::filesystem::path& log,
                              std::optional<std::size_t> last = std::nullopt);

// <log>.head: the signed head written after each checkpoint.
std::filesystem::path head_path(const std::filesystem::path& log);
// The head file's JSON; nullopt when there is none. Throws Errc::io when it
// cannot be read, Errc::check_failed when it is not JSON.
std::optional<nlohmann::json> read_head(const std::filesystem::path& log);
// Whether head's signature verifies under the key the head itself names
// (self-consistency; `verify` checks it against the log and a pinned key).
bool head_signature_valid(const nlohmann::json& head) noexcept;

// The canonical serialization used for hashes and signatures: sorted keys, no
// whitespace, UTF-8 unescaped (Python: json.dumps(o, sort_keys=True,
// separators=(",", ":"), ensure_ascii=False)).
std::string canonical_json(const nlohmann::json& value);
// Hex SHA-256 of canonical_json(record without its "hash" member).
std::string record_hash(const nlohmann::json& record);

// Replaces the values of sensitive options (--passphrase X, --token=X, ...) and
// arguments that look like secrets with "***" (rule: docs/formats/audit-log.md).
std::vector<std::string> mask_arguments(const std::vector<std::string>& argv);

}  // namespace dlc::audit
