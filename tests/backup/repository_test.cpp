// The library end to end on real files: every cipher, key slots and their
// failures (nothing modified), rotation, and the content-defined dedup.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <random>

#include "backup/backup.h"
#include "backup/repository.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

using crypto::Bytes;

std::string random_string(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Files and a directory tree to back up.
void make_tree(const fs::path& root) {
  fs::create_directories(root / "a" / "b");
  test::write_file(root / "a" / "random.bin", random_string(3 << 20, 1));
  std::string text;
  for (int i = 0; i < 50000; ++i) text.append("line ").append(std::to_string(i)).append(" of a compressible log\n");
  test::write_file(root / "a" / "b" / "log.txt", text);
  test::write_file(root / "empty", "");
  fs::create_symlink("a/random.bin", root / "link");
}

// Snapshot of a tree's regular files: relative path -> content.
std::map<std::string, std::string> contents(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && !e.is_symlink()) m[fs::relative(e.path(), root).string()] = test::read_file(e.path());
  return m;
}

class RepoFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    pass_ = dir_ / "pass";
    test::write_file(pass_, "correct horse battery staple\n");
    ::setenv("DLC_PASSPHRASE_FILE", pass_.c_str(), 1);
    ::setenv("DLC_HOME", (dir_ / "home").c_str(), 1);
    repo_ = dir_ / "repo";
    src_ = dir_ / "src";
    make_tree(src_);
  }
  InitOptions init_opts(const std::string& cipher) {
    InitOptions o;
    o.repo = repo_;
    o.cipher = cipher;
    o.scrypt_n = 1 << 12;
    o.chunker = {64 * 1024, 256 * 1024, 1024 * 1024};
    return o;
  }
  template <typename T>
  T opts() {
    T o;
    o.repo = repo_;
    o.key.prompt = false;
    return o;
  }
  std::map<std::string, std::string> restore_and_read(const std::string& snap = "latest") {
    auto o = opts<RestoreOptions>();
    o.snapshot = snap;
    o.target = dir_ / ("out-" + std::to_string(++restores_));
    o.verify = true;
    RestoreResult r = run_restore(o);
    EXPECT_TRUE(r.failed.empty());
    return contents(o.target / src_.relative_path());
  }

  test::TempDir dir_;
  fs::path pass_, repo_, src_;
  int restores_ = 0;
};

class CipherTest : public RepoFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(CipherTest, BacksUpRestoresAndChecksWithEveryCipher) {
  InitResult ir = init(init_opts(GetParam()));
  EXPECT_EQ(ir.cipher, GetParam());
  auto bo = opts<BackupOptions>();
  bo.paths = {src_};
  BackupResult b1 = run_backup(bo);
  EXPECT_EQ(b1.files_new, 3u);
  EXPECT_GT(b1.bytes_new_raw, 0u);
  EXPECT_LT(b1.bytes_new_stored, b1.bytes_new_raw);  // the log compresses
  EXPECT_EQ(restore_and_read(), contents(src_));
  auto co = opts<CheckOptions>();
  co.read_data = true;
  co.state_dir = dir_ / "state";
  CheckResult c = run_check(co);
  EXPECT_TRUE(c.ok) << to_json(c).dump(2);
  EXPECT_EQ(c.packs_read, c.packs_total);
  // The repository never holds plaintext: no file contains a line of the log.
  for (auto& e : fs::recursive_directory_iterator(repo_))
    if (e.is_regular_file()) {
      EXPECT_EQ(test::read_file(e.path()).find("of a compressible log"), std::string::npos);
    }
}

INSTANTIATE_TEST_SUITE_P(AllCiphers, CipherTest,
                         ::testing::Values("aes-256-gcm", "aes-128-gcm", "chacha20-poly1305", "sm4-gcm"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST_F(RepoFixture, SecondBackupReadsNothingAndShiftedContentDedups) {
  init(init_opts("aes-256-gcm"));
  auto bo = opts<BackupOptions>();
  bo.paths = {src_};
  run_backup(bo);
  BackupResult b2 = run_backup(bo);
  EXPECT_EQ(b2.files_unmodified, 3u);
  EXPECT_EQ(b2.bytes_read, 0u);
  EXPECT_FALSE(b2.parent_id.empty());
  // The same random content behind a 1000-byte prefix: all but the first chunks dedup.
  test::write_file(src_ / "shifted.bin", random_string(1000, 5) + test::read_file(src_ / "a" / "random.bin"));
  BackupResult b3 = run_backup(bo);
  EXPECT_EQ(b3.files_new, 1u);
  EXPECT_LT(b3.bytes_new_raw, 1200u * 1024) << "shifted content was stored again";
  EXPECT_EQ(restore_and_read(), contents(src_));
}

TEST_F(RepoFixture, WrongPassphraseIsAnAuthErrorAndModifiesNothing) {
  init(init_opts("sm4-gcm"));
  auto before = contents(repo_);
  test::write_file(pass_, "wrong\n");
  auto bo = opts<BackupOptions>();
  bo.paths = {src_};
  try {
    run_backup(bo);
    FAIL() << "a wrong passphrase was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
  EXPECT_EQ(contents(repo_), before);
}

TEST_F(RepoFixture, KeyFileSlotsAddRemoveAndRotate) {
  InitOptions io = init_opts("chacha20-poly1305");
  io.key.key_file = (dir_ / "repo.key").string();  // created by init
  init(io);
  EXPECT_EQ(fs::status(dir_ / "repo.key").permissions() & fs::perms::group_all, fs::perms::none);
  auto withkey = [&](auto o) {
    o.key.key_file = (dir_ / "repo.key").string();
    return o;
  };
  auto bo = withkey(opts<BackupOptions>());
  bo.paths = {src_};
  run_backup(bo);
  // A wrong key file: auth error.
  test::write_file(dir_ / "other.key", random_string(64, 9));
  auto bad = opts<RepoOptions>();
  bad.key.key_file = (dir_ / "other.key").string();
  try {
    list_snapshots(bad);  // needs no key
    run_stats(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
  // Add a passphrase slot; it opens the same data.
  KeyAddOptions ka = withkey(opts<KeyAddOptions>());
  ka.new_key.passphrase_env = "DLC_PASSPHRASE_FILE";
  ka.scrypt_n = 1 << 12;
  KeySlotInfo added = run_key_add(ka);
  EXPECT_EQ(added.type, "passphrase");
  EXPECT_EQ(restore_and_read(), contents(src_));  // via the passphrase
  EXPECT_EQ(run_key_list(opts<RepoOptions>(), false).slots.size(), 2u);
  // Rotation: new data under key 2, old data still readable.
  RotateResult rot = run_key_rotate(opts<RepoOptions>());
  EXPECT_EQ(rot.old_key, 1u);
  EXPECT_EQ(rot.new_key, 2u);
  test::write_file(src_ / "after-rotation.txt", "new data");
  run_backup(bo);
  auto snaps = list_snapshots(opts<RepoOptions>());
  EXPECT_EQ(snaps.back().key_id, 2u);
  EXPECT_EQ(restore_and_read(snaps.front().id).size(), 3u);
  EXPECT_EQ(restore_and_read(), contents(src_));
  // Removing: not the slot used to unlock, not the last one.
  std::string keyfile_slot;
  for (auto& s : run_key_list(opts<RepoOptions>(), false).slots)
    if (s.type == "keyfile") keyfile_slot = s.id;
  try {
    run_key_remove(withkey(opts<RepoOptions>()), keyfile_slot);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
  }
  run_key_remove(opts<RepoOptions>(), keyfile_slot);  // unlocked by passphrase
  try {
    run_stats(withkey(opts<RepoOptions>()));
    FAIL() << "a retired key file still opens the repository";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
  try {
    run_key_remove(opts<RepoOptions>(), added.id);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);  // last slot
  }
}

TEST_F(RepoFixture, KeyCommandSlot) {
  test::write_file(dir_ / "kms-secret", crypto::to_hex(crypto::random_bytes(32)));
  InitOptions io = init_opts("aes-128-gcm");
  io.key.key_command = "cat " + (dir_ / "kms-secret").string();
  init(io);
  auto bo = opts<BackupOptions>();
  bo.key.key_command = io.key.key_command;
  bo.paths = {src_};
  run_backup(bo);
  bo.key.key_command = "echo 0123456789abcdef0123456789abcdef";
  try {
    run_backup(bo);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
  bo.key.key_command = "false";
  try {
    run_backup(bo);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
}

// A real PKCS#11 token: SoftHSM2 (Debian package softhsm2).
TEST_F(RepoFixture, Pkcs11SlotWithSoftHsm) {
  const std::string module = "/usr/lib/softhsm/libsofthsm2.so";
  if (!fs::exists(module) || test::run_shell("command -v softhsm2-util").exit_code != 0)
    GTEST_SKIP() << "SoftHSM2 is not installed (apt-get install softhsm2): PKCS#11 slot not tested";
  fs::create_directories(dir_ / "tokens");
  test::write_file(dir_ / "softhsm2.conf", "directories.tokendir = " + (dir_ / "tokens").string() +
                                              "\nobjectstore.backend = file\nlog.level = ERROR\n");
  ::setenv("SOFTHSM2_CONF", (dir_ / "softhsm2.conf").c_str(), 1);
  auto r = test::run_shell("softhsm2-util --init-token --free --label dlc-test --pin 1234 --so-pin 5678");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  test::write_file(dir_ / "pin", "1234\n");
  ::setenv("DLC_PKCS11_PIN_FILE", (dir_ / "pin").c_str(), 1);
  InitOptions io = init_opts("sm4-gcm");
  io.key.pkcs11_module = module;
  io.key.pkcs11_token = "dlc-test";
  io.key.pkcs11_key = "backup-kek";  // generated on the token, non-extractable
  init(io);
  auto bo = opts<BackupOptions>();
  bo.key = io.key;
  bo.key.prompt = false;
  bo.paths = {src_};
  run_backup(bo);
  // The key lives only on the token: its value is not in any repository file.
  auto slots = run_key_list(opts<RepoOptions>(), false).slots;
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0].type, "pkcs11");
  // A wrong PIN is an auth error.
  test::write_file(dir_ / "pin", "9999\n");
  try {
    run_backup(bo);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
  test::write_file(dir_ / "pin", "1234\n");
  auto ro = opts<RestoreOptions>();
  ro.key = bo.key;
  ro.target = dir_ / "out-hsm";
  EXPECT_TRUE(run_restore(ro).failed.empty());
  EXPECT_EQ(contents(ro.target / src_.relative_path()), contents(src_));
}

}  // namespace
}  // namespace dlc::backup
