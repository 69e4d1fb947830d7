// Backup trees (docs/formats/backup-repository.md, "Trees"): the JSON of a
// directory as ls, check, restore and the next backup (parent comparison)
// decode it.
//
// Input: TREE [kPartSeparator TREE]...: the first is the root. In each tree
// the text "@N" (N a digit) is replaced by the id of tree N, so that fuzzed
// trees can name each other as subtrees. The trees are stored as tree blobs
// with the real pack writer, indexed, and named by a new snapshot in a copy of
// the fixture repository (whose own blobs they may reference as content).
//
// Invariants: every path ls reports is "/"-separated names that are not
// empty, ".", ".." and hold no NUL; a restore creates nothing outside its
// target. The restore runs with the file-system identity of nobody when this
// runs as root, so that a traversal bug cannot touch the system.
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/checker.h"
#include "backup/pack.h"
#include "backup/repository.h"
#include "core/text.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;
using namespace dlc::backup;
using nlohmann::json;

namespace {

constexpr unsigned kNobody = 65534;
fs::path g_src;

void give_to_nobody(const fs::path& p) {
  if (::geteuid() != 0) return;
  (void)!::lchown(p.c_str(), kNobody, kNobody);
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(p, ec)))
    for (const auto& e : fs::recursive_directory_iterator(p, ec)) (void)!::lchown(e.path().c_str(), kNobody, kNobody);
}

// The file-system identity of this thread (and the threads it starts) while alive.
class AsNobody {
 public:
  AsNobody() : active_(::geteuid() == 0) {
    if (active_) {
      ::setfsgid(kNobody);
      ::setfsuid(kNobody);
    }
  }
  ~AsNobody() {
    if (active_) {
      ::setfsuid(0);
      ::setfsgid(0);
    }
  }
  AsNobody(const AsNobody&) = delete;
  AsNobody& operator=(const AsNobody&) = delete;

 private:
  bool active_;
};

bool clean_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  if (path == "/") return true;
  std::size_t pos = 1;
  for (;;) {
    const auto slash = path.find('/', pos);
    const std::string part = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) return false;
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

std::string substitute(std::string_view text, const std::vector<std::string>& ids) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '@' && i + 1 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '9') {
      const std::size_t n = static_cast<std::size_t>(text[i + 1] - '0');
      if (n < ids.size() && !ids[n].empty()) {
        out += ids[n];
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// Stores the trees as blobs of one new pack, indexes it, writes a snapshot of
// the first; returns the snapshot id.
std::string store(const std::vector<std::string_view>& parts, const fuzz::BackupFixture& fx) {
  auto repo = Repository::open(fx.options(), LockMode::none);
  const DataKey& key = repo->current_key();
  PackWriter pack(fx.work, repo->cipher(), key.key, key.id);
  std::vector<std::string> ids(parts.size());
  for (std::size_t i = parts.size(); i-- > 0;) {  // later trees first: earlier ones name them
    const std::string plain = substitute(parts[i], ids);
    const BlobId id = repo->blob_id(crypto::as_bytes(plain));
    ids[i] = hex(id);
    Bytes buf(plain.begin(), plain.end());
    buf.resize(plain.size() + crypto::kAeadTagSize);
    pack.add(BlobType::tree, id, 0, static_cast<std::uint32_t>(plain.size()), buf, plain.size());
  }
  (void)repo->write_index({pack.finish(false)});
  const std::int64_t t = now_ns();
  json snap = {{"time", dlc::rfc3339(t)}, {"time_ns", t},        {"host", "fuzz"}, {"user", "fuzz"},
               {"paths", {"/"}},     {"tags", json::array()}, {"tree", ids[0]}, {"parent", ""},
               {"key_id", key.id},   {"program", "dlc fuzz"}, {"summary", json::object()}};
  return repo->write_snapshot(snap);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  const auto& fx = fuzz::backup_fixture();
  g_src = fuzz::scratch() / "tree-src";
  fuzz::make_sample_tree(g_src);
  // nobody must be able to reach the repository copy, its key and the sandbox.
  ::chmod(fuzz::scratch().c_str(), 0711);
  ::chmod(fx.work.parent_path().c_str(), 0711);
  give_to_nobody(fx.key_file);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size));
  if (parts.size() > 10) return 0;  // "@N" names at most ten trees
  const auto& fx = fuzz::backup_fixture();
  fx.reset();
  std::string snapshot;
  fuzz::accept_dlc_errors([&] { snapshot = store(parts, fx); });
  if (snapshot.empty()) return 0;

  fuzz::accept_dlc_errors([&] {
    for (const auto& e : list_files(fx.options(), snapshot))
      if (!clean_path(e.path)) fuzz::fail("ls reports a path that leaves its snapshot: " + e.path);
  });
  fuzz::accept_dlc_errors([&] {
    auto repo = Repository::open(fx.options(), LockMode::none);
    CheckOptions co;
    static_cast<RepoOptions&>(co) = fx.options();
    co.read_data = true;
    co.state_dir = fuzz::scratch() / "tree-state";
    (void)to_json(run_check_on(*repo, co)).dump();
  });

  // Restore into box/target as nobody; box must hold nothing else afterwards.
  const fs::path box = fuzz::fresh_dir("tree-box");
  fs::create_directory(box / "target");
  give_to_nobody(box);
  give_to_nobody(fx.work);
  struct stat before {};
  ::stat(box.c_str(), &before);
  fuzz::accept_dlc_errors([&] {
    RestoreOptions ro;
    static_cast<RepoOptions&>(ro) = fx.options();
    ro.snapshot = snapshot;
    ro.target = box / "target";
    ro.verify = true;
    AsNobody as_nobody;
    (void)run_restore(ro);
  });
  struct stat after {};
  ::stat(box.c_str(), &after);
  for (const auto& e : fs::directory_iterator(box))
    if (e.path().filename() != "target") fuzz::fail("restore created " + e.path().string() + " outside its target");
  if (before.st_mode != after.st_mode || before.st_uid != after.st_uid || before.st_gid != after.st_gid)
    fuzz::fail("restore changed the owner or mode of its target's parent directory");

  // The next backup compares against its parent's trees.
  fuzz::accept_dlc_errors([&] {
    BackupOptions bo;
    static_cast<RepoOptions&>(bo) = fx.options();
    bo.paths = {g_src};
    bo.parent = snapshot;
    (void)run_backup(bo);
  });
  return 0;
}
