// scan(), mask_file() and write_labels() on real files: encodings, gzip,
// binary files, globs, chunking, CSV columns, policies, labels.
#include <gtest/gtest.h>
#include <iconv.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
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

// Text of n bytes that compresses about 3:1, as logs do, and differs by seed.
std::string log_text(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += "id=" + std::to_string(rng() % 100000) + " ok\n";
  s.resize(n);
  return s;
}

// gunzip's message for raw, or "" when it decompresses.
std::string gunzip_error(std::string_view raw, std::size_t max_bytes = 1 << 20) {
  try {
    cls::gunzip(raw, "t.gz", max_bytes);
    return "";
  } catch (const dlc::Error& e) {
    EXPECT_EQ(e.code(), dlc::Errc::io);
    return e.what();
  }
}

TEST(Engine, GunzipReadsEveryMember) {
  // One member; members whose last is smaller, larger or empty than the rest
  // (the buffer is sized from the last member's ISIZE and must grow); many
  // small members as bgzip writes them.
  const std::string a = log_text(300000, 1), b = log_text(70, 2), c = log_text(150000, 3);
  EXPECT_EQ(cls::gunzip(cls::gzip(a), "t", 1 << 20), a);
  EXPECT_EQ(cls::gunzip(cls::gzip(a) + cls::gzip(b), "t", 1 << 20), a + b);
  EXPECT_EQ(cls::gunzip(cls::gzip(b) + cls::gzip(a) + cls::gzip(c), "t", 1 << 20), b + a + c);
  EXPECT_EQ(cls::gunzip(cls::gzip(a) + cls::gzip(""), "t", 1 << 20), a);
  // 1000:1, beyond the ratio up to which the ISIZE sizes the buffer at once.
  const std::string zeros(1 << 20, '0');
  EXPECT_EQ(cls::gunzip(cls::gzip(zeros), "t", 1 << 20), zeros);
  std::string many, plain;
  for (unsigned i = 0; i < 40; ++i) {
    const std::string part = log_text(1000 + i * 997, 10 + i);
    many += cls::gzip(part);
    plain += part;
  }
  EXPECT_EQ(cls::gunzip(many, "t", 1 << 20), plain);
}

TEST(Engine, GunzipCapIsAnError) {
  const std::string mib = log_text(1 << 20, 4);
  EXPECT_EQ(cls::gunzip(cls::gzip(mib), "t", 1 << 20), mib);  // exactly the cap
  EXPECT_NE(gunzip_error(cls::gzip(mib + "x")).find("too large to classify"), std::string::npos);
  // Beyond the cap only in a later member, and with a last member that looks small.
  EXPECT_NE(gunzip_error(cls::gzip(mib) + cls::gzip("x")).find("too large"), std::string::npos);
  EXPECT_NE(gunzip_error(cls::gzip(mib.substr(1000)) + cls::gzip(mib.substr(0, 2000)))
                .find("too large"),
            std::string::npos);
}

TEST(Engine, GunzipTruncatedOrCorruptIsAnError) {
  const std::string text = log_text(200000, 5);
  const std::string gz = cls::gzip(text);
  // Cut anywhere: in the header, the deflate data, the trailer; in a second member.
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{12}, gz.size() / 3,
                          gz.size() / 2, gz.size() - 9, gz.size() - 4, gz.size() - 1}) {
    SCOPED_TRACE(cut);
    const std::string msg = gunzip_error(std::string_view(gz).substr(0, cut));
    EXPECT_NE(msg.find("truncated gzip file t.gz"), std::string::npos) << msg;
    const std::string two = gunzip_error(gz + gz.substr(0, cut));
    if (cut > 0) {
      EXPECT_NE(two.find("truncated gzip file"), std::string::npos) << two;
    }
  }
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 6] ^= 1;
  EXPECT_NE(gunzip_error(bad_crc).find("corrupt gzip file"), std::string::npos);
  std::string bad_data = gz;
  bad_data[gz.size() / 2] ^= 0x55;
  EXPECT_NE(gunzip_error(bad_data).find("corrupt gzip file"), std::string::npos);
  EXPECT_NE(gunzip_error(gz + "trailing garbage").find("corrupt gzip file"), std::string::npos);
}

// glibc iconv straight to UTF-8, each invalid or cut byte a '?'.
std::string gb18030_reference(std::string in) {
  iconv_t cd = iconv_open("UTF-8", "GB18030");
  std::string out(in.size() * 2 + 16, '\0');
  char* ip = in.data();
  char* op = out.data();
  std::size_t il = in.size(), ol = out.size();
  while (il > 0) {
    if (iconv(cd, &ip, &il, &op, &ol) != static_cast<std::size_t>(-1)) break;
    EXPECT_TRUE(errno == EILSEQ || errno == EINVAL);
    *op++ = '?';
    --ol;
    ++ip;
    --il;
  }
  iconv_close(cd);
  out.resize(out.size() - ol);
  return out;
}

TEST(Engine, Gb18030DecodingMatchesIconv) {
  // ASCII, two-byte GBK, four-byte GB18030 (BMP and beyond), invalid bytes
  // and sequences cut at the end, in texts long enough to span blocks.
  EXPECT_EQ(cls::gb18030_to_utf8(cls::utf8_to_gb18030("身份证号：110105，卡号 €😀")),
            "身份证号：110105，卡号 €😀");
  std::mt19937 rng(11);
  for (int round = 0; round < 40; ++round) {
    std::string in;
    const std::size_t n = round < 5 ? rng() % 16 : 20000 + rng() % 40000;
    while (in.size() < n) {
      switch (rng() % 6) {
        case 0:
        case 1: in += static_cast<char>(0x20 + rng() % 0x5f); break;
        case 2:
          in += static_cast<char>(0x81 + rng() % 0x7e);
          in += static_cast<char>(0x40 + rng() % 0xbf);
          break;
        case 3:
          in += static_cast<char>(0x81 + rng() % (rng() % 2 ? 4 : 0x7e));
          in += static_cast<char>(0x30 + rng() % 10);
          in += static_cast<char>(0x81 + rng() % 0x7e);
          in += static_cast<char>(0x30 + rng() % 10);
          break;
        case 4: in += static_cast<char>(rng() % 256); break;
        default: in += "\xc9\xed\xb7\xdd\xd6\xa4";  // 身份证
      }
    }
    ASSERT_EQ(cls::gb18030_to_utf8(in), gb18030_reference(in)) << round;
  }
}

TEST(Engine, TruncatedGzipIsReportedAndTheScanGoesOn) {
  TempDir d;
  const std::string gz = cls::gzip("卡号：" + kCard + "\n" + log_text(100000, 6));
  write_file(d / "cut.log.gz", gz.substr(0, gz.size() / 2));
  write_file(d / "ok.txt.gz", gz);
  auto r = scan_paths({d.path()});
  EXPECT_NE(file(r, "cut.log.gz").error.find("truncated gzip file"), std::string::npos)
      << file(r, "cut.log.gz").error;
  EXPECT_EQ(count(file(r, "ok.txt.gz"), InfoType::bank_card), 1u);
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

// ---- Follow-up: binary files ---------------------------------------------------------------

// Random bytes (compressed or encrypted data, images) hold printable runs that
// pass the e-mail and IPv6 checks by chance ("p@6.of", "C::8"): 40 MiB of them
// must give no finding at all.
TEST(Engine, RandomBytesYieldNoFindings) {
  TempDir d;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    std::string blob(static_cast<std::size_t>(seed) * (4u << 20), '\0');
    for (std::size_t i = 0; i + 8 <= blob.size(); i += 8) {
      const std::uint64_t r = rng();
      std::memcpy(blob.data() + i, &r, 8);
    }
    write_file(d / ("random" + std::to_string(seed) + ".bin"), blob);
  }
  auto r = scan_paths({d.path()});
  ASSERT_EQ(r.files_scanned, 4u);
  for (const auto& f : r.files) {
    EXPECT_EQ(f.format, "binary");
    for (const auto& x : f.findings)
      ADD_FAILURE() << f.path << ": " << cls::type_name(x.type) << " " << x.masked << " at "
                    << x.offset;
  }
  EXPECT_EQ(r.total, 0u);
}

// A real ELF binary: its strings hold at most its maintainers' addresses
// ("Report bugs to bug-coreutils@gnu.org"), never numbers, IPs or keys.
TEST(Engine, ElfBinaryYieldsOnlyItsRealStrings) {
  for (const char* path : {"/usr/bin/ls", "/usr/bin/cp", "/usr/bin/find"}) {
    if (!fs::exists(path)) continue;
    auto r = scan_paths({path});
    ASSERT_EQ(r.files.size(), 1u);
    EXPECT_EQ(r.files[0].format, "binary");
    for (const auto& x : r.files[0].findings) {
      EXPECT_EQ(x.type, InfoType::email) << path << ": " << x.masked;
      EXPECT_TRUE(x.masked.ends_with("@gnu.org")) << path << ": " << x.masked;
    }
  }
}

// Values in a binary's longer printable runs are still found; runs shorter
// than kMinPrintableRun are not scanned.
TEST(Engine, BinaryRunsKeepRealValues) {
  TempDir d;
  std::string blob(1000, '\x01');
  blob[0] = '\0';
  blob += "contact: zhang.san@example.com";
  blob += '\0';
  blob += "phone 13812345678";
  blob += '\0';
  blob += "peer fe80:0:0:0:1ff:fe23:abcd:ef01";
  blob += '\0';
  blob += "x@ab.cn";  // 7 bytes: a run too short to scan
  blob += std::string(1000, '\x02');
  write_file(d / "data.bin", blob);
  auto r = scan_paths({d / "data.bin"});
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].format, "binary");
  EXPECT_EQ(count(r.files[0], InfoType::email), 1u);
  EXPECT_EQ(count(r.files[0], InfoType::mobile), 1u);
  EXPECT_EQ(count(r.files[0], InfoType::ipv6), 1u);
  EXPECT_EQ(r.total, 3u);
}

// printable_runs (SIMD erosion and dilation over 64-byte blocks) against a
// plain reference: runs of at least min_run printable bytes kept, the rest
// newlines, for runs across block edges, at the end and of every length.
TEST(Engine, PrintableRunsMatchAReference) {
  std::mt19937_64 rng(42);
  auto reference = [](std::string_view in, std::size_t min_run) {
    std::string out(in.size(), '\n');
    std::size_t start = 0;
    for (std::size_t i = 0; i <= in.size(); ++i) {
      const bool printable =
          i < in.size() && ((in[i] >= 0x20 && in[i] < 0x7F) || in[i] == '\t');
      if (printable) continue;
      if (i - start >= min_run) out.replace(start, i - start, in.substr(start, i - start));
      start = i + 1;
    }
    return out;
  };
  for (int round = 0; round < 400; ++round) {
    const std::size_t size = rng() % 700;
    const unsigned density = static_cast<unsigned>(rng() % 100);  // % of printable bytes
    std::string in(size, '\0');
    for (auto& c : in)
      c = rng() % 100 < density ? static_cast<char>(0x20 + rng() % 0x5F)
                                : static_cast<char>(rng() % 2 ? rng() % 0x20 : 0x7F + rng() % 0x81);
    for (std::size_t min_run : {1, 2, 4, 8, 9, 31, 64, 65, 100}) {
      ASSERT_EQ(cls::printable_runs(in, min_run), reference(in, min_run))
          << "round " << round << " size " << size << " min_run " << min_run;
    }
  }
}

// ---- Follow-up: CSV records (RFC 4180 quoted fields holding newlines) --------------------------

namespace {

const std::string kId2 = "310104198506150015";
const std::string kId3 = "440305200001010013";

const cls::Finding* finding_at(const cls::FileReport& f, std::uint64_t offset) {
  for (const auto& x : f.findings)
    if (x.offset == offset) return &x;
  return nullptr;
}

}  // namespace

TEST(Engine, CsvQuotedFieldsMayHoldNewlines) {
  TempDir d;
  const std::string header = "name,note,id_no,phone,password\n";
  const std::string row1 = "张三,\"line one\nline two, with a comma\"," + kId + ",13812345678,Tr0ub4dor&3\n";
  const std::string row2 = "李四,\"he said \"\"hi\"\"\r\nand left\"," + kId2 + ",13912345678,pw2xyz\r\n";
  const std::string row3 = "王五,plain," + kId3 + ",15012345678,pw3xyz\n";
  const std::string csv = header + row1 + row2 + row3;
  write_file(d / "multi.csv", csv);
  cls::ClassifyOptions o;
  o.max_findings_per_file = 100;
  auto r = scan_paths({d / "multi.csv"}, o);
  const auto& f = r.files[0];
  ASSERT_EQ(f.format, "csv");
  EXPECT_EQ(count(f, InfoType::resident_id), 3u);
  EXPECT_EQ(count(f, InfoType::mobile), 3u);
  EXPECT_EQ(count(f, InfoType::password), 3u);
  struct Want {
    std::string value;
    std::uint64_t row, line;
    std::string column;
  };
  for (const Want& w : std::vector<Want>{{kId, 1, 3, "id_no"},
                                         {"13812345678", 1, 3, "phone"},
                                         {"Tr0ub4dor&3", 1, 3, "password"},
                                         {kId2, 2, 5, "id_no"},
                                         {"13912345678", 2, 5, "phone"},
                                         {"pw2xyz", 2, 5, "password"},
                                         {kId3, 3, 6, "id_no"},
                                         {"pw3xyz", 3, 6, "password"}}) {
    const auto* x = finding_at(f, csv.find(w.value));
    ASSERT_NE(x, nullptr) << w.column << " row " << w.row;
    EXPECT_EQ(x->row, w.row) << w.column;
    EXPECT_EQ(x->line, w.line) << w.column;
    EXPECT_EQ(x->column, w.column) << "row " << w.row;
  }
  // Columns count records, not lines.
  ASSERT_FALSE(f.columns.empty());
  for (const auto& c : f.columns) {
    EXPECT_EQ(c.rows, 3u) << c.name;
    EXPECT_EQ(c.matches, 3u) << c.name;
  }
}

TEST(Engine, CsvStrayQuoteDoesNotSwallowTheFile) {
  TempDir d;
  const std::string csv = "height,note,id_no\n5'10\",tall," + kId + "\nx,\"ok\"," + kId2 +
                          "\n6'2\" and 5'9\",y," + kId3 + "\n";
  write_file(d / "stray.csv", csv);
  auto r = scan_paths({d / "stray.csv"});
  const auto& f = r.files[0];
  ASSERT_EQ(count(f, InfoType::resident_id), 3u);
  std::uint64_t row = 0;
  for (const auto& value : {kId, kId2, kId3}) {
    const auto* x = finding_at(f, csv.find(value));
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->row, ++row);
    EXPECT_EQ(x->column, "id_no");
  }
}

// Chunk boundaries inside quoted fields: the chunked scan equals the whole one.
TEST(Engine, CsvChunksSplitInsideQuotedFields) {
  TempDir d;
  std::string csv = "seq,comment,card_no,phone\n";
  for (int i = 0; i < 3000; ++i) {
    csv += std::to_string(i) + ",\"";
    for (int k = 0; k < i % 7; ++k) csv += "note " + std::to_string(k) + ", more\n";
    csv += "\",6222021234567890128,13812345678\n";
  }
  write_file(d / "notes.csv", csv);
  cls::ClassifyOptions small;
  small.chunk_bytes = 4096;
  small.max_findings_per_file = 100000;
  auto chunked = scan_paths({d / "notes.csv"}, small);
  cls::ClassifyOptions whole = small;
  whole.chunk_bytes = 1u << 30;
  auto single = scan_paths({d / "notes.csv"}, whole);
  const auto& a = chunked.files[0];
  const auto& b = single.files[0];
  ASSERT_EQ(b.total, 6000u);
  ASSERT_EQ(a.total, b.total);
  ASSERT_EQ(a.findings.size(), b.findings.size());
  for (std::size_t i = 0; i < a.findings.size(); ++i) {
    EXPECT_EQ(a.findings[i].offset, b.findings[i].offset) << i;
    EXPECT_EQ(a.findings[i].row, b.findings[i].row) << i;
    EXPECT_EQ(a.findings[i].column, b.findings[i].column) << i;
    EXPECT_EQ(a.findings[i].row, i / 2 + 1) << i;
    EXPECT_EQ(a.findings[i].column, i % 2 ? "phone" : "card_no") << i;
  }
  ASSERT_EQ(a.columns.size(), 2u);
  EXPECT_EQ(a.columns[0].rows, 3000u);
  EXPECT_EQ(a.columns[0].matches, 3000u);
}

// Random CSV text (quoted fields with delimiters, newlines and "" pairs,
// stray quotes inside plain fields, CRLF) against a reference parser of the
// documented rules, whole and in chunks of every few KiB.
TEST(Engine, CsvRecordsMatchAReferenceParser) {
  std::mt19937_64 rng(20261125);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  auto make_id = [&] {
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    char body[18];
    std::snprintf(body, sizeof body, "110105%04d%02d%02d%03d", 1950 + pick(50), 1 + pick(12),
                  1 + pick(28), pick(1000));
    int sum = 0;
    for (int i = 0; i < 17; ++i) sum += (body[i] - '0') * w[i];
    return std::string(body, 17) + "10X98765432"[sum % 11];
  };
  const std::vector<std::string> names = {"a", "b", "c", "d", "e"};
  std::string csv = "a,b,c,d,e\n";
  struct Planted {
    std::size_t offset;
    std::uint64_t row;
    std::string column;
  };
  std::vector<Planted> planted;
  for (std::uint64_t row = 1; row <= 4000; ++row) {
    for (int col = 0; col < 5; ++col) {
      if (col) csv += ',';
      switch (pick(8)) {
        case 0:  // an identifier, plain or quoted
        case 1: {
          const bool quoted = pick(2);
          if (quoted) csv += '"';
          planted.push_back({csv.size(), row, names[static_cast<std::size_t>(col)]});
          csv += make_id();
          if (quoted) csv += '"';
          break;
        }
        case 2:
          csv += "\"multi, line\nnote " + std::to_string(row) + "\"";
          break;
        case 3:
          csv += "\"said \"\"yes\"\",\nthen \"\"no\"\"\"";
          break;
        case 4:
          csv += "5'10\" tall";  // a stray quote: a character of the field
          break;
        case 5:
          csv += "\"\"";  // an empty quoted field
          break;
        default:
          csv += "plain" + std::to_string(pick(100));
      }
    }
    csv += pick(4) ? "\n" : "\r\n";
  }
  TempDir d;
  write_file(d / "fuzz.csv", csv);
  for (std::size_t chunk : {std::size_t{1} << 30, std::size_t{4096}, std::size_t{6007}}) {
    cls::ClassifyOptions o;
    o.chunk_bytes = chunk;
    o.max_findings_per_file = 1'000'000;
    auto r = scan_paths({d / "fuzz.csv"}, o);
    const auto& f = r.files[0];
    ASSERT_EQ(f.findings.size(), planted.size()) << chunk;
    for (std::size_t i = 0; i < planted.size(); ++i) {
      const auto& x = f.findings[i];
      ASSERT_EQ(x.offset, planted[i].offset) << chunk << " #" << i;
      EXPECT_EQ(x.type, InfoType::resident_id) << chunk << " #" << i;
      EXPECT_EQ(x.row, planted[i].row) << chunk << " #" << i;
      EXPECT_EQ(x.column, planted[i].column) << chunk << " #" << i;
    }
  }
}

// Chunks keep only the hits the findings list can use and tally the rest:
// counts, column votes and the first findings are those of a full scan.
TEST(Engine, FindingsCapKeepsCountsColumnsAndTheFirstFindings) {
  TempDir d;
  std::string csv = "code,value\n";
  // 300 rows of weak candidates first (passport shapes without context: 0.45,
  // not reported), then 3000 rows of IDs; the column "value" is resident IDs.
  for (int i = 0; i < 300; ++i) csv.append("E").append(std::to_string(10000000 + i)).append(",x\n");
  for (int i = 0; i < 3000; ++i)
    csv.append("c").append(std::to_string(i)).append(",").append(kId).append("\n");
  write_file(d / "cap.csv", csv);
  cls::ClassifyOptions all;
  all.chunk_bytes = 8192;
  all.max_findings_per_file = 1'000'000;
  auto full = scan_paths({d / "cap.csv"}, all);
  cls::ClassifyOptions capped = all;
  capped.max_findings_per_file = 7;
  auto few = scan_paths({d / "cap.csv"}, capped);
  const auto& a = full.files[0];
  const auto& b = few.files[0];
  EXPECT_EQ(a.total, 3000u);
  EXPECT_EQ(b.total, a.total);
  EXPECT_EQ(b.counts, a.counts);
  ASSERT_EQ(b.findings.size(), 7u);
  for (std::size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(b.findings[i].offset, a.findings[i].offset);
    EXPECT_EQ(b.findings[i].row, 301 + i);
  }
  ASSERT_EQ(b.columns.size(), a.columns.size());
  for (std::size_t i = 0; i < a.columns.size(); ++i) {
    EXPECT_EQ(b.columns[i].name, a.columns[i].name);
    EXPECT_EQ(b.columns[i].matches, a.columns[i].matches);
    EXPECT_EQ(b.columns[i].rows, 3300u);
  }
}
