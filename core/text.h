// Text helpers every tool needs the same way: UTF-8 validity (JSON documents
// must be valid UTF-8; file names need not be), RFC 3339 time stamps, and the
// identity of the host and user that appear in reports and certificates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dlc {

// Length of the valid UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF) that starts at s[i]; 0 when it is not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept;
bool valid_utf8(std::string_view s) noexcept;
// s with every byte that is not part of valid UTF-8 written as the text \xNN,
// so that any file name can go into a JSON document and still be read.
std::string printable_utf8(std::string_view s);

// RFC 3339 UTC time, e.g. 2026-11-25T12:52:53.123456789Z, with 0-9 fraction digits.
std::string rfc3339(std::int64_t unix_ns, int fraction_digits = 9);
std::int64_t now_unix_ns() noexcept;
std::string now_rfc3339(int fraction_digits = 9);
// Today's UTC date, "2026-11-25" (deadlines and approvals are dates).
std::string today_utc();

// gethostname(2), or "unknown"; the effective user's name, or its uid.
std::string host_name();
std::string user_name();

}  // namespace dlc
