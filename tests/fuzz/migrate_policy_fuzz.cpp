// Residency policies (docs/formats/residency-policy.md): what `dlc migrate
// --policy FILE` parses and evaluates before a byte moves
// (migrate::check_residency), against the labels manifest of a sample tree
// written by the real classifier.
#include "classify/classify.h"
#include "residency_fixture.h"

using namespace dlc;
namespace fs = std::filesystem;

namespace {
fs::path g_policy, g_labels;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const fs::path dir = fuzz::fresh_dir("policy");
  g_policy = dir / "policy.json";
  g_labels = dir / "labels.json";
  classify::ClassifyOptions co;
  co.inputs = {fuzz::residency_fixture().src};
  co.threads = 1;
  co.hash_files = true;
  classify::write_labels(classify::scan(co), {g_labels, false});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::write_file(g_policy, fuzz::as_view(data, size), 0644);
  fuzz::check_residency_every_way(g_policy, g_labels);
  fuzz::check_residency_every_way(g_policy, std::nullopt);
  return 0;
}
