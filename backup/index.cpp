#include "backup/index.h"

#include <algorithm>

#include "core/error.h"

namespace dlc::backup {

namespace {
constexpr char kIndexMagic[] = "DLCIDX01";
}

void Index::add_pack(PackInfo pack) {
  if (pack_by_id_.count(pack.id)) return;  // listed by two index files (after a crash or repair)
  const auto p = static_cast<std::uint32_t>(packs_.size());
  pack_by_id_.emplace(pack.id, p);
  for (std::uint32_t i = 0; i < pack.blobs.size(); ++i) map_.emplace(pack.blobs[i].id, Location{p, i});
  packs_.push_back(std::move(pack));
}

const BlobEntry* Index::find(const BlobId& id, const PackInfo** pack) const {
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  const PackInfo& p = packs_[it->second.pack];
  if (pack) *pack = &p;
  return &p.blobs[it->second.blob];
}

bool Index::is_primary(std::uint32_t pack, std::uint32_t blob) const {
  auto it = map_.find(packs_[pack].blobs[blob].id);
  return it != map_.end() && it->second.pack == pack && it->second.blob == blob;
}

void Index::clear() {
  packs_.clear();
  map_.clear();
  pack_by_id_.clear();
}

Bytes Index::encode(const std::vector<PackInfo>& packs) {
  std::size_t total = 12;
  for (const auto& p : packs) total += 48 + p.blobs.size() * kTableEntrySize;
  Bytes b(kIndexMagic, kIndexMagic + 8);
  b.reserve(total);
  put_u32(b, static_cast<std::uint32_t>(packs.size()));
  for (const auto& p : packs) {
    append(b, p.id);
    put_u64(b, p.size);
    put_u32(b, p.key_id);
    put_u32(b, static_cast<std::uint32_t>(p.blobs.size()));
    for (const auto& e : p.blobs) {
      b.push_back(static_cast<std::uint8_t>(e.type));
      b.push_back(e.flags);
      append(b, e.id);
      put_u64(b, e.offset);
      put_u32(b, e.length);
      put_u32(b, e.raw_length);
    }
  }
  return b;
}

std::vector<PackInfo> Index::decode(crypto::ByteView b, const fs::path& what) {
  auto bad = [&](const char* why) { return Error(Errc::io, "damaged index file", what.string(), why,
                                                 "run 'dlc backup repair index'"); };
  if (b.size() < 12 || std::memcmp(b.data(), kIndexMagic, 8) != 0) throw bad("bad magic");
  std::size_t pos = 8;
  const std::uint32_t n = get_u32(b.data() + pos);
  pos += 4;
  std::vector<PackInfo> packs;
  packs.reserve(std::min<std::size_t>(n, (b.size() - pos) / 48));  // n is data: no 4-billion reserve
  for (std::uint32_t i = 0; i < n; ++i) {
    if (b.size() - pos < 48) throw bad("truncated pack record");
    PackInfo p;
    std::memcpy(p.id.data(), b.data() + pos, 32);
    p.size = get_u64(b.data() + pos + 32);
    p.key_id = get_u32(b.data() + pos + 40);
    const std::uint32_t nb = get_u32(b.data() + pos + 44);
    pos += 48;
    if ((b.size() - pos) / kTableEntrySize < nb) throw bad("truncated blob records");
    p.blobs.resize(nb);
    for (auto& e : p.blobs) {
      const std::uint8_t* q = b.data() + pos;
      e.type = static_cast<BlobType>(q[0]);
      e.flags = q[1];
      std::memcpy(e.id.data(), q + 2, 32);
      e.offset = get_u64(q + 34);
      e.length = get_u32(q + 42);
      e.raw_length = get_u32(q + 46);
      pos += kTableEntrySize;
      // Readers allocate and read what an entry says: it must lie in its pack.
      if (e.offset < kPackPrefixSize || e.length < crypto::kAeadTagSize || e.offset > p.size ||
          e.length > p.size - e.offset)
        throw bad("a blob record lies outside its pack");
    }
    packs.push_back(std::move(p));
  }
  if (pos != b.size()) throw bad("trailing bytes");
  return packs;
}

}  // namespace dlc::backup
