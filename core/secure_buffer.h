// SecureBuffer: owned bytes for key material. The memory is mlock'ed where the
// process is allowed to (so keys do not reach swap) and always cleansed with
// OPENSSL_cleanse before it is freed. Move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dlc {

class SecureBuffer {
 public:
  SecureBuffer() = default;
  explicit SecureBuffer(std::size_t size);                 // zero-filled
  explicit SecureBuffer(std::span<const std::uint8_t> bytes);  // copy of bytes
  ~SecureBuffer();
  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;

  std::uint8_t* data() noexcept { return data_; }
  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool locked() const noexcept { return locked_; }
  std::span<std::uint8_t> span() noexcept { return {data_, size_}; }
  std::span<const std::uint8_t> span() const noexcept { return {data_, size_}; }
  operator std::span<const std::uint8_t>() const noexcept { return span(); }

  SecureBuffer clone() const { return SecureBuffer(span()); }

 private:
  void release() noexcept;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool locked_ = false;
};

// Constant-time comparison of two byte strings of equal length.
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace dlc
