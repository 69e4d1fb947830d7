#include "classify/decode.h"

#include <iconv.h>
#include <immintrin.h>
#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>

#include "core/error.h"

namespace dlc::classify {

bool is_gzip(std::string_view raw) noexcept {
  return raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
         static_cast<unsigned char>(raw[1]) == 0x8b;
}

namespace {

[[noreturn]] void too_large(const std::string& what, std::size_t max_bytes) {
  throw Error(Errc::io, "gzip file too large to classify", what,
              "it expands beyond " + std::to_string(max_bytes >> 20) + " MiB",
              "decompress it and classify the result, or exclude it");
}

// zlib's streaming inflate: the reference, and the path that names what is
// wrong with a stream libdeflate rejects (truncated or corrupt, zlib's message).
std::string gunzip_zlib(std::string_view raw, const std::string& what, std::size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK)
    throw Error(Errc::io, "cannot initialise gzip decompression", what);
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  std::string out;
  out.resize(std::max<std::size_t>(raw.size() * 4, 1 << 16));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(raw.size(), UINT32_MAX));
  std::size_t fed = zs.avail_in;
  std::size_t produced = 0;
  while (true) {
    if (produced == out.size()) {
      if (out.size() >= max_bytes) too_large(what, max_bytes);
      out.resize(std::min(max_bytes, out.size() * 2));
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, UINT32_MAX));
    const std::size_t before = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (zs.avail_in == 0 && fed < raw.size()) {
      const std::size_t more = std::min<std::size_t>(raw.size() - fed, UINT32_MAX);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data() + fed));
      zs.avail_in = static_cast<uInt>(more);
      fed += more;
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      if (inflateReset(&zs) != Z_OK) throw Error(Errc::io, "corrupt gzip file", what);
      continue;  // concatenated members
    }
    if (rc == Z_BUF_ERROR && zs.avail_out != 0)
      throw Error(Errc::io, "truncated gzip file", what, {}, "check the file's integrity");
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw Error(Errc::io, "corrupt gzip file", what, zs.msg ? zs.msg : "inflate failed");
  }
  out.resize(produced);
  return out;
}

struct DecompressorFree {
  void operator()(libdeflate_decompressor* d) const noexcept { libdeflate_free_decompressor(d); }
};

}  // namespace

// libdeflate inflates a whole member at once, 2-3x faster than zlib here. Each
// member goes into the rest of one buffer sized first from the last member's
// ISIZE (exact for a single member below 4 GiB and 32:1); a member that does not fit
// grows the buffer (up to max_bytes) and is inflated again. Anything libdeflate
// rejects is handed to zlib, which either reads it as before or names the error.
std::string gunzip(std::string_view raw, const std::string& what, std::size_t max_bytes) {
  std::unique_ptr<libdeflate_decompressor, DecompressorFree> d(libdeflate_alloc_decompressor());
  if (!d) throw Error(Errc::io, "cannot initialise gzip decompression", what);
  std::size_t isize = 0;
  if (raw.size() >= 4) {
    const auto* t = reinterpret_cast<const unsigned char*>(raw.data() + raw.size() - 4);
    isize = t[0] | std::size_t{t[1]} << 8 | std::size_t{t[2]} << 16 | std::size_t{t[3]} << 24;
  }
  // A truncated or corrupt file ends in any 4 bytes: an ISIZE beyond 32x the
  // input is not trusted (a buffer is zero-filled; 4 GiB of zeros cost 0.5 s).
  if (isize > raw.size() * 32) isize = raw.size() * 4;
  std::string out;
  out.resize(std::min(max_bytes, std::max<std::size_t>(isize, 1 << 16)));
  std::size_t in = 0, produced = 0;
  do {  // at least once: an empty input is zlib's "truncated"
    std::size_t used = 0, made = 0;
    const libdeflate_result rc = libdeflate_gzip_decompress_ex(
        d.get(), raw.data() + in, raw.size() - in, out.data() + produced, out.size() - produced,
        &used, &made);
    if (rc == LIBDEFLATE_INSUFFICIENT_SPACE) {
      if (out.size() >= max_bytes) too_large(what, max_bytes);
      // Double, or more when the input left suggests it (4x as a ratio).
      const std::size_t guess = produced + (raw.size() - in) * 4;
      out.resize(std::min(max_bytes, std::max(out.size() * 2, guess)));
      continue;
    }
    if (rc != LIBDEFLATE_SUCCESS) return gunzip_zlib(raw, what, max_bytes);
    in += used;
    produced += made;
  } while (in < raw.size());
  out.resize(produced);
  return out;
}

std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw Error(Errc::io, "cannot initialise gzip compression");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, deflateEnd);
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw Error(Errc::io, "gzip compression failed");
  out.resize(zs.total_out);
  return out;
}

bool looks_binary(std::string_view sample) noexcept {
  std::size_t control = 0;
  for (unsigned char c : sample) {
    if (c == 0) return true;
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1b)
      ++control;
  }
  return control * 10 > sample.size();
}

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
      len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
      len = 4;
    else
      return false;
    if (i + len > n) return true;  // cut at the end of the sample
    for (std::size_t k = 1; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

namespace {
std::string convert(std::string_view in, const char* to, const char* from, bool* clean) {
  iconv_t cd = ::iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1))
    throw Error(Errc::io, std::string("iconv cannot convert ") + from + " to " + to, {},
                "install the glibc gconv modules (package libc6)");
  std::unique_ptr<void, int (*)(iconv_t)> guard(cd, ::iconv_close);
  std::string out;
  out.resize(in.size() + in.size() / 2 + 16);
  char* inp = const_cast<char*>(in.data());
  std::size_t inleft = in.size();
  std::size_t produced = 0;
  if (clean) *clean = true;
  while (inleft > 0) {
    char* outp = out.data() + produced;
    std::size_t outleft = out.size() - produced;
    const std::size_t rc = ::iconv(cd, &inp, &inleft, &outp, &outleft);
    produced = out.size() - outleft;
    if (rc != static_cast<std::size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
    } else if (errno == EILSEQ || errno == EINVAL) {
      // EINVAL: a sequence cut at the end of the input (a sample's edge).
      if (clean && errno == EILSEQ) *clean = false;
      if (produced == out.size()) out.resize(out.size() * 2);
      out[produced++] = '?';
      ++inp;
      --inleft;
    } else {
      throw_errno("character set conversion failed", from);
    }
  }
  out.resize(produced);
  return out;
}
}  // namespace

bool looks_gb18030(std::string_view sample) {
  if (valid_utf8(sample)) return false;
  bool clean = false;
  convert(sample, "UTF-8", "GB18030", &clean);
  return clean;
}

// GB18030 to code points through iconv (one gconv step), UTF-8 written here:
// glibc's own UTF-8 step was most of the iconv time on GBK logs. Invalid or
// cut sequences become '?' byte by byte, as convert() does.
std::string gb18030_to_utf8(std::string_view in) {
  iconv_t cd = ::iconv_open("WCHAR_T", "GB18030");
  if (cd == reinterpret_cast<iconv_t>(-1))
    throw Error(Errc::io, "iconv cannot convert GB18030 to WCHAR_T", {},
                "install the glibc gconv modules (package libc6)");
  std::unique_ptr<void, int (*)(iconv_t)> guard(cd, ::iconv_close);
  static_assert(sizeof(wchar_t) == 4);
  std::string out;
  // UTF-8 is at most 1.5x GB18030 (2 bytes -> 3, 4 -> 4, 1 -> 1, '?' for 1).
  out.resize(in.size() + in.size() / 2 + 16);
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  std::size_t produced = 0;
  char* inp = const_cast<char*>(in.data());
  std::size_t inleft = in.size();
  constexpr std::size_t kBlock = 8192;
  std::uint32_t cps[kBlock];
  while (inleft > 0) {
    char* bp = reinterpret_cast<char*>(cps);
    std::size_t bleft = sizeof cps;
    const std::size_t rc = ::iconv(cd, &inp, &inleft, &bp, &bleft);
    const int err = errno;
    const std::size_t n = (sizeof cps - bleft) / 4;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t c = cps[i];
      if (c < 0x80) {
        o[produced++] = static_cast<unsigned char>(c);
      } else if (c < 0x800) {
        o[produced] = static_cast<unsigned char>(0xC0 | c >> 6);
        o[produced + 1] = static_cast<unsigned char>(0x80 | (c & 0x3F));
        produced += 2;
      } else if (c < 0x10000) {
        o[produced] = static_cast<unsigned char>(0xE0 | c >> 12);
        o[produced + 1] = static_cast<unsigned char>(0x80 | (c >> 6 & 0x3F));
        o[produced + 2] = static_cast<unsigned char>(0x80 | (c & 0x3F));
        produced += 3;
      } else {
        o[produced] = static_cast<unsigned char>(0xF0 | c >> 18);
        o[produced + 1] = static_cast<unsigned char>(0x80 | (c >> 12 & 0x3F));
        o[produced + 2] = static_cast<unsigned char>(0x80 | (c >> 6 & 0x3F));
        o[produced + 3] = static_cast<unsigned char>(0x80 | (c & 0x3F));
        produced += 4;
      }
    }
    if (rc != static_cast<std::size_t>(-1)) break;
    if (err == EILSEQ || err == EINVAL) {
      o[produced++] = '?';
      ++inp;
      --inleft;
    } else if (err != E2BIG) {
      errno = err;
      throw_errno("character set conversion failed", "GB18030");
    }
  }
  out.resize(produced);
  return out;
}
std::string utf8_to_gb18030(std::string_view in) {
  return convert(in, "GB18030", "UTF-8", nullptr);
}

namespace {

bool printable(unsigned char c) { return (c >= 0x20 && c < 0x7F) || c == '\t'; }

// Bit i of the result: byte i of the 32 at p is printable (or a tab).
__attribute__((target("avx2"))) std::uint32_t printable_mask32(const unsigned char* p) {
  const __m256i lo = _mm256_set1_epi8(0x1F), hi = _mm256_set1_epi8(0x7F);
  const __m256i tab = _mm256_set1_epi8('\t');
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  // Signed compares: bytes >= 0x80 are negative, so they fail "> 0x1F".
  const __m256i keep =
      _mm256_or_si256(_mm256_and_si256(_mm256_cmpgt_epi8(v, lo), _mm256_cmpgt_epi8(hi, v)),
                      _mm256_cmpeq_epi8(v, tab));
  return static_cast<std::uint32_t>(_mm256_movemask_epi8(keep));
}
__attribute__((target("avx2"))) std::uint64_t printable_mask64(const unsigned char* p) {
  return printable_mask32(p) | std::uint64_t{printable_mask32(p + 32)} << 32;
}

// Writes the 32 bytes at p to out, those whose bit in m is clear as '\n'.
__attribute__((target("avx2"))) void blend_newlines(const unsigned char* p, char* out,
                                                    std::uint32_t m) {
  const __m256i shuffle = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                           2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bits = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(m)), shuffle);
  const __m256i keep = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bits), bits);
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_blendv_epi8(_mm256_set1_epi8('\n'), v, keep));
}

// 64 bytes at a time: the printable mask of this block and the next (a run
// may continue into it), erosion by min_run - 1 (bit i: the min_run bytes from
// i are printable) and dilation back (bit i: it lies in such a window).
__attribute__((target("avx2"))) std::size_t printable_avx2(const unsigned char* p, char* out,
                                                           std::size_t n, std::size_t min_run) {
  using u128 = unsigned __int128;
  if (n < 64) return 0;
  const std::size_t blocks = n / 64;
  const unsigned shift = static_cast<unsigned>(std::min<std::size_t>(min_run, 64) - 1);
  std::uint64_t cur = printable_mask64(p), prev_windows = 0;
  for (std::size_t b = 0; b < blocks; ++b) {
    std::uint64_t next = 0;
    if (b + 1 < blocks) {
      next = printable_mask64(p + (b + 1) * 64);
    } else {  // the tail after the last whole block
      for (std::size_t i = (b + 1) * 64, k = 0; i < n && k < 64; ++i, ++k)
        next |= static_cast<std::uint64_t>(printable(p[i])) << k;
    }
    const u128 x = static_cast<u128>(next) << 64 | cur;
    u128 e = x;
    for (unsigned k = 1; k <= shift; ++k) e &= x >> k;
    const std::uint64_t windows = static_cast<std::uint64_t>(e);
    u128 d = static_cast<u128>(windows) << 64 | prev_windows;
    u128 grown = d;
    for (unsigned k = 1; k <= shift; ++k) grown |= d << k;
    const std::uint64_t keep = static_cast<std::uint64_t>(grown >> 64);
    blend_newlines(p + b * 64, out + b * 64, static_cast<std::uint32_t>(keep));
    blend_newlines(p + b * 64 + 32, out + b * 64 + 32, static_cast<std::uint32_t>(keep >> 32));
    prev_windows = windows;
    cur = next;
  }
  return blocks * 64;
}

}  // namespace

std::string printable_runs(std::string_view in, std::size_t min_run) {
  min_run = std::max<std::size_t>(min_run, 1);
  std::string out(in.size(), '\n');
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t i = 0;
  if (__builtin_cpu_supports("avx2") && min_run <= 64)
    i = printable_avx2(p, out.data(), in.size(), min_run);
  // The rest (or everything without AVX2): the run holding i may have started
  // before i, in the part already written.
  std::size_t run_start = i;
  while (run_start > 0 && printable(p[run_start - 1])) --run_start;
  for (; i <= in.size(); ++i) {
    if (i < in.size() && printable(p[i])) continue;
    if (i - run_start >= min_run)
      for (std::size_t k = run_start; k < i; ++k) out[k] = static_cast<char>(p[k]);
    run_start = i + 1;
  }
  return out;
}

}  // namespace dlc::classify
