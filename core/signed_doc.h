// Signed JSON documents (certificates, manifests, migration and verification
// reports, receiver attestations): an Ed25519 signature by the host key over
//   domain "\n" canonical_json(document with signature.value removed)
// stored in the document as
//   "signature": {"algorithm": "ed25519", "public_key": hex, "key_fingerprint": ..., "value": hex}.
// The domain string (e.g. "dlc-certificate/1") binds a signature to one kind
// of document, so a signed report can never pass as a certificate.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/audit_log.h"
#include "core/crypto.h"

namespace dlc {

// Adds (or replaces) doc["signature"]; doc must be a JSON object.
void sign_json(nlohmann::json& doc, const audit::HostKey& key, std::string_view domain);

// The exact bytes signed.
std::string signed_json_message(const nlohmann::json& doc, std::string_view domain);

struct SignatureCheck {
  bool present = false;  // the document has a signature object
  bool valid = false;    // it verifies (against the pinned key when one was given)
  bool pinned = false;   // checked against the caller's key, not the embedded one
  std::string key_fingerprint;  // of the embedded key
  std::string problem;          // one sentence when not valid
};
// Never throws on a malformed document: the problem says what is wrong.
SignatureCheck check_json_signature(const nlohmann::json& doc, std::string_view domain,
                                    const std::optional<crypto::Ed25519PublicKey>& pin);

}  // namespace dlc
