// The terminal progress display (cli/progress.cpp): what a user sees on a TTY.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "cli/cli.h"

namespace {

// Everything written to the display's stream so far.
struct Screen {
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* f = ::open_memstream(&buf, &len);
  ~Screen() {
    if (f) std::fclose(f);
    std::free(buf);
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, len);
  }
};

}  // namespace

TEST(TtyProgress, ShowsBytesPercentAndAFinalLineForAFailedTask) {
  Screen s;
  ASSERT_NE(s.f, nullptr);
  {
    auto p = dlc::cli::make_tty_progress(s.f);
    int t = p->begin("restore snapshot", 4096);
    p->update(t, 1024);
    p->end(t, false);
  }
  std::string out = s.text();
  EXPECT_NE(out.find("restore snapshot"), std::string::npos) << out;
  EXPECT_NE(out.find("25.0%"), std::string::npos) << out;
  EXPECT_NE(out.find("FAILED"), std::string::npos) << out;  // failures always leave a line
}

TEST(TtyProgress, WithoutProgressTheEtaIsUnknown) {
  Screen s;
  auto p = dlc::cli::make_tty_progress(s.f);
  int t = p->begin("sanitize crypto-erase", 1000);
  p->update(t, 0);
  EXPECT_NE(s.text().find("ETA --:--"), std::string::npos) << s.text();
  p->end(t, true);
}

TEST(TtyProgress, TheDevicesOwnEstimateGivesTheEta) {
  // An NVMe sanitize reports no bytes until it is done; the drive's estimate
  // (Sanitize Status log) is the only honest ETA.
  Screen s;
  auto p = dlc::cli::make_tty_progress(s.f);
  int t = p->begin("sanitize crypto-erase", 1000);
  p->estimate(t, 2 * 3600 + 5 * 60);
  std::string out = s.text();
  // Redrawn at once; a second or two may pass before the line is drawn.
  EXPECT_TRUE(out.find("ETA 02:05:00") != std::string::npos ||
              out.find("ETA 02:04:5") != std::string::npos)
      << out;
  p->end(t, true);
}
