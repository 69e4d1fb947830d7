// Labels manifests (docs/formats/labels.md), written by `dlc classify --label`
// and read by `dlc migrate --labels` for residency decisions (the reader is
// migrate::check_residency). The text "@SRC@" in an input is replaced by the
// sample tree's path, so that seeds written by fuzz_seed_gen name its files.
#include "residency_fixture.h"

using namespace dlc;
namespace fs = std::filesystem;

namespace {
fs::path g_policy, g_labels;

// docs/formats/residency-policy.md's example.
constexpr std::string_view kPolicy = R"({
  "format": "dlc-residency-policy/1",
  "name": "cn-financial-2026",
  "locations": {"cn": ["cn-*", "bj-*", "sh-*"], "hk": ["ap-east-1", "hk-*"], "anywhere": ["*"]},
  "default": "deny",
  "unlabelled": "refuse",
  "rules": [
    {"id": "pi-stays-in-cn", "when": {"personal_information": true}, "allow": ["cn"]},
    {"id": "level3-stays-in-cn", "when": {"min_level": 3}, "allow": ["cn"]},
    {"id": "public", "when": {"max_level": 2, "personal_information": false}, "allow": ["anywhere"]}
  ],
  "exceptions": [
    {"assessment_id": "CAC-SA-2026-0042", "expires": "2027-06-30", "rules": ["pi-stays-in-cn"],
     "allow": ["hk"], "paths": ["sub/*"], "note": "cross-border transfer assessment, HK branch"}
  ]
})";
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const fs::path dir = fuzz::fresh_dir("labels");
  g_policy = dir / "policy.json";
  g_labels = dir / "labels.json";
  fuzz::write_file(g_policy, kPolicy, 0644);
  (void)fuzz::residency_fixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(fuzz::as_view(data, size));
  const std::string src = fuzz::residency_fixture().src.string();
  for (std::size_t at; (at = text.find("@SRC@")) != std::string::npos;) text.replace(at, 5, src);
  fuzz::write_file(g_labels, text, 0644);
  fuzz::check_residency_every_way(g_policy, g_labels);
  return 0;
}
