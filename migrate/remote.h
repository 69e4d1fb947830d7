// Internal to dlc::migrate: the remote destination (a dlc receiver reached
// over mutual TLS 1.3) and the wire protocol both sides share
// (docs/migrate.md, "Remote: dlc migrate receive" and "Remote volumes").
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "migrate/destination.h"
#include "migrate/migrate.h"
#include "migrate/volume_sink.h"

namespace dlc::migrate {

std::unique_ptr<Destination> make_remote_destination(const Endpoint& ep, const MigrateOptions& o);

// A volume (image below the receiver's root, or a device it allows) at a
// remote receiver. Chunks are one-way frames carrying their hash; the
// receiver checks it, writes, syncs, re-reads from storage and hashes again,
// and results() hands over those re-read hashes.
struct RemoteVolumeInfo {
  std::string target;       // the receiver's absolute path of the image or device
  bool device = false;
  bool exists = false;      // an image: it exists already (a device always does)
  std::uint64_t size = 0;   // its current size
  std::uint64_t free_bytes = 0;  // images: free space below the receiver's root
  nlohmann::json attestation;
};

class RemoteVolume {
 public:
  virtual ~RemoteVolume() = default;
  virtual const RemoteVolumeInfo& info() const = 0;
  virtual double measure_write_bps(std::uint64_t bytes) = 0;  // 0 for devices (never test-written)
  virtual std::pair<double, double> measure_link() = 0;       // bytes/s, rtt ms
  // Creates or reopens the image sized to `size`, or claims the device (O_EXCL).
  virtual void open(std::uint64_t size, std::uint64_t chunk_size) = 0;
  virtual void send_chunk(std::uint64_t index, std::uint64_t offset, crypto::ByteView data,
                          const std::string& hash_hex) = 0;
  // Hands the results since the last call to take; wait: after every chunk
  // sent so far is done. When the receiver reports a failure, the results it
  // had are handed over before the failure is thrown.
  using TakeResults = std::function<void(const std::vector<ChunkResult>&)>;
  virtual void results(bool wait, const TakeResults& take) = 0;
  // The destination volume manifest, built by the receiver from storage.
  virtual verify::Manifest scan() = 0;
  // Where the receiver's time went (thread-ms per phase); {} when it does not say.
  virtual nlohmann::json profile() { return nlohmann::json::object(); }
  virtual void close() = 0;
};

std::unique_ptr<RemoteVolume> make_remote_volume(const Endpoint& ep, const MigrateOptions& o);

}  // namespace dlc::migrate
