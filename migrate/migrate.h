// dlc::migrate: residency-checked, end-to-end verified, resumable migration of
// directory trees and volumes, locally or to a remote dlc receiver over mutual
// TLS 1.3 (JR/T 0167-2020 9.2, 9.5, 11.3.5). One options struct per operation,
// filled by cli/; the library never prints. See docs/migrate.md,
// docs/formats/migration-report.md and docs/formats/residency-policy.md.
//
// Errors: dlc::Error (Errc::usage, Errc::io, Errc::auth for TLS peers that fail
// authentication, Errc::interrupted). A residency violation, a destination
// that is not ours, or too little free space are not exceptions: the report
// comes back with code Errc::refused and nothing was written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "core/error.h"
#include "backup/backup.h"
#include "core/runtime.h"
#include "verify/verify.h"

namespace dlc::audit {
class AuditLog;
}

namespace dlc::migrate {

namespace fs = std::filesystem;

inline constexpr std::string_view kReportFormat = "dlc-migration-report/1";
inline constexpr std::string_view kPolicyFormat = "dlc-residency-policy/1";

// ---- Endpoints -----------------------------------------------------------------
struct Endpoint {
  enum class Kind { tree, volume, remote } kind = Kind::tree;
  std::string path;  // local path, or the path below the receiver's root
  std::string host;  // remote
  std::uint16_t port = 0;
  std::string display() const;  // "dlc://host:port/path" or the path
};
// "dlc://host:port/path" is remote; a directory (or a path that does not exist
// yet, when the source is a tree) is a tree; a block device or a regular file
// is a volume (image).
Endpoint parse_endpoint(const std::string& text, bool must_exist);

// ---- TLS -----------------------------------------------------------------------
struct TlsOptions {
  std::string cert;  // PEM certificate chain presented to the peer
  std::string key;   // PEM private key
  std::string ca;    // PEM CA bundle the peer's certificate must chain to
  // SHA-256 (hex, colons allowed) of the peer certificate (DER) or of its
  // SubjectPublicKeyInfo; when given, the peer must match one of them.
  std::vector<std::string> pins;
  // TLS 1.3 cipher suites, OpenSSL syntax ("TLS_AES_256_GCM_SHA384:..."); empty: OpenSSL's.
  std::string ciphersuites;
};

// ---- Residency -----------------------------------------------------------------
// A label of one file, from `dlc classify --label` (docs/formats/labels.md) or
// computed on the fly.
struct Label {
  int level = 1;                 // JR/T 0197 1..5
  std::string category = "none"; // JR/T 0171 C1/C2/C3 or none
  bool personal_information = false;
  std::vector<std::pair<std::string, std::uint64_t>> types;  // info type -> count
};

struct Violation {
  std::string path;    // relative to the source (printable)
  std::string reason;  // masked: levels, categories, type names and counts, never values
};

struct ResidencyResult {
  bool checked = false;          // a policy was given
  bool ok = true;
  std::string policy_name, policy_sha256;
  std::string region, site, region_source;  // where the destination says it is, and how we know
  std::vector<std::string> groups;          // location groups the region belongs to
  std::vector<std::string> approvals_used;  // assessment ids that allowed something
  std::uint64_t files_checked = 0, files_labelled = 0, files_classified = 0;
  std::vector<Violation> violations;
  nlohmann::json to_json(std::size_t max_listed = 1000) const;
};

struct ResidencyInput {
  fs::path policy;                        // the policy file
  std::optional<fs::path> labels;         // labels manifest (docs/formats/labels.md)
  fs::path source_root;                   // absolute source path the labels refer to
  std::vector<verify::Entry> files;       // files to check (relative paths, size, mtime)
  std::string region, site, region_source;
  std::vector<std::string> approvals;     // --approval ids
  std::string today;                      // YYYY-MM-DD (UTC); empty: now
  bool volume = false;                    // the source is one volume (labelled by its path)
};
// Throws Errc::usage for a malformed policy, Errc::refused for an approval id
// the policy does not know.
ResidencyResult check_residency(const ResidencyInput& in);

// ---- Migration ------------------------------------------------------------------
struct MigrateOptions {
  std::string source;
  std::string destination;
  bool verify = false;     // re-read the destination from storage and compare manifests
  bool dry_run = false;    // residency + pre-flight only
  unsigned passes = 1;     // copy passes (later ones send what changed); stops early when stable
  bool final_pass = false; // cut-over: verification required, fails if the source still changes
  std::uint64_t bwlimit = 0;  // bytes per second, 0 = unlimited
  crypto::HashAlg alg = crypto::HashAlg::sha256;
  unsigned threads = 0;
  bool xattrs = true;
  bool sparse = true;
  bool restart = false;    // forget the resume journal of this SRC/DST pair

  // Residency (9.5d): checked when policy is set.
  std::optional<fs::path> policy;
  std::optional<fs::path> labels;
  std::string dest_region, dest_site;
  std::vector<std::string> approvals;
  std::string attestation_key;  // PEM public key the receiver's attestation must verify under

  TlsOptions tls;  // remote destinations

  // Back up first (9.5c): a dlc backup snapshot of the source, taken after the
  // residency check and pre-flight and before the first byte moves (once per
  // migration: a resumed run reuses it). Trees only.
  std::optional<fs::path> backup_repo;
  backup::KeySource backup_key;

  fs::path state_dir;       // empty: $DLC_HOME/migrate/<key>
  fs::path manifest_out;    // also write the source manifest here
  fs::path report_out;      // also write the signed report here

  ProgressSink* progress = nullptr;
  audit::AuditLog* audit = nullptr;  // every migration is audited (started, finished, refused)
  std::vector<std::string> command_line;
  // Test hooks (never set by the CLI): called with the local destination root
  // after the copy, before verification; and after each committed batch of a
  // tree (files committed so far) or each chunk of a volume (chunks sent).
  std::function<void(const fs::path&)> before_verify;
  std::function<void(std::uint64_t files_committed)> after_commit;
  // Called with every volume chunk after it was hashed and before it is sent
  // to a remote receiver (to damage it in transit).
  std::function<void(std::uint64_t offset, std::span<std::uint8_t> chunk)> tamper_in_transit;
};

struct Preflight {
  std::uint64_t files_total = 0, bytes_total = 0;
  std::uint64_t files_to_send = 0, bytes_to_send = 0;
  std::uint64_t dest_free = 0;
  bool space_ok = true;
  double read_bps = 0, write_bps = 0, link_bps = 0, rtt_ms = 0;
  double estimated_seconds = 0;
  nlohmann::json to_json() const;
};

struct MigrateReport {
  std::string id;              // this run
  std::string migration;       // the SRC/DST pair (resume key)
  std::string outcome;         // verified | verification-failed | copied | dry-run | refused
  Errc code = Errc::ok;
  std::string refusal;         // why, when refused
  Endpoint source, destination;
  ResidencyResult residency;
  Preflight preflight;
  unsigned passes_run = 0;
  std::uint64_t files_sent = 0, bytes_sent = 0, files_skipped = 0, files_removed = 0;
  std::uint64_t entries = 0;
  bool resumed = false;
  std::optional<verify::Comparison> comparison;
  std::string source_root, dest_root;  // Merkle roots
  nlohmann::json backup;               // {repo, snapshot, taken_at, ...} or null
  nlohmann::json profile;              // trees: thread-ms per phase (the report's transfer.profile)
  fs::path state_dir, manifest_path, dest_manifest_path, report_path;
  nlohmann::json document;     // the signed report
  double seconds = 0;
};
MigrateReport run_migrate(const MigrateOptions& opts);

// ---- Receiver --------------------------------------------------------------------
struct ReceiverOptions {
  std::string listen = "0.0.0.0:7443";  // HOST:PORT; port 0 picks a free one
  fs::path root;                        // everything received lands below it
  TlsOptions tls;
  std::string region, site;             // attested to senders (signed with the host key)
  bool once = false;                    // exit after one session
  unsigned threads = 0;
  // Block devices a sender may write a volume to (dlc://HOST:PORT//dev/NAME);
  // everything else a sender names lands below root.
  std::vector<std::string> allowed_devices;
  audit::AuditLog* audit = nullptr;
  std::vector<std::string> command_line;
  std::function<void(std::uint16_t port)> on_listening;
};
// Serves until stop_requested() (or after one session with once).
void run_receiver(const ReceiverOptions& opts);

// ---- Verifying later ----------------------------------------------------------------
struct VerifyMigrationOptions {
  fs::path manifest;                  // the source manifest a migration wrote
  std::string destination;            // the destination tree or volume
  std::optional<fs::path> report;     // the signed report, cross-checked when given
  std::optional<crypto::Ed25519PublicKey> pubkey;
  unsigned threads = 0;
  ProgressSink* progress = nullptr;
};
struct VerifyMigrationResult {
  verify::Comparison comparison;
  verify::SignatureCheck manifest_signature;
  std::optional<verify::SignatureCheck> report_signature;
  std::vector<std::string> problems;  // signature / report mismatches
  std::vector<std::string> warnings;  // e.g. the signature was not checked against a pinned key
  bool ok() const { return comparison.ok && problems.empty(); }
};
VerifyMigrationResult verify_migration(const VerifyMigrationOptions& opts);

// ---- Tenant exit (11.3.5) ------------------------------------------------------------
// `dlc exit PLAN`: per dataset classify -> back up (optional) -> migrate
// --verify -> wipe source, replicas and backups; one signed exit report listing
// every verification result and erasure certificate. Resumable (state in
// $DLC_HOME/exit/<id>/state.json); never wipes a dataset whose migration has
// not verified or whose source changed since. Plan format: docs/migrate.md.
inline constexpr std::string_view kExitPlanFormat = "dlc-exit-plan/1";
inline constexpr std::string_view kExitReportFormat = "dlc-exit-report/1";
struct ExitOptions {
  fs::path plan;
  bool yes = false;       // erasure confirmed (without it the flow stops before wiping)
  bool dry_run = false;   // residency + pre-flight of every dataset only
  std::string today;      // YYYY-MM-DD for the deadline check (empty: now)
  ProgressSink* progress = nullptr;
  audit::AuditLog* audit = nullptr;
  std::vector<std::string> command_line;
};
struct ExitReport {
  Errc code = Errc::ok;
  std::string outcome;  // complete | awaiting-confirmation | incomplete | refused | dry-run
  nlohmann::json document;  // the signed exit report
  fs::path report_path, state_dir;
};
ExitReport run_exit(const ExitOptions& opts);

// Parses "100M", "1.5G", "512K", "1000" (bytes per second). Throws Errc::usage.
std::uint64_t parse_rate(const std::string& text);

}  // namespace dlc::migrate
