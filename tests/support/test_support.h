// Shared helpers for dlc's tests: temporary directories, loop devices the test
// creates and detaches itself, and running the real dlc binary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace dlc::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A loop device over a fully allocated backing file of `size` bytes that this
// test creates; detached (and the file removed) on destruction. Only loop
// devices created this way are ever written by tests.
class LoopDevice {
 public:
  explicit LoopDevice(std::uint64_t size, bool direct_io = true);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  const std::string& device() const { return device_; }
  const std::filesystem::path& backing_file() const { return file_; }

  // Whether this process may create loop devices (root and /dev/loop-control).
  static bool available(std::string* why = nullptr);

 private:
  TempDir dir_;
  std::filesystem::path file_;
  std::string device_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the real dlc binary with args (no shell), stdin from `input`, with the
// given extra environment; DLC_HOME defaults to a per-process temp dir.
RunResult run_dlc(const std::vector<std::string>& args, const std::string& input = {},
                  const std::map<std::string, std::string>& env = {});

// Runs a command through /bin/sh -c, returning exit code and output.
RunResult run_shell(const std::string& command);

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);

}  // namespace dlc::test

// Skips the current test unless loop devices can be created here.
#define DLC_REQUIRE_LOOP_DEVICES()                                    \
  do {                                                                \
    std::string why_;                                                 \
    if (!::dlc::test::LoopDevice::available(&why_)) GTEST_SKIP() << why_; \
  } while (0)
