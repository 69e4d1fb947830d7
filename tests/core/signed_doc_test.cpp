// core/signed_doc.h: Ed25519-signed JSON documents with a domain per kind.
#include "core/signed_doc.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "support/test_support.h"

using dlc::check_json_signature;
using dlc::sign_json;
using dlc::audit::HostKey;
using nlohmann::json;

namespace {
struct Keys {
  dlc::test::TempDir a, b;
  HostKey ka = HostKey::load_or_create(a.path());
  HostKey kb = HostKey::load_or_create(b.path());
};
json sample() { return {{"format", "x/1"}, {"tenant", "t-42"}, {"bytes", 1024}, {"名", "值"}}; }
}  // namespace

TEST(SignedDoc, ASignedDocumentVerifiesEmbeddedAndPinned) {
  Keys k;
  json d = sample();
  sign_json(d, k.ka, "dlc-test/1");
  EXPECT_EQ(d["signature"]["algorithm"], "ed25519");
  auto c = check_json_signature(d, "dlc-test/1", std::nullopt);
  EXPECT_TRUE(c.present && c.valid && !c.pinned) << c.problem;
  EXPECT_EQ(c.key_fingerprint, k.ka.public_key().fingerprint());
  c = check_json_signature(d, "dlc-test/1", k.ka.public_key());
  EXPECT_TRUE(c.valid && c.pinned) << c.problem;
  // Re-serialised with other whitespace and key order: still the same document.
  EXPECT_TRUE(check_json_signature(json::parse(d.dump(4)), "dlc-test/1", std::nullopt).valid);
}

TEST(SignedDoc, AnyChangeAnotherDomainOrAnotherKeyFails) {
  Keys k;
  json d = sample();
  sign_json(d, k.ka, "dlc-test/1");
  json altered = d;
  altered["bytes"] = 1025;
  EXPECT_FALSE(check_json_signature(altered, "dlc-test/1", std::nullopt).valid);
  json key_swapped = d;
  key_swapped["signature"]["key_fingerprint"] = "forged";  // covered by the signature too
  EXPECT_FALSE(check_json_signature(key_swapped, "dlc-test/1", std::nullopt).valid);
  // A signature made for one kind of document never passes as another kind.
  EXPECT_FALSE(check_json_signature(d, "dlc-certificate/1", std::nullopt).valid);
  auto c = check_json_signature(d, "dlc-test/1", k.kb.public_key());
  EXPECT_FALSE(c.valid);
  EXPECT_NE(c.problem.find("another key"), std::string::npos) << c.problem;
  // Re-signed by another key with that key embedded: only the pin catches it.
  json resigned = altered;
  sign_json(resigned, k.kb, "dlc-test/1");
  EXPECT_TRUE(check_json_signature(resigned, "dlc-test/1", std::nullopt).valid);
  EXPECT_FALSE(check_json_signature(resigned, "dlc-test/1", k.ka.public_key()).valid);
}

TEST(SignedDoc, MalformedSignaturesAreReportedNotThrown) {
  Keys k;
  json d = sample();
  EXPECT_FALSE(check_json_signature(d, "dlc-test/1", std::nullopt).present);
  EXPECT_FALSE(check_json_signature(json::array(), "dlc-test/1", std::nullopt).present);
  sign_json(d, k.ka, "dlc-test/1");
  for (auto mutate : std::vector<std::function<void(json&)>>{
           [](json& s) { s["value"] = "zz"; },
           [](json& s) { s["value"] = 5; },
           [](json& s) { s.erase("public_key"); },
           [](json& s) { s["public_key"] = "00"; },
           [](json& s) { s["algorithm"] = "rsa"; },
           [](json& s) { s["value"] = std::string(s["value"]).substr(2); }}) {
    json m = d;
    mutate(m["signature"]);
    dlc::SignatureCheck c;
    EXPECT_NO_THROW(c = check_json_signature(m, "dlc-test/1", std::nullopt));
    EXPECT_TRUE(c.present);
    EXPECT_FALSE(c.valid);
    EXPECT_FALSE(c.problem.empty());
  }
}
