// Progress of one long backup operation (backup, restore, reading data) as
// bytes done of a total, reported to the RepoOptions' ProgressSink. Any thread
// may add(); the sink sees a monotonic count that never passes the total, and
// finish() reports exactly the total before ending the task, so a display
// ends at 100 % even when files changed size while they were read.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/runtime.h"

namespace dlc::backup {

// Whether a sink displays anything (work only a display needs can be skipped).
inline bool progress_wanted(const ProgressSink* sink) { return sink && sink != &null_progress(); }

class ProgressTask {
 public:
  // A null sink (or the null_progress() one) makes every call a no-op.
  ProgressTask(ProgressSink* sink, std::string label, std::uint64_t total)
      : sink_(progress_wanted(sink) ? sink : nullptr), total_(total) {
    if (sink_) id_ = sink_->begin(std::move(label), total_);
  }
  ~ProgressTask() {
    if (sink_ && !ended_) sink_->end(id_, false);  // an exception left the operation
  }
  ProgressTask(const ProgressTask&) = delete;
  ProgressTask& operator=(const ProgressTask&) = delete;

  bool active() const noexcept { return sink_ != nullptr; }

  void add(std::uint64_t bytes) {
    if (!sink_ || bytes == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    done_ += bytes;
    const std::uint64_t shown = std::min(done_, total_);
    // At most one update per 256 KiB (and the last one): the sink redraws on
    // its own clock, this only keeps the lock traffic down.
    if (shown > reported_ && (shown - reported_ >= (256u << 10) || shown == total_)) {
      reported_ = shown;
      sink_->update(id_, shown);
    }
  }

  // Ends the task: on success the total is reported first.
  void finish(bool ok) {
    if (!sink_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
    if (ok && reported_ != total_) sink_->update(id_, total_);
    sink_->end(id_, ok);
  }

 private:
  ProgressSink* sink_;
  std::uint64_t total_;
  int id_ = 0;
  std::mutex mu_;
  std::uint64_t done_ = 0, reported_ = 0;
  bool ended_ = false;
};

}  // namespace dlc::backup
