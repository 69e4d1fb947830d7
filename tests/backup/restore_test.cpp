// The restorer, which writes blobs pack by pack (each blob opened once for
// every place it goes): shared and repeated blobs, many files open at once,
// holes of sparse files, what is in the way in the target (symlinks and
// hardlinks are replaced, never written through), --include, and damage: a
// damaged blob, a truncated pack and a missing pack fail exactly the files
// whose blobs they hold, and every other file restores byte for byte.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "backup/backup.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

using nlohmann::json;

std::string random_string(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class Restore : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(dir_ / "pass", "restore test passphrase\n");
    ::setenv("DLC_PASSPHRASE_FILE", (dir_ / "pass").c_str(), 1);
    ::setenv("DLC_HOME", (dir_ / "home").c_str(), 1);
    src_ = dir_ / "src";
    fs::create_directories(src_ / "many");
    const std::string a = random_string(1536 << 10, 1);
    test::write_file(src_ / "a.bin", a);
    test::write_file(src_ / "copy-of-a.bin", a);                               // every blob shared
    test::write_file(src_ / "a-twice.bin", a + a);                             // blobs repeated in one file
    test::write_file(src_ / "b.bin", random_string(2 << 20, 2));
    test::write_file(src_ / "empty", "");
    for (int i = 0; i < 40; ++i)  // more files than a worker keeps open
      test::write_file(src_ / "many" / std::string("f").append(std::to_string(i)), random_string(5000 + 97 * i, 100 + i));
    InitOptions io;
    io.repo = dir_ / "repo";
    io.scrypt_n = 1 << 12;
    io.chunker = {64 * 1024, 256 * 1024, 1024 * 1024};
    init(io);
    auto bo = opts<BackupOptions>();
    bo.paths = {src_};
    run_backup(bo);
  }

  template <typename T>
  T opts() {
    T o;
    o.repo = dir_ / "repo";
    o.key.prompt = false;
    return o;
  }

  RestoreResult restore(const fs::path& target, bool verify = true, std::vector<std::string> includes = {}) {
    auto o = opts<RestoreOptions>();
    o.target = target;
    o.verify = verify;
    o.includes = std::move(includes);
    return run_restore(o);
  }

  // Source files, relative path -> content.
  std::map<std::string, std::string> source_files() {
    std::map<std::string, std::string> m;
    for (auto& e : fs::recursive_directory_iterator(src_))
      if (e.is_regular_file()) m[fs::relative(e.path(), src_).string()] = test::read_file(e.path());
    return m;
  }
  fs::path restored(const fs::path& target, const std::string& rel) { return target / src_.relative_path() / rel; }

  // Where each file's blobs are: relative path -> (pack path, offset, sealed length) per blob.
  struct Place {
    fs::path pack;
    std::uint64_t offset, length;
  };
  std::map<std::string, std::vector<Place>> layout() {
    auto repo = Repository::open(opts<RepoOptions>(), LockMode::shared);
    repo->load_index();
    std::map<std::string, std::vector<Place>> m;
    const Snapshot s = repo->find_snapshot("latest");
    walk_tree(*repo, blob_id_from_hex(s.doc.at("tree").get<std::string>()), [&](const std::string& path, const json& n) {
      if (n.value("type", "") != "file") return true;
      const std::string rel = fs::path(path).lexically_relative(src_).string();
      auto& places = m[rel];
      for (const json& h : n.value("content", json::array())) {
        const PackInfo* pack = nullptr;
        const BlobEntry* e = repo->index().find(blob_id_from_hex(h.get<std::string>()), &pack);
        EXPECT_NE(e, nullptr);
        places.push_back({pack_path(repo->path(), pack->id), e->offset, e->length});
      }
      return true;
    });
    return m;
  }

  // Restores after damage: the files `hit` selects (by their blobs) fail
  // with a reason containing `reason`; every other file is byte-identical.
  void expect_only(const std::function<bool(const Place&)>& hit, const std::string& reason) {
    const auto where = layout();
    std::set<std::string> bad;
    for (const auto& [rel, places] : where)
      if (std::any_of(places.begin(), places.end(), hit)) bad.insert(rel);
    ASSERT_FALSE(bad.empty()) << "the damage hits no file";
    ASSERT_LT(bad.size(), where.size()) << "the damage hits every file";
    const fs::path target = dir_ / "out";
    const RestoreResult r = restore(target, /*verify=*/true);
    std::set<std::string> failed;
    for (const auto& f : r.failed) {
      const std::string path = f.substr(0, f.find(": "));
      failed.insert(fs::path(path).lexically_relative(target / src_.relative_path()).string());
      EXPECT_NE(f.find(reason), std::string::npos) << f;
    }
    EXPECT_EQ(failed, bad);
    for (const auto& [rel, content] : source_files()) {
      if (bad.count(rel)) continue;
      EXPECT_EQ(test::read_file(restored(target, rel)), content) << rel;
    }
    EXPECT_EQ(r.files, where.size() - bad.size());
  }

  test::TempDir dir_;
  fs::path src_;
};

TEST_F(Restore, SharedRepeatedAndManyFilesRestoreByteForByte) {
  const fs::path target = dir_ / "out";
  const RestoreResult r = restore(target);
  EXPECT_TRUE(r.failed.empty()) << r.failed.front();
  const auto files = source_files();
  EXPECT_EQ(r.files, files.size());
  EXPECT_EQ(r.verified_files, files.size());
  for (const auto& [rel, content] : files) EXPECT_EQ(test::read_file(restored(target, rel)), content) << rel;
  // Again over the first restore: everything is rewritten in place.
  test::write_file(restored(target, "b.bin"), "something else");
  const RestoreResult again = restore(target);
  EXPECT_TRUE(again.failed.empty());
  for (const auto& [rel, content] : files) EXPECT_EQ(test::read_file(restored(target, rel)), content) << rel;
}

TEST_F(Restore, SparseFilesGetTheirHolesBack) {
  const fs::path sparse = src_ / "sparse.img";
  {
    Fd fd(::open(sparse.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), 16 << 20), 0);
    const std::string data = random_string(8192, 9);
    ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), 5 << 20), static_cast<ssize_t>(data.size()));
  }
  auto bo = opts<BackupOptions>();
  bo.paths = {src_};
  run_backup(bo);
  const fs::path target = dir_ / "out";
  const RestoreResult r = restore(target);
  EXPECT_TRUE(r.failed.empty()) << r.failed.front();
  const fs::path out = restored(target, "sparse.img");
  EXPECT_EQ(test::read_file(out), test::read_file(sparse));
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 16 << 20);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the holes were written as zeros";
}

TEST_F(Restore, NeverWritesThroughWhatIsInTheWay) {
  const fs::path target = dir_ / "out";
  fs::create_directories(restored(target, ""));
  const std::string precious = "a file outside the target\n";
  test::write_file(dir_ / "outside-1", precious);
  test::write_file(dir_ / "outside-2", precious);
  fs::create_symlink(dir_ / "outside-1", restored(target, "a.bin"));       // a symlink in the way
  fs::create_hard_link(dir_ / "outside-2", restored(target, "b.bin"));     // a hardlink in the way
  const RestoreResult r = restore(target);
  EXPECT_TRUE(r.failed.empty()) << r.failed.front();
  EXPECT_EQ(test::read_file(dir_ / "outside-1"), precious);
  EXPECT_EQ(test::read_file(dir_ / "outside-2"), precious);
  EXPECT_FALSE(fs::is_symlink(restored(target, "a.bin")));
  EXPECT_EQ(test::read_file(restored(target, "a.bin")), test::read_file(src_ / "a.bin"));
  EXPECT_EQ(test::read_file(restored(target, "b.bin")), test::read_file(src_ / "b.bin"));
}

TEST_F(Restore, IncludeRestoresOnlyMatchingFiles) {
  const fs::path target = dir_ / "out";
  const RestoreResult r = restore(target, true, {(src_ / "many").string()});
  EXPECT_TRUE(r.failed.empty());
  EXPECT_EQ(r.files, 40u);
  EXPECT_TRUE(fs::exists(restored(target, "many/f39")));
  EXPECT_FALSE(fs::exists(restored(target, "a.bin")));
  EXPECT_FALSE(fs::exists(restored(target, "b.bin")));
}

TEST_F(Restore, ADamagedBlobFailsOnlyTheFilesUsingIt) {
  const auto where = layout();
  const Place victim = where.at("a.bin").at(1);  // also in copy-of-a.bin and (twice) in a-twice.bin
  {
    std::string pack = test::read_file(victim.pack);
    pack[victim.offset + victim.length / 2] ^= 0x01;
    ::chmod(victim.pack.c_str(), 0644);
    test::write_file(victim.pack, pack);
  }
  expect_only([&](const Place& p) { return p.pack == victim.pack && p.offset == victim.offset; }, "damaged blob");
}

TEST_F(Restore, ATruncatedPackFailsOnlyTheBlobsBeyondTheCut) {
  const auto where = layout();
  const Place last = where.at("b.bin").back();
  const std::uint64_t cut = last.offset + 5;
  ASSERT_EQ(::truncate(last.pack.c_str(), static_cast<off_t>(cut)), 0);
  expect_only([&](const Place& p) { return p.pack == last.pack && p.offset + p.length > cut; }, "beyond the end");
}

TEST_F(Restore, AMissingPackFailsOnlyTheFilesWithBlobsInIt) {
  const auto where = layout();
  const fs::path gone = where.at("many/f0").at(0).pack;
  fs::remove(gone);
  expect_only([&](const Place& p) { return p.pack == gone; }, "cannot open pack");
}

TEST_F(Restore, AnInterruptedRestoreSaysSo) {
  stop_requested() = true;
  try {
    restore(dir_ / "out");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::interrupted);
  }
  stop_requested() = false;
  const RestoreResult r = restore(dir_ / "out");  // and runs again
  EXPECT_TRUE(r.failed.empty());
}

}  // namespace
}  // namespace dlc::backup
