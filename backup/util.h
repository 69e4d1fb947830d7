// Internal helpers of the backup tool: little-endian encoding, blob ids,
// crash-safe file writes (temp name, fsync, rename, fsync dir), RAII fds.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "core/fs.h"
#include "core/text.h"

namespace dlc::backup {

namespace fs = std::filesystem;
using crypto::Bytes;
using crypto::ByteView;

using BlobId = std::array<std::uint8_t, 32>;
struct BlobIdHash {
  std::size_t operator()(const BlobId& id) const noexcept {
    std::size_t h;
    std::memcpy(&h, id.data(), sizeof h);
    return h;
  }
};
std::string hex(const BlobId& id);
BlobId blob_id_from_hex(std::string_view hex);  // throws Errc::io on a malformed id
std::string random_hex_id(std::size_t bytes = 32);

inline void put_u32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_u64(Bytes& b, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
// resize + memcpy: GCC 12 warns (falsely) about vector::insert into an empty vector.
inline void append(Bytes& b, ByteView v) {
  if (v.empty()) return;
  const std::size_t at = b.size();
  b.resize(at + v.size());
  std::memcpy(b.data() + at, v.data(), v.size());
}
inline void append(Bytes& b, std::string_view s) { append(b, crypto::as_bytes(s)); }

// RAII file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Temp files: pack files being written are ".tmp-<random>" in the directory of
// their final name; other files go through core's write_file_atomic
// (".<name>.dlc-tmp-<random>"). Both are leftovers once no writer runs.
inline bool is_temp_name(std::string_view name) {
  return name.rfind(".tmp-", 0) == 0 || is_atomic_temp_name(name);
}
fs::path temp_path_for(const fs::path& final_path);

// core's write_file_atomic for bytes (temp name beside path, fsync, rename,
// directory fsync). Throws Errc::io.
inline void write_atomic(const fs::path& path, ByteView data, unsigned mode = 0600) {
  write_file_atomic(path, {reinterpret_cast<const char*>(data.data()), data.size()}, mode);
}
Bytes read_file_bytes(const fs::path& path);  // throws Errc::io
void write_all(int fd, ByteView data, const fs::path& what);
void pread_all(int fd, std::uint8_t* buf, std::size_t len, std::uint64_t off, const fs::path& what);

// File names (no temp files, no directories) directly in dir, sorted.
std::vector<std::string> list_names(const fs::path& dir);

// Host and user names, RFC 3339 stamps, UTF-8 checks (file names that are not
// UTF-8 are stored hex-encoded) and \xNN escaping: core/text.h.
inline std::int64_t now_ns() { return now_unix_ns(); }

// Shape checks for documents read from a repository: each is validated where
// it is decoded, so that a damaged document is an Error there and never a JSON
// library exception (or a float-to-integer conversion) further on. Each check
// is true when obj (an object) lacks key or holds the named kind of value.
bool json_string_or_absent(const nlohmann::json& obj, const char* key);
bool json_uint_or_absent(const nlohmann::json& obj, const char* key,
                         std::uint64_t max = ~std::uint64_t{0});
bool json_int_or_absent(const nlohmann::json& obj, const char* key);  // signed or unsigned integer
bool json_hex_or_absent(const nlohmann::json& obj, const char* key, std::size_t bytes = 0);  // 0: any length
bool is_hex_string(const nlohmann::json& v, std::size_t bytes = 0);

}  // namespace dlc::backup
