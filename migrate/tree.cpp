// The tree engine: passes over a (possibly live) source tree, parallel file
// copies hashed while read, batched commits, re-reads from storage, the resume
// journal, and the final comparison of both manifests.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/io_engine.h"
#include "core/text.h"
#include "migrate/engine.h"

namespace dlc::migrate {

namespace {

using verify::Entry;
using verify::EntryType;

constexpr std::uint64_t kBatchBytes = 64ull << 20;
constexpr std::size_t kBatchFiles = 1000;
// One read per file up to this size: such a file's content hash is also the
// hash its one data frame carries to a remote receiver (hashed once, not twice).
constexpr std::size_t kChunk = 16u << 20;
constexpr std::uint64_t kAlign = 4096;

std::int64_t ns_of(const timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

const std::vector<std::uint8_t>& zeros() {
  static const std::vector<std::uint8_t> z(1u << 20, 0);
  return z;
}

struct SrcFd {
  int fd = -1;
  bool direct = false;
  ~SrcFd() {
    if (fd >= 0) ::close(fd);
  }
};

void open_source(const std::filesystem::path& p, SrcFd& s) {
  int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME;
  s.fd = ::open(p.c_str(), flags | O_DIRECT);
  if (s.fd < 0 && errno == EPERM) {
    flags &= ~O_NOATIME;
    s.fd = ::open(p.c_str(), flags | O_DIRECT);
  }
  s.direct = s.fd >= 0;
  if (s.fd < 0 && errno == EINVAL) s.fd = ::open(p.c_str(), flags);
  if (s.fd < 0) throw_errno("cannot open", p.string());
  if (!s.direct) ::posix_fadvise(s.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

bool same_identity(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_ino == b.st_ino && ns_of(a.st_mtim) == ns_of(b.st_mtim) &&
         ns_of(a.st_ctim) == ns_of(b.st_ctim);
}

bool same_meta(const Entry& a, const Entry& b) {
  return a.type == b.type && a.size == b.size && a.mode == b.mode && a.uid == b.uid &&
         a.gid == b.gid && a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns && a.ino == b.ino &&
         a.target == b.target && a.rdev == b.rdev && a.xattrs == b.xattrs;
}

void sort_entries(std::vector<Entry>& v) {
  std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
}

struct InFlight {
  std::size_t index = 0;
  JournalRecord rec;
  std::optional<std::vector<verify::DataExtent>> sparse;
  bool unstable = false;
};

class TreeMigrator {
 public:
  TreeMigrator(const MigrateOptions& o, const std::filesystem::path& src, Destination& dest, Journal& j)
      : o_(o), src_(src), dest_(dest), journal_(j), limiter_(o.bwlimit) {}

  TreeResult run(std::vector<Entry> walk) {
    sort_entries(walk);
    const unsigned passes = std::max(1u, o_.passes);
    for (unsigned pass = 1;; ++pass) {
      entries_ = std::move(walk);
      one_pass();
      r_.passes = pass;
      journal_.note({{"pass", pass}, {"files_sent", r_.files_sent}, {"time", dlc::now_rfc3339()}});
      if (pass >= passes && !o_.final_pass) break;
      // Another pass only if the source changed while this one ran.
      walk = verify::walk_tree(src_, o_.xattrs);
      sort_entries(walk);
      const bool stable = unstable_.empty() && walk.size() == entries_.size() &&
                          std::equal(walk.begin(), walk.end(), entries_.begin(), same_meta);
      if (stable || pass >= passes) {
        if (!stable && o_.final_pass) {
          // The last allowed pass still saw changes: run the final pass on the
          // newest state and let the final check report what moved under it.
          entries_ = std::move(walk);
          one_pass();
          r_.passes = pass + 1;
        }
        break;
      }
    }
    finish_source_manifest();
    const auto v0 = std::chrono::steady_clock::now();
    if (o_.verify) verify_all();
    // Where the time went: thread-milliseconds per phase (phases overlap
    // across threads) and the wall time of the copy and of the final check.
    r_.profile = dest_.profile();
    r_.profile["source_read_ms"] = read_ns_.load() / 1000000;
    r_.profile["source_hash_ms"] = hash_ns_.load() / 1000000;
    r_.profile["copy_wall_ms"] = static_cast<std::uint64_t>(
        std::chrono::duration<double, std::milli>(v0 - started_).count());
    r_.profile["verify_wall_ms"] = static_cast<std::uint64_t>(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - v0).count());
    return std::move(r_);
  }

 private:
  void one_pass() {
    unstable_.clear();
    std::map<std::string, const Entry*> dest_by_path;
    const std::vector<Entry> listing = dest_.list();
    std::map<std::string, EntryType> src_type;
    for (const auto& e : entries_) src_type[e.path] = e.type;

    // 1. Remove what the source no longer has (or has with another type).
    std::set<std::string> removed;
    auto under_removed = [&](const std::string& p) {
      for (auto slash = p.rfind('/'); slash != std::string::npos; slash = p.rfind('/', slash - 1)) {
        if (removed.count(p.substr(0, slash))) return true;
        if (slash == 0) break;
      }
      return false;
    };
    std::vector<const Entry*> sorted_listing;
    for (const auto& d : listing) sorted_listing.push_back(&d);
    std::sort(sorted_listing.begin(), sorted_listing.end(), [](const Entry* a, const Entry* b) { return a->path < b->path; });
    for (const Entry* d : sorted_listing) {
      if (d->path == "." || under_removed(d->path)) continue;
      auto st = src_type.find(d->path);
      if (st == src_type.end() || st->second != d->type) {
        dest_.remove(d->path);
        removed.insert(d->path);
        ++r_.files_removed;
      }
    }
    for (const auto& d : listing) dest_by_path[d.path] = &d;
    std::vector<std::string> forget;
    for (const auto& [p, rec] : journal_.files())
      if (removed.count(p) || under_removed(p)) forget.push_back(p);
    journal_.forget(forget);

    // 2. Directories, parents first (sorted order).
    for (const auto& e : entries_)
      if (e.type == EntryType::dir) dest_.make_dir(e.path);

    // 3. Regular files: the first name of every inode is sent, the others linked.
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::size_t> first;
    links_.clear();
    std::vector<std::size_t> to_send;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      if (e.type != EntryType::file) continue;
      if (e.nlink > 1) {
        auto [it, fresh] = first.emplace(std::make_pair(e.dev, e.ino), i);
        if (!fresh) {
          links_.emplace_back(i, it->second);
          continue;
        }
      }
      auto j = journal_.files().find(e.path);
      auto d = dest_by_path.find(e.path);
      if (j != journal_.files().end() && unchanged(j->second, e) && d != dest_by_path.end() &&
          d->second->type == EntryType::file && d->second->size == e.size && !removed.count(e.path) &&
          !under_removed(e.path)) {
        e.hash = j->second.hash;
        if (o_.sparse) {
          SrcFd s;
          try {
            open_source(src_ / e.path, s);
            e.sparse = verify::data_extents(s.fd, e.size);
          } catch (const Error&) {
          }
        }
        ++r_.files_skipped;
        continue;
      }
      to_send.push_back(i);
    }
    send_files(to_send);

    // 4. Hard links, special files, then directory metadata deepest first.
    for (auto [i, f] : links_) {
      dest_.make_link(entries_[i].path, entries_[f].path);
      entries_[i].hash = entries_[f].hash;
      entries_[i].sparse = entries_[f].sparse;
    }
    for (const auto& e : entries_) {
      if (e.type == EntryType::file || e.type == EntryType::dir) continue;
      auto d = dest_by_path.find(e.path);
      const bool same = d != dest_by_path.end() && d->second->type == e.type &&
                        d->second->target == e.target && d->second->rdev == e.rdev &&
                        d->second->mode == e.mode && d->second->uid == e.uid &&
                        d->second->gid == e.gid && d->second->mtime_ns == e.mtime_ns &&
                        (!o_.xattrs || d->second->xattrs == e.xattrs) && !removed.count(e.path) &&
                        !under_removed(e.path);
      if (!same) dest_.make_node(e);
    }
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
      if (it->type == EntryType::dir) dest_.set_meta(*it);
  }

  void send_files(const std::vector<std::size_t>& todo) {
    std::vector<std::size_t> order = todo;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return entries_[a].size > entries_[b].size; });
    std::atomic<std::size_t> next{0};
    std::exception_ptr err;
    std::mutex err_mu;
    std::uint64_t total = 0;
    for (std::size_t i : order) total += entries_[i].size;
    task_ = o_.progress ? o_.progress->begin("migrating " + src_.string(), total) : -1;
    auto worker = [&](std::uint32_t slot) {
      try {
        for (;;) {
          if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted");
          {
            std::lock_guard<std::mutex> lk(err_mu);
            if (err) return;
          }
          const std::size_t k = next.fetch_add(1);
          if (k >= order.size()) return;
          copy_file(order[k], slot);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lk(err_mu);
        if (!err) err = std::current_exception();
      }
    };
    // Copies wait on storage more than they compute: twice the cores (at least 4).
    unsigned n = o_.threads ? o_.threads : std::max(4u, 2 * std::thread::hardware_concurrency());
    n = static_cast<unsigned>(std::min<std::size_t>(n, std::max<std::size_t>(1, order.size())));
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < n; ++t) pool.emplace_back(worker, t);
    for (auto& t : pool) t.join();
    if (err) {
      if (o_.progress) o_.progress->end(task_, false);
      std::rethrow_exception(err);
    }
    commit(true);
    if (o_.progress) o_.progress->end(task_, true);
  }

  void copy_file(std::size_t index, std::uint32_t slot) {
    Entry e = entries_[index];
    const std::filesystem::path path = src_ / e.path;
    SrcFd s;
    try {
      open_source(path, s);
    } catch (const Error&) {
      if (errno == ENOENT || errno == ELOOP) {  // vanished or replaced (live source)
        std::lock_guard<std::mutex> lk(mu_);
        unstable_.push_back(e.path);
        return;
      }
      throw;
    }
    if (!s.direct) buffered_reads_.store(true);
    struct stat before{};
    if (::fstat(s.fd, &before) != 0) throw_errno("cannot stat", path.string());
    e.size = static_cast<std::uint64_t>(before.st_size);
    e.mtime_ns = ns_of(before.st_mtim);
    e.ctime_ns = ns_of(before.st_ctim);
    e.ino = before.st_ino;
    e.mode = before.st_mode & 07777;
    e.uid = before.st_uid;
    e.gid = before.st_gid;
    const auto ext = verify::data_extents(s.fd, e.size);
    const std::vector<verify::DataExtent> ranges = ext ? *ext : std::vector<verify::DataExtent>{{0, e.size}};
    thread_local io::AlignedBuffer buf(kChunk);
    crypto::Hasher h(o_.alg);
    std::string whole_hex;  // set when the file was read in one piece and hashed at once
    dest_.file_begin(slot, e);
    std::uint64_t pos = 0, sent = 0;
    for (const auto& d : ranges) {
      while (pos < d.offset) {
        const std::uint64_t n = std::min<std::uint64_t>(d.offset - pos, zeros().size());
        h.update(crypto::ByteView(zeros().data(), n));
        pos += n;
      }
      std::uint64_t done = 0;
      while (done < d.length) {
        const std::uint64_t at = d.offset + done;
        const std::uint64_t start = s.direct ? at & ~(kAlign - 1) : at;
        const std::uint64_t skip = at - start;
        std::uint64_t want = std::min<std::uint64_t>(buf.size(), skip + (d.length - done));
        if (s.direct) want = std::min<std::uint64_t>(buf.size(), (want + kAlign - 1) & ~(kAlign - 1));
        const auto r0 = std::chrono::steady_clock::now();
        const ssize_t got = ::pread(s.fd, buf.data(), want, static_cast<off_t>(start));
        const auto r1 = std::chrono::steady_clock::now();
        read_ns_.fetch_add(static_cast<std::uint64_t>((r1 - r0).count()), std::memory_order_relaxed);
        if (got < 0) {
          if (errno == EINTR) continue;
          throw_errno("cannot read", path.string());
        }
        if (static_cast<std::uint64_t>(got) <= skip) break;  // the file shrank
        const std::uint64_t n = std::min<std::uint64_t>(static_cast<std::uint64_t>(got) - skip, d.length - done);
        const crypto::ByteView bytes(buf.data() + skip, n);
        const bool whole = at == 0 && n == e.size && ranges.size() == 1;  // the whole file in one piece
        if (whole) whole_hex = crypto::to_hex(crypto::hash(o_.alg, bytes));
        else h.update(bytes);
        hash_ns_.fetch_add(static_cast<std::uint64_t>((std::chrono::steady_clock::now() - r1).count()),
                           std::memory_order_relaxed);
        limiter_.take(n);
        dest_.file_data(slot, at, bytes, whole ? &whole_hex : nullptr);
        done += n;
        sent += n;
        if (o_.progress) o_.progress->update(task_, progress_.fetch_add(n) + n);
      }
      pos = d.offset + done;
      if (done < d.length) break;
    }
    while (pos < e.size) {
      const std::uint64_t n = std::min<std::uint64_t>(e.size - pos, zeros().size());
      h.update(crypto::ByteView(zeros().data(), n));
      pos += n;
    }
    dest_.file_end(slot, e);
    struct stat after{};
    const bool unstable = ::fstat(s.fd, &after) != 0 || !same_identity(before, after);
    InFlight f;
    f.index = index;
    f.rec.hash = whole_hex.empty() ? crypto::to_hex(h.final()) : whole_hex;
    f.rec.size = e.size;
    f.rec.ino = e.ino;
    f.rec.mtime_ns = e.mtime_ns;
    f.rec.ctime_ns = e.ctime_ns;
    f.sparse = ext;
    f.unstable = unstable;
    bool seal = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      entries_[index].size = e.size;
      entries_[index].mtime_ns = e.mtime_ns;
      entries_[index].ctime_ns = e.ctime_ns;
      entries_[index].mode = e.mode;
      entries_[index].uid = e.uid;
      entries_[index].gid = e.gid;
      entries_[index].hash = f.rec.hash;
      entries_[index].sparse = o_.sparse ? ext : std::nullopt;
      if (unstable) unstable_.push_back(e.path);
      inflight_[e.path] = std::move(f);
      ++r_.files_sent;
      r_.bytes_sent += sent;
      batch_bytes_ += e.size;
      ++batch_files_;
      const auto now = std::chrono::steady_clock::now();
      if (batch_files_ == 1) batch_start_ = now;
      // Seal by size, count, or age (a slow or rate-limited link still makes
      // progress durable, and resumable, every second).
      seal = batch_bytes_ >= kBatchBytes || batch_files_ >= kBatchFiles || now - batch_start_ >= std::chrono::seconds(1);
      if (seal) batch_bytes_ = batch_files_ = 0;
    }
    if (seal) commit(false);
  }

  // Commits what has been written; wait: also collect every re-read result.
  void commit(bool wait) {
    std::lock_guard<std::mutex> ck(commit_mu_);
    dest_.commit(o_.verify);
    dest_.results(wait, [this](const std::vector<Committed>& c) { collect(c); });
    committed_ += 1;
    if (o_.after_commit) o_.after_commit(r_.files_sent);
  }

  void collect(const std::vector<Committed>& results) {
    std::vector<std::pair<std::string, JournalRecord>> recs;
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (const auto& c : results) {
        auto it = inflight_.find(c.path);
        if (it == inflight_.end()) continue;
        InFlight f = std::move(it->second);
        inflight_.erase(it);
        if (o_.verify) {
          if (!c.error.empty()) {
            r_.copy_failures.push_back({verify::printable(c.path), "content", "re-read failed: " + c.error});
            continue;
          }
          if (c.hash != f.rec.hash) {
            r_.copy_failures.push_back({verify::printable(c.path), "content",
                                        "re-read from storage differs from what was sent"});
            continue;
          }
          f.rec.verified = true;
        }
        if (!f.unstable) recs.emplace_back(c.path, f.rec);
      }
    }
    journal_.record(recs);
  }

  void finish_source_manifest() {
    r_.source.kind = "tree";
    r_.source.alg = o_.alg;
    r_.source.root = std::filesystem::absolute(src_).lexically_normal().string();
    r_.source.created = dlc::now_rfc3339();
    r_.source.host = host_name();
    r_.source.tool = std::string("dlc ") + DLC_VERSION;
    r_.source.read_method = buffered_reads_.load() ? "cached" : "direct";
    r_.source.xattrs = o_.xattrs;
    r_.source.sparse = o_.sparse;
    r_.source.entries = entries_;
    for (auto& e : r_.source.entries)
      if (!o_.sparse) e.sparse.reset();
    verify::finalize(r_.source);
  }

  void verify_all() {
    if (o_.before_verify) {
      // Test hook: the local destination root, to damage it before verification.
      o_.before_verify(std::filesystem::path(o_.destination));
    }
    verify::Manifest d = dest_.scan();
    verify::CompareOptions co;
    co.xattrs = o_.xattrs;
    co.sparse = o_.sparse;
    verify::Comparison c = verify::compare(r_.source, d, co);
    for (const auto& f : r_.copy_failures)
      if (std::none_of(c.differences.begin(), c.differences.end(),
                       [&](const verify::Difference& x) { return x.path == f.path; }))
        c.differences.push_back(f);
    c.ok = c.differences.empty();
    // Anything that did not verify is sent again by the next run.
    std::map<std::string, std::string> by_printable;
    for (const auto& [p, rec] : journal_.files()) by_printable[verify::printable(p)] = p;
    std::vector<std::string> forget;
    for (const auto& diff : c.differences)
      if (auto it = by_printable.find(diff.path); it != by_printable.end()) forget.push_back(it->second);
    std::sort(forget.begin(), forget.end());
    forget.erase(std::unique(forget.begin(), forget.end()), forget.end());
    journal_.forget(forget);
    if (o_.final_pass) {
      std::vector<Entry> now = verify::walk_tree(src_, o_.xattrs);
      sort_entries(now);
      std::map<std::string, const Entry*> by;
      for (const auto& e : now) by[e.path] = &e;
      for (const auto& e : entries_) {
        auto it = by.find(e.path);
        if (it == by.end() || !same_meta(e, *it->second))
          r_.source_changed.push_back(verify::printable(e.path));
      }
      for (const auto& e : now)
        if (!std::binary_search(entries_.begin(), entries_.end(), e,
                                [](const Entry& a, const Entry& b) { return a.path < b.path; }))
          r_.source_changed.push_back(verify::printable(e.path));
      for (const auto& p : unstable_) r_.source_changed.push_back(verify::printable(p));
      for (const auto& p : r_.source_changed)
        c.differences.push_back({p, "source-changed", "the source changed during the final pass"});
      c.ok = c.differences.empty();
    }
    r_.dest = std::move(d);
    r_.comparison = std::move(c);
  }

  const MigrateOptions& o_;
  std::filesystem::path src_;
  Destination& dest_;
  Journal& journal_;
  RateLimiter limiter_;
  std::vector<Entry> entries_;
  std::vector<std::pair<std::size_t, std::size_t>> links_;
  std::mutex mu_, commit_mu_;
  std::map<std::string, InFlight> inflight_;
  std::vector<std::string> unstable_;
  std::uint64_t batch_bytes_ = 0, committed_ = 0;
  std::size_t batch_files_ = 0;
  std::chrono::steady_clock::time_point batch_start_;
  std::atomic<std::uint64_t> progress_{0};
  std::atomic<bool> buffered_reads_{false};
  std::atomic<std::uint64_t> read_ns_{0}, hash_ns_{0};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  int task_ = -1;
  TreeResult r_;
};

}  // namespace

bool unchanged(const JournalRecord& r, const Entry& e) {
  return r.size == e.size && r.ino == e.ino && r.mtime_ns == e.mtime_ns && r.ctime_ns == e.ctime_ns;
}

TreeResult migrate_tree(const MigrateOptions& o, const std::filesystem::path& src, Destination& dest,
                        Journal& journal, std::vector<Entry> walk) {
  TreeMigrator m(o, src, dest, journal);
  return m.run(std::move(walk));
}

}  // namespace dlc::migrate
