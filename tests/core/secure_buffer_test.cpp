// dlc::SecureBuffer: owned key bytes, zero-filled or copied, move-only,
// locked in RAM where allowed; constant_time_equal compares contents.
#include "core/secure_buffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace dlc {
namespace {

std::vector<std::uint8_t> bytes_of(const SecureBuffer& b) {
  return {b.data(), b.data() + b.size()};
}

// Locked memory of this process in KiB, from /proc/self/status (VmLck).
long locked_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmLck:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(SecureBuffer, DefaultIsEmpty) {
  SecureBuffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_FALSE(b.locked());
  EXPECT_TRUE(b.span().empty());
  EXPECT_TRUE(SecureBuffer(0).empty());
  EXPECT_TRUE(SecureBuffer(std::span<const std::uint8_t>()).empty());
}

TEST(SecureBuffer, SizedIsZeroFilledAndCopyingCopies) {
  SecureBuffer z(100);
  ASSERT_EQ(z.size(), 100u);
  EXPECT_EQ(bytes_of(z), std::vector<std::uint8_t>(100, 0));

  const std::vector<std::uint8_t> src = {1, 2, 3, 4, 5};
  SecureBuffer c(src);
  EXPECT_EQ(bytes_of(c), src);
  EXPECT_NE(c.data(), src.data());
  std::span<const std::uint8_t> view = c;  // implicit view for crypto APIs
  EXPECT_EQ(view.size(), 5u);
  c.span()[0] = 9;
  EXPECT_EQ(c.data()[0], 9);
}

TEST(SecureBuffer, MoveTransfersOwnershipAndEmptiesTheSource) {
  SecureBuffer a(std::vector<std::uint8_t>{7, 7, 7});
  const std::uint8_t* p = a.data();
  const bool was_locked = a.locked();
  SecureBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.locked(), was_locked);
  EXPECT_EQ(bytes_of(b), (std::vector<std::uint8_t>{7, 7, 7}));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): specified state
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_FALSE(a.locked());

  SecureBuffer c(std::vector<std::uint8_t>{1});
  c = std::move(b);  // releases c's old bytes
  EXPECT_EQ(c.data(), p);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)

  SecureBuffer& alias = c;
  c = std::move(alias);  // self-move leaves it intact
  EXPECT_EQ(bytes_of(c), (std::vector<std::uint8_t>{7, 7, 7}));
}

TEST(SecureBuffer, CloneIsAnIndependentCopy) {
  SecureBuffer a(std::vector<std::uint8_t>{1, 2, 3});
  SecureBuffer b = a.clone();
  EXPECT_EQ(bytes_of(b), bytes_of(a));
  EXPECT_NE(b.data(), a.data());
  b.data()[0] = 42;
  EXPECT_EQ(a.data()[0], 1);
  EXPECT_TRUE(SecureBuffer().clone().empty());
}

TEST(SecureBuffer, LockedBuffersAreCountedInVmLck) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer turns mlock into a no-op";
#endif
  const long before = locked_kib();
  SecureBuffer b(64);
  if (!b.locked()) GTEST_SKIP() << "mlock not permitted here (RLIMIT_MEMLOCK / CAP_IPC_LOCK)";
  EXPECT_GT(locked_kib(), before);
  { SecureBuffer other(64); }  // releasing a neighbour must not unlock b's page
  EXPECT_GT(locked_kib(), before);
}

TEST(ConstantTimeEqual, ComparesContentsAndLengths) {
  const std::vector<std::uint8_t> a = {1, 2, 3, 4};
  const std::vector<std::uint8_t> b = {1, 2, 3, 4};
  const std::vector<std::uint8_t> last = {1, 2, 3, 5};
  const std::vector<std::uint8_t> first = {0, 2, 3, 4};
  const std::vector<std::uint8_t> shorter = {1, 2, 3};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, last));
  EXPECT_FALSE(constant_time_equal(a, first));
  EXPECT_FALSE(constant_time_equal(a, shorter));
  EXPECT_FALSE(constant_time_equal(shorter, a));
  EXPECT_TRUE(constant_time_equal({}, {}));
  EXPECT_FALSE(constant_time_equal(a, {}));
  SecureBuffer s(a);
  EXPECT_TRUE(constant_time_equal(s, a));
}

}  // namespace
}  // namespace dlc
