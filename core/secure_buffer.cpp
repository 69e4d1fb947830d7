#include "core/secure_buffer.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace dlc {

namespace {

std::size_t page_size() noexcept {
  static const std::size_t size = [] {
    long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::size_t>(p) : std::size_t{4096};
  }();
  return size;
}

// Buffers are whole pages of their own. mlock/munlock work on pages and do not
// nest, so two small buffers sharing a page would unlock each other on release;
// MADV_DONTDUMP (keeps keys out of core dumps) also needs page alignment.
std::size_t rounded(std::size_t size) noexcept {
  const std::size_t p = page_size();
  return (size + p - 1) / p * p;
}

}  // namespace

SecureBuffer::SecureBuffer(std::size_t size) {
  if (size == 0) return;
  if (size > SIZE_MAX - page_size()) throw std::bad_alloc();
  const std::size_t alloc = rounded(size);
  void* p = nullptr;
  if (::posix_memalign(&p, page_size(), alloc) != 0) throw std::bad_alloc();
  std::memset(p, 0, alloc);
  data_ = static_cast<std::uint8_t*>(p);
  size_ = size;
  // Best effort: without CAP_IPC_LOCK and over RLIMIT_MEMLOCK this fails, and
  // the key is still wiped on release; locked() tells callers which they got.
  locked_ = ::mlock(data_, alloc) == 0;
  (void)::madvise(data_, alloc, MADV_DONTDUMP);
}

SecureBuffer::SecureBuffer(std::span<const std::uint8_t> bytes) : SecureBuffer(bytes.size()) {
  if (!bytes.empty()) std::memcpy(data_, bytes.data(), bytes.size());
}

SecureBuffer::~SecureBuffer() { release(); }

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(other.data_), size_(other.size_), locked_(other.locked_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.locked_ = false;
}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = other.data_;
    size_ = other.size_;
    locked_ = other.locked_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.locked_ = false;
  }
  return *this;
}

void SecureBuffer::release() noexcept {
  if (data_ == nullptr) return;
  const std::size_t alloc = rounded(size_);
  OPENSSL_cleanse(data_, alloc);
  // The pages go back to the heap: undo the advice so later users of that
  // memory (not key material) appear in core dumps as usual.
  (void)::madvise(data_, alloc, MADV_DODUMP);
  if (locked_) (void)::munlock(data_, alloc);
  std::free(data_);
  data_ = nullptr;
  size_ = 0;
  locked_ = false;
}

bool constant_time_equal(std::span<const std::uint8_t> a,
                         std::span<const std::uint8_t> b) noexcept {
  // Lengths are public (key and tag sizes are fixed); only contents are secret.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dlc
