// dlc::classify: find, grade, label and mask sensitive data and personal
// information (JR/T 0167 9.1, 8c). Identifiers are found by a byte-level
// scanner and confirmed by their check rules (docs/classify.md); each finding
// carries a JR/T 0171 category, a JR/T 0197 level, a confidence and a MASKED
// sample. Raw values never leave this library: not in reports, errors or logs.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/runtime.h"

namespace dlc::classify {

// What was found. The names (type_name) are part of the report formats.
enum class InfoType : std::uint8_t {
  resident_id,     // GB 11643 18-digit resident identity number
  resident_id_15,  // legacy 15-digit resident identity number
  uscc,            // GB 32100 unified social credit code
  bank_card,       // payment card number (Luhn + BIN)
  mobile,          // mainland China mobile number
  passport,        // PRC passport number
  travel_permit,   // HK/Macau/Taiwan travel permits, home-return permits
  email,
  ipv4,
  ipv6,
  iban,                // ISO 13616 IBAN (mod 97)
  private_key,         // PEM/OpenSSH/PGP private key block
  aws_access_key,      // AKIA/ASIA access key id
  alibaba_access_key,  // LTAI access key id
  tencent_secret_id,   // AKID secret id
  jwt,                 // JSON Web Token
  password,            // password in a config file, connection string or column
  secret,              // token / API key / client secret in a config file
  cvv,                 // card verification value by context
  pin,                 // PIN by context
};
inline constexpr std::size_t kTypeCount = 20;
std::string_view type_name(InfoType t) noexcept;
std::optional<InfoType> type_from_name(std::string_view name) noexcept;

// JR/T 0171-2020 category of personal financial information; none for data
// that is not personal financial information (IP addresses, company codes).
enum class Category : std::uint8_t { none, C1, C2, C3 };
std::string_view category_name(Category c) noexcept;

using TypeCounts = std::array<std::uint64_t, kTypeCount>;

struct Finding {
  InfoType type{};
  Category category{};
  int level = 0;                     // JR/T 0197 level 1..5
  double confidence = 0;             // 0..1
  std::uint64_t line = 0;            // 1-based line in the decoded text (0 for binary files)
  std::uint64_t offset = 0;          // byte offset in the decoded text
  std::optional<std::uint64_t> row;  // CSV/TSV data row, 1-based, header excluded
  std::string column;                // CSV/TSV column name (or "#N" without a header)
  std::string masked;                // masked sample; never the raw value
};

// A CSV/TSV column classified as a whole.
struct ColumnSummary {
  std::string name;
  std::size_t index = 0;  // 0-based
  InfoType type{};
  std::uint64_t rows = 0;     // data rows in the file
  std::uint64_t matches = 0;  // rows whose cell holds that type
};

struct FileReport {
  std::string path;
  std::uint64_t bytes = 0;  // bytes read from disk
  std::string format;       // text, csv, tsv, json, binary
  std::string encoding;     // utf-8, gb18030, binary
  bool gzip = false;
  std::string skipped;                 // why the file was not scanned ("" when scanned)
  std::string error;                   // why it could not be read ("" when ok)
  int level = 1;                       // derived from findings and volume rules
  Category category = Category::none;  // highest category found
  TypeCounts counts{};                 // reported findings per type
  std::uint64_t total = 0;             // sum of counts
  std::vector<Finding> findings;       // at most max_findings_per_file
  std::vector<ColumnSummary> columns;
  std::string sha256;  // of the file's bytes, when requested (labels)
  std::int64_t mtime_ns = 0;
};

struct DatasetReport {
  std::vector<std::string> roots;
  std::vector<FileReport> files;
  int level = 1;
  Category category = Category::none;
  TypeCounts counts{};
  std::uint64_t total = 0;
  std::uint64_t bytes = 0;  // bytes read
  std::uint64_t files_scanned = 0;
  std::uint64_t files_skipped = 0;
  std::uint64_t files_failed = 0;
  double seconds = 0;
  unsigned threads = 1;
  std::string policy;         // policy name
  std::string policy_sha256;  // of the policy file ("" for the built-in default)
  double min_confidence = 0;
};

enum class BinaryMode { strings, skip };

struct ClassifyOptions {
  std::vector<std::filesystem::path> inputs;  // files and directories (recursive)
  std::vector<std::string> include;           // globs; a file must match one when given
  std::vector<std::string> exclude;           // globs; matching files/directories are skipped
  std::optional<std::filesystem::path> policy_file;  // JSON, docs/classify.md
  std::optional<double> min_confidence;              // overrides the policy's
  unsigned threads = 0;                              // 0: one per core
  std::size_t max_findings_per_file = 1000;
  BinaryMode binary = BinaryMode::strings;
  bool hash_files = false;             // sha256 per file (labels manifest)
  std::size_t chunk_bytes = 8u << 20;  // big files are split into chunks
  ProgressSink* progress = nullptr;
};

// Scans every input. Throws dlc::Error (usage/io) for a missing input or a bad
// policy; an unreadable file inside a directory is recorded in its FileReport.
DatasetReport scan(const ClassifyOptions& options);

// The report formats (docs/classify.md, "Reports").
nlohmann::json to_json(const DatasetReport& report);
// {"type name": count} for the non-zero counts (reports, labels, audit details).
nlohmann::json counts_to_json(const TypeCounts& counts);
std::string to_csv(const DatasetReport& report);
void write_human(std::ostream& os, const DatasetReport& report, bool verbose,
                 std::size_t max_shown_per_file = 20);

// Labels manifest (docs/formats/labels.md) and optional user.dlc.level xattrs.
struct LabelOptions {
  std::filesystem::path manifest;
  bool xattr = false;
};
struct LabelResult {
  std::uint64_t files = 0;
  std::uint64_t xattrs_set = 0;
  std::uint64_t xattr_failures = 0;
};
LabelResult write_labels(const DatasetReport& report, const LabelOptions& options);

// Masked copy of a text/CSV/JSON file (clause 8c).
struct MaskOptions {
  std::filesystem::path input;
  std::filesystem::path output;
  std::optional<std::filesystem::path> policy_file;
  std::optional<double> min_confidence;
  bool force = false;  // overwrite an existing output
};
struct MaskResult {
  TypeCounts counts{};
  std::uint64_t masked = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string encoding;
  bool gzip = false;
  int level = 1;
};
MaskResult mask_file(const MaskOptions& options);


}  // namespace dlc::classify
