// The residency policy engine (JR/T 0167-2020 9.5d, docs/formats/residency-policy.md):
// named location groups, rules per level / category / personal information,
// default deny, exceptions that carry a security-assessment id and an expiry.
// Every file must be allowed in the destination's region by every rule that
// applies to it; reasons are masked (levels, categories, type names, counts).
#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <utility>

#include "classify/classify.h"
#include "core/error.h"
#include "core/text.h"
#include "migrate/migrate.h"

namespace dlc::migrate {

using nlohmann::json;

namespace {

struct When {
  std::optional<int> min_level, max_level;
  std::optional<bool> pi;
  std::vector<std::string> categories, types, paths;
};

struct Rule {
  std::string id;
  When when;
  std::vector<std::string> allow;  // group names
};

struct Exception {
  std::string assessment_id, expires, note;
  std::vector<std::string> rules;  // rule ids it relaxes (empty: all, and the default)
  std::vector<std::string> allow;  // extra groups
  std::vector<std::string> paths;  // globs on the relative path (empty: all)
};

struct Policy {
  std::string name;
  std::map<std::string, std::vector<std::string>> locations;
  bool default_allow = false;
  std::vector<std::string> default_groups;  // "default": {"allow": [...]} form
  std::string unlabelled = "refuse";        // refuse | classify
  std::vector<Rule> rules;
  std::vector<Exception> exceptions;
};

[[noreturn]] void bad_policy(const fs::path& p, const std::string& detail) {
  throw Error(Errc::usage, "invalid residency policy", p.string(), detail,
              "see docs/formats/residency-policy.md");
}

std::vector<std::string> strings(const json& j, const fs::path& p, const char* what) {
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) bad_policy(p, std::string(what) + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& s : j) {
    if (!s.is_string()) bad_policy(p, std::string(what) + " must be a list of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

When parse_when(const json& j, const fs::path& p) {
  When w;
  if (!j.is_object()) bad_policy(p, "\"when\" must be an object");
  for (const auto& [k, v] : j.items()) {
    if (k == "min_level") w.min_level = v.get<int>();
    else if (k == "max_level") w.max_level = v.get<int>();
    else if (k == "personal_information") w.pi = v.get<bool>();
    else if (k == "categories") w.categories = strings(v, p, "categories");
    else if (k == "types") w.types = strings(v, p, "types");
    else if (k == "paths") w.paths = strings(v, p, "paths");
    else bad_policy(p, "unknown condition \"" + k + "\"");
  }
  return w;
}

Policy load_policy(const fs::path& p, std::string* sha) {
  const std::string text = verify::read_text_file(p);
  *sha = crypto::to_hex(crypto::sha256(text));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    bad_policy(p, e.what());
  }
  Policy pol;
  try {
    if (j.value("format", std::string()) != kPolicyFormat)
      bad_policy(p, "\"format\" must be \"" + std::string(kPolicyFormat) + "\"");
    pol.name = j.value("name", p.filename().string());
    for (const auto& [g, pats] : j.at("locations").items())
      pol.locations[g] = strings(pats, p, "a location group");
    if (auto d = j.find("default"); d != j.end()) {
      if (d->is_string()) {
        if (*d == "allow") pol.default_allow = true;
        else if (*d != "deny") bad_policy(p, "\"default\" must be \"deny\", \"allow\" or {\"allow\": [groups]}");
      } else if (d->is_object()) {
        pol.default_groups = strings(d->at("allow"), p, "default.allow");
      } else {
        bad_policy(p, "\"default\" must be \"deny\", \"allow\" or {\"allow\": [groups]}");
      }
    }
    pol.unlabelled = j.value("unlabelled", std::string("refuse"));
    if (pol.unlabelled != "refuse" && pol.unlabelled != "classify")
      bad_policy(p, "\"unlabelled\" must be \"refuse\" or \"classify\"");
    std::set<std::string> ids;
    for (const auto& r : j.value("rules", json::array())) {
      Rule rule;
      rule.id = r.at("id").get<std::string>();
      if (!ids.insert(rule.id).second) bad_policy(p, "rule id \"" + rule.id + "\" repeats");
      rule.when = parse_when(r.value("when", json::object()), p);
      rule.allow = strings(r.at("allow"), p, "allow");
      pol.rules.push_back(std::move(rule));
    }
    for (const auto& e : j.value("exceptions", json::array())) {
      Exception x;
      x.assessment_id = e.at("assessment_id").get<std::string>();
      x.expires = e.at("expires").get<std::string>();
      if (x.expires.size() != 10 || x.expires[4] != '-' || x.expires[7] != '-')
        bad_policy(p, "exception " + x.assessment_id + ": \"expires\" must be YYYY-MM-DD");
      x.note = e.value("note", std::string());
      if (e.contains("rules")) x.rules = strings(e["rules"], p, "rules");
      x.allow = strings(e.at("allow"), p, "allow");
      if (e.contains("paths")) x.paths = strings(e["paths"], p, "paths");
      for (const auto& r : x.rules)
        if (!ids.count(r)) bad_policy(p, "exception " + x.assessment_id + " names unknown rule " + r);
      pol.exceptions.push_back(std::move(x));
    }
  } catch (const json::exception& e) {
    bad_policy(p, e.what());
  }
  auto check_groups = [&](const std::vector<std::string>& gs, const std::string& where) {
    for (const auto& g : gs)
      if (!pol.locations.count(g)) bad_policy(p, where + " names unknown location group \"" + g + "\"");
  };
  for (const auto& r : pol.rules) check_groups(r.allow, "rule " + r.id);
  for (const auto& x : pol.exceptions) check_groups(x.allow, "exception " + x.assessment_id);
  check_groups(pol.default_groups, "default");
  return pol;
}

bool glob(const std::string& pattern, const std::string& s) {
  return ::fnmatch(pattern.c_str(), s.c_str(), 0) == 0;
}

bool any_glob(const std::vector<std::string>& pats, const std::string& s) {
  return std::any_of(pats.begin(), pats.end(), [&](const auto& p) { return glob(p, s); });
}

bool matches(const When& w, const Label& l, const std::string& rel) {
  if (w.min_level && l.level < *w.min_level) return false;
  if (w.max_level && l.level > *w.max_level) return false;
  if (w.pi && l.personal_information != *w.pi) return false;
  if (!w.categories.empty() &&
      std::find(w.categories.begin(), w.categories.end(), l.category) == w.categories.end())
    return false;
  if (!w.types.empty()) {
    bool any = false;
    for (const auto& [t, n] : l.types)
      if (n && std::find(w.types.begin(), w.types.end(), t) != w.types.end()) any = true;
    if (!any) return false;
  }
  if (!w.paths.empty() && !any_glob(w.paths, rel)) return false;
  return true;
}

std::string describe(const Label& l) {
  std::string s = "level " + std::to_string(l.level);
  if (l.personal_information) s += ", " + l.category + " personal information";
  std::string types;
  for (const auto& [t, n] : l.types) {
    if (!n) continue;
    if (!types.empty()) types += ", ";
    types += t + " x" + std::to_string(n);
  }
  if (!types.empty()) s += " (" + types + ")";
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

struct LabelRecord {
  Label label;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool classified = false;
};

// A JSON integer that fits T. get<T>() converts a float out of T's range with
// undefined behaviour (an mtime_ns of 1.7e21) and wraps negative numbers.
template <class T>
T integer_member(const json& v, const char* key, const fs::path& p) {
  if (v.is_number_unsigned()) {
    if (const auto x = v.get<std::uint64_t>(); std::in_range<T>(x)) return static_cast<T>(x);
  } else if (v.is_number_integer()) {
    if (const auto x = v.get<std::int64_t>(); std::in_range<T>(x)) return static_cast<T>(x);
  }
  throw Error(Errc::usage, "malformed labels manifest", p.string(),
              std::string("\"") + key + "\" of a file is not an integer in range",
              "write one with 'dlc classify --label FILE'");
}

std::map<std::string, LabelRecord> load_labels(const fs::path& p) {
  const json j = verify::read_json_file(p, "labels manifest");
  if (!j.is_object() || j.value("format", std::string()) != "dlc-labels")
    throw Error(Errc::usage, "not a dlc labels manifest", p.string(), "\"format\" is not \"dlc-labels\"",
                "write one with 'dlc classify --label FILE'");
  std::map<std::string, LabelRecord> out;
  try {
    for (const auto& f : j.at("files")) {
      LabelRecord r;
      r.classified = f.value("status", std::string()) == "classified";
      r.size = f.contains("size") ? integer_member<std::uint64_t>(f["size"], "size", p) : 0;
      r.mtime_ns = f.contains("mtime_ns") ? integer_member<std::int64_t>(f["mtime_ns"], "mtime_ns", p) : 0;
      r.label.level = f.contains("level") ? integer_member<int>(f["level"], "level", p) : 1;
      r.label.category = f.value("category", std::string("none"));
      r.label.personal_information = f.value("personal_information", false);
      const json types = f.contains("types") && f["types"].is_object() ? f["types"] : json::object();
      for (auto it = types.begin(); it != types.end(); ++it)
        r.label.types.emplace_back(it.key(), integer_member<std::uint64_t>(it.value(), "types", p));
      out[f.at("path").get<std::string>()] = std::move(r);
    }
  } catch (const json::exception& e) {
    throw Error(Errc::usage, "malformed labels manifest", p.string(), e.what(),
                "write one with 'dlc classify --label FILE'");
  }
  return out;
}

Label label_of(const classify::FileReport& f) {
  Label l;
  l.level = f.level;
  l.category = std::string(classify::category_name(f.category));
  l.personal_information = f.category != classify::Category::none;
  for (std::size_t t = 0; t < classify::kTypeCount; ++t)
    if (f.counts[t]) l.types.emplace_back(std::string(classify::type_name(static_cast<classify::InfoType>(t))), f.counts[t]);
  return l;
}

}  // namespace

json ResidencyResult::to_json(std::size_t max_listed) const {
  json v = json::array();
  for (const auto& x : violations) {
    if (v.size() >= max_listed) break;
    v.push_back({{"path", x.path}, {"reason", x.reason}});
  }
  return {{"checked", checked},
          {"ok", ok},
          {"policy", policy_name},
          {"policy_sha256", policy_sha256},
          {"region", region},
          {"site", site},
          {"region_source", region_source},
          {"groups", groups},
          {"approvals_used", approvals_used},
          {"files_checked", files_checked},
          {"files_labelled", files_labelled},
          {"files_classified", files_classified},
          {"violations", violations.size()},
          {"listed", v}};
}

ResidencyResult check_residency(const ResidencyInput& in) {
  ResidencyResult r;
  r.checked = true;
  const Policy pol = load_policy(in.policy, &r.policy_sha256);
  r.policy_name = pol.name;
  r.region = in.region;
  r.site = in.site;
  r.region_source = in.region_source;
  const std::string today = in.today.empty() ? today_utc() : in.today;

  // Which approvals apply, and which were given that the policy does not know.
  std::vector<const Exception*> active;
  std::vector<std::string> expired;
  for (const auto& id : in.approvals) {
    bool known = false;
    for (const auto& x : pol.exceptions) {
      if (x.assessment_id != id) continue;
      known = true;
      if (x.expires < today)
        expired.push_back(id + " (expired " + x.expires + ")");
      else
        active.push_back(&x);
    }
    if (!known)
      throw Error(Errc::refused, "approval not found in the residency policy", id,
                  "policy " + pol.name + " records no security assessment with this id",
                  "ask the policy owner to add the completed assessment to the policy's exceptions");
  }

  for (const auto& [g, pats] : pol.locations)
    if (!in.region.empty() && any_glob(pats, in.region)) r.groups.push_back(g);
  auto allowed_by = [&](const std::vector<std::string>& gs) {
    return std::any_of(gs.begin(), gs.end(), [&](const std::string& g) {
      return std::find(r.groups.begin(), r.groups.end(), g) != r.groups.end();
    });
  };

  std::map<std::string, LabelRecord> labels;
  if (in.labels) labels = load_labels(*in.labels);

  // Labels for every file: from the manifest when fresh, else on the fly or refused.
  std::vector<std::optional<Label>> lab(in.files.size());
  std::vector<std::size_t> unlabelled;
  for (std::size_t i = 0; i < in.files.size(); ++i) {
    const auto& e = in.files[i];
    const fs::path abs = in.volume ? in.source_root : (in.source_root / e.path).lexically_normal();
    auto it = labels.find(abs.string());
    if (it != labels.end() && it->second.classified && it->second.size == e.size &&
        (it->second.mtime_ns == 0 || it->second.mtime_ns == e.mtime_ns)) {
      lab[i] = it->second.label;
      ++r.files_labelled;
    } else {
      unlabelled.push_back(i);
    }
  }
  if (!unlabelled.empty() && pol.unlabelled == "classify" && !in.volume) {
    classify::ClassifyOptions co;
    for (std::size_t i : unlabelled) co.inputs.push_back(in.source_root / in.files[i].path);
    const classify::DatasetReport rep = classify::scan(co);
    std::map<std::string, const classify::FileReport*> by_path;
    for (const auto& f : rep.files) by_path[fs::path(f.path).lexically_normal().string()] = &f;
    for (std::size_t i : unlabelled) {
      auto it = by_path.find((in.source_root / in.files[i].path).lexically_normal().string());
      if (it != by_path.end() && it->second->error.empty()) {
        lab[i] = label_of(*it->second);
        ++r.files_classified;
      }
    }
  }

  const std::string where = in.region.empty() ? "an undeclared region" : "region " + in.region +
                                                   " (groups: " + join(r.groups) + ")";
  std::set<std::string> used;
  for (std::size_t i = 0; i < in.files.size(); ++i) {
    const std::string rel = verify::printable(in.volume ? in.source_root.filename().string() : in.files[i].path);
    ++r.files_checked;
    if (!lab[i]) {
      r.violations.push_back({rel, "no current classification label (policy " + pol.name +
                                       " refuses unlabelled data); run 'dlc classify --label'"});
      continue;
    }
    const Label& l = *lab[i];
    std::vector<const Rule*> applicable;
    for (const auto& rule : pol.rules)
      if (matches(rule.when, l, rel)) applicable.push_back(&rule);
    auto relaxed = [&](const std::string& rule_id, std::string* by) {
      for (const Exception* x : active) {
        if (!x->rules.empty() && std::find(x->rules.begin(), x->rules.end(), rule_id) == x->rules.end())
          continue;
        if (!x->paths.empty() && !any_glob(x->paths, rel)) continue;
        if (allowed_by(x->allow)) {
          *by = x->assessment_id;
          return true;
        }
      }
      return false;
    };
    std::string reason;
    if (applicable.empty()) {
      const bool ok = pol.default_allow || allowed_by(pol.default_groups);
      std::string by;
      if (!ok && !relaxed("", &by))
        reason = describe(l) + ": no rule covers it and the default denies " + where;
      else if (!by.empty())
        used.insert(by);
    }
    for (const Rule* rule : applicable) {
      if (allowed_by(rule->allow)) continue;
      std::string by;
      if (relaxed(rule->id, &by)) {
        used.insert(by);
        continue;
      }
      if (!reason.empty()) reason += "; ";
      else reason = describe(l) + ": ";
      reason += "rule " + rule->id + " allows only " + join(rule->allow) + ", destination is " + where;
    }
    if (!reason.empty()) {
      if (!expired.empty()) reason += "; approval " + join(expired) + " no longer applies";
      r.violations.push_back({rel, reason});
    }
  }
  r.approvals_used.assign(used.begin(), used.end());
  r.ok = r.violations.empty();
  return r;
}

}  // namespace dlc::migrate
