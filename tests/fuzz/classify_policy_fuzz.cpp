// Classification policy files (docs/classify.md, "Policy"): what
// `dlc classify --policy FILE` and `dlc classify mask --policy FILE` parse
// (classify::Policy::load) and then grade and mask a sample tree with.
#include "classify/classify.h"
#include "classify/policy.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;

namespace {
fs::path g_policy, g_src, g_masked;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const fs::path dir = fuzz::fresh_dir("classify-policy");
  g_policy = dir / "policy.json";
  g_src = dir / "src";
  g_masked = dir / "masked.csv";
  fuzz::make_sample_tree(g_src);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::write_file(g_policy, fuzz::as_view(data, size), 0644);
  std::optional<classify::Policy> p;
  fuzz::accept_dlc_errors([&] { p = classify::Policy::load(g_policy); });
  if (!p) return 0;
  (void)p->to_json().dump();
  classify::TypeCounts counts{};
  for (std::size_t t = 0; t < counts.size(); ++t) counts[t] = t * 1000;
  const int level = p->level_of(counts);
  if (level < 1 || level > 5) fuzz::fail("policy grades a level outside 1..5: " + std::to_string(level));
  (void)p->category_of(counts);

  fuzz::accept_dlc_errors([&] {
    classify::ClassifyOptions co;
    co.inputs = {g_src};
    co.policy_file = g_policy;
    co.threads = 1;
    const classify::DatasetReport r = classify::scan(co);
    (void)classify::to_json(r).dump();
  });
  fuzz::accept_dlc_errors([&] {
    classify::MaskOptions mo;
    mo.input = g_src / "a.csv";
    mo.output = g_masked;
    mo.policy_file = g_policy;
    mo.force = true;
    (void)classify::mask_file(mo);
  });
  return 0;
}
