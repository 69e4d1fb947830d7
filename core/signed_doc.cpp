#include "core/signed_doc.h"

namespace dlc {

using nlohmann::json;

std::string signed_json_message(const json& doc, std::string_view domain) {
  json d = doc;
  if (d.is_object() && d.contains("signature") && d["signature"].is_object())
    d["signature"].erase("value");
  std::string msg(domain);
  msg += '\n';
  msg += audit::canonical_json(d);
  return msg;
}

void sign_json(json& doc, const audit::HostKey& key, std::string_view domain) {
  doc["signature"] = {{"algorithm", "ed25519"},
                      {"public_key", crypto::to_hex(key.public_key().raw())},
                      {"key_fingerprint", key.public_key().fingerprint()}};
  const std::string msg = signed_json_message(doc, domain);
  const auto sig = key.private_key().sign(crypto::as_bytes(msg));
  doc["signature"]["value"] = crypto::to_hex(sig);
}

SignatureCheck check_json_signature(const json& doc, std::string_view domain,
                                    const std::optional<crypto::Ed25519PublicKey>& pin) {
  SignatureCheck r;
  if (!doc.is_object() || !doc.contains("signature") || !doc["signature"].is_object()) {
    r.problem = "the document is not signed";
    return r;
  }
  r.present = true;
  const json& s = doc["signature"];
  try {
    if (!s.contains("algorithm") || s["algorithm"] != "ed25519") {
      r.problem = "unknown signature algorithm";
      return r;
    }
    const auto embedded =
        crypto::Ed25519PublicKey::from_raw(crypto::from_hex(s.at("public_key").get<std::string>()));
    r.key_fingerprint = embedded.fingerprint();
    if (pin) {
      r.pinned = true;
      if (pin->raw() != embedded.raw()) {
        r.problem = "the document was signed by another key (fingerprint " + r.key_fingerprint +
                    ", expected " + pin->fingerprint() + ")";
        return r;
      }
    }
    const auto sig = crypto::from_hex(s.at("value").get<std::string>());
    r.valid = sig.size() == 64 &&
              embedded.verify(crypto::as_bytes(signed_json_message(doc, domain)), sig);
    if (!r.valid) r.problem = "the signature does not verify: the document was altered";
  } catch (const std::exception&) {
    r.valid = false;
    r.problem = "the signature object is malformed";
  }
  return r;
}

}  // namespace dlc
