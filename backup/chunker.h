// Content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016) with
// normalized chunking, level 2. The gear table is derived from the
// repository's master key, so chunk boundaries (and so chunk sizes) do not
// leak which well-known files a repository holds. Parameters are stored in the
// repository config: min, avg (a power of two) and max chunk size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "backup/backup.h"
#include "core/crypto.h"

namespace dlc::backup {

class Chunker {
 public:
  // gear_seed: 2048 bytes (256 64-bit words). Throws Errc::usage on bad params.
  Chunker(const ChunkerParams& params, crypto::ByteView gear_seed);

  // Length of the next chunk at the start of data. When more data may follow
  // (eof == false) and no boundary is found within data, returns 0 unless
  // data.size() >= max (then max). With eof == true never returns 0 for non-empty data.
  std::size_t next(const std::uint8_t* data, std::size_t size, bool eof) const;

  const ChunkerParams& params() const noexcept { return params_; }

 private:
  ChunkerParams params_;
  std::array<std::uint64_t, 256> gear_{};
  std::uint64_t mask_small_ = 0;  // more bits: harder to cut before avg
  std::uint64_t mask_large_ = 0;  // fewer bits: easier to cut after avg
};

void validate(const ChunkerParams& p);

// Reads fd to its end and calls fn with each chunk in order (views into buf,
// valid during the call). buf is scratch space reused between calls.
// Returns the bytes read; throws Errc::io naming `what` on a read error.
std::uint64_t for_each_chunk(int fd, const Chunker& chunker, crypto::Bytes& buf, const std::string& what,
                             const std::function<void(crypto::ByteView chunk)>& fn);

}  // namespace dlc::backup
