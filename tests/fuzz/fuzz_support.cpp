#include "fuzz_support.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/crypto.h"
#include "core/runtime.h"

// Undefined behaviour is a finding, not a warning: stop at the first report
// (in both the libFuzzer and the standalone builds; UBSAN_OPTIONS overrides).
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace dlc::fuzz {

std::vector<std::string_view> split_parts(std::string_view input) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = input.find(kPartSeparator);
    if (at == std::string_view::npos) {
      parts.push_back(input);
      return parts;
    }
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + kPartSeparator.size());
  }
}

namespace {

struct Scratch {
  fs::path path;
  pid_t owner = ::getpid();
  Scratch() {
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                        ? fs::path("/dev/shm")
                        : fs::temp_directory_path();
    std::string tmpl = (base / "dlc-fuzz-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) fail("cannot create a scratch directory under " + base.string());
    path = tmpl;
  }
  ~Scratch() {
    if (::getpid() != owner) return;  // a forked child leaves it to its parent
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

const fs::path& scratch() {
  static Scratch s;
  return s.path;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path p = scratch() / name;
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p, ec);
  if (ec) fail("cannot create " + p.string() + ": " + ec.message());
  return p;
}

void write_file(const fs::path& path, std::string_view bytes, unsigned mode) {
  std::error_code ec;
  fs::remove(path, ec);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) fail("cannot write " + path.string());
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void copy_tree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) fail("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
}

fs::path fixtures_dir() { return DLC_FUZZ_FIXTURES; }

namespace {

crypto::Ed25519PrivateKey fixed_private_key() {
  std::array<std::uint8_t, 32> seed{};
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(i + 1);
  return crypto::Ed25519PrivateKey::from_raw(seed);
}

fs::path home_dir() {
  static const fs::path home = [] {
    const fs::path h = scratch() / "home";
    std::error_code ec;
    fs::create_directories(h, ec);
    const SecureBuffer pem = fixed_private_key().to_pem();
    write_file(h / "host-key.pem",
               std::string_view(reinterpret_cast<const char*>(pem.data()), pem.size()), 0600);
    write_file(h / "host-key.pub", fixed_private_key().public_key().to_pem(), 0644);
    return h;
  }();
  return home;
}

}  // namespace

void quiet_environment() {
  set_notice_sink([](NoticeLevel, std::string_view) {});
  ::setenv("DLC_HOME", home_dir().c_str(), 1);
}

const audit::HostKey& host_key() {
  static const std::unique_ptr<audit::HostKey> key =
      std::make_unique<audit::HostKey>(audit::HostKey::load(home_dir() / "host-key.pem"));
  return *key;
}

std::string host_public_pem() { return host_key().public_key().to_pem(); }

void make_sample_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir / "sub", ec);
  write_file(dir / "a.csv",
             "name,id_no,phone\n"
             "Zhang San,11010519491231002X,13812345678\n"
             "Li Si,110105194912310029,13912345678\n",
             0640);
  write_file(dir / "notes.txt", "nothing sensitive here\n", 0644);
  write_file(dir / "empty", "", 0600);
  write_file(dir / "sub" / "b.txt", "contact: alice@example.com, password=hunter2\n", 0644);
  {  // 1 MiB with one 4 KiB data block in the middle: a hole on either side
    const int fd = ::open((dir / "sub" / "sparse.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create sparse.bin");
    const std::string block(4096, 'x');
    if (::pwrite(fd, block.data(), block.size(), 512 * 1024) != 4096 || ::ftruncate(fd, 1 << 20) != 0)
      fail("cannot write sparse.bin");
    ::close(fd);
  }
  fs::create_symlink("../a.csv", dir / "sub" / "link", ec);
  ::chmod((dir / "sub").c_str(), 0755);
  ::chmod(dir.c_str(), 0755);
  // Fixed times, children before their directories.
  const timespec t[2] = {{1764077900, 123456789}, {1764077900, 123456789}};
  for (const char* rel : {"a.csv", "notes.txt", "empty", "sub/b.txt", "sub/sparse.bin", "sub/link", "sub", "."})
    ::utimensat(AT_FDCWD, (dir / rel).c_str(), t, AT_SYMLINK_NOFOLLOW);
}

void BackupFixture::reset() const {
  std::error_code ec;
  fs::remove_all(work, ec);
  fs::copy(pristine, work, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) fail("cannot reset the backup fixture: " + ec.message());
}

backup::RepoOptions BackupFixture::options() const {
  backup::RepoOptions o;
  o.repo = work;
  o.key.key_file = key_file.string();
  o.key.prompt = false;
  o.threads = 1;
  return o;
}

backup::RepoOptions BackupFixture::passphrase_options() const {
  backup::RepoOptions o;
  o.repo = work;
  o.key.passphrase_env = "DLC_FUZZ_PASSPHRASE_FILE";
  o.key.prompt = false;
  o.threads = 1;
  return o;
}

const BackupFixture& backup_fixture() {
  static const BackupFixture f = [] {
    BackupFixture b;
    const fs::path base = scratch() / "backup";
    std::error_code ec;
    fs::create_directories(base, ec);
    b.pristine = base / "pristine";
    b.work = base / "work";
    b.key_file = base / "repo.key";
    b.passphrase_file = base / "repo.passphrase";
    copy_tree(fixtures_dir() / "backup-repo", b.pristine);
    write_file(b.key_file, read_file(fixtures_dir() / "backup-repo.key"), 0600);
    write_file(b.passphrase_file, read_file(fixtures_dir() / "backup-repo.passphrase"), 0600);
    for (const auto& e : fs::recursive_directory_iterator(b.pristine))
      if (e.is_regular_file()) ::chmod(e.path().c_str(), 0600);
    ::setenv("DLC_FUZZ_PASSPHRASE_FILE", b.passphrase_file.c_str(), 1);
    b.reset();
    return b;
  }();
  return f;
}

void fail(const std::string& what) {
  std::fprintf(stderr, "dlc fuzz: invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace dlc::fuzz
