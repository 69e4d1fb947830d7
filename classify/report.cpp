// Report formats: JSON (one document), CSV (one row per finding) and the
// human summary. Only masked samples ever appear in them.
#include <cstdio>
#include <ostream>
#include <sstream>

#include "classify/classify.h"

namespace dlc::classify {

namespace {

std::string counts_text(const TypeCounts& counts) {
  std::string s;
  for (std::size_t t = 0; t < kTypeCount; ++t) {
    if (!counts[t]) continue;
    if (!s.empty()) s += ", ";
    s += std::string(type_name(static_cast<InfoType>(t))) + " " + std::to_string(counts[t]);
  }
  return s;
}

std::string thousands(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string csv_field(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string level_text(int level, Category c) {
  std::string s = "level " + std::to_string(level);
  if (c != Category::none) s += " (" + std::string(category_name(c)) + ")";
  return s;
}

}  // namespace

nlohmann::json counts_to_json(const TypeCounts& counts) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t t = 0; t < kTypeCount; ++t)
    if (counts[t]) j[std::string(type_name(static_cast<InfoType>(t)))] = counts[t];
  return j;
}

nlohmann::json to_json(const DatasetReport& r) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : r.files) {
    nlohmann::json jf = {{"path", f.path}, {"bytes", f.bytes}};
    if (!f.error.empty()) {
      jf["error"] = f.error;
      files.push_back(std::move(jf));
      continue;
    }
    jf["format"] = f.format;
    jf["encoding"] = f.encoding;
    jf["gzip"] = f.gzip;
    if (!f.skipped.empty()) {
      jf["skipped"] = f.skipped;
      files.push_back(std::move(jf));
      continue;
    }
    jf["level"] = f.level;
    jf["category"] = category_name(f.category);
    jf["findings_total"] = f.total;
    jf["counts"] = counts_to_json(f.counts);
    jf["truncated"] = f.findings.size() < f.total;
    if (!f.sha256.empty()) jf["sha256"] = f.sha256;
    nlohmann::json cols = nlohmann::json::array();
    for (const auto& c : f.columns)
      cols.push_back({{"name", c.name},
                      {"index", c.index},
                      {"type", type_name(c.type)},
                      {"rows", c.rows},
                      {"matches", c.matches},
                      {"fraction", c.rows ? static_cast<double>(c.matches) / c.rows : 0.0}});
    jf["columns"] = cols;
    nlohmann::json fs = nlohmann::json::array();
    for (const auto& x : f.findings) {
      nlohmann::json jx = {{"type", type_name(x.type)},
                           {"category", category_name(x.category)},
                           {"level", x.level},
                           {"confidence", x.confidence},
                           {"line", x.line},
                           {"offset", x.offset},
                           {"masked", x.masked}};
      if (x.row) jx["row"] = *x.row;
      if (!x.column.empty()) jx["column"] = x.column;
      fs.push_back(std::move(jx));
    }
    jf["findings"] = fs;
    files.push_back(std::move(jf));
  }
  nlohmann::json policy = {{"name", r.policy}, {"min_confidence", r.min_confidence}};
  if (!r.policy_sha256.empty()) policy["sha256"] = r.policy_sha256;
  return {{"tool", "dlc classify"},
          {"version", DLC_VERSION},
          {"roots", r.roots},
          {"policy", policy},
          {"dataset",
           {{"level", r.level},
            {"category", category_name(r.category)},
            {"files_scanned", r.files_scanned},
            {"files_skipped", r.files_skipped},
            {"files_failed", r.files_failed},
            {"bytes", r.bytes},
            {"seconds", r.seconds},
            {"threads", r.threads},
            {"findings_total", r.total},
            {"counts", counts_to_json(r.counts)}}},
          {"files", files}};
}

std::string to_csv(const DatasetReport& r) {
  std::ostringstream os;
  os << "path,line,offset,row,column,type,category,level,confidence,masked\n";
  for (const auto& f : r.files)
    for (const auto& x : f.findings) {
      char conf[16];
      std::snprintf(conf, sizeof conf, "%.2f", x.confidence);
      os << csv_field(f.path) << ',' << x.line << ',' << x.offset << ','
         << (x.row ? std::to_string(*x.row) : std::string()) << ',' << csv_field(x.column) << ','
         << type_name(x.type) << ',' << category_name(x.category) << ',' << x.level << ',' << conf
         << ',' << csv_field(x.masked) << '\n';
    }
  return os.str();
}

void write_human(std::ostream& os, const DatasetReport& r, bool verbose, std::size_t max_shown) {
  for (const auto& f : r.files) {
    if (!f.error.empty()) {
      os << f.path << ": not scanned: " << f.error << '\n';
      continue;
    }
    if (!f.skipped.empty()) {
      if (verbose) os << f.path << ": skipped: " << f.skipped << '\n';
      continue;
    }
    if (f.total == 0 && !verbose) continue;
    os << f.path << ": " << level_text(f.level, f.category) << ", " << thousands(f.total)
       << (f.total == 1 ? " finding" : " findings");
    if (f.total) os << ": " << counts_text(f.counts);
    if (f.encoding == "gb18030" || f.gzip)
      os << " [" << (f.gzip ? "gzip " : "") << f.encoding << "]";
    os << '\n';
    for (const auto& c : f.columns) {
      char pct[16];
      std::snprintf(pct, sizeof pct, "%.1f%%", c.rows ? 100.0 * c.matches / c.rows : 0.0);
      os << "  column " << c.name << ": " << type_name(c.type) << " in " << pct << " of "
         << thousands(c.rows) << " rows\n";
    }
    std::size_t shown = 0;
    for (const auto& x : f.findings) {
      if (shown++ >= max_shown) break;
      char conf[16];
      std::snprintf(conf, sizeof conf, "%.2f", x.confidence);
      os << "  ";
      if (x.row)
        os << "row " << *x.row << " column " << x.column;
      else if (x.line)
        os << "line " << x.line;
      else
        os << "offset " << x.offset;
      os << ": " << type_name(x.type) << ' ' << category_name(x.category) << " L" << x.level
         << " conf " << conf << "  " << x.masked << '\n';
    }
    if (f.total > shown && shown > 0)
      os << "  ... " << thousands(f.total - std::min<std::uint64_t>(shown, f.total))
         << " more (see --json or --csv)\n";
  }
  char rate[64];
  const double mb = static_cast<double>(r.bytes) / 1e6;
  std::snprintf(rate, sizeof rate, "%.1f MB in %.2f s (%.0f MB/s, %u threads)", mb, r.seconds,
                r.seconds > 0 ? mb / r.seconds : 0.0, r.threads);
  os << "dataset: " << thousands(r.files_scanned) << " files scanned";
  if (r.files_skipped) os << ", " << thousands(r.files_skipped) << " skipped";
  if (r.files_failed) os << ", " << thousands(r.files_failed) << " failed";
  os << ", " << rate << '\n';
  os << "dataset: " << level_text(r.level, r.category) << ", " << thousands(r.total)
     << (r.total == 1 ? " finding" : " findings");
  if (r.total) os << ": " << counts_text(r.counts);
  os << '\n';
}

}  // namespace dlc::classify
