// Progress display for a terminal: one line per running task with bytes done,
// percentage, rate and ETA, redrawn at most 4 times a second on stderr.
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "cli/cli.h"

namespace dlc::cli {
namespace {

using Clock = std::chrono::steady_clock;

class TtyProgress final : public ProgressSink {
 public:
  explicit TtyProgress(std::FILE* stream) : stream_(stream) {}
  ~TtyProgress() override {
    std::lock_guard lock(mutex_);
    if (drawn_lines_ > 0) std::fputc('\n', stream_);
  }

  int begin(std::string label, std::uint64_t total) override {
    std::lock_guard lock(mutex_);
    tasks_.push_back(Task{std::move(label), total, 0, Clock::now(), false, true});
    redraw(true);
    return static_cast<int>(tasks_.size() - 1);
  }

  void update(int task, std::uint64_t done) override {
    std::lock_guard lock(mutex_);
    if (task < 0 || static_cast<size_t>(task) >= tasks_.size()) return;
    tasks_[task].done = done;
    redraw(false);
  }

  void end(int task, bool ok) override {
    std::lock_guard lock(mutex_);
    if (task < 0 || static_cast<size_t>(task) >= tasks_.size()) return;
    tasks_[task].finished = true;
    tasks_[task].ok = ok;
    redraw(true);
  }

 private:
  struct Task {
    std::string label;
    std::uint64_t total;
    std::uint64_t done;
    Clock::time_point start;
    bool finished;
    bool ok;
  };

  void redraw(bool force) {
    auto now = Clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(250)) return;
    last_draw_ = now;
    // Move the cursor back over the lines drawn last time.
    if (drawn_lines_ > 1) std::fprintf(stream_, "\r\x1b[%dA", drawn_lines_ - 1);
    std::fputc('\r', stream_);
    for (size_t i = 0; i < tasks_.size(); ++i) {
      const Task& t = tasks_[i];
      double secs = std::chrono::duration<double>(now - t.start).count();
      double rate = secs > 0 ? static_cast<double>(t.done) / secs : 0;
      std::string eta = "--:--";
      if (t.finished) {
        eta = t.ok ? "done" : "FAILED";
      } else if (rate > 0 && t.total > t.done) {
        auto left = static_cast<long>(static_cast<double>(t.total - t.done) / rate);
        char b[32];
        std::snprintf(b, sizeof b, "%02ld:%02ld:%02ld", left / 3600, (left / 60) % 60, left % 60);
        eta = b;
      }
      double pct = t.total ? 100.0 * static_cast<double>(t.done) / static_cast<double>(t.total) : 0;
      std::fprintf(stream_, "\x1b[2K%-28.28s %10s / %-10s %5.1f%% %10s/s  ETA %s", t.label.c_str(),
                   human_bytes(t.done).c_str(), human_bytes(t.total).c_str(), pct,
                   human_bytes(static_cast<std::uint64_t>(rate)).c_str(), eta.c_str());
      if (i + 1 < tasks_.size()) std::fputc('\n', stream_);
    }
    drawn_lines_ = static_cast<int>(tasks_.size());
    std::fflush(stream_);
  }

  std::FILE* stream_;
  std::mutex mutex_;
  std::vector<Task> tasks_;
  Clock::time_point last_draw_{};
  int drawn_lines_ = 0;
};

}  // namespace

std::unique_ptr<ProgressSink> make_tty_progress(std::FILE* stream) {
  return std::make_unique<TtyProgress>(stream);
}

}  // namespace dlc::cli
