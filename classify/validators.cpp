#include "classify/validators.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <ctime>

#include "classify/bytes.h"

namespace dlc::classify::validate {

namespace {

using bytes::is_alnum;
using bytes::is_digit;
using bytes::is_upper;
constexpr int digit(char c) noexcept { return c - '0'; }

bool all_digits(std::string_view s) noexcept {
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

int number(std::string_view s) noexcept {
  int v = 0;
  for (char c : s) v = v * 10 + digit(c);
  return v;
}

// Today as YYYYMMDD, computed once: birth dates after it are impossible.
int today_yyyymmdd() noexcept {
  static const int today = [] {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
  }();
  return today;
}

bool valid_date(int y, int m, int d) noexcept {
  if (y < 1880 || m < 1 || m > 12 || d < 1) return false;
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int dim = days[m - 1];
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) dim = 29;
  if (d > dim) return false;
  return y * 10000 + m * 100 + d <= today_yyyymmdd();
}

// Value of a character in the GB 32100 alphabet, -1 when not in it.
int uscc_value(char c) noexcept {
  static constexpr std::string_view alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  auto pos = alphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

}  // namespace

bool province_code(char a, char b) noexcept {
  if (!is_digit(a) || !is_digit(b)) return false;
  switch (a) {
    case '1':
      return b >= '1' && b <= '5';
    case '2':
      return b >= '1' && b <= '3';
    case '3':
      return b >= '1' && b <= '7';
    case '4':
      return b >= '1' && b <= '6';
    case '5':
      return b >= '0' && b <= '4';
    case '6':
      return b >= '1' && b <= '5';
    case '7':
      return b == '1';
    case '8':
      return b >= '1' && b <= '3';
    default:
      return false;
  }
}

char resident_id18_check(std::string_view s) noexcept {
  static constexpr int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  if (s.size() < 17) return '\0';
  int sum = 0;
  for (int i = 0; i < 17; ++i) {
    if (!is_digit(s[i])) return '\0';
    sum += digit(s[i]) * weights[i];
  }
  return "10X98765432"[sum % 11];
}

bool resident_id18(std::string_view s) noexcept {
  static constexpr int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  if (s.size() != 18) return false;
  int sum = 0;
  for (int i = 0; i < 17; ++i) {
    if (!is_digit(s[static_cast<std::size_t>(i)])) return false;
    sum += digit(s[static_cast<std::size_t>(i)]) * weights[i];
  }
  const char check = s[17] == 'x' ? 'X' : s[17];
  if ("10X98765432"[sum % 11] != check) return false;  // the cheapest test that fails most
  if (!province_code(s[0], s[1])) return false;
  return valid_date(number(s.substr(6, 4)), number(s.substr(10, 2)), number(s.substr(12, 2)));
}

bool resident_id15(std::string_view s) noexcept {
  if (s.size() != 15 || !all_digits(s)) return false;
  if (!province_code(s[0], s[1])) return false;
  // Legacy IDs were issued until 2004 to people born in the 1900s.
  return valid_date(1900 + number(s.substr(6, 2)), number(s.substr(8, 2)), number(s.substr(10, 2)));
}

bool organisation_code(std::string_view s) noexcept {
  static constexpr int weights[8] = {3, 7, 9, 10, 5, 8, 4, 2};
  if (s.size() != 9) return false;
  int sum = 0;
  for (int i = 0; i < 8; ++i) {
    char c = s[i];
    int v;
    if (is_digit(c))
      v = digit(c);
    else if (is_upper(c))
      v = c - 'A' + 10;
    else
      return false;
    sum += v * weights[i];
  }
  int c9 = 11 - sum % 11;
  char expect = c9 == 10 ? 'X' : c9 == 11 ? '0' : static_cast<char>('0' + c9);
  return s[8] == expect;
}

char uscc_check(std::string_view s) noexcept {
  if (s.size() < 17) return '\0';
  int sum = 0;
  int weight = 1;
  for (int i = 0; i < 17; ++i) {
    int v = uscc_value(s[i]);
    if (v < 0) return '\0';
    sum += v * weight;
    weight = weight * 3 % 31;
  }
  int c = 31 - sum % 31;
  if (c == 31) c = 0;
  return "0123456789ABCDEFGHJKLMNPQRTUWXY"[c];
}

bool uscc(std::string_view s) noexcept {
  if (s.size() != 18) return false;
  // Registration authority (1-9, A, N, Y) and institution category (1-9, or a
  // digit/letter for some authorities; a category is never 0).
  static constexpr std::string_view authorities = "123456789ANY";
  if (authorities.find(s[0]) == std::string_view::npos) return false;
  if (uscc_value(s[1]) <= 0) return false;
  // Region of registration: GB/T 2260 code, or 100000 for national bodies.
  if (!all_digits(s.substr(2, 6))) return false;
  if (!province_code(s[2], s[3]) && s.substr(2, 6) != "100000") return false;
  if (!organisation_code(s.substr(8, 9))) return false;
  return uscc_check(s) == s[17];
}

bool luhn(std::string_view digits) noexcept {
  // Every second digit from the right doubled, 9 subtracted above 9.
  // Two digits a step, no branch per digit (bank_card with Luhn was 6% of a
  // one-thread scan of the dense corpus, 5% so).
  static constexpr unsigned char kDoubled[16] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
  const std::size_t n = digits.size();
  const auto* p = reinterpret_cast<const unsigned char*>(digits.data());
  unsigned sum = 0, bad = 0;
  std::size_t i = n;
  for (; i >= 2; i -= 2) {
    const unsigned plain = p[i - 1] - 0x30u, doubled = p[i - 2] - 0x30u;
    bad |= unsigned{plain > 9} | unsigned{doubled > 9};
    sum += plain + kDoubled[doubled & 15];
  }
  if (i == 1) {
    const unsigned plain = p[0] - 0x30u;
    bad |= unsigned{plain > 9};
    sum += plain;
  }
  return n > 0 && bad == 0 && sum % 10 == 0;
}

namespace {
// card_bin without the all-digits check of the rest (Luhn makes it).
bool card_bin_prefix(std::string_view d) noexcept {
  const std::size_t n = d.size();
  if (n < 13 || n > 19 || !all_digits(d.substr(0, 5))) return false;
  const int p2 = digit(d[0]) * 10 + digit(d[1]);
  const int p3 = p2 * 10 + digit(d[2]), p4 = p3 * 10 + digit(d[3]);
  if (p2 == 62 || p2 == 81) return n >= 16;                                  // UnionPay
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;                     // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;  // Mastercard
  if (p2 == 34 || p2 == 37) return n == 15;                                  // Amex
  if (p4 >= 3528 && p4 <= 3589) return n >= 16;                              // JCB
  if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) return n >= 16;    // Discover
  if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38) return n >= 14;      // Diners
  if (p2 == 60) return n >= 16;                                     // domestic debit (BOC, ...)
  if (p4 == 9558 || p4 * 10 + digit(d[4]) == 95599) return n == 19;  // legacy ICBC / ABC debit
  return false;
}
}  // namespace

bool card_bin(std::string_view d) noexcept { return card_bin_prefix(d) && all_digits(d); }

bool bank_card(std::string_view digits) noexcept {
  return card_bin_prefix(digits) && luhn(digits);
}

bool mobile(std::string_view d) noexcept {
  if (d.size() != 11 || d[0] != '1' || !all_digits(d)) return false;
  const char a = d[1], b = d[2];
  switch (a) {
    case '3':
    case '8':
      return true;
    case '4':
      return b >= '5' && b <= '9';
    case '5':
      return b != '4';
    case '6':
      return b == '2' || b == '5' || b == '6' || b == '7';
    case '7':
      return b != '9';
    case '9':
      return b != '4';
    default:
      return false;
  }
}

bool email(std::string_view s) noexcept {
  const auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 || s.size() - at - 1 > 253) return false;
  // Local part: [A-Za-z0-9._%+-], no leading, trailing or doubled dot.
  static constexpr auto kLocal = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[static_cast<std::size_t>(c)] = is_alnum(static_cast<char>(c)) || c == '.' || c == '_' ||
                                       c == '%' || c == '+' || c == '-';
    return t;
  }();
  char prev = '.';
  for (std::size_t i = 0; i < at; ++i) {
    const char c = s[i];
    if (!kLocal[static_cast<unsigned char>(c)] || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  if (prev == '.') return false;
  // Domain: 2+ labels of [A-Za-z0-9-] (1-63, no leading or trailing hyphen);
  // the last one (the TLD) 2+ letters.
  int labels = 0;
  std::size_t start = at + 1;
  bool letters_only = true;
  for (std::size_t i = start; i <= s.size(); ++i) {
    const char c = i < s.size() ? s[i] : '.';
    if (c == '.') {
      const std::size_t len = i - start;
      if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-') return false;
      ++labels;
      if (i == s.size()) return labels >= 2 && len >= 2 && letters_only;
      start = i + 1;
      letters_only = true;
      continue;
    }
    if (!is_alnum(c) && c != '-') return false;
    letters_only &= !is_digit(c) && c != '-';
  }
  return false;
}

bool ipv4(std::string_view s) noexcept {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    int v = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 4) v = v * 10 + digit(s[i++]);
    std::size_t len = i - start;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool ipv6(std::string_view s) noexcept {
  if (s.size() < 3 || s.size() > 45) return false;
  int colons = 0, hex = 0;
  for (char c : s) {
    if (c == ':')
      ++colons;
    else if (is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
      ++hex;
  }
  if (colons < 2 || hex == 0) return false;
  char buf[46];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char out[16];
  return ::inet_pton(AF_INET6, buf, out) == 1;
}

namespace {
struct IbanCountry {
  char code[3];
  unsigned char length;
};
// ISO 13616 registry lengths (SWIFT IBAN registry).
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};
}  // namespace

bool iban(std::string_view s) noexcept {
  if (s.size() < 15 || s.size() > 34) return false;
  if (!is_upper(s[0]) || !is_upper(s[1]) || !is_digit(s[2]) || !is_digit(s[3])) return false;
  bool known = false;
  for (const auto& c : kIbanCountries) {
    if (c.code[0] == s[0] && c.code[1] == s[1]) {
      known = c.length == s.size();
      break;
    }
  }
  if (!known) return false;
  // Move the first four characters to the end, letters to 10..35, mod 97.
  int rem = 0;
  for (std::size_t k = 0; k < s.size(); ++k) {
    char c = s[(k + 4) % s.size()];
    if (is_digit(c)) {
      rem = (rem * 10 + digit(c)) % 97;
    } else if (is_upper(c)) {
      int v = c - 'A' + 10;
      rem = (rem * 100 + v) % 97;
    } else {
      return false;
    }
  }
  return rem == 1;
}

namespace {
bool letter_not_io(char c) noexcept { return is_upper(c) && c != 'I' && c != 'O'; }
}  // namespace

bool passport(std::string_view s) noexcept {
  if (s.size() == 9) {
    if ((s[0] == 'E' || s[0] == 'G') && all_digits(s.substr(1))) return true;
    if (s[0] == 'E' && letter_not_io(s[1]) && all_digits(s.substr(2))) return true;
    if ((s[0] == 'D' || s[0] == 'S' || s[0] == 'P') && s[1] == 'E' && all_digits(s.substr(2)))
      return true;
    return false;
  }
  if (s.size() == 8) return (s[0] == 'D' || s[0] == 'S' || s[0] == 'P') && all_digits(s.substr(1));
  return false;
}

bool travel_permit(std::string_view s) noexcept {
  if (s.size() == 9) {
    if ((s[0] == 'C' || s[0] == 'L' || s[0] == 'H' || s[0] == 'M') && all_digits(s.substr(1)))
      return true;
    return s[0] == 'C' && letter_not_io(s[1]) && all_digits(s.substr(2));
  }
  if (s.size() == 11) return (s[0] == 'H' || s[0] == 'M') && all_digits(s.substr(1));
  return false;
}

bool aws_access_key(std::string_view s) noexcept {
  if (s.size() != 20) return false;
  if (s.substr(0, 4) != "AKIA" && s.substr(0, 4) != "ASIA") return false;
  for (char c : s.substr(4))
    if (!is_upper(c) && !(c >= '2' && c <= '7')) return false;
  return true;
}

namespace {
bool alnum_key(std::string_view s, std::string_view prefix, std::size_t min, std::size_t max) {
  if (s.size() < prefix.size() + min || s.size() > prefix.size() + max) return false;
  if (s.substr(0, prefix.size()) != prefix) return false;
  bool has_digit = false, has_letter = false;
  for (char c : s.substr(prefix.size())) {
    if (!is_alnum(c)) return false;
    (is_digit(c) ? has_digit : has_letter) = true;
  }
  // Real keys mix letters and digits; "LTAIEXAMPLEEXAMPLE" does not.
  return has_digit && has_letter;
}

int b64url_value(char c) noexcept {
  if (is_upper(c)) return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (is_digit(c)) return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}
}  // namespace

bool alibaba_access_key(std::string_view s) noexcept { return alnum_key(s, "LTAI", 12, 20); }
bool tencent_secret_id(std::string_view s) noexcept { return alnum_key(s, "AKID", 32, 34); }

bool jwt(std::string_view s) noexcept {
  auto d1 = s.find('.');
  if (d1 == std::string_view::npos || d1 < 10) return false;
  auto d2 = s.find('.', d1 + 1);
  if (d2 == std::string_view::npos || d2 - d1 - 1 < 4 || s.size() - d2 - 1 < 8) return false;
  if (s.find('.', d2 + 1) != std::string_view::npos) return false;
  // Decode at most the first 384 bytes of the header.
  std::string_view head = s.substr(0, d1 < 512 ? d1 : 512);
  char out[384];
  std::size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  for (char c : head) {
    int v = b64url_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < sizeof out) out[n++] = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  std::string_view json(out, n);
  return n > 8 && json.front() == '{' && json.find("\"alg\"") != std::string_view::npos;
}

bool placeholder_value(std::string_view v) noexcept {
  if (v.empty()) return true;
  bool same = true;
  for (char c : v)
    if (c != v.front()) same = false;
  if (same && std::strchr("*xX#.-_?", v.front()) != nullptr) return true;
  if (v.front() == '$' || v.front() == '%' || v.substr(0, 2) == "{{" ||
      (v.front() == '<' && v.back() == '>') || (v.front() == '[' && v.back() == ']'))
    return true;
  char lower[24];
  if (v.size() >= sizeof lower) return false;
  for (std::size_t i = 0; i < v.size(); ++i)
    lower[i] = (v[i] >= 'A' && v[i] <= 'Z') ? static_cast<char>(v[i] + 32) : v[i];
  std::string_view l(lower, v.size());
  static constexpr std::string_view words[] = {
      "null",   "none",   "nil",    "undefined",     "true",         "false",    "password",
      "passwd", "secret", "string", "required",      "optional",     "redacted", "hidden",
      "masked", "empty",  "token",  "your_password", "yourpassword", "env",      "str"};
  for (auto w : words)
    if (l == w) return true;
  return false;
}

}  // namespace dlc::classify::validate
