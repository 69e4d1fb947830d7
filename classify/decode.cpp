#include "classify/decode.h"

#include <iconv.h>
#include <immintrin.h>
#include <zlib.h>

#include <cerrno>
#include <memory>

#include "core/error.h"

namespace dlc::classify {

bool is_gzip(std::string_view raw) noexcept {
  return raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
         static_cast<unsigned char>(raw[1]) == 0x8b;
}

std::string gunzip(std::string_view raw, const std::string& what, std::size_t max_bytes) {
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
      if (out.size() >= max_bytes)
        throw Error(Errc::io, "gzip file too large to classify", what,
                    "it expands beyond " + std::to_string(max_bytes >> 20) + " MiB",
                    "decompress it and classify the result, or exclude it");
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

std::string gb18030_to_utf8(std::string_view in) {
  return convert(in, "UTF-8", "GB18030", nullptr);
}
std::string utf8_to_gb18030(std::string_view in) {
  return convert(in, "GB18030", "UTF-8", nullptr);
}

namespace {
__attribute__((target("avx2"))) std::size_t printable_avx2(const unsigned char* p, char* out,
                                                           std::size_t n) {
  std::size_t i = 0;
  const __m256i lo = _mm256_set1_epi8(0x1F), hi = _mm256_set1_epi8(0x7F);
  const __m256i tab = _mm256_set1_epi8('\t'), nl = _mm256_set1_epi8('\n');
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    // Signed compares: bytes >= 0x80 are negative, so they fail "> 0x1F".
    const __m256i keep =
        _mm256_or_si256(_mm256_and_si256(_mm256_cmpgt_epi8(v, lo), _mm256_cmpgt_epi8(hi, v)),
                        _mm256_cmpeq_epi8(v, tab));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_blendv_epi8(nl, v, keep));
  }
  return i;
}
}  // namespace

std::string printable_runs(std::string_view in) {
  std::string out(in.size(), '\n');
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t i = __builtin_cpu_supports("avx2") ? printable_avx2(p, out.data(), in.size()) : 0;
  for (; i < in.size(); ++i) {
    const unsigned char c = p[i];
    const bool keep = (c >= 0x20 && c < 0x7F) || c == '\t';
    out[i] = keep ? static_cast<char>(c) : '\n';
  }
  return out;
}

}  // namespace dlc::classify
