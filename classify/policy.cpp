#include "classify/policy.h"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dlc::classify {

namespace {

constexpr std::string_view kTypeNames[kTypeCount] = {"resident_id",
                                                     "resident_id_15",
                                                     "uscc",
                                                     "bank_card",
                                                     "mobile",
                                                     "passport",
                                                     "travel_permit",
                                                     "email",
                                                     "ipv4",
                                                     "ipv6",
                                                     "iban",
                                                     "private_key",
                                                     "aws_access_key",
                                                     "alibaba_access_key",
                                                     "tencent_secret_id",
                                                     "jwt",
                                                     "password",
                                                     "secret",
                                                     "cvv",
                                                     "pin"};

std::optional<Category> category_from_name(std::string_view s) {
  if (s == "none") return Category::none;
  if (s == "C1") return Category::C1;
  if (s == "C2") return Category::C2;
  if (s == "C3") return Category::C3;
  return std::nullopt;
}

[[noreturn]] void bad_policy(const std::filesystem::path& file, const std::string& detail) {
  throw Error(Errc::usage, "invalid classification policy", file.string(), detail,
              "see docs/classify.md, \"Policy file\"");
}

// A level is a JSON integer 1..5: get<int>() would truncate 3.5, wrap
// 4294967299 to 3, and convert 1e300 with undefined behaviour.
int level_value(const nlohmann::json& v, const std::filesystem::path& file, const std::string& what) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 5)
    bad_policy(file, what + " must be an integer 1..5");
  return static_cast<int>(v.get<std::int64_t>());
}

}  // namespace

std::string_view type_name(InfoType t) noexcept {
  auto i = static_cast<std::size_t>(t);
  return i < kTypeCount ? kTypeNames[i] : "unknown";
}

std::optional<InfoType> type_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kTypeCount; ++i)
    if (kTypeNames[i] == name) return static_cast<InfoType>(i);
  return std::nullopt;
}

std::string_view category_name(Category c) noexcept {
  switch (c) {
    case Category::C1:
      return "C1";
    case Category::C2:
      return "C2";
    case Category::C3:
      return "C3";
    case Category::none:
      break;
  }
  return "none";
}

Policy Policy::builtin() {
  Policy p;
  auto set = [&](InfoType t, Category c, int level) {
    p.types[static_cast<std::size_t>(t)] = TypeRule{c, level, true};
  };
  using T = InfoType;
  // C2: identifying personal financial information -> level 3.
  for (T t : {T::resident_id, T::resident_id_15, T::bank_card, T::mobile, T::passport,
              T::travel_permit, T::email, T::iban})
    set(t, Category::C2, 3);
  // C3: authentication information -> level 4.
  for (T t : {T::private_key, T::aws_access_key, T::alibaba_access_key, T::tencent_secret_id,
              T::jwt, T::password, T::secret, T::cvv, T::pin})
    set(t, Category::C3, 4);
  // Not personal financial information: internal data -> level 2.
  for (T t : {T::uscc, T::ipv4, T::ipv6}) set(t, Category::none, 2);
  p.volume = {{Category::C2, 10'000, 4}, {Category::C2, 1'000'000, 5}, {Category::C3, 10'000, 5}};
  return p;
}

Policy Policy::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_errno("cannot read classification policy", file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad_policy(file, std::string("not JSON: ") + e.what());
  }
  if (!doc.is_object()) bad_policy(file, "the document must be a JSON object");
  Policy p = builtin();
  p.name = file.filename().string();
  p.sha256 = sha256_hex(text);
  try {
    if (doc.contains("name")) p.name = doc.at("name").get<std::string>();
    if (doc.contains("min_confidence")) {
      p.min_confidence = doc.at("min_confidence").get<double>();
      if (p.min_confidence < 0 || p.min_confidence > 1)
        bad_policy(file, "min_confidence must be within 0..1");
    }
    if (doc.contains("types")) {
      for (const auto& [name, rule] : doc.at("types").items()) {
        auto t = type_from_name(name);
        if (!t) bad_policy(file, "unknown type \"" + name + "\"");
        if (!rule.is_object()) bad_policy(file, "the rule of " + name + " must be a JSON object");
        TypeRule& r = p.types[static_cast<std::size_t>(*t)];
        if (rule.contains("category")) {
          auto c = category_from_name(rule.at("category").get<std::string>());
          if (!c) bad_policy(file, "category of " + name + " must be none, C1, C2 or C3");
          r.category = *c;
        }
        if (rule.contains("level")) r.level = level_value(rule.at("level"), file, "level of " + name);
        if (rule.contains("enabled")) r.enabled = rule.at("enabled").get<bool>();
        if (r.level < 1 || r.level > 5) bad_policy(file, "level of " + name + " must be 1..5");
      }
    }
    if (doc.contains("volume_rules")) {
      p.volume.clear();
      for (const auto& v : doc.at("volume_rules")) {
        VolumeRule r;
        auto c = category_from_name(v.at("category").get<std::string>());
        if (!c || *c == Category::none)
          bad_policy(file, "volume rule category must be C1, C2 or C3");
        r.category = *c;
        if (!v.at("min_findings").is_number_unsigned())
          bad_policy(file, "volume rule min_findings must be a non-negative integer");
        r.min_findings = v.at("min_findings").get<std::uint64_t>();
        r.level = level_value(v.at("level"), file, "volume rule level");
        p.volume.push_back(r);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    bad_policy(file, e.what());
  }
  return p;
}

Policy Policy::resolve(const std::optional<std::filesystem::path>& file,
                       const std::optional<double>& min_confidence) {
  Policy p = file ? load(*file) : builtin();
  if (min_confidence) {
    if (*min_confidence < 0 || *min_confidence > 1)
      throw Error(Errc::usage, "invalid --min-confidence", std::to_string(*min_confidence), {},
                  "give a value between 0 and 1");
    p.min_confidence = *min_confidence;
  }
  return p;
}

int Policy::level_of(const TypeCounts& counts) const {
  int level = 1;
  std::array<std::uint64_t, 4> by_category{};  // at or above: index by Category
  for (std::size_t i = 0; i < kTypeCount; ++i) {
    if (counts[i] == 0) continue;
    const TypeRule& r = types[i];
    level = std::max(level, r.level);
    by_category[static_cast<std::size_t>(r.category)] += counts[i];
  }
  for (const VolumeRule& v : volume) {
    std::uint64_t n = 0;
    for (std::size_t c = static_cast<std::size_t>(v.category); c < 4; ++c) n += by_category[c];
    if (n >= v.min_findings && v.min_findings > 0) level = std::max(level, v.level);
  }
  return level;
}

Category Policy::category_of(const TypeCounts& counts) const {
  Category c = Category::none;
  for (std::size_t i = 0; i < kTypeCount; ++i)
    if (counts[i] > 0 && types[i].category > c) c = types[i].category;
  return c;
}

nlohmann::json Policy::to_json() const {
  nlohmann::json doc = {{"name", name}, {"min_confidence", min_confidence}};
  if (!sha256.empty()) doc["sha256"] = sha256;
  nlohmann::json t = nlohmann::json::object();
  for (std::size_t i = 0; i < kTypeCount; ++i)
    t[std::string(kTypeNames[i])] = {{"category", category_name(types[i].category)},
                                     {"level", types[i].level},
                                     {"enabled", types[i].enabled}};
  doc["types"] = t;
  nlohmann::json v = nlohmann::json::array();
  for (const auto& r : volume)
    v.push_back({{"category", category_name(r.category)},
                 {"min_findings", r.min_findings},
                 {"level", r.level}});
  doc["volume_rules"] = v;
  return doc;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw Error(Errc::io, "cannot compute SHA-256", {}, "OpenSSL EVP_Digest failed");
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

}  // namespace dlc::classify
