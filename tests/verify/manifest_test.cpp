// Manifests (docs/formats/manifest.md): what an entry records, the Merkle root
// a third party can recompute (Python here), comparison naming every kind of
// difference, tamper detection, raw (non-UTF-8) names, volumes.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "core/audit_log.h"
#include "core/error.h"
#include "support/test_support.h"
#include "verify/verify.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;
using verify::EntryType;

void make_tree(const fs::path& root) {
  fs::create_directories(root / "a/b");
  write_file(root / "hello.txt", "hello\n");
  write_file(root / "a/data.bin", std::string(100000, 'z'));
  write_file(root / "a/b/empty", "");
  ASSERT_EQ(::symlink("../hello.txt", (root / "a/link").c_str()), 0);
  ASSERT_EQ(::link((root / "hello.txt").c_str(), (root / "a/b/hard").c_str()), 0);
  ASSERT_EQ(::setxattr((root / "hello.txt").c_str(), "user.k", "v\x01", 2, 0), 0);
  std::ofstream(root / "holes", std::ios::binary).seekp(4 << 20) << "end";
}

verify::Manifest build(const fs::path& root, crypto::HashAlg alg = crypto::HashAlg::sha256) {
  verify::ScanOptions o;
  o.root = root;
  o.alg = alg;
  return verify::build_manifest(o);
}

const verify::Entry& entry(const verify::Manifest& m, const std::string& path) {
  for (const auto& e : m.entries)
    if (e.path == path) return e;
  throw std::runtime_error("no entry " + path);
}

TEST(Manifest, RecordsEveryFieldAndHashesLikeSha256sum) {
  TempDir t;
  make_tree(t.path());
  const verify::Manifest m = build(t.path());
  EXPECT_EQ(m.kind, "tree");
  EXPECT_EQ(entry(m, ".").type, EntryType::dir);
  const auto& h = entry(m, "hello.txt");
  EXPECT_EQ(h.hash, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");  // sha256sum
  EXPECT_EQ(h.size, 6u);
  ASSERT_EQ(h.xattrs.size(), 1u);
  EXPECT_EQ(h.xattrs[0].name, "user.k");
  EXPECT_EQ(h.xattrs[0].value, std::string("v\x01", 2));
  EXPECT_NE(h.hardlink, 0u);
  EXPECT_EQ(entry(m, "a/b/hard").hardlink, h.hardlink);
  EXPECT_EQ(entry(m, "a/b/hard").hash, h.hash);
  EXPECT_EQ(entry(m, "a/link").type, EntryType::symlink);
  EXPECT_EQ(entry(m, "a/link").target, "../hello.txt");
  const auto& holes = entry(m, "holes");
  ASSERT_TRUE(holes.sparse.has_value());
  EXPECT_EQ(holes.sparse->size(), 1u);
  EXPECT_EQ(holes.size, (4u << 20) + 3);
  EXPECT_EQ(holes.hash, crypto::to_hex(crypto::sha256(read_file(t.path() / "holes"))));
  for (std::size_t i = 1; i < m.entries.size(); ++i) EXPECT_LT(m.entries[i - 1].path, m.entries[i].path);
  EXPECT_EQ(m.merkle_root, verify::merkle_root(m.entries, m.alg));
}

TEST(Manifest, OtherHashAlgorithmsAreSelectable) {
  TempDir t;
  write_file(t.path() / "abc", "abc");
  EXPECT_EQ(entry(build(t.path(), crypto::HashAlg::sm3), "abc").hash,
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");  // GB/T 32905 example
  EXPECT_EQ(entry(build(t.path(), crypto::HashAlg::blake2b_256), "abc").hash,
            crypto::to_hex(crypto::hash(crypto::HashAlg::blake2b_256, crypto::as_bytes("abc"))));
}

// A third party recomputes leaf hashes and the root from the saved file alone.
TEST(Manifest, PythonRecomputesTheMerkleRoot) {
  TempDir t;
  make_tree(t.path() / "tree");
  verify::Manifest m = build(t.path() / "tree");
  const fs::path file = t.path() / "m.json";
  verify::save_manifest(m, file, nullptr);
  const std::string py = R"PY(
import hashlib, json, sys
m = json.load(open(sys.argv[1], encoding="utf-8"))
H = lambda b: hashlib.sha256(b).digest()
leaves = [H(b"\x00" + json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()) for e in m["entries"]]
def mth(l):
    if len(l) == 1: return l[0]
    k = 1
    while k * 2 < len(l): k *= 2
    return H(b"\x01" + mth(l[:k]) + mth(l[k:]))
print(mth(leaves).hex())
)PY";
  write_file(t.path() / "check.py", py);
  RunResult r = run_shell("python3 " + (t.path() / "check.py").string() + " " + file.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, m.merkle_root + "\n");
}

TEST(Manifest, CompareNamesEveryKindOfDifference) {
  TempDir t;
  make_tree(t.path());
  const verify::Manifest before = build(t.path());
  write_file(t.path() / "a/data.bin", std::string(100000, 'y'));  // same size, other content
  ::chmod((t.path() / "a/b/empty").c_str(), 0600);
  fs::remove(t.path() / "a/link");
  ASSERT_EQ(::symlink("elsewhere", (t.path() / "a/link").c_str()), 0);
  write_file(t.path() / "new.txt", "x");
  ::setxattr((t.path() / "hello.txt").c_str(), "user.k", "other", 5, 0);
  fs::remove(t.path() / "a/b/hard");
  write_file(t.path() / "a/b/hard", "hello\n");  // no longer a hard link
  const verify::Manifest after = build(t.path());
  const verify::Comparison c = verify::compare(before, after);
  EXPECT_FALSE(c.ok);
  EXPECT_FALSE(c.roots_equal);
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& d : c.differences) got.insert({d.kind, d.path});
  EXPECT_TRUE(got.count({"content", "a/data.bin"}));
  EXPECT_TRUE(got.count({"mode", "a/b/empty"}));
  EXPECT_TRUE(got.count({"target", "a/link"}));
  EXPECT_TRUE(got.count({"extra", "new.txt"}));
  EXPECT_TRUE(got.count({"xattrs", "hello.txt"}));
  EXPECT_TRUE(got.count({"hardlink", "a/b/hard"}));
  for (const auto& d : c.differences)  // xattr values are never printed
    EXPECT_EQ(d.detail.find("other"), std::string::npos) << d.detail;
  fs::remove(t.path() / "new.txt");
  fs::remove(t.path() / "hello.txt");
  const verify::Comparison c2 = verify::compare(before, build(t.path()));
  bool missing = false;
  for (const auto& d : c2.differences) missing |= d.kind == "missing" && d.path == "hello.txt";
  EXPECT_TRUE(missing);
}

TEST(Manifest, AlteredManifestsAndSignaturesAreDetected) {
  TempDir t;
  make_tree(t.path() / "tree");
  ::setenv("DLC_HOME", (t.path() / "home").c_str(), 1);
  const audit::HostKey key = audit::HostKey::load_or_create(t.path() / "home");
  verify::Manifest m = build(t.path() / "tree");
  const fs::path file = t.path() / "m.json";
  verify::save_manifest(m, file, &key);
  const verify::Manifest loaded = verify::load_manifest(file);
  EXPECT_TRUE(verify::check_signature(verify::to_json(loaded), key.public_key()).valid);

  // An entry changed: the root no longer matches.
  nlohmann::json j = verify::read_json_file(file, "m");
  j["entries"][1]["mtime_ns"] = 7;
  write_file(t.path() / "bad1.json", j.dump());
  try {
    verify::load_manifest(t.path() / "bad1.json");
    FAIL() << "accepted an altered manifest";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::check_failed);
  }
  // Entry and root changed consistently: the signature catches it.
  verify::Manifest forged = loaded;
  forged.entries[1].mtime_ns = 7;
  forged.merkle_root = verify::merkle_root(forged.entries, forged.alg);
  EXPECT_FALSE(verify::check_signature(verify::to_json(forged), key.public_key()).valid);
  // Signed by another key: refused when pinned.
  const audit::HostKey other = audit::HostKey::load_or_create(t.path() / "other");
  const auto pinned = verify::check_signature(verify::to_json(loaded), other.public_key());
  EXPECT_FALSE(pinned.valid);
  EXPECT_NE(pinned.problem.find("another key"), std::string::npos);
}

TEST(Manifest, RawNamesThatAreNotUtf8RoundTrip) {
  TempDir t;
  const std::string name = std::string("caf\xe9") + ".csv";
  fs::create_directories(t.path() / "tree");
  write_file(t.path() / "tree" / name, "x");
  verify::Manifest m = build(t.path() / "tree");
  verify::save_manifest(m, t.path() / "m.json", nullptr);
  const std::string text = read_file(t.path() / "m.json");
  EXPECT_NE(text.find("\"path_hex\":\"636166e92e637376\""), std::string::npos);
  const verify::Manifest back = verify::load_manifest(t.path() / "m.json");
  EXPECT_TRUE(verify::compare(m, back).ok);
  EXPECT_EQ(verify::printable(name), "caf\\xE9.csv");
}

TEST(Manifest, VolumeImagesAreHashedPerChunk) {
  TempDir t;
  const fs::path img = t.path() / "disk.img";
  std::string data(10 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>(i / 4096);
  data += "tail";  // not a multiple of the block size
  write_file(img, data);
  verify::ScanOptions o;
  o.root = img;
  o.volume = true;
  o.chunk_size = 4 << 20;
  const verify::Manifest m = verify::build_manifest(o);
  ASSERT_EQ(m.kind, "volume");
  const auto& v = m.entries.front();
  EXPECT_EQ(v.size, data.size());
  ASSERT_EQ(v.chunks.size(), 3u);
  EXPECT_EQ(v.chunks[2], crypto::to_hex(crypto::sha256(std::string_view(data).substr(8 << 20))));
  EXPECT_EQ(v.hash, verify::volume_hash(v.chunks, crypto::HashAlg::sha256));
}

TEST(Manifest, EntryNumbersOfTheWrongKindAreMalformed) {
  // Found by tests/fuzz/verify_manifest: a float out of range (mtime_ns 1.7e26)
  // was converted to an integer with undefined behaviour; negatives wrapped.
  const nlohmann::json good = {{"path", "a"}, {"type", "file"}, {"mode", "0644"}, {"uid", 0}, {"gid", 0},
                               {"mtime_ns", 5}, {"size", 3}, {"hash", std::string(64, 'a')}};
  EXPECT_EQ(verify::entry_from_json(good).mtime_ns, 5);
  for (const nlohmann::json& bad : {nlohmann::json{{"mtime_ns", 1.76408e26}}, nlohmann::json{{"uid", -1}},
                                    nlohmann::json{{"gid", 4294967296}}, nlohmann::json{{"size", 2.5}},
                                    nlohmann::json{{"hardlink", 1e30}}, nlohmann::json{{"rdev", -3}},
                                    nlohmann::json{{"sparse", {{0, 1e300}}}}}) {
    nlohmann::json e = good;
    e.update(bad);
    try {
      (void)verify::entry_from_json(e);
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), Errc::check_failed) << err.what();
      EXPECT_NE(std::string(err.what()).find("malformed manifest"), std::string::npos) << err.what();
    }
  }
}

}  // namespace
}  // namespace dlc::test
