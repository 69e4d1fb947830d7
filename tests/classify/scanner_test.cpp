// The byte-level scanner on text: what it finds, where, and what it rejects.
#include "classify/scanner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "classify/context.h"

using dlc::classify::ChunkInput;
using dlc::classify::ChunkOutput;
using dlc::classify::CsvLayout;
using dlc::classify::Hit;
using dlc::classify::InfoType;

namespace {

struct Found {
  InfoType type;
  std::string value;
  float confidence;
  int column;
  std::uint32_t line;
};

std::vector<Found> scan(const std::string& text, const CsvLayout* csv = nullptr,
                        float min_confidence = 0.5f) {
  ChunkInput in;
  in.text = text;
  in.begin = 0;
  in.end = text.size();
  in.csv = csv;
  ChunkOutput out;
  dlc::classify::scan_chunk(in, out);
  std::vector<Found> found;
  for (const Hit& h : out.hits)
    if (h.confidence / 100.0f >= min_confidence)
      found.push_back(
          {h.type, text.substr(h.offset, h.length), h.confidence / 100.0f, h.column, h.line});
  return found;
}

std::vector<Found> only(const std::vector<Found>& all, InfoType t) {
  std::vector<Found> r;
  for (const auto& f : all)
    if (f.type == t) r.push_back(f);
  return r;
}

// Valid as a resident ID (Gansu, 1990-01-01) AND as a Luhn-valid UnionPay card.
const std::string kIdAndCard = "620102199001010257";

}  // namespace

TEST(Scanner, FindsIdentifiersRightAfterChineseText) {
  auto f = scan("卡号6222021234567890128，身份证11010519491231002X手机13812345678。");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].type, InfoType::bank_card);
  EXPECT_EQ(f[0].value, "6222021234567890128");  // 19-digit UnionPay debit card
  EXPECT_EQ(f[1].type, InfoType::resident_id);
  EXPECT_EQ(f[1].value, "11010519491231002X");
  EXPECT_EQ(f[2].type, InfoType::mobile);
  EXPECT_EQ(f[2].value, "13812345678");
}

TEST(Scanner, RejectsNearMisses) {
  EXPECT_TRUE(scan("card 6222021234567890127 id 110105194912310021").empty());  // check digits
  EXPECT_TRUE(scan("id 110105194902290026").empty());                 // 1949-02-29 does not exist
  EXPECT_TRUE(scan("n=62220212345678901280000").empty());             // a longer number
  EXPECT_TRUE(scan("ref abc13812345678 x13812345678y").empty());      // inside words
  EXPECT_TRUE(scan("pi=0.6222021234567890128").empty());              // decimal fraction
  EXPECT_TRUE(scan("2026-11-05 12:30:45.123 took 12.5 ms").empty());  // not IPs
  EXPECT_TRUE(scan("phone 12812345678").empty());                     // no 12x mobile segment
}

TEST(Scanner, GroupedNumbers) {
  auto f = scan("tel +86 138-1234-5678; card 6222 0212 3456 7890 128; id 110105 19491231 002X");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].type, InfoType::mobile);
  EXPECT_EQ(f[0].value, "+86 138-1234-5678");
  EXPECT_EQ(f[1].type, InfoType::bank_card);
  EXPECT_EQ(f[1].value, "6222 0212 3456 7890 128");
  EXPECT_EQ(f[2].type, InfoType::resident_id);
  EXPECT_EQ(f[2].value, "110105 19491231 002X");
  auto g = scan("call 008613812345678 or +8613912345678");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].type, InfoType::mobile);
  EXPECT_EQ(g[1].type, InfoType::mobile);
}

TEST(Scanner, ContextSettlesValuesValidAsSeveralTypes) {
  auto as_card = scan("银行卡号：" + kIdAndCard);
  ASSERT_EQ(as_card.size(), 1u);
  EXPECT_EQ(as_card[0].type, InfoType::bank_card);
  auto as_id = scan("身份证号：" + kIdAndCard);
  ASSERT_EQ(as_id.size(), 1u);
  EXPECT_EQ(as_id[0].type, InfoType::resident_id);
  auto json = scan(R"({"phone": "13812345678", "card_no": ")" + kIdAndCard + R"("})");
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[1].type, InfoType::bank_card);  // the nearest field name wins
  auto bare = scan("value " + kIdAndCard);
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_EQ(bare[0].type, InfoType::resident_id);  // the stricter check wins without context
}

TEST(Scanner, ContextRaisesWeakTypes) {
  EXPECT_TRUE(scan("code E12345678").empty());  // a passport shape alone is not enough
  auto f = scan("护照号码 E12345678, passport: EA1234567, 港澳通行证 C12345678");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].type, InfoType::passport);
  EXPECT_EQ(f[1].type, InfoType::passport);
  EXPECT_EQ(f[2].type, InfoType::travel_permit);
  EXPECT_TRUE(scan("order_no 110105491231002").empty());  // 15-digit ID needs context
  EXPECT_EQ(only(scan("身份证 110105491231002"), InfoType::resident_id_15).size(), 1u);
}

TEST(Scanner, EmailContainingAPhoneNumberIsOneFinding) {
  auto f = scan("mail 13812345678@163.com now");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, InfoType::email);
  EXPECT_EQ(f[0].value, "13812345678@163.com");
}

TEST(Scanner, UsccIbanAndIps) {
  auto f = scan("USCC 91350100M000100Y43 iban GB82WEST12345698765432 ip 10.1.2.3 v6 2001:db8::1");
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].type, InfoType::uscc);
  EXPECT_EQ(f[1].type, InfoType::iban);
  EXPECT_EQ(f[2].type, InfoType::ipv4);
  EXPECT_EQ(f[2].value, "10.1.2.3");
  EXPECT_EQ(f[3].type, InfoType::ipv6);
  EXPECT_TRUE(scan("USCC 91350100M000100Y44 GB82WEST12345698765433").empty());
}

TEST(Scanner, Credentials) {
  auto f = scan(
      "db.password=S3cr3t!pass\n"
      "  api_key: \"abcd1234efgh5678\"\n"
      "{\"pwd\":\"hunter22\",\"cvv2\":\"123\",\"pin\":\"123456\"}\n"
      "jdbc=postgres://svc:Pa55word@db:5432/x\n"
      "Tencent AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA Ali LTAI4G8vXq2mN5pR7sT1uW3y\n"
      "密码：abc12345\n");
  std::vector<std::pair<InfoType, std::string>> want = {
      {InfoType::password, "S3cr3t!pass"},
      {InfoType::secret, "abcd1234efgh5678"},
      {InfoType::password, "hunter22"},
      {InfoType::cvv, "123"},
      {InfoType::pin, "123456"},
      {InfoType::password, "Pa55word"},
      {InfoType::tencent_secret_id, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"},
      {InfoType::alibaba_access_key, "LTAI4G8vXq2mN5pR7sT1uW3y"},
      {InfoType::password, "abc12345"}};
  ASSERT_EQ(f.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(f[i].type, want[i].first) << i;
    EXPECT_EQ(f[i].value, want[i].second) << i;
  }
}

TEST(Scanner, CredentialLookalikesAreIgnored) {
  EXPECT_TRUE(scan("password=${DB_PASSWORD}\npassword=\"********\"\n").empty());
  EXPECT_TRUE(scan("Reset your password: follow the link\n").empty());  // prose, not a key
  EXPECT_TRUE(scan("bypass=1 spin=2 passport=3 password_hash=x\n").empty());
  EXPECT_TRUE(scan("cvv=abc pin=12\n").empty());
  EXPECT_TRUE(scan("The header -----BEGIN RSA PRIVATE KEY----- starts a key.\n").empty());
}

TEST(Scanner, PrivateKeyBlockAndJwt) {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\n"
      "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
      "-----END OPENSSH PRIVATE KEY-----";
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  auto f = scan("x\n" + key + "\nAuthorization: Bearer " + jwt + "\n");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].type, InfoType::private_key);
  EXPECT_EQ(f[0].value, key);
  EXPECT_EQ(f[0].line, 1u);
  EXPECT_EQ(f[1].type, InfoType::jwt);
  EXPECT_EQ(f[1].value, jwt);
  EXPECT_EQ(f[1].line, 4u);
}

TEST(Scanner, CsvColumnsGiveContextAndHoldCredentials) {
  const std::string text =
      "name,card_no,id_no,password\n"
      "a," +
      kIdAndCard + "," + kIdAndCard + ",Tr0ub4dor&3\n";
  CsvLayout layout = dlc::classify::csv_layout(text, 0);
  EXPECT_TRUE(layout.header);
  ASSERT_EQ(layout.names.size(), 4u);
  auto f = scan(text, &layout);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].type, InfoType::bank_card);
  EXPECT_EQ(f[0].column, 1);
  EXPECT_EQ(f[1].type, InfoType::resident_id);
  EXPECT_EQ(f[1].column, 2);
  EXPECT_EQ(f[2].type, InfoType::password);
  EXPECT_EQ(f[2].column, 3);
  EXPECT_EQ(f[2].line, 1u);
}

TEST(Scanner, ChunksSeeAcrossTheirEdges) {
  // Candidates start inside [begin, end) but may read before and after it.
  const std::string text = "身份证:\n11010519491231002X\n卡号 6222021234567890128\n";
  const std::size_t second = text.find('\n') + 1;
  ChunkInput in;
  in.text = text;
  in.begin = second;
  in.end = text.size();
  ChunkOutput out;
  dlc::classify::scan_chunk(in, out);
  ASSERT_EQ(out.hits.size(), 2u);
  EXPECT_EQ(out.hits[0].offset, second);
  EXPECT_EQ(out.hits[0].line, 0u);
  EXPECT_EQ(out.hits[1].line, 1u);
  EXPECT_EQ(out.newlines, 2u);
}

TEST(Scanner, AFirstLineHoldingValuesIsNoHeader) {
  // Letters and no long digit run, but an e-mail: data, so no cell becomes a column name.
  CsvLayout l = dlc::classify::csv_layout("zhang.san@example.com,hello\nx,y\n", 0);
  EXPECT_FALSE(l.header);
  EXPECT_EQ(l.names[0], "#1");
  EXPECT_TRUE(dlc::classify::csv_layout("email,hello\nx,y\n", 0).header);
}

// Follow-up: IPv6 recall (forms without "::", groups without decimal runs)
// and precision (short compressed forms need IP context).
TEST(Scanner, Ipv6FullFormsAndLetterGroupsAreFound) {
  const std::vector<std::string> addresses = {
      "fe80:0:0:0:1ff:fe23:abcd:ef01", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
      "FE80:0:0:0:1FF:FE23:ABCD:EF01", "fe80::abcd:ef01", "fe80::1ff:fe23:abcd:ef01",
      "2001:db8::8a2e:370:7334"};
  for (const auto& a : addresses) {
    for (const std::string& text : {"peer " + a + " up", "src=" + a + "\n", "[" + a + "]:443",
                                    "连接来自" + a + "。"}) {
      auto f = only(scan(text), InfoType::ipv6);
      ASSERT_EQ(f.size(), 1u) << text;
      EXPECT_EQ(f[0].value, a) << text;
    }
  }
  // Straddling the 64-byte blocks of the candidate pass at every offset.
  for (std::size_t pad = 0; pad < 70; ++pad) {
    const std::string text = std::string(pad, 'x') + " fe80:0:0:0:1ff:fe23:abcd:ef01 " +
                             std::string(80, 'y');
    auto f = only(scan(text), InfoType::ipv6);
    ASSERT_EQ(f.size(), 1u) << pad;
    EXPECT_EQ(f[0].value, "fe80:0:0:0:1ff:fe23:abcd:ef01");
  }
}

TEST(Scanner, Ipv6LookalikesAreNotAddresses) {
  EXPECT_TRUE(only(scan("mac 00:1a:2b:3c:4d:5e at 12:30:45 ratio 1:2:3:4"), InfoType::ipv6).empty());
  EXPECT_TRUE(only(scan("a:b:c:d:e:f:1 (seven groups) 1:2:3:4:5:6:7:8:9"), InfoType::ipv6).empty());
  // Bytes of a binary's strings and C++ scopes: short compressed forms.
  EXPECT_TRUE(scan("xq C::8 }").empty());
  EXPECT_TRUE(scan("cb::add(x); dead::beef; std::vector<int> v; ::1").empty());
  // The same short forms count with IP context or in brackets.
  auto f = scan("listen ip ::1 host=C::8 http://[::1]:8080/");
  ASSERT_EQ(f.size(), 3u);
  for (const auto& x : f) EXPECT_EQ(x.type, InfoType::ipv6);
  EXPECT_EQ(f[0].value, "::1");
  EXPECT_EQ(f[1].value, "C::8");
  // Numbers next to "::" are still numbers when no address is there.
  auto g = scan("key::13812345678 ok");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].type, InfoType::mobile);
}
