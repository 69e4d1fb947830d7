// Every validator against published examples and near misses.
#include "classify/validators.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace v = dlc::classify::validate;

namespace {
// A resident ID with a correct check character for the given parts, so that a
// test can show that the date or region rule alone rejects it.
std::string make_id(const std::string& region, const std::string& date, const std::string& seq) {
  std::string first17 = region + date + seq;
  return first17 + v::resident_id18_check(first17);
}
std::string make_uscc(const std::string& first17) { return first17 + v::uscc_check(first17); }
}  // namespace

TEST(ResidentId18, AcceptsTheStandardsExamples) {
  EXPECT_TRUE(v::resident_id18("11010519491231002X"));  // GB 11643-1999 example
  EXPECT_TRUE(v::resident_id18("11010519491231002x"));  // lower-case x is written too
  EXPECT_TRUE(v::resident_id18("440524188001010014"));  // GB 11643-1999 example (born 1880)
}

TEST(ResidentId18, RejectsAWrongCheckCharacter) {
  EXPECT_FALSE(v::resident_id18("110105194912310021"));
  EXPECT_FALSE(v::resident_id18("440524188001010015"));
}

TEST(ResidentId18, RejectsImpossibleDatesEvenWithACorrectCheck) {
  EXPECT_TRUE(v::resident_id18(make_id("110105", "19480229", "002")));   // leap year
  EXPECT_FALSE(v::resident_id18(make_id("110105", "19490229", "002")));  // not a leap year
  EXPECT_FALSE(v::resident_id18(make_id("110105", "19491331", "002")));  // month 13
  EXPECT_FALSE(v::resident_id18(make_id("110105", "19490431", "002")));  // April 31
  EXPECT_FALSE(v::resident_id18(make_id("110105", "20991231", "002")));  // in the future
  EXPECT_FALSE(v::resident_id18(make_id("110105", "17991231", "002")));  // too old
}

TEST(ResidentId18, RejectsUnknownProvinces) {
  EXPECT_FALSE(v::resident_id18(make_id("000105", "19491231", "002")));
  EXPECT_FALSE(v::resident_id18(make_id("990105", "19491231", "002")));
  EXPECT_FALSE(v::resident_id18(make_id("160105", "19491231", "002")));
  EXPECT_TRUE(v::resident_id18(make_id("810000", "19800101", "123")));  // Hong Kong residents
}

TEST(ResidentId18, RejectsWrongShapes) {
  EXPECT_FALSE(v::resident_id18("11010519491231002"));
  EXPECT_FALSE(v::resident_id18("11010519491231002XX"));
  EXPECT_FALSE(v::resident_id18("1101051949123100AX"));
}

TEST(ResidentId15, ChecksRegionAndDate) {
  EXPECT_TRUE(v::resident_id15("110105491231002"));
  EXPECT_FALSE(v::resident_id15("110105491331002"));  // month 13
  EXPECT_FALSE(v::resident_id15("000105491231002"));  // no such province
  EXPECT_FALSE(v::resident_id15("11010549123100"));
}

TEST(Uscc, AcceptsTheStandardsExample) {
  EXPECT_TRUE(v::uscc("91350100M000100Y43"));  // GB 32100-2015 example
  EXPECT_TRUE(v::organisation_code("M000100Y4"));
}

TEST(Uscc, RejectsAWrongCheckCharacter) {
  EXPECT_FALSE(v::uscc("91350100M000100Y44"));
  EXPECT_FALSE(v::uscc("91350100M000100Y4I"));  // I is not in the alphabet
}

TEST(Uscc, RejectsABrokenEmbeddedOrganisationCode) {
  const std::string bad = make_uscc("91350100M000100Y5");  // org code check is 4, not 5
  ASSERT_EQ(bad.size(), 18u);
  EXPECT_FALSE(v::organisation_code("M000100Y5"));
  EXPECT_FALSE(v::uscc(bad));
}

TEST(Uscc, RejectsBadAuthorityRegionOrAlphabet) {
  EXPECT_FALSE(v::uscc(make_uscc("01350100M000100Y4")));  // authority 0
  EXPECT_FALSE(v::uscc(make_uscc("90350100M000100Y4")));  // category 0
  EXPECT_FALSE(v::uscc(make_uscc("91990100M000100Y4")));  // region 99
  EXPECT_FALSE(v::uscc("91350100M000100Y4"));             // 17 characters
}

TEST(Luhn, PublishedTestCardNumbers) {
  for (const char* n :
       {"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117",
        "3530111333300000", "6212345678901265", "6222021234567890128", "2223003122003222"}) {
    EXPECT_TRUE(v::luhn(n)) << n;
    EXPECT_TRUE(v::bank_card(n)) << n;
  }
}

TEST(Luhn, NearMisses) {
  EXPECT_FALSE(v::bank_card("4111111111111112"));      // Luhn-invalid
  EXPECT_FALSE(v::bank_card("6222021234567890127"));   // Luhn-invalid 19-digit UnionPay
  EXPECT_FALSE(v::bank_card("1234567812345670"));      // Luhn-valid, unknown BIN
  EXPECT_FALSE(v::bank_card("411111111111"));          // too short
  EXPECT_FALSE(v::bank_card("62220212345678901285"));  // 20 digits
  EXPECT_FALSE(v::bank_card("55555555555544"));        // Mastercard is 16 digits
  EXPECT_FALSE(v::luhn(""));
}

TEST(Luhn, MatchesAReferenceOnRandomStrings) {
  const auto reference = [](const std::string& s) {
    int sum = 0;
    for (std::size_t k = 0; k < s.size(); ++k) {
      const char c = s[s.size() - 1 - k];
      if (c < '0' || c > '9') return false;
      const int d = (c - '0') * (k % 2 ? 2 : 1);
      sum += d > 9 ? d - 9 : d;
    }
    return !s.empty() && sum % 10 == 0;
  };
  std::mt19937 rng(7);
  const std::string odd = "/:;?@A \xff";  // next to the digits, wrapped below '0'
  int valid = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string s(rng() % 24, '0');
    for (auto& c : s) c = static_cast<char>('0' + rng() % 10);
    if (!s.empty() && rng() % 4 == 0) s[rng() % s.size()] = odd[rng() % odd.size()];
    ASSERT_EQ(v::luhn(s), reference(s)) << s;
    valid += reference(s);
  }
  EXPECT_GT(valid, 10000);
}

TEST(CardBin, UnionPayLengths) {
  EXPECT_TRUE(v::card_bin("6222021234567890"));
  EXPECT_TRUE(v::card_bin("6222021234567890128"));  // 19-digit debit cards are common
  EXPECT_FALSE(v::card_bin("622202123456789"));     // 15 digits is not UnionPay
}

TEST(Mobile, Segments) {
  EXPECT_TRUE(v::mobile("13812345678"));
  EXPECT_TRUE(v::mobile("19912345678"));
  EXPECT_TRUE(v::mobile("16612345678"));
  EXPECT_FALSE(v::mobile("12812345678"));  // no 12x segment
  EXPECT_FALSE(v::mobile("14012345678"));  // 140 is not a mobile segment
  EXPECT_FALSE(v::mobile("1381234567"));
  EXPECT_FALSE(v::mobile("23812345678"));
}

TEST(Email, ShapesAndNearMisses) {
  EXPECT_TRUE(v::email("zhang.san@example.com"));
  EXPECT_TRUE(v::email("a+tag@mail.bank.com.cn"));
  EXPECT_FALSE(v::email("user@localhost"));
  EXPECT_FALSE(v::email("user@example.c"));
  EXPECT_FALSE(v::email("user@example.123"));
  EXPECT_FALSE(v::email(".user@example.com"));
  EXPECT_FALSE(v::email("us..er@example.com"));
  EXPECT_FALSE(v::email("user@-example.com"));
}

TEST(Ip, Version4And6) {
  EXPECT_TRUE(v::ipv4("192.168.1.1"));
  EXPECT_TRUE(v::ipv4("0.0.0.0"));
  EXPECT_FALSE(v::ipv4("256.1.1.1"));
  EXPECT_FALSE(v::ipv4("01.2.3.4"));
  EXPECT_FALSE(v::ipv4("1.2.3"));
  EXPECT_FALSE(v::ipv4("1.2.3.4.5"));
  EXPECT_TRUE(v::ipv6("2001:db8::1"));
  EXPECT_TRUE(v::ipv6("fe80::1ff:fe23:4567:890a"));
  EXPECT_TRUE(v::ipv6("2001:0db8:85a3:0000:0000:8a2e:0370:7334"));
  EXPECT_FALSE(v::ipv6("12:30:45"));
  EXPECT_FALSE(v::ipv6("00:1a:2b:3c:4d:5e"));  // a MAC address
}

TEST(Iban, RegistryExamples) {
  EXPECT_TRUE(v::iban("GB82WEST12345698765432"));
  EXPECT_TRUE(v::iban("DE89370400440532013000"));
  EXPECT_TRUE(v::iban("FR1420041010050500013M02606"));
  EXPECT_TRUE(v::iban("NL91ABNA0417164300"));
  EXPECT_FALSE(v::iban("GB82WEST12345698765433"));  // mod 97 fails
  EXPECT_FALSE(v::iban("GB82WEST1234569876543"));   // wrong length for GB
  EXPECT_FALSE(v::iban("ZZ82WEST12345698765432"));  // no such country
}

TEST(Documents, PassportsAndPermits) {
  EXPECT_TRUE(v::passport("E12345678"));
  EXPECT_TRUE(v::passport("EA1234567"));
  EXPECT_TRUE(v::passport("G12345678"));
  EXPECT_FALSE(v::passport("EI1234567"));  // I is never used
  EXPECT_FALSE(v::passport("E1234567"));
  EXPECT_FALSE(v::passport("X12345678"));
  EXPECT_TRUE(v::travel_permit("C12345678"));
  EXPECT_TRUE(v::travel_permit("CA1234567"));
  EXPECT_TRUE(v::travel_permit("H1234567801"));
  EXPECT_FALSE(v::travel_permit("C1234567"));
  EXPECT_FALSE(v::travel_permit("Z12345678"));
}

TEST(Credentials, AccessKeys) {
  EXPECT_TRUE(v::aws_access_key("AKIAIOSFODNN7EXAMPLE"));  // AWS documentation example
  EXPECT_TRUE(v::aws_access_key("ASIAY34FZKBOKMUTVV7A"));
  EXPECT_FALSE(v::aws_access_key("AKIAIOSFODNN7EXAMPL"));
  EXPECT_FALSE(v::aws_access_key("AKIAIOSFODNN8EXAMPLE"));  // 8 is not base32
  EXPECT_TRUE(v::alibaba_access_key("LTAI4G8vXq2mN5pR7sT1uW3y"));
  EXPECT_FALSE(v::alibaba_access_key("LTAIEXAMPLEEXAMPLE"));  // no digits: not a key
  EXPECT_TRUE(v::tencent_secret_id("AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"));
  EXPECT_FALSE(v::tencent_secret_id("AKIDz8krbsJ5yKBZQpn74WFkmLPx3gn"));
}

TEST(Credentials, Jwt) {
  EXPECT_TRUE(v::jwt(
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
      "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"));  // jwt.io example
  EXPECT_FALSE(
      v::jwt("eyJzdWIiOiIxMjM0NTY3ODkwIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijkl"));  // no alg
  EXPECT_FALSE(v::jwt("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));  // one segment
}

TEST(Credentials, Placeholders) {
  EXPECT_TRUE(v::placeholder_value(""));
  EXPECT_TRUE(v::placeholder_value("********"));
  EXPECT_TRUE(v::placeholder_value("${DB_PASSWORD}"));
  EXPECT_TRUE(v::placeholder_value("<password>"));
  EXPECT_TRUE(v::placeholder_value("null"));
  EXPECT_FALSE(v::placeholder_value("changeme"));
  EXPECT_FALSE(v::placeholder_value("S3cr3t!pass"));
}
