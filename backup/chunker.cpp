#include "backup/chunker.h"

#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dlc::backup {

void validate(const ChunkerParams& p) {
  const bool ok = p.min_size >= 4096 && p.min_size < p.avg_size && p.avg_size < p.max_size &&
                  std::has_single_bit(p.avg_size) && p.max_size <= (64u << 20);
  if (!ok)
    throw Error(Errc::usage, "bad chunker parameters", "",
                "min=" + std::to_string(p.min_size) + " avg=" + std::to_string(p.avg_size) +
                    " max=" + std::to_string(p.max_size),
                "need 4 KiB <= min < avg < max <= 64 MiB with avg a power of two");
}

namespace {
// A mask of `bits` one-bits at the top of the word: the fingerprint is shifted
// left once per byte, so the top bits depend on the last 64 bytes (the window).
std::uint64_t top_mask(unsigned bits) { return bits == 0 ? 0 : ~std::uint64_t{0} << (64 - bits); }
}  // namespace

Chunker::Chunker(const ChunkerParams& params, crypto::ByteView gear_seed) : params_(params) {
  validate(params);
  if (gear_seed.size() < 256 * 8) throw Error(Errc::usage, "chunker seed too short");
  for (std::size_t i = 0; i < 256; ++i) {
    std::uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v |= std::uint64_t{gear_seed[i * 8 + b]} << (8 * b);
    gear_[i] = v;
  }
  const unsigned bits = static_cast<unsigned>(std::countr_zero(params.avg_size));
  mask_small_ = top_mask(bits + 2);
  mask_large_ = top_mask(bits - 2);
}

std::size_t Chunker::next(const std::uint8_t* data, std::size_t size, bool eof) const {
  const std::size_t min = params_.min_size, max = params_.max_size;
  if (size <= min) return eof ? size : 0;
  const std::size_t n = size < max ? size : max;
  const std::size_t normal = n < params_.avg_size ? n : params_.avg_size;
  std::uint64_t fp = 0;
  std::size_t i = min;
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear_[data[i]];
    if ((fp & mask_small_) == 0) return i + 1;
  }
  for (; i < n; ++i) {
    fp = (fp << 1) + gear_[data[i]];
    if ((fp & mask_large_) == 0) return i + 1;
  }
  if (n == max) return max;
  return eof ? size : 0;
}

std::uint64_t for_each_chunk(int fd, const Chunker& chunker, crypto::Bytes& buf, const std::string& what,
                             const std::function<void(crypto::ByteView)>& fn) {
  const std::size_t max = chunker.params().max_size;
  buf.resize(2 * max);
  std::size_t start = 0, end = 0;
  std::uint64_t total = 0;
  bool eof = false;
  for (;;) {
    // Keep at least max bytes ahead of start (or everything up to EOF), so a
    // cut never depends on how the file was read.
    if (!eof && end - start < max) {
      std::memmove(buf.data(), buf.data() + start, end - start);
      end -= start;
      start = 0;
      while (!eof && end < buf.size()) {
        const ssize_t r = ::read(fd, buf.data() + end, buf.size() - end);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
          throw Error(Errc::io, "cannot read", what, std::strerror(errno), "the file changed or the disk failed");
        if (r == 0) eof = true;
        end += static_cast<std::size_t>(r);
      }
    }
    if (start == end) break;
    const std::size_t cut = chunker.next(buf.data() + start, end - start, eof);
    fn({buf.data() + start, cut});
    start += cut;
    total += cut;
  }
  return total;
}

}  // namespace dlc::backup
