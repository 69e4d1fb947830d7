// The rule both I/O back ends apply to a transfer result (core/io_request.h).
#include "core/io_request.h"

#include <gtest/gtest.h>

namespace dlc::io::detail {
namespace {

Request request(std::uint64_t offset, std::uint32_t length) {
  Request r;
  r.offset = offset;
  r.length = length;
  return r;
}

TEST(IoRequest, AFullTransferCompletes) {
  Request r = request(4096, 65536);
  EXPECT_EQ(advance(r, 65536), Step::complete);
  EXPECT_EQ(r.done, 65536u);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(IoRequest, AShortTransferResubmitsTheRestAtTheAdvancedOffset) {
  Request r = request(4096, 65536);
  EXPECT_EQ(advance(r, 4096), Step::resubmit);
  EXPECT_EQ(r.next_offset(), 8192u);
  EXPECT_EQ(r.remaining(), 61440u);
  EXPECT_EQ(advance(r, 61440), Step::complete);
}

TEST(IoRequest, EagainAndEintrAreRetriedWithoutProgress) {
  Request r = request(0, 512);
  EXPECT_EQ(advance(r, -EAGAIN), Step::resubmit);
  EXPECT_EQ(advance(r, -EINTR), Step::resubmit);
  EXPECT_EQ(r.done, 0u);
  EXPECT_EQ(r.retries, 2u);
  EXPECT_EQ(advance(r, 100), Step::resubmit);
  EXPECT_EQ(r.retries, 0u) << "progress resets the retry count";
  EXPECT_EQ(advance(r, 412), Step::complete);
}

TEST(IoRequest, EndlessEagainFailsInsteadOfSpinning) {
  Request r = request(0, 512);
  for (std::uint32_t i = 0; i < kMaxRetries; ++i) ASSERT_EQ(advance(r, -EAGAIN), Step::resubmit);
  EXPECT_EQ(advance(r, -EAGAIN), Step::failed);
}

TEST(IoRequest, ZeroBytesIsEndOfFileAndNegativeIsFailure) {
  Request r = request(1 << 20, 4096);
  EXPECT_EQ(advance(r, 1024), Step::resubmit);
  EXPECT_EQ(advance(r, 0), Step::eof);
  EXPECT_EQ(r.next_offset(), (1u << 20) + 1024);
  Request w = request(0, 4096);
  EXPECT_EQ(advance(w, -EIO), Step::failed);
  EXPECT_EQ(advance(w, -ENOSPC), Step::failed);
}

TEST(IoRequest, AnOverlongResultNeverOverrunsTheRequest) {
  Request r = request(0, 4096);
  EXPECT_EQ(advance(r, 1 << 20), Step::complete);
  EXPECT_EQ(r.done, 4096u);
}

}  // namespace
}  // namespace dlc::io::detail
