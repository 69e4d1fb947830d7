// dlc::io::AlignedBuffer and dlc::io::File: the memory and the file handle the
// engine transfers between (see core/io_engine.h).
#include <fcntl.h>
#include <linux/fs.h>  // BLKGETSIZE64, BLKSSZGET
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/io_engine.h"
#include "core/runtime.h"

namespace dlc::io {

// ---- AlignedBuffer -------------------------------------------------------------

namespace {

constexpr std::size_t kHugePage = 2u << 20;
constexpr std::size_t kPage = 4096;

// Large buffers come straight from mmap, 2 MiB-aligned and marked
// MADV_HUGEPAGE: the kernel hands them out zeroed, so there is no memset, and
// a transparent huge page takes one fault where 4 KiB pages take 512 (perf on
// the migrate benchmark: the zero fill and its page faults were about 6% of a
// receiver's CPU and 5% of a sender's). Returns nullptr when mmap fails.
void* map_large(std::size_t len) {
  const std::size_t span = len + kHugePage;  // slack to align the start
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t start = (base + kHugePage - 1) & ~(std::uintptr_t{kHugePage} - 1);
  if (start > base) ::munmap(raw, start - base);
  if (const std::uintptr_t end = base + span; end > start + len)
    ::munmap(reinterpret_cast<void*>(start + len), end - (start + len));
  ::madvise(reinterpret_cast<void*>(start), len, MADV_HUGEPAGE);  // advice: failure is harmless
  return reinterpret_cast<void*>(start);
}

}  // namespace

AlignedBuffer::AlignedBuffer(std::size_t size, std::size_t alignment) {
  if (size == 0) return;
  if (size >= kHugePage && alignment != 0 && alignment <= kHugePage && kHugePage % alignment == 0) {
    const std::size_t len = (size + kPage - 1) & ~(kPage - 1);
    if (void* p = map_large(len)) {
      data_ = static_cast<std::uint8_t*>(p);
      size_ = size;
      mapped_ = len;
      return;
    }
  }
  void* p = nullptr;
  if (int rc = ::posix_memalign(&p, alignment, size); rc != 0)
    throw Error(Errc::io, "cannot allocate an I/O buffer", std::to_string(size) + " bytes",
                std::strerror(rc));
  // Zeroed once here: a short fill can never send stale heap contents to a
  // device, and the pages are faulted in before io_uring pins them.
  std::memset(p, 0, size);
  data_ = static_cast<std::uint8_t*>(p);
  size_ = size;
}

void AlignedBuffer::release() noexcept {
  if (mapped_ != 0) ::munmap(data_, mapped_);
  else std::free(data_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

AlignedBuffer::~AlignedBuffer() { release(); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

// ---- File ----------------------------------------------------------------------

namespace {

int open_flags(const OpenOptions& opts) {
  int flags = O_CLOEXEC;
  switch (opts.mode) {
    case OpenMode::read:
      flags |= O_RDONLY;
      break;
    case OpenMode::write:
      flags |= O_WRONLY;
      break;
    case OpenMode::read_write:
      flags |= O_RDWR;
      break;
  }
  if (opts.exclusive) flags |= O_EXCL;
  if (opts.create) flags |= O_CREAT;
  if (opts.no_follow) flags |= O_NOFOLLOW;
  return flags;
}

int open_retrying(const std::string& path, int flags) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0600);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

[[noreturn]] void throw_open_error(const std::string& path, const OpenOptions& opts, int err) {
  if (opts.exclusive && err == EBUSY)
    throw Error(Errc::refused, "device is in use (mounted, held by dm/md/LVM, or open exclusively)",
                path, std::strerror(err),
                "unmount it and stop whatever holds it (see lsblk and /sys/block/*/holders)");
  if (opts.exclusive && opts.create && err == EEXIST)
    throw Error(Errc::refused, "refusing to overwrite an existing file", path, std::strerror(err),
                "remove it first or choose another path");
  if (opts.no_follow && err == ELOOP)
    throw Error(Errc::refused, "refusing to follow a symbolic link", path, std::strerror(err),
                "name the file itself, not a link to it");
  std::string hint;
  if (err == EACCES || err == EPERM) hint = "run as root or check the permissions";
  throw Error(Errc::io, "cannot open", path, std::strerror(err), std::move(hint));
}

}  // namespace

File File::open(const std::string& path, const OpenOptions& opts) {
  File f;
  f.path_ = path;
  int flags = open_flags(opts);
  int fd = open_retrying(path, opts.direct ? flags | O_DIRECT : flags);
  bool direct = opts.direct;
  if (fd < 0 && opts.direct && errno == EINVAL) {
    // The filesystem refuses O_DIRECT (e.g. tmpfs before Linux 6.6): buffered
    // I/O still works, only slower and through the page cache.
    fd = open_retrying(path, flags);
    if (fd >= 0) {
      direct = false;
      notice_once("o_direct",
                  "the filesystem of " + path + " does not support O_DIRECT; using buffered I/O");
    }
  }
  if (fd < 0) throw_open_error(path, opts, errno);
  f.fd_ = fd;  // owned from here on: closed by ~File if anything below throws
  f.direct_ = direct;

  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("cannot stat", path);
  if (S_ISDIR(st.st_mode))
    throw Error(Errc::usage, "cannot do block I/O on", path, "is a directory");
  f.block_device_ = S_ISBLK(st.st_mode);
  return f;
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

File::File(File&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      block_device_(other.block_device_),
      direct_(other.direct_) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    block_device_ = other.block_device_;
    direct_ = other.direct_;
  }
  return *this;
}

std::uint64_t File::size() const {
  if (block_device_) {
    std::uint64_t bytes = 0;
    if (::ioctl(fd_, BLKGETSIZE64, &bytes) != 0) throw_errno("cannot read the size of", path_);
    return bytes;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw_errno("cannot stat", path_);
  return static_cast<std::uint64_t>(st.st_size);
}

std::uint32_t File::logical_block_size() const {
  if (block_device_) {
    int ssz = 0;
    if (::ioctl(fd_, BLKSSZGET, &ssz) != 0 || ssz <= 0)
      throw_errno("cannot read the logical block size of", path_);
    return static_cast<std::uint32_t>(ssz);
  }
  if (!direct_) return 512;  // buffered I/O has no alignment rule; 512 keeps callers' math simple
  // O_DIRECT on a regular file: the filesystem says what it needs when it
  // supports STATX_DIOALIGN (Linux 6.1+, ext4/xfs/f2fs/btrfs...); else the
  // page size is safe everywhere.
  struct statx sx {};
  if (::statx(fd_, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
      sx.stx_dio_offset_align != 0)
    return sx.stx_dio_offset_align;
  return 4096;
}

void File::sync() const {
  int rc;
  do {
    rc = ::fdatasync(fd_);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) throw_errno("cannot flush to stable storage", path_);
}

}  // namespace dlc::io
