// The tenant-exit flow (JR/T 0167-2020 11.3.5): for every dataset of a plan,
// classify -> back up (optional) -> migrate --verify -> wipe the source, its
// replicas and its backups, then one signed exit report. Each finished step
// is saved in a state file, so a re-run continues where it stopped; nothing
// is wiped unless its migration verified and the source is unchanged since.
#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <set>

#include "classify/classify.h"
#include "core/audit_log.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "migrate/migrate.h"
#include "wipe/wipe.h"

namespace dlc::migrate {

using nlohmann::json;

namespace {

[[noreturn]] void bad_plan(const fs::path& p, const std::string& detail) {
  throw Error(Errc::usage, "invalid exit plan", p.string(), detail, "see docs/migrate.md, \"Tenant exit\"");
}

fs::path resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return {};
  const fs::path x(p);
  return x.is_absolute() ? x : (base / x).lexically_normal();
}

// The source must still be what was migrated: same names, types, sizes,
// modes, owners, times and symlink targets as the signed source manifest.
std::vector<std::string> changed_since(const verify::Manifest& m, const fs::path& src) {
  std::vector<std::string> out;
  std::map<std::string, const verify::Entry*> was;
  for (const auto& e : m.entries) was[e.path] = &e;
  std::vector<verify::Entry> now = verify::walk_tree(src, m.xattrs);
  for (const auto& e : now) {
    auto it = was.find(e.path);
    if (it == was.end()) {
      out.push_back(verify::printable(e.path) + " (new)");
      continue;
    }
    const verify::Entry& w = *it->second;
    if (w.type != e.type || (e.type == verify::EntryType::file && w.size != e.size) || w.mode != e.mode ||
        w.uid != e.uid || w.gid != e.gid || (e.type != verify::EntryType::dir && w.mtime_ns != e.mtime_ns) ||
        w.target != e.target)
      out.push_back(verify::printable(e.path));
    was.erase(it);
  }
  for (const auto& [p, e] : was) out.push_back(verify::printable(p) + " (gone)");
  return out;
}

json target_json(const wipe::TargetReport& t) {
  json j = {{"kind", t.kind}, {"path", t.path}, {"outcome", t.outcome}, {"certificate_id", t.certificate_id},
            {"certificate", t.certificate_path.string()}};
  if (!t.error.empty()) j["error"] = t.error;
  if (!t.children.empty()) {
    json c = json::array();
    for (const auto& ch : t.children) c.push_back(target_json(ch));
    j["replicas"] = c;
  }
  return j;
}

// Every member the flow reads must have its documented type (docs/migrate.md,
// "Tenant exit"): a wrong type is one clear error before anything runs, never a
// JSON exception or a negative number wrapped to a huge one mid-way.
void validate_plan_types(const json& plan, const fs::path& path) {
  auto is_strings = [](const json& v) {
    return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); });
  };
  auto check = [&](const json& obj, const std::string& where, std::initializer_list<const char*> strings,
                   std::initializer_list<const char*> string_lists, std::initializer_list<const char*> bools) {
    if (!obj.is_object()) bad_plan(path, where + " must be an object");
    for (const char* k : strings)
      if (obj.contains(k) && !obj[k].is_string()) bad_plan(path, where + ": \"" + k + "\" must be a string");
    for (const char* k : string_lists)
      if (obj.contains(k) && !is_strings(obj[k]))
        bad_plan(path, where + ": \"" + k + "\" must be a list of strings");
    for (const char* k : bools)
      if (obj.contains(k) && !obj[k].is_boolean()) bad_plan(path, where + ": \"" + k + "\" must be true or false");
  };
  check(plan, "the plan", {"format", "tenant", "erase_by", "destination", "policy", "dest_region", "attestation_key"},
        {"approvals"}, {"classify"});
  if (plan.contains("tls")) check(plan["tls"], "\"tls\"", {"cert", "key", "ca", "ciphersuites"}, {"pins"}, {});
  if (plan.contains("wipe")) check(plan["wipe"], "\"wipe\"", {"method", "operator", "organisation", "witness"}, {}, {});
  if (plan.contains("backup") && !plan["backup"].is_null()) {
    check(plan["backup"], "\"backup\"", {"repo", "key_file", "key_command"}, {}, {});
    if (!plan["backup"].contains("repo")) bad_plan(path, "\"backup\" needs a \"repo\"");
  }
  std::size_t n = 0;
  for (const auto& d : plan.at("datasets")) {
    const std::string where = "dataset " + std::to_string(++n);
    check(d, where, {"name", "path", "replicas"}, {"backups"}, {});
    if (d.contains("passes") &&
        !(d["passes"].is_number_unsigned() && d["passes"].get<std::uint64_t>() >= 1 && d["passes"].get<std::uint64_t>() <= 100))
      bad_plan(path, where + ": \"passes\" must be a whole number from 1 to 100");
  }
}

}  // namespace

ExitReport run_exit(const ExitOptions& o) {
  ExitReport rep;
  const std::string text = verify::read_text_file(o.plan);
  json plan;
  try {
    plan = json::parse(text);
  } catch (const json::exception& e) {
    bad_plan(o.plan, e.what());
  }
  if (!plan.is_object() || plan.value("format", std::string()) != kExitPlanFormat)
    bad_plan(o.plan, "\"format\" must be \"" + std::string(kExitPlanFormat) + "\"");
  const fs::path base = fs::absolute(o.plan).parent_path();
  const std::string plan_sha = crypto::to_hex(crypto::sha256(text));
  std::string tenant, erase_by, destination;
  json datasets;
  try {
    tenant = plan.at("tenant").get<std::string>();
    erase_by = plan.at("erase_by").get<std::string>();
    destination = plan.at("destination").get<std::string>();
    datasets = plan.at("datasets");
    if (!datasets.is_array() || datasets.empty()) bad_plan(o.plan, "\"datasets\" must list at least one dataset");
  } catch (const json::exception& e) {
    bad_plan(o.plan, e.what());
  }
  validate_plan_types(plan, o.plan);
  if (destination.rfind("dlc://", 0) != 0) destination = resolve(base, destination).string();
  const std::string today = o.today.empty() ? today_utc() : o.today;
  rep.state_dir = dlc_home() / "exit" / (plan_sha.substr(0, 16));
  const fs::path state_file = rep.state_dir / "state.json";
  json state = json::object();
  std::error_code ec;
  fs::create_directories(rep.state_dir, ec);
  if (ec) throw Error(Errc::io, "cannot create the exit state directory", rep.state_dir.string(), ec.message(),
                      "set DLC_HOME to a writable directory");
  if (fs::exists(state_file, ec)) state = verify::read_json_file(state_file, "exit state");
  auto save = [&] { dlc::write_file_atomic(state_file, state.dump(2) + "\n", 0600, ParentDir::create); };
  auto audit_ev = [&](const std::string& outcome, const std::string& target, const json& d) {
    if (!o.audit) return;
    audit::Event ev;
    ev.command = "exit";
    ev.args = o.command_line;
    ev.target = target;
    ev.outcome = outcome;
    ev.details = d;
    o.audit->append(ev);
  };
  audit_ev("started", tenant, {{"plan_sha256", plan_sha}, {"erase_by", erase_by}, {"destination", destination}});

  const json tls = plan.value("tls", json::object());
  const json wipe_cfg = plan.value("wipe", json::object());
  const json backup_cfg = plan.value("backup", json());
  bool all_done = true, waiting = false;
  Errc worst = Errc::ok;
  auto fail = [&](Errc c) {
    all_done = false;
    if (c == Errc::io || worst == Errc::ok || (worst == Errc::check_failed && c == Errc::refused)) worst = c;
  };
  json out = json::array();
  std::set<std::string> names;
  for (const auto& d : datasets) {
    const std::string name = d.value("name", std::string());
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." || !names.insert(name).second)
      bad_plan(o.plan, "every dataset needs a unique \"name\" without '/'");
    const fs::path src = resolve(base, d.value("path", std::string()));
    if (src.empty()) bad_plan(o.plan, "dataset " + name + " has no \"path\"");
    json& st = state[name];
    if (!st.is_object()) st = json::object();
    json entry = {{"name", name}, {"path", src.string()}};

    // 1. Classify (labels for the residency check).
    std::optional<fs::path> labels;
    if (plan.value("classify", true)) {
      const fs::path lf = rep.state_dir / ("labels-" + name + ".json");
      if (!st.contains("classified") || !fs::exists(lf, ec)) {
        if (!fs::exists(src, ec) && st.value("wiped", false)) {
          // already erased by an earlier run
        } else {
          classify::ClassifyOptions co;
          co.inputs = {src};
          co.hash_files = true;
          const classify::DatasetReport r = classify::scan(co);
          classify::LabelOptions lo;
          lo.manifest = lf;
          classify::write_labels(r, lo);
          st["classified"] = {{"labels", lf.string()}, {"level", r.level},
                              {"category", std::string(classify::category_name(r.category))},
                              {"files", r.files_scanned}};
          save();
        }
      }
      labels = lf;
      entry["classification"] = st["classified"];
    }

    // 2 + 3. Back up and migrate with verification (resumable inside run_migrate).
    if (!st.value("verified", false)) {
      MigrateOptions mo;
      mo.source = src.string();
      mo.destination = destination.rfind("dlc://", 0) == 0 ? destination + "/" + name
                                                              : (fs::path(destination) / name).string();
      mo.verify = true;
      mo.final_pass = true;
      mo.dry_run = o.dry_run;
      mo.passes = d.value("passes", 2u);
      if (plan.contains("policy")) mo.policy = resolve(base, plan["policy"].get<std::string>());
      if (plan.contains("approvals")) mo.approvals = plan["approvals"].get<std::vector<std::string>>();
      mo.labels = labels;
      mo.dest_region = plan.value("dest_region", std::string());
      mo.tls.cert = resolve(base, tls.value("cert", std::string())).string();
      mo.tls.key = resolve(base, tls.value("key", std::string())).string();
      mo.tls.ca = resolve(base, tls.value("ca", std::string())).string();
      mo.tls.pins = tls.value("pins", std::vector<std::string>{});
      mo.tls.ciphersuites = tls.value("ciphersuites", std::string());
      mo.attestation_key = resolve(base, plan.value("attestation_key", std::string())).string();
      if (backup_cfg.is_object()) {
        mo.backup_repo = resolve(base, backup_cfg.at("repo").get<std::string>());
        mo.backup_key.key_file = resolve(base, backup_cfg.value("key_file", std::string())).string();
        mo.backup_key.key_command = backup_cfg.value("key_command", std::string());
        mo.backup_key.prompt = false;
      }
      mo.progress = o.progress;
      mo.audit = o.audit;
      mo.command_line = o.command_line;
      const MigrateReport mr = run_migrate(mo);
      entry["migration"] = {{"outcome", mr.outcome}, {"report", mr.report_path.string()},
                            {"manifest", mr.manifest_path.string()}, {"source_root", mr.source_root},
                            {"dest_root", mr.dest_root}, {"destination", mo.destination}};
      if (mr.outcome == "refused") entry["migration"]["reason"] = mr.refusal;
      if (!mr.residency.violations.empty()) entry["migration"]["residency"] = mr.residency.to_json(50);
      if (mr.backup.is_object()) entry["backup"] = mr.backup;
      if (o.dry_run) {
        entry["preflight"] = mr.preflight.to_json();
        out.push_back(entry);
        all_done = false;
        continue;
      }
      if (mr.outcome != "verified") {
        fail(mr.code == Errc::ok ? Errc::check_failed : mr.code);
        entry["erasure"] = "not attempted: the migration did not verify";
        out.push_back(entry);
        continue;
      }
      st["verified"] = true;
      st["migration"] = entry["migration"];
      if (mr.backup.is_object()) st["backup"] = mr.backup;
      save();
    } else {
      entry["migration"] = st["migration"];
      if (st.contains("backup")) entry["backup"] = st["backup"];
    }
    if (o.dry_run) {
      out.push_back(entry);
      continue;
    }

    // 4. Wipe: only a verified migration of an unchanged source.
    if (!st.value("wiped", false)) {
      const verify::Manifest m = verify::load_manifest(st["migration"]["manifest"].get<std::string>());
      const std::vector<std::string> changed = fs::exists(src, ec) ? changed_since(m, src) : std::vector<std::string>{};
      if (!changed.empty()) {
        st.erase("verified");  // the next run migrates the changes again
        save();
        entry["erasure"] = {{"refused", "the source changed after its migration verified"},
                            {"paths", std::vector<std::string>(changed.begin(), changed.begin() + std::min<std::size_t>(20, changed.size()))}};
        fail(Errc::refused);
        out.push_back(entry);
        continue;
      }
      if (!o.yes) {
        waiting = true;
        all_done = false;
        entry["erasure"] = "awaiting confirmation (--yes)";
        out.push_back(entry);
        continue;
      }
      wipe::WipeOptions wo;
      wo.method = wipe_cfg.value("method", std::string("nist-clear"));
      wo.yes = true;
      wo.audit = o.audit;
      wo.command_line = o.command_line;
      wo.progress = o.progress;
      wo.cert.tenant = tenant;
      wo.cert.source = "tenant exit " + tenant + ", dataset " + name;
      wo.cert.operator_name = wipe_cfg.value("operator", std::string());
      wo.cert.organisation = wipe_cfg.value("organisation", std::string());
      wo.cert.witness = wipe_cfg.value("witness", std::string());
      wo.cert.backed_up = entry.contains("backup") ? "yes" : "unknown";
      if (entry.contains("backup")) wo.cert.backup_location = entry["backup"].value("repo", std::string());
      wo.cert.pre_classification = st.contains("classified")
                                       ? "JR/T 0197 level " + std::to_string(st["classified"].value("level", 1))
                                       : "";
      wo.cert.post_classification = "unclassified";
      wo.cert.destination = "other: returned to tenant, source cleared";
      json erased = st.value("erased", json::array());
      auto run_job = [&](const std::string& key, const std::function<wipe::JobReport()>& job) {
        for (const auto& e : erased)
          if (e.value("key", std::string()) == key && e.value("ok", false)) return true;
        const wipe::JobReport jr = job();
        bool ok = jr.code == Errc::ok;
        for (const auto& t : jr.targets) {
          json tj = target_json(t);
          tj["key"] = key;
          tj["ok"] = ok;
          erased.push_back(tj);
        }
        st["erased"] = erased;
        save();
        if (!ok) fail(jr.code);
        return ok;
      };
      bool ok = true;
      if (fs::exists(src, ec)) ok &= run_job("source", [&] { return wipe::wipe_dir(src.string(), wo); });
      if (d.contains("replicas")) {
        const fs::path list = resolve(base, d["replicas"].get<std::string>());
        ok &= run_job("replicas", [&] { return wipe::wipe_replicas(list, wo); });
      }
      for (const auto& b : d.value("backups", std::vector<std::string>{})) {
        const fs::path bp = resolve(base, b);
        if (fs::exists(bp, ec)) ok &= run_job("backup:" + bp.string(), [&] { return wipe::wipe_dir(bp.string(), wo); });
      }
      if (ok) {
        st["wiped"] = true;
        st["wiped_at"] = dlc::now_rfc3339();
        save();
      }
    }
    entry["erasure"] = st.value("erased", json::array());
    if (st.value("wiped", false)) entry["erased_at"] = st["wiped_at"];
    else all_done = false;
    out.push_back(entry);
  }

  rep.outcome = o.dry_run ? "dry-run" : all_done ? "complete" : (waiting && worst == Errc::ok) ? "awaiting-confirmation" : "incomplete";
  rep.code = o.dry_run || all_done || (waiting && worst == Errc::ok) ? Errc::ok : worst;
  json doc = {{"format", std::string(kExitReportFormat)},
              {"tenant", tenant},
              {"plan", fs::absolute(o.plan).string()},
              {"plan_sha256", plan_sha},
              {"erase_by", erase_by},
              {"destination", destination},
              {"generated_at", dlc::now_rfc3339()},
              {"outcome", rep.outcome},
              {"within_deadline", today <= erase_by},
              {"datasets", out},
              {"tool", std::string("dlc ") + DLC_VERSION}};
  if (today > erase_by && !all_done)
    doc["warning"] = "the agreed erasure deadline " + erase_by + " has passed and erasure is not complete";
  verify::sign_document(doc, audit::HostKey::load_or_create(dlc_home()));
  rep.document = doc;
  rep.report_path = rep.state_dir / "exit-report.json";
  dlc::write_file_atomic(rep.report_path, doc.dump(2) + "\n", 0644, ParentDir::create);
  audit_ev(rep.code == Errc::ok ? (all_done ? "ok" : rep.outcome) : "failed", tenant,
           {{"plan_sha256", plan_sha}, {"outcome", rep.outcome}, {"report", rep.report_path.string()}});
  return rep;
}

}  // namespace dlc::migrate
