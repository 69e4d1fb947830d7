// Pack files: many sealed blobs followed by a sealed table of contents.
//   prefix  "DLCPACK1" | key id u32 | reserved u32 | salt[32]      (48 bytes)
//   blobs   AEAD(pack key, nonce = 0^4 || offset u64, aad = type || id, plain)
//   table   AEAD(pack key, nonce = 1 || 0^11, aad = prefix, entries)
//   footer  table length u32 | "DLCPEND1"
// The pack key is HKDF-SHA256(data key, salt, "dlc-backup/1 pack"); the pack
// id (its file name) is hex(salt). See docs/formats/backup-repository.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <span>
#include <string>
#include <vector>

#include "backup/util.h"
#include "core/crypto.h"

namespace dlc::backup {

enum class BlobType : std::uint8_t { data = 0, tree = 1 };
std::string_view blob_type_name(BlobType t);

inline constexpr std::uint8_t kBlobZstd = 1;  // flags bit 0: plaintext is a zstd frame
inline constexpr std::size_t kPackPrefixSize = 48;
inline constexpr std::size_t kPackFooterSize = 12;
inline constexpr std::size_t kTableEntrySize = 50;

struct BlobEntry {
  BlobId id{};
  BlobType type = BlobType::data;
  std::uint8_t flags = 0;
  std::uint64_t offset = 0;      // of the sealed blob in the pack file
  std::uint32_t length = 0;      // sealed length (stored plaintext + 16)
  std::uint32_t raw_length = 0;  // uncompressed plaintext length
};

struct PackInfo {
  BlobId id{};  // = salt; file data/<hex[0:2]>/<hex>
  std::uint64_t size = 0;
  std::uint32_t key_id = 0;
  std::vector<BlobEntry> blobs;
};

SecureBuffer derive_pack_key(crypto::AeadAlg alg, crypto::ByteView data_key, crypto::ByteView salt);
std::array<std::uint8_t, 12> blob_nonce(std::uint64_t offset);
std::array<std::uint8_t, 33> blob_aad(BlobType type, const BlobId& id);
fs::path pack_path(const fs::path& repo, const BlobId& id);

// Writes one pack to a temp file in data/<xx>/; finish() seals the table,
// fsyncs and renames it. Not thread-safe: one writer per thread.
class PackWriter {
 public:
  PackWriter(const fs::path& repo, crypto::AeadAlg alg, crypto::ByteView data_key, std::uint32_t key_id);
  ~PackWriter();  // removes the temp file unless finished
  PackWriter(const PackWriter&) = delete;
  PackWriter& operator=(const PackWriter&) = delete;

  // buf holds plain_len plaintext bytes and room for the tag (buf.size() >=
  // plain_len + 16); it is sealed in place and appended.
  void add(BlobType type, const BlobId& id, std::uint8_t flags, std::uint32_t raw_length,
           std::span<std::uint8_t> buf, std::size_t plain_len);
  std::uint64_t size() const noexcept { return offset_; }
  std::size_t count() const noexcept { return info_.blobs.size(); }
  // Writes table and footer, then fsync + rename (+ fsync of the directory
  // when sync_dir). Returns the pack's description for the index.
  PackInfo finish(bool sync_dir = true);

 private:
  fs::path repo_, tmp_, final_;
  PackInfo info_;  // before aead_: its id (the salt) is drawn when aead_ is built
  crypto::Aead aead_;
  Fd fd_;
  std::uint64_t offset_ = 0;
  Bytes prefix_;
  bool done_ = false;
};

// Reads and opens a pack's table. size: the file size. The caller supplies
// the data key for the pack's key id. Throws Errc::io (damaged/short) or
// Errc::auth (table does not authenticate).
struct PackHeader {
  BlobId salt{};
  std::uint32_t key_id = 0;
};
PackHeader parse_pack_prefix(crypto::ByteView prefix48, const fs::path& what);
std::vector<BlobEntry> decode_table(crypto::Aead& aead, crypto::ByteView prefix48,
                                    crypto::ByteView sealed_table, const fs::path& what);
// Reads prefix, footer and table from an open pack file; aead_for returns
// the pack's AEAD (pack key) for its key id and salt.
std::vector<BlobEntry> read_pack_table(int fd, std::uint64_t file_size, const fs::path& what,
                                       const std::function<crypto::Aead(std::uint32_t key_id, const BlobId& salt)>& aead_for,
                                       PackHeader* header_out = nullptr);

// Opens a sealed blob (in place) and decompresses when flagged; returns the
// plaintext. Throws Errc::auth when the blob does not authenticate.
Bytes open_blob(crypto::Aead& pack_aead, const BlobEntry& e, std::span<std::uint8_t> sealed);

// Asks the kernel to read [offset, offset + length) of a pack into the page
// cache in the background (POSIX_FADV_WILLNEED in 128 KiB steps: one call
// reads at most the device's readahead window).
void prefetch_range(int fd, std::uint64_t offset, std::uint64_t length);

// Opens packs and has the kernel read the needed ranges ahead, on a thread of
// its own (opening a pack may wait for directory and inode reads; the workers
// should not), staying at most `ahead` items in front of the furthest item a
// worker has taken. Workers take items in order and get the open file from it.
class PackPrefetcher {
 public:
  struct Item {
    fs::path path;
    std::uint64_t offset = 0, length = 0;  // the range to read ahead
  };
  PackPrefetcher(std::vector<Item> items, std::size_t ahead);
  ~PackPrefetcher();  // stops the thread
  PackPrefetcher(const PackPrefetcher&) = delete;
  PackPrefetcher& operator=(const PackPrefetcher&) = delete;
  // Item i is being worked on: returns its open file (opened here when the
  // prefetcher has not reached it; an invalid Fd with errno set when it
  // cannot be opened) and lets the prefetcher run further.
  Fd take(std::size_t i);

 private:
  void loop();
  std::vector<Item> items_;
  std::vector<Fd> fds_;
  std::vector<char> state_;  // 0 new, 1 opened by the prefetcher, 2 taken
  std::size_t ahead_, taken_ = 0;  // taken_: one past the furthest item taken
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

// Per-thread scratch for open_blob_view: the decompression buffer and zstd
// context, reused from blob to blob (no allocation, no zero-filling).
class BlobScratch {
 public:
  BlobScratch();
  ~BlobScratch();
  BlobScratch(const BlobScratch&) = delete;
  BlobScratch& operator=(const BlobScratch&) = delete;

 private:
  friend crypto::ByteView open_blob_view(crypto::Aead&, const BlobEntry&, std::span<std::uint8_t>, BlobScratch&);
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t cap_ = 0;
  void* dctx_;  // ZSTD_DCtx
};
// As open_blob, without copies: the plaintext is a view into `sealed`
// (decrypted in place) for a stored blob, else into `scratch`; valid until
// either is reused. Checks that the plaintext has the index's raw length.
crypto::ByteView open_blob_view(crypto::Aead& pack_aead, const BlobEntry& e, std::span<std::uint8_t> sealed,
                                BlobScratch& scratch);

}  // namespace dlc::backup
