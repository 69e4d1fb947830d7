// The index: which pack holds each blob. Index files (index/<id>) are sealed
// objects; each lists packs and their blobs. All index files are loaded at
// open into one hash map (about 70 bytes per blob).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "backup/pack.h"

namespace dlc::backup {

class Index {
 public:
  struct Location {
    std::uint32_t pack = 0;  // position in packs()
    std::uint32_t blob = 0;  // position in packs()[pack].blobs
  };
  // Adds a pack; blobs already known keep their first location (duplicates
  // stay in the pack until prune).
  void add_pack(PackInfo pack);
  bool has(const BlobId& id) const { return map_.count(id) != 0; }
  const BlobEntry* find(const BlobId& id, const PackInfo** pack = nullptr) const;
  const std::vector<PackInfo>& packs() const noexcept { return packs_; }
  std::size_t blob_count() const noexcept { return map_.size(); }
  // Whether the blob at this location is the one the map points to.
  bool is_primary(std::uint32_t pack, std::uint32_t blob) const;
  void clear();

  static Bytes encode(const std::vector<PackInfo>& packs);
  static std::vector<PackInfo> decode(crypto::ByteView plain, const fs::path& what);

 private:
  std::vector<PackInfo> packs_;
  std::unordered_map<BlobId, Location, BlobIdHash> map_;
  std::unordered_map<BlobId, std::uint32_t, BlobIdHash> pack_by_id_;
};

}  // namespace dlc::backup
