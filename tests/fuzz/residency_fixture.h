// Shared by the residency-policy and labels-manifest targets: a sample source
// tree, its files as migrate hands them to check_residency, and the residency
// check run the ways `dlc migrate --policy ... [--labels ...] [--approval ...]`
// runs it (trees and volumes, with and without a cited approval).
#pragma once

#include "fuzz_support.h"
#include "migrate/migrate.h"
#include "verify/verify.h"

namespace dlc::fuzz {

struct ResidencyFixture {
  fs::path src;                       // make_sample_tree
  std::vector<verify::Entry> files;   // its regular files, relative paths
};

inline const ResidencyFixture& residency_fixture() {
  static const ResidencyFixture f = [] {
    ResidencyFixture r;
    r.src = scratch() / "residency-src";
    make_sample_tree(r.src);
    for (auto& e : verify::walk_tree(r.src, false))
      if (e.type == verify::EntryType::file) r.files.push_back(std::move(e));
    return r;
  }();
  return f;
}

inline void check_residency_every_way(const fs::path& policy, const std::optional<fs::path>& labels) {
  const ResidencyFixture& fx = residency_fixture();
  for (int way = 0; way < 3; ++way) {
    accept_dlc_errors([&] {
      migrate::ResidencyInput in;
      in.policy = policy;
      in.labels = labels;
      in.source_root = fx.src;
      in.files = fx.files;
      in.region = way == 2 ? "ap-east-1" : "cn-north-1";
      in.site = "bj1";
      in.region_source = "flag";
      in.today = "2026-11-25";
      if (way >= 1) in.approvals = {"CAC-SA-2026-0042"};
      if (way == 2) {  // a volume image, labelled by its path
        in.volume = true;
        in.source_root = fx.src / "a.csv";
        in.files = {fx.files.front()};
      }
      const migrate::ResidencyResult r = migrate::check_residency(in);
      (void)r.to_json(20).dump();
      if (r.ok != r.violations.empty()) fail("residency: ok disagrees with the violations");
    });
  }
}

}  // namespace dlc::fuzz
