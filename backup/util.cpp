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
