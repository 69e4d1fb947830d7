// The audit log writer's reading of an existing log (docs/formats/audit-log.md,
// "Writers"): every dlc command opens $DLC_HOME/audit.jsonl, reads its tail
// backwards (last record, cut-short lines, unsealed records), may append a
// recovery record, appends, seals and rewrites the head file.
//
// Input: LOG [kPartSeparator HEAD]. Invariant: a log that verifies under the
// fixed host key still verifies after this writer (same key) opened it,
// appended an event and sealed it.
#include "core/audit_log.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;

namespace {
fs::path g_dir;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  (void)fuzz::host_key();
  g_dir = fuzz::fresh_dir("audit-writer");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size));
  const fs::path log = g_dir / "audit.jsonl";
  std::error_code ec;
  for (const char* f : {"audit.jsonl", "audit.jsonl.head", "audit.jsonl.writers"}) fs::remove(g_dir / f, ec);
  fuzz::write_file(log, parts[0]);
  if (parts.size() > 1) fuzz::write_file(audit::head_path(log), parts[1], 0644);

  const auto pinned = fuzz::host_key().public_key();
  bool verified_before = false;
  fuzz::accept_dlc_errors([&] { verified_before = audit::verify(log, pinned).ok; });

  bool wrote = false;
  fuzz::accept_dlc_errors([&] {
    audit::AuditLog writer(log, audit::HostKey::load(fuzz::host_key().path()));
    audit::Event e;
    e.command = "fuzz append";
    e.args = {"dlc", "fuzz", "--passphrase", "hunter2"};
    e.target = "/dev/null";
    e.outcome = "ok";
    e.details = {{"n", 1}};
    writer.append(e);
    writer.checkpoint();
    wrote = true;
  });

  if (verified_before && wrote) {
    const audit::VerifyReport after = audit::verify(log, pinned);
    if (!after.ok)
      fuzz::fail("a log that verified no longer verifies after a writer extended it: " +
                 after.problem);
  }
  return 0;
}
