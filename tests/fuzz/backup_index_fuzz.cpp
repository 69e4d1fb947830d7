// Backup index files (docs/formats/backup-repository.md, "Index files"):
// Index::decode, and the index as every command loads and uses it.
//
// Every input is used two ways in a copy of the fixture repository whose own
// index file was removed:
//  1. as index plaintext, sealed with the repository's real object sealing
//     (so the decoder, the index map and what trusts it see fuzzed entries):
//     then `check --read-data`, `ls` and a restore read the fixture's packs
//     through it;
//  2. as a sealed index file as found on disk (header, key id, ciphertext).
#include "backup/checker.h"
#include "backup/index.h"
#include "backup/repository.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;
using namespace dlc::backup;

namespace {

void use_repository(const fuzz::BackupFixture& fx) {
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    CheckOptions co;
    static_cast<RepoOptions&>(co) = fx.options();
    co.read_data = true;
    co.state_dir = fuzz::scratch() / "index-state";
    (void)to_json(run_check_on(*repo, co)).dump();
  });
  fuzz::accept_dlc_errors([&] { (void)list_files(fx.options(), "latest"); });
  fuzz::accept_dlc_errors([&] {
    RestoreOptions ro;
    static_cast<RepoOptions&>(ro) = fx.options();
    ro.target = fuzz::fresh_dir("index-restore");
    ro.verify = true;
    (void)run_restore(ro);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  (void)fuzz::backup_fixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const crypto::ByteView input(data, size);
  const auto& fx = fuzz::backup_fixture();

  fuzz::accept_dlc_errors([&] {
    Index index;
    for (auto& p : Index::decode(input, "fuzz")) index.add_pack(std::move(p));
    for (const auto& p : index.packs())
      for (const auto& b : p.blobs) (void)index.find(b.id);
  });

  // 1. Plaintext, sealed by the repository.
  fx.reset();
  for (const auto& name : list_names(fx.work / "index")) fs::remove(fx.work / "index" / name);
  {
    auto repo = Repository::open(fx.options(), LockMode::none);
    (void)repo->write_object("index", ObjectKind::index, input);
  }
  use_repository(fx);

  // 2. A sealed index file as found on disk.
  fx.reset();
  for (const auto& name : list_names(fx.work / "index")) fs::remove(fx.work / "index" / name);
  fuzz::write_file(fx.work / "index" / std::string(64, 'f'), fuzz::as_view(data, size));
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    std::vector<std::string> errors;
    repo->load_index(&errors);
  });
  return 0;
}
