// Certificates of sanitization (docs/formats/certificate.md): what
// `dlc verify certificate CERT [--pubkey] [--render] [--check-audit]` does
// with a file: wipe::verify_certificate, the text and HTML renderings and the
// link into the audit log.
//
// Every input is checked as given, and, when it is a JSON object, re-signed
// with the fixed host key (sign_certificate, canonical file form), so that the
// field checks and renderings run on fuzzed documents that authenticate.
// The audit link is checked against the fixture log the seeds were issued
// under (tests/fuzz/fixtures/wipe-audit.jsonl).
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "wipe/certificate.h"
#include "wipe/wipe.h"

using namespace dlc;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path g_cert, g_log;
std::string g_pem;

void check(std::string_view text) {
  fuzz::write_file(g_cert, text, 0644);
  for (const std::string& pem : {std::string(), g_pem}) {
    fuzz::accept_dlc_errors([&] {
      const wipe::CertificateCheck c = wipe::verify_certificate(g_cert, pem);
      if (c.ok() && !c.problems.empty()) fuzz::fail("certificate ok with problems: " + c.problems.front());
      if (!c.certificate.is_object()) return;
      (void)wipe::render_certificate_text(c.certificate);
      (void)wipe::render_certificate_html(c.certificate);
      (void)wipe::check_audit_link(c.certificate, g_log);
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const fs::path dir = fuzz::fresh_dir("certificate");
  g_cert = dir / "cert.json";
  g_log = dir / "audit.jsonl";
  fuzz::write_file(g_log, fuzz::read_file(fuzz::fixtures_dir() / "wipe-audit.jsonl"));
  fuzz::write_file(audit::head_path(g_log), fuzz::read_file(fuzz::fixtures_dir() / "wipe-audit.jsonl.head"));
  g_pem = fuzz::host_public_pem();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  check(text);
  json cert = json::parse(text.begin(), text.end(), nullptr, false);
  if (!cert.is_object()) return 0;
  fuzz::accept_dlc_errors([&] {
    wipe::sign_certificate(cert, fuzz::host_key());
    check(wipe::certificate_file_text(cert));
  });
  return 0;
}
