#include "classify/scanner.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "classify/bytes.h"
#include "classify/context.h"
#include "classify/validators.h"

namespace dlc::classify {

namespace {

// ---- Byte classes ---------------------------------------------------------------
// Composite classes by table (single letters and digits: classify/bytes.h).
enum : std::uint8_t { kLocal = 1, kDomain = 2, kB64 = 4 };

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alnum = bytes::is_alnum(static_cast<unsigned char>(c));
    std::uint8_t v = 0;
    if (alnum || c == '.' || c == '_' || c == '%' || c == '+' || c == '-')
      v |= kLocal;  // e-mail local part
    if (alnum || c == '.' || c == '-') v |= kDomain;
    if (alnum || c == '-' || c == '_') v |= kB64;  // base64url
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}
constexpr std::array<std::uint8_t, 256> kClass = make_classes();

inline bool is(unsigned char c, std::uint8_t cls) { return (kClass[c] & cls) != 0; }
using bytes::is_alnum;
using bytes::is_alpha;
using bytes::is_digit;
using bytes::is_upper;
inline bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
using bytes::lower;

constexpr std::uint32_t bit(InfoType t) { return 1u << static_cast<unsigned>(t); }

// The three-byte prefixes of the fixed-text patterns, matched on case-folded
// bytes (b | 0x20) with nibble tables in the manner of Hyperscan's "Teddy":
// each prefix group owns a bucket bit; a position is a candidate when the
// bucket sets of its first, second and third byte intersect. Eight buckets,
// six shuffles and few constants (a compare per prefix needed 24 broadcast
// constants, more than the 16 vector registers, and ran four times slower;
// two bytes let "session", "total", "account" through as candidates).
struct PrefixTables {
  alignas(32) unsigned char lo[3][32], hi[3][32];
};
constexpr PrefixTables make_prefix_tables() {
  struct Prefix {
    const char* bytes[3];  // the possible bytes at each position
  };
  constexpr Prefix prefixes[8] = {
      {{"a", "ksp", "i"}},    // AKIA/AKID, ASIA, api_key/apikey
      {{"l", "t", "a"}},      // LTAI
      {{"e", "y", "j"}},      // eyJ (JWT)
      {{"-", "-", "-"}},      // -----BEGIN
      {{"p", "awi", "sdn"}},  // password/passwd/pass/passphrase, pwd, pin
      {{"s", "e", "c"}},      // secret
      {{"t", "o", "k"}},      // token
      {{"c", "v", "vnc"}},    // cvv, cvn, cvc
  };
  PrefixTables t{};
  for (int b = 0; b < 8; ++b) {
    const auto bit = static_cast<unsigned char>(1u << b);
    for (int pos = 0; pos < 3; ++pos)
      for (const char* c = prefixes[b].bytes[pos]; *c; ++c) {
        const auto u = static_cast<unsigned char>(*c);
        for (int lane = 0; lane < 32; lane += 16) {
          t.lo[pos][lane + (u & 15)] |= bit;
          t.hi[pos][lane + (u >> 4)] |= bit;
        }
      }
  }
  return t;
}
constexpr PrefixTables kPrefixTables = make_prefix_tables();

// The scalar twin of the SIMD test below (same buckets, same CJK rule).
inline bool prefix_candidate(unsigned char a, unsigned char b, unsigned char c) {
  const unsigned char f[3] = {static_cast<unsigned char>(a | 0x20),
                              static_cast<unsigned char>(b | 0x20),
                              static_cast<unsigned char>(c | 0x20)};
  if (f[0] == 0xE5) return f[1] == 0xAF || f[1] == 0xAE;  // 密 (and 口), 安: 密码 口令 安全码
  unsigned char buckets = 0xFF;
  for (int pos = 0; pos < 3; ++pos)
    buckets &= kPrefixTables.lo[pos][f[pos] & 15] & kPrefixTables.hi[pos][f[pos] >> 4];
  return buckets != 0;
}

// Candidate masks of 32 bytes at p (reads p[32] and p[33] too): digits; '@' and the
// prefixes above (ev); dot: '.' (a short digit run before one may start an
// IPv4 address); colon: ':' ("::" before a short run may start an IPv6
// address); upper: upper-case letters (a short run after one may be part of an
// IBAN or passport); newlines.
#define DLC_EQ(x, c) _mm256_cmpeq_epi8(x, _mm256_set1_epi8(static_cast<char>(c)))
__attribute__((target("avx2"))) inline __m256i nibble_lookup(const unsigned char* lo_table,
                                                             const unsigned char* hi_table,
                                                             __m256i x) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(x, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
  return _mm256_and_si256(
      _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(lo_table)), lo),
      _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(hi_table)), hi));
}

template <bool kPrefixes = true>
__attribute__((target("avx2"))) inline void avx2_masks(const unsigned char* p, std::uint32_t& dig,
                                                       std::uint32_t& ev, std::uint32_t& dot,
                                                       std::uint32_t& colon, std::uint32_t& upper,
                                                       std::uint32_t& lower, std::uint32_t& nl) {
  const __m256i k20 = _mm256_set1_epi8(0x20);
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 1));
  const __m256i f = _mm256_or_si256(v, k20), g = _mm256_or_si256(w, k20);
  const __m256i d = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('0' - 1)),
                                     _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), v));
  const __m256i at = DLC_EQ(v, '@');
  ev = static_cast<std::uint32_t>(_mm256_movemask_epi8(at));
  if constexpr (kPrefixes) {
    const __m256i h =
        _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)), k20);
    const __m256i buckets = _mm256_and_si256(
        _mm256_and_si256(nibble_lookup(kPrefixTables.lo[0], kPrefixTables.hi[0], f),
                         nibble_lookup(kPrefixTables.lo[1], kPrefixTables.hi[1], g)),
        nibble_lookup(kPrefixTables.lo[2], kPrefixTables.hi[2], h));
    const __m256i no_prefix = _mm256_cmpeq_epi8(buckets, _mm256_setzero_si256());
    const __m256i cjk =
        _mm256_and_si256(DLC_EQ(f, 0xE5), _mm256_or_si256(DLC_EQ(g, 0xAF), DLC_EQ(g, 0xAE)));
    ev |= ~static_cast<std::uint32_t>(_mm256_movemask_epi8(no_prefix)) |
          static_cast<std::uint32_t>(_mm256_movemask_epi8(cjk));
  }
  const __m256i up = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('A' - 1)),
                                      _mm256_cmpgt_epi8(_mm256_set1_epi8('Z' + 1), v));
  dig = static_cast<std::uint32_t>(_mm256_movemask_epi8(d));
  dot = static_cast<std::uint32_t>(_mm256_movemask_epi8(DLC_EQ(v, '.')));
  colon = static_cast<std::uint32_t>(_mm256_movemask_epi8(DLC_EQ(v, ':')));
  upper = static_cast<std::uint32_t>(_mm256_movemask_epi8(up));
  lower = static_cast<std::uint32_t>(
      _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('a' - 1)),
                                            _mm256_cmpgt_epi8(_mm256_set1_epi8('z' + 1), v))));
  nl = static_cast<std::uint32_t>(_mm256_movemask_epi8(DLC_EQ(v, '\n')));
}
#undef DLC_EQ

template <bool kPrefixes>
__attribute__((target("avx2,popcnt"))) std::uint64_t candidate_pass_avx2(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::uint64_t events = 0;
  std::uint32_t prev = 0;
  for (std::size_t i = 0; i + 34 <= text.size(); i += 32) {
    std::uint32_t dig, ev, dot, colon, upper, lower, nl;
    avx2_masks<kPrefixes>(p + i, dig, ev, dot, colon, upper, lower, nl);
    events += static_cast<std::uint64_t>(__builtin_popcount((dig & ~((dig << 1) | prev)) | ev));
    prev = dig >> 31;
  }
  return events;
}

__attribute__((target("avx2,popcnt"))) std::size_t count_newlines_avx2(const unsigned char* p,
                                                                       std::size_t n) {
  std::size_t count = 0, i = 0;
  const __m256i nl = _mm256_set1_epi8('\n');
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    count += static_cast<std::size_t>(
        __builtin_popcount(static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, nl)))));
  }
  for (; i < n; ++i) count += p[i] == '\n';
  return count;
}

// Length of the digit run at p (at most 32; 32 means "maybe longer").
__attribute__((target("avx2,bmi"))) std::size_t digit_span_avx2(const unsigned char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i d = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('0' - 1)),
                                     _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), v));
  const auto m = static_cast<std::uint32_t>(_mm256_movemask_epi8(d));
  return m == 0xFFFFFFFFu ? 32 : static_cast<std::size_t>(__builtin_ctz(~m));
}

// The byte masks of two 32-byte compares as 64 bits.
__attribute__((target("avx2"))) inline std::uint64_t bits64(__m256i lo, __m256i hi) {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(lo))) |
         static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(hi))) << 32;
}

// Only called on masks from the AVX2 pass, so the CPU has POPCNT.
__attribute__((target("popcnt"))) std::uint32_t popcount64(std::uint64_t x) {
  return static_cast<std::uint32_t>(__builtin_popcountll(x));
}

std::size_t count_newlines(const unsigned char* p, std::size_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return count_newlines_avx2(p, n);
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) count += p[i] == '\n';
  return count;
}

// ---- Credential keywords ------------------------------------------------------------
struct CredentialKeyword {
  std::string_view text;  // lower-case ASCII or UTF-8
  InfoType type;
};
constexpr CredentialKeyword kCredentialKeywords[] = {
    {"password", InfoType::password},
    {"passwd", InfoType::password},
    {"passphrase", InfoType::password},
    {"pass", InfoType::password},
    {"pwd", InfoType::password},
    {"密码", InfoType::password},
    {"口令", InfoType::password},
    {"secret_access_key", InfoType::secret},
    {"secret_key", InfoType::secret},
    {"secretkey", InfoType::secret},
    {"secret", InfoType::secret},
    {"token", InfoType::secret},
    {"api_key", InfoType::secret},
    {"apikey", InfoType::secret},
    {"api-key", InfoType::secret},
    {"cvv2", InfoType::cvv},
    {"cvv", InfoType::cvv},
    {"cvc2", InfoType::cvv},
    {"cvc", InfoType::cvv},
    {"cvn2", InfoType::cvv},
    {"cvn", InfoType::cvv},
    {"安全码", InfoType::cvv},
    {"pin_code", InfoType::pin},
    {"pincode", InfoType::pin},
    {"pin", InfoType::pin},
};

// Credential keywords grouped by their first two bytes.
const std::vector<const CredentialKeyword*>* keyword_group(unsigned char a, unsigned char b) {
  struct Groups {
    std::vector<std::pair<unsigned, std::vector<const CredentialKeyword*>>> list;
    Groups() {
      for (const auto& k : kCredentialKeywords) {
        const unsigned key =
            static_cast<unsigned char>(k.text[0]) << 8 | static_cast<unsigned char>(k.text[1]);
        auto it =
            std::find_if(list.begin(), list.end(), [&](const auto& g) { return g.first == key; });
        if (it == list.end())
          list.push_back({key, {&k}});
        else
          it->second.push_back(&k);
      }
    }
  };
  static const Groups groups;
  const unsigned key = static_cast<unsigned>(a) << 8 | b;
  for (const auto& g : groups.list)
    if (g.first == key) return &g.second;
  return nullptr;
}

bool credential_value_ok(InfoType type, std::string_view v) {
  if (validate::placeholder_value(v)) return false;
  auto digits = [&](std::size_t lo, std::size_t hi) {
    if (v.size() < lo || v.size() > hi) return false;
    for (char c : v)
      if (!is_digit(static_cast<unsigned char>(c))) return false;
    return true;
  };
  switch (type) {
    case InfoType::password:
      return v.size() >= 3;
    case InfoType::secret:
      return v.size() >= 8;
    case InfoType::cvv:
      return digits(3, 4);
    case InfoType::pin:
      return digits(4, 6);
    default:
      return false;
  }
}

// ---- The scanner -------------------------------------------------------------------
class Scanner {
 public:
  Scanner(const ChunkInput& in, ChunkOutput& out, std::vector<Hit>& hits,
          std::vector<std::uint64_t>& nl_masks)
      : in_(in),
        hits_(hits),
        nl_masks_(nl_masks),
        t_(reinterpret_cast<const unsigned char*>(in.text.data())),
        n_(in.text.size()),
        begin_(in.begin),
        end_(std::min(in.end, in.text.size())),
        csv_(in.csv),
        binary_(in.binary),
        out_(out),
        stream_(in.max_findings != SIZE_MAX && !(in.csv && in.csv->has_credentials)),
        csv_start_(in.csv_start),
        csv_state_(in.csv_start),
        csv_frontier_(in.begin) {}

  void run() {
    hits_.clear();
    nl_masks_.clear();
    out_.tallies.clear();
    out_.hit_count = 0;
    if (!stream_) hits_.reserve((end_ - begin_) / 64);
    nl_masks_.reserve((end_ - begin_) / 64 + 1);
    std::size_t tail = begin_;
    if (__builtin_cpu_supports("avx2")) tail = run_avx2();
    run_scalar(tail);
    if (csv_) {
      while (csv_frontier_ < end_) csv_block(csv_frontier_);
      out_.csv_end = csv_state_;
      if (csv_->has_credentials) credential_columns();
    }
    settle(SIZE_MAX);
    number_lines();
  }

 private:
  const ChunkInput& in_;
  std::vector<Hit>& hits_;  // hits not settled yet (a reused buffer)
  std::vector<std::uint64_t>& nl_masks_;  // newlines of each 64-byte block from begin_ (SIMD pass)
  const unsigned char* t_;
  std::size_t n_, begin_, end_;
  const CsvLayout* csv_;
  const bool binary_;
  ChunkOutput& out_;
  const bool stream_;  // settle hits during the scan (see settle())
  std::size_t cursor_ = 0;  // candidates before this were consumed by an earlier token
  std::vector<std::pair<std::string, std::uint32_t>> key_cache_;  // JSON field name -> context

  // CSV records and columns, parsed 64 bytes at a time ahead of the
  // candidates of those bytes: for the current and the previous block, the
  // record ends (newlines outside quotes), the field separators (delimiters
  // outside quotes) and the column at the block's start, so that the column
  // of a position is a popcount.
  struct CsvBlock {
    std::size_t start = SIZE_MAX;
    std::uint64_t records = 0, separators = 0;
    std::uint32_t column = 0;
  };
  const CsvState csv_start_;  // at begin_
  CsvState csv_state_;        // at csv_frontier_
  std::size_t csv_frontier_;  // blocks before it are parsed
  CsvBlock csv_cur_, csv_prev_;

  unsigned char at(std::size_t i) const { return i < n_ ? t_[i] : 0; }
  const bool avx2_ = __builtin_cpu_supports("avx2");
  // The SIMD pass's digit mask of the block being dispatched: most digit
  // runs end inside it.
  std::size_t dig_block_ = SIZE_MAX;
  std::uint64_t dig_mask_ = 0;
  std::size_t run_end(std::size_t s) const {
    if (s >= dig_block_ && s - dig_block_ < 64) {
      const std::uint64_t rest = ~dig_mask_ >> (s - dig_block_);
      if (rest) return s + static_cast<std::size_t>(__builtin_ctzll(rest));
      s = dig_block_ + 64;
    }
    if (avx2_ && s + 32 <= n_) {
      const std::size_t k = digit_span_avx2(t_ + s);
      if (k < 32) return s + k;
      s += 32;
    }
    while (s < n_ && is_digit(t_[s])) ++s;
    return s;
  }
  unsigned char before(std::size_t i) const { return i > 0 ? t_[i - 1] : 0; }
  std::string_view view(std::size_t a, std::size_t b) const {
    return {reinterpret_cast<const char*>(t_) + a, b - a};
  }

  // ---- Candidate positions -------------------------------------------------------------
  __attribute__((target("avx2,bmi,popcnt"))) std::size_t run_avx2() {
    std::size_t i = begin_;
    std::uint64_t prev_digit = (i > 0 && is_digit(t_[i - 1])) ? 1 : 0;
    std::uint64_t prev_colon = (i > 0 && t_[i - 1] == ':') ? 1 : 0;
    std::uint64_t prev_lower = (i > 0 && bytes::is_lower(t_[i - 1])) ? 1 : 0;
    std::uint64_t prev_mark =
        (i > 0 && (is_upper(t_[i - 1]) || (t_[i - 1] == ':' && i > 1 && t_[i - 2] == ':'))) ? 1 : 0;
    // Runs starting in the last two bytes may continue in the next block.
    constexpr std::uint64_t kEdge = std::uint64_t{3} << 62;
    while (i < end_ && i + 66 <= n_) {
      if (csv_) csv_block_avx2(i);
      std::uint32_t d0, e0, s0, c0, u0, l0, n0, d1, e1, s1, c1, u1, l1, n1;
      avx2_masks(t_ + i, d0, e0, s0, c0, u0, l0, n0);
      avx2_masks(t_ + i + 32, d1, e1, s1, c1, u1, l1, n1);
      std::uint64_t nl = n0 | (std::uint64_t{n1} << 32);
      if (end_ - i < 64) nl &= (std::uint64_t{1} << (end_ - i)) - 1;
      nl_masks_.push_back(nl);
      const std::uint64_t dig = d0 | (std::uint64_t{d1} << 32);
      const std::uint64_t sep = s0 | (std::uint64_t{s1} << 32);
      const std::uint64_t colon = c0 | (std::uint64_t{c1} << 32);
      const std::uint64_t dcolon = colon & ((colon << 1) | prev_colon);  // 2nd ':' of "::"
      const std::uint64_t mark = (u0 | (std::uint64_t{u1} << 32)) | dcolon;
      const std::uint64_t starts = dig & ~((dig << 1) | prev_digit);
      // Digit runs shorter than 3 matter only before '.' (IPv4), after "::"
      // (IPv6) or after an upper-case letter (IBAN check digits): on_digit_run
      // drops the others, so they are not dispatched at all (timestamps,
      // amounts, counters).
      const std::uint64_t two = dig >> 1, three = dig >> 2;
      // Runs right after a lower-case letter are inside words no type can be
      // (hex ids, "user42"): USCCs, IBANs and passports are upper-case.
      const std::uint64_t lower = l0 | (std::uint64_t{l1} << 32);
      const std::uint64_t keep =
          ((starts & two & three) | (starts & kEdge) | (starts & ~two & (sep >> 1)) |
           (starts & two & ~three & (sep >> 2)) | (starts & ((mark << 1) | prev_mark))) &
          ~((lower << 1) | prev_lower);
      prev_lower = lower >> 63;
      prev_digit = dig >> 63;
      prev_colon = colon >> 63;
      prev_mark = mark >> 63;
      // IPv6: the second colon of every "::", and in blocks with 3+ colons
      // the first colon of a "h:h:h:h" chain (full forms have no "::").
      std::uint64_t v6 = dcolon;
      if (__builtin_popcountll(colon) >= 3)
        for (std::uint64_t c = colon & ~v6; c; c &= c - 1) {
          const std::size_t pos = i + static_cast<std::size_t>(__builtin_ctzll(c));
          if (ipv6_chain(pos)) v6 |= c & -c;
        }
      std::uint64_t ev = (e0 | (std::uint64_t{e1} << 32)) | keep | v6;
      if (end_ - i < 64) ev &= (std::uint64_t{1} << (end_ - i)) - 1;
      dig_block_ = i;
      dig_mask_ = dig;
      while (ev) {
        const std::size_t pos = i + static_cast<std::size_t>(__builtin_ctzll(ev));
        ev &= ev - 1;
        if (pos >= cursor_) dispatch(pos);
      }
      i += 64;
    }
    dig_block_ = SIZE_MAX;
    return std::min(i, end_);
  }

  bool pair_candidate(std::size_t i) const {
    return t_[i] == '@' || prefix_candidate(t_[i], at(i + 1), at(i + 2));
  }

  void run_scalar(std::size_t from) {
    for (std::size_t i = from; i < end_; ++i) {
      if (csv_ && i >= csv_frontier_) csv_block(csv_frontier_);
      if (i < cursor_) continue;
      const unsigned char c = t_[i];
      if (is_digit(c)) {
        if (!is_digit(before(i))) dispatch(i);
      } else if (c == ':') {
        if (before(i) == ':' || ipv6_chain(i)) dispatch(i);
      } else if (pair_candidate(i)) {
        dispatch(i);
      }
    }
  }

  void dispatch(std::size_t pos) {
    const unsigned char c = t_[pos];
    if (is_digit(c)) return on_digit_run(pos);
    if (c == '@') return on_at(pos);
    if (c == ':') return on_colon(pos);
    on_prefix(pos);
  }

  // ---- Hits -------------------------------------------------------------------------------
  // Start of the line holding x (never before `floor`).
  std::size_t line_start(std::size_t x, std::size_t floor) const {
    if (x <= floor) return floor;
    const void* nl = ::memrchr(t_ + floor, '\n', x - floor);
    return nl ? static_cast<std::size_t>(static_cast<const unsigned char*>(nl) - t_) + 1 : floor;
  }

  // ---- Settling hits: the findings list and the tallies ---------------------------------
  // A hit is settled once no later candidate can replace it: then it is
  // tallied (the merge's counts and CSV column votes) and, until max_findings
  // of the kept ones are surely reported, copied to ChunkOutput::hits. While
  // streaming, add() settles hits that lie kSettleLag bytes before the newest
  // one while they are still in cache, and the buffer stays small; otherwise
  // (masking keeps every hit; credential columns merge hits after the scan)
  // everything is settled at the end.
  //
  // Every later hit starts at most kLookBehind bytes before the end of the
  // newest one (candidates are dispatched at or after the cursor, which add()
  // moves past each hit, and no token looks further back than the 256 bytes
  // of a connection string), and add() only replaces hits that start at or
  // after a later hit's start.
  static constexpr std::size_t kLookBehind = 256, kSettleLag = 4 * kLookBehind;
  bool keeping_ = in_.max_findings > 0;  // hits are still copied to out_.hits
  std::size_t sure_ = 0;  // kept hits that are surely reported
  // Tallies by (column, type, confidence, alternatives): open addressing.
  std::vector<std::uint64_t> tally_keys_ = std::vector<std::uint64_t>(64);
  std::vector<std::uint32_t> tally_slots_ = std::vector<std::uint32_t>(64, UINT32_MAX);
  std::uint64_t last_key_ = ~std::uint64_t{0};
  std::size_t last_tally_ = 0;

  static std::uint64_t tally_key(std::int32_t column, InfoType type, std::uint8_t confidence,
                                 std::uint8_t alternatives) {
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(column)) << 32 |
           static_cast<std::uint64_t>(type) << 16 | std::uint64_t{confidence} << 8 | alternatives;
  }
  std::size_t tally_slot(std::uint64_t key) const {
    std::size_t i = (key * 0x9E3779B97F4A7C15ull) >> 40 & (tally_slots_.size() - 1);
    while (tally_slots_[i] != UINT32_MAX && tally_keys_[i] != key)
      i = (i + 1) & (tally_slots_.size() - 1);
    return i;
  }
  void tally(const Hit& h) {
    const std::uint64_t key = tally_key(h.column, h.type, h.confidence, h.alternatives);
    auto& tallies = out_.tallies;
    if (key != last_key_) {
      if (tallies.size() * 2 >= tally_slots_.size()) {  // grow
        tally_keys_.assign(tally_slots_.size() * 2, 0);
        tally_slots_.assign(tally_slots_.size() * 2, UINT32_MAX);
        for (std::size_t t = 0; t < tallies.size(); ++t) {
          const HitTally& x = tallies[t];
          const std::uint64_t k = tally_key(x.column, x.type, x.confidence, x.alternatives);
          const std::size_t i = tally_slot(k);
          tally_keys_[i] = k;
          tally_slots_[i] = static_cast<std::uint32_t>(t);
        }
      }
      const std::size_t i = tally_slot(key);
      if (tally_slots_[i] == UINT32_MAX) {
        tally_keys_[i] = key;
        tally_slots_[i] = static_cast<std::uint32_t>(tallies.size());
        tallies.push_back({h.column, h.type, h.confidence, h.alternatives, 0});
      }
      last_tally_ = tally_slots_[i];
      last_key_ = key;
    }
    ++tallies[last_tally_].count;
    ++out_.hit_count;
  }

  // Settles the buffered hits that start before `limit`.
  void settle(std::size_t limit) {
    std::size_t k = 0;
    for (; k < hits_.size() && hits_[k].offset < limit; ++k) {
      const Hit& h = hits_[k];
      if (keeping_) {
        out_.hits.push_back(h);
        sure_ += h.confidence / 100.0 + 1e-6 >= in_.min_confidence &&
                 (in_.enabled_types & (1u << static_cast<unsigned>(h.type))) &&
                 (h.alternatives & ~in_.enabled_types) == 0;
        keeping_ = sure_ < in_.max_findings;
      }
      tally(h);
    }
    hits_.erase(hits_.begin(), hits_.begin() + static_cast<std::ptrdiff_t>(k));
  }

  // Line numbers of the kept hits (relative to the chunk) and the chunk's newline
  // count, in one pass after the scan: counting per hit would cost more than
  // finding it in dense files.
  void number_lines() {
    // Blocks the SIMD pass covered: lines from their newline masks.
    const std::size_t covered = std::min(end_, begin_ + nl_masks_.size() * 64);
    std::size_t block = 0;
    std::uint32_t before_block = 0;  // newlines before block `block`
    std::size_t pos = covered;       // scalar counting position beyond the covered part
    std::uint32_t line_at_pos = 0;
    bool past = false;
    for (Hit& h : out_.hits) {
      if (h.offset < covered) {
        const std::size_t k = h.offset >= begin_ ? (h.offset - begin_) / 64 : 0;
        for (; block < k; ++block) before_block += popcount64(nl_masks_[block]);
        const std::size_t bit = h.offset >= begin_ ? (h.offset - begin_) % 64 : 0;
        h.line = before_block + popcount64(nl_masks_[k] & ((std::uint64_t{1} << bit) - 1));
        continue;
      }
      if (!past) {
        for (; block < nl_masks_.size(); ++block) before_block += popcount64(nl_masks_[block]);
        line_at_pos = before_block;
        past = true;
      }
      if (h.offset > pos) {
        line_at_pos += count_newlines(pos, h.offset);
        pos = h.offset;
      }
      h.line = line_at_pos;
    }
    if (!past) {
      for (; block < nl_masks_.size(); ++block) before_block += popcount64(nl_masks_[block]);
      line_at_pos = before_block;
    }
    if (end_ > pos) line_at_pos += count_newlines(pos, end_);
    out_.newlines = line_at_pos;
  }

  std::uint32_t count_newlines(std::size_t a, std::size_t b) const {
    return static_cast<std::uint32_t>(classify::count_newlines(t_ + a, b - a));
  }

  // ---- CSV records ------------------------------------------------------------------------
  static std::uint64_t prefix_xor(std::uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
  }
  static std::uint64_t low_bits(std::size_t n) {  // n <= 64
    return n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  }

  // Whether byte p starts a field: the file's start (after a UTF-8 BOM),
  // or right after a delimiter or a newline.
  bool field_start(std::size_t p) const {
    if (p == 0 || (p == 3 && t_[0] == 0xEF && t_[1] == 0xBB && t_[2] == 0xBF)) return true;
    const unsigned char c = t_[p - 1];
    return c == static_cast<unsigned char>(csv_->delimiter) || c == '\n';
  }

  // One byte of the parse (the scalar twin of csv_block).
  void csv_step(CsvState& s, std::size_t p) const {
    const unsigned char c = t_[p];
    const bool after_closer = s.after_closer;
    s.after_closer = false;
    if (c == '"') {
      if (s.quoted) {
        s.quoted = false;
        s.after_closer = true;
      } else if (after_closer || field_start(p)) {
        s.quoted = true;
      }
    } else if (!s.quoted) {
      if (c == static_cast<unsigned char>(csv_->delimiter))
        ++s.column;
      else if (c == '\n')
        s.column = 0;
    }
  }

  // Parses the block of up to 64 bytes at i (i == csv_frontier_): records
  // embedded newlines, the block's record ends and separators, and the state
  // after it. Under plain toggling every quote flips "inside" (prefix XOR; a
  // "" pair flips twice); a quote that would open a field where none starts
  // (not after a delimiter, a newline or a closing quote) is a character of
  // the field instead: it is dropped and the parity recomputed.
  void csv_block(std::size_t i) {
    const std::size_t len = std::min<std::size_t>(64, end_ - i);
    std::uint64_t q = 0, dl = 0, nl = 0;
    const unsigned char delim = static_cast<unsigned char>(csv_->delimiter);
    for (std::size_t k = 0; k < len; ++k) {
      const unsigned char c = t_[i + k];
      q |= std::uint64_t{c == '"'} << k;
      dl |= std::uint64_t{c == delim} << k;
      nl |= std::uint64_t{c == '\n'} << k;
    }
    csv_parse(i, len, q, dl, nl);
  }
  // The same for a whole block inside the SIMD pass (inlined there).
  __attribute__((target("avx2,popcnt"), always_inline)) void csv_block_avx2(std::size_t i) {
    const std::size_t len = std::min<std::size_t>(64, end_ - i);
    const __m256i qq = _mm256_set1_epi8('"'), dd = _mm256_set1_epi8(csv_->delimiter),
                  nn = _mm256_set1_epi8('\n');
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t_ + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t_ + i + 32));
    const std::uint64_t valid = low_bits(len);
    csv_parse(i, len, bits64(_mm256_cmpeq_epi8(a, qq), _mm256_cmpeq_epi8(b, qq)) & valid,
              bits64(_mm256_cmpeq_epi8(a, dd), _mm256_cmpeq_epi8(b, dd)) & valid,
              bits64(_mm256_cmpeq_epi8(a, nn), _mm256_cmpeq_epi8(b, nn)) & valid);
  }
  __attribute__((always_inline)) void csv_parse(std::size_t i, std::size_t len, std::uint64_t q,
                                                std::uint64_t dl, std::uint64_t nl) {
    const std::uint64_t flip = csv_state_.quoted ? ~std::uint64_t{0} : 0;
    std::uint64_t inside = prefix_xor(q) ^ flip;
    if (q) {
      std::uint64_t starts = ((dl | nl) << 1) | std::uint64_t{field_start(i)};
      if (i == 0 && field_start(3)) starts |= std::uint64_t{1} << 3;
      const std::uint64_t closer_carry = csv_state_.after_closer;
      while (true) {
        const std::uint64_t openers = q & inside, closers = q & ~inside;
        const std::uint64_t stray = openers & ~(starts | (closers << 1) | closer_carry);
        if (!stray) break;
        q &= ~(stray & -stray);
        inside = prefix_xor(q) ^ flip;
      }
    }
    const std::uint64_t records = nl & ~inside;
    for (std::uint64_t e = nl & inside; e; e &= e - 1)
      out_.embedded_newlines.push_back(i + static_cast<std::size_t>(__builtin_ctzll(e)));
    const std::uint64_t separators = dl & ~inside;
    csv_prev_ = csv_cur_;
    csv_cur_ = {i, records, separators, csv_state_.column};
    if (records) {
      const unsigned last = 63u - static_cast<unsigned>(__builtin_clzll(records));
      csv_state_.column =
          static_cast<std::uint32_t>(std::popcount(separators & ~low_bits(last + 1)));
    } else {
      csv_state_.column += static_cast<std::uint32_t>(std::popcount(separators));
    }
    csv_state_.quoted = (inside >> (len - 1)) & 1;
    csv_state_.after_closer = ((q & ~inside) >> (len - 1)) & 1;
    csv_frontier_ = i + len;
  }

  // POPCNT where the CPU has it (every AVX2 CPU does), else the portable count.
  std::uint32_t pop(std::uint64_t x) const {
    return avx2_ ? popcount64(x) : static_cast<std::uint32_t>(std::popcount(x));
  }
  std::int32_t column_in(const CsvBlock& b, std::size_t x) const {
    const std::uint64_t below = low_bits(x - b.start);
    const std::uint64_t ends = b.records & below;
    if (!ends) return static_cast<std::int32_t>(b.column + pop(b.separators & below));
    const unsigned last = 63u - static_cast<unsigned>(__builtin_clzll(ends));
    return static_cast<std::int32_t>(pop(b.separators & below & ~low_bits(last + 1)));
  }

  // Bytes [from, x) parsed from state s as csv_block does (without recording).
  std::int32_t column_parsed(CsvState s, std::size_t from, std::size_t x) const {
    for (std::size_t p = from; p < x; ++p) csv_step(s, p);
    return static_cast<std::int32_t>(s.column);
  }

  // CSV column of position x: from the parsed blocks around the candidates
  // (a popcount), else by parsing from the frontier (look-ahead of a
  // keyword's value) or from the start of x's record (a long look-behind).
  std::int32_t column_of(std::size_t x) {
    if (x >= csv_cur_.start && x - csv_cur_.start < 64) return column_in(csv_cur_, x);
    if (x >= csv_prev_.start && x - csv_prev_.start < 64) return column_in(csv_prev_, x);
    if (x >= csv_frontier_) return column_parsed(csv_state_, csv_frontier_, x);
    // Back to the newline that ends the previous record (one not embedded).
    std::size_t p = x;
    while (p > begin_) {
      const void* nl = ::memrchr(t_ + begin_, '\n', p - begin_);
      if (!nl) break;
      const auto at_nl = static_cast<std::size_t>(static_cast<const unsigned char*>(nl) - t_);
      const auto& emb = out_.embedded_newlines;
      if (!std::binary_search(emb.begin(), emb.end(), at_nl))
        return column_parsed(CsvState{}, at_nl + 1, x);
      p = at_nl;
    }
    return column_parsed(csv_start_, begin_, x);
  }

  // Context of a candidate starting at x: its column's name in CSV, else the
  // nearest keyword in the 48 bytes before it on the same line.
  std::uint32_t context_at(std::size_t x) {
    if (csv_) {
      std::int32_t col = column_of(x);
      return col >= 0 && static_cast<std::size_t>(col) < csv_->context.size()
                 ? csv_->context[static_cast<std::size_t>(col)]
                 : 0;
    }
    // A JSON value ("id_card": "...") takes its field name as context; the
    // names repeat on every line of a JSONL file, so their context is cached.
    if (const std::string_view key = json_key_before(x); !key.empty()) {
      for (const auto& [name, bits] : key_cache_)
        if (name == key) return bits;
      const std::uint32_t bits = nearest_context(key);
      if (key_cache_.size() < 64) key_cache_.emplace_back(std::string(key), bits);
      return bits;
    }
    const std::size_t from = line_start(x, x > 48 ? x - 48 : 0);
    return nearest_context(view(from, x));
  }

  // The name in `"name": "` or `"name": ` right before x, or "" when x is not
  // a JSON value.
  std::string_view json_key_before(std::size_t x) const {
    std::size_t i = x;
    if (i > 0 && t_[i - 1] == '"') --i;
    while (i > 0 && t_[i - 1] == ' ') --i;
    if (i == 0 || t_[i - 1] != ':') return {};
    --i;
    while (i > 0 && t_[i - 1] == ' ') --i;
    if (i == 0 || t_[i - 1] != '"') return {};
    const std::size_t end = --i;
    while (i > 0 && end - i < 48 && t_[i - 1] != '"' && t_[i - 1] != '\n') --i;
    if (i == 0 || t_[i - 1] != '"' || i == end) return {};
    return view(i, end);
  }

  void add(std::size_t a, std::size_t b, InfoType type, float confidence,
           std::uint32_t alternatives = 0) {
    cursor_ = std::max(cursor_, b);
    if (confidence < kCandidateConfidence) return;
    auto& hits = hits_;
    // A later hit that contains earlier ones (an email around a phone number) replaces them.
    while (!hits.empty() && hits.back().offset >= a && hits.back().offset + hits.back().length <= b)
      hits.pop_back();
    if (!hits.empty() && hits.back().offset + hits.back().length > a) return;
    Hit h;
    h.offset = a;
    h.length = static_cast<std::uint32_t>(b - a);
    h.alternatives = static_cast<std::uint8_t>(alternatives);
    h.column = csv_ ? column_of(a) : -1;
    h.confidence = static_cast<std::uint8_t>(std::min(confidence, 1.0f) * 100 + 0.5f);
    h.type = type;
    hits.push_back(h);
    if (stream_ && hits.size() >= 256 && a > kSettleLag) settle(a - kSettleLag);
  }

  // ---- Numbers -------------------------------------------------------------------------------
  void on_digit_run(std::size_t s) {
    const std::size_t e = run_end(s);
    const std::size_t len = e - s;
    const unsigned char prev = before(s), next = at(e);
    if (bytes::is_lower(prev)) return;
    if (len < 3 && next != '.' && !(prev == ':' && before(s - 1) == ':') && !is_upper(prev)) return;
    if (is_alpha(prev)) return on_word(s);
    if (prev == '.' && is_digit(before(s - 1))) {  // fraction of a decimal number
      cursor_ = std::max(cursor_, e);
      return;
    }
    if (next == ':' || prev == ':') {
      if (try_ipv6(s)) return;
    }
    if (next == '.' && len <= 3 && is_digit(at(e + 1))) return try_ipv4(s);
    if (len < 3) return;
    if (is_alpha(next) && !(len == 17 && (next == 'X' || next == 'x') && !is_alnum(at(e + 1))))
      return on_word(s);
    numeric_token(s, e);
  }

  void try_ipv4(std::size_t s) {
    std::size_t e = s;
    while (e < n_ && e - s < 16 && (is_digit(t_[e]) || t_[e] == '.')) ++e;
    cursor_ = std::max(cursor_, e);
    while (e > s && t_[e - 1] == '.') --e;  // sentence end
    if (is_alnum(at(e)) || before(s) == '.' || is_alnum(before(s))) return;
    if (at(e) == '.' && is_digit(at(e + 1))) return;
    if (validate::ipv4(view(s, e))) add(s, e, InfoType::ipv4, 0.8f);
  }

  // An IPv6 address around s (a digit run next to ':' or a colon). `soft`:
  // a failure leaves the cursor alone, so the digits around s are still
  // tokenised as numbers.
  bool try_ipv6(std::size_t s, bool soft = false) {
    std::size_t a = s;
    while (a > 0 && s - a < 40 && (is_hex(t_[a - 1]) || t_[a - 1] == ':')) --a;
    std::size_t e = s;
    while (e < n_ && e - a < 46 && (is_hex(t_[e]) || t_[e] == ':' || t_[e] == '.')) ++e;
    if (!soft) cursor_ = std::max(cursor_, e);
    while (e > a && t_[e - 1] == '.') --e;
    int colons = 0, hex = 0;
    bool double_colon = false, decimal = false;
    for (std::size_t i = a; i < e; ++i) {
      const unsigned char c = t_[i];
      if (c == ':') {
        ++colons;
        if (i > a && t_[i - 1] == ':') double_colon = true;
      } else if (c != '.') {
        ++hex;
        decimal |= is_digit(c);
      }
    }
    if (colons < 2 || (!double_colon && colons != 7)) return false;
    if (is_alnum(before(a)) || is_alnum(at(e))) return false;
    if (!validate::ipv6(view(a, e))) return false;
    // Short compressed forms ("C::8", "::1", "cb::add", "dead::beef") are as
    // likely bytes of a binary, C++ scopes or words as addresses: they count
    // only with IP context ("ip", "ipv6", "addr", "host", an "ip" column or
    // field) or in brackets ("[::1]:8080"). Full forms and compressed forms
    // with 5+ hex digits and a decimal digit ("fe80::1", "2001:db8::8a2e")
    // stand on their own.
    // In a binary file's printable runs a compressed form also needs 3+
    // groups ("10D::3A" occurs by chance; "2001:500:2f::f" does not).
    int groups = 0;
    for (std::size_t i = a; i < e; ++i)
      groups += t_[i] != ':' && (i == a || t_[i - 1] == ':');
    float confidence = 0.85f;
    if (double_colon && (hex < 5 || !decimal || (binary_ && groups < 3))) {
      const bool bracketed = before(a) == '[' && at(e) == ']';
      confidence = bracketed || (context_at(a) & kCtxIp) ? 0.85f : 0.4f;
    }
    add(a, e, InfoType::ipv6, confidence);
    return true;
  }

  // ':' dispatched by the candidate pass: the second colon of "::" next to a
  // hex digit, or the first colon of "h:h:h:h" (the full form has no "::").
  void on_colon(std::size_t c) {
    if (before(c) == ':') {
      if (at(c + 1) == ':' || !(is_hex(at(c + 1)) || (c >= 2 && is_hex(t_[c - 2])))) return;
    } else if (!ipv6_chain(c)) {
      return;
    }
    try_ipv6(c, true);
  }

  // A hex digit before the colon at c and three groups of 1-4 hex digits each
  // followed by ':' after it.
  bool ipv6_chain(std::size_t c) const {
    if (c == 0 || !is_hex(t_[c - 1])) return false;
    std::size_t p = c + 1;
    for (int g = 0; g < 3; ++g) {
      std::size_t k = 0;
      while (k < 5 && is_hex(at(p + k))) ++k;
      if (k == 0 || k > 4 || at(p + k) != ':') return false;
      p += k + 1;
    }
    return true;
  }

  struct Group {
    std::size_t start, len;
  };

  void numeric_token(std::size_t s, std::size_t first_end) {
    Group g[8];
    int ng = 0;
    std::size_t pos = s, total = 0;
    while (true) {
      const std::size_t gs = pos;
      pos = ng == 0 ? first_end : run_end(pos);
      g[ng++] = {gs, pos - gs};
      total += pos - gs;
      if (ng == 8 || total > 24) break;
      const unsigned char c = at(pos);
      if ((c == ' ' || c == '-') && is_digit(at(pos + 1))) {
        ++pos;
        continue;
      }
      break;
    }
    // Fewer than 11 digits are no identifier (mobiles have 11, cards 13-19,
    // IDs 15/18, the "X" of an ID is no digit): amounts, years, counters and
    // timestamps ("2026-11-25 12") end here.
    if (total < 11) return;
    std::size_t end = pos;
    // The last group runs into letters: it belongs to a word, not to this number.
    if (is_alpha(at(end)) && ng > 1 &&
        !((at(end) == 'X' || at(end) == 'x') && !is_alnum(at(end + 1)))) {
      --ng;
      end = g[ng - 1].start + g[ng - 1].len;
    }
    const bool x = (at(end) == 'X' || at(end) == 'x') && !is_alnum(at(end + 1));
    cursor_ = std::max(cursor_, end);
    if (ng == 1) return evaluate(s, end + (x ? 1 : 0), kAnyShape);

    char lens[8];
    for (int i = 0; i < ng; ++i) lens[i] = static_cast<char>(g[i].len);
    auto shape = [&](std::initializer_list<int> want) {
      if (static_cast<int>(want.size()) != ng) return false;
      int i = 0;
      for (int w : want)
        if (lens[i++] != w) return false;
      return true;
    };
    auto group_is = [&](int i, std::string_view v) {
      return view(g[i].start, g[i].start + g[i].len) == v;
    };
    if (shape({3, 4, 4})) return evaluate(s, end, kMobileShape);
    if ((shape({2, 3, 4, 4}) || shape({2, 11})) && group_is(0, "86"))
      return evaluate(s, end, kMobileShape | kPrefix86);
    if ((shape({4, 3, 4, 4}) || shape({4, 11})) && group_is(0, "0086"))
      return evaluate(s, end, kMobileShape | kPrefix86);
    if (shape({4, 4, 4, 4}) || shape({4, 4, 4, 4, 3}) || shape({4, 4, 4, 4, 2}) ||
        shape({4, 4, 4, 4, 1}) || shape({6, 13}) || shape({4, 6, 5}) || shape({4, 6, 4}))
      return evaluate(s, end, kCardShape);
    if ((shape({6, 8, 4}) && !x) || (shape({6, 8, 3}) && x))
      return evaluate(s, end + (x ? 1 : 0), kIdShape);
    // No known grouping: each long group stands on its own.
    for (int i = 0; i < ng; ++i) {
      if (g[i].len < 11) continue;
      std::size_t ge = g[i].start + g[i].len;
      bool gx = i == ng - 1 && x;
      evaluate(g[i].start, ge + (gx ? 1 : 0), kAnyShape);
    }
  }

  enum Shape : unsigned {
    kAnyShape = 0,
    kMobileShape = 1,
    kCardShape = 2,
    kIdShape = 4,
    kPrefix86 = 8,
  };

  // A digit string [a, b) (separators allowed inside when grouped; a trailing X
  // allowed for IDs): which types it validates as, and which one it most likely is.
  void evaluate(std::size_t a, std::size_t b, unsigned shape) {
    char buf[32];
    std::size_t n = 0;
    std::string_view d;
    if (shape == kAnyShape) {  // contiguous: validate in place
      d = view(a, b);
      n = d.size();
    } else {
      for (std::size_t i = a; i < b && n < sizeof buf; ++i)
        if (is_alnum(t_[i])) buf[n++] = static_cast<char>(t_[i]);
      d = std::string_view(buf, n);
    }
    const bool x = n > 0 && (d.back() == 'X' || d.back() == 'x');
    bool prefix = (shape & kPrefix86) != 0;
    std::uint32_t valid = 0;
    const bool any = shape == kAnyShape;

    if (any || (shape & kIdShape)) {
      if (n == 18 && validate::resident_id18(d)) valid |= bit(InfoType::resident_id);
      if (n == 15 && validate::resident_id15(d)) valid |= bit(InfoType::resident_id_15);
    }
    if (x && !valid) return;
    if (any || (shape & kCardShape)) {
      if (!x && n >= 13 && n <= 19 && validate::bank_card(d)) valid |= bit(InfoType::bank_card);
    }
    // A valid resident ID is not also checked as an all-digit USCC: both
    // passing is rarer than the organisation-code check's false positives.
    if (any && n == 18 && !x && !(valid & bit(InfoType::resident_id)) && validate::uscc(d))
      valid |= bit(InfoType::uscc);
    if (shape & kMobileShape) {
      if (n >= 11 && validate::mobile(d.substr(n - 11))) valid |= bit(InfoType::mobile);
    } else if (any) {
      if (n == 11 && validate::mobile(d)) valid |= bit(InfoType::mobile);
      if ((n == 13 && d.substr(0, 2) == "86") || (n == 15 && d.substr(0, 4) == "0086")) {
        if (validate::mobile(d.substr(n - 11))) {
          valid = bit(InfoType::mobile);
          prefix = true;
        }
      }
    }
    if (!valid) return;

    // A separated +86 / 0086 in front of a bare mobile number.
    if ((valid & bit(InfoType::mobile)) && !prefix && n == 11) {
      std::size_t p = a;
      if (p > 0 && (t_[p - 1] == ' ' || t_[p - 1] == '-')) --p;
      if (p >= 2 && t_[p - 1] == '6' && t_[p - 2] == '8') {
        std::size_t q = p - 2;
        if (q >= 1 && t_[q - 1] == '+') {
          a = q - 1;
          prefix = true;
        } else if (q >= 2 && t_[q - 1] == '0' && t_[q - 2] == '0' && !is_digit(before(q - 2))) {
          a = q - 2;
          prefix = true;
        }
      }
    }

    const bool grouped = shape != kAnyShape;
    const bool single = (valid & (valid - 1)) == 0;
    std::uint32_t ctx = 0;
    // Context is looked up only when it can change the outcome.
    if (!(single && valid == bit(InfoType::resident_id))) ctx = context_at(a);
    constexpr std::uint32_t kNumericContext =
        kCtxResidentId | kCtxCard | kCtxPhone | kCtxUscc | kCtxPassport | kCtxPermit | kCtxIban;

    auto score = [&](InfoType t, float base, float high) {
      const std::uint32_t mine = context_bit(t);
      if (ctx & mine) return high;
      // "account", "bank": a card is likely, but not over a stricter ID check.
      if (t == InfoType::bank_card && (ctx & kCtxAccount)) return 0.85f;
      if (ctx & kCtxNegative) return base - 0.3f;
      if (ctx & kNumericContext & ~mine) return base - 0.25f;
      return base;
    };
    InfoType best{};
    float best_score = -1;
    auto consider = [&](InfoType t, float base, float high) {
      if (!(valid & bit(t))) return;
      float sc = score(t, base, high);
      if (sc > best_score) {
        best_score = sc;
        best = t;
      }
    };
    consider(InfoType::resident_id, 0.9f, 0.99f);
    consider(InfoType::resident_id_15, 0.45f, 0.95f);
    const bool unionpay = d.substr(0, 2) == "62" || d.substr(0, 2) == "81";
    consider(InfoType::bank_card, grouped ? 0.8f : (unionpay && n >= 16 ? 0.7f : 0.55f), 0.97f);
    consider(InfoType::mobile, prefix ? 0.9f : (grouped ? 0.8f : 0.6f), 0.97f);
    consider(InfoType::uscc, 0.5f, 0.97f);
    add(a, b, best, best_score, valid & ~bit(best));
  }

  // ---- Words of letters and digits ----------------------------------------------------------
  void on_word(std::size_t s) {
    std::size_t ws = s;
    while (ws > 0 && s - ws < 64 && is_alnum(t_[ws - 1])) --ws;
    std::size_t we = s;
    while (we < n_ && we - ws < 65 && is_alnum(t_[we])) ++we;
    if (is_alnum(at(we)) || is_alnum(before(ws))) {  // too long to be an identifier
      while (we < n_ && is_alnum(t_[we])) ++we;
      cursor_ = std::max(cursor_, we);
      return;
    }
    cursor_ = std::max(cursor_, we);
    const std::size_t len = we - ws;
    const std::string_view w = view(ws, we);
    if (at(we) == ':' && len <= 4 && try_ipv6(ws)) return;
    if (len == 18 && validate::uscc(w)) {
      std::uint32_t ctx = context_at(ws);
      add(ws, we, InfoType::uscc, (ctx & kCtxUscc) ? 0.99f : (ctx & kCtxNegative) ? 0.6f : 0.9f);
      return;
    }
    const bool iban_head = len >= 4 && is_upper(w[0]) && is_upper(w[1]) &&
                           is_digit(static_cast<unsigned char>(w[2])) &&
                           is_digit(static_cast<unsigned char>(w[3]));
    if (iban_head && len >= 15 && validate::iban(w)) return add(ws, we, InfoType::iban, 0.95f);
    if (iban_head && len == 4 && at(we) == ' ') return spaced_iban(ws);
    if (!is_upper(w[0])) return;
    if ((len == 8 || len == 9) && validate::passport(w)) {
      std::uint32_t ctx = context_at(ws);
      add(ws, we, InfoType::passport,
          (ctx & kCtxPassport)   ? 0.95f
          : (ctx & kCtxNegative) ? 0.2f
                                 : 0.45f);
      return;
    }
    if ((len == 9 || len == 11) && validate::travel_permit(w)) {
      std::uint32_t ctx = context_at(ws);
      add(ws, we, InfoType::travel_permit,
          (ctx & kCtxPermit)     ? 0.95f
          : (ctx & kCtxNegative) ? 0.2f
                                 : 0.4f);
    }
  }

  // "GB82 WEST 1234 5698 7654 32": groups of four separated by single spaces.
  void spaced_iban(std::size_t ws) {
    char buf[34];
    std::size_t n = 0, n_end = 0, pos = ws, end = ws;
    while (true) {
      const std::size_t g = pos;
      while (pos < n_ && is_alnum(t_[pos]) && pos - g < 4) {
        if (n == sizeof buf) return;
        buf[n++] = static_cast<char>(t_[pos++]);
      }
      const std::size_t glen = pos - g;
      if (glen == 0 || is_alnum(at(pos))) break;
      end = pos;
      n_end = n;
      if (glen < 4 || at(pos) != ' ' || !is_alnum(at(pos + 1))) break;
      ++pos;
    }
    if (validate::iban(std::string_view(buf, n_end))) add(ws, end, InfoType::iban, 0.95f);
  }

  // ---- '@': e-mail addresses and passwords in connection strings -------------------------------
  static bool token_stop(unsigned char c) {
    return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '(' || c == ',';
  }

  void on_at(std::size_t s) {
    std::size_t a = s;
    while (a > 0 && s - a < 64 && is(t_[a - 1], kLocal)) --a;
    // scheme://user:password@host: only when the local part does not start a
    // token (a ':' or a password character stands before it).
    if (a > 0 && !token_stop(t_[a - 1])) {
      std::size_t u = a;
      while (u > 0 && s - u < 256 && !token_stop(t_[u - 1])) --u;
      const std::string_view token = view(u, s);
      const auto scheme = token.find("://");
      if (scheme != std::string_view::npos) {
        const auto colon = token.find(':', scheme + 3);
        if (colon != std::string_view::npos) {
          const std::size_t p = u + colon + 1;
          if (p < s && !validate::placeholder_value(view(p, s)))
            add(p, s, InfoType::password, 0.95f);
          return;
        }
      }
    }
    while (a < s && (t_[a] == '.' || t_[a] == '-')) ++a;
    std::size_t b = s + 1;
    while (b < n_ && b - s < 254 && is(t_[b], kDomain)) ++b;
    while (b > s + 1 && (t_[b - 1] == '.' || t_[b - 1] == '-')) --b;
    if (a == s || b <= s + 3) return;
    if (validate::email(view(a, b)) && (!binary_ || email_in_binary(a, s, b)))
      add(a, b, InfoType::email, 0.95f);
  }

  // In a binary file's printable runs "p@6.of" and "S@mvd.tH" occur by
  // chance (some 25 per GiB of random bytes): there an address must look
  // written, as in "Report bugs to bug-coreutils@gnu.org": a local part of 2+
  // characters, a domain in one case with labels of 2+ characters, and a
  // country-code TLD or a known generic one.
  bool email_in_binary(std::size_t a, std::size_t at_pos, std::size_t b) const {
    if (at_pos - a < 2) return false;
    bool has_lower = false, has_upper = false;
    std::size_t label = 0, last_dot = at_pos;
    for (std::size_t i = at_pos + 1; i <= b; ++i) {
      const unsigned char c = i < b ? t_[i] : '.';
      if (c == '.') {
        if (label < 2) return false;
        if (i < b) last_dot = i;
        label = 0;
        continue;
      }
      ++label;
      has_lower |= bytes::is_lower(c);
      has_upper |= is_upper(c);
    }
    if (has_lower && has_upper) return false;
    const std::size_t tld = b - last_dot - 1;
    if (tld == 2) return true;  // country codes
    static constexpr std::string_view kGeneric[] = {
        "com",  "net",  "org",   "edu",  "gov",   "mil",    "int",  "info", "biz",  "name",
        "pro",  "mobi", "asia",  "top",  "xyz",   "vip",    "club", "shop", "site", "online",
        "tech", "wang", "ltd",   "cloud", "link", "work",   "group", "store", "live", "app",
        "dev",  "art",  "fun",   "icu",  "ink",   "email",  "mail", "host", "space", "world"};
    char low[8];
    if (tld > sizeof low) return false;
    for (std::size_t i = 0; i < tld; ++i) low[i] = static_cast<char>(lower(t_[last_dot + 1 + i]));
    const std::string_view name(low, tld);
    for (std::string_view g : kGeneric)
      if (g == name) return true;
    return false;
  }

  // ---- Fixed prefixes
  // -------------------------------------------------------------------------------
  void on_prefix(std::size_t s) {
    const unsigned char c = t_[s], c1 = at(s + 1);
    if (c == 'A' && (c1 == 'K' || c1 == 'S')) {
      if (access_key(s)) return;
    } else if (c == 'L' && c1 == 'T') {
      if (access_key(s)) return;
    } else if (c == 'e' && c1 == 'y') {
      if (at(s + 2) == 'J') jwt(s);
      return;
    } else if (c == '-') {
      return pem(s);
    }
    keyword(s);
  }

  bool access_key(std::size_t s) {
    if (is_alnum(before(s))) return false;
    std::size_t e = s;
    while (e < n_ && e - s < 40 && is_alnum(t_[e])) ++e;
    if (is_alnum(at(e))) return false;
    const std::string_view w = view(s, e);
    if (validate::aws_access_key(w))
      add(s, e, InfoType::aws_access_key, 0.95f);
    else if (validate::alibaba_access_key(w))
      add(s, e, InfoType::alibaba_access_key, 0.9f);
    else if (validate::tencent_secret_id(w))
      add(s, e, InfoType::tencent_secret_id, 0.9f);
    else
      return false;
    return true;
  }

  void jwt(std::size_t s) {
    if (is(before(s), kB64) || before(s) == '.') return;
    std::size_t e = s;
    while (e < n_ && e - s < 16384 && (is(t_[e], kB64) || t_[e] == '.')) ++e;
    cursor_ = std::max(cursor_, e);
    while (e > s && t_[e - 1] == '.') --e;
    if (validate::jwt(view(s, e))) add(s, e, InfoType::jwt, 0.95f);
  }

  void pem(std::size_t s) {
    if (before(s) == '-' || n_ - s < 40 || std::memcmp(t_ + s, "-----BEGIN ", 11) != 0) return;
    const std::string_view rest = view(s + 11, std::min(n_, s + 11 + 64));
    const auto dashes = rest.find("-----");
    if (dashes == std::string_view::npos) return;
    const std::string_view label = rest.substr(0, dashes);
    if (!(label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK"))) return;
    std::size_t header_end = s + 11 + dashes + 5;
    // A real key has its body right after the header: a line of 40+ base64
    // characters, after optional RFC 1421 headers (Proc-Type, DEK-Info) or
    // armor headers, on the next lines (or after literal "\n" in JSON strings).
    bool body = false;
    std::size_t p = header_end;
    for (int line = 0; line < 6 && !body; ++line) {
      while (at(p) == '\r' || at(p) == '\n' || (at(p) == '\\' && at(p + 1) == 'n'))
        p += at(p) == '\\' ? 2 : 1;
      std::size_t run = 0;
      std::size_t q = p;
      while (q < n_ && (is_alnum(t_[q]) || t_[q] == '+' || t_[q] == '/' || t_[q] == '='))
        ++q, ++run;
      if (run >= 40) {
        body = true;
      } else {
        // "Proc-Type: 4,ENCRYPTED" style header lines are skipped; anything else ends the search.
        bool colon = false;
        while (q < n_ && q - p < 128 && t_[q] != '\n' && !(t_[q] == '\\' && at(q + 1) == 'n'))
          colon |= t_[q++] == ':';
        if (!colon || q == p) break;
        p = q;
      }
    }
    if (!body) return;
    std::size_t end = header_end;
    const std::string_view tail = view(header_end, std::min(n_, header_end + (64u << 10)));
    const auto footer = tail.find("-----END ");
    if (footer != std::string_view::npos) {
      const auto close = tail.find("-----", footer + 9);
      end = header_end + (close == std::string_view::npos ? footer + 9 : close + 5);
    }
    add(s, end, InfoType::private_key, 0.99f);
  }

  // password=..., "secret": "...", cvv: 123, 密码：...
  void keyword(std::size_t s) {
    if (is_alpha(before(s)) || s + 2 > n_) return;  // inside a word: "bypass", "spin"
    // Only the keywords starting with these two bytes ("account" and "result"
    // trigger the prefilter too, and end here).
    const auto* group = keyword_group(lower(t_[s]), lower(t_[s + 1]));
    if (!group) return;
    const CredentialKeyword* found = nullptr;
    std::size_t key_end = 0;
    for (const CredentialKeyword* kp : *group) {
      const CredentialKeyword& k = *kp;
      if (k.text.size() > n_ - s || (found && k.text.size() <= found->text.size())) continue;
      bool match = true;
      for (std::size_t j = 0; j < k.text.size() && match; ++j)
        match = lower(t_[s + j]) == static_cast<unsigned char>(k.text[j]);
      if (!match) continue;
      found = &k;
      key_end = s + k.text.size();
    }
    if (!found) return;
    const bool cjk = static_cast<unsigned char>(found->text[0]) >= 0x80;
    std::size_t i = key_end;
    bool quoted = false;
    if (at(i) == '"' || at(i) == '\'') {
      quoted = true;
      ++i;
    }
    while (at(i) == ' ' || at(i) == '\t') ++i;
    if (at(i) == '=') {
      ++i;
      if (at(i) == '>') ++i;
    } else if (at(i) == ':') {
      if (!quoted && !cjk && !key_starts_line(s)) return;
      ++i;
    } else if (at(i) == 0xEF && at(i + 1) == 0xBC && at(i + 2) == 0x9A) {  // full-width colon
      i += 3;
    } else {
      return;
    }
    while (at(i) == ' ' || at(i) == '\t') ++i;
    unsigned char q = 0;
    if (at(i) == '"' || at(i) == '\'') q = t_[i++];
    std::size_t v = i, w = i;
    if (q) {
      while (w < n_ && w - v < 512 && t_[w] != q && t_[w] != '\n') ++w;
      if (at(w) != q) return;
    } else {
      while (w < n_ && w - v < 512) {
        const unsigned char c = t_[w];
        if (c <= ' ' || c == ',' || c == ';' || c == '&' || c == ')' || c == '}' || c == ']' ||
            c == '"' || c == '\'' || c == '<' || c == '>')
          break;
        ++w;
      }
    }
    const std::string_view value = view(v, w);
    InfoType type = found->type;
    if (type == InfoType::secret && validate::jwt(value)) return add(v, w, InfoType::jwt, 0.95f);
    if (!credential_value_ok(type, value)) return;
    add(v, w, type, type == InfoType::pin ? 0.85f : (type == InfoType::secret ? 0.85f : 0.9f));
  }

  // YAML-style "  db_password: x": the key is the first thing on its line.
  bool key_starts_line(std::size_t s) const {
    std::size_t i = s;
    while (i > 0 &&
           (is_alnum(t_[i - 1]) || t_[i - 1] == '_' || t_[i - 1] == '.' || t_[i - 1] == '-'))
      --i;
    while (i > 0 && (t_[i - 1] == ' ' || t_[i - 1] == '\t' || t_[i - 1] == '-')) --i;
    return i == 0 || t_[i - 1] == '\n';
  }

  // ---- CSV columns that hold credentials
  // --------------------------------------------------------------
  void credential_columns() {
    std::vector<Hit> extra;
    const unsigned char delim = static_cast<unsigned char>(csv_->delimiter);
    const auto& embedded = out_.embedded_newlines;
    std::size_t next_embedded = 0;
    std::size_t pos = begin_;
    CsvState state = csv_start_;  // of the chunk's first record; later records start clean
    while (pos < end_) {
      // The record: up to the next newline that is not embedded.
      std::size_t eol = pos;
      while (true) {
        const unsigned char* nl =
            static_cast<const unsigned char*>(std::memchr(t_ + eol, '\n', end_ - eol));
        eol = nl ? static_cast<std::size_t>(nl - t_) : end_;
        while (next_embedded < embedded.size() && embedded[next_embedded] < eol) ++next_embedded;
        if (nl && next_embedded < embedded.size() && embedded[next_embedded] == eol) {
          ++next_embedded;
          ++eol;
          continue;
        }
        break;
      }
      if (!(pos == 0 && csv_->header)) {
        std::size_t f = pos;
        auto col = static_cast<std::int32_t>(state.column);
        while (f <= eol) {
          std::size_t g = f;
          while (g < eol && (state.quoted || t_[g] != delim)) csv_step(state, g++);
          if (g < eol) csv_step(state, g);  // the delimiter
          std::size_t a = f, b = g;
          if (b > a && t_[b - 1] == '\r') --b;
          if (b - a >= 2 && t_[a] == '"' && t_[b - 1] == '"') {
            ++a;
            --b;
          }
          const auto c = static_cast<std::size_t>(col);
          if (c < csv_->credential.size() && csv_->credential[c] &&
              credential_value_ok(*csv_->credential[c], view(a, b))) {
            Hit h;
            h.offset = a;
            h.length = static_cast<std::uint32_t>(b - a);
            h.column = col;
            h.confidence = 90;
            h.type = *csv_->credential[c];
            extra.push_back(h);
          }
          ++col;
          f = g + 1;
        }
      }
      state = CsvState{};
      pos = eol + 1;
    }
    if (extra.empty()) return;
    auto& hits = hits_;
    std::vector<Hit> merged;
    merged.reserve(hits.size() + extra.size());
    std::merge(hits.begin(), hits.end(), extra.begin(), extra.end(), std::back_inserter(merged),
               [](const Hit& x, const Hit& y) { return x.offset < y.offset; });
    hits.clear();
    for (const Hit& h : merged) {
      if (!hits.empty() && hits.back().offset + hits.back().length > h.offset) {
        Hit& last = hits.back();
        const bool replace =
            h.length > last.length || (h.length == last.length && h.confidence > last.confidence);
        if (replace) last = h;
        continue;
      }
      hits.push_back(h);
    }
  }
};

}  // namespace

std::uint64_t candidate_pass(std::string_view text, bool prefixes) {
  if (!__builtin_cpu_supports("avx2")) return 0;
  return prefixes ? candidate_pass_avx2<true>(text) : candidate_pass_avx2<false>(text);
}

void scan_chunk(const ChunkInput& in, ChunkOutput& out) {
  // Buffers reused by the chunks a thread scans: fresh ones would cost page
  // faults on every chunk.
  thread_local std::vector<Hit> hits;
  thread_local std::vector<std::uint64_t> nl_masks;
  Scanner scanner(in, out, hits, nl_masks);
  scanner.run();
  if (hits.capacity() > (std::size_t{64} << 20) / sizeof(Hit)) std::vector<Hit>().swap(hits);
  if (nl_masks.capacity() > (std::size_t{16} << 20) / 8) std::vector<std::uint64_t>().swap(nl_masks);
}

CsvLayout csv_layout(std::string_view text, char delimiter) {
  CsvLayout l;
  // The first record (a quoted header name may hold a newline).
  std::size_t first_end = 0;
  const std::size_t limit = std::min<std::size_t>(text.size(), 64 << 10);
  for (bool quoted = false; first_end < limit; ++first_end) {
    if (text[first_end] == '"') quoted = !quoted;
    if (text[first_end] == '\n' && !quoted) break;
  }
  if (first_end == limit) first_end = std::min(text.find('\n'), text.size());
  std::string_view first = text.substr(0, first_end);
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  if (first.size() >= 3 && static_cast<unsigned char>(first[0]) == 0xEF &&
      static_cast<unsigned char>(first[1]) == 0xBB && static_cast<unsigned char>(first[2]) == 0xBF)
    first.remove_prefix(3);  // UTF-8 BOM
  if (delimiter == 0) {
    std::size_t best = 0;
    delimiter = ',';
    for (char d : {',', '\t', ';', '|'}) {
      auto c = static_cast<std::size_t>(std::count(first.begin(), first.end(), d));
      if (c > best) {
        best = c;
        delimiter = d;
      }
    }
  }
  l.delimiter = delimiter;
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  for (char c : first) {
    if (c == '"')
      quoted = !quoted;
    else if (c == delimiter && !quoted)
      cells.push_back(std::exchange(cell, {}));
    else
      cell += c;
  }
  cells.push_back(cell);
  // A header names its columns: every cell has a letter (or CJK) and no long digit run.
  bool header = true;
  for (const auto& c : cells) {
    bool letter = false;
    std::size_t run = 0, longest = 0;
    for (unsigned char u : c) {
      if (is_alpha(u) || u >= 0x80) letter = true;
      run = is_digit(u) ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    if (!letter || longest >= 6) header = false;
  }
  // A first line holding a finding is data, not names: its cells must never
  // become column names in reports (an e-mail has letters and no digits).
  if (header) {
    ChunkInput in;
    in.text = first;
    in.begin = 0;
    in.end = first.size();
    ChunkOutput out;
    scan_chunk(in, out);
    if (!out.hits.empty()) header = false;
  }
  l.header = header;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    std::string name = header ? cells[i] : std::string("#");
    if (!header) name += std::to_string(i + 1);
    l.names.push_back(std::move(name));
    l.context.push_back(header ? name_context(cells[i]) : 0);
    l.credential.push_back(header ? credential_column(cells[i]) : std::nullopt);
    if (l.credential.back()) l.has_credentials = true;
  }
  return l;
}

}  // namespace dlc::classify
