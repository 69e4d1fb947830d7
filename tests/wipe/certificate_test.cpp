// Certificates: signed, canonical, every changed byte detected, pinned keys,
// NIST SP 800-88 fields, renderings.
#include <gtest/gtest.h>

#include "core/audit_log.h"
#include "support/test_support.h"
#include "wipe/certificate.h"
#include "wipe/wipe.h"

using namespace dlc;
using namespace dlc::wipe;
using dlc::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json sample_cert(const WipeOptions& opts) {
  CertificateInput in;
  in.id = "0f3c2a10-1111-4222-8333-444455556666";
  in.target_kind = "device";
  in.path = "/dev/loop9";
  in.media = {{"vendor", "ACME"}, {"model", "Disk 9000"}, {"serial", "SN123"}, {"size_bytes", 1 << 20}};
  in.media_type = "hdd";
  in.category = Category::clear;
  in.method = "nist-clear";
  in.technique = "overwrite; nist-clear: 1 pass (zero), verify all";
  in.evidence.passes = json::array({{{"index", 1}, {"pattern", "zero"}}});
  in.evidence.verification = {{"method", "full read-back"}, {"result", "passed"}, {"bytes_verified", 1 << 20}};
  in.evidence.bytes_written = 1 << 20;
  in.outcome = "sanitized";
  in.started_at = "2026-11-25T12:00:00.000Z";
  in.finished_at = "2026-11-25T12:01:00.000Z";
  in.warnings = {"hard disk: reallocated sectors <not> reached & so on"};
  in.audit = {{"log", "/x/audit.jsonl"}, {"seq", 7}, {"hash", std::string(64, 'a')}};
  return build_certificate(in, opts);
}

struct Fixture {
  TempDir dir;
  audit::HostKey key = audit::HostKey::load_or_create(dir.path());
  WipeOptions opts;
  Fixture() {
    opts.cert.operator_name = "Li Wei";
    opts.cert.organisation = "Example Bank DC2";
    opts.cert.witness = "Zhang Min";
    opts.cert.destination = "recycling";
    opts.cert_dir = dir / "certs";
    opts.command_line = {"dlc", "wipe", "device", "/dev/loop9", "--passphrase", "hunter2"};
  }
  fs::path issue(json& cert) {
    sign_certificate(cert, key);
    return write_certificate(cert, opts.cert_dir).first;
  }
};

}  // namespace

TEST(Certificate, ASignedCertificateVerifiesAndCarriesTheNistFields) {
  Fixture f;
  json cert = sample_cert(f.opts);
  fs::path p = f.issue(cert);
  CertificateCheck c = verify_certificate(p, f.key.public_key().to_pem());
  EXPECT_TRUE(c.ok()) << (c.problems.empty() ? "" : c.problems[0]);
  EXPECT_TRUE(c.key_pinned);
  EXPECT_EQ(c.key_fingerprint, f.key.public_key().fingerprint());
  const json& d = c.certificate;
  EXPECT_EQ(d["performer"]["name"], "Li Wei");
  EXPECT_EQ(d["performer"]["organisation"], "Example Bank DC2");
  EXPECT_EQ(d["validation"]["witness"], "Zhang Min");
  EXPECT_EQ(d["media"]["serial"], "SN123");
  EXPECT_EQ(d["sanitization"]["category"], "clear");
  EXPECT_EQ(d["sanitization"]["tool"]["name"], "dlc");
  EXPECT_EQ(d["verification"]["result"], "passed");
  EXPECT_EQ(d["audit"]["seq"], 7);
  EXPECT_EQ(d["destination"], "recycling");
  // The command line is masked before it is recorded.
  EXPECT_EQ(d["sanitization"]["command"].dump().find("hunter2"), std::string::npos);
}

TEST(Certificate, EveryChangedByteIsDetected) {
  Fixture f;
  json cert = sample_cert(f.opts);
  fs::path p = f.issue(cert);
  const std::string text = test::read_file(p);
  // Flip one byte at a spread of positions (values, keys, punctuation, the newline).
  for (std::size_t i = 0; i < text.size(); i += std::max<std::size_t>(1, text.size() / 97)) {
    std::string bad = text;
    bad[i] = bad[i] == 'x' ? 'y' : (bad[i] == '\n' ? ' ' : 'x');
    test::write_file(p, bad);
    CertificateCheck c = verify_certificate(p);
    EXPECT_FALSE(c.ok()) << "byte " << i << " changed and still valid";
  }
  test::write_file(p, text);
  EXPECT_TRUE(verify_certificate(p).ok());
}

TEST(Certificate, AnotherKeyIsRejectedWhenPinned) {
  Fixture f;
  TempDir other;
  auto key2 = audit::HostKey::load_or_create(other.path());
  json cert = sample_cert(f.opts);
  fs::path p = f.issue(cert);
  CertificateCheck c = verify_certificate(p, key2.public_key().to_pem());
  EXPECT_FALSE(c.ok());
  EXPECT_FALSE(c.signature_ok);
  // Unpinned: valid, with a warning.
  CertificateCheck u = verify_certificate(p);
  EXPECT_TRUE(u.ok());
  EXPECT_FALSE(u.key_pinned);
  EXPECT_FALSE(u.warnings.empty());
}

TEST(Certificate, AFailedVerificationIsNotACertificateOfSanitization) {
  Fixture f;
  json cert = sample_cert(f.opts);
  cert["outcome"] = "verification-failed";
  cert["verification"]["result"] = "failed";
  fs::path p = f.issue(cert);
  CertificateCheck c = verify_certificate(p);
  EXPECT_TRUE(c.signature_ok);
  EXPECT_FALSE(c.sanitized);
  EXPECT_FALSE(c.ok());
}

TEST(Certificate, MissingFieldsAreReported) {
  Fixture f;
  json cert = sample_cert(f.opts);
  cert["sanitization"].erase("category");
  fs::path p = f.issue(cert);
  CertificateCheck c = verify_certificate(p);
  EXPECT_TRUE(c.signature_ok);
  EXPECT_FALSE(c.fields_ok);
}

TEST(Certificate, RenderingsShowTheFieldsAndEscapeHtml) {
  Fixture f;
  json cert = sample_cert(f.opts);
  sign_certificate(cert, f.key);
  std::string text = render_certificate_text(cert);
  EXPECT_NE(text.find("Li Wei"), std::string::npos);
  EXPECT_NE(text.find("SN123"), std::string::npos);
  EXPECT_NE(text.find("full read-back"), std::string::npos);
  std::string html = render_certificate_html(cert);
  EXPECT_NE(html.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_NE(html.find("&lt;not&gt; reached &amp; so on"), std::string::npos);
  EXPECT_EQ(html.find("<not>"), std::string::npos);
}

TEST(Certificate, TheAuditLinkMustNameThisCertificateInAVerifiedLog) {
  Fixture f;
  audit::AuditLog log(f.dir / "audit.jsonl", audit::HostKey::load_or_create(f.dir.path()));
  json cert = sample_cert(f.opts);
  audit::Event ev;
  ev.command = "wipe device";
  ev.target = "/dev/loop9";
  ev.outcome = "ok";
  ev.details = {{"certificate_id", cert["id"]}};
  audit::Appended a = log.append(ev);
  log.checkpoint();
  cert["audit"] = {{"log", log.path().string()}, {"seq", a.seq}, {"hash", a.hash}};
  AuditLinkCheck ok = check_audit_link(cert);
  EXPECT_TRUE(ok.ok) << ok.problem;
  json other = cert;
  other["audit"]["seq"] = a.seq + 100;
  EXPECT_FALSE(check_audit_link(other).ok);
  other = cert;
  other["id"] = "another-certificate";
  EXPECT_FALSE(check_audit_link(other).ok);
  other = cert;
  other["audit"]["hash"] = std::string(64, 'b');
  EXPECT_FALSE(check_audit_link(other).ok);
}

TEST(Certificate, MembersOfTheWrongTypeAreProblemsNotCrashes) {
  // Found by tests/fuzz/wipe_certificate: json::value() threw out of the
  // checks and the renderings (e.g. "format" an object, "sanitization" a string).
  Fixture f;
  for (const json& bad : {json{{"format", {{"x", 1}}}}, json{{"sanitization", "purge"}},
                          json{{"media", 5}}, json{{"audit", "seq 7"}}, json{{"outcome", {1, 2}}}}) {
    json cert = sample_cert(f.opts);
    cert.update(bad);
    sign_certificate(cert, f.key);  // written as issued (write_certificate also renders it)
    const fs::path p = f.dir / "bad.cert.json";
    test::write_file(p, certificate_file_text(cert));
    CertificateCheck c;
    ASSERT_NO_THROW(c = verify_certificate(p)) << bad.dump();
    EXPECT_FALSE(c.ok()) << bad.dump();
    EXPECT_FALSE(c.problems.empty()) << bad.dump();
    try {  // a dlc::Error (the fixture has no audit log) is fine, a JSON exception is not
      EXPECT_FALSE(check_audit_link(cert, f.dir / "audit.jsonl").ok) << bad.dump();
    } catch (const Error&) {
    }
    for (auto render : {&render_certificate_text, &render_certificate_html}) {
      try {
        (void)render(cert);
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::check_failed) << e.what();
        EXPECT_NE(std::string(e.what()).find("cannot render the certificate"), std::string::npos) << e.what();
      }
    }
  }
}
