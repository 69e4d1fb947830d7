// Internals shared by scan() and mask_file(): loading a file as text
// (gzip, encodings, binary), splitting it into chunks, and turning the
// scanner's hits into graded, masked findings.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "classify/classify.h"
#include "classify/policy.h"
#include "classify/scanner.h"

namespace dlc::classify {

// A read-only mapping of a whole file (RAII).
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }
  std::int64_t mtime_ns() const { return mtime_ns_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::int64_t mtime_ns_ = 0;
};

struct FileText {
  std::unique_ptr<MappedFile> map;
  std::string decoded;    // when the text is not the mapping itself
  std::string_view text;  // what the scanner reads
  bool binary = false;
  std::optional<CsvLayout> csv;
};

// Loads path and fills the descriptive fields of report (bytes, gzip,
// encoding, format, sha256, skipped). Throws dlc::Error on I/O failure.
// (An out parameter: text may point into decoded, which must not move.)
void load_file(const std::filesystem::path& path, BinaryMode binary, bool hash, FileReport& report,
               FileText& out);

// [begin, end) ranges of about chunk bytes, each ending after a newline.
std::vector<std::pair<std::size_t, std::size_t>> split_chunks(std::string_view text,
                                                              std::size_t chunk);

// Merges the chunks' hits (in order) into report: line numbers, CSV column
// consensus, policy grading, confidence threshold, masked samples. The hits
// that are reported are returned in `reported` when it is given.
void finalize(const Policy& policy, const FileText& file, const std::vector<ChunkOutput>& chunks,
              std::size_t max_findings, FileReport& report, std::vector<Hit>* reported);

}  // namespace dlc::classify
