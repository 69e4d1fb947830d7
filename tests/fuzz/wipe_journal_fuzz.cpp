// The device-wipe resume journal (wipe/journal.h, docs/wipe.md): what
// `dlc wipe device DEV --resume` reads: Journal::load, the method plan in it
// (MethodPlan::from_json) and the pattern generators it resumes with.
//
// Invariant: a journal that loads saves and loads again to the same data
// (save() only refreshes updated_at and pid).
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "wipe/journal.h"
#include "wipe/pattern.h"

using namespace dlc;
namespace fs = std::filesystem;
using namespace dlc::wipe;
using nlohmann::json;

namespace {
fs::path g_path;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  g_path = fuzz::fresh_dir("journal") / "wipe-0123456789abcdef.json";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::write_file(g_path, fuzz::as_view(data, size));
  std::optional<Journal> j;
  fuzz::accept_dlc_errors([&] { j = Journal::load(g_path); });
  if (!j) return 0;

  fuzz::accept_dlc_errors([&] {
    const MethodPlan plan = MethodPlan::from_json(j->data().plan);
    (void)plan.describe();
    (void)plan.to_json().dump();
    const crypto::Bytes seed = crypto::from_hex(j->data().seed_hex);
    // Resume: the current pass's pattern from the durable offset on.
    for (std::size_t i = 0; i < plan.passes.size() && i < 8; ++i) {
      PatternGenerator gen(plan.passes[i], seed, static_cast<unsigned>(i), 4096);
      std::vector<std::uint8_t> block(4096);
      const std::uint64_t offset = i == j->data().pass ? j->data().offset & ~std::uint64_t{15} : 0;
      gen.fill(offset, block);
      if (gen.first_mismatch(offset, block) != block.size())
        fuzz::fail("a pattern does not match what it just generated");
    }
  });

  json before = j->data().to_json();
  fuzz::accept_dlc_errors([&] {
    j->save();
    const std::optional<Journal> again = Journal::load(g_path);
    if (!again) fuzz::fail("a saved journal is gone");
    json after = again->data().to_json();
    for (json* d : {&before, &after}) {
      d->erase("updated_at");
      d->erase("pid");
    }
    if (before != after) fuzz::fail("journal changed across save and load: " + before.dump() + " vs " + after.dump());
  });
  return 0;
}
