// ASCII byte classes shared by the validators, the scanner and the maskers.
// Bytes >= 0x80 (UTF-8, GB18030) belong to none of them, which is what makes
// identifier boundaries next to Chinese text work.
#pragma once

namespace dlc::classify::bytes {

constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_upper(unsigned char c) noexcept { return c >= 'A' && c <= 'Z'; }
constexpr bool is_lower(unsigned char c) noexcept { return c >= 'a' && c <= 'z'; }
constexpr bool is_alpha(unsigned char c) noexcept { return is_upper(c) || is_lower(c); }
constexpr bool is_alnum(unsigned char c) noexcept { return is_digit(c) || is_alpha(c); }
constexpr unsigned char lower(unsigned char c) noexcept {
  return is_upper(c) ? static_cast<unsigned char>(c | 0x20) : c;
}

}  // namespace dlc::classify::bytes
