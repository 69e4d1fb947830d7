// Durable file writes shared by every tool: nothing dlc writes (certificates,
// manifests, reports, labels, repository files, journals) is ever left
// half-written. A file is written to a temporary name in its own directory,
// fsynced, renamed over the target, and the directory fsynced.
#pragma once

#include <filesystem>
#include <string_view>

namespace dlc {

// How write_file_atomic treats a missing parent directory.
enum class ParentDir {
  must_exist,  // a missing directory is an error (Errc::io naming it)
  create,      // created (with its parents) with mode 0700
};

// The mode of a file created with open(2): 0666 less the process umask (for
// reports and copies a user asked for, as opposed to dlc's own state files).
inline constexpr unsigned kModeFromUmask = ~0u;

// Writes bytes to path atomically with the given mode (or kModeFromUmask): after a crash the path
// holds either the old content or the new, never a mix or a truncation. The
// temporary file (".<name>.dlc-tmp-XXXXXX" next to path) is removed on every
// error. Errors are dlc::Error (Errc::io) naming the file and the cause.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                       unsigned mode = 0600, ParentDir parent = ParentDir::must_exist);

// True for the temporary names write_file_atomic uses (so directory listings
// and clean-ups can skip or remove leftovers of a crash).
bool is_atomic_temp_name(std::string_view file_name);

// fsync of a directory, after creating, renaming or unlinking in it.
void fsync_dir(const std::filesystem::path& dir);

}  // namespace dlc
