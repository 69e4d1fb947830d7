// The device-wipe resume journal (wipe/journal.h) read back with numbers of
// the wrong kind (found by tests/fuzz/wipe_journal): a float out of range was
// converted to an integer with undefined behaviour, a negative pass wrapped.
// Each is one Errc::io dlc::Error whose hint says how to start over.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "support/test_support.h"
#include "wipe/journal.h"

namespace dlc::wipe {
namespace {

using nlohmann::json;

json good_journal() {
  JournalData d;
  d.stable_id = "loop:0123";
  d.device = "/dev/loop9";
  d.pin = json::object();
  d.plan = json::object();
  d.seed_hex = std::string(64, '1');
  d.certificate_id = "0f3c2a10-1111-4222-8333-444455556666";
  d.started_at = "2026-11-25T12:00:00.000Z";
  d.pass = 1;
  d.offset = 4096;
  d.phase = "write";
  d.bytes_written = 8192;
  d.pid = 42;
  return d.to_json();
}

TEST(WipeJournal, CountersOfTheWrongKindAreOneError) {
  test::TempDir dir;
  const auto path = dir / "wipe-0123456789abcdef.json";
  test::write_file(path, good_journal().dump());
  const auto ok = Journal::load(path);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->data().offset, 4096u);
  EXPECT_EQ(ok->data().pid, 42);

  for (const json& bad : {json{{"offset", 1.04858e34}}, json{{"offset", -1}}, json{{"offset", 4096.5}},
                          json{{"pass", -1}}, json{{"pass", 4294967296}}, json{{"bytes_written", 1e300}},
                          json{{"pid", 9.3e18}}, json{{"version", 1e300}}, json{{"version", 1.0}}}) {
    json j = good_journal();
    j.update(bad);
    test::write_file(path, j.dump());
    try {
      (void)Journal::load(path);
      ADD_FAILURE() << "loaded a journal with " << bad.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::io) << e.what();
      EXPECT_FALSE(e.info().hint.empty()) << e.what();
    }
  }
}

}  // namespace
}  // namespace dlc::wipe
