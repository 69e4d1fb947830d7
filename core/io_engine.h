// dlc::io: the one block-I/O engine every tool uses (wipe, verify, migrate,
// backup). It streams large sequential or scattered extents through io_uring
// with O_DIRECT aligned, registered buffers and a registered file, keeping
// queue_depth requests in flight; short transfers are resubmitted for the
// rest, EAGAIN is retried. When io_uring is unavailable (kernel.io_uring_disabled,
// seccomp, old kernel) it falls back to pread/pwrite and says so once.
//
// The engine owns no policy: callers say what to write (a fill callback that
// produces the bytes for an offset) or what to do with what was read (a
// consume callback). Callbacks run on the calling thread, in offset order
// within each extent; use one Engine per thread (e.g. one per device).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace dlc::io {

// Memory aligned for O_DIRECT (4096 bytes), zeroed, freed on destruction.
// Move-only. Buffers of 2 MiB or more are mapped 2 MiB-aligned with
// transparent huge pages advised (fewer page faults, no zero fill by us).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t size, std::size_t alignment = 4096);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&&) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&&) noexcept;
  std::uint8_t* data() noexcept { return data_; }
  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::uint8_t> span() noexcept { return {data_, size_}; }

 private:
  void release() noexcept;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // length of the mapping, 0 when from posix_memalign
};

enum class OpenMode { read, write, read_write };

struct OpenOptions {
  OpenMode mode = OpenMode::read;
  bool direct = true;     // O_DIRECT; falls back to buffered I/O + a note when the fs refuses it
  bool exclusive = false; // O_EXCL on block devices: fails if mounted / held / in use
                          // (Errc::refused); with create, refuses an existing file
  bool create = false;    // O_CREAT for regular files
  bool no_follow = false; // O_NOFOLLOW: a symlink as the last component is refused
                          // (Errc::refused) instead of followed
};

// An open file or block device. RAII over the fd.
class File {
 public:
  static File open(const std::string& path, const OpenOptions& opts);
  File() = default;
  ~File();
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;

  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }
  bool is_block_device() const noexcept { return block_device_; }
  bool direct() const noexcept { return direct_; }
  // Size in bytes (BLKGETSIZE64 for devices, st_size for files).
  std::uint64_t size() const;
  // The alignment O_DIRECT transfers need: the logical sector size for devices
  // (BLKSSZGET); for direct regular files the filesystem's direct-I/O offset
  // alignment (statx STATX_DIOALIGN, else 4096); 512 for buffered files.
  std::uint32_t logical_block_size() const;
  void sync() const;  // fdatasync; throws on failure

 private:
  int fd_ = -1;
  std::string path_;
  bool block_device_ = false;
  bool direct_ = false;
};

struct Extent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct EngineOptions {
  unsigned queue_depth = 32;
  std::size_t block_size = 1u << 20;  // bytes per request; a multiple of 4096
  bool register_buffers = true;
  bool force_fallback = false;        // use pread/pwrite even if io_uring works (tests)
};

// Produces the bytes to be written at [offset, offset + buf.size()).
using FillFn = std::function<void(std::uint64_t offset, std::span<std::uint8_t> buf)>;
// Receives the bytes read at [offset, offset + buf.size()).
using ConsumeFn = std::function<void(std::uint64_t offset, std::span<const std::uint8_t> buf)>;
// Called after each completed request with the bytes done so far in this call.
using ProgressFn = std::function<void(std::uint64_t bytes_done)>;

struct IoStats {
  std::uint64_t bytes = 0;
  std::uint64_t requests = 0;
  std::uint64_t short_retries = 0;  // resubmissions after short transfers or EAGAIN/EINTR
  double seconds = 0;
};

enum class Backend { io_uring, fallback };

class Engine {
 public:
  // Sets up the ring and queue_depth buffers of block_size bytes (one buffer
  // for the fallback). Throws Errc::usage unless 1 <= queue_depth <= 4096 and
  // block_size is a non-zero multiple of 4096 up to 1 GiB.
  explicit Engine(const EngineOptions& opts = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Backend backend() const noexcept;
  const EngineOptions& options() const noexcept;

  // Writes every extent; each request covers up to block_size bytes. Extents
  // must be aligned to file.logical_block_size() when the file is O_DIRECT
  // (checked before any I/O: Errc::usage). An optional cancel flag is polled
  // between requests (throws Errc::interrupted). A failed transfer throws
  // Errc::io naming the path and offset ("<path> at offset N"); reading 0
  // bytes before an extent's end is one ("unexpected end of file"). Whatever
  // stops a call (an error, the cancel flag, an exception from a callback,
  // which propagates unchanged) first waits for the requests in flight, so
  // the engine is usable again afterwards. For reads, progress counts bytes
  // handed to consume.
  IoStats write(File& file, std::span<const Extent> extents, const FillFn& fill,
                const ProgressFn& progress = {}, const std::atomic<bool>* cancel = nullptr);
  IoStats read(File& file, std::span<const Extent> extents, const ConsumeFn& consume,
               const ProgressFn& progress = {}, const std::atomic<bool>* cancel = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether io_uring can be used in this process (probed once).
bool io_uring_available();

}  // namespace dlc::io
