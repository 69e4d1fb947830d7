// The restorer: recreates a snapshot under a target directory. Directories
// first; then file contents on all cores, pack by pack: each pack's needed
// blobs are read in a few large reads (the next packs read ahead by the
// kernel), each blob is opened once and written to every place that uses it
// (dedup'ed data is decrypted once); a file's metadata is applied when its last
// blob is written. Then hardlinks, then directory metadata deepest first (so
// writing children does not disturb their times).
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "backup/backup.h"
#include "backup/progress.h"
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

// A file to restore: where, its tree node, and the state of its blobs.
struct FileTask {
  fs::path path;
  json node;  // a copy: the tree documents are gone after the walk
  std::uint64_t size = 0;                // sum of its blobs' lengths
  std::vector<BlobId> ids;               // kept for --verify only
  std::atomic<std::size_t> remaining{0};  // blob writes still to do
  std::atomic<bool> failed{false};
  std::string error;                     // the first failure (under the restorer's mutex)
};

// One placement of a blob: which file, where in it.
struct Use {
  std::uint32_t pack = 0;          // position in the index's packs
  const BlobEntry* blob = nullptr;
  std::uint32_t file = 0;          // position in files_
  std::uint64_t offset = 0;        // in the file
};

// Reads of a pack: needed blobs whose gaps are at most kMaxGap are read in one
// pread of at most kMaxRead bytes (or one blob, when larger).
constexpr std::uint64_t kMaxGap = 1u << 20;
constexpr std::uint64_t kMaxRead = 8u << 20;

class Restorer {
 public:
  Restorer(const Repository& repo, const RestoreOptions& opts, RestoreResult& result)
      : repo_(repo), opts_(opts), result_(result) {}

  void run(const BlobId& root) {
    // Pass 1 (this thread): directories, symlinks, special files; collect files.
    walk_tree(repo_, root, [&](const std::string& path, const json& n) { return visit(path, n); });
    // Pass 2: where every blob goes, by pack (each pack is read once, in
    // offset order, and each blob opened once however many files use it).
    plan();
    const unsigned nthreads = std::max(1u, repo_.threads());
    std::uint64_t total = 0;
    for (const auto& f : files_) total += f->size;
    ProgressTask progress(opts_.progress, "restore", total);
    progress_ = &progress;
    // Pass 3: create the files (empty ones are done then), then write the
    // blobs pack by pack on all cores; a file's metadata is applied (and
    // --verify runs) by the thread that writes its last blob.
    parallel(nthreads, files_.size(), [&](std::size_t i, Worker&) { create_file(i); });
    if (!stop_requested().load()) {
      // The kernel reads packs ahead of the workers: two per thread in
      // flight (a pack is at most about 18 MiB).
      std::vector<PackPrefetcher::Item> items;
      for (const auto& [b, e] : jobs_) {
        const std::uint64_t first = uses_[b].blob->offset;
        const std::uint64_t last = uses_[e - 1].blob->offset + uses_[e - 1].blob->length;
        items.push_back({pack_path(repo_.path(), repo_.index().packs()[uses_[b].pack].id), first, last - first});
      }
      PackPrefetcher prefetcher(std::move(items), 2 * std::size_t{nthreads});
      parallel(nthreads, jobs_.size(), [&](std::size_t j, Worker& w) { restore_pack(j, prefetcher.take(j), w); });
    }
    if (stop_requested().load())
      throw Error(Errc::interrupted, "restore interrupted", opts_.target.string(), {}, "run the restore again");
    progress.finish(true);
    progress_ = nullptr;
    for (const auto& f : files_)
      if (f->failed.load()) result_.failed.push_back(f->path.string() + ": " + f->error);
    // Pass 4: hardlinks to files restored above.
    for (const auto& [path, first] : links_) {
      ::unlink(path.c_str());
      if (::link(first.c_str(), path.c_str()) != 0)
        result_.failed.push_back(path.string() + ": cannot create hardlink: " + std::strerror(errno));
      else
        ++result_.files;
    }
    // Pass 5: directory metadata, deepest first.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) apply_metadata(it->first, it->second, result_.warnings, mu_);
  }

 private:
  // Per-thread state: scratch for opening blobs, a read buffer, and a few
  // open files (consecutive blobs of a pack mostly belong to one file).
  struct Worker {
    BlobScratch scratch;
    Bytes buf;
    std::vector<std::pair<std::uint32_t, Fd>> fds;  // most recently used last
    int fd_for(std::uint32_t file, const fs::path& p) {
      for (std::size_t i = 0; i < fds.size(); ++i)
        if (fds[i].first == file) {
          if (i + 1 != fds.size()) std::rotate(fds.begin() + static_cast<std::ptrdiff_t>(i),
                                               fds.begin() + static_cast<std::ptrdiff_t>(i) + 1, fds.end());
          return fds.back().second.get();
        }
      Fd fd(::open(p.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));  // the file create_file made
      if (!fd) throw_errno("cannot open", p.string());
      if (fds.size() >= 8) fds.erase(fds.begin());
      fds.emplace_back(file, std::move(fd));
      return fds.back().second.get();
    }
    void close(std::uint32_t file) {
      for (auto it = fds.begin(); it != fds.end(); ++it)
        if (it->first == file) {
          fds.erase(it);
          return;
        }
    }
  };

  template <typename Fn>
  void parallel(unsigned nthreads, std::size_t count, Fn&& fn) {
    std::atomic<std::size_t> next{0};
    auto loop = [&] {
      Worker w;
      for (std::size_t i; (i = next.fetch_add(1)) < count;) {
        if (stop_requested().load()) break;
        fn(i, w);
      }
    };
    std::vector<std::thread> threads;
    const auto n = static_cast<unsigned>(std::min<std::size_t>(nthreads, count));
    for (unsigned t = 1; t < n; ++t) threads.emplace_back(loop);
    if (count) loop();
    for (auto& t : threads) t.join();
  }

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
      auto f = std::make_unique<FileTask>();
      f->path = p;
      f->node = n;
      files_.push_back(std::move(f));
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

  // Resolves every file's blobs through the index and groups the placements
  // by pack. A blob the index lacks fails its file (the rest of it is still
  // written).
  void plan() {
    const Index& index = repo_.index();
    std::vector<Use> uses;
    for (std::size_t i = 0; i < files_.size(); ++i) {
      FileTask& f = *files_[i];
      std::uint64_t off = 0;
      std::size_t n = 0;
      for (const json& h : f.node.value("content", json::array())) {
        const BlobId id = blob_id_from_hex(h.get<std::string>());
        if (opts_.verify) f.ids.push_back(id);
        const PackInfo* pack = nullptr;
        const BlobEntry* e = index.find(id, &pack);
        if (!e) {
          fail(f, "blob " + hex(id) + " is not in the index (run 'dlc backup check')");
        } else {
          uses.push_back({static_cast<std::uint32_t>(pack - index.packs().data()), e, static_cast<std::uint32_t>(i), off});
          ++n;
        }
        off += e ? e->raw_length : 0;
      }
      f.size = off;
      f.remaining = n;
    }
    std::sort(uses.begin(), uses.end(), [](const Use& a, const Use& b) {
      if (a.pack != b.pack) return a.pack < b.pack;
      if (a.blob->offset != b.blob->offset) return a.blob->offset < b.blob->offset;
      return a.file != b.file ? a.file < b.file : a.offset < b.offset;
    });
    uses_ = std::move(uses);
    for (std::size_t k = 0; k < uses_.size();) {
      std::size_t e = k;
      while (e < uses_.size() && uses_[e].pack == uses_[k].pack) ++e;
      jobs_.push_back({k, e});
      k = e;
    }
  }

  void fail(FileTask& f, const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!f.failed.exchange(true)) f.error = why;
  }

  void create_file(std::size_t i) {
    FileTask& f = *files_[i];
    // A new file; whatever is in the way (a file, a symlink that must not be
    // followed, a hardlink that must not be written through) is replaced.
    // Unlinking only then keeps threads off the directory lock in the usual
    // case of a fresh target.
    constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    Fd fd(::open(f.path.c_str(), kFlags, 0600));
    if (!fd && errno == EEXIST) {
      ::unlink(f.path.c_str());
      fd.reset(::open(f.path.c_str(), kFlags, 0600));
    }
    if (!fd) {
      fail(f, std::string("cannot create: ") + std::strerror(errno));
    } else if (::ftruncate(fd.get(), static_cast<off_t>(f.size)) != 0) {  // holes stay where nothing is written
      fail(f, std::string("cannot set the size: ") + std::strerror(errno));
    }
    fd.reset();
    if (f.remaining.load() == 0) finish_file(f);
  }

  // The thread that wrote a file's last blob completes it.
  void finish_file(FileTask& f) {
    bool verified = true;
    if (!f.failed.load()) {
      apply_metadata(f.path, f.node, result_.warnings, mu_);
      if (opts_.verify) verified = verify_file(f.path, f.ids);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (f.failed.load()) return;  // reported after the threads end
    ++result_.files;
    result_.bytes += f.size;
    if (opts_.verify && verified) ++result_.verified_files;
    if (!verified) result_.failed.push_back(f.path.string() + ": restored bytes differ from the snapshot (--verify)");
  }

  void restore_pack(std::size_t j, Fd fd, Worker& w) {
    const auto [b, e] = jobs_[j];
    const PackInfo& pack = repo_.index().packs()[uses_[b].pack];
    // Every placement of blobs [from, to) fails with this reason.
    auto fail_uses = [&](std::size_t from, std::size_t to, const std::string& why) {
      for (std::size_t k = from; k < to; ++k) {
        FileTask& f = *files_[uses_[k].file];
        fail(f, why);
        progress_->add(uses_[k].blob->raw_length);
        if (f.remaining.fetch_sub(1) == 1) {
          w.close(uses_[k].file);
          finish_file(f);
        }
      }
    };
    const fs::path pp = pack_path(repo_.path(), pack.id);
    std::optional<crypto::Aead> aead;
    std::uint64_t size = 0;
    try {
      if (!fd) throw_errno("cannot open pack", pp.string(), errno, "run 'dlc backup check'");
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) throw_errno("cannot read pack", pp.string());
      size = static_cast<std::uint64_t>(st.st_size);
      aead.emplace(repo_.pack_aead(pack.key_id, pack.id));
    } catch (const std::exception& ex) {
      fail_uses(b, e, ex.what());
      return;
    }
    for (std::size_t k = b; k < e;) {
      // One read: blobs from k on while the gaps are small.
      const std::uint64_t start = uses_[k].blob->offset;
      std::uint64_t end = start + uses_[k].blob->length;
      std::size_t stop = k + 1;
      for (; stop < e; ++stop) {
        const BlobEntry* nb = uses_[stop].blob;
        if (nb->offset > end + kMaxGap || nb->offset + nb->length - start > kMaxRead) break;
        end = std::max<std::uint64_t>(end, nb->offset + nb->length);
      }
      // The index is trusted for where a blob is, not for how much to allocate.
      if (start > size || end - start > size - start) {
        // Only the blobs beyond the end fail; retry the others one by one.
        if (stop - k > 1) {
          stop = k + 1;
          end = start + uses_[k].blob->length;
        }
        if (start > size || end - start > size - start) {
          fail_uses(k, stop, "blob " + hex(uses_[k].blob->id) + " lies beyond the end of pack " + hex(pack.id) +
                                 " (run 'dlc backup check')");
          k = stop;
          continue;
        }
      }
      try {
        if (w.buf.size() < end - start) w.buf.resize(end - start);
        pread_all(fd.get(), w.buf.data(), end - start, start, pp);
      } catch (const std::exception& ex) {
        fail_uses(k, stop, ex.what());
        k = stop;
        continue;
      }
      while (k < stop) {
        const BlobEntry* blob = uses_[k].blob;
        std::size_t same = k + 1;  // placements of this blob
        while (same < stop && uses_[same].blob == blob) ++same;
        crypto::ByteView plain;
        try {
          plain = open_blob_view(*aead, *blob, {w.buf.data() + (blob->offset - start), blob->length}, w.scratch);
        } catch (const Error& err) {
          fail_uses(k, same, err.code() == Errc::auth
                                 ? "damaged blob " + hex(blob->id) + ": does not authenticate in pack " + hex(pack.id)
                                 : std::string(err.what()) + " (blob " + hex(blob->id) + ")");
          k = same;
          continue;
        }
        for (; k < same; ++k) place(uses_[k], plain, w);
      }
    }
  }

  // Writes one blob into one file.
  void place(const Use& u, crypto::ByteView plain, Worker& w) {
    FileTask& f = *files_[u.file];
    if (!f.failed.load()) {
      try {
        const int fd = w.fd_for(u.file, f.path);
        if (f.node.value("sparse", false)) {
          // Sparse files: zero 4 KiB blocks (aligned in the file) stay holes.
          std::size_t run = 0, run_len = 0;  // pending non-zero run
          for (std::size_t pos = 0; pos < plain.size();) {
            const std::size_t len = std::min<std::size_t>(4096 - (u.offset + pos) % 4096, plain.size() - pos);
            if (all_zero(plain.data() + pos, len)) {
              if (run_len) write_at(fd, plain.data() + run, run_len, u.offset + run, f.path);
              run_len = 0;
            } else {
              if (!run_len) run = pos;
              run_len += len;
            }
            pos += len;
          }
          if (run_len) write_at(fd, plain.data() + run, run_len, u.offset + run, f.path);
        } else {
          write_at(fd, plain.data(), plain.size(), u.offset, f.path);
        }
      } catch (const std::exception& ex) {  // not only Error: this runs on a worker thread
        fail(f, ex.what());
      }
    }
    progress_->add(plain.size());
    if (f.remaining.fetch_sub(1) == 1) {
      w.close(u.file);
      finish_file(f);
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
  ProgressTask* progress_ = nullptr;
  std::mutex mu_;
  std::vector<std::unique_ptr<FileTask>> files_;
  std::vector<Use> uses_;
  std::vector<std::pair<std::size_t, std::size_t>> jobs_;  // per pack: a range of uses_
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
