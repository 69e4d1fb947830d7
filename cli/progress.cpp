// Progress display for a terminal, on stderr: one live line per running task
// (label, bytes done of total, percent, rate, ETA), redrawn at most 4 times a
// second. A task that ends leaves one final line above the live block when it
// ran for a second or more or failed; short tasks (many small files) vanish.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

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
    std::fflush(stream_);
  }

  int begin(std::string label, std::uint64_t total) override {
    std::lock_guard lock(mutex_);
    int id = next_id_++;
    active_.emplace(id, Task{std::move(label), total, 0, Clock::now()});
    redraw(true);
    return id;
  }

  void update(int task, std::uint64_t done) override {
    std::lock_guard lock(mutex_);
    auto it = active_.find(task);
    if (it == active_.end()) return;
    it->second.done = done;
    redraw(false);
  }

  void estimate(int task, double total_seconds) override {
    std::lock_guard lock(mutex_);
    auto it = active_.find(task);
    if (it == active_.end()) return;
    it->second.estimate_seconds = total_seconds;
    redraw(true);
  }

  void end(int task, bool ok) override {
    std::lock_guard lock(mutex_);
    auto it = active_.find(task);
    if (it == active_.end()) return;
    Task t = std::move(it->second);
    active_.erase(it);
    auto now = Clock::now();
    erase_live_block();
    if (!ok || now - t.start >= std::chrono::seconds(1))
      std::fprintf(stream_, "%s\n", line(t, now, ok ? "done" : "FAILED").c_str());
    draw_live_block(now);
  }

 private:
  struct Task {
    std::string label;
    std::uint64_t total;
    std::uint64_t done;
    Clock::time_point start;
    double estimate_seconds = 0;  // the device's own prediction, when it gives one
  };

  static std::string line(const Task& t, Clock::time_point now, const char* state) {
    double secs = std::chrono::duration<double>(now - t.start).count();
    double rate = secs > 0 ? static_cast<double>(t.done) / secs : 0;
    std::string eta = state ? state : "--:--";
    if (!state && (t.estimate_seconds > 0 || (rate > 0 && t.total > t.done))) {
      auto left = t.estimate_seconds > 0
                      ? static_cast<long>(std::max(0.0, t.estimate_seconds - secs))
                      : static_cast<long>(static_cast<double>(t.total - t.done) / rate);
      char b[32];
      std::snprintf(b, sizeof b, "%02ld:%02ld:%02ld", left / 3600, (left / 60) % 60, left % 60);
      eta = b;
    }
    double pct = t.total ? 100.0 * static_cast<double>(t.done) / static_cast<double>(t.total) : 0;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-28.28s %10s / %-10s %5.1f%% %10s/s  ETA %s",
                  t.label.c_str(), human_bytes(t.done).c_str(), human_bytes(t.total).c_str(), pct,
                  human_bytes(static_cast<std::uint64_t>(rate)).c_str(), eta.c_str());
    return buf;
  }

  // Clears the live lines; leaves the cursor at the start of the first one.
  void erase_live_block() {
    if (drawn_lines_ == 0) return;
    std::fputs("\r\x1b[2K", stream_);
    for (int i = 1; i < drawn_lines_; ++i) std::fputs("\x1b[1A\x1b[2K", stream_);
    drawn_lines_ = 0;
  }

  // Draws one line per active task; the cursor stays at the end of the last.
  void draw_live_block(Clock::time_point now) {
    bool first = true;
    for (const auto& [id, t] : active_) {
      if (!first) std::fputc('\n', stream_);
      first = false;
      std::fputs(line(t, now, nullptr).c_str(), stream_);
      ++drawn_lines_;
    }
    std::fflush(stream_);
    last_draw_ = now;
  }

  void redraw(bool force) {
    auto now = Clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(250)) return;
    erase_live_block();
    draw_live_block(now);
  }

  std::FILE* stream_;
  std::mutex mutex_;
  std::map<int, Task> active_;
  int next_id_ = 1;
  Clock::time_point last_draw_{};
  int drawn_lines_ = 0;
};

}  // namespace

std::unique_ptr<ProgressSink> make_tty_progress(std::FILE* stream) {
  return std::make_unique<TtyProgress>(stream);
}

}  // namespace dlc::cli
