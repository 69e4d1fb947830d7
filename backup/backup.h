// dlc::backup: encrypted, deduplicated backup and restore (JR/T 0167-2020
// 9.3, 9.7, 10.5, 9.5c). One options struct per operation, filled by cli/;
// every operation returns a report and never prints. The on-disk format is
// specified in docs/formats/backup-repository.md ("dlc-backup/1").
//
// Errors are dlc::Error: Errc::auth (wrong passphrase/key, nothing modified),
// Errc::refused (lock held, last key slot...), Errc::io, Errc::usage.
// Damage found by check is a report (ok == false), not an exception.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/runtime.h"

namespace dlc::backup {

namespace fs = std::filesystem;

// Where the secret that unlocks a repository comes from. Exactly one kind is
// used: key_file, key_command, pkcs11 (module + token + key label), else a
// passphrase (passphrase_command, else the file named by the environment
// variable passphrase_env, else a terminal prompt when prompt is true).
// Secrets are never taken from the command line.
struct KeySource {
  std::string key_file;            // a file of >= 32 random bytes (created by init/key add)
  std::string key_command;         // sh -c command printing the secret (KMS unwrap)
  std::string pkcs11_module;       // e.g. /usr/lib/softhsm/libsofthsm2.so
  std::string pkcs11_token;        // token label
  std::string pkcs11_key;          // label of the AES key on the token
  std::string pkcs11_pin_env = "DLC_PKCS11_PIN_FILE";  // env var naming a file with the PIN
  std::string passphrase_command;  // sh -c command printing the passphrase
  std::string passphrase_env = "DLC_PASSPHRASE_FILE";  // env var naming a passphrase file
  bool prompt = true;              // ask on /dev/tty when nothing else gives a passphrase

  std::string kind() const;  // "keyfile", "command", "pkcs11" or "passphrase"
};

struct RepoOptions {
  fs::path repo;
  KeySource key;
  unsigned threads = 0;         // 0: one per core
  double lock_wait_seconds = 0; // how long to wait for a conflicting lock (0: refuse at once)
  ProgressSink* progress = nullptr;
};

// Defaults chosen on the anchor dataset (bench/backup_bench.sh): 128 KiB/512 KiB/2 MiB
// dedups shifted content well enough to stay below restic's repository size
// while keeping the index at about 2 M blobs per TiB.
struct ChunkerParams {
  std::uint32_t min_size = 128 * 1024;
  std::uint32_t avg_size = 512 * 1024;  // a power of two
  std::uint32_t max_size = 2 * 1024 * 1024;
};

struct InitOptions {
  fs::path repo;
  std::string cipher = "aes-256-gcm";  // aes-256-gcm | aes-128-gcm | chacha20-poly1305 | sm4-gcm
  KeySource key;                       // the first key slot
  std::string label;                   // free text for the first slot
  std::string region;                  // location tags reported by `locations` (9.7c)
  std::string site;
  ChunkerParams chunker;
  int compression_level = 3;           // zstd level; 0 disables compression
  std::uint64_t scrypt_n = 1u << 15;   // passphrase slots
};
struct InitResult {
  std::string repo_id;
  std::string cipher;
  std::string slot_id;
  std::string slot_type;
};
InitResult init(const InitOptions& opts);

struct BackupOptions : RepoOptions {
  std::vector<fs::path> paths;
  std::vector<std::string> excludes;  // fnmatch patterns on the full path or the file name
  std::vector<std::string> tags;
  std::string host;                   // default: this host name
  std::string parent;                 // default: latest snapshot with the same host and paths
  bool force_read = false;            // ignore the parent (re-read every file)
};
struct BackupResult {
  std::string snapshot_id;
  std::string parent_id;
  std::uint64_t files_new = 0, files_changed = 0, files_unmodified = 0, dirs = 0, others = 0;
  std::uint64_t bytes_read = 0;       // file bytes read and chunked
  std::uint64_t bytes_total = 0;      // size of everything in the snapshot
  std::uint64_t blobs_new = 0, blobs_known = 0;
  std::uint64_t bytes_new_raw = 0;    // plaintext of new blobs
  std::uint64_t bytes_new_stored = 0; // sealed bytes added to the repository
  std::uint64_t packs_written = 0;
  std::vector<std::string> warnings;  // unreadable files (skipped), xattrs not read...
  double seconds = 0;
};
BackupResult run_backup(const BackupOptions& opts);

struct SnapshotInfo {
  std::string id;
  std::string time;  // RFC 3339 UTC
  std::string host, user;
  std::vector<std::string> paths, tags;
  std::string tree, parent;
  std::uint32_t key_id = 0;
  nlohmann::json summary;
};
std::vector<SnapshotInfo> list_snapshots(const RepoOptions& opts);

struct LsEntry {
  std::string path;  // "/home/u/file"
  std::string type;  // file, dir, symlink, fifo, chardev, blockdev, socket
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::string target;  // symlinks
  bool sparse = false;
};
std::vector<LsEntry> list_files(const RepoOptions& opts, const std::string& snapshot);

struct RestoreOptions : RepoOptions {
  std::string snapshot = "latest";
  fs::path target;
  std::vector<std::string> includes;  // restore only matching paths (and what is below them)
  bool verify = false;                // re-read restored files and compare with blob ids
};
struct RestoreResult {
  std::string snapshot_id;
  std::uint64_t files = 0, dirs = 0, others = 0, bytes = 0;
  std::uint64_t verified_files = 0;
  std::vector<std::string> failed;    // files not restored or failing --verify, with the reason
  std::vector<std::string> warnings;  // metadata that could not be applied
  double seconds = 0;
};
RestoreResult run_restore(const RestoreOptions& opts);

// Pack selection for --read-data-subset: a percentage of the packed bytes
// (least recently verified first, remembered in state_dir), or part n of m.
struct Subset {
  double percent = 100;
  unsigned n = 0, m = 0;  // m > 0: packs whose id falls in bucket n (1-based) of m
};
struct CheckOptions : RepoOptions {
  bool read_data = false;
  std::optional<Subset> subset;  // implies read_data
  fs::path state_dir;            // where verification coverage is remembered (default $DLC_HOME/backup-verify)
};
struct DamagedBlob {
  std::string id, type, pack, reason;
};
struct AffectedFile {
  std::string snapshot, path;
};
struct CheckResult {
  bool ok = true;
  std::vector<std::string> errors;    // structural problems, one sentence each
  std::vector<std::string> warnings;  // orphan packs, unused blobs (prune removes them)
  std::vector<DamagedBlob> damaged_blobs;
  std::vector<AffectedFile> affected_files;
  std::vector<std::string> affected_snapshots;
  std::uint64_t snapshots = 0, trees = 0, packs_total = 0, packs_read = 0, blobs_read = 0;
  std::uint64_t bytes_read = 0, bytes_total = 0;
  std::uint64_t packs_never_verified = 0;  // after this run, per the coverage state
  std::string oldest_verification;         // RFC 3339 of the least recently verified pack
  double seconds = 0;
};
CheckResult run_check(const CheckOptions& opts);
nlohmann::json to_json(const CheckResult& r);

// How much unused data prune may leave in partly used packs instead of
// repacking them (restic's --max-unused): a percentage of the packed data left
// after pruning, a number of bytes, or no limit (then only packs no snapshot
// uses are deleted). The default, 0 bytes, repacks every partly used pack, so
// that nothing of a forgotten snapshot stays in the repository.
struct UnusedLimit {
  enum class Kind { bytes, percent, unlimited };
  Kind kind = Kind::bytes;
  std::uint64_t bytes = 0;
  double percent = 0;  // 0 <= percent < 100
};
// "0", "500K", "200M", "1.5G", "2T" (binary units; a bare number is bytes),
// "5%", "unlimited". Throws Errc::usage naming the accepted forms.
UnusedLimit parse_unused_limit(const std::string& text);
// The unused bytes the limit allows next to `used` bytes of used data.
std::uint64_t unused_allowed(const UnusedLimit& limit, std::uint64_t used);
// Prune's choice among partly used packs (sealed bytes of their used and
// unused blobs): the positions of those to repack, the largest unused share
// first, until the unused bytes left are within unused_allowed(limit,
// total_used). total_used counts every pack that stays.
struct PackUsage {
  std::uint64_t used_bytes = 0, unused_bytes = 0;
};
std::vector<std::size_t> packs_to_repack(const std::vector<PackUsage>& partly_used, std::uint64_t total_used,
                                         const UnusedLimit& limit);

struct ForgetOptions : RepoOptions {
  unsigned keep_last = 0, keep_hourly = 0, keep_daily = 0, keep_weekly = 0, keep_monthly = 0,
           keep_yearly = 0;
  std::vector<std::string> snapshots;  // explicit ids to forget (instead of a policy)
  bool dry_run = false;
  bool prune = false;
  UnusedLimit max_unused;  // for --prune
};
struct PruneResult {
  std::uint64_t packs_deleted = 0, packs_repacked = 0, packs_written = 0, orphans_deleted = 0;
  std::uint64_t tmp_deleted = 0, blobs_removed = 0, bytes_freed = 0;
  std::uint64_t index_files_replaced = 0;
  // After pruning: the sealed bytes of used blobs, and the unused blobs (and
  // their sealed bytes) left in partly used packs that --max-unused let stay.
  std::uint64_t used_bytes = 0, packs_partly_used_kept = 0, blobs_unused_kept = 0, unused_bytes_kept = 0;
  bool dry_run = false;
};
struct ForgetResult {
  std::vector<std::string> kept, removed;
  std::optional<PruneResult> prune;
};
ForgetResult run_forget(const ForgetOptions& opts);

struct PruneOptions : RepoOptions {
  bool dry_run = false;
  UnusedLimit max_unused;
};
PruneResult run_prune(const PruneOptions& opts);

struct StatsResult {
  std::uint64_t snapshots = 0, files = 0;
  std::uint64_t restore_size = 0;       // bytes a restore of every snapshot writes
  std::uint64_t unique_raw = 0;         // plaintext of the distinct referenced blobs
  std::uint64_t stored = 0;             // sealed bytes of those blobs in packs
  std::uint64_t repo_size = 0;          // every file of the repository on disk
  std::uint64_t blobs = 0, packs = 0, index_files = 0;
  std::string cipher;
};
StatsResult run_stats(const RepoOptions& opts);

struct LocationsOptions : RepoOptions {
  std::optional<std::string> set_region, set_site;  // needs the key
};
struct LocationInfo {
  std::string repo_path;     // canonical path
  std::string host;
  std::string filesystem;    // ext4, xfs, nfs4...
  std::string mount_point;
  std::string device;        // mount source (/dev/vda1, server:/export)
  std::string device_number; // major:minor
  std::string region, site;  // tenant-configured tags (from the repository config)
  std::string repo_id;
  std::uint64_t repo_size = 0;
};
LocationInfo run_locations(const LocationsOptions& opts);

struct RepairResult {
  std::uint64_t packs_indexed = 0, blobs_indexed = 0, packs_unreadable = 0, index_files_removed = 0;
  std::vector<std::string> unreadable;  // pack ids and why
};
RepairResult run_repair_index(const RepoOptions& opts);

// ---- key slots -------------------------------------------------------------
struct KeySlotInfo {
  std::string id, type, label, created, host, user;
  std::string detail;  // key file path hint, PKCS#11 token/key label, command
};
struct KeyListResult {
  std::vector<KeySlotInfo> slots;
  std::uint32_t current_data_key = 0;  // only when the repository was unlocked
  std::uint32_t data_keys = 0;
};
KeyListResult run_key_list(const RepoOptions& opts, bool unlock);
struct KeyAddOptions : RepoOptions {
  KeySource new_key;  // kind() decides the slot type
  std::string label;
  std::uint64_t scrypt_n = 1u << 15;
  bool create_pkcs11_key = true;  // generate the AES key on the token when the label is absent
};
KeySlotInfo run_key_add(const KeyAddOptions& opts);
// Removes a slot; refuses the last slot and the slot used to unlock.
KeySlotInfo run_key_remove(const RepoOptions& opts, const std::string& slot_id);
struct RotateResult {
  std::uint32_t old_key = 0, new_key = 0;
  std::uint32_t data_keys = 0;
};
RotateResult run_key_rotate(const RepoOptions& opts);

// ---- scheduled verification (dlc verify backup) ------------------------------
struct VerifyBackupOptions : RepoOptions {
  std::optional<double> subset_percent;  // none: read all data
  std::optional<fs::path> against;       // compare a snapshot with this live tree
  std::string snapshot = "latest";       // the snapshot --against compares
  fs::path state_dir;
  fs::path report_file;                  // signed JSON report (written atomically) when set
  fs::path metrics_file;                 // Prometheus textfile when set
};
struct VerifyBackupResult {
  CheckResult check;
  bool against_ok = true;
  nlohmann::json against;  // {"compared":N,"missing":[],"added":[],"changed":[],"corrupt":[]}
  nlohmann::json report;   // the signed report document
  bool ok() const { return check.ok && against_ok; }
};
VerifyBackupResult run_verify_backup(const VerifyBackupOptions& opts);
// Signs the report with the host key under dlc_home(): Ed25519 over
// kReportSignatureDomain and the canonical JSON (core/signed_doc.h).
inline constexpr std::string_view kReportSignatureDomain = "dlc-backup-verify-report/1";
nlohmann::json sign_report(nlohmann::json report);
bool verify_report_signature(const nlohmann::json& report);
// Prometheus textfile-collector lines for a verification run.
std::string prometheus_metrics(const VerifyBackupResult& r, const std::string& repo);

}  // namespace dlc::backup
