// A labeled corpus: a deterministic generator plants valid entities and
// invalid lookalikes (wrong check digits, impossible dates, Luhn failures,
// broken organisation codes, placeholders...) in CSV, JSONL, log, SQL,
// config, GB18030 and gzip files. The scan must reach precision >= 0.99 and
// recall >= 0.99 per type, and no report, labels manifest, masked copy or
// audit record may contain a planted raw value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "classify/decode.h"
#include "classify/validators.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
namespace cls = dlc::classify;
namespace v = dlc::classify::validate;
using cls::InfoType;

namespace {

struct Planted {
  std::string file;
  std::uint64_t offset;  // in the UTF-8 text
  InfoType type;
  std::string value;
  std::uint64_t row = 0;  // CSV data row (records, not lines), 0 elsewhere
};

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}

  int num(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string digits(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + num(0, 9));
    return s;
  }
  std::string from(std::string_view alphabet, int n) {
    std::string s;
    for (int i = 0; i < n; ++i)
      s += alphabet[static_cast<std::size_t>(num(0, static_cast<int>(alphabet.size()) - 1))];
    return s;
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(num(0, static_cast<int>(v.size()) - 1))];
  }

  std::string date(int y0, int y1) {
    char b[16];
    std::snprintf(b, sizeof b, "%04d%02d%02d", num(y0, y1), num(1, 12), num(1, 28));
    return b;
  }
  std::string region() {
    return pick<std::string>(
        {"110105", "310104", "440305", "330106", "510107", "620102", "650102", "370202"});
  }

  std::string resident_id() {
    std::string f = region() + date(1950, 2005) + digits(3);
    return f + v::resident_id18_check(f);
  }
  // A lookalike is valid as no type at all (an invalid ID can still pass Luhn).
  static bool valid_anything(const std::string& s) {
    return v::resident_id18(s) || v::bank_card(s) || v::uscc(s) || v::mobile(s);
  }
  std::string resident_id_bad_check() {
    std::string id = resident_id();
    id.back() = id.back() == '0' ? '1' : '0';
    if (id.back() == v::resident_id18_check(id)) id.back() = '2';
    return valid_anything(id) ? resident_id_bad_check() : id;
  }
  std::string resident_id_bad_date() {
    std::string f =
        region() + pick<std::string>({"19491331", "19900230", "20990101", "19850431"}) + digits(3);
    std::string id = f + v::resident_id18_check(f);
    return valid_anything(id) ? resident_id_bad_date() : id;
  }
  std::string resident_id_15() {
    char b[8];
    std::snprintf(b, sizeof b, "%02d%02d%02d", num(40, 99), num(1, 12), num(1, 28));
    return region() + b + digits(3);
  }
  std::string luhn_complete(std::string prefix) {
    for (char c = '0'; c <= '9'; ++c)
      if (v::luhn(prefix + c)) return prefix + c;
    return {};
  }
  std::string card() {
    const int kind = num(0, 2);
    if (kind == 0) return luhn_complete("62" + digits(15));  // 19-digit UnionPay debit
    if (kind == 1) return luhn_complete("62" + digits(13));  // 16-digit UnionPay
    return luhn_complete("4" + digits(14));                  // Visa
  }
  std::string card_bad_luhn() {
    std::string c = card();
    c.back() = static_cast<char>('0' + (c.back() - '0' + 1) % 10);
    return c;
  }
  std::string org_code() {
    static constexpr std::string_view alpha = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    static constexpr int w[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    while (true) {
      std::string body = from(alpha, 8);
      int sum = 0;
      for (int i = 0; i < 8; ++i) {
        char c = body[static_cast<std::size_t>(i)];
        sum += (c <= '9' ? c - '0' : c - 'A' + 10) * w[i];
      }
      int c9 = 11 - sum % 11;
      char check = c9 == 10 ? 'X' : c9 == 11 ? '0' : static_cast<char>('0' + c9);
      return body + check;
    }
  }
  std::string uscc() {
    std::string f = std::string("9") + pick<std::string>({"1", "2", "3"}) + region() + org_code();
    return f + v::uscc_check(f);
  }
  std::string uscc_bad_org() {
    std::string org = org_code();
    org.back() = org.back() == '1' ? '2' : '1';
    std::string f = "91" + region() + org;
    std::string s = f + v::uscc_check(f);
    return v::uscc(s) ? uscc_bad_org() : s;
  }
  std::string uscc_bad_check() {
    std::string s = uscc();
    s.back() = s.back() == 'A' ? 'B' : 'A';
    return v::uscc(s) ? uscc_bad_check() : s;
  }
  std::string mobile() {
    return "1" + pick<std::string>({"38", "39", "50", "58", "86", "88", "99", "77", "66"}) +
           digits(8);
  }
  std::string mobile_bad() { return "12" + digits(9); }
  std::string passport() { return "E" + digits(8); }
  std::string permit() { return "C" + digits(8); }
  std::string email() {
    return pick<std::string>({"zhang", "li", "wang", "chen", "liu"}) + "." + from("abcdefghij", 5) +
           std::to_string(num(10, 99)) + "@" +
           pick<std::string>({"example.com", "bank.com.cn", "mail.example.org"});
  }
  std::string ipv4() {
    return std::to_string(num(11, 223)) + "." + std::to_string(num(0, 255)) + "." +
           std::to_string(num(0, 255)) + "." + std::to_string(num(1, 254));
  }
  // Compressed, full (no "::", e.g. fe80:0:0:0:1ff:fe23:abcd:ef01) and
  // compressed with letter-only groups after "::".
  std::string ipv6() {
    switch (num(0, 2)) {
      case 0:
        return "2001:db8:" + from("0123456789abcdef", 4) + "::" + from("123456789abcdef", 3);
      case 1:
        return "fe80:0:0:0:" + from("123456789abcdef", 3) + ":" + from("0123456789abcdef", 4) +
               ":" + from("abcdef", 4) + ":" + from("0123456789abcdef", 4);
      default:
        return "fe80::" + from("abcdef", 4) + ":" + from("abcdef", 3) + from("0123456789", 1);
    }
  }
  // Not addresses: a binary's bytes, C++ scopes, MAC addresses, times.
  std::string ipv6_lookalike() {
    return pick<std::string>({"C::8", "cb::add(x)", "std::vector<int>", "dead::beef",
                              "00:1a:2b:3c:4d:5e", "12:30:45", "a:b:c:d:e:f:1"});
  }
  // A CSV note: quoted, with delimiters, "" pairs and newlines inside.
  std::string note() {
    switch (num(0, 3)) {
      case 0:
        return "\"回访记录,\n客户要求\"\"改期\"\"\n" + std::to_string(num(1, 99)) + "\"";
      case 1:
        return "\"line one\r\nline two, 3 items\"";
      case 2:
        return "5'10\" tall";  // a stray quote inside a plain field
      default:
        return "plain note";
    }
  }
  std::string iban() {
    std::string bban = "WEST" + digits(14);
    // Check digits: 98 - mod97(BBAN + "GB00") with letters as 10..35.
    std::string rearranged = bban + "GB00";
    int rem = 0;
    for (char c : rearranged) {
      if (c >= '0' && c <= '9')
        rem = (rem * 10 + (c - '0')) % 97;
      else
        rem = (rem * 100 + (c - 'A' + 10)) % 97;
    }
    char cd[4];
    std::snprintf(cd, sizeof cd, "%02d", 98 - rem);
    return "GB" + std::string(cd) + bban;
  }
  std::string iban_bad() {
    std::string s = iban();
    s[2] = s[2] == '9' ? '1' : static_cast<char>(s[2] + 1);
    return v::iban(s) ? iban_bad() : s;
  }
  std::string b64(int n) {
    return from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", n);
  }
  std::string private_key() {
    std::string label = pick<std::string>(
        {"RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY"});
    std::string s = "-----BEGIN " + label + "-----\n";
    for (int i = 0; i < 4; ++i) s += b64(64) + "\n";
    return s + "-----END " + label + "-----";
  }
  std::string aws() {
    return pick<std::string>({"AKIA", "ASIA"}) + from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 12) +
           "7" + from("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3);
  }
  std::string aws_bad() {
    return "AKIA" + from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 15);
  }  // 19 chars
  std::string alnum(int n) {
    return from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", n);
  }
  std::string alibaba() { return "LTAI" + alnum(18) + "5a"; }
  std::string tencent() { return "AKID" + alnum(30) + "7b"; }
  std::string jwt() {
    return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" +
           from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 40) + "." +
           from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 43);
  }
  std::string jwt_no_alg() {  // {"sub":"1234567890"} as header
    return "eyJzdWIiOiIxMjM0NTY3ODkwIn0.eyJ" + alnum(30) + "." + alnum(40);
  }
  std::string password() { return alnum(8) + pick<std::string>({"!", "#", "@9", "_x"}) + alnum(3); }
  std::string filler_words() {
    static const std::vector<std::string> words = {
        "交易",    "成功",   "请求",   "response", "ok",       "retry", "user",
        "session", "ledger", "commit", "timeout",  "upstream", "备注",  "金额",
        "状态",    "正常",   "amount", "status",   "branch"};
    std::string s;
    for (int i = num(3, 8); i > 0; --i) s += pick(words) + " ";
    return s + std::to_string(num(1, 99999));
  }

 private:
  std::mt19937_64 rng_;
};

// Builds a file's text while recording where planted values land.
class Doc {
 public:
  Doc(std::string name, std::vector<Planted>& truth) : name_(std::move(name)), truth_(truth) {}
  Doc& text(const std::string& s) {
    s_ += s;
    return *this;
  }
  Doc& row(std::uint64_t r) {
    row_ = r;
    return *this;
  }
  Doc& plant(InfoType t, const std::string& value) {
    truth_.push_back({name_, s_.size(), t, value, row_});
    s_ += value;
    return *this;
  }
  Doc& decoy(const std::string& value, std::vector<std::string>& decoys) {
    decoys.push_back(value);
    s_ += value;
    return *this;
  }
  const std::string& str() const { return s_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string s_;
  std::vector<Planted>& truth_;
  std::uint64_t row_ = 0;
};

struct Corpus {
  std::vector<Planted> truth;
  std::vector<std::string> decoys;  // invalid lookalikes
};

Corpus generate(const fs::path& dir, std::uint64_t seed) {
  Gen g(seed);
  Corpus c;
  auto& t = c.truth;
  auto& d = c.decoys;

  // CSV with named columns (and decoy rows in the same columns).
  Doc csv("customers.csv", t);
  csv.text("id,name,note,id_no,mobile,card_no,email,uscc,amount,created\n");
  for (int i = 1; i <= 400; ++i) {
    const bool decoy = i % 5 == 0;
    csv.row(static_cast<std::uint64_t>(i));
    csv.text(std::to_string(i) + ",客户" + std::to_string(i) + "," + g.note() + ",");
    if (decoy)
      csv.decoy(i % 2 ? g.resident_id_bad_check() : g.resident_id_bad_date(), d);
    else
      csv.plant(InfoType::resident_id, g.resident_id());
    csv.text(",");
    if (decoy)
      csv.decoy(g.mobile_bad(), d);
    else
      csv.plant(InfoType::mobile, g.mobile());
    csv.text(",");
    if (decoy)
      csv.decoy(g.card_bad_luhn(), d);
    else
      csv.plant(InfoType::bank_card, g.card());
    csv.text(",");
    csv.plant(InfoType::email, g.email());
    csv.text(",");
    if (decoy)
      csv.decoy(i % 2 ? g.uscc_bad_org() : g.uscc_bad_check(), d);
    else
      csv.plant(InfoType::uscc, g.uscc());
    csv.text("," + std::to_string(g.num(1, 99999)) + "." + g.digits(2) + ",2026-0" +
             std::to_string(g.num(1, 9)) + "-1" + std::to_string(g.num(0, 9)) + " 12:3" +
             std::to_string(g.num(0, 9)) + ":00\n");
  }

  // JSON lines: field names are the context.
  Doc jsonl("events.jsonl", t);
  for (int i = 0; i < 300; ++i) {
    jsonl.text("{\"seq\": " + std::to_string(i) + ", \"user\": {\"id_card\": \"");
    jsonl.plant(InfoType::resident_id, g.resident_id());
    jsonl.text("\", \"phone\": \"");
    jsonl.plant(InfoType::mobile, g.mobile());
    jsonl.text("\", \"passport\": \"");
    jsonl.plant(InfoType::passport, g.passport());
    jsonl.text("\"}, \"iban\": \"");
    if (i % 4 == 0)
      jsonl.decoy(g.iban_bad(), d);
    else
      jsonl.plant(InfoType::iban, g.iban());
    jsonl.text("\", \"client_ip\": \"");
    jsonl.plant(InfoType::ipv4, g.ipv4());
    jsonl.text("\", \"note\": \"" + g.filler_words());
    // A token without "alg" is no JWT (and under a neutral name no secret either).
    if (i % 5 == 0)
      jsonl.text("\", \"data\": \"").decoy(g.jwt_no_alg(), d);
    else
      jsonl.text("\", \"token\": \"").plant(InfoType::jwt, g.jwt());
    jsonl.text("\"}\n");
  }

  // Logs: free text with Chinese and English context words.
  Doc log("app.log", t);
  for (int i = 0; i < 1200; ++i) {
    log.text("2026-11-0" + std::to_string(1 + i % 9) + " 10:" + std::to_string(10 + i % 50) +
             ":00.123 [INFO] " + g.filler_words() + " ");
    switch (i % 10) {
      case 0:
        log.text("客户证件号码").plant(InfoType::resident_id, g.resident_id()).text("已核验");
        break;
      case 1:
        log.text("卡号").plant(InfoType::bank_card, g.card()).text("扣款成功");
        break;
      case 2:
        log.text("联系电话 +86 ").plant(InfoType::mobile, g.mobile());
        break;
      case 3:
        log.text("from ").plant(InfoType::ipv6, g.ipv6()).text(" ok ");
        log.decoy(g.ipv6_lookalike(), d);
        break;
      case 4:
        log.text("港澳通行证").plant(InfoType::travel_permit, g.permit());
        break;
      case 5:
        log.text("legacy 身份证 ").plant(InfoType::resident_id_15, g.resident_id_15());
        break;
      case 6:
        log.text("notify ").plant(InfoType::email, g.email()).text(" sent");
        break;
      case 7:
        log.text("卡号").decoy(g.card_bad_luhn(), d).text(" rejected");
        break;
      case 8:
        log.text("bad id ").decoy(g.resident_id_bad_date(), d);
        break;
      default:
        log.text("user@localhost ping 300.1.2.3 version 1.2.3");
        break;
    }
    log.text(" ip=").plant(InfoType::ipv4, g.ipv4()).text("\n");
  }

  // Config files and connection strings.
  Doc conf("service.conf", t);
  for (int i = 0; i < 300; ++i) {
    conf.text("[svc" + std::to_string(i) + "]\ndb_password=")
        .plant(InfoType::password, g.password());
    conf.text("\napi_key = ").plant(InfoType::secret, g.alnum(24));
    conf.text("\naws_access_key_id = ").plant(InfoType::aws_access_key, g.aws());
    conf.text("\nalibaba_key=").plant(InfoType::alibaba_access_key, g.alibaba());
    conf.text("\ntencent_id: ").plant(InfoType::tencent_secret_id, g.tencent());
    conf.text("\nurl=mysql://app:")
        .plant(InfoType::password, g.password())
        .text("@db" + std::to_string(i) + ".internal:3306/x");
    conf.text("\ncvv=").plant(InfoType::cvv, g.digits(3)).text("\npin: ");
    conf.plant(InfoType::pin, g.digits(6));
    conf.text("\nold_key=").decoy(g.aws_bad(), d);
    conf.text("\npassword=${DB_PASS_" + std::to_string(i) + "}\nsecret=\"********\"\n");
    if (i % 3 == 0) conf.text("# key\n").plant(InfoType::private_key, g.private_key()).text("\n");
    if (i % 3 == 1)
      conf.text("# docs: a file starts with -----BEGIN RSA PRIVATE KEY----- then base64\n");
  }

  // SQL dump.
  Doc sql("dump.sql", t);
  sql.text("CREATE TABLE accounts (id int, holder_id_card varchar(18), card_no varchar(19));\n");
  for (int i = 0; i < 300; ++i) {
    sql.text("INSERT INTO accounts VALUES (" + std::to_string(i) + ", '");
    sql.plant(InfoType::resident_id, g.resident_id()).text("', '");
    if (i % 6 == 0)
      sql.decoy(g.card_bad_luhn(), d);
    else
      sql.plant(InfoType::bank_card, g.card());
    sql.text("', 'GB iban ").plant(InfoType::iban, g.iban()).text("');\n");
  }

  // GB18030 text and a gzip'd CSV.
  Doc gbk("gbk_customers.txt", t);
  for (int i = 0; i < 200; ++i) {
    gbk.text("客户" + std::to_string(i) + "，身份证号：")
        .plant(InfoType::resident_id, g.resident_id());
    gbk.text("，手机：").plant(InfoType::mobile, g.mobile());
    gbk.text("，统一社会信用代码：").plant(InfoType::uscc, g.uscc()).text("。\n");
  }
  Doc gz("cards.csv.gz", t);
  gz.text("holder,card_no,tel\n");
  for (int i = 0; i < 300; ++i) {
    gz.text("持卡人" + std::to_string(i) + ",").plant(InfoType::bank_card, g.card()).text(",");
    gz.plant(InfoType::mobile, g.mobile()).text("\n");
  }

  // A JSON document holding a private key with escaped newlines.
  Doc keys("keys.json", t);
  for (int i = 0; i < 20; ++i) {
    std::string key = g.private_key();
    for (std::size_t p = key.find('\n'); p != std::string::npos; p = key.find('\n', p + 2))
      key.replace(p, 1, "\\n");
    keys.text("{\"service\": \"svc" + std::to_string(i) + "\", \"private_key\": \"")
        .plant(InfoType::private_key, key)
        .text("\"}\n");
  }

  fs::create_directories(dir);
  dlc::test::write_file(dir / keys.name(), keys.str());
  // Random bytes (a compressed or encrypted file): nothing to find.
  std::string blob(3u << 20, '\0');
  for (auto& b : blob) b = static_cast<char>(g.num(0, 255));
  dlc::test::write_file(dir / "archive.bin", blob);
  for (const Doc* doc : {&csv, &jsonl, &log, &conf, &sql})
    dlc::test::write_file(dir / doc->name(), doc->str());
  dlc::test::write_file(dir / gbk.name(), cls::utf8_to_gb18030(gbk.str()));
  dlc::test::write_file(dir / gz.name(), cls::gzip(gz.str()));
  return c;
}

std::string all_text_of(const fs::path& p) { return dlc::test::read_file(p); }

}  // namespace

TEST(Corpus, PrecisionAndRecallPerTypeAtLeast99Percent) {
  dlc::test::TempDir tmp;
  const fs::path dir = tmp / "corpus";
  const Corpus c = generate(dir, 20261125);

  cls::ClassifyOptions o;
  o.inputs = {dir};
  o.max_findings_per_file = 1'000'000;
  o.chunk_bytes = 16 << 10;  // exercise chunking on every file
  const cls::DatasetReport r = cls::scan(o);
  ASSERT_EQ(r.files_failed, 0u);

  std::map<std::pair<std::string, std::uint64_t>, InfoType> truth;
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> truth_row;
  std::map<InfoType, std::uint64_t> planted, found_right, reported;
  for (const auto& p : c.truth) {
    truth[{p.file, p.offset}] = p.type;
    if (p.row) truth_row[{p.file, p.offset}] = p.row;
    ++planted[p.type];
  }
  std::uint64_t rows_checked = 0;
  std::map<std::string, std::vector<std::string>> wrong;
  for (const auto& f : r.files) {
    const std::string name = fs::path(f.path).filename().string();
    for (const auto& x : f.findings) {
      ++reported[x.type];
      auto it = truth.find({name, x.offset});
      // A mobile number's finding may start at its +86 prefix.
      if (it == truth.end() && x.type == InfoType::mobile) it = truth.find({name, x.offset + 4});
      if (it != truth.end() && it->second == x.type) {
        ++found_right[x.type];
        // CSV rows are records: the quoted notes before the values hold newlines.
        if (auto r = truth_row.find(it->first); r != truth_row.end()) {
          ++rows_checked;
          EXPECT_EQ(x.row, r->second) << name << "@" << x.offset << " " << x.masked;
        }
      } else {
        wrong[std::string(cls::type_name(x.type))].push_back(name + "@" + std::to_string(x.offset) +
                                                             " " + x.masked);
      }
    }
  }
  std::cout << "type                 planted  reported  correct  precision  recall\n";
  for (const auto& [type, n] : planted) {
    std::printf("%-20s %7llu  %8llu  %7llu  %9.4f  %6.4f\n",
                std::string(cls::type_name(type)).c_str(), static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(reported[type]),
                static_cast<unsigned long long>(found_right[type]),
                reported[type] ? static_cast<double>(found_right[type]) / reported[type] : 0.0,
                static_cast<double>(found_right[type]) / n);
  }
  for (const auto& [type, n] : planted) {
    const double recall = static_cast<double>(found_right[type]) / static_cast<double>(n);
    const double precision = reported[type] ? static_cast<double>(found_right[type]) /
                                                  static_cast<double>(reported[type])
                                            : 0;
    EXPECT_GE(n, 100u) << cls::type_name(type);
    EXPECT_GE(recall, 0.99) << cls::type_name(type) << ": " << found_right[type] << " of " << n;
    EXPECT_GE(precision, 0.99) << cls::type_name(type) << ": " << found_right[type] << " of "
                               << reported[type] << " reported";
  }
  EXPECT_GT(rows_checked, 1000u);
  for (const auto& [type, list] : wrong)
    for (std::size_t i = 0; i < std::min<std::size_t>(list.size(), 5); ++i)
      ADD_FAILURE() << "unexpected " << type << " finding " << list[i];
}

TEST(Corpus, NoReportEverContainsAPlantedValue) {
  dlc::test::TempDir tmp;
  const fs::path dir = tmp / "corpus";
  const Corpus c = generate(dir, 7);
  cls::ClassifyOptions o;
  o.inputs = {dir};
  o.max_findings_per_file = 1'000'000;
  o.hash_files = true;
  const cls::DatasetReport r = cls::scan(o);

  std::vector<std::pair<std::string, std::string>> outputs;  // (what, text)
  outputs.emplace_back("json report", cls::to_json(r).dump(2));
  outputs.emplace_back("csv report", cls::to_csv(r));
  std::ostringstream human;
  cls::write_human(human, r, true, 1'000'000);
  outputs.emplace_back("human report", human.str());
  cls::write_labels(r, {tmp / "labels.json", false});
  outputs.emplace_back("labels manifest", all_text_of(tmp / "labels.json"));
  // Masked copies of every text file (gzip and GB18030 decoded for the check).
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".bin") continue;  // binary files are not masked
    cls::MaskOptions m;
    m.input = e.path();
    m.output = tmp / ("masked_" + e.path().filename().string());
    const cls::MaskResult res = cls::mask_file(m);
    std::string text = all_text_of(m.output);
    if (res.gzip) text = cls::gunzip(text, "masked", 1u << 30);
    if (res.encoding == "gb18030") text = cls::gb18030_to_utf8(text);
    outputs.emplace_back("masked copy of " + e.path().filename().string(), text);
  }
  // The real binary: labels and a mask write audit records.
  dlc::test::TempDir home;
  const std::map<std::string, std::string> env = {{"DLC_HOME", home.path().string()}};
  auto run = dlc::test::run_dlc(
      {"classify", dir.string(), "--label", (tmp / "l2.json").string(), "--json"}, {}, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  outputs.emplace_back("dlc --json stdout", run.out + run.err);
  auto human_run =
      dlc::test::run_dlc({"classify", dir.string(), "-v", "--show", "100000"}, {}, env);
  outputs.emplace_back("dlc text stdout", human_run.out + human_run.err);
  auto csv_run = dlc::test::run_dlc({"classify", dir.string(), "--csv"}, {}, env);
  outputs.emplace_back("dlc --csv stdout", csv_run.out + csv_run.err);
  auto mask_run = dlc::test::run_dlc(
      {"classify", "mask", (dir / "service.conf").string(), (tmp / "m.conf").string()}, {}, env);
  ASSERT_EQ(mask_run.exit_code, 0) << mask_run.err;
  outputs.emplace_back("audit log", all_text_of(home / "audit.jsonl"));

  // Every 8-byte window of every output, sorted: a planted value can only
  // appear where its first 8 bytes do (then the full search confirms).
  std::vector<std::uint64_t> windows;
  for (const auto& [what, text] : outputs)
    for (std::size_t i = 0; i + 8 <= text.size(); ++i) {
      std::uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      windows.push_back(w);
    }
  std::sort(windows.begin(), windows.end());
  std::size_t checked = 0;
  for (const auto& p : c.truth) {
    if (p.value.size() < 8) continue;  // CVVs and PINs collide with offsets and counts
    ++checked;
    std::uint64_t head;
    std::memcpy(&head, p.value.data(), 8);
    if (!std::binary_search(windows.begin(), windows.end(), head)) continue;
    for (const auto& [what, text] : outputs)
      ASSERT_EQ(text.find(p.value), std::string::npos)
          << "a planted " << cls::type_name(p.type) << " value appears in the " << what;
  }
  EXPECT_GT(checked, 4000u);
  // Invalid lookalikes are not findings: they never appear in reports either.
  for (const auto& value : c.decoys)
    for (std::size_t i = 0; i < 3; ++i)
      ASSERT_EQ(outputs[i].second.find(value), std::string::npos) << outputs[i].first;
}
