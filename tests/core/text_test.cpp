// core/text.h: UTF-8 validity and escaping, RFC 3339 time stamps.
#include "core/text.h"

#include <gtest/gtest.h>

#include <regex>

TEST(Utf8, AcceptsWellFormedTextAndRejectsWhatRfc3629Forbids) {
  EXPECT_TRUE(dlc::valid_utf8(""));
  EXPECT_TRUE(dlc::valid_utf8("plain ascii"));
  EXPECT_TRUE(dlc::valid_utf8("身份证号 \xF0\x9F\x94\x91"));  // CJK + U+1F511
  EXPECT_FALSE(dlc::valid_utf8("\xC0\x80"));                 // overlong NUL
  EXPECT_FALSE(dlc::valid_utf8("\xE0\x80\xAF"));             // overlong '/'
  EXPECT_FALSE(dlc::valid_utf8("\xED\xA0\x80"));             // UTF-16 surrogate
  EXPECT_FALSE(dlc::valid_utf8("\xF4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(dlc::valid_utf8("\xE4\xB8"));                 // cut short
  EXPECT_FALSE(dlc::valid_utf8("\x80"));                     // lone continuation
}

TEST(Utf8, PrintableEscapesOnlyTheBytesThatAreNotUtf8) {
  EXPECT_EQ(dlc::printable_utf8("a\xFF" "b"), "a\\xFFb");
  EXPECT_EQ(dlc::printable_utf8("名\xC0\x80"), "名\\xC0\\x80");
  EXPECT_EQ(dlc::printable_utf8("ok"), "ok");
  EXPECT_TRUE(dlc::valid_utf8(dlc::printable_utf8("\xE4\xB8\xFF\xFE")));
}

TEST(Rfc3339, FormatsUtcWithTheRequestedFraction) {
  EXPECT_EQ(dlc::rfc3339(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(dlc::rfc3339(1764075173123456789LL, 3), "2025-11-25T12:52:53.123Z");
  EXPECT_EQ(dlc::rfc3339(1764075173123456789LL, 0), "2025-11-25T12:52:53Z");
  EXPECT_EQ(dlc::rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
  const std::regex ms(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  EXPECT_TRUE(std::regex_match(dlc::now_rfc3339(3), ms)) << dlc::now_rfc3339(3);
  const std::regex date(R"(^\d{4}-\d{2}-\d{2}$)");
  EXPECT_TRUE(std::regex_match(dlc::today_utc(), date)) << dlc::today_utc();
}

TEST(Identity, HostAndUserAreNeverEmpty) {
  EXPECT_FALSE(dlc::host_name().empty());
  EXPECT_FALSE(dlc::user_name().empty());
}
