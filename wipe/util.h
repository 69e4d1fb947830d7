// Small helpers shared by the wipe sources (internal to wipe/): random names
// and ids, sysfs reads, sizes. Atomic writes and time stamps are core/fs.h and
// core/text.h (included here for every wipe source).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "core/text.h"

namespace dlc::wipe::util {

// A random identifier in UUID version 4 form.
std::string random_uuid();

// A random file name of exactly len characters from [a-z0-9].
std::string random_name(std::size_t len);

// Reads a small text file (sysfs, procfs) and trims trailing whitespace;
// nullopt when it cannot be read.
std::optional<std::string> read_text(const std::filesystem::path& p);
std::string read_text_or(const std::filesystem::path& p, std::string fallback = {});
std::optional<std::uint64_t> read_u64(const std::filesystem::path& p);

// Trims spaces and control characters at both ends.
std::string trim(std::string_view s);

// Parses "64M", "1G", "4096", "512K" (binary units) into bytes; throws Errc::usage.
std::uint64_t parse_size(std::string_view text, std::string_view option);

// One row of /proc/self/mountinfo (proc(5)); paths unescaped.
struct MountInfoRow {
  std::string devnum;      // "8:1"
  std::string mountpoint;
  std::string fstype;
  std::string source;
  std::string superopts;  // e.g. "rw,data=journal"
};
// Every row of a mountinfo file (unreadable: none).
std::vector<MountInfoRow> read_mountinfo(const std::filesystem::path& mountinfo);

// Decodes the octal escapes (\040, \011, \012, \134) used in /proc/self/mountinfo
// and /proc/swaps.
std::string unescape_octal(std::string_view s);

}  // namespace dlc::wipe::util
