// Damaged or hostile repository documents (found by the fuzz targets in
// tests/fuzz): every one is refused with a dlc::Error where it is decoded, a
// restore never leaves its target, and nothing crashes, allocates what a
// document claims, or converts a float to an integer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include <nlohmann/json.hpp>

#include "backup/backup.h"
#include "backup/checker.h"
#include "backup/index.h"
#include "backup/pack.h"
#include "backup/repository.h"
#include "core/error.h"
#include "support/test_support.h"

namespace dlc::backup {
namespace {

using crypto::Bytes;
using nlohmann::json;

// ---- packs and index files -------------------------------------------------------

// A pack of one blob whose table is replaced by `table` (plaintext), sealed
// with the pack's key as the format says (nonce 01 || 0^11, aad = prefix).
fs::path pack_with_table(const fs::path& repo, const SecureBuffer& key, const Bytes& table, PackInfo* info) {
  PackWriter w(repo, crypto::AeadAlg::aes_256_gcm, key, 1);
  Bytes buf(100 + crypto::kAeadTagSize, 'x');
  w.add(BlobType::data, crypto::sha256(std::string(100, 'x')), 0, 100, buf, 100);
  *info = w.finish();
  const fs::path p = pack_path(repo, info->id);
  std::string file = test::read_file(p);
  const auto* b = reinterpret_cast<const std::uint8_t*>(file.data());
  const std::uint32_t tlen = get_u32(b + file.size() - kPackFooterSize);
  file.resize(file.size() - kPackFooterSize - tlen);
  crypto::Aead aead(crypto::AeadAlg::aes_256_gcm, derive_pack_key(crypto::AeadAlg::aes_256_gcm, key, info->id));
  std::array<std::uint8_t, 12> nonce{};
  nonce[0] = 1;
  Bytes sealed = aead.seal(nonce, crypto::ByteView(b, kPackPrefixSize), table);
  put_u32(sealed, static_cast<std::uint32_t>(sealed.size()));
  append(sealed, std::string_view("DLCPEND1"));
  file.append(sealed.begin(), sealed.end());
  test::write_file(p, file);
  return p;
}

Bytes table_of(const BlobEntry& e) {
  Bytes t;
  put_u32(t, 1);
  t.push_back(static_cast<std::uint8_t>(e.type));
  t.push_back(e.flags);
  append(t, e.id);
  put_u64(t, e.offset);
  put_u32(t, e.length);
  put_u32(t, e.raw_length);
  return t;
}

TEST(DamagedPack, ATableEntryWhoseEndWrapsAroundIsOutsideThePack) {
  test::TempDir dir;
  SecureBuffer key = crypto::random_key(32);
  BlobEntry e;
  e.offset = ~std::uint64_t{0} - 7;  // offset + length wraps to a small number
  e.length = 100;
  PackInfo info;
  const fs::path p = pack_with_table(dir.path(), key, table_of(e), &info);
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  auto aead_for = [&](std::uint32_t, const BlobId& salt) {
    return crypto::Aead(crypto::AeadAlg::aes_256_gcm, derive_pack_key(crypto::AeadAlg::aes_256_gcm, key, salt));
  };
  try {
    read_pack_table(fd, fs::file_size(p), p, aead_for);
    ADD_FAILURE() << "accepted a table entry outside the pack";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), Errc::io);
    EXPECT_NE(std::string(err.what()).find("outside the pack"), std::string::npos) << err.what();
  }
  ::close(fd);
}

TEST(DamagedPack, ABlobShorterThanItsTagOrWithALyingRawLengthIsAnError) {
  crypto::Aead aead(crypto::AeadAlg::aes_256_gcm, crypto::random_key(32));
  BlobEntry e;
  e.offset = kPackPrefixSize;
  Bytes tiny(5, 0);
  try {
    open_blob(aead, e, tiny);
    ADD_FAILURE() << "opened a 5-byte blob";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), Errc::auth);
  }
  // A zstd frame of 1000 bytes whose entry claims 4 GiB - 1: refused before
  // anything of that size is allocated.
  const std::string raw(1000, 'z');
  Bytes frame(ZSTD_compressBound(raw.size()));
  frame.resize(ZSTD_compress(frame.data(), frame.size(), raw.data(), raw.size(), 3));
  e.flags = kBlobZstd;
  e.raw_length = 0xffffffffu;
  e.id = crypto::sha256(raw);
  Bytes sealed = aead.seal(blob_nonce(e.offset), blob_aad(e.type, e.id), frame);
  try {
    open_blob(aead, e, sealed);
    ADD_FAILURE() << "accepted a raw length the frame contradicts";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), Errc::io);
    EXPECT_NE(std::string(err.what()).find("wrong length"), std::string::npos) << err.what();
  }
  e.raw_length = 1000;
  sealed = aead.seal(blob_nonce(e.offset), blob_aad(e.type, e.id), frame);
  const Bytes plain = open_blob(aead, e, sealed);
  EXPECT_EQ(std::string(plain.begin(), plain.end()), raw);

  // A frame that does not declare its size (dlc never writes one) cannot make
  // the entry's raw length be allocated either.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  Bytes undeclared(ZSTD_compressBound(raw.size()));
  undeclared.resize(ZSTD_compress2(cctx, undeclared.data(), undeclared.size(), raw.data(), raw.size()));
  ZSTD_freeCCtx(cctx);
  e.raw_length = 0xffffffffu;
  sealed = aead.seal(blob_nonce(e.offset), blob_aad(e.type, e.id), undeclared);
  try {
    open_blob(aead, e, sealed);
    ADD_FAILURE() << "accepted a frame without a declared size";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("does not declare its size"), std::string::npos) << err.what();
  }
}

TEST(DamagedIndex, BlobRecordsOutsideTheirPackAndHugeCountsAreErrors) {
  PackInfo p;
  p.size = 1000;
  p.blobs.push_back({crypto::sha256(std::string("a")), BlobType::data, 0, 48, 100, 84});
  EXPECT_EQ(Index::decode(Index::encode({p}), "ok").size(), 1u);
  for (auto [offset, length] : std::vector<std::pair<std::uint64_t, std::uint32_t>>{
           {0, 100}, {48, 3}, {990, 100}, {~std::uint64_t{0} - 7, 100}}) {
    PackInfo bad = p;
    bad.blobs[0].offset = offset;
    bad.blobs[0].length = length;
    EXPECT_THROW(Index::decode(Index::encode({bad}), "bad"), Error) << offset << "+" << length;
  }
  Bytes huge = Index::encode({});
  huge[8] = huge[9] = huge[10] = huge[11] = 0xff;  // 4 billion packs in 12 bytes
  EXPECT_THROW(Index::decode(huge, "huge"), Error);
}

TEST(DamagedIndex, ReadAheadOfAPackStopsAtTheEndOfTheFile) {
  // Found by tests/fuzz/backup_index: an index claiming a pack of 2^60 bytes
  // made `check --read-data` read ahead 128 KiB at a time past the end of the
  // file for hours (posix_fadvise accepts ranges beyond EOF).
  test::TempDir dir;
  test::write_file(dir / "pack", std::string(300 << 10, 'p'));
  const int fd = ::open((dir / "pack").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  prefetch_range(fd, 0, std::uint64_t{1} << 60);
  prefetch_range(fd, 100 << 10, ~std::uint64_t{0} - 5);  // offset + length wraps
  prefetch_range(fd, std::uint64_t{1} << 62, 1 << 20);   // wholly past the end
  {
    PackPrefetcher p({{dir / "pack", 0, std::uint64_t{1} << 60}, {dir / "pack", 0, std::uint64_t{1} << 60}}, 2);
    EXPECT_TRUE(p.take(0));
  }  // the destructor joins the read-ahead thread
  ::close(fd);
}

// ---- a repository with crafted documents -----------------------------------------------

class DamagedRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DLC_HOME", (dir_ / "home").c_str(), 1);
    pass_ = dir_ / "pass";
    test::write_file(pass_, "correct horse battery staple\n");
    ::setenv("DLC_PASSPHRASE_FILE", pass_.c_str(), 1);
    repo_ = dir_ / "repo";
    InitOptions o;
    o.repo = repo_;
    o.key.prompt = false;
    o.scrypt_n = 16;
    init(o);
  }
  RepoOptions opts() const {
    RepoOptions o;
    o.repo = repo_;
    o.key.prompt = false;
    o.threads = 1;
    return o;
  }
  // Stores trees (the first is the root) in a new pack, indexes it and writes
  // a snapshot of it; returns the snapshot id.
  std::string snapshot_of(const std::vector<std::string>& trees) {
    auto repo = Repository::open(opts(), LockMode::none);
    const DataKey& key = repo->current_key();
    PackWriter w(repo_, repo->cipher(), key.key, key.id);
    std::string root;
    for (const auto& t : trees) {
      const BlobId id = repo->blob_id(crypto::as_bytes(t));
      if (root.empty()) root = hex(id);
      Bytes buf(t.begin(), t.end());
      buf.resize(t.size() + crypto::kAeadTagSize);
      w.add(BlobType::tree, id, 0, static_cast<std::uint32_t>(t.size()), buf, t.size());
    }
    repo->write_index({w.finish()});
    return repo->write_snapshot({{"tree", root}, {"time_ns", 1}, {"paths", {"/"}}});
  }
  test::TempDir dir_;
  fs::path pass_, repo_;
};

json node(const std::string& name, const std::string& type) {
  return {{"name", name}, {"type", type}, {"mode", 0755}, {"mtime", 0}, {"uid", 0}, {"gid", 0}};
}

TEST_F(DamagedRepo, NodeNamesThatLeaveTheRestoreTargetAreRefused) {
  const fs::path box = dir_ / "box";
  fs::create_directories(box / "target");
  for (const std::string& name : std::vector<std::string>{"..", ".", "", "a/b", std::string("..\0x", 4), "x\xff/.."}) {
    json root = {{"nodes", {node(name, "dir")}}};
    root["nodes"][0]["mode"] = 0777;
    const std::string snap = snapshot_of({root.dump(-1, ' ', false, json::error_handler_t::replace)});
    RestoreOptions ro;
    static_cast<RepoOptions&>(ro) = opts();
    ro.snapshot = snap;
    ro.target = box / "target";
    try {
      run_restore(ro);
      ADD_FAILURE() << "restored a tree with a node named " << json(name).dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::io);
      EXPECT_NE(std::string(e.what()).find("damaged tree"), std::string::npos) << e.what();
    }
    EXPECT_THROW(list_files(opts(), snap), Error);
  }
  struct stat st {};
  ASSERT_EQ(::stat(box.c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 07777, 0777u) << "the restore changed its target's parent";
  EXPECT_EQ(std::distance(fs::directory_iterator(box), fs::directory_iterator()), 1);
}

TEST_F(DamagedRepo, TwoNodesOfOneNameAreRefused) {
  // A symlink "a" -> "/" and a directory "a": restoring the directory's
  // children would write through the link.
  json link = node("a", "symlink");
  link["target"] = "/";
  const std::string snap = snapshot_of({json{{"nodes", {link, node("a", "dir")}}}.dump()});
  EXPECT_THROW(list_files(opts(), snap), Error);
}

TEST_F(DamagedRepo, MistypedNodeMembersAreADamagedTreeNotACrash) {
  // Each of these used to escape as a JSON exception; "sparse" and "content"
  // did so on a restore worker thread, which terminated the process.
  for (const json& bad : {json{{"sparse", "yes"}}, json{{"content", {1}}}, json{{"uid", 1e30}},
                          json{{"mtime", "x"}}, json{{"xattrs", {{"user.a", 5}}}}, json{{"subtree", 7}}}) {
    json n = node("f", "file");
    n.update(bad);
    const std::string snap = snapshot_of({json{{"nodes", {n}}}.dump()});
    RestoreOptions ro;
    static_cast<RepoOptions&>(ro) = opts();
    ro.snapshot = snap;
    ro.target = dir_ / "out";
    EXPECT_THROW(run_restore(ro), Error) << bad.dump();
    CheckOptions co;
    static_cast<RepoOptions&>(co) = opts();
    co.state_dir = dir_ / "state";
    CheckResult r;
    EXPECT_NO_THROW(r = run_check(co)) << bad.dump();
    EXPECT_FALSE(r.ok) << bad.dump();
  }
}

TEST_F(DamagedRepo, AnIndexNamingAnUnknownDataKeyIsDamageNotACrash) {
  // E.g. a keyring restored from a copy older than a key rotation. check
  // --read-data opens packs on worker threads, where this used to throw
  // out of the thread and terminate the process.
  const fs::path src = dir_ / "src";
  fs::create_directories(src);
  test::write_file(src / "f", "some content");
  BackupOptions bo;
  static_cast<RepoOptions&>(bo) = opts();
  bo.paths = {src};
  run_backup(bo);
  {
    auto repo = Repository::open(opts(), LockMode::none);
    repo->load_index();
    std::vector<PackInfo> packs = repo->index().packs();
    for (auto& p : packs) p.key_id = 99;
    for (const auto& name : list_names(repo_ / "index")) fs::remove(repo_ / "index" / name);
    repo->write_index(packs);
  }
  CheckOptions co;
  static_cast<RepoOptions&>(co) = opts();
  co.read_data = true;
  co.state_dir = dir_ / "state";
  CheckResult r;
  ASSERT_NO_THROW(r = run_check(co));
  EXPECT_FALSE(r.ok);
  ASSERT_FALSE(r.damaged_blobs.empty());
  EXPECT_NE(r.damaged_blobs.front().reason.find("unknown data key"), std::string::npos)
      << r.damaged_blobs.front().reason;
}

TEST_F(DamagedRepo, DamagedSnapshotsAreErrorsAndCheckReportsThem) {
  for (const std::string& text : {std::string("not json"), std::string("[1]"), std::string(R"({"tree": 5})"),
                                  std::string(R"({"tree": ")") + std::string(64, 'a') + R"(", "paths": [1]})"}) {
    for (const auto& name : list_names(repo_ / "snapshots")) fs::remove(repo_ / "snapshots" / name);
    {
      auto repo = Repository::open(opts(), LockMode::none);
      repo->write_object("snapshots", ObjectKind::snapshot, crypto::as_bytes(text));
    }
    try {
      list_snapshots(opts());
      ADD_FAILURE() << "listed a snapshot " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("damaged snapshot"), std::string::npos) << e.what();
    }
    CheckOptions co;
    static_cast<RepoOptions&>(co) = opts();
    co.state_dir = dir_ / "state";
    const CheckResult r = run_check(co);
    EXPECT_FALSE(r.ok) << text;
    EXPECT_EQ(r.affected_snapshots.size(), 1u) << text;
  }
}

TEST_F(DamagedRepo, DamagedConfigAndKeyringAreErrors) {
  const std::string good = test::read_file(repo_ / "config");
  for (const char* patch : {R"({"chunker": null})", R"({"chunker": {"min": 1e30}})",
                                   R"({"compression": {"level": "max"}})", R"({"location": [1]})"}) {
    json c = json::parse(good);
    c.merge_patch(json::parse(patch));
    test::write_file(repo_ / "config", c.dump());
    try {
      Repository::open(opts(), LockMode::none, false);
      ADD_FAILURE() << "opened a config patched with " << patch;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::io) << e.what();
    }
  }
  test::write_file(repo_ / "config", "[]");
  EXPECT_THROW(Repository::open(opts(), LockMode::none, false), Error);
  test::write_file(repo_ / "config", good);

  const std::string good_keyring = test::read_file(repo_ / "keyring");
  for (const std::string& keyring : {std::string("{"), std::string(R"({"data_keys": [{"id": 1}], "current": 1})"),
                                     std::string(R"({"data_keys": [], "current": -1})")}) {
    test::write_file(repo_ / "keyring", good_keyring);
    {
      auto repo = Repository::open(opts(), LockMode::none);
      write_atomic(repo_ / "keyring", repo->seal_object(ObjectKind::keyring, crypto::as_bytes(keyring), 0));
    }
    try {
      Repository::open(opts(), LockMode::none);
      ADD_FAILURE() << "unlocked with keyring " << keyring;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("keyring"), std::string::npos) << e.what();
    }
  }
}

TEST_F(DamagedRepo, MalformedKeySlotsAreSkippedAndScryptCostIsBounded) {
  const std::string slot_name = list_names(repo_ / "keys").front();
  json slot = json::parse(test::read_file(repo_ / "keys" / slot_name));
  // Planted beside the real slot (names sort first): malformed ones are
  // skipped with a notice, the repository still opens and lists its slots.
  json missing_nonce = slot;
  missing_nonce["id"] = "0a";
  missing_nonce.erase("nonce");
  test::write_file(repo_ / "keys" / "0a", missing_nonce.dump());
  json odd_label = slot;
  odd_label["id"] = "0b";
  odd_label["label"] = 5;
  test::write_file(repo_ / "keys" / "0b", odd_label.dump());
  test::write_file(repo_ / "keys" / "0c", R"("just a string")");
  // A passphrase slot asking scrypt for a terabyte is skipped the same way,
  // before any of that memory is taken.
  json greedy = slot;
  greedy["id"] = "00";
  greedy["kdf"]["n"] = std::uint64_t{1} << 30;
  test::write_file(repo_ / "keys" / "00", greedy.dump());
  EXPECT_NO_THROW(Repository::open(opts(), LockMode::none));
  KeyListResult list;
  EXPECT_NO_THROW(list = run_key_list(opts(), true));
  EXPECT_EQ(list.slots.size(), 1u);

  // And such a slot is never written.
  KeyAddOptions ka;
  static_cast<RepoOptions&>(ka) = opts();
  ka.new_key.prompt = false;
  ka.scrypt_n = std::uint64_t{1} << 24;
  EXPECT_THROW(run_key_add(ka), Error);
}

TEST_F(DamagedRepo, FileNamesThatAreNotStrictUtf8BackUpRestoreAndReport) {
  // Overlong and surrogate sequences passed the old UTF-8 check, were stored
  // as JSON strings and made serializing the tree throw; a damaged blob under
  // a non-UTF-8 name made `check --json` throw.
  const fs::path src = dir_ / "src";
  fs::create_directories(src);
  const std::vector<std::string> names = {"over\xC0\x80long", "sur\xED\xA0\x80rogate", "caf\xE9"};
  for (const auto& n : names) test::write_file(src / n, "content of " + n);
  BackupOptions bo;
  static_cast<RepoOptions&>(bo) = opts();
  bo.paths = {src};
  ASSERT_NO_THROW(run_backup(bo));
  RestoreOptions ro;
  static_cast<RepoOptions&>(ro) = opts();
  ro.target = dir_ / "out";
  const RestoreResult rr = run_restore(ro);
  EXPECT_TRUE(rr.failed.empty());
  for (const auto& n : names)
    EXPECT_EQ(test::read_file(ro.target / src.relative_path() / n), "content of " + n);

  // Damage every data pack; the report names the files, as UTF-8.
  auto repo = Repository::open(opts(), LockMode::none);
  repo->load_index();
  for (const auto& p : repo->index().packs()) {
    std::string bytes = test::read_file(pack_path(repo_, p.id));
    for (const auto& b : p.blobs)
      if (b.type == BlobType::data) bytes[b.offset] = static_cast<char>(bytes[b.offset] ^ 1);
    test::write_file(pack_path(repo_, p.id), bytes);
  }
  CheckOptions co;
  static_cast<RepoOptions&>(co) = opts();
  co.read_data = true;
  co.state_dir = dir_ / "state";
  const CheckResult r = run_check(co);
  EXPECT_FALSE(r.ok);
  std::string text;
  ASSERT_NO_THROW(text = to_json(r).dump());
  EXPECT_NE(text.find("caf\\\\xE9"), std::string::npos) << text;
}

}  // namespace
}  // namespace dlc::backup
