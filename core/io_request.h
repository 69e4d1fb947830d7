// Internal to dlc::io (core/io_engine.cpp and its tests): the bookkeeping of
// one block-sized request and the rule that turns a transfer result (bytes or
// -errno, as pread/pwrite or an io_uring completion report it) into the next
// step. Both back ends share it, so short transfers, EAGAIN/EINTR and
// end-of-file are handled the same way whichever engine runs.
#pragma once

#include <cerrno>
#include <cstdint>

namespace dlc::io::detail {

// After this many consecutive EAGAIN/EINTR results without progress a request
// is reported as failed instead of being retried forever.
inline constexpr std::uint32_t kMaxRetries = 10000;

struct Request {
  std::uint64_t offset = 0;   // where the request starts in the file
  std::uint32_t length = 0;   // bytes it covers (<= block_size)
  std::uint32_t done = 0;     // bytes transferred so far
  std::uint32_t retries = 0;  // consecutive EAGAIN/EINTR results

  std::uint64_t next_offset() const noexcept { return offset + done; }
  std::uint32_t remaining() const noexcept { return length - done; }
};

enum class Step {
  complete,  // every byte transferred
  resubmit,  // short transfer or EAGAIN/EINTR: issue the rest (next_offset, remaining)
  eof,       // 0 bytes before the end: end of file / device (reads), no progress (writes)
  failed,    // a real error: -res is the errno
};

// Applies one transfer result to the request.
inline Step advance(Request& r, long long res) noexcept {
  if (res < 0) {
    if ((res == -EAGAIN || res == -EINTR) && ++r.retries <= kMaxRetries) return Step::resubmit;
    return Step::failed;
  }
  if (res == 0) return Step::eof;
  r.retries = 0;
  // A transfer never exceeds what was asked; clamp anyway so done <= length.
  const std::uint64_t add = static_cast<std::uint64_t>(res);
  r.done += add > r.remaining() ? r.remaining() : static_cast<std::uint32_t>(add);
  return r.done < r.length ? Step::resubmit : Step::complete;
}

}  // namespace dlc::io::detail
