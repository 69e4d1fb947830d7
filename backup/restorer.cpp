// The restorer: recreates a snapshot under a target directory. Directories
// first, then file contents on all cores (one file per task; each task keeps
// its pack open across consecutive blobs), then hardlinks, then directory
// metadata deepest first (so writing children does not disturb their times).
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "backup/backup.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

namespace {

timespec to_ts(std::int64_t ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1000000000);
  t.tv_nsec = static_cast<long>(ns % 1000000000);
  return t;
}

// Applies owner, mode, xattrs and times. Owner only as root (like tar).
void apply_metadata(const fs::path& p, const json& n, std::vector<std::string>& warnings, std::mutex& mu) {
  const std::string type = n.value("type", "");
  auto warn = [&](const std::string& w) {
    std::lock_guard<std::mutex> lock(mu);
    warnings.push_back(w);
  };
  if (::geteuid() == 0) {
    if (::lchown(p.c_str(), n.value("uid", 0u), n.value("gid", 0u)) != 0)
      warn("cannot set owner of " + p.string() + ": " + std::strerror(errno));
  }
  if (n.contains("xattrs")) {
    for (const auto& [k, v] : n["xattrs"].items()) {
      const Bytes val = crypto::from_hex(v.get<std::string>());
      if (::lsetxattr(p.c_str(), k.c_str(), val.data(), val.size(), 0) != 0)
        warn("cannot set xattr " + k + " on " + p.string() + ": " + std::strerror(errno));
    }
  }
  if (type != "symlink" && ::chmod(p.c_str(), n.value("mode", 0644u)) != 0)
    warn("cannot set mode of " + p.string() + ": " + std::strerror(errno));
  timespec ts[2] = {to_ts(n.value("atime", std::int64_t{0})), to_ts(n.value("mtime", std::int64_t{0}))};
  if (::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    warn("cannot set times of " + p.string() + ": " + std::strerror(errno));
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

void write_at(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off, const fs::path& what) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw_errno("cannot write", what.string());
    done += static_cast<std::size_t>(w);
  }
}

struct FileTask {
  fs::path path;
  json node;  // a copy: the tree documents are gone after the walk
};

class Restorer {
 public:
  Restorer(const Repository& repo, const RestoreOptions& opts, RestoreResult& result)
      : repo_(repo), opts_(opts), result_(result) {}

  void run(const BlobId& root) {
    // Pass 1 (this thread): directories, symlinks, special files; collect files.
    walk_tree(repo_, root, [&](const std::string& path, const json& n) { return visit(path, n); });
    // Pass 2: file contents on all cores.
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> threads;
    const unsigned nthreads = std::max(1u, std::min<unsigned>(repo_.threads(), static_cast<unsigned>(files_.size())));
    for (unsigned t = 0; t < nthreads; ++t) {
      threads.emplace_back([&] {
        PackCache cache;
        for (std::size_t i; (i = next.fetch_add(1)) < files_.size();) {
          if (stop_requested().load()) break;
          restore_file(files_[i], cache);
        }
      });
    }
    for (auto& t : threads) t.join();
    if (stop_requested().load())
      throw Error(Errc::interrupted, "restore interrupted", opts_.target.string(), {}, "run the restore again");
    // Pass 3: hardlinks to files restored above.
    for (const auto& [path, first] : links_) {
      ::unlink(path.c_str());
      if (::link(first.c_str(), path.c_str()) != 0)
        result_.failed.push_back(path.string() + ": cannot create hardlink: " + std::strerror(errno));
      else
        ++result_.files;
    }
    // Pass 4: directory metadata, deepest first.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) apply_metadata(it->first, it->second, result_.warnings, mu_);
  }

 private:
  struct PackCache {
    const PackInfo* pack = nullptr;
    Fd fd;
    std::optional<crypto::Aead> aead;
    Bytes buf;
  };

  bool included(const std::string& path) const {
    if (opts_.includes.empty()) return true;
    for (const auto& pat : opts_.includes) {
      if (::fnmatch(pat.c_str(), path.c_str(), 0) == 0) return true;
      // a pattern naming a directory includes what is below it
      if (path.size() > pat.size() && path.compare(0, pat.size(), pat) == 0 && path[pat.size()] == '/') return true;
    }
    return false;
  }
  bool may_contain_included(const std::string& dir) const {
    if (opts_.includes.empty()) return true;
    for (const auto& pat : opts_.includes) {
      const std::string prefix = dir + "/";
      if (pat.compare(0, prefix.size(), prefix) == 0) return true;
      if (pat.find_first_of("*?[") != std::string::npos) return true;  // a glob may match below
    }
    return false;
  }

  fs::path target_of(const std::string& path) const { return opts_.target / path.substr(1); }

  void ensure_parent(const fs::path& p) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw Error(Errc::io, "cannot create directory", p.parent_path().string(), ec.message());
  }

  bool visit(const std::string& path, const json& n) {
    const std::string type = n.value("type", "");
    const bool inc = included(path);
    const fs::path p = target_of(path);
    if (type == "dir") {
      if (!inc && !may_contain_included(path)) return false;
      if (inc) {
        std::error_code ec;
        fs::create_directories(p, ec);
        if (ec) throw Error(Errc::io, "cannot create directory", p.string(), ec.message());
        dirs_.emplace_back(p, n);
        ++result_.dirs;
      }
      return true;
    }
    if (!inc) return false;
    ensure_parent(p);
    if (type == "file") {
      if (n.value("links", 1u) > 1) {
        const std::pair<std::uint64_t, std::uint64_t> key{n.value("dev", std::uint64_t{0}), n.value("inode", std::uint64_t{0})};
        auto it = hardlinks_.find(key);
        if (it != hardlinks_.end()) {
          links_.emplace_back(p, it->second);
          return false;
        }
        hardlinks_.emplace(key, p);
      }
      files_.push_back({p, n});
      return false;
    }
    ::unlink(p.c_str());
    int rc = 0;
    if (type == "symlink") {
      std::string target;
      if (n.contains("target")) {
        target = n["target"].get<std::string>();
      } else {
        const Bytes b = crypto::from_hex(n.value("target_hex", ""));
        target.assign(b.begin(), b.end());
      }
      rc = ::symlink(target.c_str(), p.c_str());
    } else if (type == "fifo") {
      rc = ::mkfifo(p.c_str(), 0600);
    } else if (type == "chardev" || type == "blockdev") {
      rc = ::mknod(p.c_str(), (type == "chardev" ? S_IFCHR : S_IFBLK) | 0600, n.value("rdev", dev_t{0}));
    } else {
      result_.warnings.push_back("not restored (" + type + "): " + path);
      return false;
    }
    if (rc != 0) {
      result_.failed.push_back(p.string() + ": " + std::strerror(errno));
      return false;
    }
    ++result_.others;
    apply_metadata(p, n, result_.warnings, mu_);
    return false;
  }

  void read_blob(PackCache& c, const BlobId& id, Bytes& out) {
    const PackInfo* pack = nullptr;
    const BlobEntry* e = repo_.index().find(id, &pack);
    if (!e) throw Error(Errc::check_failed, "blob not in the index", hex(id), {}, "run 'dlc backup check'");
    if (c.pack != pack) {
      const fs::path pp = pack_path(repo_.path(), pack->id);
      c.fd.reset(::open(pp.c_str(), O_RDONLY | O_CLOEXEC));
      if (!c.fd) throw_errno("cannot open pack", pp.string(), errno, "run 'dlc backup check'");
      c.aead.emplace(repo_.pack_aead(pack->key_id, pack->id));
      c.pack = pack;
    }
    c.buf.resize(e->length);
    pread_all(c.fd.get(), c.buf.data(), c.buf.size(), e->offset, pack_path(repo_.path(), pack->id));
    try {
      out = open_blob(*c.aead, *e, c.buf);
    } catch (const Error& err) {
      if (err.code() == Errc::auth)
        throw Error(Errc::check_failed, "damaged blob", hex(id), "does not authenticate in pack " + hex(pack->id));
      throw;
    }
  }

  void restore_file(const FileTask& t, PackCache& cache) {
    const json& n = t.node;
    const bool sparse = n.value("sparse", false);
    try {
      ::unlink(t.path.c_str());
      Fd fd(::open(t.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd) throw_errno("cannot create", t.path.string());
      std::uint64_t off = 0;
      Bytes plain;
      std::vector<BlobId> ids;
      for (const json& h : n.value("content", json::array())) {
        const BlobId id = blob_id_from_hex(h.get<std::string>());
        read_blob(cache, id, plain);
        // Sparse files: zero 4 KiB blocks (aligned in the file) become holes
        // again; ftruncate below sets the size.
        if (!sparse) {
          write_at(fd.get(), plain.data(), plain.size(), off, t.path);
        } else {
          std::size_t run = 0, run_len = 0;  // pending non-zero run
          for (std::size_t pos = 0; pos < plain.size();) {
            const std::size_t len = std::min<std::size_t>(4096 - (off + pos) % 4096, plain.size() - pos);
            if (all_zero(plain.data() + pos, len)) {
              if (run_len) write_at(fd.get(), plain.data() + run, run_len, off + run, t.path);
              run_len = 0;
            } else {
              if (!run_len) run = pos;
              run_len += len;
            }
            pos += len;
          }
          if (run_len) write_at(fd.get(), plain.data() + run, run_len, off + run, t.path);
        }
        off += plain.size();
        if (opts_.verify) ids.push_back(id);
      }
      if (::ftruncate(fd.get(), static_cast<off_t>(off)) != 0) throw_errno("cannot set size of", t.path.string());
      fd.reset();
      apply_metadata(t.path, n, result_.warnings, mu_);
      bool verified = true;
      if (opts_.verify) verified = verify_file(t.path, ids);
      std::lock_guard<std::mutex> lock(mu_);
      ++result_.files;
      result_.bytes += off;
      if (opts_.verify && verified) ++result_.verified_files;
      if (!verified) result_.failed.push_back(t.path.string() + ": restored bytes differ from the snapshot (--verify)");
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mu_);
      result_.failed.push_back(t.path.string() + ": " + e.what());
    }
  }

  // Re-reads the restored file and compares each chunk's keyed hash.
  bool verify_file(const fs::path& p, const std::vector<BlobId>& ids) {
    Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    std::uint64_t off = 0;
    Bytes buf;
    for (const auto& id : ids) {
      const BlobEntry* e = repo_.index().find(id);
      if (!e) return false;
      buf.resize(e->raw_length);
      try {
        pread_all(fd.get(), buf.data(), buf.size(), off, p);
      } catch (const Error&) {
        return false;
      }
      if (repo_.blob_id(buf) != id) return false;
      off += buf.size();
    }
    struct stat st{};
    return ::fstat(fd.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == off;
  }

  const Repository& repo_;
  const RestoreOptions& opts_;
  RestoreResult& result_;
  std::mutex mu_;
  std::vector<FileTask> files_;
  std::vector<std::pair<fs::path, json>> dirs_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, fs::path> hardlinks_;
  std::vector<std::pair<fs::path, fs::path>> links_;
};

}  // namespace

RestoreResult run_restore(const RestoreOptions& opts) {
  const std::int64_t start = now_ns();
  if (opts.target.empty()) throw Error(Errc::usage, "no restore target", {}, {}, "pass --target DIR");
  auto repo = Repository::open(opts, LockMode::shared);
  repo->load_index();
  const Snapshot snap = repo->find_snapshot(opts.snapshot);
  RestoreResult result;
  result.snapshot_id = snap.id;
  std::error_code ec;
  fs::create_directories(opts.target, ec);
  if (ec) throw Error(Errc::io, "cannot create the restore target", opts.target.string(), ec.message());
  Restorer r(*repo, opts, result);
  r.run(blob_id_from_hex(snap.doc.at("tree").get<std::string>()));
  result.seconds = static_cast<double>(now_ns() - start) / 1e9;
  return result;
}

std::vector<SnapshotInfo> list_snapshots(const RepoOptions& opts) {
  auto repo = Repository::open(opts, LockMode::none);
  std::vector<SnapshotInfo> out;
  for (const auto& s : repo->snapshots()) out.push_back(s.info());
  return out;
}

std::vector<LsEntry> list_files(const RepoOptions& opts, const std::string& snapshot) {
  auto repo = Repository::open(opts, LockMode::none);
  repo->load_index();
  const Snapshot snap = repo->find_snapshot(snapshot);
  std::vector<LsEntry> out;
  walk_tree(*repo, blob_id_from_hex(snap.doc.at("tree").get<std::string>()), [&](const std::string& path, const json& n) {
    LsEntry e;
    e.path = path;
    e.type = n.value("type", "");
    e.mode = n.value("mode", 0u);
    e.size = n.value("size", std::uint64_t{0});
    e.mtime_ns = n.value("mtime", std::int64_t{0});
    e.target = n.value("target", "");
    e.sparse = n.value("sparse", false);
    out.push_back(std::move(e));
    return true;
  });
  return out;
}

}  // namespace dlc::backup
