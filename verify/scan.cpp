// Building manifests: walking a tree without following symlinks, reading
// metadata and xattrs, hashing content from storage on every core, and
// hashing volumes (block devices, images) per chunk through the io engine.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/io_engine.h"
#include "verify/verify.h"

namespace dlc::verify {

namespace {

constexpr std::size_t kReadBuffer = 4u << 20;
constexpr std::size_t kAlign = 4096;

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::int64_t ns_of(const timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

EntryType type_of(mode_t m) {
  if (S_ISREG(m)) return EntryType::file;
  if (S_ISDIR(m)) return EntryType::dir;
  if (S_ISLNK(m)) return EntryType::symlink;
  if (S_ISFIFO(m)) return EntryType::fifo;
  if (S_ISCHR(m)) return EntryType::chardev;
  if (S_ISBLK(m)) return EntryType::blockdev;
  return EntryType::socket;
}

bool excluded(const std::string& rel, const std::vector<std::string>& ex) {
  for (const auto& e : ex) {
    if (rel == e) return true;
    if (rel.size() > e.size() && rel.compare(0, e.size(), e) == 0 && rel[e.size()] == '/')
      return true;
  }
  return false;
}

Entry entry_from_stat(const struct stat& st, const std::string& rel) {
  Entry e;
  e.path = rel;
  e.type = type_of(st.st_mode);
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_ns = ns_of(st.st_mtim);
  e.dev = st.st_dev;
  e.ino = st.st_ino;
  e.nlink = st.st_nlink;
  e.ctime_ns = ns_of(st.st_ctim);
  if (e.type == EntryType::file) e.size = static_cast<std::uint64_t>(st.st_size);
  if (e.type == EntryType::chardev || e.type == EntryType::blockdev) e.rdev = st.st_rdev;
  return e;
}

std::string join(const std::string& rel, const char* name) {
  return rel == "." ? std::string(name) : rel + "/" + name;
}

// Reads [off, off+len) of fd into the hasher (holes are not passed here).
// With direct I/O the offsets are aligned down/up and the extra bytes skipped.
std::uint64_t hash_range(int fd, bool direct, std::uint64_t off, std::uint64_t len,
                         io::AlignedBuffer& buf, crypto::Hasher& h, const std::string& path) {
  std::uint64_t done = 0;
  while (done < len) {
    const std::uint64_t pos = off + done;
    const std::uint64_t start = direct ? pos & ~static_cast<std::uint64_t>(kAlign - 1) : pos;
    const std::uint64_t skip = pos - start;
    std::uint64_t want = std::min<std::uint64_t>(buf.size(), skip + (len - done));
    if (direct) want = (want + kAlign - 1) & ~static_cast<std::uint64_t>(kAlign - 1);
    want = std::min<std::uint64_t>(want, buf.size());
    const ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(start));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path);
    }
    if (static_cast<std::uint64_t>(r) <= skip) break;  // end of file (the file shrank)
    const std::uint64_t got = std::min<std::uint64_t>(static_cast<std::uint64_t>(r) - skip, len - done);
    h.update(crypto::ByteView(buf.data() + skip, got));
    done += got;
  }
  return done;
}

const std::vector<std::uint8_t>& zeros() {
  static const std::vector<std::uint8_t> z(1u << 20, 0);
  return z;
}

// Reads from storage wait on the device more than they hash: with no_cache,
// twice the cores (at least 4) keeps the device queue full.
unsigned thread_count(unsigned wanted, bool io_bound = true) {
  if (wanted) return wanted;
  const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  return io_bound ? std::max(4u, 2 * n) : n;
}

}  // namespace

std::vector<Xattr> read_xattrs(const fs::path& path) {
  std::vector<Xattr> out;
  std::vector<char> names(4096);
  ssize_t n;
  for (;;) {
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) break;
    if (errno == ERANGE) {
      const ssize_t need = ::llistxattr(path.c_str(), nullptr, 0);
      if (need < 0) throw_errno("cannot list extended attributes of", path.string());
      names.resize(static_cast<std::size_t>(need) + 1);
      continue;
    }
    if (errno == ENOTSUP || errno == ENODATA) return out;
    throw_errno("cannot list extended attributes of", path.string());
  }
  for (ssize_t i = 0; i < n;) {
    std::string name(names.data() + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.empty()) continue;
    std::string value(256, '\0');
    for (;;) {
      const ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (v >= 0) {
        value.resize(static_cast<std::size_t>(v));
        break;
      }
      if (errno == ERANGE) {
        const ssize_t need = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
        if (need < 0) throw_errno("cannot read extended attribute of", path.string());
        value.resize(static_cast<std::size_t>(need));
        continue;
      }
      if (errno == ENODATA) {
        value.clear();
        break;
      }
      throw_errno("cannot read extended attribute " + name + " of", path.string());
    }
    out.push_back({std::move(name), std::move(value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

Entry stat_entry(const fs::path& path, const std::string& rel, bool xattrs) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) throw_errno("cannot stat", path.string());
  Entry e = entry_from_stat(st, rel);
  if (e.type == EntryType::symlink) {
    std::string t(static_cast<std::size_t>(st.st_size) + 1, '\0');
    for (;;) {
      const ssize_t n = ::readlink(path.c_str(), t.data(), t.size());
      if (n < 0) throw_errno("cannot read symlink", path.string());
      if (static_cast<std::size_t>(n) < t.size()) {
        t.resize(static_cast<std::size_t>(n));
        break;
      }
      t.resize(t.size() * 2);
    }
    e.target = t;
    e.size = t.size();
  }
  if (xattrs) e.xattrs = read_xattrs(path);
  return e;
}

std::vector<Entry> walk_tree(const fs::path& root, bool xattrs, const std::vector<std::string>& exclude) {
  std::vector<Entry> out;
  out.push_back(stat_entry(root, ".", xattrs));
  if (out.back().type != EntryType::dir)
    throw Error(Errc::usage, "not a directory", root.string(), {}, "give a directory tree");
  std::vector<std::string> stack{"."};
  while (!stack.empty()) {
    const std::string rel = std::move(stack.back());
    stack.pop_back();
    const fs::path dir = rel == "." ? root : root / rel;
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) throw_errno("cannot open directory", dir.string());
    DIR* d = ::fdopendir(dfd);
    if (!d) {
      const int err = errno;
      ::close(dfd);
      throw_errno("cannot read directory", dir.string(), err);
    }
    std::vector<std::string> subdirs;
    for (;;) {
      errno = 0;
      dirent* de = ::readdir(d);
      if (!de) {
        if (errno != 0) {
          const int err = errno;
          ::closedir(d);
          throw_errno("cannot read directory", dir.string(), err);
        }
        break;
      }
      if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
      const std::string child = join(rel, de->d_name);
      if (excluded(child, exclude)) continue;
      struct stat st{};
      if (::fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        const int err = errno;
        if (err == ENOENT) continue;  // vanished while walking (live source)
        ::closedir(d);
        throw_errno("cannot stat", (dir / de->d_name).string(), err);
      }
      if (S_ISLNK(st.st_mode) || xattrs) {
        try {
          out.push_back(stat_entry(root / child, child, xattrs));
        } catch (const Error& e) {
          if (::faccessat(dfd, de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) != 0) continue;
          ::closedir(d);
          throw;
        }
      } else {
        out.push_back(entry_from_stat(st, child));
      }
      if (S_ISDIR(st.st_mode)) subdirs.push_back(child);
    }
    ::closedir(d);
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return out;
}

std::optional<std::vector<DataExtent>> data_extents(int fd, std::uint64_t size) {
  if (size == 0) return std::nullopt;
  const off_t hole = ::lseek(fd, 0, SEEK_HOLE);
  if (hole < 0 || static_cast<std::uint64_t>(hole) >= size) return std::nullopt;
  std::vector<DataExtent> out;
  off_t pos = 0;
  while (static_cast<std::uint64_t>(pos) < size) {
    const off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole remains
    off_t end = ::lseek(fd, data, SEEK_HOLE);
    if (end < 0) end = static_cast<off_t>(size);
    if (static_cast<std::uint64_t>(end) > size) end = static_cast<off_t>(size);
    if (end > data)
      out.push_back({static_cast<std::uint64_t>(data), static_cast<std::uint64_t>(end - data)});
    pos = end;
  }
  return out;
}

HashedFile hash_file(const fs::path& path, crypto::HashAlg alg, bool no_cache, bool sparse) {
  HashedFile r;
  int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME;
  int fd = ::open(path.c_str(), flags | (no_cache ? O_DIRECT : 0));
  if (fd < 0 && errno == EPERM) {
    flags &= ~O_NOATIME;
    fd = ::open(path.c_str(), flags | (no_cache ? O_DIRECT : 0));
  }
  bool direct = no_cache;
  if (fd < 0 && no_cache && errno == EINVAL) {
    fd = ::open(path.c_str(), flags);
    direct = false;
  }
  if (fd < 0) throw_errno("cannot open", path.string());
  Fd guard(fd);
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw_errno("cannot stat", path.string());
  if (!S_ISREG(st.st_mode))
    throw Error(Errc::io, "not a regular file", path.string(), {}, {});
  const auto size = static_cast<std::uint64_t>(st.st_size);
  r.read_method = direct ? "direct" : (no_cache ? "fadvise-dontneed" : "cached");
  if (no_cache && !direct) {
    ::fdatasync(fd);  // write back dirty pages so that dropping the cache drops everything
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  }
  if (!no_cache) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  thread_local io::AlignedBuffer buf(kReadBuffer);
  crypto::Hasher h(alg);
  const auto ext = data_extents(fd, size);
  std::vector<DataExtent> ranges = ext ? *ext : std::vector<DataExtent>{{0, size}};
  std::uint64_t pos = 0;
  bool short_read = false;
  for (const auto& d : ranges) {
    while (pos < d.offset) {  // a hole: zeros
      const std::uint64_t n = std::min<std::uint64_t>(d.offset - pos, zeros().size());
      h.update(crypto::ByteView(zeros().data(), n));
      pos += n;
    }
    if (d.length == 0) continue;
    const std::uint64_t got = hash_range(fd, direct, d.offset, d.length, buf, h, path.string());
    r.bytes += got;
    pos += got;
    if (got < d.length) {
      short_read = true;
      break;
    }
  }
  while (!short_read && pos < size) {
    const std::uint64_t n = std::min<std::uint64_t>(size - pos, zeros().size());
    h.update(crypto::ByteView(zeros().data(), n));
    pos += n;
  }
  if (short_read)
    throw Error(Errc::io, "file changed while it was read", path.string(),
                "it is shorter than its size", "quiesce the source and run again");
  if (no_cache && !direct) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  r.digest = h.final();
  if (sparse) r.sparse = ext;
  return r;
}

namespace {

Manifest build_volume(const ScanOptions& o) {
  io::OpenOptions oo;
  oo.mode = io::OpenMode::read;
  oo.direct = o.no_cache;
  io::File probe = io::File::open(o.root.string(), oo);
  const std::uint64_t size = o.volume_length ? std::min(o.volume_length, probe.size()) : probe.size();
  const std::uint64_t chunk = o.chunk_size ? o.chunk_size : (32u << 20);
  if (chunk % 4096 != 0) throw Error(Errc::usage, "chunk size must be a multiple of 4096");
  const std::uint64_t nchunks = (size + chunk - 1) / chunk;
  std::vector<std::string> hashes(nchunks);
  const unsigned threads = std::min<unsigned>(thread_count(o.threads), std::max<std::uint64_t>(1, nchunks));
  std::atomic<std::uint64_t> next{0}, done_bytes{0};
  std::mutex err_mu;
  std::exception_ptr err;
  const int task = o.progress ? o.progress->begin("hashing " + o.root.string(), size) : -1;
  const std::string method = probe.direct() ? "direct" : (o.no_cache ? "fadvise-dontneed" : "cached");
  auto worker = [&] {
    try {
      io::File f = io::File::open(o.root.string(), oo);
      if (o.no_cache && !f.direct()) {
        ::posix_fadvise(f.fd(), 0, 0, POSIX_FADV_DONTNEED);
      }
      const std::uint64_t lbs = f.direct() ? f.logical_block_size() : 1;
      io::EngineOptions eo;
      eo.queue_depth = 8;
      io::Engine engine(eo);
      for (;;) {
        if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted");
        const std::uint64_t i = next.fetch_add(1);
        if (i >= nchunks) break;
        {
          std::lock_guard<std::mutex> lk(err_mu);
          if (err) break;
        }
        const std::uint64_t off = i * chunk;
        const std::uint64_t len = std::min(chunk, size - off);
        const std::uint64_t aligned = len / lbs * lbs;
        crypto::Hasher h(o.alg);
        if (aligned) {
          io::Extent ext{off, aligned};
          engine.read(f, std::span<const io::Extent>(&ext, 1),
                      [&](std::uint64_t, std::span<const std::uint8_t> b) { h.update(b); });
        }
        if (aligned < len) {  // the unaligned tail of an image file
          io::AlignedBuffer tail(static_cast<std::size_t>((lbs > 4096 ? lbs : 4096)));
          const ssize_t r = ::pread(f.fd(), tail.data(), tail.size(), static_cast<off_t>(off + aligned));
          if (r < static_cast<ssize_t>(len - aligned)) throw_errno("cannot read", o.root.string());
          h.update(crypto::ByteView(tail.data(), len - aligned));
        }
        hashes[i] = crypto::to_hex(h.final());
        const std::uint64_t d = done_bytes.fetch_add(len) + len;
        if (o.progress) o.progress->update(task, d);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_mu);
      if (!err) err = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (o.progress) o.progress->end(task, !err);
  if (err) std::rethrow_exception(err);

  Manifest m;
  m.kind = "volume";
  m.alg = o.alg;
  m.root = o.root.string();
  m.created = dlc::now_rfc3339();
  m.host = host_name();
  m.tool = std::string("dlc ") + DLC_VERSION;
  m.read_method = method;
  m.xattrs = false;
  m.sparse = false;
  Entry e;
  e.path = ".";
  e.type = EntryType::volume;
  e.size = size;
  e.chunk_size = chunk;
  e.chunks = std::move(hashes);
  e.hash = volume_hash(e.chunks, o.alg);
  m.entries.push_back(std::move(e));
  finalize(m);
  return m;
}

}  // namespace

Manifest build_manifest(const ScanOptions& o) {
  struct stat st{};
  if (::stat(o.root.c_str(), &st) != 0) throw_errno("cannot open", o.root.string());
  if (S_ISBLK(st.st_mode) || (o.volume && S_ISREG(st.st_mode))) return build_volume(o);
  if (!S_ISDIR(st.st_mode))
    throw Error(Errc::usage, "not a directory, block device or image", o.root.string(), {},
                "give a directory, or pass --volume for an image file");
  Manifest m;
  m.kind = "tree";
  m.alg = o.alg;
  m.root = fs::absolute(o.root).lexically_normal().string();
  m.created = dlc::now_rfc3339();
  m.host = host_name();
  m.tool = std::string("dlc ") + DLC_VERSION;
  m.xattrs = o.xattrs;
  m.sparse = o.sparse;
  m.entries = walk_tree(o.root, o.xattrs, o.exclude);

  // Content: one read per inode, biggest files first so both cores finish together.
  std::vector<std::size_t> work;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::size_t> first_of;
  std::vector<std::pair<std::size_t, std::size_t>> copies;  // (entry, entry it shares an inode with)
  std::uint64_t total = 0;
  std::string known_method;  // the weakest way known content was read (not "direct")
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    Entry& e = m.entries[i];
    if (e.type != EntryType::file) continue;
    if (o.known) {
      if (auto k = o.known(e)) {
        e.hash = k->hash;
        if (o.sparse) e.sparse = k->sparse;
        if (!k->read_method.empty() && k->read_method != "direct") known_method = k->read_method;
        continue;
      }
    }
    if (e.nlink > 1) {
      auto [it, fresh] = first_of.emplace(std::make_pair(e.dev, e.ino), i);
      if (!fresh) {
        copies.emplace_back(i, it->second);
        continue;
      }
    }
    work.push_back(i);
    total += e.size;
  }
  std::sort(work.begin(), work.end(),
            [&](std::size_t a, std::size_t b) { return m.entries[a].size > m.entries[b].size; });
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::mutex mu;
  std::exception_ptr err;
  std::string method = o.no_cache ? "direct" : "cached";
  if (o.no_cache && !known_method.empty()) method = known_method;
  const int task = o.progress ? o.progress->begin("hashing " + o.root.string(), total) : -1;
  auto worker = [&] {
    try {
      for (;;) {
        if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted");
        {
          std::lock_guard<std::mutex> lk(mu);
          if (err) return;
        }
        const std::size_t k = next.fetch_add(1);
        if (k >= work.size()) return;
        Entry& e = m.entries[work[k]];
        const HashedFile h = hash_file(o.root / e.path, o.alg, o.no_cache, o.sparse);
        e.hash = crypto::to_hex(h.digest);
        e.sparse = h.sparse;
        if (h.read_method != "direct" && o.no_cache) {
          std::lock_guard<std::mutex> lk(mu);
          method = h.read_method;
        }
        const std::uint64_t d = done.fetch_add(e.size) + e.size;
        if (o.progress) o.progress->update(task, d);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!err) err = std::current_exception();
    }
  };
  const unsigned threads = std::min<std::size_t>(thread_count(o.threads, o.no_cache), std::max<std::size_t>(1, work.size()));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (o.progress) o.progress->end(task, !err);
  if (err) std::rethrow_exception(err);
  for (auto [i, src] : copies) {
    m.entries[i].hash = m.entries[src].hash;
    m.entries[i].sparse = m.entries[src].sparse;
  }
  m.read_method = method;
  finalize(m);
  return m;
}

}  // namespace dlc::verify
