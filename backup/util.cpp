#include "backup/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "core/error.h"

namespace dlc::backup {

std::string hex(const BlobId& id) { return crypto::to_hex(id); }

BlobId blob_id_from_hex(std::string_view h) {
  BlobId id{};
  if (h.size() != 64) throw Error(Errc::io, "malformed object id", std::string(h));
  Bytes b;
  try {
    b = crypto::from_hex(h);
  } catch (const Error&) {
    throw Error(Errc::io, "malformed object id", std::string(h));
  }
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

std::string random_hex_id(std::size_t bytes) { return crypto::to_hex(crypto::random_bytes(bytes)); }

Fd::~Fd() { reset(); }
Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset(o.fd_);
    o.fd_ = -1;
  }
  return *this;
}
void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

fs::path temp_path_for(const fs::path& final_path) {
  return final_path.parent_path() / (".tmp-" + random_hex_id(12));
}

void fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open directory", dir.string());
  if (::fsync(fd.get()) != 0) throw_errno("cannot fsync directory", dir.string());
}

void write_all(int fd, ByteView data, const fs::path& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", what.string(), errno, "check free space and permissions");
    }
    done += static_cast<std::size_t>(w);
  }
}

void pread_all(int fd, std::uint8_t* buf, std::size_t len, std::uint64_t off, const fs::path& what) {
  std::size_t done = 0;
  while (done < len) {
    ssize_t r = ::pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", what.string());
    }
    if (r == 0)
      throw Error(Errc::io, "unexpected end of file", what.string(),
                  "wanted " + std::to_string(len) + " bytes at offset " + std::to_string(off));
    done += static_cast<std::size_t>(r);
  }
}

void write_atomic(const fs::path& path, ByteView data, unsigned mode) {
  const fs::path tmp = temp_path_for(path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) throw_errno("cannot create", tmp.string(), errno, "check permissions and free space");
  try {
    write_all(fd.get(), data, tmp);
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync", tmp.string());
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot rename", tmp.string());
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_dir(path.parent_path());
}

Bytes read_file_bytes(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", path.string());
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", path.string());
  Bytes out(static_cast<std::size_t>(st.st_size));
  if (!out.empty()) pread_all(fd.get(), out.data(), out.size(), 0, path);
  return out;
}

std::vector<std::string> list_names(const fs::path& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return names;
    throw_errno("cannot list", dir.string());
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || is_temp_name(n)) continue;
    if (e->d_type == DT_DIR) continue;
    names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string username() {
  if (passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return std::to_string(::geteuid());
}

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string rfc3339(std::int64_t unix_ns) {
  std::time_t secs = static_cast<std::time_t>(unix_ns / 1000000000);
  long frac = static_cast<long>(unix_ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

namespace {
// Length of the valid UTF-8 sequence at s[i] (RFC 3629), 0 when invalid.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u;
  };
  auto cont = [&](std::size_t k) { return byte(k) >= 0x80 && byte(k) <= 0xBF; };
  const unsigned c = byte(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return byte(1) >= lo && byte(1) <= hi && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return byte(1) >= lo && byte(1) <= hi && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}
}  // namespace

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string printable_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", static_cast<unsigned char>(s[i]));
      out += esc;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool is_hex_string(const nlohmann::json& v, std::size_t bytes) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() % 2 != 0 || (bytes != 0 && s.size() != 2 * bytes)) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool json_string_or_absent(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_string();
}

bool json_uint_or_absent(const nlohmann::json& obj, const char* key, std::uint64_t max) {
  auto it = obj.find(key);
  return it == obj.end() || (it->is_number_unsigned() && it->get<std::uint64_t>() <= max) ||
         (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() >= 0 &&
          static_cast<std::uint64_t>(it->get<std::int64_t>()) <= max);
}

bool json_int_or_absent(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_number_integer();
}

bool json_hex_or_absent(const nlohmann::json& obj, const char* key, std::size_t bytes) {
  auto it = obj.find(key);
  return it == obj.end() || is_hex_string(*it, bytes);
}

}  // namespace dlc::backup
