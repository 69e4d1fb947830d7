// The byte-level scanner: one pass over a chunk of decoded text that finds
// candidate positions with SIMD masks (digit-run starts, '@', and the two-byte
// prefixes of fixed-text patterns: key headers, token prefixes, credential
// keywords), then validates only those candidates. Boundaries are decided on
// bytes, so an identifier right after Chinese text ("卡号6222...") is found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/classify.h"

namespace dlc::classify {

struct Hit {
  std::uint64_t offset = 0;  // in the decoded text of the file
  std::uint32_t length = 0;
  std::uint32_t line = 0;          // 0-based, relative to the chunk's first line
  std::uint32_t alternatives = 0;  // bit i: the value also validates as InfoType i
  std::int32_t column = -1;        // CSV/TSV column, -1 elsewhere
  float confidence = 0;
  InfoType type{};
};

struct CsvLayout {
  char delimiter = ',';
  bool header = false;
  std::vector<std::string> names;                   // from the header ("" without)
  std::vector<std::uint32_t> context;               // context bits per column
  std::vector<std::optional<InfoType>> credential;  // credential columns
  bool has_credentials = false;
};

struct ChunkInput {
  std::string_view text;           // the whole decoded file (look-behind/ahead may cross chunks)
  std::size_t begin = 0, end = 0;  // candidates start in [begin, end); begin starts a line
  const CsvLayout* csv = nullptr;
};

struct ChunkOutput {
  std::vector<Hit> hits;       // sorted by offset, non-overlapping
  std::uint32_t newlines = 0;  // in [begin, end)
};

// Candidates below this confidence are dropped at once; those between it and
// the reporting threshold are kept so that a CSV column can promote them.
inline constexpr float kCandidateConfidence = 0.2f;

void scan_chunk(const ChunkInput& in, ChunkOutput& out);

// The SIMD candidate pass alone, without validation (for bench/): number of
// candidate positions, with or without the fixed-text prefixes. 0 without AVX2.
std::uint64_t candidate_pass(std::string_view text, bool prefixes);

// Parses the first line of a CSV/TSV file: delimiter (given or sniffed),
// header names and their context.
CsvLayout csv_layout(std::string_view text, char delimiter);

}  // namespace dlc::classify
