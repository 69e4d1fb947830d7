#include "core/runtime.h"

#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>

namespace dlc {

std::filesystem::path dlc_home() {
  if (const char* h = std::getenv("DLC_HOME"); h != nullptr && *h != '\0') return h;
  return "/var/lib/dlc";
}

namespace {
std::mutex g_notice_mutex;
NoticeSink& sink_ref() {
  static NoticeSink sink = [](NoticeLevel level, std::string_view msg) {
    if (level == NoticeLevel::warning) std::cerr << "dlc: warning: " << msg << '\n';
  };
  return sink;
}
}  // namespace

void set_notice_sink(NoticeSink sink) {
  std::lock_guard lock(g_notice_mutex);
  sink_ref() = std::move(sink);
}

void notice(NoticeLevel level, std::string_view message) {
  std::lock_guard lock(g_notice_mutex);
  if (sink_ref()) sink_ref()(level, message);
}

void notice_once(std::string_view key, std::string_view message) {
  static std::set<std::string, std::less<>> seen;
  {
    std::lock_guard lock(g_notice_mutex);
    if (!seen.emplace(key).second) return;
  }
  notice(NoticeLevel::warning, message);
}

namespace {
class NullProgress final : public ProgressSink {
 public:
  int begin(std::string, std::uint64_t) override { return 0; }
  void update(int, std::uint64_t) override {}
  void end(int, bool) override {}
};
}  // namespace

ProgressSink& null_progress() {
  static NullProgress p;
  return p;
}

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

}  // namespace dlc
