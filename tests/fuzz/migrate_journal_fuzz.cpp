// The migration resume journal (migrate/journal.h, docs/migrate.md "Resume"):
// <state>/journal.jsonl as `dlc migrate` reads it when it resumes.
//
// A damaged journal must be one dlc::Error (Errc::io; Errc::refused for
// another pair's journal) that leaves the file as it was. Invariant: what the
// journal records after loading is what it loads next time (records survive,
// forgotten paths stay forgotten), also after a last line cut short by kill -9.
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "migrate/journal.h"

using namespace dlc;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
fs::path g_dir;
// The pair seeds were written for (fuzz_seed_gen uses the same header).
const json kHeader = {{"source", "/src"}, {"destination", "/dst"}, {"kind", "tree"}, {"hash", "sha256"}};
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  g_dir = fuzz::fresh_dir("migrate-journal");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path file = g_dir / "journal.jsonl";
  fuzz::write_file(file, fuzz::as_view(data, size));
  std::map<std::string, migrate::JournalRecord> expected;
  bool opened = false;
  try {
    migrate::Journal j(g_dir, kHeader, false);
    (void)j.verified_count();
    migrate::JournalRecord r;
    r.hash = std::string(64, 'a');
    r.size = 7;
    r.ino = 9;
    r.mtime_ns = 1764077900123456789;
    r.ctime_ns = -1;
    r.verified = true;
    j.record({{"new/file", r}, {std::string("bad\xff\x00name", 10), r}});
    j.forget({"a.csv"});
    j.note({{"finished", "fuzz"}});
    expected = j.files();
    opened = true;
  } catch (const Error& e) {
    // A journal of another pair is refused, a damaged one is an I/O error
    // whose hint is --restart; and a refused journal is left as it was.
    if (e.code() != Errc::io && e.code() != Errc::refused)
      fuzz::fail(std::string("journal: unexpected error kind: ") + e.what());
    if (fuzz::read_file(file) != fuzz::as_view(data, size)) fuzz::fail("a refused journal was changed");
  }
  if (!opened) return 0;
  // Every line is complete (a cut-short last line was cut off before appending).
  const std::string text = fuzz::read_file(file);
  if (text.empty() || text.back() != '\n') fuzz::fail("the journal does not end with a complete line");
  migrate::Journal again(g_dir, kHeader, false);
  if (again.files().size() != expected.size()) fuzz::fail("journal records changed across reopening");
  for (const auto& [path, r] : expected) {
    auto it = again.files().find(path);
    if (it == again.files().end() || it->second.hash != r.hash || it->second.size != r.size ||
        it->second.ino != r.ino || it->second.mtime_ns != r.mtime_ns || it->second.ctime_ns != r.ctime_ns ||
        it->second.verified != r.verified)
      fuzz::fail("journal record of " + path + " changed across reopening");
  }
  return 0;
}
