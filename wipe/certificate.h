// Certificates of sanitization (NIST SP 800-88 Rev.1 App. G fields, plus the
// cloud facts of docs/formats/certificate.md): built from an EraseMethod's
// evidence the same way for every method, signed with the host's Ed25519 key,
// linked to the audit record of the job, stored as canonical JSON (one line:
// any changed byte is detected) beside a printable HTML page.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wipe/erase_method.h"
#include "wipe/wipe.h"

namespace dlc::audit {
class HostKey;
}

namespace dlc::wipe {

inline constexpr const char* kCertificateFormat = "dlc-certificate";
inline constexpr int kCertificateVersion = 1;

struct CertificateInput {
  std::string id;            // random UUID, chosen when the job starts
  std::string target_kind;   // device | file | directory | free-space | physical
  std::string path;
  nlohmann::json media = nlohmann::json::object();  // make/model/serial/... (device identity)
  std::string media_type;    // hdd | ssd | nvme | virtual | file | directory | free-space | ...
  Category category = Category::clear;
  std::string method;        // nist-clear, dod-3pass, shred, ...
  std::string technique;
  Evidence evidence;
  std::string outcome;       // sanitized | verification-failed | destroyed
  std::string started_at, finished_at;
  nlohmann::json interruptions = nlohmann::json::array();
  std::vector<std::string> warnings;
  std::string seed_commitment;  // random passes only
  nlohmann::json audit = nlohmann::json::object();  // {log, seq, hash}
  nlohmann::json replica = nlohmann::json();        // {dataset, id} for replica jobs
};

// The unsigned document.
nlohmann::json build_certificate(const CertificateInput& in, const WipeOptions& opts);
// The bytes the signature covers: "dlc-certificate/1\n" + canonical JSON of the
// whole document except signature.value (so the algorithm, key and key
// fingerprint named in "signature" are covered too).
std::string certificate_signed_message(const nlohmann::json& cert);
// Adds "signature" {algorithm, public_key, key_fingerprint, value}.
void sign_certificate(nlohmann::json& cert, const audit::HostKey& key);
// The file form: canonical JSON and a newline.
std::string certificate_file_text(const nlohmann::json& cert);
// Writes <dir>/<id>.cert.json and <dir>/<id>.cert.html atomically; returns both.
std::pair<std::filesystem::path, std::filesystem::path> write_certificate(
    const nlohmann::json& cert, const std::filesystem::path& dir);

// $DLC_HOME/certificates unless opts.cert_dir.
std::filesystem::path certificate_dir(const WipeOptions& opts);

}  // namespace dlc::wipe
