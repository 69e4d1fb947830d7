#include "wipe/certificate.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/audit_log.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/signed_doc.h"
#include "wipe/util.h"

namespace dlc::wipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The signature domain of certificates (core/signed_doc.h).
constexpr std::string_view kSignatureDomain = "dlc-certificate/1";

}  // namespace

fs::path certificate_dir(const WipeOptions& opts) {
  return opts.cert_dir.empty() ? dlc_home() / "certificates" : opts.cert_dir;
}

json build_certificate(const CertificateInput& in, const WipeOptions& opts) {
  const CertificateFields& f = opts.cert;
  json performer = {{"name", f.operator_name.empty() ? user_name() : f.operator_name},
                    {"title", f.operator_title},
                    {"organisation", f.organisation},
                    {"location", f.location},
                    {"contact", f.contact},
                    {"host", host_name()},
                    {"uid", static_cast<std::uint64_t>(::getuid())},
                    {"login", user_name()}};
  json media = in.media;
  // App. G names make, model and serial for every medium; they stay empty
  // (not applicable or unknown) for files, directories and free space.
  for (const char* k : {"vendor", "model", "serial"})
    if (!media.contains(k)) media[k] = "";
  media["type"] = in.media_type;
  media["path"] = in.path;
  media["asset_tag"] = f.asset_tag;
  media["source"] = f.source;
  media["tenant"] = f.tenant;
  media["pre_sanitization_classification"] = f.pre_classification;
  media["backed_up"] = f.backed_up.empty() ? "unknown" : f.backed_up;
  media["backup_location"] = f.backup_location;

  json notes = json::array();
  if (!f.notes.empty()) notes.push_back(f.notes);
  json sanitization = {
      {"category", std::string(category_name(in.category))},
      {"method", in.method},
      {"technique", in.technique},
      {"passes", in.evidence.passes},
      {"bytes_written", in.evidence.bytes_written},
      {"tool", {{"name", "dlc"}, {"version", DLC_VERSION}}},
      {"command", audit::mask_arguments(opts.command_line)},
      {"post_sanitization_classification", f.post_classification},
      {"notes", notes},
      {"details", in.evidence.extra},
  };
  if (!in.seed_commitment.empty()) sanitization["random_seed_commitment"] = in.seed_commitment;

  json cert = {
      {"format", kCertificateFormat},
      {"version", kCertificateVersion},
      {"id", in.id},
      {"target_kind", in.target_kind},
      {"performer", performer},
      {"validation", {{"witness", f.witness}}},
      {"media", media},
      {"sanitization", sanitization},
      {"verification", in.evidence.verification},
      {"started_at", in.started_at},
      {"finished_at", in.finished_at},
      {"interruptions", in.interruptions},
      {"destination", f.destination},
      {"outcome", in.outcome},
      {"warnings", in.warnings},
      {"audit", in.audit},
      {"issued_at", now_rfc3339(3)},
  };
  if (!in.replica.is_null()) cert["replica"] = in.replica;
  return cert;
}

std::string certificate_signed_message(const json& cert) {
  return signed_json_message(cert, kSignatureDomain);
}

void sign_certificate(json& cert, const audit::HostKey& key) { sign_json(cert, key, kSignatureDomain); }

std::string certificate_file_text(const json& cert) { return audit::canonical_json(cert) + "\n"; }

std::pair<fs::path, fs::path> write_certificate(const json& cert, const fs::path& dir) {
  const std::string id = cert.at("id").get<std::string>();
  fs::path jp = dir / (id + ".cert.json");
  fs::path hp = dir / (id + ".cert.html");
  write_file_atomic(jp, certificate_file_text(cert), 0644, ParentDir::create);
  write_file_atomic(hp, render_certificate_html(cert), 0644, ParentDir::create);
  return {jp, hp};
}

// ---- Verification -------------------------------------------------------------------

static CertificateCheck verify_certificate_unchecked(const fs::path& path, const std::string& pubkey_pem) {
  CertificateCheck r;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(Errc::io, "cannot read certificate", path.string(), std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  json cert;
  try {
    cert = json::parse(text);
  } catch (const std::exception& e) {
    r.problems.push_back(std::string("the file is not valid JSON (") + e.what() +
                         "): it was damaged or altered");
    return r;
  }
  if (!cert.is_object()) {
    r.problems.push_back("the file is not a JSON object");
    return r;
  }
  r.certificate = cert;
  if (cert.value("format", "") != kCertificateFormat || cert.value("version", 0) != kCertificateVersion) {
    r.problems.push_back("not a dlc certificate of format version 1");
    return r;
  }

  // Signature.
  std::optional<crypto::Ed25519PublicKey> pin;
  bool key_usable = true;
  if (!pubkey_pem.empty()) {
    try {
      pin = crypto::Ed25519PublicKey::from_pem(pubkey_pem);
    } catch (const Error& e) {
      key_usable = false;
      r.problems.push_back(std::string("no usable public key: ") + e.what());
    }
  }
  if (key_usable) {
    const SignatureCheck c = check_json_signature(cert, kSignatureDomain, pin);
    r.key_pinned = c.pinned;
    r.key_fingerprint = pin ? pin->fingerprint() : c.key_fingerprint;
    if (!pin)
      r.warnings.push_back(
          "the signature was checked against the key embedded in the certificate; pass --pubkey "
          "with the host's public key (host-key.pub) to pin it");
    if (c.valid)
      r.signature_ok = true;
    else
      r.problems.push_back(c.problem);
  }
  // The stored form is canonical: a byte changed anywhere (even whitespace or
  // key order) is a change.
  if (r.signature_ok && text != certificate_file_text(cert)) {
    r.signature_ok = false;
    r.problems.push_back("the file is not in its signed canonical form: it was altered");
  }

  // Fields (NIST SP 800-88 App. G).
  std::vector<std::string> missing;
  auto need = [&](const json& obj, const std::string& where, const char* key, bool nonempty) {
    if (!obj.is_object() || !obj.contains(key)) {
      missing.push_back(where + key);
      return;
    }
    if (nonempty && obj[key].is_string() && obj[key].get<std::string>().empty())
      missing.push_back(where + key);
  };
  need(cert, "", "id", true);
  need(cert, "", "started_at", true);
  need(cert, "", "finished_at", true);
  need(cert, "", "outcome", true);
  need(cert, "", "destination", false);
  need(cert, "", "audit", false);
  const json performer = cert.value("performer", json::object());
  need(performer, "performer.", "name", true);
  need(performer, "performer.", "organisation", false);
  const json media = cert.value("media", json::object());
  need(media, "media.", "type", true);
  need(media, "media.", "model", false);
  need(media, "media.", "serial", false);
  const json san = cert.value("sanitization", json::object());
  need(san, "sanitization.", "category", true);
  need(san, "sanitization.", "method", true);
  need(san, "sanitization.", "technique", true);
  need(san, "sanitization.", "tool", false);
  const json ver = cert.value("verification", json::object());
  need(ver, "verification.", "method", true);
  need(ver, "verification.", "result", true);
  const std::string cat = san.value("category", "");
  if (!cat.empty() && cat != "clear" && cat != "purge" && cat != "destroy")
    missing.push_back("sanitization.category (" + cat + " is not clear, purge or destroy)");
  if (missing.empty()) {
    r.fields_ok = true;
  } else {
    std::string m;
    for (const auto& x : missing) m += (m.empty() ? "" : ", ") + x;
    r.problems.push_back("required fields missing or empty: " + m);
  }
  auto warn_empty = [&](const json& obj, const char* key, const char* what) {
    if (obj.value(key, "").empty()) r.warnings.push_back(std::string(what) + " is not recorded");
  };
  warn_empty(performer, "organisation", "the performer's organisation");
  warn_empty(cert.value("validation", json::object()), "witness", "a witness (validation)");
  warn_empty(cert, "destination", "the destination after sanitization");
  if (cert.value("audit", json::object()).value("seq", -1) < 0)
    r.warnings.push_back("the certificate is not linked to an audit record");

  const std::string outcome = cert.value("outcome", "");
  r.sanitized = outcome == "sanitized" || outcome == "destroyed";
  if (!r.sanitized && !outcome.empty())
    r.problems.push_back("the certificate records outcome '" + outcome +
                         "': the medium is not certified as sanitized");
  if (ver.value("result", "") == "failed" && r.sanitized) {
    r.sanitized = false;
    r.problems.push_back("verification failed but the outcome says sanitized");
  }
  return r;
}

// A member of the wrong type (an object where a string belongs, a string
// where an object belongs) made json::value() throw out of these checks: it
// is a problem of the certificate like any other damage.
CertificateCheck verify_certificate(const fs::path& path, const std::string& pubkey_pem) {
  try {
    return verify_certificate_unchecked(path, pubkey_pem);
  } catch (const json::exception& e) {
    CertificateCheck r;
    r.problems.push_back(std::string("a member has the wrong type (") + e.what() +
                         "): the certificate was damaged or altered");
    return r;
  }
}

static AuditLinkCheck check_audit_link_unchecked(const json& cert, const fs::path& log_in) {
  AuditLinkCheck r;
  const json link = cert.value("audit", json::object());
  fs::path log = log_in.empty() ? fs::path(link.value("log", "")) : log_in;
  r.log = log.string();
  if (log.empty() || !link.contains("seq") || !link["seq"].is_number_unsigned()) {
    r.problem = "the certificate names no audit record";
    return r;
  }
  const std::uint64_t seq = link["seq"].get<std::uint64_t>();
  audit::VerifyReport vr = audit::verify(log, std::nullopt);
  if (!vr.ok) {
    r.problem = "the audit log does not verify: " + vr.problem;
    return r;
  }
  for (const auto& line : audit::read_log(log)) {
    const json& rec = line.record;
    if (!rec.is_object() || rec.value("seq", std::uint64_t{0}) != seq) continue;
    if (rec.value("hash", "") != link.value("hash", "")) {
      r.problem = "audit record " + std::to_string(seq) + " has another hash than the certificate says";
      return r;
    }
    if (audit::record_hash(rec) != rec.value("hash", "")) {
      r.problem = "audit record " + std::to_string(seq) + " does not match its own hash";
      return r;
    }
    if (rec.value("details", json::object()).value("certificate_id", "") != cert.value("id", "")) {
      r.problem = "audit record " + std::to_string(seq) + " is about another certificate";
      return r;
    }
    r.ok = true;
    return r;
  }
  r.problem = "the audit log has no record " + std::to_string(seq);
  return r;
}

AuditLinkCheck check_audit_link(const json& cert, const fs::path& log_in) {
  try {
    return check_audit_link_unchecked(cert, log_in);
  } catch (const json::exception& e) {
    AuditLinkCheck r;
    r.log = log_in.string();
    r.problem = std::string("the certificate's audit link has a member of the wrong type (") + e.what() + ")";
    return r;
  }
}

// ---- Renderings ------------------------------------------------------------------

namespace {

std::string str(const json& j) {
  if (j.is_null()) return "";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

std::string get(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return "";
    cur = &(*cur)[k];
  }
  return str(*cur);
}

// Appends pieces one by one (GCC 12 misreports -Wrestrict on chains of operator+).
void cat(std::string& out, std::initializer_list<std::string_view> parts) {
  for (auto p : parts) out.append(p.data(), p.size());
}

struct Row {
  std::string label, value;
};
struct Section {
  std::string title;
  std::vector<Row> rows;
};

std::vector<Section> sections_unchecked(const json& c) {
  std::vector<Section> s;
  auto passes = [&]() {
    std::string out;
    for (const auto& p : c.value("sanitization", json::object()).value("passes", json::array())) {
      if (!out.empty()) out += "; ";
      cat(out, {"#", str(p.value("index", json())), " ", str(p.value("pattern", json()))});
      if (p.contains("verification"))
        cat(out, {" (verified: ", str(p["verification"].value("result", json())), ")"});
    }
    return out;
  };
  auto mismatches = [&]() {
    std::string out;
    for (const auto& m : c.value("verification", json::object()).value("first_mismatches", json::array()))
      cat(out, {out.empty() ? "" : ", ", "offset ", str(m.value("offset", json())), " (",
                str(m.value("length", json())), " bytes)"});
    return out;
  };
  auto interruptions = [&]() {
    std::string out;
    for (const auto& i : c.value("interruptions", json::array()))
      cat(out, {out.empty() ? "" : "; ", "pass ", str(i.value("pass", json())), " at byte ",
                str(i.value("offset", json())), ", resumed ", str(i.value("resumed_at", json()))});
    return out.empty() ? "none" : out;
  };
  auto warnings = [&]() {
    std::string out;
    for (const auto& w : c.value("warnings", json::array())) cat(out, {out.empty() ? "" : "\n", str(w)});
    return out.empty() ? "none" : out;
  };
  s.push_back({"Certificate",
               {{"Certificate id", get(c, {"id"})},
                {"Outcome", get(c, {"outcome"})},
                {"Issued", get(c, {"issued_at"})},
                {"Started", get(c, {"started_at"})},
                {"Finished", get(c, {"finished_at"})}}});
  s.push_back({"Person performing sanitization",
               {{"Name", get(c, {"performer", "name"})},
                {"Title", get(c, {"performer", "title"})},
                {"Organisation", get(c, {"performer", "organisation"})},
                {"Location", get(c, {"performer", "location"})},
                {"Contact", get(c, {"performer", "contact"})},
                {"Host / login", get(c, {"performer", "host"}) + " / " + get(c, {"performer", "login"})}}});
  s.push_back({"Media information",
               {{"Type", get(c, {"media", "type"})},
                {"Path", get(c, {"media", "path"})},
                {"Make / model", get(c, {"media", "vendor"}) + " " + get(c, {"media", "model"})},
                {"Serial number", get(c, {"media", "serial"})},
                {"WWN", get(c, {"media", "wwn"})},
                {"Size (bytes)", get(c, {"media", "size_bytes"})},
                {"Transport", get(c, {"media", "transport"})},
                {"Asset tag", get(c, {"media", "asset_tag"})},
                {"Source / tenant", get(c, {"media", "source"}) + " " + get(c, {"media", "tenant"})},
                {"Pre-sanitization classification", get(c, {"media", "pre_sanitization_classification"})},
                {"Backed up", get(c, {"media", "backed_up"})}}});
  s.push_back({"Sanitization details",
               {{"Category", get(c, {"sanitization", "category"})},
                {"Method", get(c, {"sanitization", "method"})},
                {"Technique", get(c, {"sanitization", "technique"})},
                {"Passes", passes()},
                {"Bytes written", get(c, {"sanitization", "bytes_written"})},
                {"Tool", get(c, {"sanitization", "tool", "name"}) + " " +
                             get(c, {"sanitization", "tool", "version"})},
                {"Post-sanitization classification",
                 get(c, {"sanitization", "post_sanitization_classification"})},
                {"Interruptions", interruptions()}}});
  s.push_back({"Verification",
               {{"Method", get(c, {"verification", "method"})},
                {"Scope", get(c, {"verification", "scope"})},
                {"Result", get(c, {"verification", "result"})},
                {"Bytes verified", get(c, {"verification", "bytes_verified"})},
                {"First mismatches", mismatches()}}});
  const json nv = c.value("sanitization", json::object()).value("details", json::object()).value("nvme", json());
  if (nv.is_object()) {
    auto decoded = [](const json& bits) {
      std::string out;
      for (auto it = bits.begin(); it != bits.end(); ++it)
        cat(out, {out.empty() ? "" : ", ", it.key(), "=", str(it.value())});
      return out;
    };
    std::string params;
    if (nv.value("parameters", json()).is_array()) {
      for (const auto& f : nv["parameters"])
        cat(params, {params.empty() ? "" : "; ", "NSID ", str(f.value("nsid", json())), " LBAF ",
                     str(f.value("lbaf", json())), " SES ", str(f.value("ses", json())), " (",
                     str(f.value("secure_erase", json())), ")"});
    } else if (nv.contains("parameters")) {
      const json& p = nv["parameters"];
      cat(params, {"SANACT ", str(p.value("sanact", json())), " (", str(p.value("action", json())), "), AUSE ",
                   str(p.value("ause", json())), ", NODAS ", str(p.value("nodas", json())), ", OWPASS ",
                   str(p.value("owpass", json())), ", OVRPAT ", str(p.value("ovrpat", json())), ", CDW10 ",
                   str(p.value("cdw10", json()))});
    }
    std::string namespaces;
    for (const auto& n : nv.value("namespaces", json::array()))
      cat(namespaces, {namespaces.empty() ? "" : "\n", "nsid ", str(n.value("nsid", json())), " ",
                       str(n.value("block_device", json())), ", ", str(n.value("size_bytes", json())),
                       " bytes, LBA ", str(n.value("lba_size", json())), ", EUI64 ", str(n.value("eui64", json())),
                       ", NGUID ", str(n.value("nguid", json())), ", DLFEAT ", str(n.value("dlfeat", json()))});
    std::string final_status = nv.contains("final_sstat")
                                   ? str(nv["final_sstat"].value("status", json())) + " (SSTAT " +
                                         str(nv["final_sstat"].value("sstat", json())) + ", global data erased " +
                                         str(nv["final_sstat"].value("global_data_erased", json())) + ")"
                                   : std::string("Format NVM completed successfully");
    s.push_back({"NVMe purge",
                 {{"Command", get(c, {"sanitization", "details", "nvme", "command"}) + " (" +
                                  get(c, {"sanitization", "details", "nvme", "technique"}) + ") via " +
                                  get(c, {"sanitization", "details", "nvme", "admin_device"})},
                  {"Parameters", params},
                  {"Controller", get(c, {"sanitization", "details", "nvme", "controller", "model"}) + ", serial " +
                                     get(c, {"sanitization", "details", "nvme", "controller", "serial"}) +
                                     ", firmware " +
                                     get(c, {"sanitization", "details", "nvme", "controller", "firmware"})},
                  {"SANICAP", get(c, {"sanitization", "details", "nvme", "controller", "sanicap"}) + " (" +
                                  decoded(nv.value("controller", json::object()).value("sanicap_decoded", json::object())) + ")"},
                  {"FNA", get(c, {"sanitization", "details", "nvme", "controller", "fna"}) + " (" +
                              decoded(nv.value("controller", json::object()).value("fna_decoded", json::object())) + ")"},
                  {"Scope", get(c, {"sanitization", "details", "nvme", "scope", "reason"})},
                  {"Namespaces erased", namespaces},
                  {"Final status", final_status},
                  {"Why this method", get(c, {"sanitization", "details", "nvme", "method_choice", "why"})}}});
    std::string samples;
    for (const auto& n : c.value("verification", json::object()).value("namespaces", json::array()))
      cat(samples, {samples.empty() ? "" : "\n", "nsid ", str(n.value("nsid", json())), ": ",
                    str(n.value("result", json())), ", expected ", str(n.value("expected", json())), ", ",
                    str(n.value("samples", json())), " samples (first LBA ", str(n.value("first_lba_checked", json())),
                    ", last LBA ", str(n.value("last_lba_checked", json())), "), seed ",
                    str(n.value("sample_seed", json()))});
    s.push_back({"Purge verification",
                 {{"Status check", get(c, {"verification", "status_check", "source"}) + ": " +
                                       get(c, {"verification", "status_check", "status"})},
                  {"Read-back samples", samples}}});
  }
  s.push_back({"Destination and validation",
               {{"Destination", get(c, {"destination"})},
                {"Witness", get(c, {"validation", "witness"})}}});
  s.push_back({"Limits of this sanitization", {{"Notes", warnings()}}});
  s.push_back({"Evidence",
               {{"Audit record", "seq " + get(c, {"audit", "seq"}) + ", hash " + get(c, {"audit", "hash"})},
                {"Audit log", get(c, {"audit", "log"})},
                {"Signature", get(c, {"signature", "algorithm"}) + " by key " +
                                  get(c, {"signature", "key_fingerprint"})}}});
  return s;
}

std::vector<Section> sections(const json& c) {
  try {
    return sections_unchecked(c);
  } catch (const json::exception& e) {
    throw Error(Errc::check_failed, "cannot render the certificate", get(c, {"id"}),
                std::string("a member has the wrong type (") + e.what() + ")",
                "run 'dlc verify certificate' on it: it was damaged or altered");
  }
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      case '\n': o += "<br>"; break;
      default: o.push_back(ch);
    }
  }
  return o;
}

}  // namespace

std::string render_certificate_text(const json& cert) {
  std::ostringstream o;
  o << "CERTIFICATE OF SANITIZATION (NIST SP 800-88)\n";
  for (const auto& sec : sections(cert)) {
    o << "\n" << sec.title << "\n";
    for (const auto& r : sec.rows) {
      std::string v = r.value;
      std::string pad(34 > r.label.size() ? 34 - r.label.size() : 1, ' ');
      std::string indent(36, ' ');
      for (std::size_t p = 0; (p = v.find('\n', p)) != std::string::npos; p += indent.size() + 1)
        v.insert(p + 1, indent);
      o << "  " << r.label << pad << v << "\n";
    }
  }
  return o.str();
}

std::string render_certificate_html(const json& cert) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<title>Certificate of sanitization "
    << html_escape(get(cert, {"id"}))
    << "</title>\n<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;color:#111}"
       "h1{font-size:1.4em;border-bottom:2px solid #111}h2{font-size:1.05em;margin-top:1.4em}"
       "table{border-collapse:collapse;width:100%}td{border:1px solid #999;padding:4px 8px;"
       "vertical-align:top}td.l{width:34%;background:#f3f3f3}.sig{margin-top:3em;display:flex;"
       "gap:4em}.sig div{flex:1;border-top:1px solid #111;padding-top:4px}"
       "@media print{body{margin:0}}</style></head><body>\n"
       "<h1>Certificate of Sanitization</h1>\n<p>NIST SP 800-88 &mdash; issued by dlc; the "
       "machine-readable certificate (.cert.json) carries the Ed25519 signature and is "
       "checked with <code>dlc verify certificate</code>.</p>\n";
  for (const auto& sec : sections(cert)) {
    o << "<h2>" << html_escape(sec.title) << "</h2>\n<table>\n";
    for (const auto& r : sec.rows)
      o << "<tr><td class=\"l\">" << html_escape(r.label) << "</td><td>" << html_escape(r.value)
        << "</td></tr>\n";
    o << "</table>\n";
  }
  o << "<div class=\"sig\"><div>Performed by (signature, date)</div>"
       "<div>Validated by (signature, date)</div></div>\n</body></html>\n";
  return o.str();
}

}  // namespace dlc::wipe
