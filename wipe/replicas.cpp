// Replica jobs (every copy of one dataset, one report accounting for each) and
// records of physical destruction (an EraseMethod that performs no I/O).
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "wipe/device_info.h"
#include "wipe/erase_method.h"
#include "wipe/job.h"
#include "wipe/util.h"
#include "wipe/wipe.h"

namespace dlc::wipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Physical destruction (or degaussing) done by other equipment and attested
// by people: evidence is what they state; nothing is written anywhere.
class DestructionRecordMethod final : public EraseMethod {
 public:
  DestructionRecordMethod(std::string method, std::string details)
      : method_(std::move(method)), details_(std::move(details)) {}
  std::string name() const override { return method_; }
  // NIST SP 800-88: degaussing is Purge (magnetic media only); shredding,
  // disintegrating, pulverizing, incinerating and melting are Destroy.
  Category category() const override {
    return method_ == "degauss" ? Category::purge : Category::destroy;
  }
  std::string technique() const override {
    return "physical " + method_ + " (attested by the operator" +
           std::string(details_.empty() ? "" : "; " + details_) + "); no I/O by dlc";
  }
  bool supports(const EraseTarget& t, std::string* why_not) const override {
    if (t.kind != "physical") {
      if (why_not) *why_not = "a destruction record applies to physical media only";
      return false;
    }
    return true;
  }
  Evidence run(EraseContext&) override {
    Evidence ev;
    ev.technique = "destruction-record";
    ev.verification = {{"method", "other"},
                       {"result", "attested"},
                       {"detail", "destruction attested by the operator and the witness named in "
                                  "this certificate; dlc performed no I/O and cannot observe it"}};
    ev.extra = {{"destruction_method", method_}, {"details", details_}};
    return ev;
  }

 private:
  std::string method_, details_;
};

const std::vector<std::string> kDestroyMethods = {"shred",      "disintegrate", "pulverize",
                                                  "incinerate", "melt",         "degauss"};

}  // namespace

std::unique_ptr<EraseMethod> make_destruction_record(const std::string& method,
                                                     const std::string& details) {
  return std::make_unique<DestructionRecordMethod>(method, details);
}

JobReport wipe_replicas(const fs::path& list, const WipeOptions& opts) {
  JobReport report;
  report.command = "wipe replicas";
  report.started_at = now_rfc3339(3);
  json doc;
  {
    std::ifstream in(list);
    if (!in) throw_errno("cannot read the replica list", list.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
      doc = json::parse(ss.str());
    } catch (const std::exception& e) {
      throw Error(Errc::usage, "the replica list is not valid JSON", list.string(), e.what(),
                  "see docs/wipe.md, \"Replica lists\"");
    }
  }
  if (!doc.is_object() || !doc.contains("replicas") || !doc["replicas"].is_array() ||
      doc["replicas"].empty())
    throw Error(Errc::usage, "the replica list has no \"replicas\" array", list.string(), {},
                "see docs/wipe.md, \"Replica lists\"");
  // Members dlc reads must have their documented type: a number or an object
  // where a string belongs is a clear usage error, never a JSON exception.
  auto strings_only = [&](const json& obj, std::initializer_list<const char*> keys,
                          const std::string& where) {
    for (const char* k : keys)
      if (obj.contains(k) && !obj[k].is_string())
        throw Error(Errc::usage, std::string("\"") + k + "\" must be a string in " + where,
                    list.string(), {}, "see docs/wipe.md, \"Replica lists\"");
  };
  strings_only(doc, {"dataset", "tenant"}, "the replica list");
  std::size_t n = 0;
  for (const auto& r : doc["replicas"]) {
    ++n;
    if (r.is_object()) strings_only(r, {"kind", "path", "host", "id"}, "replica " + std::to_string(n));
  }
  const std::string dataset = doc.value("dataset", "");
  if (dataset.empty())
    throw Error(Errc::usage, "the replica list names no \"dataset\"", list.string(), {},
                "give the dataset the replicas belong to");
  std::set<std::string> ids;
  for (const auto& r : doc["replicas"]) {
    if (!r.is_object() || r.value("path", "").empty() || r.value("kind", "").empty())
      throw Error(Errc::usage, "every replica needs \"kind\" and \"path\"", list.string(),
                  r.dump());
    std::string id = r.value("id", r.value("path", ""));
    if (!ids.insert(id).second)
      throw Error(Errc::usage, "duplicate replica id", id, list.string());
  }

  WipeOptions o = opts;
  if (o.cert.tenant.empty()) o.cert.tenant = doc.value("tenant", "");
  if (o.cert.source.empty()) o.cert.source = "dataset " + dataset;
  JobAudit audit(o);
  audit.record("wipe replicas", dataset, "started",
               {{"list", list.string()}, {"replicas", doc["replicas"].size()}});

  TargetReport set;
  set.kind = "replica-set";
  set.path = list.string();
  set.id = dataset;
  const std::string started = now_rfc3339(3);
  const std::string me = host_name();
  json accounts = json::array();
  std::size_t wiped = 0, failed = 0, unreachable = 0;
  for (const auto& r : doc["replicas"]) {
    const std::string kind = r.value("kind", "");
    const std::string path = r.value("path", "");
    const std::string host = r.value("host", "");
    TargetReport child;
    child.kind = kind;
    child.path = path;
    child.id = r.value("id", path);
    std::error_code ec;
    if (!host.empty() && host != me && host != "localhost") {
      child.outcome = "unreachable";
      child.code = Errc::io;
      child.error = "replica is on host " + host + ", not on this host (" + me +
                    "); run dlc there and keep its certificate with this report";
    } else if (kind != "file" && kind != "dir" && kind != "device") {
      child.outcome = "unreachable";
      child.code = Errc::io;
      child.error = "replica kind '" + kind + "' cannot be wiped by dlc here (file, dir, device)";
    } else if (!fs::exists(fs::symlink_status(path, ec)) || ec) {
      child.outcome = "unreachable";
      child.code = Errc::io;
      child.error = "replica path does not exist or cannot be reached: " + path;
    } else {
      try {
        JobReport jr = kind == "file" ? wipe_files({path}, o)
                       : kind == "dir" ? wipe_dir(path, o)
                                       : wipe_devices({path}, o);
        TargetReport t = std::move(jr.targets.at(0));
        t.id = child.id;
        child = std::move(t);
        if (child.outcome == "sanitized") child.outcome = "wiped";
      } catch (const std::exception& e) {
        record_failure(child, e);
      }
    }
    if (child.outcome == "wiped") ++wiped;
    else if (child.outcome == "unreachable") ++unreachable;
    else ++failed;
    json acc = {{"id", child.id}, {"kind", kind}, {"path", path}, {"outcome", child.outcome}};
    if (!host.empty()) acc["host"] = host;
    if (!child.certificate_id.empty()) acc["certificate_id"] = child.certificate_id;
    if (!child.error.empty()) acc["error"] = child.error;
    accounts.push_back(acc);
    set.children.push_back(std::move(child));
  }
  const bool all = wiped == doc["replicas"].size();
  set.outcome = all ? "sanitized" : "failed";
  set.code = all ? Errc::ok : worst(set.children);
  if (set.code == Errc::ok && !all) set.code = Errc::io;
  if (!all)
    set.error = std::to_string(failed) + " replica(s) failed and " + std::to_string(unreachable) +
                " unreachable of " + std::to_string(doc["replicas"].size()) +
                ": the dataset is NOT fully erased";
  set.identity = {{"dataset", dataset}, {"tenant", o.cert.tenant}, {"replicas", doc["replicas"].size()}};
  set.evidence = {{"replicas", accounts},
                  {"wiped", wiped},
                  {"failed", failed},
                  {"unreachable", unreachable}};

  // One signed report for the whole set (a certificate of kind replica-set).
  try {
    CertificateInput in;
    in.id = util::random_uuid();
    in.target_kind = "replica-set";
    in.path = list.string();
    in.media = set.identity;
    in.media_type = "dataset";
    in.category = Category::clear;
    in.method = o.method;
    in.technique = "every replica of the dataset wiped by its own method and certificate";
    in.evidence.verification = {{"method", "per replica"},
                                {"result", all ? "passed" : "failed"},
                                {"detail", std::to_string(wiped) + " of " +
                                               std::to_string(doc["replicas"].size()) + " replicas wiped"}};
    in.evidence.extra = set.evidence;
    in.outcome = all ? "sanitized" : "failed";
    in.started_at = started;
    in.finished_at = now_rfc3339(3);
    in.replica = {{"dataset", dataset}, {"replicas", accounts}};
    issue_certificate(in, o, audit, "wipe replicas", all ? "ok" : "failed", set);
  } catch (const std::exception& e) {
    record_failure(set, e);
  }
  report.targets.push_back(std::move(set));
  report.code = worst(report.targets);
  report.finished_at = now_rfc3339(3);
  return report;
}

JobReport record_destruction(const DestructionRecord& rec, const WipeOptions& opts) {
  JobReport report;
  report.command = "wipe record-destruction";
  report.started_at = now_rfc3339(3);
  if (std::find(kDestroyMethods.begin(), kDestroyMethods.end(), rec.method) == kDestroyMethods.end())
    throw Error(Errc::usage, "bad or missing --method", "'" + rec.method + "'", {},
                "use shred, disintegrate, pulverize, incinerate, melt or degauss");
  json media = {{"vendor", rec.make}, {"model", rec.model}, {"serial", rec.serial},
                {"wwn", rec.wwn},     {"size_bytes", rec.size_bytes}};
  std::string media_type = rec.media_type;
  std::string path = rec.device;
  if (!rec.device.empty()) {
    DeviceIdentity id = read_device_identity(rec.device);  // read-only
    media = id.to_json();
    if (!rec.make.empty()) media["vendor"] = rec.make;
    if (!rec.model.empty()) media["model"] = rec.model;
    if (!rec.serial.empty()) media["serial"] = rec.serial;
    if (media_type.empty()) media_type = id.media;
  }
  if (media.value("model", "").empty() && media.value("serial", "").empty())
    throw Error(Errc::usage, "the destroyed medium is not identified", {}, {},
                "give --model and --serial (or --device to read them from a present device)");
  if (media_type.empty()) media_type = "other";
  if (rec.method == "degauss" &&
      (media_type == "ssd" || media_type == "nvme" || media_type == "flash" || media_type == "optical"))
    throw Error(Errc::refused, "refusing to record degaussing of " + media_type + " media", {},
                "degaussing does not sanitize flash or optical media (NIST SP 800-88)",
                "destroy it physically (shred, disintegrate, incinerate) and record that");
  if (path.empty()) path = "physical:" + media.value("model", "") + "/" + media.value("serial", "");

  JobAudit audit(opts);
  auto method = make_destruction_record(rec.method, rec.details);
  EraseTarget target;
  target.kind = "physical";
  target.path = path;
  std::string why;
  if (!method->supports(target, &why)) throw Error(Errc::usage, why);
  EraseContext ctx{target, opts, {}, nullptr, null_progress(), path, nullptr};
  Evidence ev = method->run(ctx);

  TargetReport rep;
  rep.kind = "physical";
  rep.path = path;
  rep.identity = media;
  rep.outcome = "destroyed";
  rep.evidence = {{"method", rec.method}, {"details", rec.details}, {"location", rec.location},
                  {"date", rec.date.empty() ? now_rfc3339(3) : rec.date},
                  {"category", std::string(category_name(method->category()))}};
  if (opts.cert.witness.empty())
    rep.warnings.push_back("no witness recorded: NIST SP 800-88 recommends a second person to "
                           "validate destruction");
  if (rec.method == "degauss")
    rep.warnings.push_back("degaussing is Purge for magnetic media only and leaves most modern "
                           "drives unusable; dlc recorded it, it did not perform or observe it");

  CertificateInput in;
  in.id = util::random_uuid();
  in.target_kind = "physical";
  in.path = path;
  in.media = media;
  in.media_type = media_type;
  in.category = method->category();
  in.method = rec.method;
  in.technique = method->technique();
  in.evidence = ev;
  in.evidence.extra["location"] = rec.location;
  in.evidence.extra["destroyed_at"] = rep.evidence["date"];
  in.outcome = "destroyed";
  in.started_at = rep.evidence["date"].get<std::string>();
  in.finished_at = rep.evidence["date"].get<std::string>();
  in.warnings = rep.warnings;
  WipeOptions o = opts;
  if (o.cert.destination.empty()) o.cert.destination = "destroyed";
  if (o.cert.location.empty()) o.cert.location = rec.location;
  issue_certificate(in, o, audit, "wipe record-destruction", "ok", rep);
  report.targets.push_back(std::move(rep));
  report.code = Errc::ok;
  report.finished_at = now_rfc3339(3);
  return report;
}

}  // namespace dlc::wipe
