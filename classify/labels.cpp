// Labels manifest (docs/formats/labels.md), user.dlc.level xattrs, masked
// copies, and the atomic writer they share.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "classify/classify.h"
#include "classify/decode.h"
#include "classify/engine.h"
#include "classify/mask.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"

namespace dlc::classify {

namespace fs = std::filesystem;

namespace {

}  // namespace

LabelResult write_labels(const DatasetReport& r, const LabelOptions& o) {
  LabelResult res;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : r.files) {
    std::error_code ec;
    const fs::path abs = fs::absolute(f.path, ec);
    nlohmann::json jf = {{"path", ec ? f.path : abs.lexically_normal().string()},
                         {"size", f.bytes}};
    if (!f.error.empty()) {
      jf["status"] = "failed";
      files.push_back(std::move(jf));
      continue;
    }
    if (!f.skipped.empty()) {
      jf["status"] = "skipped";
      files.push_back(std::move(jf));
      continue;
    }
    jf["status"] = "classified";
    jf["mtime_ns"] = f.mtime_ns;
    if (!f.sha256.empty()) jf["sha256"] = f.sha256;
    jf["level"] = f.level;
    jf["category"] = category_name(f.category);
    jf["personal_information"] = f.category != Category::none;
    jf["types"] = counts_to_json(f.counts);
    nlohmann::json cols = nlohmann::json::array();
    for (const auto& c : f.columns) cols.push_back({{"name", c.name}, {"type", type_name(c.type)}});
    jf["columns"] = cols;
    files.push_back(std::move(jf));
    ++res.files;
    if (o.xattr) {
      const std::string value = std::to_string(f.level);
      if (::setxattr(f.path.c_str(), "user.dlc.level", value.data(), value.size(), 0) == 0) {
        ++res.xattrs_set;
      } else {
        ++res.xattr_failures;
        notice_once("classify-xattr", std::string("cannot set user.dlc.level on ") + f.path + ": " +
                                          std::strerror(errno) +
                                          " (the labels manifest still records the level)");
      }
    }
  }
  nlohmann::json policy = {{"name", r.policy}};
  if (!r.policy_sha256.empty()) policy["sha256"] = r.policy_sha256;
  const nlohmann::json doc = {{"format", "dlc-labels"},
                              {"version", 1},
                              {"created", now_rfc3339(0)},
                              {"tool", std::string("dlc ") + DLC_VERSION},
                              {"policy", policy},
                              {"roots", r.roots},
                              {"dataset",
                               {{"level", r.level},
                                {"category", category_name(r.category)},
                                {"personal_information", r.category != Category::none},
                                {"files", res.files},
                                {"findings", r.total},
                                {"types", counts_to_json(r.counts)}}},
                              {"files", files}};
  write_file_atomic(o.manifest, doc.dump(2) + "\n", kModeFromUmask);
  return res;
}

MaskResult mask_file(const MaskOptions& o) {
  const Policy policy = Policy::resolve(o.policy_file, o.min_confidence);
  std::error_code ec;
  if (!fs::is_regular_file(o.input, ec))
    throw Error(Errc::io, "cannot read input", o.input.string(),
                fs::exists(o.input, ec) ? "not a regular file" : "No such file or directory",
                "give a text, CSV or JSON file");
  if (fs::exists(o.output, ec)) {
    if (fs::equivalent(o.input, o.output, ec))
      throw Error(Errc::refused, "refusing to mask a file onto itself", o.output.string(), {},
                  "write the masked copy to another path");
    if (!o.force)
      throw Error(Errc::refused, "output exists", o.output.string(), {},
                  "pass --force to replace it");
  }
  FileReport fr;
  FileText ft;
  load_file(o.input, BinaryMode::strings, false, fr, ft);
  if (ft.binary)
    throw Error(Errc::refused, "cannot mask a binary file", o.input.string(), {},
                "dlc classify mask works on text, CSV and JSON files");
  std::vector<ChunkOutput> outs(1);
  ChunkInput in;
  in.text = ft.text;
  in.begin = 0;
  in.end = ft.text.size();
  in.csv = ft.csv ? &*ft.csv : nullptr;
  scan_chunk(in, outs[0]);
  std::vector<Hit> reported;
  finalize(policy, ft, outs, 0, fr, &reported);

  std::string out;
  out.reserve(ft.text.size());
  std::size_t pos = 0;
  for (const Hit& h : reported) {
    if (h.offset < pos) continue;
    out.append(ft.text.substr(pos, h.offset - pos));
    out += mask_replacement(h.type, ft.text.substr(h.offset, h.length));
    pos = h.offset + h.length;
  }
  out.append(ft.text.substr(pos));
  if (fr.encoding == "gb18030") out = utf8_to_gb18030(out);
  if (fr.gzip) out = gzip(out);
  write_file_atomic(o.output, out, kModeFromUmask);

  MaskResult res;
  res.counts = fr.counts;
  res.masked = fr.total;
  res.bytes_in = fr.bytes;
  res.bytes_out = out.size();
  res.encoding = fr.encoding;
  res.gzip = fr.gzip;
  res.level = fr.level;
  return res;
}

}  // namespace dlc::classify
