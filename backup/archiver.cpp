// The archiver: walks the paths, chunks files, and stores new blobs.
// Pipeline over all cores:
//   main thread   walk -> read -> chunk (FastCDC) -> bounded queue of chunks
//   workers (N)   keyed hash (blob id) -> dedup -> zstd (skipped when a sample
//                 does not compress) -> seal -> append to the worker's own pack
//   finisher      fdatasync + rename of full packs (I/O waits off the CPU path)
// The main thread helps the workers while it waits for a directory's files,
// so no core idles. Order on disk: packs, then the index file, then the
// snapshot: a snapshot only ever names data that is already durable.
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "backup/backup.h"
#include "backup/progress.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "backup/uploader.h"
#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

// ---- Uploader ----------------------------------------------------------------------

Uploader::Uploader(Repository& repo, bool dedup_index) : repo_(repo), dedup_index_(dedup_index) {
  finisher_ = std::thread([this] { finisher_loop(); });
}

Uploader::~Uploader() {
  {
    std::lock_guard<std::mutex> lock(fin_mu_);
    fin_closed_ = true;
  }
  fin_cv_.notify_all();
  if (finisher_.joinable()) finisher_.join();
}

Uploader::Worker::Worker() : cctx(ZSTD_createCCtx()) {}
Uploader::Worker::~Worker() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx)); }

void Uploader::finisher_loop() {
  for (;;) {
    std::unique_ptr<PackWriter> pack;
    {
      std::unique_lock<std::mutex> lock(fin_mu_);
      fin_cv_.wait(lock, [&] { return fin_closed_ || !fin_queue_.empty(); });
      if (fin_queue_.empty()) return;
      pack = std::move(fin_queue_.front());
      fin_queue_.pop_front();
    }
    try {
      PackInfo info = pack->finish();
      std::lock_guard<std::mutex> lock(fin_mu_);
      done_.push_back(std::move(info));
    } catch (...) {
      std::lock_guard<std::mutex> lock(fin_mu_);
      if (!error_) error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(fin_mu_);
      --in_flight_;
    }
    fin_cv_.notify_all();
  }
}

void Uploader::submit(std::unique_ptr<PackWriter> pack) {
  {
    std::lock_guard<std::mutex> lock(fin_mu_);
    ++in_flight_;
    fin_queue_.push_back(std::move(pack));
  }
  fin_cv_.notify_all();
}

bool Uploader::worth_compressing(Worker& w, ByteView data) {
  // A sample decides for large chunks: random or already-compressed data
  // would cost a full zstd pass for nothing.
  constexpr std::size_t kSample = 16 * 1024;
  if (data.size() <= 4 * kSample) return true;
  w.sample.resize(ZSTD_compressBound(kSample));
  const std::size_t c = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(w.cctx), w.sample.data(), w.sample.size(),
                                          data.data() + data.size() / 2 - kSample / 2, kSample, 1);
  return !ZSTD_isError(c) && c < kSample - kSample / 16;
}

BlobId Uploader::store(Worker& w, BlobType type, ByteView data) {
  const BlobId id = repo_.blob_id(data);
  if (dedup_index_ && repo_.index().has(id)) {
    ++blobs_known;
    return id;
  }
  {
    std::lock_guard<std::mutex> lock(claim_mu_);
    if (!claimed_.insert(id).second) {
      ++blobs_known;
      return id;
    }
  }
  const std::size_t n = data.size();
  std::uint8_t flags = 0;
  std::size_t len = n;
  const int level = repo_.config().compression_level;
  if (level > 0 && worth_compressing(w, data)) {
    const std::size_t bound = ZSTD_compressBound(n);
    if (w.buf.size() < bound + crypto::kAeadTagSize) w.buf.resize(bound + crypto::kAeadTagSize);
    const std::size_t c = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(w.cctx), w.buf.data(), bound, data.data(), n, level);
    if (!ZSTD_isError(c) && c < n - n / 32) {
      flags = kBlobZstd;
      len = c;
    }
  }
  if (!flags) {
    if (w.buf.size() < n + crypto::kAeadTagSize) w.buf.resize(n + crypto::kAeadTagSize);
    std::memcpy(w.buf.data(), data.data(), n);
  }
  if (!w.pack) {
    const DataKey& k = repo_.current_key();
    w.pack = std::make_unique<PackWriter>(repo_.path(), repo_.cipher(), k.key, k.id);
  }
  w.pack->add(type, id, flags, static_cast<std::uint32_t>(n), w.buf, len);
  ++blobs_new;
  bytes_new_raw += n;
  bytes_new_stored += len + crypto::kAeadTagSize;
  if (w.pack->size() >= kPackTargetSize) submit(std::move(w.pack));
  return id;
}

void Uploader::flush(Worker& w) {
  if (w.pack && w.pack->count() > 0) submit(std::move(w.pack));
  w.pack.reset();
}

std::vector<PackInfo> Uploader::wait_all() {
  std::unique_lock<std::mutex> lock(fin_mu_);
  fin_cv_.wait(lock, [&] { return in_flight_ == 0; });
  if (error_) std::rethrow_exception(error_);
  return std::move(done_);
}

void Uploader::check_error() {
  std::lock_guard<std::mutex> lock(fin_mu_);
  if (error_) std::rethrow_exception(error_);
}

// ---- Archiver --------------------------------------------------------------------------

namespace {

struct PendingFile {
  std::size_t node = 0;        // position in the directory's node list
  std::deque<BlobId> ids;      // stable addresses while workers fill them
  std::atomic<std::size_t> remaining{0};
};

// fnmatch patterns on the full path or the file name (--exclude).
bool is_excluded(const std::vector<std::string>& excludes, const fs::path& path, const std::string& name) {
  for (const auto& pat : excludes) {
    if (::fnmatch(pat.c_str(), path.c_str(), 0) == 0 || ::fnmatch(pat.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

// The bytes a backup goes through, for its progress total: the sizes of the
// regular files under the paths that the excludes leave (metadata only: one
// fstatat per entry, which also warms the caches the backup walk then uses).
std::uint64_t prewalk_bytes(const std::vector<fs::path>& paths, const std::vector<std::string>& excludes) {
  std::uint64_t total = 0;
  std::vector<fs::path> dirs;
  for (const auto& p : paths) {
    struct stat st{};
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) total += static_cast<std::uint64_t>(st.st_size);
    if (S_ISDIR(st.st_mode)) dirs.push_back(p);
  }
  while (!dirs.empty()) {
    const fs::path dir = std::move(dirs.back());
    dirs.pop_back();
    DIR* d = ::opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const fs::path path = dir / name;
      if (is_excluded(excludes, path, name)) continue;
      struct stat st{};
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISREG(st.st_mode)) total += static_cast<std::uint64_t>(st.st_size);
      if (S_ISDIR(st.st_mode)) dirs.push_back(path);
    }
    ::closedir(d);
  }
  return total;
}

struct Job {
  Bytes data;
  BlobId* out = nullptr;
  PendingFile* file = nullptr;
};

class Archiver {
 public:
  Archiver(Repository& repo, const BackupOptions& opts, BackupResult& result, ProgressTask& progress)
      : repo_(repo), opts_(opts), result_(result), progress_(progress), uploader_(repo), chunker_(repo.make_chunker()) {
    capacity_ = 2 * repo.threads() + 2;
  }

  ~Archiver() { stop_workers(); }

  BlobId run(const std::vector<fs::path>& paths, const json* parent_root) {
    const unsigned n = repo_.threads();
    workers_.resize(n);
    for (unsigned i = 0; i < n; ++i) {
      workers_[i] = std::make_unique<Uploader::Worker>();
      threads_.emplace_back([this, i] { worker_loop(*workers_[i]); });
    }
    // The virtual root: every path's ancestors down from "/".
    VDir root;
    for (const auto& p : paths) {
      VDir* d = &root;
      for (const auto& part : p.relative_path()) d = &d->children[part.string()];
      d->real = true;
    }
    BlobId tree{};
    if (root.real) {
      tree = archive_dir(fs::path("/"), parent_root);
    } else {
      tree = archive_virtual(root, fs::path("/"), parent_root);
    }
    uploader_.flush(main_);
    stop_workers();
    if (error_) std::rethrow_exception(error_);
    packs_ = uploader_.wait_all();
    return tree;
  }

  std::vector<PackInfo>& packs() { return packs_; }
  Uploader& uploader() { return uploader_; }

  // Finishes what is in flight after an error or interruption so that the
  // packs already written get indexed (the next backup reuses them).
  std::vector<PackInfo> salvage() {
    stop_workers();
    try {
      uploader_.flush(main_);
      for (auto& w : workers_)
        if (w) uploader_.flush(*w);
      return uploader_.wait_all();
    } catch (...) {
      return {};
    }
  }

 private:
  struct VDir {
    std::map<std::string, VDir> children;
    bool real = false;
  };

  // Queued jobs point into their file's PendingFile. When an error or an
  // interruption unwinds a directory, its files go to graveyard_ instead of
  // being freed, and die with the Archiver, after the workers have stopped.
  struct KeepPending {
    KeepPending(Archiver& archiver, std::vector<std::unique_ptr<PendingFile>>& files)
        : a(archiver), pending(files), unwinding(std::uncaught_exceptions()) {}
    KeepPending(const KeepPending&) = delete;
    KeepPending& operator=(const KeepPending&) = delete;
    Archiver& a;
    std::vector<std::unique_ptr<PendingFile>>& pending;
    const int unwinding;
    ~KeepPending() {
      if (std::uncaught_exceptions() <= unwinding) return;
      std::lock_guard<std::mutex> lock(a.mu_);
      for (auto& f : pending) a.graveyard_.push_back(std::move(f));
    }
  };

  void worker_loop(Uploader::Worker& w) {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_pop_.wait(lock, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) break;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      cv_push_.notify_one();
      run_job(w, job);
    }
    try {
      uploader_.flush(w);
    } catch (...) {
      record_error();
    }
  }

  void run_job(Uploader::Worker& w, Job& job) {
    try {
      if (!error_flag_.load()) *job.out = uploader_.store(w, BlobType::data, job.data);
    } catch (...) {
      record_error();
    }
    job.data = Bytes();
    if (job.file->remaining.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_all();
    }
  }

  void record_error() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_) error_ = std::current_exception();
    error_flag_ = true;
    cv_done_.notify_all();
    cv_push_.notify_all();
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_pop_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  void check_stop() {
    if (error_flag_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      std::rethrow_exception(error_);
    }
    if (stop_requested().load())
      throw Error(Errc::interrupted, "backup interrupted", {}, "no snapshot was written",
                  "run the backup again: data already stored is reused");
  }

  void push(Job job) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_push_.wait(lock, [&] { return queue_.size() < capacity_ || error_flag_.load(); });
    queue_.push_back(std::move(job));
    lock.unlock();
    cv_pop_.notify_one();
  }

  // Waits for a file's chunks, running queued jobs on this thread meanwhile.
  void wait_file(PendingFile& f) {
    while (f.remaining.load() > 0) {
      check_stop();
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (queue_.empty()) {
          cv_done_.wait_for(lock, std::chrono::milliseconds(5),
                            [&] { return f.remaining.load() == 0 || error_flag_.load(); });
          continue;
        }
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      cv_push_.notify_one();
      run_job(main_, job);
    }
    check_stop();
  }

  bool excluded(const fs::path& path, const std::string& name) const { return is_excluded(opts_.excludes, path, name); }

  static std::map<std::string, const json*> by_name(const json* tree) {
    std::map<std::string, const json*> m;
    if (tree)
      for (const json& n : tree->at("nodes")) m[node_name(n)] = &n;
    return m;
  }

  std::optional<json> parent_subtree(const json* parent_node) {
    if (!parent_node || parent_node->value("type", "") != "dir" || !parent_node->contains("subtree"))
      return std::nullopt;
    try {
      return repo_.read_tree(blob_id_from_hex((*parent_node)["subtree"].get<std::string>()));
    } catch (const Error&) {
      return std::nullopt;  // an unreadable parent only costs re-reading the files
    }
  }

  BlobId store_tree(const std::vector<json>& nodes) {
    json doc = {{"nodes", nodes}};
    const std::string text = doc.dump();
    return uploader_.store(main_, BlobType::tree, crypto::as_bytes(text));
  }

  BlobId archive_virtual(const VDir& v, const fs::path& dir, const json* parent_tree) {
    auto parents = by_name(parent_tree);
    std::vector<json> nodes;
    std::vector<std::unique_ptr<PendingFile>> pending;
    KeepPending keep{*this, pending};
    for (const auto& [name, child] : v.children) {
      const fs::path path = dir / name;
      struct stat st{};
      if (::lstat(path.c_str(), &st) != 0) {
        throw Error(Errc::io, "cannot back up", path.string(), std::strerror(errno), "check the path");
      }
      auto it = parents.find(name);
      const json* pnode = it == parents.end() ? nullptr : it->second;
      if (child.real) {
        archive_entry(path, name, st, pnode, nodes, pending);
      } else {
        if (!S_ISDIR(st.st_mode)) throw Error(Errc::io, "not a directory", path.string());
        json node = node_from_stat(path, name, st, &result_.warnings);
        auto ptree = parent_subtree(pnode);
        node["subtree"] = hex(archive_virtual(child, path, ptree ? &*ptree : nullptr));
        nodes.push_back(std::move(node));
      }
    }
    return finish_dir(nodes, pending);
  }

  BlobId archive_dir(const fs::path& dir, const json* parent_tree) {
    auto parents = by_name(parent_tree);
    std::vector<std::string> names;
    {
      DIR* d = ::opendir(dir.c_str());
      if (!d) {
        result_.warnings.push_back("cannot read directory " + dir.string() + ": " + std::strerror(errno));
        return store_tree({});
      }
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
      }
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    std::vector<json> nodes;
    std::vector<std::unique_ptr<PendingFile>> pending;
    KeepPending keep{*this, pending};
    for (const auto& name : names) {
      const fs::path path = dir / name;
      if (excluded(path, name)) continue;
      struct stat st{};
      if (::lstat(path.c_str(), &st) != 0) {
        result_.warnings.push_back("cannot stat " + path.string() + ": " + std::strerror(errno));
        continue;
      }
      auto it = parents.find(name);
      archive_entry(path, name, st, it == parents.end() ? nullptr : it->second, nodes, pending);
    }
    return finish_dir(nodes, pending);
  }

  BlobId finish_dir(std::vector<json>& nodes, std::vector<std::unique_ptr<PendingFile>>& pending) {
    for (auto& f : pending) {
      wait_file(*f);
      json content = json::array();
      for (const auto& id : f->ids) content.push_back(hex(id));
      nodes[f->node]["content"] = std::move(content);
    }
    return store_tree(nodes);
  }

  void archive_entry(const fs::path& path, const std::string& name, const struct stat& st, const json* pnode,
                     std::vector<json>& nodes, std::vector<std::unique_ptr<PendingFile>>& pending) {
    check_stop();
    json node = node_from_stat(path, name, st, &result_.warnings);
    result_.bytes_total += S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
    if (S_ISDIR(st.st_mode)) {
      ++result_.dirs;
      auto ptree = parent_subtree(pnode);
      node["subtree"] = hex(archive_dir(path, ptree ? &*ptree : nullptr));
      nodes.push_back(std::move(node));
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      ++result_.others;
      nodes.push_back(std::move(node));
      return;
    }
    if (unchanged(node, pnode)) {
      node["content"] = (*pnode)["content"];
      ++result_.files_unmodified;
      progress_.add(static_cast<std::uint64_t>(st.st_size));  // processed without reading
      nodes.push_back(std::move(node));
      return;
    }
    // In the list before its chunks are queued: if reading throws, the
    // list's guard keeps it alive for the workers.
    pending.push_back(std::make_unique<PendingFile>());
    pending.back()->node = nodes.size();
    if (!read_file(path, node, *pending.back())) {  // unreadable: skipped with a warning (nothing queued)
      pending.pop_back();
      progress_.add(static_cast<std::uint64_t>(st.st_size));
      return;
    }
    ++(pnode ? result_.files_changed : result_.files_new);
    nodes.push_back(std::move(node));
  }

  bool unchanged(const json& node, const json* pnode) const {
    if (opts_.force_read || !pnode || pnode->value("type", "") != "file" || !pnode->contains("content"))
      return false;
    for (const char* k : {"size", "mtime", "ctime", "inode"})
      if (node.value(k, std::int64_t{-1}) != pnode->value(k, std::int64_t{-2})) return false;
    for (const json& id : (*pnode)["content"])
      if (!repo_.index().has(blob_id_from_hex(id.get<std::string>()))) return false;
    return true;
  }

  // Reads and chunks one file, queueing its chunks. Returns false when the
  // file cannot be opened (recorded as a warning).
  bool read_file(const fs::path& path, json& node, PendingFile& pf) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME | O_NOFOLLOW);
    if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      result_.warnings.push_back("cannot read " + path.string() + ": " + std::strerror(errno) + " (skipped)");
      return false;
    }
    Fd guard(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    const std::uint64_t size = node.value("size", std::uint64_t{0});
    pf.remaining = 1;  // a guard count so the file does not complete while chunks are queued
    const std::uint64_t total = for_each_chunk(fd, chunker_, buf_, path.string(), [&](ByteView chunk) {
      pf.ids.emplace_back();
      pf.remaining.fetch_add(1);
      push(Job{Bytes(chunk.begin(), chunk.end()), &pf.ids.back(), &pf});
      progress_.add(chunk.size());
      check_stop();
    });
    result_.bytes_read += total;
    if (total != size) node["size"] = total;  // the file changed while it was read
    if (pf.remaining.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_all();
    }
    return true;
  }

  Repository& repo_;
  const BackupOptions& opts_;
  BackupResult& result_;
  ProgressTask& progress_;
  Uploader uploader_;
  Chunker chunker_;
  Uploader::Worker main_;
  std::vector<std::unique_ptr<Uploader::Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<PackInfo> packs_;
  Bytes buf_;

  std::mutex mu_;
  std::condition_variable cv_push_, cv_pop_, cv_done_;
  std::deque<Job> queue_;
  std::size_t capacity_ = 6;
  bool closed_ = false;
  std::exception_ptr error_;
  std::atomic<bool> error_flag_{false};
  std::vector<std::unique_ptr<PendingFile>> graveyard_;  // see KeepPending
};

std::vector<fs::path> normalize_paths(const std::vector<fs::path>& in) {
  std::vector<fs::path> out;
  for (const auto& p : in) {
    std::error_code ec;
    fs::path a = fs::absolute(p, ec).lexically_normal();
    if (ec) throw Error(Errc::usage, "bad path", p.string(), ec.message());
    std::string s = a.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    struct stat st{};
    if (::lstat(s.c_str(), &st) != 0) throw_errno("cannot back up", s, errno, "check the path");
    out.emplace_back(s);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

BackupResult run_backup(const BackupOptions& opts) {
  const std::int64_t start = now_ns();
  if (opts.paths.empty()) throw Error(Errc::usage, "nothing to back up", {}, {}, "give one or more paths");
  std::vector<fs::path> paths = normalize_paths(opts.paths);
  auto repo = Repository::open(opts, LockMode::shared);
  repo->load_index();
  BackupResult result;
  const std::string host = opts.host.empty() ? host_name() : opts.host;
  std::vector<std::string> path_strings;
  for (const auto& p : paths) path_strings.push_back(p.string());

  // The parent: the given one, else the latest snapshot of the same host and paths.
  std::optional<Snapshot> parent;
  if (!opts.parent.empty()) {
    parent = repo->find_snapshot(opts.parent);
  } else if (!opts.force_read) {
    for (auto& s : repo->snapshots())
      if (s.doc.value("host", "") == host && s.doc.value("paths", std::vector<std::string>{}) == path_strings)
        parent = s;
  }
  std::optional<json> parent_root;
  if (parent) {
    try {
      parent_root = repo->read_tree(blob_id_from_hex(parent->doc.at("tree").get<std::string>()));
      result.parent_id = parent->id;
    } catch (const Error& e) {
      result.warnings.push_back("parent snapshot " + parent->id + " unreadable, reading every file: " + e.what());
    }
  }

  // Progress: bytes of the files gone through (read, or skipped as unchanged)
  // of a total from a metadata-only pre-walk, done only when a display wants it.
  ProgressTask progress(opts.progress, "backup",
                        progress_wanted(opts.progress) ? prewalk_bytes(paths, opts.excludes) : 0);
  Archiver archiver(*repo, opts, result, progress);
  BlobId tree{};
  try {
    tree = archiver.run(paths, parent_root ? &*parent_root : nullptr);
  } catch (...) {
    // Index what reached the disk so a rerun reuses it; no snapshot is written.
    std::vector<PackInfo> done = archiver.salvage();
    if (!done.empty()) {
      try {
        repo->write_index(done);
      } catch (...) {
      }
    }
    throw;
  }
  std::vector<PackInfo>& packs = archiver.packs();
  Uploader& up = archiver.uploader();
  if (!packs.empty()) repo->write_index(packs);
  result.packs_written = packs.size();
  result.blobs_new = up.blobs_new.load();
  result.blobs_known = up.blobs_known.load();
  result.bytes_new_raw = up.bytes_new_raw.load();
  result.bytes_new_stored = up.bytes_new_stored.load();
  result.seconds = static_cast<double>(now_ns() - start) / 1e9;

  const std::int64_t t = now_ns();
  json snap = {{"time", rfc3339(t)},
               {"time_ns", t},
               {"host", host},
               {"user", user_name()},
               {"paths", path_strings},
               {"tags", opts.tags},
               {"tree", hex(tree)},
               {"parent", result.parent_id},
               {"key_id", repo->current_key_id()},
               {"program", std::string("dlc ") + DLC_VERSION},
               {"summary",
                {{"files_new", result.files_new},
                 {"files_changed", result.files_changed},
                 {"files_unmodified", result.files_unmodified},
                 {"dirs", result.dirs},
                 {"bytes_total", result.bytes_total},
                 {"bytes_read", result.bytes_read},
                 {"blobs_new", result.blobs_new},
                 {"bytes_new_raw", result.bytes_new_raw},
                 {"bytes_new_stored", result.bytes_new_stored},
                 {"seconds", result.seconds}}}};
  result.snapshot_id = repo->write_snapshot(snap);
  result.seconds = static_cast<double>(now_ns() - start) / 1e9;
  progress.finish(true);
  return result;
}

}  // namespace dlc::backup
