// Shared by the fuzz targets in tests/fuzz (docs/fuzzing.md). Each target is
// one file <name>_fuzz.cpp defining LLVMFuzzerTestOneInput (and, when it needs
// fixtures, LLVMFuzzerInitialize); it is linked either with libFuzzer
// (-DDLC_FUZZ=ON, clang) or with standalone_main.cpp, which replays the seed
// corpus and deterministic mutations of it as a ctest.
//
// Contract of every target: the real parser dlc uses on untrusted bytes is
// called; a dlc::Error is an accepted outcome (the input was refused the
// documented way); anything else escaping the parser (a JSON library
// exception, std::invalid_argument, ...), a sanitizer report, or a broken
// invariant (fail()) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "backup/backup.h"
#include "core/audit_log.h"
#include "core/error.h"

namespace dlc::fuzz {

namespace fs = std::filesystem;

// Separates the parts of a multi-file input (e.g. an audit log and its head
// file). Seeds are written with it by fuzz_seed_gen; libFuzzer learns it.
inline constexpr std::string_view kPartSeparator = "\n--dlc-fuzz-part--\n";

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
// Splits at kPartSeparator; always returns at least one (possibly empty) part.
std::vector<std::string_view> split_parts(std::string_view input);

// A per-process scratch directory, on tmpfs (/dev/shm) when there is one so
// that fsync is cheap; removed when the process exits normally.
const fs::path& scratch();
// scratch()/name, emptied and recreated.
fs::path fresh_dir(const std::string& name);
void write_file(const fs::path& path, std::string_view bytes, unsigned mode = 0600);
std::string read_file(const fs::path& path);
// Copies a directory tree (used to reset fixtures between inputs).
void copy_tree(const fs::path& from, const fs::path& to);

// tests/fuzz/fixtures in the source tree (checked-in repositories, keys).
fs::path fixtures_dir();

// Silences dlc::notice (libraries warn about damaged inputs; that is expected)
// and points $DLC_HOME at a scratch directory holding the fixed host key.
void quiet_environment();

// The fixed Ed25519 host key every fuzz target and seed signs with: seed bytes
// 1..32. Written to $DLC_HOME/host-key.pem (0600) by quiet_environment().
const audit::HostKey& host_key();
std::string host_public_pem();

// A small, deterministic tree (same names, bytes, modes and times on every
// run): a CSV with a resident id and a mobile number, a text file with an
// e-mail address, an empty file, a sparse file, a subdirectory and a symlink.
// Used by the seed generator and by the targets that need real files
// (manifests, migration reports, residency checks, classification).
void make_sample_tree(const fs::path& dir);

// The checked-in backup repository (tests/fuzz/fixtures/backup-repo, written
// by fuzz_seed_gen): a key-file slot, a passphrase slot (scrypt N=16) and one
// snapshot of a sample tree. Copied to scratch once; reset() restores the
// working copy before each input.
struct BackupFixture {
  fs::path pristine;         // scratch copy of the fixture, never modified
  fs::path work;             // what targets modify and open
  fs::path key_file;         // the key-file slot's secret (0600)
  fs::path passphrase_file;  // the passphrase slot's secret, for DLC_FUZZ_PASSPHRASE_FILE
  void reset() const;
  backup::RepoOptions options() const;             // work repo, unlocked by key_file
  backup::RepoOptions passphrase_options() const;  // work repo, unlocked by the passphrase
};
// Copies the fixture on first use.
const BackupFixture& backup_fixture();

// Runs f; a dlc::Error is the parser refusing the input, which is fine.
template <class F>
void accept_dlc_errors(F&& f) {
  try {
    f();
  } catch (const dlc::Error&) {
  }
}

// Reports a broken invariant and aborts (a finding).
[[noreturn]] void fail(const std::string& what);

}  // namespace dlc::fuzz
