// The local destination: writes below a root directory, every path resolved
// with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) so that a name can never
// lead outside the root (the remote receiver writes through this too). Files
// go to a temporary name in their directory (writeback started as soon as a
// file is complete, sync_file_range) and are renamed into place by commit(),
// which then makes the batch durable with one parallel wave of fdatasync
// (files) and fsync (their directories) through io_uring, and queues the
// files to be re-read from storage (O_DIRECT) and hashed.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <liburing.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/io_engine.h"
#include "migrate/destination.h"

namespace dlc::migrate {

namespace {

using verify::Entry;
using verify::EntryType;

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) ::close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
};

bool safe_rel(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  if (rel == ".") return true;
  std::size_t pos = 0;
  while (pos <= rel.size()) {
    const std::size_t slash = rel.find('/', pos);
    const std::string part = rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) return false;
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return true;
}

std::pair<std::string, std::string> split(const std::string& rel) {
  const auto slash = rel.rfind('/');
  if (slash == std::string::npos) return {".", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

timespec ts_of(std::int64_t ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1000000000LL);
  t.tv_nsec = static_cast<long>(ns % 1000000000LL);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000L;
    --t.tv_sec;
  }
  return t;
}

std::string proc_path(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// Makes every descriptor durable at once: fdatasync for files, fsync for
// directories, submitted together through io_uring so the filesystem commits
// them in as few journal transactions as it can (threads where io_uring is
// unavailable). Only our own files are flushed, unlike syncfs, which would
// also write back whatever else is dirty on a shared filesystem.
// Returns the first failure as (errno, index), or (0, 0).
std::pair<int, std::size_t> sync_all(const std::vector<std::pair<int, bool>>& fds /* fd, is_dir */) {
  if (fds.empty()) return {0, 0};
  static const bool uring = io::io_uring_available();
  if (uring) {
    io_uring ring{};
    const unsigned depth = static_cast<unsigned>(std::min<std::size_t>(fds.size(), 256));
    if (io_uring_queue_init(depth, &ring, 0) == 0) {
      std::pair<int, std::size_t> first{0, 0};
      std::size_t next = 0, inflight = 0;
      while (next < fds.size() || inflight) {
        while (next < fds.size() && inflight < depth) {
          io_uring_sqe* sqe = io_uring_get_sqe(&ring);
          if (!sqe) break;
          io_uring_prep_fsync(sqe, fds[next].first, fds[next].second ? 0 : IORING_FSYNC_DATASYNC);
          io_uring_sqe_set_data64(sqe, next);
          ++next;
          ++inflight;
        }
        io_uring_submit_and_wait(&ring, 1);
        io_uring_cqe* cqe = nullptr;
        while (io_uring_peek_cqe(&ring, &cqe) == 0 && cqe) {
          if (cqe->res < 0 && first.first == 0) first = {-cqe->res, static_cast<std::size_t>(cqe->user_data)};
          io_uring_cqe_seen(&ring, cqe);
          --inflight;
        }
      }
      io_uring_queue_exit(&ring);
      return first;
    }
  }
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::pair<int, std::size_t> first{0, 0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < fds.size();) {
      const int rc = fds[i].second ? ::fsync(fds[i].first) : ::fdatasync(fds[i].first);
      if (rc != 0) {
        std::lock_guard<std::mutex> lk(mu);
        if (first.first == 0) first = {errno, i};
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::min<std::size_t>(8, fds.size()); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  return first;
}

class LocalDestination final : public Destination {
 public:
  LocalDestination(std::string root, LocalOptions o) : root_(std::move(root)), o_(o) {}
  ~LocalDestination() override { close(); }

  DestInfo info() override {
    DestInfo d;
    struct stat st{};
    d.exists = ::lstat(root_.c_str(), &st) == 0;
    if (d.exists) {
      if (!S_ISDIR(st.st_mode))
        throw Error(Errc::usage, "destination exists and is not a directory", root_, {},
                    "give a directory (a tree is copied into it)");
      DIR* dir = ::opendir(root_.c_str());
      if (!dir) throw_errno("cannot read destination", root_);
      while (dirent* de = ::readdir(dir)) {
        if (std::strcmp(de->d_name, ".") && std::strcmp(de->d_name, "..")) {
          d.empty = false;
          break;
        }
      }
      ::closedir(dir);
    }
    const std::string probe = existing_ancestor();
    struct statvfs vs{};
    if (::statvfs(probe.c_str(), &vs) == 0) {
      d.free_bytes = static_cast<std::uint64_t>(vs.f_bavail) * vs.f_frsize;
      d.free_unknown = vs.f_blocks == 0;
    }
    return d;
  }

  double measure_write_bps(std::uint64_t bytes) override {
    const std::string dir = existing_ancestor();
    std::string tmpl = dir + "/.dlc-preflight-XXXXXX";
    const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) return 0;
    Fd g(fd);
    ::unlink(tmpl.c_str());
    std::vector<std::uint8_t> buf(1u << 20);
    crypto::random_bytes(buf);
    const auto t0 = std::chrono::steady_clock::now();
    std::uint64_t done = 0;
    while (done < bytes) {
      const ssize_t w = ::write(fd, buf.data(), buf.size());
      if (w <= 0) return 0;
      done += static_cast<std::uint64_t>(w);
    }
    ::fdatasync(fd);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s > 0 ? static_cast<double>(done) / s : 0;
  }

  void prepare() override {
    std::error_code ec;
    if (!std::filesystem::exists(root_, ec)) {
      std::filesystem::create_directories(std::filesystem::path(root_).parent_path(), ec);
      if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("cannot create", root_);
    }
    const int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno("cannot open destination", root_);
    root_fd_ = Fd(fd);
    start_rereaders();
  }

  std::vector<Entry> list() override { return verify::walk_tree(root_, o_.xattrs); }

  void remove(const std::string& rel) override {
    check(rel);
    auto [parent, name] = split(rel);
    Fd p = open_dir(parent);
    remove_at(p.fd, name, rel);
    std::lock_guard<std::mutex> lk(mu_);
    reread_.erase(rel);
  }

  void make_dir(const std::string& rel) override {
    if (rel == ".") return;
    check(rel);
    auto [parent, name] = split(rel);
    Fd p = open_dir(parent);
    if (::mkdirat(p.fd, name.c_str(), 0700) != 0) {
      if (errno != EEXIST) throw_errno("cannot create directory", display(rel));
      struct stat st{};
      if (::fstatat(p.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
        remove_at(p.fd, name, rel);
        if (::mkdirat(p.fd, name.c_str(), 0700) != 0) throw_errno("cannot create directory", display(rel));
      }
    }
  }

  void make_node(const Entry& e) override {
    check(e.path);
    auto [parent, name] = split(e.path);
    Fd p = open_dir(parent);
    struct stat st{};
    if (::fstatat(p.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) remove_at(p.fd, name, e.path);
    int rc = 0;
    switch (e.type) {
      case EntryType::symlink: rc = ::symlinkat(e.target.c_str(), p.fd, name.c_str()); break;
      case EntryType::fifo: rc = ::mknodat(p.fd, name.c_str(), S_IFIFO | 0600, 0); break;
      case EntryType::chardev:
        rc = ::mknodat(p.fd, name.c_str(), S_IFCHR | 0600, static_cast<dev_t>(e.rdev));
        break;
      case EntryType::blockdev:
        rc = ::mknodat(p.fd, name.c_str(), S_IFBLK | 0600, static_cast<dev_t>(e.rdev));
        break;
      case EntryType::socket: rc = ::mknodat(p.fd, name.c_str(), S_IFSOCK | 0600, 0); break;
      default: throw Error(Errc::usage, "not a special file", display(e.path));
    }
    if (rc != 0) throw_errno("cannot create", display(e.path));
    if (::fchownat(p.fd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0) owner_warning(e.path);
    set_xattrs_path(proc_path(p.fd, name), e);
    if (e.type != EntryType::symlink && ::fchmodat(p.fd, name.c_str(), e.mode, 0) != 0)
      throw_errno("cannot set the mode of", display(e.path));
    const timespec times[2] = {{0, UTIME_OMIT}, ts_of(e.mtime_ns)};
    if (::utimensat(p.fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      throw_errno("cannot set the times of", display(e.path));
  }

  void make_link(const std::string& rel, const std::string& existing) override {
    check(rel);
    check(existing);
    auto [parent, name] = split(rel);
    auto [eparent, ename] = split(existing);
    Fd p = open_dir(parent);
    Fd ep = open_dir(eparent);
    struct stat a{}, b{};
    if (::fstatat(ep.fd, ename.c_str(), &b, AT_SYMLINK_NOFOLLOW) != 0)
      throw_errno("cannot link to", display(existing));
    if (::fstatat(p.fd, name.c_str(), &a, AT_SYMLINK_NOFOLLOW) == 0) {
      if (a.st_ino == b.st_ino && a.st_dev == b.st_dev) return;
      remove_at(p.fd, name, rel);
    }
    if (::linkat(ep.fd, ename.c_str(), p.fd, name.c_str(), 0) != 0)
      throw_errno("cannot create hard link", display(rel));
  }

  void set_meta(const Entry& e) override {
    check(e.path);
    Fd d = open_dir(e.path);
    if (::fchown(d.fd, e.uid, e.gid) != 0) owner_warning(e.path);
    set_xattrs_fd(d.fd, e);
    if (::fchmod(d.fd, e.mode) != 0) throw_errno("cannot set the mode of", display(e.path));
    const timespec times[2] = {{0, UTIME_OMIT}, ts_of(e.mtime_ns)};
    if (::futimens(d.fd, times) != 0) throw_errno("cannot set the times of", display(e.path));
  }

  void file_begin(std::uint32_t slot, const Entry& e) override {
    check(e.path);
    auto [parent, name] = split(e.path);
    Slot s;
    s.dir = open_dir(parent);
    s.name = name;
    s.rel = e.path;
    for (int attempt = 0; attempt < 10; ++attempt) {
      s.tmp = ".dlc-tmp." + crypto::to_hex(crypto::random_bytes(8));
      const int fd = ::openat(s.dir.fd, s.tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd >= 0) {
        s.fd = Fd(fd);
        break;
      }
      if (errno != EEXIST) throw_errno("cannot create a temporary file for", display(e.path));
    }
    if (s.fd.fd < 0) throw Error(Errc::io, "cannot create a temporary file for", display(e.path));
    std::lock_guard<std::mutex> lk(mu_);
    slots_[slot] = std::move(s);
  }

  void file_data(std::uint32_t slot, std::uint64_t offset, crypto::ByteView data, const std::string*) override {
    Slot& s = slot_of(slot);
    const std::uint64_t t0 = now_ns();
    write_all(s, offset, data.data(), data.size());
    write_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
  }

  void file_end(std::uint32_t slot, const Entry& e) override {
    Slot s;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = slots_.find(slot);
      if (it == slots_.end()) throw Error(Errc::io, "file_end without file_begin", display(e.path));
      s = std::move(it->second);
      slots_.erase(it);
    }
    const std::uint64_t t0 = now_ns();
    const int fd = s.fd.fd;
    if (::ftruncate(fd, static_cast<off_t>(e.size)) != 0) throw_errno("cannot size", display(e.path));
    if (::fchown(fd, e.uid, e.gid) != 0) owner_warning(e.path);
    set_xattrs_fd(fd, e);
    if (::fchmod(fd, e.mode) != 0) throw_errno("cannot set the mode of", display(e.path));
    const timespec times[2] = {{0, UTIME_OMIT}, ts_of(e.mtime_ns)};
    if (::futimens(fd, times) != 0) throw_errno("cannot set the times of", display(e.path));
    // Start writing the data back now, asynchronously: by the time the batch
    // is synced most of it is on the device, and the sync has little left.
    ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    s.fd = Fd();
    meta_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lk(mu_);
    pending_.push_back(std::move(s));
  }

  // Hands the batch to the committer thread and returns: renames and the
  // batch's syncfs then overlap the sending of the next batch.
  void commit(bool reread) override {
    std::lock_guard<std::mutex> lk(mu_);
    if (pending_.empty()) return;
    batches_.push_back({std::move(pending_), reread});
    pending_.clear();
    cv_.notify_all();
  }

  void results(bool wait, const TakeResults& take) override {
    std::vector<Committed> out;
    std::string error;
    Errc code = Errc::io;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (wait)
        idle_cv_.wait(lk, [&] { return (batches_.empty() && !committing_ && queue_.empty() && busy_ == 0) || !commit_error_.empty(); });
      out.swap(done_);
      error = commit_error_;
      code = commit_code_;
    }
    take(out);
    if (!error.empty()) throw Error(code, error);
  }

  nlohmann::json profile() override {
    auto ms = [](const std::atomic<std::uint64_t>& ns) { return ns.load() / 1000000; };
    return {{"write_ms", ms(write_ns_)},   {"metadata_ms", ms(meta_ns_)}, {"rename_ms", ms(rename_ns_)},
            {"sync_ms", ms(sync_ns_)},     {"reread_ms", ms(reread_ns_)}, {"reread_bytes", reread_bytes_.load()}};
  }

  verify::Manifest scan() override {
    verify::ScanOptions so;
    so.root = root_;
    so.alg = o_.alg;
    so.threads = o_.threads;
    so.no_cache = true;
    so.xattrs = o_.xattrs;
    so.sparse = o_.sparse;
    std::map<std::string, Known> known;
    {
      std::lock_guard<std::mutex> lk(mu_);
      known = reread_;
    }
    so.known = [&known](const Entry& e) -> std::optional<verify::KnownContent> {
      auto it = known.find(e.path);
      if (it == known.end()) return std::nullopt;
      const Known& k = it->second;
      if (k.ino != e.ino || k.size != e.size || k.mtime_ns != e.mtime_ns || k.ctime_ns != e.ctime_ns)
        return std::nullopt;
      return k.content;
    };
    return verify::build_manifest(so);
  }

  void close() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (committer_.joinable()) committer_.join();
    for (auto& t : rereaders_) t.join();
    rereaders_.clear();
    for (auto& b : batches_)
      for (auto& s : b.slots) ::unlinkat(s.dir.fd, s.tmp.c_str(), 0);
    batches_.clear();
    for (auto& s : pending_) ::unlinkat(s.dir.fd, s.tmp.c_str(), 0);
    pending_.clear();
    for (auto& [k, s] : slots_) ::unlinkat(s.dir.fd, s.tmp.c_str(), 0);
    slots_.clear();
  }

 private:
  struct Slot {
    Fd dir;
    Fd fd;
    std::string name, tmp, rel;
  };

  void write_all(Slot& s, std::uint64_t offset, const std::uint8_t* p, std::uint64_t n) {
    std::uint64_t done = 0;
    while (done < n) {
      const ssize_t w = ::pwrite(s.fd.fd, p + done, n - done, static_cast<off_t>(offset + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw_errno("cannot write", display(s.rel));
      }
      if (w == 0) throw Error(Errc::io, "cannot write", display(s.rel), "no progress");
      done += static_cast<std::uint64_t>(w);
    }
  }
  struct Known {
    std::uint64_t ino = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    verify::KnownContent content;
  };

  std::string display(const std::string& rel) const {
    return verify::printable(rel == "." ? root_ : root_ + "/" + rel);
  }

  void check(const std::string& rel) const {
    if (!safe_rel(rel))
      throw Error(Errc::refused, "refusing a path that leaves the destination", verify::printable(rel), {},
                  "paths must be relative, without '.' or '..' components");
  }

  std::string existing_ancestor() const {
    std::filesystem::path p = std::filesystem::absolute(root_);
    std::error_code ec;
    while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p != p.parent_path())
      p = p.parent_path();
    return p.string();
  }

  Fd open_dir(const std::string& rel) const {
    if (root_fd_.fd < 0) throw Error(Errc::io, "destination not prepared", root_);
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, root_fd_.fd, rel.c_str(), &how, sizeof how);
    if (fd < 0) throw_errno("cannot open directory", display(rel));
    return Fd(static_cast<int>(fd));
  }

  Slot& slot_of(std::uint32_t slot) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = slots_.find(slot);
    if (it == slots_.end()) throw Error(Errc::io, "file data without file_begin");
    return it->second;
  }

  void remove_at(int dirfd, const std::string& name, const std::string& rel) {
    struct stat st{};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      throw_errno("cannot stat", display(rel));
    }
    if (S_ISDIR(st.st_mode)) {
      const int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) throw_errno("cannot open directory", display(rel));
      DIR* d = ::fdopendir(fd);
      if (!d) {
        ::close(fd);
        throw_errno("cannot read directory", display(rel));
      }
      std::vector<std::string> names;
      while (dirent* de = ::readdir(d))
        if (std::strcmp(de->d_name, ".") && std::strcmp(de->d_name, "..")) names.emplace_back(de->d_name);
      for (const auto& n : names) remove_at(::dirfd(d), n, rel + "/" + n);
      ::closedir(d);
      if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) throw_errno("cannot remove", display(rel));
    } else if (::unlinkat(dirfd, name.c_str(), 0) != 0) {
      throw_errno("cannot remove", display(rel));
    }
  }

  void owner_warning(const std::string& rel) {
    notice_once("migrate-owner", "cannot set the owner of " + display(rel) + ": " + std::strerror(errno) +
                                     " (run as root to preserve owners; verification will report it)");
  }

  void set_xattrs_fd(int fd, const Entry& e) {
    for (const auto& x : e.xattrs)
      if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
        xattr_warning(e.path, x.name);
  }
  void set_xattrs_path(const std::string& path, const Entry& e) {
    for (const auto& x : e.xattrs)
      if (::lsetxattr(path.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
        xattr_warning(e.path, x.name);
  }
  void xattr_warning(const std::string& rel, const std::string& name) {
    notice_once("migrate-xattr-" + name, "cannot set extended attribute " + verify::printable(name) +
                                             " on " + display(rel) + ": " + std::strerror(errno) +
                                             " (verification will report it)");
  }

  struct Batch {
    std::vector<Slot> slots;
    bool reread = false;
  };

  void commit_loop() {
    for (;;) {
      Batch b;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !batches_.empty(); });
        if (batches_.empty()) return;
        b = std::move(batches_.front());
        batches_.pop_front();
        committing_ = true;
      }
      try {
        const std::uint64_t t0 = now_ns();
        for (auto& s : b.slots) {
          struct stat st{};
          if (::fstatat(s.dir.fd, s.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            remove_at(s.dir.fd, s.name, s.rel);
          if (::renameat(s.dir.fd, s.tmp.c_str(), s.dir.fd, s.name.c_str()) != 0)
            throw_errno("cannot rename into place", display(s.rel));
        }
        rename_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
        const std::uint64_t t1 = now_ns();
        // One wave of syncs for the batch: every file's data and inode
        // (fdatasync) and every directory holding a rename (fsync). The
        // caller's journal records a file only after its result comes back,
        // so a crash before this returns leaves files that are simply sent again.
        std::vector<std::pair<int, bool>> fds;
        std::vector<std::string> names;
        std::vector<Fd> opened;
        std::set<std::pair<dev_t, ino_t>> dirs;
        for (auto& s : b.slots) {
          const int fd = ::openat(s.dir.fd, s.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0) throw_errno("cannot open to sync", display(s.rel));
          opened.emplace_back(fd);
          fds.emplace_back(fd, false);
          names.push_back(s.rel);
          struct stat st{};
          if (::fstat(s.dir.fd, &st) == 0 && dirs.insert({st.st_dev, st.st_ino}).second) {
            fds.emplace_back(s.dir.fd, true);
            names.push_back(split(s.rel).first);
          }
        }
        const auto [err, at] = sync_all(fds);
        if (err) throw_errno("cannot sync", display(names[at]), err);
        opened.clear();
        sync_ns_.fetch_add(now_ns() - t1, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lk(mu_);
        for (auto& s : b.slots) {
          if (b.reread) {
            queue_.push_back(s.rel);
          } else {
            done_.push_back({s.rel, {}, {}});
            reread_.erase(s.rel);
          }
        }
        committing_ = false;
      } catch (const Error& e) {
        std::lock_guard<std::mutex> lk(mu_);
        if (commit_error_.empty()) {
          commit_error_ = e.what();
          commit_code_ = e.code();
        }
        committing_ = false;
        for (auto& s : b.slots) ::unlinkat(s.dir.fd, s.tmp.c_str(), 0);
      }
      cv_.notify_all();
      idle_cv_.notify_all();
    }
  }

  void start_rereaders() {
    committer_ = std::thread([this] { commit_loop(); });
    // Re-reads wait on the device more than they hash: twice the cores keeps it busy.
    const unsigned n = o_.threads ? o_.threads : std::max(4u, 2 * std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) rereaders_.emplace_back([this] { reread_loop(); });
  }

  void reread_loop() {
    for (;;) {
      std::string rel;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        rel = std::move(queue_.front());
        queue_.pop_front();
        ++busy_;
      }
      Committed c;
      c.path = rel;
      Known k;
      try {
        const std::string path = root_ + "/" + rel;
        const std::uint64_t t0 = now_ns();
        const verify::HashedFile h = verify::hash_file(path, o_.alg, true, o_.sparse);
        reread_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
        reread_bytes_.fetch_add(h.bytes, std::memory_order_relaxed);
        struct stat st{};
        if (::lstat(path.c_str(), &st) != 0) throw_errno("cannot stat", display(rel));
        c.hash = crypto::to_hex(h.digest);
        k.ino = st.st_ino;
        k.size = static_cast<std::uint64_t>(st.st_size);
        k.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
        k.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec;
        k.content = {c.hash, h.sparse, h.read_method};
      } catch (const std::exception& e) {
        c.error = e.what();
      }
      std::lock_guard<std::mutex> lk(mu_);
      if (c.error.empty()) reread_[rel] = k;
      done_.push_back(std::move(c));
      --busy_;
      idle_cv_.notify_all();
    }
  }

  std::string root_;
  LocalOptions o_;
  Fd root_fd_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::map<std::uint32_t, Slot> slots_;
  std::vector<Slot> pending_;
  std::deque<Batch> batches_;
  bool committing_ = false;
  std::string commit_error_;
  Errc commit_code_ = Errc::io;
  std::thread committer_;
  std::deque<std::string> queue_;
  std::vector<Committed> done_;
  std::map<std::string, Known> reread_;
  std::atomic<std::uint64_t> write_ns_{0}, meta_ns_{0}, rename_ns_{0}, sync_ns_{0}, reread_ns_{0}, reread_bytes_{0};
  unsigned busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> rereaders_;
};

}  // namespace

std::unique_ptr<Destination> make_local_destination(const std::string& root, const LocalOptions& o) {
  return std::make_unique<LocalDestination>(root, o);
}

}  // namespace dlc::migrate
