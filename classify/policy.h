// The grading policy: for each type its JR/T 0171 category and JR/T 0197
// level, volume rules that raise a file's or dataset's level, and the
// confidence below which candidates are not reported. The built-in default is
// documented in docs/classify.md; a JSON policy file overrides any part of it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "classify/classify.h"

namespace dlc::classify {

struct TypeRule {
  Category category = Category::none;
  int level = 1;
  bool enabled = true;
};

// "at least min_findings findings of category (or above) raise the level to level".
struct VolumeRule {
  Category category = Category::C2;
  std::uint64_t min_findings = 0;
  int level = 4;
};

struct Policy {
  std::string name = "default";
  std::string sha256;  // of the policy file; empty for the built-in one
  std::array<TypeRule, kTypeCount> types{};
  std::vector<VolumeRule> volume;
  double min_confidence = 0.5;

  static Policy builtin();
  // Throws Errc::usage (bad content) or Errc::io (unreadable).
  static Policy load(const std::filesystem::path& file);
  static Policy resolve(const std::optional<std::filesystem::path>& file,
                        const std::optional<double>& min_confidence);

  const TypeRule& rule(InfoType t) const { return types[static_cast<std::size_t>(t)]; }
  // Level and highest category of a set of reported counts, volume rules applied.
  int level_of(const TypeCounts& counts) const;
  Category category_of(const TypeCounts& counts) const;
  nlohmann::json to_json() const;
};

std::string sha256_hex(std::string_view bytes);

}  // namespace dlc::classify
