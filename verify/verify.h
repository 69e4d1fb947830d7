// dlc::verify: manifests of directory trees and volumes, their Merkle roots,
// comparison that names every differing path, and Ed25519-signed documents
// (JR/T 0167-2020 9.2b, 7.4.7b, 11.4.6b). The manifest format "dlc-manifest/1"
// is specified in docs/formats/manifest.md; a third party can recompute every
// hash and the root from that document alone.
//
// Reading "from storage": when ScanOptions::no_cache is set, file content is
// read with O_DIRECT (the kernel first writes back any dirty page of the
// range, then reads the device, bypassing the page cache). Where the
// filesystem refuses O_DIRECT (tmpfs, some FUSE and network filesystems) the
// file is fdatasync'ed and its cached pages are dropped with
// posix_fadvise(POSIX_FADV_DONTNEED) before and after a buffered read, and the
// manifest records which method was used per scan ("read_method").
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "core/runtime.h"
#include "core/signed_doc.h"

namespace dlc::audit {
class HostKey;
}

namespace dlc::verify {

namespace fs = std::filesystem;
using Digest = std::array<std::uint8_t, crypto::kHashSize>;

inline constexpr std::string_view kManifestFormat = "dlc-manifest/1";
// The signature domain of manifests, migration reports and attestations (core/signed_doc.h).
inline constexpr std::string_view kSignatureDomain = "dlc-signed-document/1";

enum class EntryType { file, dir, symlink, fifo, chardev, blockdev, socket, volume };
std::string_view type_name(EntryType t) noexcept;
std::optional<EntryType> type_from_name(std::string_view name) noexcept;

struct Xattr {
  std::string name;   // "user.comment", "security.capability", "system.posix_acl_access"
  std::string value;  // raw bytes
  bool operator==(const Xattr&) const = default;
};

struct DataExtent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool operator==(const DataExtent&) const = default;
};

// One name in a tree (or the whole content of a volume).
struct Entry {
  std::string path;  // relative, '/'-separated, raw bytes; "." is the root itself
  EntryType type = EntryType::file;
  std::uint64_t size = 0;   // files and volumes: bytes; symlinks: target length; else 0
  std::uint32_t mode = 0;   // permission bits incl. set-id and sticky (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_ns = 0;
  std::string target;       // symlinks: the target, raw bytes
  std::uint64_t rdev = 0;   // character and block devices
  std::uint32_t hardlink = 0;  // hard-link group (1-based) when several names share an inode
  std::vector<Xattr> xattrs;   // sorted by name
  std::optional<std::vector<DataExtent>> sparse;  // data extents, only for files with holes
  std::string hash;            // hex content hash (files, volumes)
  // Volumes: content is hashed per chunk; hash = H(chunk digests concatenated).
  std::uint64_t chunk_size = 0;
  std::vector<std::string> chunks;  // hex digests
  // From lstat, not serialized: finalize() turns shared inodes into groups.
  std::uint64_t dev = 0, ino = 0, nlink = 0;
  std::int64_t ctime_ns = 0;
};

// Content already read from storage in this process (see ScanOptions::known).
struct KnownContent {
  std::string hash;
  std::optional<std::vector<DataExtent>> sparse;
  std::string read_method;  // how it was read ("direct", "fadvise-dontneed"); feeds Manifest::read_method
};

struct Manifest {
  std::string kind = "tree";  // "tree" or "volume"
  crypto::HashAlg alg = crypto::HashAlg::sha256;
  std::string root;           // where it was built (informational)
  std::string created;        // RFC 3339 UTC
  std::string host;
  std::string tool;
  std::string read_method;    // "direct", "fadvise-dontneed" or "cached"
  bool xattrs = true;         // whether xattrs were recorded
  bool sparse = true;         // whether sparse maps were recorded
  std::vector<Entry> entries;  // sorted by path bytes
  std::string merkle_root;     // hex
  nlohmann::json signature;    // the signature object of a signed manifest (null otherwise)
  std::uint64_t files() const;
  std::uint64_t bytes() const;  // sum of file sizes
};

// ---- Building ----------------------------------------------------------------
struct ScanOptions {
  fs::path root;  // a directory (tree manifest) or a regular file / block device (volume)
  crypto::HashAlg alg = crypto::HashAlg::sha256;
  unsigned threads = 0;   // 0: one per core
  bool no_cache = true;   // read content from storage (see the header comment)
  bool xattrs = true;
  bool sparse = true;
  bool volume = false;    // treat a regular file as a volume image even if root is a file
  std::uint64_t chunk_size = 32u << 20;  // volumes
  std::uint64_t volume_length = 0;       // volumes: hash only the first N bytes (0: all)
  std::vector<std::string> exclude;      // relative paths (and what is below them) to leave out
  // Content already read from storage: when it returns a value for an entry
  // (metadata from lstat, incl. ino and ctime_ns), the file is not read again.
  // Used by migrate for files it re-read from storage after committing them.
  std::function<std::optional<KnownContent>(const Entry&)> known;
  ProgressSink* progress = nullptr;
};
Manifest build_manifest(const ScanOptions& opts);

// The metadata of one name (no content hash): lstat, xattrs. path is where it
// is on disk; rel is the manifest path. Throws Errc::io when it cannot be read.
Entry stat_entry(const fs::path& path, const std::string& rel, bool xattrs);
// xattrs of a path without following a final symlink, sorted by name.
std::vector<Xattr> read_xattrs(const fs::path& path);
// Data extents (SEEK_DATA/SEEK_HOLE) of an open file of the given size;
// nullopt when the file has no hole.
std::optional<std::vector<DataExtent>> data_extents(int fd, std::uint64_t size);

struct HashedFile {
  Digest digest{};
  std::uint64_t bytes = 0;  // bytes read (holes are hashed as zeros, not read)
  std::optional<std::vector<DataExtent>> sparse;
  std::string read_method;
};
// Hashes a regular file's content, from storage when no_cache.
HashedFile hash_file(const fs::path& path, crypto::HashAlg alg, bool no_cache, bool sparse);

// Every name under root (root itself as "."), metadata only, never following
// symlinks; exclude as in ScanOptions. Throws Errc::io when root is unreadable.
std::vector<Entry> walk_tree(const fs::path& root, bool xattrs,
                             const std::vector<std::string>& exclude = {});

// Sorts entries by path bytes, turns inodes shared by several entries (dev,
// ino from lstat) into hard-link groups numbered in path order (entries
// without inode data keep their groups), and computes the Merkle root.
void finalize(Manifest& m);
std::string merkle_root(const std::vector<Entry>& entries, crypto::HashAlg alg);
std::string volume_hash(const std::vector<std::string>& chunk_hex, crypto::HashAlg alg);

// ---- JSON ---------------------------------------------------------------------
nlohmann::json to_json(const Entry& e);
Entry entry_from_json(const nlohmann::json& j);  // throws Errc::check_failed when malformed
nlohmann::json to_json(const Manifest& m);      // includes "signature" when set
// Parses and checks a manifest: format, entry order, the Merkle root (a
// mismatch is Errc::check_failed: the manifest was altered).
Manifest manifest_from_json(const nlohmann::json& j);
// Writes the manifest (signed with key when given) atomically.
void save_manifest(Manifest& m, const fs::path& path, const audit::HostKey* key);
Manifest load_manifest(const fs::path& path);

// Raw bytes <-> JSON: a valid UTF-8 string is stored under `key`, anything
// else as hex under `key`_hex.
void put_bytes(nlohmann::json& obj, const std::string& key, const std::string& bytes);
std::string get_bytes(const nlohmann::json& obj, const std::string& key);
// A path for display: invalid UTF-8 bytes and control characters as \xNN.
std::string printable(std::string_view bytes);

// ---- Comparing ----------------------------------------------------------------
struct Difference {
  std::string path;  // printable
  std::string kind;  // missing, extra, type, size, content, mode, owner, mtime, target,
                     // xattrs, hardlink, sparse, device
  std::string detail;  // what differs; never xattr values or file content
};
struct CompareOptions {
  bool mode = true, owner = true, mtime = true, xattrs = true, sparse = true, hardlinks = true;
  bool root_metadata = true;  // compare the "." entry's metadata
};
struct Comparison {
  bool ok = true;
  std::uint64_t compared = 0;
  std::vector<Difference> differences;
  std::string expected_root, actual_root;
  bool roots_equal = false;
};
Comparison compare(const Manifest& expected, const Manifest& actual, const CompareOptions& opts = {});
nlohmann::json to_json(const Comparison& c, std::size_t max_differences = 1000);

// ---- Signed documents -----------------------------------------------------------
// Signs doc with the host key in the kSignatureDomain (core/signed_doc.h).
void sign_document(nlohmann::json& doc, const audit::HostKey& key);
using dlc::SignatureCheck;
SignatureCheck check_signature(const nlohmann::json& doc,
                               const std::optional<crypto::Ed25519PublicKey>& pin);

std::string read_text_file(const fs::path& path);  // throws Errc::io
nlohmann::json read_json_file(const fs::path& path, const std::string& what);

}  // namespace dlc::verify
