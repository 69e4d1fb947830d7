// The migration resume journal (migrate/journal.h) read back after crashes
// and damage (found by tests/fuzz/migrate_journal_fuzz.cpp): a last line cut
// short by kill -9 is cut off so the next record is not lost; every other
// defect is one Errc::io dlc::Error naming the line, with --restart as the
// hint, that leaves the file as it was and never repeats a path.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "migrate/journal.h"
#include "support/test_support.h"

namespace dlc::migrate {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const json kPair = {{"source", "/src"}, {"destination", "/dst"}, {"kind", "tree"}, {"hash", "sha256"}};
const std::string kHeaderLine =
    R"({"pair":{"destination":"/dst","hash":"sha256","kind":"tree","source":"/src"},"t":"header"})";
const std::string kHash(64, 'b');

std::string record_line(const std::string& path, const std::string& t = "v") {
  return R"({"ct":5,"h":")" + kHash + R"(","i":3,"m":-4,"p":")" + path + R"(","s":42,"t":")" + t + "\"}";
}

JournalRecord rec(std::uint64_t size) {
  JournalRecord r;
  r.hash = kHash;
  r.size = size;
  r.ino = 3;
  r.mtime_ns = -4;
  r.ctime_ns = 5;
  r.verified = true;
  return r;
}

TEST(MigrateJournal, RecordsForgetsAndNonUtf8PathsSurviveReopening) {
  test::TempDir dir;
  const std::string odd("caf\xe9\0x", 6);
  {
    Journal j(dir.path(), kPair, false);
    EXPECT_FALSE(j.resumed());
    j.record({{"a.csv", rec(1)}, {odd, rec(2)}, {"gone", rec(3)}});
    j.forget({"gone"});
    j.note({{"pass", 1}});
  }
  Journal again(dir.path(), kPair, false);
  EXPECT_TRUE(again.resumed());
  ASSERT_EQ(again.files().size(), 2u);
  EXPECT_EQ(again.files().at(odd).size, 2u);
  const JournalRecord& a = again.files().at("a.csv");
  EXPECT_EQ(a.hash, kHash);
  EXPECT_EQ(a.ino, 3u);
  EXPECT_EQ(a.mtime_ns, -4);
  EXPECT_EQ(a.ctime_ns, 5);
  EXPECT_TRUE(a.verified);
  EXPECT_EQ(again.verified_count(), 2u);
}

TEST(MigrateJournal, ALastLineCutShortIsCutOffAndTheNextRecordIsNotLost) {
  // The record appended after a kill -9 mid-line used to be glued onto the
  // cut-short line and lost at the next resume.
  test::TempDir dir;
  const std::string whole = kHeaderLine + "\n" + record_line("a.csv") + "\n";
  const std::string cut = record_line("b.csv").substr(0, 30);
  test::write_file(dir / "journal.jsonl", whole + cut);
  {
    Journal j(dir.path(), kPair, false);
    EXPECT_EQ(j.files().size(), 1u);
    EXPECT_EQ(test::read_file(dir / "journal.jsonl"), whole);
    j.record({{"c.csv", rec(7)}});
  }
  Journal again(dir.path(), kPair, false);
  EXPECT_EQ(again.files().size(), 2u);
  EXPECT_EQ(again.files().count("c.csv"), 1u);
  EXPECT_EQ(again.files().count("b.csv"), 0u);

  // A header cut short (kill -9 at the very start) leaves an empty journal.
  test::TempDir dir2;
  test::write_file(dir2 / "journal.jsonl", kHeaderLine.substr(0, 20));
  Journal fresh(dir2.path(), kPair, false);
  EXPECT_FALSE(fresh.resumed());
  EXPECT_EQ(test::read_file(dir2 / "journal.jsonl"), kHeaderLine + "\n");
}

TEST(MigrateJournal, EveryDamagedLineIsOneIoErrorNamingTheLine) {
  const std::string secret_path = "tenant-42-salaries.csv";
  struct Case {
    std::string lines;  // after the header line (line 1)
    std::string why;
    int line;
  };
  const std::vector<Case> cases = {
      {"[1]\n", "not a JSON object", 2},
      {"\"text\"\n", "not a JSON object", 2},
      {"7\n", "not a JSON object", 2},
      {record_line(secret_path) + "\n{\"t\":\"c\",\"p\":\n", "not JSON", 3},
      {"{\"p\":\"a\"}\n", "no record type", 2},
      {"{\"t\":5,\"p\":\"a\"}\n", "no record type", 2},
      {"{\"t\":\"q\",\"p\":\"" + secret_path + "\"}\n", "unknown record type", 2},
      {"{\"t\":\"x\"}\n", "no path", 2},
      {"{\"t\":\"x\",\"p\":\"a\",\"p_hex\":\"61\"}\n", "no path or two", 2},
      {"{\"t\":\"x\",\"p\":7}\n", "\"p\" is not a string", 2},
      {"{\"t\":\"x\",\"p_hex\":\"6g\"}\n", "\"p_hex\" is not hex", 2},
      {"{\"t\":\"x\",\"p\":\"\"}\n", "empty path", 2},
      {R"({"ct":5,"h":7,"i":3,"m":1,"p":"a","s":42,"t":"v"})" "\n", "\"h\"", 2},
      {R"({"ct":5,"h":"ab","i":3,"m":1,"p":"a","s":42,"t":"v"})" "\n", "\"h\"", 2},
      {R"({"ct":5,"h":")" + std::string(64, 'B') + R"(","i":3,"m":1,"p":"a","s":42,"t":"v"})" "\n", "\"h\"", 2},
      {R"({"ct":5,"h":")" + kHash + R"(","i":3,"m":1,"p":"a","s":-42,"t":"v"})" "\n", "\"s\"", 2},
      {R"({"ct":5,"h":")" + kHash + R"(","i":3,"m":1,"p":"a","s":4.5,"t":"v"})" "\n", "\"s\"", 2},
      {R"({"ct":5,"h":")" + kHash + R"(","i":"3","m":1,"p":"a","s":4,"t":"v"})" "\n", "\"i\"", 2},
      {R"({"ct":5,"h":")" + kHash + R"(","i":3,"m":18446744073709551615,"p":"a","s":4,"t":"v"})" "\n", "\"m\"", 2},
      {R"({"h":")" + kHash + R"(","i":3,"m":1,"p":"a","s":4,"t":"c"})" "\n", "\"ct\"", 2},
      {kHeaderLine + "\n", "a second header", 2},
  };
  for (const auto& c : cases) {
    test::TempDir dir;
    const std::string text = kHeaderLine + "\n" + c.lines;
    test::write_file(dir / "journal.jsonl", text);
    try {
      Journal j(dir.path(), kPair, false);
      ADD_FAILURE() << "opened a journal with " << c.lines;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(e.code(), Errc::io) << msg;
      EXPECT_NE(msg.find("resume journal is damaged"), std::string::npos) << msg;
      EXPECT_NE(msg.find("line " + std::to_string(c.line) + ":"), std::string::npos) << msg;
      EXPECT_NE(msg.find(c.why), std::string::npos) << msg;
      EXPECT_NE(e.info().hint.find("--restart"), std::string::npos) << msg;
      EXPECT_EQ(msg.find(secret_path), std::string::npos) << "a path's bytes in the message: " << msg;
    }
    EXPECT_EQ(test::read_file(dir / "journal.jsonl"), text) << "a refused journal was changed";
  }
}

TEST(MigrateJournal, RecordsWithoutAHeaderAreDamageAndAnotherPairIsRefused) {
  test::TempDir dir;
  test::write_file(dir / "journal.jsonl", record_line("a.csv") + "\n" + kHeaderLine + "\n");
  try {
    Journal j(dir.path(), kPair, false);
    ADD_FAILURE() << "accepted records before the header";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find("line 1: records before the header"), std::string::npos) << e.what();
  }

  test::TempDir other;
  test::write_file(other / "journal.jsonl", kHeaderLine + "\n" + record_line("a.csv") + "\n");
  json pair = kPair;
  pair["hash"] = "sm3";
  try {
    Journal j(other.path(), pair, false);
    ADD_FAILURE() << "opened another pair's journal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused) << e.what();
  }
  // --restart forgets a damaged journal.
  test::write_file(dir / "journal.jsonl", "garbage\n");
  Journal restarted(dir.path(), kPair, true);
  EXPECT_FALSE(restarted.resumed());
  EXPECT_EQ(test::read_file(dir / "journal.jsonl"), kHeaderLine + "\n");
}

}  // namespace
}  // namespace dlc::migrate
