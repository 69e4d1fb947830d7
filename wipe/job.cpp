#include "wipe/job.h"

#include <algorithm>

#include "core/audit_log.h"
#include "core/crypto.h"
#include "core/error.h"

namespace dlc::wipe {

using nlohmann::json;

JobAudit::JobAudit(const WipeOptions& opts) : opts_(opts), log_(opts.audit) {
  if (log_ == nullptr)
    throw Error(Errc::usage, "a wipe needs an audit log", {}, {},
                "every erasure is recorded; pass an AuditLog in WipeOptions::audit");
}

json JobAudit::record(const std::string& command, const std::string& target,
                      const std::string& outcome, const json& details) {
  std::lock_guard lock(mutex_);
  audit::Event ev;
  ev.command = command;
  ev.args = opts_.command_line;
  ev.target = target;
  ev.outcome = outcome;
  ev.details = details;
  audit::Appended a = log_->append(ev);
  return {{"log", log_->path().string()}, {"seq", a.seq}, {"hash", a.hash}};
}

void issue_certificate(CertificateInput& in, const WipeOptions& opts, JobAudit& audit,
                       const std::string& command, const std::string& finished_outcome,
                       TargetReport& report) {
  json details = {{"certificate_id", in.id},
                  {"outcome", in.outcome},
                  {"method", in.method},
                  {"category", std::string(category_name(in.category))},
                  {"bytes_written", in.evidence.bytes_written},
                  {"verification", in.evidence.verification.value("result", "not-performed")}};
  if (!in.interruptions.empty()) details["interruptions"] = in.interruptions.size();
  in.audit = audit.record(command, in.path, finished_outcome, details);
  json cert = build_certificate(in, opts);
  sign_certificate(cert, audit.log().key());
  auto [jp, hp] = write_certificate(cert, certificate_dir(opts));
  report.certificate_id = in.id;
  report.certificate_path = jp;
  report.certificate_html = hp;
  report.evidence["audit"] = in.audit;
}

ProgressSink& progress_of(const WipeOptions& opts) {
  return opts.progress ? *opts.progress : null_progress();
}

SecureBuffer draw_job_seed(const WipeOptions& opts) {
  SecureBuffer seed(32);
  try {
    if (opts.random_source) opts.random_source(seed.span());
    else crypto::random_bytes(seed.span());
  } catch (const std::exception& e) {
    throw Error(Errc::io, "the random number generator failed: nothing was written", {}, e.what(),
                "dlc never falls back to a predictable pattern; check the OpenSSL installation and "
                "the kernel entropy source (getrandom)");
  }
  auto s = seed.span();
  if (std::all_of(s.begin(), s.end(), [&](std::uint8_t b) { return b == s[0]; }))
    throw Error(Errc::io, "the random number generator returned a constant seed: nothing was written", {},
                "32 equal bytes (probability 2^-248 from a working generator)",
                "dlc never writes a predictable 'random' pattern; check the OpenSSL installation and "
                "the kernel entropy source");
  return seed;
}

void record_failure(TargetReport& report, const std::exception& e) {
  if (const auto* de = dynamic_cast<const Error*>(&e)) {
    report.code = de->code();
    report.outcome = de->code() == Errc::interrupted ? "interrupted"
                     : de->code() == Errc::refused   ? "refused"
                                                     : "failed";
  } else {
    report.code = Errc::io;
    report.outcome = "failed";
  }
  report.error = e.what();
}

// ---- Reports --------------------------------------------------------------------------

json to_json(const TargetReport& t) {
  json j = {{"kind", t.kind},         {"path", t.path},         {"outcome", t.outcome},
            {"exit_code", exit_code(t.code)}, {"identity", t.identity}, {"evidence", t.evidence},
            {"warnings", t.warnings}};
  if (!t.id.empty()) j["id"] = t.id;
  if (!t.error.empty()) j["error"] = t.error;
  if (!t.certificate_id.empty()) {
    j["certificate_id"] = t.certificate_id;
    j["certificate"] = t.certificate_path.string();
    j["certificate_html"] = t.certificate_html.string();
  }
  if (!t.children.empty()) {
    j["replicas"] = json::array();
    for (const auto& c : t.children) j["replicas"].push_back(to_json(c));
  }
  return j;
}

Errc worst(const std::vector<TargetReport>& targets) {
  auto rank = [](Errc c) {
    switch (c) {
      case Errc::io: return 6;
      case Errc::auth: return 5;
      case Errc::refused: return 4;
      case Errc::usage: return 3;
      case Errc::interrupted: return 2;
      case Errc::check_failed: return 1;
      case Errc::ok: return 0;
    }
    return 6;
  };
  Errc w = Errc::ok;
  for (const auto& t : targets)
    if (rank(t.code) > rank(w)) w = t.code;
  return w;
}

json JobReport::to_json() const {
  json j = {{"command", command},
            {"started_at", started_at},
            {"finished_at", finished_at},
            {"outcome", std::string(errc_name(code))},
            {"exit_code", exit_code(code)},
            {"targets", json::array()}};
  for (const auto& t : targets) j["targets"].push_back(wipe::to_json(t));
  return j;
}

}  // namespace dlc::wipe
