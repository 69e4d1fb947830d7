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
  std::uint32_t line = 0;    // 0-based, relative to the chunk's first line
  std::int32_t column = -1;  // CSV/TSV column, -1 elsewhere
  InfoType type{};
  std::uint8_t confidence = 0;    // percent (reports show two decimals)
  std::uint8_t alternatives = 0;  // bit i: the value also validates as InfoType i (i < 8)
};
static_assert(sizeof(Hit) == 24);
// Only the numeric types are valid as several types at once.
static_assert(static_cast<unsigned>(InfoType::resident_id) < 8 &&
              static_cast<unsigned>(InfoType::resident_id_15) < 8 &&
              static_cast<unsigned>(InfoType::uscc) < 8 &&
              static_cast<unsigned>(InfoType::bank_card) < 8 &&
              static_cast<unsigned>(InfoType::mobile) < 8);

// Hits counted by what decides their fate in the merge: column, type,
// alternatives and confidence. A chunk keeps the first hits for the findings
// list and tallies all of them, so a file's counts and CSV column votes cost
// no pass over millions of hits.
struct HitTally {
  std::int32_t column = -1;
  InfoType type{};
  std::uint8_t confidence = 0;
  std::uint8_t alternatives = 0;
  std::uint64_t count = 0;
};

struct CsvLayout {
  char delimiter = ',';
  bool header = false;
  std::vector<std::string> names;                   // from the header ("" without)
  std::vector<std::uint32_t> context;               // context bits per column
  std::vector<std::optional<InfoType>> credential;  // credential columns
  bool has_credentials = false;
};

// The CSV parse at a chunk's edge. Records end at newlines outside quoted
// fields (RFC 4180: a quoted field may hold newlines and delimiters, "" is a
// quote). A quote opens a field only at the field's start (or as the second
// of a "" pair); elsewhere (`5'10" tall`) it is a character of the field.
// Chunks are split at newlines, so a chunk may start inside a quoted field:
// the engine then scans it again with its predecessor's end state.
struct CsvState {
  bool quoted = false;        // inside a quoted field
  bool after_closer = false;  // the last byte was a closing quote
  std::uint32_t column = 0;   // delimiters outside quotes since the record's start
};

struct ChunkInput {
  std::string_view text;           // the whole decoded file (look-behind/ahead may cross chunks)
  std::size_t begin = 0, end = 0;  // candidates start in [begin, end); begin starts a line
  const CsvLayout* csv = nullptr;
  CsvState csv_start;              // the parse state at begin (CSV)
  // Hits kept in ChunkOutput::hits: all of them (the default; masking needs
  // them), or only until max_findings of them are surely reported: their
  // confidence is at least min_confidence and their type and alternatives are
  // enabled (a column vote only changes a type to an alternative and raises
  // confidence).
  std::size_t max_findings = SIZE_MAX;
  double min_confidence = 0;
  std::uint32_t enabled_types = ~std::uint32_t{0};  // bit i: InfoType i is reported
  // The text is a binary file's printable runs (decode.h): e-mails and IPv6
  // addresses, whose checks random printable bytes can pass, need more there.
  bool binary = false;
};

struct ChunkOutput {
  std::vector<Hit> hits;       // sorted by offset, non-overlapping (the first ones, see above)
  std::vector<HitTally> tallies;  // all hits
  std::uint64_t hit_count = 0;
  std::uint32_t newlines = 0;  // in [begin, end)
  // CSV: the newlines in [begin, end) inside quoted fields (they do not end a
  // record; rows are records, lines stay physical lines), sorted; and the
  // parse state at end.
  std::vector<std::uint64_t> embedded_newlines;
  CsvState csv_end;
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
