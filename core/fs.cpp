#include "core/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include "core/error.h"

namespace dlc {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kTempMarker = ".dlc-tmp-";

// The process umask without changing it (umask(2) would, for a moment, for
// every thread): the Umask line of /proc/self/status (Linux 4.7+).
mode_t current_umask() {
  if (std::FILE* f = std::fopen("/proc/self/status", "re")) {
    char line[256];
    unsigned mask = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "Umask: %o", &mask) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found) return static_cast<mode_t>(mask);
  }
  return 022;  // the usual default; never looser than what most systems set
}
}  // namespace

bool is_atomic_temp_name(std::string_view name) {
  return name.size() > kTempMarker.size() + 1 && name.front() == '.' &&
         name.find(kTempMarker) != std::string_view::npos;
}

void fsync_dir(const fs::path& dir) {
  const fs::path d = dir.empty() ? fs::path(".") : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory", d.string());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_errno("cannot fsync directory", d.string(), err);
}

void write_file_atomic(const fs::path& path, std::string_view bytes, unsigned mode,
                       ParentDir parent) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (parent == ParentDir::create) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      fs::create_directories(dir, ec);
      if (ec)
        throw Error(Errc::io, "cannot create directory", dir.string(), ec.message(),
                    "check the permissions of its parent");
      ::chmod(dir.c_str(), 0700);
    }
  }
  std::string name = ".";
  name.append(path.filename().native());
  name.append(kTempMarker);
  name.append("XXXXXX");
  std::string tmp = (dir / name).native();
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0)
    throw_errno("cannot create a temporary file in", dir.string(), errno,
                "check that the directory exists, its permissions and free space");
  auto fail = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw_errno(what, path.string(), err, "check free space and permissions");
  };
  const mode_t m = mode == kModeFromUmask ? (0666 & ~current_umask()) : static_cast<mode_t>(mode);
  if (::fchmod(fd, m) != 0) fail("cannot set the permissions of", errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) fail("cannot fsync", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_errno("cannot write", path.string(), err, "check free space and permissions");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_errno("cannot rename the new file over", path.string(), err);
  }
  fsync_dir(dir);
}

}  // namespace dlc
