// prune --max-unused: which partly used packs are repacked (the largest unused
// share first, until the unused data left is within the limit), the limit's
// forms, and prune on a real repository with each kind of limit: what it
// reports is what is left, the remaining snapshot restores byte for byte and
// check --read-data passes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <random>
#include <unordered_set>

#include "backup/backup.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

using nlohmann::json;

TEST(UnusedLimit, ParsesSizesSharesAndUnlimited) {
  UnusedLimit l = parse_unused_limit("0");
  EXPECT_EQ(l.kind, UnusedLimit::Kind::bytes);
  EXPECT_EQ(l.bytes, 0u);
  EXPECT_EQ(parse_unused_limit("4096").bytes, 4096u);
  EXPECT_EQ(parse_unused_limit("500K").bytes, 500u << 10);
  EXPECT_EQ(parse_unused_limit("200M").bytes, 200u << 20);
  EXPECT_EQ(parse_unused_limit("1.5G").bytes, 3u << 29);
  EXPECT_EQ(parse_unused_limit("2T").bytes, std::uint64_t{2} << 40);
  l = parse_unused_limit("5%");
  EXPECT_EQ(l.kind, UnusedLimit::Kind::percent);
  EXPECT_DOUBLE_EQ(l.percent, 5.0);
  EXPECT_EQ(parse_unused_limit("unlimited").kind, UnusedLimit::Kind::unlimited);
  for (const char* bad : {"", "x", "-1", "-5%", "5x", "100%", "150%", "% 5", " 5%", "5 %", "nan", "inf", "1e30T"}) {
    SCOPED_TRACE(bad);
    try {
      parse_unused_limit(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage);
    }
  }
}

TEST(UnusedLimit, AShareIsOfTheDataLeftAfterPruning) {
  UnusedLimit l = parse_unused_limit("20%");  // unused <= 20 % of used + unused: 1/4 of used
  EXPECT_EQ(unused_allowed(l, 4000), 1000u);
  EXPECT_EQ(unused_allowed(parse_unused_limit("0%"), 4000), 0u);
  EXPECT_EQ(unused_allowed(parse_unused_limit("300"), 4000), 300u);
  EXPECT_EQ(unused_allowed(parse_unused_limit("unlimited"), 0), ~std::uint64_t{0});
}

TEST(PacksToRepack, LargestUnusedShareFirstUntilWithinTheLimit) {
  // Shares 50 %, 90 %, 10 %; 150 bytes unused in all; 1150 used in the repository.
  const std::vector<PackUsage> packs = {{50, 50}, {10, 90}, {90, 10}};
  const std::uint64_t used = 1150;
  using V = std::vector<std::size_t>;
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("0")), (V{1, 0, 2}));
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("unlimited")), V{});
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("150")), V{});
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("149")), V{1});
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("60")), V{1});
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("59")), (V{1, 0}));
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("10")), (V{1, 0}));
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("9")), (V{1, 0, 2}));
  // 5 %: 1150 * 5 / 95 = 60 bytes may stay; 4 %: 47.
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("5%")), V{1});
  EXPECT_EQ(packs_to_repack(packs, used, parse_unused_limit("4%")), (V{1, 0}));
  // Equal shares: the one with more unused bytes first.
  EXPECT_EQ(packs_to_repack({{10, 10}, {40, 40}}, 50, parse_unused_limit("45")), V{1});
  EXPECT_EQ(packs_to_repack({}, 1000, parse_unused_limit("0")), V{});
}

std::string random_string(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A repository whose older snapshot is forgotten: its blobs share a pack with
// blobs the newer snapshot uses (one worker thread: one data pack per backup).
class PruneRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(dir_ / "pass", "prune test passphrase\n");
    ::setenv("DLC_PASSPHRASE_FILE", (dir_ / "pass").c_str(), 1);
    ::setenv("DLC_HOME", (dir_ / "home").c_str(), 1);
    src_ = dir_ / "src";
    fs::create_directories(src_);
    std::string big = random_string(6 << 20, 1);
    test::write_file(src_ / "big.bin", big);
    test::write_file(src_ / "other.bin", random_string(2 << 20, 2));
    InitOptions io;
    io.repo = dir_ / "base";
    io.scrypt_n = 1 << 12;
    io.chunker = {64 * 1024, 256 * 1024, 1024 * 1024};
    init(io);
    auto bo = opts<BackupOptions>(io.repo);
    bo.threads = 1;
    bo.paths = {src_};
    const std::string first = run_backup(bo).snapshot_id;
    // The middle MiB of big.bin changes; other.bin goes.
    big.replace(2 << 20, 1 << 20, random_string(1 << 20, 3));
    test::write_file(src_ / "big.bin", big);
    fs::remove(src_ / "other.bin");
    run_backup(bo);
    auto fo = opts<ForgetOptions>(io.repo);
    fo.snapshots = {first};
    ASSERT_EQ(run_forget(fo).removed.size(), 1u);
  }

  template <typename T>
  T opts(const fs::path& repo) {
    T o;
    o.repo = repo;
    o.key.prompt = false;
    return o;
  }

  // A fresh copy of the prepared repository.
  fs::path copy(const std::string& name) {
    const fs::path to = dir_ / name;
    fs::copy(dir_ / "base", to, fs::copy_options::recursive);
    return to;
  }

  // Measured independently of prune: the sealed bytes of used and of unused
  // blobs in the index, and the packs holding unused ones.
  struct Usage {
    std::uint64_t used = 0, unused = 0, packs_with_unused = 0;
  };
  Usage usage(const fs::path& repo) {
    auto r = Repository::open(opts<RepoOptions>(repo), LockMode::shared);
    r->load_index();
    std::unordered_set<BlobId, BlobIdHash> used;
    for (const auto& s : r->snapshots()) {
      const BlobId root = blob_id_from_hex(s.doc.at("tree").get<std::string>());
      used.insert(root);
      walk_tree(*r, root, [&](const std::string&, const json& n) {
        if (n.contains("subtree")) used.insert(blob_id_from_hex(n["subtree"].get<std::string>()));
        for (const json& h : n.value("content", json::array())) used.insert(blob_id_from_hex(h.get<std::string>()));
        return true;
      });
    }
    Usage u;
    for (const auto& p : r->index().packs()) {
      bool any = false;
      for (const auto& b : p.blobs) {
        (used.count(b.id) ? u.used : u.unused) += b.length;
        any |= !used.count(b.id);
      }
      u.packs_with_unused += any;
    }
    return u;
  }

  // The remaining snapshot restores byte for byte and every pack reads back.
  void expect_intact(const fs::path& repo) {
    auto ro = opts<RestoreOptions>(repo);
    ro.target = dir_ / ("out-" + repo.filename().string());
    ro.verify = true;
    const RestoreResult rr = run_restore(ro);
    EXPECT_TRUE(rr.failed.empty()) << rr.failed.front();
    EXPECT_EQ(test::read_file(ro.target / src_.relative_path() / "big.bin"), test::read_file(src_ / "big.bin"));
    EXPECT_FALSE(fs::exists(ro.target / src_.relative_path() / "other.bin"));
    auto co = opts<CheckOptions>(repo);
    co.read_data = true;
    co.state_dir = dir_ / "state";
    const CheckResult c = run_check(co);
    EXPECT_TRUE(c.ok) << to_json(c).dump(2);
    EXPECT_TRUE(c.warnings.empty()) << to_json(c).dump(2);  // no orphans, no temp files
  }

  PruneResult prune(const fs::path& repo, const std::string& limit, bool dry_run = false) {
    auto po = opts<PruneOptions>(repo);
    po.max_unused = parse_unused_limit(limit);
    po.dry_run = dry_run;
    return run_prune(po);
  }

  test::TempDir dir_;
  fs::path src_;
};

TEST_F(PruneRepo, UnlimitedDeletesOnlyUnusedPacksAndKeepsPartlyUsedOnes) {
  const Usage before = usage(dir_ / "base");
  ASSERT_GE(before.unused, 3u << 20) << "other.bin and the old middle of big.bin are unused";
  const fs::path repo = copy("unlimited");
  const PruneResult r = prune(repo, "unlimited");
  EXPECT_EQ(r.packs_repacked, 0u);
  EXPECT_EQ(r.packs_written, 0u);
  ASSERT_GE(r.packs_partly_used_kept, 1u) << "the scenario needs a partly used pack";
  const Usage after = usage(repo);
  EXPECT_EQ(r.unused_bytes_kept, after.unused);
  EXPECT_EQ(r.used_bytes, after.used);
  EXPECT_EQ(r.packs_partly_used_kept, after.packs_with_unused);
  EXPECT_GE(after.unused, 1u << 20);  // at least the old middle of big.bin
  expect_intact(repo);
}

TEST_F(PruneRepo, ZeroRepacksEveryPartlyUsedPack) {
  const fs::path repo = copy("zero");
  const PruneResult r = prune(repo, "0");
  EXPECT_GE(r.packs_repacked, 1u);
  EXPECT_EQ(r.packs_partly_used_kept, 0u);
  EXPECT_EQ(r.unused_bytes_kept, 0u);
  const Usage after = usage(repo);
  EXPECT_EQ(after.unused, 0u) << "data of the forgotten snapshot stayed";
  expect_intact(repo);
  // The default is 0.
  const fs::path repo2 = copy("default");
  auto po = opts<PruneOptions>(repo2);
  const PruneResult d = run_prune(po);
  EXPECT_EQ(d.packs_repacked, r.packs_repacked);
  EXPECT_EQ(usage(repo2).unused, 0u);
}

TEST_F(PruneRepo, ASharedLimitIsHeldAfterPruning) {
  const Usage before = usage(dir_ / "base");
  // A share above what is unused now repacks nothing; 5 % has to repack.
  const double share = 100.0 * static_cast<double>(before.unused) / static_cast<double>(before.used + before.unused);
  const fs::path loose = copy("loose");
  const PruneResult l = prune(loose, std::to_string(std::min(99.0, share + 5)) + "%");
  EXPECT_EQ(l.packs_repacked, 0u);
  const fs::path tight = copy("tight");
  const PruneResult t = prune(tight, "5%");
  EXPECT_GE(t.packs_repacked, 1u);
  const Usage after = usage(tight);
  EXPECT_EQ(t.unused_bytes_kept, after.unused);
  EXPECT_LE(after.unused * 95, after.used * 5 + 95) << "more than 5 % unused left";
  expect_intact(tight);
}

TEST_F(PruneRepo, DryRunReportsTheSameAndChangesNothing) {
  const fs::path repo = copy("dry");
  std::map<std::string, std::string> files;
  for (auto& e : fs::recursive_directory_iterator(repo))
    if (e.is_regular_file()) files[e.path().string()] = test::read_file(e.path());
  for (const char* limit : {"0", "unlimited", "5%"}) {
    SCOPED_TRACE(limit);
    const PruneResult d = prune(repo, limit, true);
    EXPECT_TRUE(d.dry_run);
    std::map<std::string, std::string> now;
    for (auto& e : fs::recursive_directory_iterator(repo))
      if (e.is_regular_file()) now[e.path().string()] = test::read_file(e.path());
    EXPECT_TRUE(now == files) << "a dry run changed the repository";
    const PruneResult real = prune(copy(std::string("real-") + (limit[0] == '5' ? "5" : limit)), limit);
    EXPECT_EQ(d.packs_deleted, real.packs_deleted);
    EXPECT_EQ(d.packs_repacked, real.packs_repacked);
    EXPECT_EQ(d.packs_partly_used_kept, real.packs_partly_used_kept);
    EXPECT_EQ(d.unused_bytes_kept, real.unused_bytes_kept);
    EXPECT_EQ(d.blobs_removed, real.blobs_removed);
  }
}

}  // namespace
}  // namespace dlc::backup
