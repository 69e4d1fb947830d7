// Masked forms keep a recognisable part and never the whole value.
#include "classify/mask.h"

#include <gtest/gtest.h>

using dlc::classify::InfoType;
using dlc::classify::mask_replacement;
using dlc::classify::mask_sample;

TEST(Mask, IssueExamples) {
  EXPECT_EQ(mask_sample(InfoType::resident_id, "11010519491231123X"), "110105********123X");
  EXPECT_EQ(mask_sample(InfoType::bank_card, "6222 0212 3456 1234"), "6222 **** **** 1234");
}

TEST(Mask, Identifiers) {
  EXPECT_EQ(mask_sample(InfoType::resident_id_15, "110105491231002"), "110105******002");
  EXPECT_EQ(mask_sample(InfoType::bank_card, "6222021234567890128"), "6222***********0128");
  EXPECT_EQ(mask_sample(InfoType::mobile, "13812345678"), "138****5678");
  EXPECT_EQ(mask_sample(InfoType::mobile, "+86 138-1234-5678"), "+86 138-****-5678");
  EXPECT_EQ(mask_sample(InfoType::uscc, "91350100M000100Y43"), "9135************43");
  EXPECT_EQ(mask_sample(InfoType::iban, "GB82WEST12345698765432"), "GB82**************5432");
  EXPECT_EQ(mask_sample(InfoType::passport, "E12345678"), "E*****678");
  EXPECT_EQ(mask_sample(InfoType::email, "zhang.san@example.com"), "z***@example.com");
  EXPECT_EQ(mask_sample(InfoType::ipv4, "192.168.10.20"), "192.168.*.*");
  EXPECT_EQ(mask_sample(InfoType::ipv6, "2001:db8::1"), "2001:db8:*");
}

TEST(Mask, SecretsKeepNothing) {
  EXPECT_EQ(mask_sample(InfoType::password, "hunter2hunter2"), "********");
  EXPECT_EQ(mask_sample(InfoType::password, "a"), "********");  // no length leak
  EXPECT_EQ(mask_sample(InfoType::cvv, "123"), "***");
  EXPECT_EQ(mask_sample(InfoType::aws_access_key, "AKIAIOSFODNN7EXAMPLE"), "AKIA****************");
  EXPECT_EQ(mask_sample(InfoType::jwt, "eyJhbGciOi.x.y"), "eyJ***.***.***");
}

TEST(Mask, PrivateKeyBlock) {
  const std::string key =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nabc\n-----END RSA PRIVATE KEY-----";
  EXPECT_EQ(mask_sample(InfoType::private_key, key), "-----BEGIN RSA PRIVATE KEY----- [redacted]");
  EXPECT_EQ(mask_replacement(InfoType::private_key, key),
            "-----BEGIN RSA PRIVATE KEY-----\n[REDACTED by dlc]\n-----END RSA PRIVATE KEY-----");
}

// A key block without line breaks (a binary's strings, a minified file) or
// with literal "\n" (a JSON string) must not leak its body: the sample and
// the replacement keep the BEGIN/END markers only, and the replacement keeps
// a JSON string a JSON string.
TEST(Mask, PrivateKeyBodyNeverShownWhateverTheLayout) {
  const std::string body = "MIIEowIBAAKCAQEA7bqSECRETBODYabcdefghijklmnopqrstuvwxyz0123456789";
  const std::string one_line = "-----BEGIN EC PRIVATE KEY-----" + body + "-----END EC PRIVATE KEY-----";
  EXPECT_EQ(mask_sample(InfoType::private_key, one_line),
            "-----BEGIN EC PRIVATE KEY----- [redacted]");
  EXPECT_EQ(mask_replacement(InfoType::private_key, one_line),
            "-----BEGIN EC PRIVATE KEY-----\n[REDACTED by dlc]\n-----END EC PRIVATE KEY-----");
  const std::string json = "-----BEGIN PRIVATE KEY-----\\n" + body + "\\n-----END PRIVATE KEY-----";
  EXPECT_EQ(mask_sample(InfoType::private_key, json), "-----BEGIN PRIVATE KEY----- [redacted]");
  EXPECT_EQ(mask_replacement(InfoType::private_key, json),
            "-----BEGIN PRIVATE KEY-----\\n[REDACTED by dlc]\\n-----END PRIVATE KEY-----");
  const std::string crlf = "-----BEGIN RSA PRIVATE KEY-----\r\n" + body + "\r\n";  // no footer
  EXPECT_EQ(mask_replacement(InfoType::private_key, crlf),
            "-----BEGIN RSA PRIVATE KEY-----\r\n[REDACTED by dlc]");
  for (const auto& raw : {one_line, json, crlf}) {
    EXPECT_EQ(mask_sample(InfoType::private_key, raw).find("SECRETBODY"), std::string::npos);
    EXPECT_EQ(mask_replacement(InfoType::private_key, raw).find("SECRETBODY"), std::string::npos);
  }
}

TEST(Mask, NeverTheWholeValue) {
  for (auto [t, raw] : std::initializer_list<std::pair<InfoType, const char*>>{
           {InfoType::resident_id, "11010519491231002X"},
           {InfoType::bank_card, "4111111111111111"},
           {InfoType::mobile, "13812345678"},
           {InfoType::uscc, "91350100M000100Y43"},
           {InfoType::travel_permit, "C12345678"},
           {InfoType::tencent_secret_id, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"}}) {
    const std::string m = mask_sample(t, raw);
    EXPECT_EQ(m.find(raw), std::string::npos) << raw;
    EXPECT_NE(m.find('*'), std::string::npos) << raw;
  }
}

TEST(Mask, Ipv6KeepsTheLeadingGroups) {
  EXPECT_EQ(mask_sample(InfoType::ipv6, "fe80::1ff:fe23:4567:890a"), "fe80:*");
  EXPECT_EQ(mask_sample(InfoType::ipv6, "::1"), "*:*");
}
