// Turning a file's bytes into text the scanner reads: gzip, GB18030/GBK
// (common in Chinese finance) to UTF-8 through glibc iconv, and binary files
// reduced to their printable runs.
#pragma once

#include <string>
#include <string_view>

namespace dlc::classify {

bool is_gzip(std::string_view raw) noexcept;
// Decompresses every member of a gzip stream; throws Errc::io when corrupt or
// when the output would exceed max_bytes.
std::string gunzip(std::string_view raw, const std::string& what, std::size_t max_bytes);
std::string gzip(std::string_view data);

// NUL bytes or more than 10% control characters in the sample.
bool looks_binary(std::string_view sample) noexcept;
// Valid UTF-8 (a sequence cut at the end of the sample is allowed).
bool valid_utf8(std::string_view sample) noexcept;
// Not UTF-8, but GB18030 (a superset of GBK and GB2312) without errors.
bool looks_gb18030(std::string_view sample);

// Invalid sequences become '?' (never an error: the scan goes on).
std::string gb18030_to_utf8(std::string_view in);
std::string utf8_to_gb18030(std::string_view in);

// Same length as the input: runs of at least min_run printable ASCII bytes
// (and tabs) kept, every other byte a newline, so offsets still point into
// the original file.
std::string printable_runs(std::string_view in, std::size_t min_run = 1);

// The shortest printable run scanned in a binary file. strings(1) keeps 4;
// random bytes (compressed or encrypted data, images) are printable 37% of the
// time and hold a run of 4 every 60 bytes, of 8 every 4 KiB, and such runs
// yield short e-mails ("p@6.of") and IPv6 forms ("C::8") by chance. 8 keeps
// every identifier of 8+ characters that stands alone in a binary.
inline constexpr std::size_t kMinPrintableRun = 8;

}  // namespace dlc::classify
