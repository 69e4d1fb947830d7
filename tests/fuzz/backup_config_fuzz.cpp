// Backup repository config, keyring and key slots (docs/formats/
// backup-repository.md, "config", "Key slots", "Keys"): what opening and
// unlocking a repository parses, with a key file and with a passphrase.
//
// Input: CONFIG [kPartSeparator KEYRING [kPartSeparator SLOT]...], in a copy
// of the fixture repository; an empty part keeps the fixture's own.
//  - CONFIG is written as the config file as found on disk (its MAC then
//    usually fails after unlocking); and, when it is a JSON object, also
//    applied as a merge patch with the real rewrite_config (re-MACed, so the
//    fuzzed config is accepted) followed by a backup that uses it;
//  - KEYRING is the keyring plaintext, sealed with the real object sealing;
//  - each SLOT is added as keys/<its "id">, beside the fixture's slots.
#include <nlohmann/json.hpp>

#include "backup/repository.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;
using namespace dlc::backup;
using nlohmann::json;

namespace {

fs::path g_src;

void open_every_way(const fuzz::BackupFixture& fx) {
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    for (const auto& s : repo->slots()) (void)slot_detail(s);
  });
  fuzz::accept_dlc_errors([&] { (void)Repository::open(fx.passphrase_options(), LockMode::none); });
  fuzz::accept_dlc_errors([&] { (void)run_key_list(fx.options(), false); });
  fuzz::accept_dlc_errors([&] { (void)run_key_list(fx.options(), true); });
  fuzz::accept_dlc_errors([&] {
    LocationsOptions lo;
    static_cast<RepoOptions&>(lo) = fx.options();
    (void)run_locations(lo);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  (void)fuzz::backup_fixture();
  g_src = fuzz::scratch() / "config-src";
  fuzz::make_sample_tree(g_src);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size));
  const auto& fx = fuzz::backup_fixture();
  fx.reset();

  if (parts.size() > 1 && !parts[1].empty()) {
    auto repo = Repository::open(fx.options(), LockMode::none);
    write_atomic(fx.work / "keyring", repo->seal_object(ObjectKind::keyring, crypto::as_bytes(parts[1]), 0));
  }
  for (std::size_t i = 2; i < parts.size(); ++i) {
    const json slot = json::parse(parts[i].begin(), parts[i].end(), nullptr, false);
    std::string name = "0fuzz" + std::to_string(i);
    if (slot.is_object() && slot.contains("id") && slot["id"].is_string()) name = slot["id"].get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." ||
        name.find('\0') != std::string::npos)
      name = "0fuzz" + std::to_string(i);
    fuzz::write_file(fx.work / "keys" / name, parts[i]);
  }
  const std::string saved_config = fuzz::read_file(fx.work / "config");
  if (!parts[0].empty()) fuzz::write_file(fx.work / "config", parts[0], 0644);
  open_every_way(fx);

  // The config as a change the repository signs itself, then used.
  const json patch = json::parse(parts[0].begin(), parts[0].end(), nullptr, false);
  if (!patch.is_object()) return 0;
  fuzz::write_file(fx.work / "config", saved_config, 0644);
  bool patched = false;
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    repo->rewrite_config(patch);
    patched = true;
  });
  if (!patched) return 0;
  open_every_way(fx);
  fuzz::accept_dlc_errors([&] {
    BackupOptions bo;
    static_cast<RepoOptions&>(bo) = fx.options();
    bo.paths = {g_src};
    (void)run_backup(bo);
  });
  return 0;
}
