// Migration reports (docs/formats/migration-report.md): what `dlc verify
// migration --manifest M DST --report R [--pubkey]` does with a report
// (migrate::verify_migration: signature, cross-check with the manifest, then
// the destination re-read and compared).
//
// Every input is checked as given, and, when it is a JSON object, re-signed
// with the fixed host key (the real sign_document) so that the cross-checks
// behind the signature run on fuzzed reports too.
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "migrate/migrate.h"
#include "verify/verify.h"

using namespace dlc;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path g_report, g_manifest, g_dest;

void check(std::string_view text) {
  fuzz::write_file(g_report, text, 0644);
  for (bool pinned : {false, true}) {
    fuzz::accept_dlc_errors([&] {
      migrate::VerifyMigrationOptions o;
      o.manifest = g_manifest;
      o.destination = g_dest.string();
      o.report = g_report;
      if (pinned) o.pubkey = fuzz::host_key().public_key();
      o.threads = 1;
      const migrate::VerifyMigrationResult r = migrate::verify_migration(o);
      (void)verify::to_json(r.comparison, 20).dump();
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const fs::path dir = fuzz::fresh_dir("report");
  g_report = dir / "report.json";
  g_manifest = dir / "source-manifest.json";
  g_dest = dir / "dest";
  fuzz::make_sample_tree(g_dest);
  verify::ScanOptions so;
  so.root = g_dest;
  so.threads = 1;
  verify::Manifest m = verify::build_manifest(so);
  verify::save_manifest(m, g_manifest, &fuzz::host_key());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  check(text);
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (!doc.is_object()) return 0;
  fuzz::accept_dlc_errors([&] {
    doc.erase("signature");
    verify::sign_document(doc, fuzz::host_key());
    check(doc.dump(2) + "\n");
  });
  return 0;
}
