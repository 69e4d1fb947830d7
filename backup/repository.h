// The repository: config, key slots, keyring, sealed objects (snapshots,
// index files), packs and the lock. Layout (docs/formats/backup-repository.md):
//   config  keyring  lock  keys/<slot>  data/<xx>/<pack>  index/<id>  snapshots/<id>
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backup/backup.h"
#include "backup/chunker.h"
#include "backup/index.h"
#include "backup/pack.h"
#include "backup/util.h"
#include "core/crypto.h"

namespace dlc::backup {

inline constexpr std::string_view kFormat = "dlc-backup/1";
inline constexpr std::uint64_t kPackTargetSize = 16u << 20;

enum class LockMode { none, shared, exclusive };
enum class ObjectKind : std::uint8_t { snapshot = 1, index = 2, keyring = 3 };

struct Config {
  std::string id;
  crypto::AeadAlg cipher = crypto::AeadAlg::aes_256_gcm;
  ChunkerParams chunker;
  int compression_level = 3;
  std::string region, site;
  std::string created;
  nlohmann::json raw;  // the whole document as read
};

// What a key slot wraps: the 32-byte master secret. Everything else derives
// from it (HKDF-SHA256) or is sealed under something derived from it.
struct Secrets {
  SecureBuffer master;
  SecureBuffer id_key;      // HMAC-SHA256 key for blob ids
  SecureBuffer gear_seed;   // chunker gear table
  SecureBuffer keyring_key; // seals the keyring
  SecureBuffer config_key;  // HMAC of the config
  static Secrets derive(SecureBuffer master, crypto::AeadAlg alg);
};

struct DataKey {
  std::uint32_t id = 0;
  std::string created;
  SecureBuffer key;
  SecureBuffer object_key;  // HKDF(key, "dlc-backup/1 object")
};

struct Snapshot {
  std::string id;
  nlohmann::json doc;
  std::int64_t time_ns = 0;
  SnapshotInfo info() const;
};
// Decodes a snapshot's plaintext and checks its shape (an object naming its
// root tree; known members of their documented types). Throws Errc::io.
Snapshot parse_snapshot(const std::string& id, crypto::ByteView plain);

// The exclusive/shared lock: flock(2) on <repo>/lock, released by the kernel
// when the process dies (no stale locks after kill -9).
class RepoLock {
 public:
  RepoLock(const fs::path& repo, LockMode mode, double wait_seconds);
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

 private:
  Fd fd_;
};

class Repository {
 public:
  // Opens the repository at opts.repo: reads the config, takes the lock, and
  // (unless unlock == false) unlocks a key slot with opts.key and loads the
  // keyring. Throws Errc::io (not a repository), Errc::auth, Errc::refused.
  static std::unique_ptr<Repository> open(const RepoOptions& opts, LockMode mode, bool unlock = true);
  static InitResult create(const InitOptions& opts);

  const fs::path& path() const noexcept { return path_; }
  const Config& config() const noexcept { return config_; }
  crypto::AeadAlg cipher() const noexcept { return config_.cipher; }
  bool unlocked() const noexcept { return !secrets_.master.empty(); }
  const Secrets& secrets() const noexcept { return secrets_; }
  const std::string& unlocked_slot() const noexcept { return slot_id_; }
  unsigned threads() const noexcept { return threads_; }
  const RepoOptions& options() const noexcept { return opts_; }

  // ---- keys ----
  const DataKey& current_key() const;
  const DataKey& data_key(std::uint32_t id) const;  // throws Errc::io for an unknown key id
  const std::vector<DataKey>& data_keys() const noexcept { return keys_; }
  std::uint32_t current_key_id() const noexcept { return current_key_; }
  void add_data_key();  // rotate: new current key, keyring rewritten (exclusive lock)
  void save_keyring();
  void rewrite_config(const nlohmann::json& changes);  // re-MACs the config

  BlobId blob_id(crypto::ByteView plain) const;
  Chunker make_chunker() const;

  // ---- sealed objects ----
  Bytes seal_object(ObjectKind kind, crypto::ByteView plain, std::uint32_t key_id) const;
  Bytes open_object(ObjectKind kind, crypto::ByteView sealed, const fs::path& what) const;
  std::string write_object(const std::string& dir, ObjectKind kind, crypto::ByteView plain) const;
  Bytes read_object(const std::string& dir, const std::string& name, ObjectKind kind) const;

  // ---- index ----
  Index& index() { return index_; }
  const Index& index() const { return index_; }
  // Loads every index file; damaged ones are reported through *errors when
  // given (else thrown).
  void load_index(std::vector<std::string>* errors = nullptr);
  const std::vector<std::string>& index_files() const noexcept { return index_files_; }
  std::string write_index(const std::vector<PackInfo>& packs) const;
  crypto::Aead pack_aead(std::uint32_t key_id, const BlobId& salt) const;

  // Reads one blob through the index (thread-safe; opens the pack each time).
  Bytes read_blob(const BlobId& id) const;
  nlohmann::json read_tree(const BlobId& id) const;

  // ---- snapshots ----
  std::vector<Snapshot> snapshots() const;  // oldest first
  Snapshot find_snapshot(const std::string& ref) const;  // "latest", id or unique prefix
  std::string write_snapshot(const nlohmann::json& doc) const;

  // ---- key slots ----
  std::vector<nlohmann::json> slots() const;
  std::string add_slot(const KeySource& src, const std::string& label, std::uint64_t scrypt_n,
                       bool create_pkcs11_key);

  ~Repository();

 private:
  Repository() = default;
  void read_config();
  void unlock(const KeySource& src);
  void load_keyring();

  RepoOptions opts_;
  fs::path path_;
  Config config_;
  Secrets secrets_;
  std::string slot_id_;
  std::vector<DataKey> keys_;
  std::uint32_t current_key_ = 0;
  Index index_;
  std::vector<std::string> index_files_;
  std::unique_ptr<RepoLock> lock_;
  unsigned threads_ = 2;
};

// Key slots (backup/keys.cpp).
// Wraps master under src into a slot document (new slot id).
nlohmann::json make_slot(const KeySource& src, crypto::AeadAlg alg, crypto::ByteView master,
                         const std::string& label, std::uint64_t scrypt_n, bool create_pkcs11_key);
// Tries to unwrap one slot; nullopt when the secret does not fit this slot
// (wrong passphrase/key), throws for other failures.
struct SecretCache {  // the passphrase, key file bytes or command output, read once
  std::optional<SecureBuffer> secret;
};
std::optional<SecureBuffer> open_slot(const nlohmann::json& slot, const KeySource& src,
                                      crypto::AeadAlg alg, SecretCache& cache);
std::string slot_detail(const nlohmann::json& slot);
// Whether a key slot document can be used: an object whose "id" is its file
// name, with the members its type needs, of the documented types. Slot files
// are not authenticated: Repository::slots() skips (and notes) the others.
bool slot_well_formed(const nlohmann::json& slot, const std::string& file_name, std::string* why);
// scrypt parameters a passphrase slot may ask for: N * r * p <= 2^23 (N = 2^20,
// r = 8, p = 1 needs 1 GiB and about a second), so that a slot planted in a
// repository cannot make unlocking exhaust memory or time.
inline constexpr std::uint64_t kMaxScryptWork = std::uint64_t{1} << 23;
// The passphrase from src: its command, the file its env var names, or a prompt.
SecureBuffer read_passphrase(const KeySource& src, bool confirm, const std::string& what);

// PKCS#11 (backup/pkcs11.cpp): AES-GCM inside the token.
Bytes pkcs11_wrap(const KeySource& src, crypto::ByteView plain, crypto::ByteView iv,
                  crypto::ByteView aad, bool create_key);
std::optional<SecureBuffer> pkcs11_unwrap(const KeySource& src, crypto::ByteView wrapped,
                                          crypto::ByteView iv, crypto::ByteView aad);

}  // namespace dlc::backup
