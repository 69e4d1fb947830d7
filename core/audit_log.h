// dlc::audit: the tamper-evident audit log (JR/T 0167 10.4, 7.2.4c, 11.4.6b).
// Append-only JSON Lines. Every record carries a sequence number, an RFC 3339
// UTC time with nanoseconds from CLOCK_REALTIME, host, user/uid, command and
// (masked) arguments, target, outcome, the hash of the previous record and its
// own hash. Signed checkpoint records (Ed25519 host key) seal the chain; a
// signed head file beside the log lets verification detect truncation.
// The format is specified in docs/formats/audit-log.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"

namespace dlc::audit {

// The host's Ed25519 signing key: created on first use as
// <dir>/host-key.pem (0600) with the public half in <dir>/host-key.pub.
class HostKey {
 public:
  static HostKey load_or_create(const std::filesystem::path& dir);
  static HostKey load(const std::filesystem::path& private_pem);  // throws Errc::auth/io
  const crypto::Ed25519PrivateKey& private_key() const noexcept { return priv_; }
  const crypto::Ed25519PublicKey& public_key() const noexcept { return pub_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  HostKey(crypto::Ed25519PrivateKey priv, std::filesystem::path path);
  crypto::Ed25519PrivateKey priv_;
  crypto::Ed25519PublicKey pub_;
  std::filesystem::path path_;
};

struct Event {
  std::string command;            // "wipe device", "backup init"
  std::vector<std::string> args;  // the command line, masked (see mask_arguments)
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
  // Opens (creating if needed, 0600) the log at path, signing with key.
  AuditLog(std::filesystem::path path, HostKey key);
  ~AuditLog();  // writes a checkpoint if records were appended since the last one
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one record under an exclusive lock (safe across processes),
  // fsyncs it, and returns its sequence number and hash.
  Appended append(const Event& event);
  // Appends a signed checkpoint over the current head and updates the head file.
  void checkpoint();

  const std::filesystem::path& path() const noexcept { return path_; }
  const HostKey& key() const noexcept { return key_; }

 private:
  std::filesystem::path path_;
  HostKey key_;
  std::uint64_t unsealed_ = 0;
};

struct VerifyReport {
  bool ok = false;
  std::uint64_t records = 0;      // event records checked
  std::uint64_t checkpoints = 0;  // signatures checked
  std::uint64_t last_seq = 0;
  std::optional<std::uint64_t> first_bad_line;  // 1-based line in the file
  std::optional<std::uint64_t> first_bad_seq;
  std::string problem;   // what is wrong, one sentence (empty when ok)
  std::vector<std::string> warnings;  // e.g. "3 records after the last checkpoint are unsigned"
  std::string key_fingerprint;        // the key the signatures were checked against
};

// Verifies the log: every hash, the chain, sequence numbers, times that do not
// go backwards, every checkpoint signature (against pubkey if given, else the
// key the log names, which is then reported as unpinned), and the signed head.
VerifyReport verify(const std::filesystem::path& log,
                    const std::optional<crypto::Ed25519PublicKey>& pubkey);

// Replaces the values of sensitive options (--passphrase X, --key=X, ...) and of
// arguments that look like secrets with "***".
std::vector<std::string> mask_arguments(const std::vector<std::string>& argv);

}  // namespace dlc::audit
