// Internal to dlc::migrate: where a tree migration writes. One interface, two
// back ends: a local directory (also what the remote receiver writes through)
// and a remote dlc receiver over TLS. Paths are relative to the destination
// root, '/'-separated; the local back end resolves every one with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so nothing lands outside the root.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "verify/verify.h"

namespace dlc::migrate {

struct DestInfo {
  bool exists = false;      // the root exists
  bool empty = true;        // ... and holds nothing
  std::uint64_t free_bytes = 0;
  bool free_unknown = false;   // the filesystem reports no size (ramfs and other pseudo filesystems)
  nlohmann::json attestation;  // remote: the receiver's signed attestation
};

struct Committed {
  std::string path;   // relative
  std::string hash;   // hex, as re-read from storage ("" when not re-read)
  std::string error;  // why it could not be re-read
};

class Destination {
 public:
  virtual ~Destination() = default;
  virtual DestInfo info() = 0;
  // Writes and syncs `bytes` in a temporary file beside the root and removes it.
  virtual double measure_write_bps(std::uint64_t bytes) = 0;
  // Link throughput (bytes/s) and round-trip time (ms); 0, 0 for a local destination.
  virtual std::pair<double, double> measure_link() { return {0, 0}; }
  virtual void prepare() = 0;  // creates the root (0700 until its metadata is applied)
  virtual std::vector<verify::Entry> list() = 0;  // metadata of everything, no content
  virtual void remove(const std::string& rel) = 0;  // recursively
  virtual void make_dir(const std::string& rel) = 0;
  virtual void make_node(const verify::Entry& e) = 0;  // symlink, fifo, device, socket + metadata
  virtual void make_link(const std::string& rel, const std::string& existing) = 0;
  virtual void set_meta(const verify::Entry& e) = 0;  // directories
  // Regular files: one slot per sending thread; begin/data/end run on that thread.
  virtual void file_begin(std::uint32_t slot, const verify::Entry& e) = 0;
  // hash: the hex hash of exactly these bytes when the caller has it already
  // (a file read in one piece), so a remote back end need not hash them again.
  virtual void file_data(std::uint32_t slot, std::uint64_t offset, crypto::ByteView data,
                         const std::string* hash = nullptr) = 0;
  virtual void file_end(std::uint32_t slot, const verify::Entry& meta) = 0;
  // Renames every file ended since the last commit into place and makes it
  // durable; with reread, queues them to be re-read from storage and hashed.
  virtual void commit(bool reread) = 0;
  // Hands the re-read results so far to take (wait: all of them). When the
  // destination has failed, the results it still has are handed over first
  // and the failure is thrown after: what was verified stays known as such.
  using TakeResults = std::function<void(const std::vector<Committed>&)>;
  virtual void results(bool wait, const TakeResults& take) = 0;
  // The destination manifest, content read from storage (files re-read in
  // this session and unchanged since are not read again).
  virtual verify::Manifest scan() = 0;
  virtual void close() = 0;
  // Where the time went (thread-milliseconds per phase), when the back end knows.
  virtual nlohmann::json profile() { return nlohmann::json::object(); }
};

struct LocalOptions {
  crypto::HashAlg alg = crypto::HashAlg::sha256;
  unsigned threads = 0;
  bool xattrs = true;
  bool sparse = true;
};
std::unique_ptr<Destination> make_local_destination(const std::string& root, const LocalOptions& o);

}  // namespace dlc::migrate
