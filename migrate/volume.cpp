// The volume engine: block device or image file to block device or image
// file, chunk by chunk through the io_uring engine (O_DIRECT, one engine per
// thread), every chunk hashed as it is read, synced after it is written and
// journalled; later passes (--passes) re-read the whole source and send the
// chunks whose hash changed, --final requires a pass that finds none; then
// the destination is re-read from storage and hashed per chunk and both
// volume manifests are compared.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <cstring>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/io_engine.h"
#include "core/runtime.h"
#include "core/text.h"
#include "migrate/engine.h"
#include "migrate/remote.h"

namespace dlc::migrate {

namespace {

constexpr std::uint64_t kVolumeChunk = 32ull << 20;

std::string chunk_key(std::uint64_t i) { return "#chunk/" + std::to_string(i); }

// Reads [off, off + len) of the source into chunk (aligned, at least len
// rounded up to the block size): whole blocks through the io engine, an
// unaligned tail of an image with one pread.
void read_chunk(io::Engine& engine, io::File& in, std::uint64_t lbs, std::uint64_t off, std::uint64_t len,
                io::AlignedBuffer& chunk) {
  const std::uint64_t aligned = len / lbs * lbs;
  if (aligned) {
    io::Extent ext{off, aligned};
    engine.read(in, std::span<const io::Extent>(&ext, 1), [&](std::uint64_t at, std::span<const std::uint8_t> b) {
      std::memcpy(chunk.data() + (at - off), b.data(), b.size());
    });
  }
  if (aligned < len) {
    // With O_DIRECT the length must be a multiple of the block size: ask for
    // the rounded-up length (the chunk buffer has room), get the tail.
    const std::uint64_t ask = (len - aligned + lbs - 1) / lbs * lbs;
    const ssize_t got = ::pread(in.fd(), chunk.data() + aligned, ask, static_cast<off_t>(off + aligned));
    if (got != static_cast<ssize_t>(len - aligned)) throw_errno("cannot read", in.path());
  }
}

verify::Manifest source_manifest(const MigrateOptions& o, const std::string& src, bool direct, std::uint64_t size,
                                 const std::vector<std::string>& hashes) {
  verify::Manifest m;
  m.kind = "volume";
  m.alg = o.alg;
  m.root = src;
  m.created = dlc::now_rfc3339();
  m.host = host_name();
  m.tool = std::string("dlc ") + DLC_VERSION;
  m.read_method = direct ? "direct" : "cached";
  m.xattrs = m.sparse = false;
  verify::Entry e;
  e.path = ".";
  e.type = verify::EntryType::volume;
  e.size = size;
  e.chunk_size = kVolumeChunk;
  e.chunks = hashes;
  e.hash = verify::volume_hash(hashes, o.alg);
  m.entries.push_back(std::move(e));
  verify::finalize(m);
  return m;
}

// Compares the destination's volume manifest with the source's; chunks that
// did not verify are dropped from the journal (the next run sends them
// again), those that did are recorded as verified.
verify::Comparison settle(const verify::Manifest& src, const verify::Manifest& dst, Journal& journal,
                          std::uint64_t size) {
  verify::Comparison c = verify::compare(src, dst);
  const auto& sc = src.entries.front().chunks;
  const auto& dc = dst.entries.front().chunks;
  const auto known = journal.files();
  std::vector<std::pair<std::string, JournalRecord>> verified;
  std::vector<std::string> bad;
  for (std::uint64_t i = 0; i < sc.size(); ++i) {
    JournalRecord rec;
    rec.hash = sc[i];
    rec.size = std::min(kVolumeChunk, size - i * kVolumeChunk);
    rec.verified = true;
    if (i < dc.size() && dc[i] == sc[i]) {
      auto k = known.find(chunk_key(i));
      if (k == known.end() || !k->second.verified || k->second.hash != rec.hash) verified.emplace_back(chunk_key(i), rec);
    } else {
      bad.push_back(chunk_key(i));
    }
  }
  journal.forget(bad);
  journal.record(verified);
  return c;
}


// Hands the chunks still to do to several workers, one at a time. A chunk an
// earlier run proved (the journal has it, same size) is skipped with its
// recorded hash. Nothing more is handed out after a stop request (thrown as
// Errc::interrupted) or once a worker failed (err set).
struct ChunkCursor {
  struct Chunk {
    std::uint64_t index, off, len;
  };
  std::uint64_t size, nchunks;
  const std::map<std::string, JournalRecord>& proven;
  std::vector<std::string>& hashes;
  std::uint64_t& skipped;
  std::mutex& mu;
  const std::exception_ptr& err;
  bool all = false;  // later passes: every chunk, none skipped
  std::atomic<std::uint64_t> next{0};

  std::optional<Chunk> take() {
    for (;;) {
      if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted");
      {
        std::lock_guard<std::mutex> lk(mu);
        if (err) return std::nullopt;
      }
      const std::uint64_t i = next.fetch_add(1);
      if (i >= nchunks) return std::nullopt;
      const std::uint64_t off = i * kVolumeChunk;
      const std::uint64_t len = std::min(kVolumeChunk, size - off);
      auto j = all ? proven.end() : proven.find(chunk_key(i));
      if (j != proven.end() && j->second.size == len) {
        std::lock_guard<std::mutex> lk(mu);
        hashes[i] = j->second.hash;
        ++skipped;
        continue;
      }
      return Chunk{i, off, len};
    }
  }
};

// The first pass sends every chunk not proven by an earlier run; a resend pass
// re-reads every chunk and sends those whose hash differs from what the
// destination was given; a check pass only re-reads and compares.
enum class Pass { first, resend, check };

const char* pass_label(Pass p) {
  switch (p) {
    case Pass::first: return "migrating ";
    case Pass::resend: return "re-reading for changes ";
    case Pass::check: return "final check of ";
  }
  return "";
}

// The passes of one volume migration over a possibly live source and the
// state they share (the chunk hand-out, the chunks a pass found changed,
// progress). run() runs the first pass, then up to o.passes - 1 resend passes,
// stopping at one that found no change; with --final, a check pass unless the
// last pass already found none. Chunks that still changed under the final
// check land in r.source_changed_chunks.
class VolumePasses {
 public:
  VolumePasses(const MigrateOptions& o, const std::string& src, std::uint64_t size, unsigned threads,
               const std::map<std::string, JournalRecord>& proven, std::vector<std::string>& hashes,
               VolumeResult& r, std::mutex& mu, std::exception_ptr& err)
      : o_(o), src_(src), size_(size), threads_(threads), proven_(proven), hashes_(hashes), r_(r), mu_(mu),
        err_(err) {}

  // Called by a worker once chunk i is read and hashed: true when it is not
  // to be sent (a later pass found it unchanged, or this is the check pass).
  // A changed chunk is recorded; one to be resent leaves the journal first
  // (the destination's copy is stale until it is rewritten).
  bool skip(Pass mode, std::uint64_t i, std::uint64_t len, const std::string& hex, Journal& journal) {
    if (mode == Pass::first) return false;
    bool same = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      same = hashes_[i] == hex;
      if (!same) changed_.push_back(i);
    }
    if (same || mode == Pass::check) {
      advance(len);
      return true;
    }
    journal.forget({chunk_key(i)});
    return false;
  }
  void advance(std::uint64_t len) {
    if (o_.progress) o_.progress->update(task_, progress_.fetch_add(len) + len);
  }

  // worker(ChunkCursor&, Pass) runs on every thread of a pass; after_join()
  // once they all finished without error (its exception fails the pass).
  template <typename Worker, typename AfterJoin>
  void run(Worker&& worker, AfterJoin&& after_join) {
    one(Pass::first, worker, after_join);
    r_.passes = 1;
    bool stable = false;
    for (unsigned p = 2; p <= std::max(1u, o_.passes); ++p) {
      stable = one(Pass::resend, worker, after_join).empty();
      r_.passes = p;
      if (stable) break;
    }
    if (o_.final_pass && !stable) {
      r_.source_changed_chunks = one(Pass::check, worker, after_join);
      ++r_.passes;
    }
  }

 private:
  // One pass; returns the indexes of the chunks it found changed, sorted.
  template <typename Worker, typename AfterJoin>
  std::vector<std::uint64_t> one(Pass mode, Worker& worker, AfterJoin& after_join) {
    changed_.clear();
    progress_ = 0;
    const std::uint64_t nchunks = (size_ + kVolumeChunk - 1) / kVolumeChunk;
    ChunkCursor cursor{size_, nchunks, proven_, hashes_, r_.chunks_skipped, mu_, err_, mode != Pass::first};
    task_ = o_.progress ? o_.progress->begin(pass_label(mode) + src_, size_) : -1;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads_; ++t) pool.emplace_back([&] { worker(cursor, mode); });
    for (auto& t : pool) t.join();
    if (!err_) {
      try {
        after_join();
      } catch (...) {
        err_ = std::current_exception();
      }
    }
    if (o_.progress) o_.progress->end(task_, !err_);
    if (err_) std::rethrow_exception(err_);
    std::sort(changed_.begin(), changed_.end());
    return changed_;
  }

  const MigrateOptions& o_;
  const std::string& src_;
  std::uint64_t size_;
  unsigned threads_;
  const std::map<std::string, JournalRecord>& proven_;
  std::vector<std::string>& hashes_;
  VolumeResult& r_;
  std::mutex& mu_;
  std::exception_ptr& err_;
  std::vector<std::uint64_t> changed_;  // guarded by mu_
  std::atomic<std::uint64_t> progress_{0};
  int task_ = -1;
};

// After settle(): chunks the final check saw change are failed and forgotten
// (the destination holds what was read, not what the source holds now), so
// the next run sends them again.
void fail_changed_chunks(VolumeResult& r, Journal& journal) {
  if (r.source_changed_chunks.empty()) return;
  std::vector<std::string> keys;
  for (const std::uint64_t i : r.source_changed_chunks) {
    keys.push_back(chunk_key(i));
    if (r.comparison)
      r.comparison->differences.push_back({".", "source-changed",
                                           "chunk at offset " + std::to_string(i * kVolumeChunk) +
                                               ": the source changed during the final pass"});
  }
  journal.forget(keys);
  if (r.comparison) r.comparison->ok = r.comparison->differences.empty();
}
}  // namespace

VolumeResult migrate_volume(const MigrateOptions& o, const std::string& src, const std::string& dst,
                            Journal& journal) {
  VolumeResult r;
  io::OpenOptions ro;
  ro.mode = io::OpenMode::read;
  io::File probe = io::File::open(src, ro);
  const std::uint64_t size = probe.size();
  struct stat dst_st{};
  const bool dst_exists = ::stat(dst.c_str(), &dst_st) == 0;
  const bool dst_is_dev = dst_exists && S_ISBLK(dst_st.st_mode);
  io::OpenOptions wo;
  wo.mode = io::OpenMode::read_write;
  wo.exclusive = dst_is_dev;  // refuses a mounted or otherwise held device
  wo.create = !dst_exists;
  {
    io::File d = io::File::open(dst, wo);
    if (dst_is_dev && d.size() < size)
      throw Error(Errc::refused, "destination device is smaller than the source", dst,
                  std::to_string(d.size()) + " < " + std::to_string(size) + " bytes",
                  "choose a device at least as large as the source");
    if (!dst_is_dev && ::ftruncate(d.fd(), static_cast<off_t>(size)) != 0) throw_errno("cannot size", dst);
  }
  // The held exclusive open keeps other openers of the device out for the whole job.
  io::OpenOptions hold = wo;
  hold.create = false;
  io::File holder = dst_is_dev ? io::File::open(dst, hold) : io::File();
  (void)holder;

  const std::uint64_t nchunks = (size + kVolumeChunk - 1) / kVolumeChunk;
  // What earlier runs proved, copied: the workers append to the journal meanwhile.
  const std::map<std::string, JournalRecord> proven = journal.files();
  std::vector<std::string> hashes(nchunks);
  RateLimiter limiter(o.bwlimit);
  std::mutex mu;
  std::exception_ptr err;
  const unsigned threads = static_cast<unsigned>(std::min<std::uint64_t>(
      o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency()), std::max<std::uint64_t>(1, nchunks)));
  VolumePasses passes(o, src, size, threads, proven, hashes, r, mu, err);
  std::atomic<std::uint64_t> read_ns{0}, hash_ns{0}, write_ns{0}, sync_ns{0};
  Stopwatch wall;
  auto worker = [&](ChunkCursor& cursor, Pass mode) {
    try {
      io::File in = io::File::open(src, ro);
      io::OpenOptions w2 = wo;
      w2.create = false;
      w2.exclusive = false;  // the holder keeps the exclusive claim
      io::File out = io::File::open(dst, w2);
      const std::uint64_t lbs = std::max(in.direct() ? in.logical_block_size() : 1u,
                                         out.direct() ? out.logical_block_size() : 1u);
      io::Engine engine;
      io::AlignedBuffer chunk(kVolumeChunk);
      for (;;) {
        const auto c = cursor.take();
        if (!c) return;
        const std::uint64_t i = c->index, off = c->off, len = c->len;
        const std::uint64_t aligned = len / lbs * lbs;
        Stopwatch sw;
        read_chunk(engine, in, lbs, off, len, chunk);
        read_ns += sw.lap();
        const std::string hex = crypto::to_hex(crypto::hash(o.alg, crypto::ByteView(chunk.data(), len)));
        hash_ns += sw.lap();
        if (passes.skip(mode, i, len, hex, journal)) continue;
        limiter.take(len);
        sw.lap();
        if (aligned) {
          io::Extent ext{off, aligned};
          engine.write(out, std::span<const io::Extent>(&ext, 1),
                       [&](std::uint64_t at, std::span<std::uint8_t> b) {
                         std::memcpy(b.data(), chunk.data() + (at - off), b.size());
                       });
        }
        if (aligned < len) {  // the unaligned tail of an image file: a buffered write
          const int fd = ::open(dst.c_str(), O_WRONLY | O_CLOEXEC);
          if (fd < 0) throw_errno("cannot open", dst);
          const ssize_t w = ::pwrite(fd, chunk.data() + aligned, len - aligned, static_cast<off_t>(off + aligned));
          const int werr = errno;
          const bool synced = ::fdatasync(fd) == 0;
          ::close(fd);
          if (w != static_cast<ssize_t>(len - aligned) || !synced) throw_errno("cannot write", dst, werr);
        }
        write_ns += sw.lap();
        out.sync();
        sync_ns += sw.lap();
        JournalRecord rec;
        rec.hash = hex;
        rec.size = len;
        journal.record({{chunk_key(i), rec}});
        std::uint64_t sent = 0;
        {
          std::lock_guard<std::mutex> lk(mu);
          hashes[i] = rec.hash;
          sent = ++r.chunks_sent;
          r.bytes_sent += len;
        }
        passes.advance(len);
        if (o.after_commit) o.after_commit(sent);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!err) err = std::current_exception();
    }
  };
  passes.run(worker, [] {});
  r.profile = {{"source_read_ms", read_ns / 1000000}, {"source_hash_ms", hash_ns / 1000000},
               {"write_ms", write_ns / 1000000},     {"sync_ms", sync_ns / 1000000},
               {"copy_wall_ms", wall.lap() / 1000000}};

  r.source = source_manifest(o, src, probe.direct(), size, hashes);
  const verify::Manifest& m = r.source;

  if (o.verify) {
    if (o.before_verify) o.before_verify(std::filesystem::path(dst));
    verify::ScanOptions so;
    so.root = dst;
    so.alg = o.alg;
    so.volume = true;
    so.no_cache = true;
    so.chunk_size = kVolumeChunk;
    so.volume_length = size;
    so.threads = o.threads;
    so.progress = o.progress;
    r.dest = verify::build_manifest(so);
    r.dest->root = dst;
    // Chunks that did not verify are sent again by the next run.
    r.comparison = settle(m, *r.dest, journal, size);
    fail_changed_chunks(r, journal);
  }
  r.profile["verify_wall_ms"] = wall.lap() / 1000000;
  return r;
}

VolumeResult migrate_volume_remote(const MigrateOptions& o, const std::string& src, RemoteVolume& dst,
                                   Journal& journal) {
  VolumeResult r;
  io::OpenOptions ro;
  ro.mode = io::OpenMode::read;
  io::File probe = io::File::open(src, ro);
  const std::uint64_t size = probe.size();
  const std::uint64_t nchunks = (size + kVolumeChunk - 1) / kVolumeChunk;
  dst.open(size, kVolumeChunk);

  const std::map<std::string, JournalRecord> proven = journal.files();
  std::vector<std::string> hashes(nchunks);
  std::map<std::uint64_t, JournalRecord> pending;  // sent, result not back yet
  RateLimiter limiter(o.bwlimit);
  std::mutex mu;
  std::exception_ptr err;
  // Two readers: one reads and hashes the next chunk while the other's is on the wire.
  const unsigned threads = static_cast<unsigned>(std::min<std::uint64_t>(
      o.threads ? o.threads : 2, std::max<std::uint64_t>(1, nchunks)));
  VolumePasses passes(o, src, size, threads, proven, hashes, r, mu, err);
  std::atomic<std::uint64_t> read_ns{0}, hash_ns{0}, send_ns{0};
  Stopwatch wall;
  // The receiver's results: a chunk is journalled (verified: its re-read from
  // the receiver's storage matched) only once it is durable there.
  auto collect = [&](const std::vector<ChunkResult>& results) {
    std::vector<std::pair<std::string, JournalRecord>> recs;
    {
      std::lock_guard<std::mutex> lk(mu);
      for (const auto& c : results) {
        auto it = pending.find(c.index);
        if (it == pending.end()) continue;
        JournalRecord rec = it->second;
        pending.erase(it);
        const std::string where = "chunk at offset " + std::to_string(c.index * kVolumeChunk);
        if (!c.error.empty()) {
          r.copy_failures.push_back({".", "content", where + ": " + c.error});
        } else if (c.hash != rec.hash) {
          r.copy_failures.push_back({".", "content", where + ": re-read from storage differs from what was sent"});
        } else {
          rec.verified = true;
          recs.emplace_back(chunk_key(c.index), rec);
        }
      }
    }
    journal.record(recs);
  };
  auto worker = [&](ChunkCursor& cursor, Pass mode) {
    try {
      io::File in = io::File::open(src, ro);
      const std::uint64_t lbs = in.direct() ? in.logical_block_size() : 1u;
      io::EngineOptions eo;
      eo.queue_depth = 8;
      io::Engine engine(eo);
      io::AlignedBuffer chunk(kVolumeChunk);
      for (;;) {
        const auto c = cursor.take();
        if (!c) return;
        const std::uint64_t i = c->index, off = c->off, len = c->len;
        Stopwatch sw;
        read_chunk(engine, in, lbs, off, len, chunk);
        read_ns += sw.lap();
        JournalRecord rec;
        rec.hash = crypto::to_hex(crypto::hash(o.alg, crypto::ByteView(chunk.data(), len)));
        hash_ns += sw.lap();
        rec.size = len;
        if (passes.skip(mode, i, len, rec.hash, journal)) continue;
        limiter.take(len);
        if (o.tamper_in_transit) o.tamper_in_transit(off, std::span<std::uint8_t>(chunk.data(), len));
        {
          std::lock_guard<std::mutex> lk(mu);
          hashes[i] = rec.hash;
          pending[i] = rec;
        }
        // The frame carries the hash computed while reading: the receiver
        // checks it before writing (integrity in transit, on top of TLS).
        sw.lap();
        dst.send_chunk(i, off, crypto::ByteView(chunk.data(), len), rec.hash);
        send_ns += sw.lap();
        std::uint64_t sent = 0;
        {
          std::lock_guard<std::mutex> lk(mu);
          sent = ++r.chunks_sent;
          r.bytes_sent += len;
        }
        passes.advance(len);
        dst.results(false, collect);
        if (o.after_commit) o.after_commit(sent);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!err) err = std::current_exception();
    }
  };
  passes.run(worker, [&] {
    dst.results(true, collect);  // every chunk of this pass durable and re-read there
    if (!pending.empty())
      throw Error(Errc::io, "the receiver did not report every chunk", dst.info().target,
                  std::to_string(pending.size()) + " chunk(s) missing", "run the same command again to resume");
  });
  // The sender's phases, and the receiver's (checked, written, synced, re-read there).
  r.profile = {{"source_read_ms", read_ns / 1000000}, {"source_hash_ms", hash_ns / 1000000},
               {"send_ms", send_ns / 1000000},        {"copy_wall_ms", wall.lap() / 1000000}};
  r.profile["receiver"] = dst.profile();

  r.source = source_manifest(o, src, probe.direct(), size, hashes);
  if (o.verify) {
    // The receiver builds the destination manifest from its storage, every
    // chunk read again (independently of the per-chunk re-reads above).
    r.dest = dst.scan();
    r.comparison = settle(r.source, *r.dest, journal, size);
    fail_changed_chunks(r, journal);
    for (const auto& f : r.copy_failures)
      if (std::none_of(r.comparison->differences.begin(), r.comparison->differences.end(),
                       [&](const verify::Difference& x) { return x.path == f.path; }))
        r.comparison->differences.push_back(f);
    r.comparison->ok = r.comparison->differences.empty();
  }
  r.profile["verify_wall_ms"] = wall.lap() / 1000000;
  return r;
}

}  // namespace dlc::migrate
