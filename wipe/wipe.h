// dlc::wipe: verifiable erasure of block devices, files, directories, free
// space and dataset replicas, and records of physical destruction, each ending
// in a signed certificate of sanitization (NIST SP 800-88 fields) linked to
// the audit log. JR/T 0167-2020 clauses 9.6, 6.3c, 11.3.4c, 11.3.5c.
//
// The CLI fills one WipeOptions and calls one function; the library never
// prints. Failures that stop a whole job before anything is written throw
// dlc::Error (Errc::refused for interlocks, Errc::usage for bad options);
// failures of one target are recorded in its TargetReport and summarised in
// JobReport::code, so a job over several targets always accounts for each.
// See docs/wipe.md (methods, interlocks, resume, honesty rules) and
// docs/formats/certificate.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/runtime.h"

namespace dlc::audit {
class AuditLog;
}
namespace dlc::wipe::nvme {
struct TestHooks;
}

namespace dlc::wipe {

enum class VerifyMode { none, last, all };
std::string_view verify_mode_name(VerifyMode m) noexcept;
VerifyMode verify_mode_from_name(std::string_view name);  // throws Errc::usage

// The NIST SP 800-88 App. G fields the operator supplies; dlc fills in the
// rest (media identity, technique, tool, verification, times, audit link).
struct CertificateFields {
  std::string operator_name;   // who performed the sanitization
  std::string operator_title;
  std::string organisation;    // for which organisation
  std::string location;
  std::string contact;
  std::string witness;         // second person validating (App. G "validation")
  std::string asset_tag;       // asset number of the medium
  std::string tenant;          // tenant / owner of the data (cloud source)
  std::string source;          // free text: "tenant exit t-42", "RMA"
  std::string pre_classification;   // e.g. "JR/T 0197 level 4"
  std::string post_classification;  // e.g. "unclassified"
  std::string backed_up = "unknown";  // yes | no | unknown
  std::string backup_location;
  std::string destination;     // internal-reuse | external-reuse | recycling | manufacturer |
                               // destroyed | other (free text allowed after "other:")
  std::string notes;
};

// What the operator sees before a destructive operation on a device and must
// confirm by typing the device name (unless --yes).
struct TargetPreview {
  std::string path;                   // /dev/sdb
  nlohmann::json identity;            // model, serial, size, ...
  std::vector<std::string> signatures;  // "ext4 UUID=... LABEL=data on /dev/sdb1"
  std::vector<std::string> warnings;  // honesty notes (flash, loop, ...)
  std::string plan;                   // "nist-clear: 1 pass (zero), verify all"
};

struct WipeOptions {
  // Technique. method: zero | one | random | dod-3pass | nist-clear |
  // custom:PAT[,PAT...] where PAT is hex bytes (55, aa, 924924) or "random"
  // (overwrite: NIST SP 800-88 Clear); for devices also auto (the strongest
  // Purge the drive supports, else nist-clear) or an NVMe Purge technique:
  // sanitize-crypto | sanitize-block | sanitize-overwrite | format-crypto |
  // format-user-data (docs/nvme.md).
  std::string method = "nist-clear";
  unsigned passes = 1;          // the method's pass list is repeated this many times
  bool final_zero = false;      // append a zero pass (blanking) after everything
  std::optional<VerifyMode> verify;  // default: all for nist-clear, last otherwise
  double sample_percent = 100;  // < 100: verify uniformly spread samples (seed recorded)
  // Read-back sample after an NVMe Purge (first and last LBA always); unset:
  // kPurgeSamplePercent. The CLI's --sample sets both.
  std::optional<double> purge_sample_percent;

  // NVMe Purge scope and sanitize settings (docs/nvme.md).
  bool whole_drive = false;            // allow a Purge that erases other namespaces too
  bool sanitize_unrestricted = false;  // AUSE=1: a failed sanitize may be left with exit-failure-mode
  bool sanitize_exit_failure = false;  // only leave sanitize failure mode (SANACT 1); erases nothing
  bool dry_run = false;                // resolve, check and choose; report the plan; touch nothing

  // Safety and flow.
  bool yes = false;     // skip the typed confirmation
  bool force = false;   // override soft refusals (stale journal, hard links); never
                        // mounted / root / holders / swap / open elsewhere
  bool resume = false;  // continue an interrupted device wipe from its journal
  bool discard = false; // BLKSECDISCARD or BLKDISCARD after the overwrite (reported as such)
  // Asked once per device when yes is false; return true to go ahead. Leave it
  // empty when there is no terminal: the job is then refused (Errc::refused).
  std::function<bool(const TargetPreview&)> confirm;

  CertificateFields cert;
  std::filesystem::path journal_dir;  // empty: $DLC_HOME/journal
  std::filesystem::path cert_dir;     // empty: $DLC_HOME/certificates

  // I/O shape.
  std::uint64_t checkpoint_bytes = 1ull << 30;  // journal checkpoint interval (devices)
  std::uint64_t rate_limit = 0;                 // bytes per second per target, 0 = unlimited
  unsigned queue_depth = 32;
  std::size_t block_size = 1u << 20;

  // Plumbing.
  ProgressSink* progress = nullptr;   // null: no progress
  audit::AuditLog* audit = nullptr;   // required: every wipe is audited
  std::vector<std::string> command_line;  // argv, masked before it is recorded
  // Fault injection for tests: called after a pass is written and synced,
  // before it is read back (path, 0-based pass). Never set by the CLI.
  std::function<void(const std::string& path, unsigned pass)> before_verify;
  // Tests: replaces the CSPRNG that draws the random-pattern job seed (to
  // prove that a failing or constant source aborts the wipe). Never set by the CLI.
  std::function<void(std::span<std::uint8_t> out)> random_source;
  // Tests: the NVMe edge (topology, admin commands, polling) replaced by a
  // fake. Never set by the CLI.
  std::shared_ptr<const nvme::TestHooks> nvme_test;
};

// Default read-back sample after an NVMe Purge, percent of each namespace.
inline constexpr double kPurgeSamplePercent = 1.0;

// The report of one target (device, file, directory, free space, replica,
// destroyed medium).
struct TargetReport {
  std::string kind;     // device | file | directory | free-space | replica | physical
  std::string path;
  std::string id;       // replica id (replicas only)
  // sanitized | verification-failed | failed | refused | interrupted | unreachable | recorded
  std::string outcome;
  Errc code = Errc::ok;
  std::string error;    // one line, when outcome is not sanitized/recorded
  nlohmann::json identity = nlohmann::json::object();
  nlohmann::json evidence = nlohmann::json::object();  // passes, verification, discard, ...
  std::vector<std::string> warnings;  // honesty notes: what overwrite cannot guarantee here
  std::string certificate_id;
  std::filesystem::path certificate_path;
  std::filesystem::path certificate_html;
  std::vector<TargetReport> children;  // replica jobs: one per replica
};

struct JobReport {
  std::string command;  // "wipe device", ...
  std::vector<TargetReport> targets;
  Errc code = Errc::ok;  // the worst outcome: io > interrupted > check_failed > ok
  std::string started_at, finished_at;
  nlohmann::json to_json() const;
};
nlohmann::json to_json(const TargetReport& t);
// Folds the targets' codes into one (io > refused > interrupted > check_failed > ok).
Errc worst(const std::vector<TargetReport>& targets);

// ---- Operations -----------------------------------------------------------------
// Block devices, several at once (one thread and one io engine per device),
// and NVMe controllers (/dev/nvmeX: every namespace). The method is chosen
// per device (--method auto: docs/nvme.md). Interlocks (of every namespace a
// Purge erases) and confirmations for all devices run before any byte is
// written and before any erasing admin command; one refusal refuses the whole
// job (throws Errc::refused). With dry_run nothing is erased: every target is
// reported "planned" or "refused".
JobReport wipe_devices(const std::vector<std::string>& devices, const WipeOptions& opts);

// Regular files: overwrite in place, fsync, truncate, rename, unlink.
JobReport wipe_files(const std::vector<std::string>& paths, const WipeOptions& opts);
// A directory tree, bottom-up, names included; never follows symlinks or
// crosses into another filesystem.
JobReport wipe_dir(const std::string& path, const WipeOptions& opts);
// Fills the free space of a mounted filesystem with the pattern, syncs,
// verifies, deletes.
JobReport wipe_free_space(const std::string& mountpoint, const WipeOptions& opts);

// Every replica of one dataset listed in a JSON file (docs/wipe.md, "Replica
// lists"); one report accounting for each replica.
JobReport wipe_replicas(const std::filesystem::path& list, const WipeOptions& opts);

// A Destroy-category certificate for physically destroyed media; no I/O on
// any device (a present device is only read for its identity).
struct DestructionRecord {
  std::string device;        // optional: a present device to read identity from (read-only)
  std::string media_type;    // hdd | ssd | nvme | tape | optical | flash | other
  std::string make, model, serial, wwn;
  std::uint64_t size_bytes = 0;
  std::string method;        // shred | disintegrate | pulverize | incinerate | melt | degauss
  std::string details;       // particle size, equipment, vendor, destruction certificate no.
  std::string location;      // where it was destroyed
  std::string date;          // when it was destroyed (RFC 3339 or YYYY-MM-DD); default: now
};
JobReport record_destruction(const DestructionRecord& record, const WipeOptions& opts);

// ---- Certificates -----------------------------------------------------------------
struct CertificateCheck {
  bool signature_ok = false;
  bool fields_ok = false;
  bool sanitized = false;       // outcome says the medium was sanitized / destroyed
  bool key_pinned = false;      // checked against a key the caller supplied
  std::string key_fingerprint;
  std::vector<std::string> problems;  // one sentence each
  std::vector<std::string> warnings;
  nlohmann::json certificate;   // the parsed document
  bool ok() const { return signature_ok && fields_ok && sanitized; }
};
// pubkey_pem: a PEM public key to check against (recommended); empty: the
// key embedded in the certificate (reported as unpinned).
CertificateCheck verify_certificate(const std::filesystem::path& cert,
                                    const std::string& pubkey_pem = {});
// Checks the certificate's link into the audit log: the log verifies (chain,
// signatures), the record with the certificate's audit.seq exists, has the
// recorded hash, and names this certificate's id. log empty: audit.log of the
// certificate.
struct AuditLinkCheck {
  bool ok = false;
  std::string problem;  // one sentence when not ok
  std::string log;      // the log that was checked
};
AuditLinkCheck check_audit_link(const nlohmann::json& cert, const std::filesystem::path& log = {});

// Human renderings of a certificate document.
std::string render_certificate_text(const nlohmann::json& cert);
std::string render_certificate_html(const nlohmann::json& cert);

}  // namespace dlc::wipe
