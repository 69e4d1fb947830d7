// The pread/pwrite back end under the faults a real kernel produces rarely and
// unpredictably: short transfers, EINTR, EAGAIN. This test binary interposes
// pread/pwrite (the executable's definitions win over libc's) and injects the
// faults for one file descriptor only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/io_engine.h"
#include "core/io_request.h"
#include "support/test_support.h"

namespace {

enum class Fault { none, short_transfers, eintr_then_eagain, always_eagain };

int g_fault_fd = -1;
Fault g_fault = Fault::none;
std::uint64_t g_calls = 0;

// Decides what the interposed call does: a result to return at once (fault
// injected) or the byte count to pass to the real system call.
bool inject(int fd, std::size_t& count, ssize_t& result) {
  if (fd != g_fault_fd || g_fault == Fault::none) return false;
  const std::uint64_t call = g_calls++;
  switch (g_fault) {
    case Fault::short_transfers:
      count = std::min<std::size_t>(count, 1000 + call % 3000);  // never aligned, never whole
      return false;
    case Fault::eintr_then_eagain:
      if (call % 3 == 0) {
        errno = EINTR;
        result = -1;
        return true;
      }
      if (call % 3 == 1) {
        errno = EAGAIN;
        result = -1;
        return true;
      }
      return false;
    case Fault::always_eagain:
      errno = EAGAIN;
      result = -1;
      return true;
    case Fault::none:
      break;
  }
  return false;
}

}  // namespace

extern "C" ssize_t pread(int fd, void* buf, std::size_t count, off_t offset) {
  ssize_t result = 0;
  if (inject(fd, count, result)) return result;
  return ::syscall(SYS_pread64, fd, buf, count, offset);
}

extern "C" ssize_t pwrite(int fd, const void* buf, std::size_t count, off_t offset) {
  ssize_t result = 0;
  if (inject(fd, count, result)) return result;
  return ::syscall(SYS_pwrite64, fd, buf, count, offset);
}

namespace dlc::io {
namespace {

std::uint8_t byte_at(std::uint64_t off) {
  return static_cast<std::uint8_t>((off * 131) ^ (off >> 9));
}

class FallbackFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = File::open((dir_ / "data").string(),
                       {.mode = OpenMode::read_write, .direct = false, .create = true});
    g_fault_fd = file_.fd();
    g_calls = 0;
  }
  void TearDown() override {
    g_fault = Fault::none;
    g_fault_fd = -1;
  }
  // Writes then reads back 1 MiB + 123 bytes through the fallback under `fault`.
  void round_trip(Fault fault) {
    EngineOptions o;
    o.force_fallback = true;
    o.queue_depth = 4;
    o.block_size = 64 * 1024;
    Engine engine(o);
    ASSERT_EQ(engine.backend(), Backend::fallback);
    const std::vector<Extent> ext{{7, (1u << 20) + 123}};
    g_fault = fault;
    IoStats w = engine.write(file_, ext, [](std::uint64_t off, std::span<std::uint8_t> b) {
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = byte_at(off + i);
    });
    EXPECT_EQ(w.bytes, (1u << 20) + 123);
    EXPECT_EQ(w.requests, 17u);
    EXPECT_GT(w.short_retries, 0u);
    std::uint64_t next = 7, bad = 0;
    IoStats r = engine.read(file_, ext, [&](std::uint64_t off, std::span<const std::uint8_t> b) {
      if (off != next) ++bad;
      for (std::size_t i = 0; i < b.size(); ++i) bad += b[i] != byte_at(off + i);
      next = off + b.size();
    });
    g_fault = Fault::none;
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(r.bytes, (1u << 20) + 123);
    EXPECT_GT(r.short_retries, 0u);
    EXPECT_GT(g_calls, 2 * 17u) << "the faults were injected";
    // What the engine wrote is what is on disk.
    std::vector<std::uint8_t> disk((1u << 20) + 123);
    int fd = ::open(file_.path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_EQ(::syscall(SYS_pread64, fd, disk.data(), disk.size(), 7),
              static_cast<long>(disk.size()));
    ::close(fd);
    for (std::size_t i = 0; i < disk.size(); ++i) ASSERT_EQ(disk[i], byte_at(7 + i)) << i;
  }

  test::TempDir dir_;
  File file_;
};

TEST_F(FallbackFaults, ShortTransfersAreResubmittedForTheRest) {
  round_trip(Fault::short_transfers);
}

TEST_F(FallbackFaults, EintrAndEagainAreRetried) { round_trip(Fault::eintr_then_eagain); }

TEST_F(FallbackFaults, EndlessEagainBecomesAnIoErrorNamingTheOffset) {
  EngineOptions o;
  o.force_fallback = true;
  Engine engine(o);
  g_fault = Fault::always_eagain;
  const std::vector<Extent> ext{{4096, 4096}};
  try {
    engine.write(file_, ext, [](std::uint64_t, std::span<std::uint8_t>) {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_EQ(e.info().target, file_.path() + " at offset 4096");
    EXPECT_NE(e.info().detail.find(std::strerror(EAGAIN)), std::string::npos);
  }
  EXPECT_EQ(g_calls, detail::kMaxRetries + 1);
}

}  // namespace
}  // namespace dlc::io
