// Backup snapshots (docs/formats/backup-repository.md, "Snapshots"): the
// snapshot JSON every command decodes (snapshots, find_snapshot, info, ls,
// check, restore, forget).
//
// Every input is used two ways in a copy of the fixture repository:
//  1. as snapshot plaintext, sealed with the repository's real object sealing
//     (its "tree" may name the fixture's root tree, so ls/check/restore walk);
//  2. as a sealed snapshot file as found on disk.
#include "backup/checker.h"
#include "backup/repository.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;
using namespace dlc::backup;

namespace {

void use_repository(const fuzz::BackupFixture& fx) {
  fuzz::accept_dlc_errors([&] {
    for (const auto& s : list_snapshots(fx.options())) (void)s.summary.dump();
  });
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    for (const auto& s : repo->snapshots()) (void)s.info();
    (void)repo->find_snapshot("latest").info();
  });
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    CheckOptions co;
    static_cast<RepoOptions&>(co) = fx.options();
    co.state_dir = fuzz::scratch() / "snapshot-state";
    (void)to_json(run_check_on(*repo, co)).dump();
  });
  fuzz::accept_dlc_errors([&] { (void)list_files(fx.options(), "latest"); });
  fuzz::accept_dlc_errors([&] {
    ForgetOptions fo;
    static_cast<RepoOptions&>(fo) = fx.options();
    fo.keep_daily = 1;
    fo.dry_run = true;
    (void)run_forget(fo);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  (void)fuzz::backup_fixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& fx = fuzz::backup_fixture();

  // 1. Plaintext, sealed by the repository (replacing the fixture's snapshot).
  fx.reset();
  for (const auto& name : list_names(fx.work / "snapshots")) fs::remove(fx.work / "snapshots" / name);
  {
    auto repo = Repository::open(fx.options(), LockMode::none);
    (void)repo->write_object("snapshots", ObjectKind::snapshot, crypto::ByteView(data, size));
  }
  use_repository(fx);

  // 2. A sealed snapshot file as found on disk, beside the fixture's own.
  fx.reset();
  fuzz::write_file(fx.work / "snapshots" / std::string(64, 'f'), fuzz::as_view(data, size));
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    (void)repo->snapshots();
  });
  return 0;
}
