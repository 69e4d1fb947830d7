// Internal to wipe/: what every kind of wipe job shares — audit records (one
// lock for the threads of a job), certificate issuance (finished record ->
// link -> signed certificate), and report helpers.
#pragma once

#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/secure_buffer.h"
#include "wipe/certificate.h"
#include "wipe/wipe.h"

namespace dlc::audit {
class AuditLog;
}

namespace dlc::wipe {

class JobAudit {
 public:
  explicit JobAudit(const WipeOptions& opts);  // throws Errc::usage without an audit log
  // Appends one record; returns the link {log, seq, hash}.
  nlohmann::json record(const std::string& command, const std::string& target,
                        const std::string& outcome, const nlohmann::json& details);
  audit::AuditLog& log() { return *log_; }

 private:
  const WipeOptions& opts_;
  audit::AuditLog* log_;
  std::mutex mutex_;
};

// Writes the "finished" audit record, then the certificate linked to it, and
// fills the report's certificate fields. finished_outcome is the audit outcome
// ("ok" or "failed").
void issue_certificate(CertificateInput& in, const WipeOptions& opts, JobAudit& audit,
                       const std::string& command, const std::string& finished_outcome,
                       TargetReport& report);

ProgressSink& progress_of(const WipeOptions& opts);

// The 32-byte random-pattern job seed from the CSPRNG (or the test source).
// Fails closed: an error of the generator, or a constant seed, throws Errc::io
// before anything is written.
SecureBuffer draw_job_seed(const WipeOptions& opts);

// Sets report.outcome/code/error from an exception thrown while wiping.
void record_failure(TargetReport& report, const std::exception& e);

}  // namespace dlc::wipe
