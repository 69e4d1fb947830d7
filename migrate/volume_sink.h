// Internal to dlc::migrate: the receiving end of a remote volume migration
// (docs/migrate.md, "Remote volumes"). A receiver session that is asked for a
// volume writes it here: an image file below the receiver's --root (every
// path component resolved with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
// or a block device the receiver was explicitly started with
// (--allow-device DEV), claimed with O_EXCL for the whole session.
//
// Every chunk arrives with its hash, which is checked before a byte is
// written; the chunk is written (O_DIRECT through the io engine where the
// filesystem allows it), made durable (fdatasync), read back from storage
// (O_DIRECT; else fdatasync + POSIX_FADV_DONTNEED around a buffered read) and
// hashed independently (the sender journals a chunk as verified only on that
// result). scan() builds the destination's volume manifest by reading every
// chunk from storage again, like `dlc verify migration` does later.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "core/io_engine.h"
#include "verify/verify.h"

namespace dlc::migrate {

// Whether p is a relative path of plain components: not empty, not absolute,
// no empty, "." or ".." component (so it cannot leave the directory it is
// joined to by its spelling; symlinks are the opener's business). A lone "."
// (the directory itself) is accepted only when dot_ok.
bool plain_relative_path(const std::string& p, bool dot_ok);

// The outcome of one chunk at the receiver: its hash as re-read from storage,
// or why it could not be written or re-read.
struct ChunkResult {
  std::uint64_t index = 0;
  std::string hash;   // hex, re-read from storage ("" on error)
  std::string error;  // empty when written, synced and re-read
};

class VolumeSink {
 public:
  // path: an image path relative to root ("vols/db.img"), or an absolute path
  // naming a block device that must be one of allowed_devices (compared after
  // resolving symlinks such as /dev/disk/by-id/...). Anything else is
  // Errc::refused before anything is opened for writing.
  VolumeSink(const std::filesystem::path& root, const std::string& path, crypto::HashAlg alg,
             const std::vector<std::string>& allowed_devices);
  ~VolumeSink();
  VolumeSink(const VolumeSink&) = delete;
  VolumeSink& operator=(const VolumeSink&) = delete;

  // {target, device, exists, size, free}: what is there now (nothing opened for writing).
  nlohmann::json info() const;
  const std::string& target() const { return target_; }
  bool device() const { return device_; }

  // Creates (or reopens) the image and sizes it to `size`, or claims the
  // device (O_EXCL: refused when mounted or held; refused when smaller).
  void open(std::uint64_t size, std::uint64_t chunk_size);
  // Checks, writes, syncs and re-reads one chunk. Thread-safe; `lane` is the
  // calling worker (one io engine and file descriptor per lane).
  void write_chunk(unsigned lane, std::uint64_t index, std::uint64_t offset, crypto::ByteView data,
                   const std::string& hash_hex);
  // Results since the last call.
  std::vector<ChunkResult> take_results();
  // The destination volume manifest (size = the size given to open()).
  verify::Manifest scan(unsigned threads);
  // Thread-milliseconds per phase so far: check_hash_ms (the hash checked
  // before writing), write_ms, sync_ms, reread_ms (read back and hashed).
  nlohmann::json profile() const;
  void close();

 private:
  struct Lane;
  Lane& lane(unsigned i);
  std::string reread(Lane& l, std::uint64_t offset, std::uint64_t len);

  std::filesystem::path root_;
  crypto::HashAlg alg_;
  std::string target_;   // absolute path of the image or device
  std::string rel_;      // image: path below root
  bool device_ = false;
  int image_fd_ = -1;    // image: the descriptor opened beneath root (held for the session)
  std::unique_ptr<io::File> holder_;  // device: the exclusive claim
  std::string io_path_;  // what lanes open (/proc/self/fd/N for images)
  std::uint64_t size_ = 0, chunk_ = 0;
  bool opened_ = false;
  bool direct_ = true;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<ChunkResult> done_;
  std::atomic<std::uint64_t> check_ns_{0}, write_ns_{0}, sync_ns_{0}, reread_ns_{0};
};

}  // namespace dlc::migrate
