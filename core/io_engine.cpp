// dlc::io::Engine: io_uring with registered buffers and a registered file,
// queue_depth requests in flight; pread/pwrite when io_uring is unavailable.
//
// Shape of the io_uring loop (one thread, no allocation per request):
//   issue   fill a free buffer (writes) / pick the next reorder slot (reads),
//           prep an SQE; repeat while a slot is free and the cancel flag is clear
//   submit  one io_uring_enter per turn: submit the batch and wait for >= 1 CQE
//   reap    every ready CQE: complete, resubmit the rest of a short transfer,
//           retry EAGAIN/EINTR, or record the first failure
//   consume (reads) hand completed buffers over in offset order; a buffer that
//           finished early is held until its predecessors are consumed
// A failure, an exception from a callback or a cancel request stops issuing;
// the loop then drains what is in flight before throwing, so no request ever
// outlives the buffer it points at and the engine is usable afterwards.
#include "core/io_engine.h"

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/io_request.h"
#include "core/runtime.h"

namespace dlc::io {

using detail::Request;
using detail::Step;

namespace {

constexpr unsigned kMaxQueueDepth = 4096;
constexpr std::size_t kMaxBlockSize = std::size_t{1}
                                      << 30;  // io_uring's limit for one fixed buffer

// ---- io_uring probe -----------------------------------------------------------

std::string uring_failure_reason(int err) {
  switch (err) {
    case ENOSYS:
      return "the kernel has no io_uring";
    case EPERM:
      return "blocked by kernel.io_uring_disabled or a seccomp filter";
    case EACCES:
      return "not permitted for this user (kernel.io_uring_group)";
    case ENOMEM:
      return "cannot lock memory for the ring (RLIMIT_MEMLOCK)";
    default:
      return std::strerror(err);
  }
}

struct Probe {
  bool ok = false;
  std::string reason;
};

const Probe& probe() {
  static const Probe result = [] {
    Probe p;
    io_uring ring{};
    int rc = io_uring_queue_init(2, &ring, 0);
    if (rc == 0) {
      io_uring_queue_exit(&ring);
      p.ok = true;
    } else {
      p.reason = uring_failure_reason(-rc);
    }
    return p;
  }();
  return result;
}

void notice_fallback(const std::string& reason) {
  notice_once("io_uring",
              "io_uring unavailable (" + reason + "); using pread/pwrite, which is slower");
}

// ---- Requests over extents ----------------------------------------------------

// Splits the extents into block_size requests, in order; the last request of
// each extent may be shorter. Empty extents are skipped.
class Cursor {
 public:
  Cursor(std::span<const Extent> extents, std::size_t block_size)
      : extents_(extents), block_size_(block_size) {
    skip_empty();
  }
  bool more() const noexcept { return index_ < extents_.size(); }
  Request next() noexcept {
    const Extent& e = extents_[index_];
    Request r;
    r.offset = e.offset + pos_;
    r.length = static_cast<std::uint32_t>(std::min<std::uint64_t>(block_size_, e.length - pos_));
    pos_ += r.length;
    if (pos_ == e.length) {
      ++index_;
      pos_ = 0;
      skip_empty();
    }
    return r;
  }

 private:
  void skip_empty() noexcept {
    while (index_ < extents_.size() && extents_[index_].length == 0) ++index_;
  }
  std::span<const Extent> extents_;
  std::size_t block_size_;
  std::size_t index_ = 0;
  std::uint64_t pos_ = 0;
};

// Checks the request against the file and the options; returns the total bytes.
std::uint64_t validate(const File& file, std::span<const Extent> extents,
                       const EngineOptions& opts) {
  if (file.fd() < 0) throw Error(Errc::usage, "no open file for block I/O", file.path());
  const std::uint64_t align = file.direct() ? file.logical_block_size() : 1;
  if (opts.block_size % align != 0)
    throw Error(Errc::usage, "I/O block size does not fit the device", file.path(),
                "block size " + std::to_string(opts.block_size) +
                    " is not a multiple of the logical block size " + std::to_string(align));
  std::uint64_t total = 0;
  for (const Extent& e : extents) {
    if (e.length > std::numeric_limits<std::uint64_t>::max() - e.offset)
      throw Error(Errc::usage, "extent out of range", file.path(),
                  "offset " + std::to_string(e.offset) + " + length " + std::to_string(e.length) +
                      " overflows");
    if (e.offset % align != 0 || e.length % align != 0)
      throw Error(Errc::usage, "extent not aligned for direct I/O", file.path(),
                  "offset " + std::to_string(e.offset) + " and length " + std::to_string(e.length) +
                      " must be multiples of the logical block size " + std::to_string(align));
    total += e.length;
  }
  return total;
}

std::string at_offset(const File& file, std::uint64_t offset) {
  return file.path() + " at offset " + std::to_string(offset);
}

Error transfer_error(bool write, const File& file, const Request& r, Step step, long long res) {
  const char* what = write ? "write failed" : "read failed";
  if (step == Step::eof) {
    if (write)
      return Error(Errc::io, what, at_offset(file, r.next_offset()),
                   "the device accepted no more bytes", "is the range past the end of the device?");
    return Error(Errc::io, what, at_offset(file, r.next_offset()), "unexpected end of file",
                 "the file or device is shorter than the range to read");
  }
  const int err = static_cast<int>(-res);
  std::string detail = std::strerror(err);
  if (err == EAGAIN || err == EINTR)
    detail += " (retried " + std::to_string(r.retries - 1) + " times)";
  return Error(Errc::io, what, at_offset(file, r.next_offset()), std::move(detail));
}

Error interrupted_error(bool write, const File& file, std::uint64_t done, std::uint64_t total) {
  return Error(Errc::interrupted, write ? "interrupted while writing" : "interrupted while reading",
               file.path(), std::to_string(done) + " of " + std::to_string(total) + " bytes done");
}

bool cancelled(const std::atomic<bool>* cancel) noexcept {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

bool io_uring_available() { return probe().ok; }

// ---- Engine --------------------------------------------------------------------

struct Engine::Impl {
  EngineOptions opts;
  Backend backend = Backend::fallback;

  std::vector<AlignedBuffer> buffers;  // one per slot (one in total for the fallback)
  std::vector<Request> requests;       // the request each slot carries
  std::vector<unsigned> free_slots;    // writes: slots whose buffer can be refilled
  std::vector<unsigned char> ready;    // reads: slot completed, awaiting consume
  std::vector<io_uring_cqe*> cqes;

  // Declared after the buffers so that it is torn down before they are freed.
  struct Ring {
    io_uring ring{};
    bool ready = false;
    Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() {
      if (ready) io_uring_queue_exit(&ring);
    }
  } owned_ring;
  io_uring& ring = owned_ring.ring;
  bool buffers_registered = false;
  bool sparse_file_table = false;  // a one-entry file table, updated per call

  explicit Impl(const EngineOptions& o);

  bool setup_uring(std::string& reason);
  IoStats uring_run(bool write, File& file, std::span<const Extent> extents, const FillFn* fill,
                    const ConsumeFn* consume, const ProgressFn& progress,
                    const std::atomic<bool>* cancel, std::uint64_t total);
  IoStats fallback_run(bool write, File& file, std::span<const Extent> extents, const FillFn* fill,
                       const ConsumeFn* consume, const ProgressFn& progress,
                       const std::atomic<bool>* cancel, std::uint64_t total);
};

Engine::Impl::Impl(const EngineOptions& o) : opts(o) {
  if (opts.queue_depth == 0 || opts.queue_depth > kMaxQueueDepth)
    throw Error(Errc::usage, "invalid I/O queue depth", std::to_string(opts.queue_depth),
                "use 1 to " + std::to_string(kMaxQueueDepth));
  if (opts.block_size == 0 || opts.block_size % 4096 != 0 || opts.block_size > kMaxBlockSize)
    throw Error(Errc::usage, "invalid I/O block size", std::to_string(opts.block_size),
                "use a multiple of 4096 up to 1 GiB");

  if (!opts.force_fallback) {
    std::string reason;
    if (!probe().ok) {
      reason = probe().reason;
    } else if (setup_uring(reason)) {
      backend = Backend::io_uring;
    }
    if (backend == Backend::fallback) notice_fallback(reason);
  }
  if (backend == Backend::fallback) {
    buffers.emplace_back(opts.block_size);
    requests.resize(1);
  }
}

bool Engine::Impl::setup_uring(std::string& reason) {
  const unsigned qd = opts.queue_depth;
  // COOP_TASKRUN: completions are run when this thread enters the kernel
  // anyway (it is always about to wait), which saves an IPI per completion.
  io_uring_params params{};
  params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  int rc = io_uring_queue_init_params(qd, &ring, &params);
  if (rc == -EINVAL) {  // kernel older than 5.19
    params = {};
    rc = io_uring_queue_init_params(qd, &ring, &params);
  }
  if (rc < 0) {
    reason = uring_failure_reason(-rc);
    return false;
  }
  owned_ring.ready = true;

  buffers.reserve(qd);
  for (unsigned i = 0; i < qd; ++i) buffers.emplace_back(opts.block_size);
  requests.resize(qd);
  free_slots.reserve(qd);
  ready.assign(qd, 0);
  cqes.resize(static_cast<std::size_t>(qd) * 2);

  if (opts.register_buffers) {
    std::vector<iovec> iov(qd);
    for (unsigned i = 0; i < qd; ++i) iov[i] = {buffers[i].data(), buffers[i].size()};
    rc = io_uring_register_buffers(&ring, iov.data(), qd);
    if (rc == 0) {
      buffers_registered = true;
    } else {
      notice(NoticeLevel::debug, std::string("io_uring: cannot register I/O buffers (") +
                                     std::strerror(-rc) + "); using unregistered buffers");
    }
  }
  sparse_file_table = io_uring_register_files_sparse(&ring, 1) == 0;
  return true;
}

namespace {

// Registers the file with the ring for one call and drops it afterwards, so
// the ring never keeps a closed device open (an O_EXCL claim, a mount).
class FileRegistration {
 public:
  FileRegistration(io_uring& ring, bool sparse_table, int fd) : ring_(ring) {
    if (sparse_table) {
      if (io_uring_register_files_update(&ring_, 0, &fd, 1) == 1) mode_ = Mode::updated;
    } else if (io_uring_register_files(&ring_, &fd, 1) == 0) {
      mode_ = Mode::registered;
    }
  }
  ~FileRegistration() {
    if (mode_ == Mode::updated) {
      int none = -1;
      io_uring_register_files_update(&ring_, 0, &none, 1);
    } else if (mode_ == Mode::registered) {
      io_uring_unregister_files(&ring_);
    }
  }
  FileRegistration(const FileRegistration&) = delete;
  FileRegistration& operator=(const FileRegistration&) = delete;
  bool fixed() const noexcept { return mode_ != Mode::none; }

 private:
  enum class Mode { none, updated, registered };
  io_uring& ring_;
  Mode mode_ = Mode::none;
};

}  // namespace

IoStats Engine::Impl::uring_run(bool write, File& file, std::span<const Extent> extents,
                                const FillFn* fill, const ConsumeFn* consume,
                                const ProgressFn& progress, const std::atomic<bool>* cancel,
                                std::uint64_t total) {
  const auto start = Clock::now();
  const unsigned qd = opts.queue_depth;
  FileRegistration reg(ring, sparse_file_table, file.fd());
  const int sqe_fd = reg.fixed() ? 0 : file.fd();
  const unsigned char sqe_flags = reg.fixed() ? IOSQE_FIXED_FILE : 0;

  IoStats st;
  Cursor cursor(extents, opts.block_size);
  unsigned inflight = 0;
  std::uint64_t issued = 0, consumed = 0;  // reads: request numbers; slot = number % qd
  std::exception_ptr failure;
  // Transfer errors can complete out of order: the one at the lowest offset
  // is reported, so the message is the same whatever the timing.
  std::uint64_t failure_offset = std::numeric_limits<std::uint64_t>::max();
  bool failure_is_transfer = false;
  bool stop = false, was_cancelled = false;

  free_slots.clear();
  for (unsigned s = qd; s-- > 0;) free_slots.push_back(s);
  std::fill(ready.begin(), ready.end(), 0);

  auto fail = [&](std::exception_ptr e) {
    if (!failure) failure = std::move(e);
    stop = true;
  };
  auto report = [&] {
    if (!progress) return;
    try {
      progress(st.bytes);
    } catch (...) {
      fail(std::current_exception());
    }
  };
  auto prep = [&](unsigned s) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {  // cannot happen (at most qd requests, qd entries); be safe anyway
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
    }
    const Request& r = requests[s];
    std::uint8_t* p = buffers[s].data() + r.done;
    if (write) {
      if (buffers_registered)
        io_uring_prep_write_fixed(sqe, sqe_fd, p, r.remaining(), r.next_offset(),
                                  static_cast<int>(s));
      else
        io_uring_prep_write(sqe, sqe_fd, p, r.remaining(), r.next_offset());
    } else {
      if (buffers_registered)
        io_uring_prep_read_fixed(sqe, sqe_fd, p, r.remaining(), r.next_offset(),
                                 static_cast<int>(s));
      else
        io_uring_prep_read(sqe, sqe_fd, p, r.remaining(), r.next_offset());
    }
    sqe->flags |= sqe_flags;
    io_uring_sqe_set_data64(sqe, s);
  };
  // Waits for in-flight requests after io_uring_enter itself failed, so none
  // outlives its buffer; gives up only if waiting fails too.
  auto drain_after_enter_failure = [&] {
    while (inflight > 0) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(&ring, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) break;
      io_uring_cqe_seen(&ring, cqe);
      --inflight;
    }
  };

  for (;;) {
    // Issue: fill free buffers and queue them (one submit for the whole batch).
    while (!stop && cursor.more()) {
      unsigned s;
      if (write) {
        if (free_slots.empty()) break;
        s = free_slots.back();
      } else {
        if (issued - consumed >= qd) break;
        s = static_cast<unsigned>(issued % qd);
      }
      if (cancelled(cancel)) {
        stop = was_cancelled = true;
        break;
      }
      requests[s] = cursor.next();
      if (write) {
        try {
          (*fill)(requests[s].offset, {buffers[s].data(), requests[s].length});
        } catch (...) {
          fail(std::current_exception());
          break;
        }
        free_slots.pop_back();
      } else {
        ready[s] = 0;
        ++issued;
      }
      prep(s);
      ++inflight;
    }
    if (inflight == 0) break;

    // Submit the batch; wait for a completion unless some are already there.
    for (;;) {
      int rc = io_uring_cq_ready(&ring) > 0 ? io_uring_submit(&ring)
                                            : io_uring_submit_and_wait(&ring, 1);
      if (rc >= 0 || rc == -EINTR) break;
      if ((rc == -EAGAIN || rc == -EBUSY) && io_uring_cq_ready(&ring) > 0) break;
      if (rc == -EAGAIN || rc == -EBUSY) continue;
      drain_after_enter_failure();
      throw Error(Errc::io, "io_uring submission failed", file.path(), std::strerror(-rc));
    }

    // Reap every completion that is ready.
    const unsigned n =
        io_uring_peek_batch_cqe(&ring, cqes.data(), static_cast<unsigned>(cqes.size()));
    for (unsigned i = 0; i < n; ++i) {
      const auto s = static_cast<unsigned>(io_uring_cqe_get_data64(cqes[i]));
      const int res = cqes[i]->res;
      Request& r = requests[s];
      const Step step = detail::advance(r, res);
      if (step == Step::resubmit) {  // even when stopping: every issued request runs to its end
        ++st.short_retries;
        prep(s);
        continue;
      }
      --inflight;
      if (step == Step::complete) {
        ++st.requests;
        if (write) {
          st.bytes += r.length;
          free_slots.push_back(s);
          report();
        } else {
          ready[s] = 1;
        }
        continue;
      }
      if (write) free_slots.push_back(s);
      if (!failure || (failure_is_transfer && r.next_offset() < failure_offset)) {
        failure = std::make_exception_ptr(transfer_error(write, file, r, step, res));
        failure_offset = r.next_offset();
        failure_is_transfer = true;
      }
      stop = true;
    }
    io_uring_cq_advance(&ring, n);

    // Reads: hand over completed buffers in offset order.
    if (!write) {
      while (!stop && consumed < issued) {
        const auto s = static_cast<unsigned>(consumed % qd);
        if (!ready[s]) break;
        if (cancelled(cancel)) {  // hand over nothing more once asked to stop
          stop = was_cancelled = true;
          break;
        }
        const Request& r = requests[s];
        try {
          (*consume)(r.offset, {buffers[s].data(), r.length});
        } catch (...) {
          fail(std::current_exception());
          break;
        }
        ready[s] = 0;
        ++consumed;
        st.bytes += r.length;
        report();
      }
    }
  }

  st.seconds = seconds_since(start);
  if (failure) std::rethrow_exception(failure);
  if (was_cancelled) throw interrupted_error(write, file, st.bytes, total);
  return st;
}

IoStats Engine::Impl::fallback_run(bool write, File& file, std::span<const Extent> extents,
                                   const FillFn* fill, const ConsumeFn* consume,
                                   const ProgressFn& progress, const std::atomic<bool>* cancel,
                                   std::uint64_t total) {
  const auto start = Clock::now();
  IoStats st;
  Cursor cursor(extents, opts.block_size);
  std::uint8_t* buf = buffers[0].data();
  const int fd = file.fd();
  while (cursor.more()) {
    if (cancelled(cancel)) throw interrupted_error(write, file, st.bytes, total);
    Request r = cursor.next();
    if (write) (*fill)(r.offset, {buf, r.length});
    for (;;) {
      const auto off = static_cast<off_t>(r.next_offset());
      const ssize_t n = write ? ::pwrite(fd, buf + r.done, r.remaining(), off)
                              : ::pread(fd, buf + r.done, r.remaining(), off);
      const long long res = n < 0 ? -static_cast<long long>(errno) : n;
      const Step step = detail::advance(r, res);
      if (step == Step::complete) break;
      if (step == Step::resubmit) {
        ++st.short_retries;
        continue;
      }
      throw transfer_error(write, file, r, step, res);
    }
    if (!write) (*consume)(r.offset, {buf, r.length});
    ++st.requests;
    st.bytes += r.length;
    if (progress) progress(st.bytes);
  }
  st.seconds = seconds_since(start);
  return st;
}

Engine::Engine(const EngineOptions& opts) : impl_(std::make_unique<Impl>(opts)) {}
Engine::~Engine() = default;

Backend Engine::backend() const noexcept { return impl_->backend; }
const EngineOptions& Engine::options() const noexcept { return impl_->opts; }

IoStats Engine::write(File& file, std::span<const Extent> extents, const FillFn& fill,
                      const ProgressFn& progress, const std::atomic<bool>* cancel) {
  if (!fill) throw Error(Errc::usage, "no fill function for writing", file.path());
  const std::uint64_t total = validate(file, extents, impl_->opts);
  if (impl_->backend == Backend::io_uring)
    return impl_->uring_run(true, file, extents, &fill, nullptr, progress, cancel, total);
  return impl_->fallback_run(true, file, extents, &fill, nullptr, progress, cancel, total);
}

IoStats Engine::read(File& file, std::span<const Extent> extents, const ConsumeFn& consume,
                     const ProgressFn& progress, const std::atomic<bool>* cancel) {
  if (!consume) throw Error(Errc::usage, "no consume function for reading", file.path());
  const std::uint64_t total = validate(file, extents, impl_->opts);
  if (impl_->backend == Backend::io_uring)
    return impl_->uring_run(false, file, extents, nullptr, &consume, progress, cancel, total);
  return impl_->fallback_run(false, file, extents, nullptr, &consume, progress, cancel, total);
}

}  // namespace dlc::io
