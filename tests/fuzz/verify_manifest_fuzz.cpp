// Manifests (docs/formats/manifest.md): what `dlc verify tree`, `dlc verify
// migration` and `dlc migrate` do with a manifest file: load_manifest (format,
// entries, order, Merkle root), the signature check, and the comparison with
// a manifest of a real tree.
//
// Every input is checked as given, and, when it is a JSON object whose
// entries decode, with its Merkle root recomputed and re-signed with the
// fixed host key (the real merkle_root and sign_document), so that loading
// and comparing run on fuzzed manifests that authenticate.
//
// Invariant: a manifest that loads serializes (to_json) to a manifest that
// loads again with the same root.
#include <nlohmann/json.hpp>

#include "core/audit_log.h"
#include "fuzz_support.h"
#include "verify/verify.h"

using namespace dlc;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path g_file;
verify::Manifest g_tree;  // of the sample tree
std::optional<crypto::Ed25519PublicKey> g_pin;

void check(std::string_view text) {
  fuzz::write_file(g_file, text, 0644);
  std::optional<verify::Manifest> m;
  fuzz::accept_dlc_errors([&] { m = verify::load_manifest(g_file); });
  if (!m) return;
  const json doc = verify::to_json(*m);
  (void)verify::check_signature(doc, std::nullopt);
  (void)verify::check_signature(doc, g_pin);
  (void)verify::to_json(verify::compare(*m, g_tree), 50).dump();
  (void)verify::to_json(verify::compare(g_tree, *m), 50).dump();
  verify::CompareOptions loose;
  loose.mode = loose.owner = loose.mtime = loose.xattrs = loose.sparse = loose.hardlinks = false;
  loose.root_metadata = false;
  (void)verify::compare(*m, *m, loose);
  (void)m->files();
  (void)m->bytes();
  try {
    const verify::Manifest again = verify::manifest_from_json(doc);
    if (again.merkle_root != m->merkle_root) fuzz::fail("manifest root changed across to_json and back");
  } catch (const Error& e) {
    fuzz::fail(std::string("a loaded manifest does not load again from its own JSON: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const fs::path dir = fuzz::fresh_dir("manifest");
  g_file = dir / "manifest.json";
  fuzz::make_sample_tree(dir / "tree");
  verify::ScanOptions so;
  so.root = dir / "tree";
  so.threads = 1;
  g_tree = verify::build_manifest(so);
  g_pin = fuzz::host_key().public_key();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  check(text);

  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (!doc.is_object() || !doc.contains("entries") || !doc["entries"].is_array()) return 0;
  fuzz::accept_dlc_errors([&] {
    std::vector<verify::Entry> entries;
    for (const auto& e : doc["entries"]) entries.push_back(verify::entry_from_json(e));
    std::string hash = "sha256";
    if (auto it = doc.find("hash"); it != doc.end() && it->is_string()) hash = it->get<std::string>();
    const auto alg = crypto::hash_from_name(hash);
    doc["merkle_root"] = verify::merkle_root(entries, alg);
    if (doc.contains("signature")) doc.erase("signature");
    verify::sign_document(doc, fuzz::host_key());
    check(audit::canonical_json(doc) + "\n");
  });
  return 0;
}
