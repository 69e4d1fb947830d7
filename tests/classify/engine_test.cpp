// scan(), mask_file() and write_labels() on real files: encodings, gzip,
// binary files, globs, chunking, CSV columns, policies, labels.
#include <gtest/gtest.h>
#include <sys/xattr.h>

#include <filesystem>
#include <string>

#include "classify/classify.h"
#include "classify/decode.h"
#include "core/error.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
namespace cls = dlc::classify;
using cls::InfoType;
using dlc::test::read_file;
using dlc::test::TempDir;
using dlc::test::write_file;

namespace {

std::uint64_t count(const cls::FileReport& f, InfoType t) {
  return f.counts[static_cast<std::size_t>(t)];
}

cls::DatasetReport scan_paths(std::vector<fs::path> paths, cls::ClassifyOptions o = {}) {
  o.inputs = std::move(paths);
  o.threads = 2;
  return cls::scan(o);
}

const cls::FileReport& file(const cls::DatasetReport& r, const std::string& name) {
  for (const auto& f : r.files)
    if (fs::path(f.path).filename() == name) return f;
  throw std::runtime_error("no report for " + name);
}

const std::string kId = "11010519491231002X";
const std::string kCard = "6222021234567890128";

}  // namespace

TEST(Engine, WalksDirectoriesWithIncludeAndExcludeGlobs) {
  TempDir d;
  fs::create_directories(d / "a/b");
  fs::create_directories(d / "skip");
  write_file(d / "a/one.txt", "身份证 " + kId + "\n");
  write_file(d / "a/b/two.log", "card " + kCard + "\n");
  write_file(d / "a/b/three.csv", "x\n1\n");
  write_file(d / "skip/four.txt", "身份证 " + kId + "\n");
  fs::create_symlink(d / "a/one.txt", d / "a/link.txt");
  cls::ClassifyOptions o;
  o.exclude = {"skip"};
  auto r = scan_paths({d.path()}, o);
  ASSERT_EQ(r.files.size(), 3u);  // symlink and excluded directory left out
  EXPECT_EQ(r.files_scanned, 3u);
  EXPECT_EQ(r.total, 2u);
  EXPECT_EQ(r.level, 3);
  EXPECT_EQ(r.category, cls::Category::C2);
  o.exclude.clear();
  o.include = {"*.log"};
  r = scan_paths({d.path()}, o);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(count(r.files[0], InfoType::bank_card), 1u);
}

TEST(Engine, MissingInputIsAnIoError) {
  try {
    scan_paths({"/nonexistent/dlc/input"});
    FAIL() << "expected an error";
  } catch (const dlc::Error& e) {
    EXPECT_EQ(e.code(), dlc::Errc::io);
  }
}

TEST(Engine, ReadsGzipAndGb18030) {
  TempDir d;
  write_file(d / "plain.txt.gz", cls::gzip("卡号：" + kCard + "\n"));
  write_file(d / "gbk.txt",
             cls::utf8_to_gb18030("客户身份证号码：" + kId + "，手机：13812345678\n"));
  write_file(d / "gbk.csv.gz",
             cls::gzip(cls::utf8_to_gb18030("姓名,身份证号\n张三," + kId + "\n")));
  auto r = scan_paths({d.path()});
  const auto& gz = file(r, "plain.txt.gz");
  EXPECT_TRUE(gz.gzip);
  EXPECT_EQ(count(gz, InfoType::bank_card), 1u);
  const auto& gbk = file(r, "gbk.txt");
  EXPECT_EQ(gbk.encoding, "gb18030");
  EXPECT_EQ(count(gbk, InfoType::resident_id), 1u);
  EXPECT_EQ(count(gbk, InfoType::mobile), 1u);
  const auto& both = file(r, "gbk.csv.gz");
  EXPECT_EQ(both.format, "csv");
  EXPECT_EQ(both.encoding, "gb18030");
  ASSERT_EQ(both.findings.size(), 1u);
  EXPECT_EQ(both.findings[0].column, "身份证号");
  EXPECT_EQ(both.findings[0].row, 1u);
  EXPECT_EQ(both.findings[0].masked, "110105********002X");
}

TEST(Engine, BinaryFilesAreScannedForPrintableRunsOrSkipped) {
  TempDir d;
  std::string blob(4096, '\0');
  blob += "aws_access_key_id=AKIAIOSFODNN7EXAMPLE";
  blob += std::string(100, '\x01');
  write_file(d / "core.bin", blob);
  auto r = scan_paths({d.path()});
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].format, "binary");
  EXPECT_EQ(count(r.files[0], InfoType::aws_access_key), 1u);
  EXPECT_EQ(r.files[0].findings[0].offset, 4096u + 18u);
  EXPECT_EQ(r.files[0].findings[0].line, 0u);
  cls::ClassifyOptions o;
  o.binary = cls::BinaryMode::skip;
  r = scan_paths({d.path()}, o);
  EXPECT_EQ(r.files_skipped, 1u);
  EXPECT_EQ(r.total, 0u);
}

TEST(Engine, ChunkedScanEqualsWholeScan) {
  TempDir d;
  std::string text;
  std::vector<std::uint64_t> lines;
  for (int i = 0; i < 60000; ++i) {
    if (i % 997 == 0) {
      text += "line " + std::to_string(i) + " 身份证 " + kId + " done\n";
      lines.push_back(static_cast<std::uint64_t>(i) + 1);
    } else {
      text +=
          "filler text 12345 with nothing sensitive in it at all, row " + std::to_string(i) + "\n";
    }
  }
  write_file(d / "big.log", text);
  cls::ClassifyOptions small;
  small.chunk_bytes = 64 << 10;
  small.max_findings_per_file = 100000;
  auto chunked = scan_paths({d / "big.log"}, small);
  cls::ClassifyOptions whole;
  whole.chunk_bytes = 1u << 30;
  whole.max_findings_per_file = 100000;
  auto single = scan_paths({d / "big.log"}, whole);
  ASSERT_EQ(chunked.total, lines.size());
  ASSERT_EQ(single.total, lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(chunked.files[0].findings[i].line, lines[i]);
    EXPECT_EQ(single.files[0].findings[i].line, lines[i]);
    EXPECT_EQ(chunked.files[0].findings[i].offset, single.files[0].findings[i].offset);
  }
}

TEST(Engine, CsvColumnIsClassifiedAsAWhole) {
  TempDir d;
  // No header: the column's majority (cards) settles a value valid as ID and card.
  std::string csv;
  for (int i = 0; i < 9; ++i) csv += std::to_string(i) + ",6212345678901265,x\n";
  csv += "9,620102199001010257,x\n";
  write_file(d / "noheader.csv", csv);
  write_file(d / "header.csv", "row,id_no\n1," + kId + "\n2,\n3," + kId + "\n4," + kId + "\n");
  auto r = scan_paths({d.path()});
  const auto& nh = file(r, "noheader.csv");
  EXPECT_EQ(count(nh, InfoType::bank_card), 10u);
  EXPECT_EQ(count(nh, InfoType::resident_id), 0u);
  ASSERT_EQ(nh.columns.size(), 1u);
  EXPECT_EQ(nh.columns[0].name, "#2");
  EXPECT_EQ(nh.columns[0].rows, 10u);
  EXPECT_EQ(nh.columns[0].matches, 10u);
  const auto& h = file(r, "header.csv");
  ASSERT_EQ(h.columns.size(), 1u);
  EXPECT_EQ(h.columns[0].name, "id_no");
  EXPECT_EQ(h.columns[0].type, InfoType::resident_id);
  EXPECT_EQ(h.columns[0].rows, 4u);
  EXPECT_EQ(h.columns[0].matches, 3u);
}

TEST(Engine, PolicyFileOverridesLevelsAndVolumeRules) {
  TempDir d;
  std::string text;
  for (int i = 0; i < 6; ++i) text += "手机 1381234567" + std::to_string(i) + "\n";
  write_file(d / "phones.txt", text);
  write_file(d / "policy.json", R"({"name": "strict", "types": {"mobile": {"level": 3}},
      "volume_rules": [{"category": "C2", "min_findings": 5, "level": 4}]})");
  cls::ClassifyOptions o;
  auto r = scan_paths({d / "phones.txt"}, o);
  EXPECT_EQ(r.level, 3);
  o.policy_file = d / "policy.json";
  r = scan_paths({d / "phones.txt"}, o);
  EXPECT_EQ(r.policy, "strict");
  EXPECT_EQ(r.level, 4);
  EXPECT_EQ(r.files[0].level, 4);
  write_file(d / "off.json", R"({"types": {"mobile": {"enabled": false}}})");
  o.policy_file = d / "off.json";
  EXPECT_EQ(scan_paths({d / "phones.txt"}, o).total, 0u);
  write_file(d / "bad.json", R"({"types": {"no_such_type": {"level": 3}}})");
  o.policy_file = d / "bad.json";
  try {
    scan_paths({d / "phones.txt"}, o);
    FAIL() << "expected an error";
  } catch (const dlc::Error& e) {
    EXPECT_EQ(e.code(), dlc::Errc::usage);
  }
}

TEST(Engine, MaskFileKeepsFormatEncodingAndCompression) {
  TempDir d;
  const std::string original =
      "name,id_no,phone,password\n张三," + kId + ",13812345678,Tr0ub4dor&3\n";
  write_file(d / "in.csv", original);
  cls::MaskOptions o;
  o.input = d / "in.csv";
  o.output = d / "out.csv";
  auto res = cls::mask_file(o);
  EXPECT_EQ(res.masked, 3u);
  EXPECT_EQ(read_file(d / "out.csv"),
            "name,id_no,phone,password\n张三,110105********002X,138****5678,********\n");
  // An existing output needs --force; a file is never masked onto itself.
  try {
    cls::mask_file(o);
    FAIL() << "expected a refusal";
  } catch (const dlc::Error& e) {
    EXPECT_EQ(e.code(), dlc::Errc::refused);
  }
  o.force = true;
  EXPECT_NO_THROW(cls::mask_file(o));
  o.output = o.input;
  EXPECT_THROW(cls::mask_file(o), dlc::Error);

  write_file(d / "in.log.gz", cls::gzip(cls::utf8_to_gb18030("身份证号：" + kId + "\n")));
  o.input = d / "in.log.gz";
  o.output = d / "out.log.gz";
  res = cls::mask_file(o);
  EXPECT_TRUE(res.gzip);
  EXPECT_EQ(res.encoding, "gb18030");
  const std::string back =
      cls::gb18030_to_utf8(cls::gunzip(read_file(d / "out.log.gz"), "out", 1 << 20));
  EXPECT_EQ(back, "身份证号：110105********002X\n");
}

TEST(Engine, LabelsManifestAndXattrs) {
  TempDir d;
  write_file(d / "a.txt", "身份证 " + kId + "\n");
  write_file(d / "b.txt", "nothing here\n");
  cls::ClassifyOptions o;
  o.hash_files = true;
  auto r = scan_paths({d.path()}, o);
  auto res = cls::write_labels(r, {d / "labels.json", true});
  EXPECT_EQ(res.files, 2u);
  EXPECT_EQ(res.xattrs_set + res.xattr_failures, 2u);
  auto doc = nlohmann::json::parse(read_file(d / "labels.json"));
  EXPECT_EQ(doc["format"], "dlc-labels");
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["dataset"]["level"], 3);
  EXPECT_EQ(doc["dataset"]["personal_information"], true);
  ASSERT_EQ(doc["files"].size(), 2u);
  EXPECT_EQ(doc["files"][0]["level"], 3);
  EXPECT_EQ(doc["files"][0]["types"]["resident_id"], 1);
  EXPECT_EQ(doc["files"][0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(fs::path(doc["files"][0]["path"].get<std::string>()).is_absolute());
  EXPECT_EQ(doc["files"][1]["level"], 1);
  EXPECT_EQ(doc["files"][1]["personal_information"], false);
  if (res.xattrs_set == 2) {
    char buf[8] = {};
    ASSERT_EQ(::getxattr((d / "a.txt").c_str(), "user.dlc.level", buf, sizeof buf), 1);
    EXPECT_EQ(std::string(buf), "3");
  }
  EXPECT_EQ(read_file(d / "labels.json").find(kId), std::string::npos);
}
