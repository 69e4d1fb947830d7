// Process-wide plumbing shared by every tool: where dlc keeps its state,
// how notices reach the operator, how long work reports progress, and how a
// stop request (SIGINT/SIGTERM) is observed. The CLI installs the sinks; the
// libraries only call these functions and never print themselves.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace dlc {

// $DLC_HOME if set, else /var/lib/dlc. Holds the host key, the default audit
// log and resumable journals.
std::filesystem::path dlc_home();

// ---- Notices ------------------------------------------------------------------
enum class NoticeLevel { debug, info, warning };
using NoticeSink = std::function<void(NoticeLevel, std::string_view)>;
void set_notice_sink(NoticeSink sink);  // default: warnings to stderr
void notice(NoticeLevel level, std::string_view message);
// Emits the warning only the first time `key` is seen in this process
// ("io_uring unavailable, using pread/pwrite").
void notice_once(std::string_view key, std::string_view message);

// ---- Progress -----------------------------------------------------------------
// A long operation (one per device/file stream) reports bytes done of a total.
// Implementations must be thread-safe: several devices run at once.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual int begin(std::string label, std::uint64_t total_bytes) = 0;  // returns a task id
  virtual void update(int task, std::uint64_t bytes_done) = 0;
  virtual void end(int task, bool ok) = 0;
  // A duration the device itself predicts for the whole task (an NVMe
  // sanitize's Sanitize Status estimate); displays use it for the ETA instead
  // of the observed rate. Optional.
  virtual void estimate(int /*task*/, double /*total_seconds*/) {}
};
// A sink that does nothing (non-TTY, --json, --quiet, tests).
ProgressSink& null_progress();

// ---- Profiles -------------------------------------------------------------------
// A monotonic lap timer for where-the-time-went profiles: lap() returns the
// nanoseconds since construction or the previous lap, and starts the next.
class Stopwatch {
 public:
  Stopwatch() : last_(std::chrono::steady_clock::now()) {}
  std::uint64_t lap() {
    const auto now = std::chrono::steady_clock::now();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count();
    last_ = now;
    return static_cast<std::uint64_t>(ns);
  }

 private:
  std::chrono::steady_clock::time_point last_;
};

// ---- Stop requests --------------------------------------------------------------
// Set by the CLI's SIGINT/SIGTERM handler; long loops poll it and throw
// Errc::interrupted after leaving their state consistent and resumable.
std::atomic<bool>& stop_requested();

}  // namespace dlc
