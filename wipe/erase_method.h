// EraseMethod: the one interface behind which every erasure technique sits
// (overwrite now; NVMe sanitize / format in issue 7; destruction records), so
// that a certificate is produced the same way for all of them. A method says
// its NIST SP 800-88 category, whether it supports a target, and runs,
// returning the evidence the certificate carries.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/crypto.h"
#include "core/io_engine.h"
#include "core/runtime.h"
#include "wipe/device_info.h"
#include "wipe/pattern.h"
#include "wipe/wipe.h"

namespace dlc::wipe {

class Journal;

enum class Category { clear, purge, destroy };
std::string_view category_name(Category c) noexcept;  // "clear", "purge", "destroy"

// What is erased: an open device or file and the byte ranges to cover.
struct EraseTarget {
  std::string kind;   // device | file | free-space | physical
  std::string path;
  io::File* file = nullptr;             // open read-write; null for physical media
  std::vector<io::Extent> extents;      // sorted, non-overlapping, aligned
  std::uint32_t sector = 512;           // granularity of mismatch reports
  const DeviceIdentity* device = nullptr;  // block devices
  std::uint64_t bytes() const;
};

struct EraseContext {
  EraseTarget& target;
  const WipeOptions& options;
  crypto::ByteView seed;                // random-pattern job seed (32 bytes)
  Journal* journal = nullptr;           // resumable targets (devices); null otherwise
  ProgressSink& progress;
  std::string label;                    // progress label prefix ("loop3")
  const std::atomic<bool>* cancel = nullptr;
};

struct Evidence {
  std::string technique;                // "overwrite", "nvme-sanitize-crypto", "destruction"
  nlohmann::json passes = nlohmann::json::array();
  nlohmann::json verification = nlohmann::json::object();
  bool verification_passed = true;      // false: a read-back found a mismatch
  std::uint64_t bytes_written = 0;
  std::uint64_t bytes_verified = 0;
  nlohmann::json extra = nlohmann::json::object();  // method-specific facts
};

class EraseMethod {
 public:
  virtual ~EraseMethod() = default;
  virtual std::string name() const = 0;        // "nist-clear", "dod-3pass", "nvme-sanitize"
  virtual Category category() const = 0;
  virtual std::string technique() const = 0;   // one line for the certificate
  virtual bool supports(const EraseTarget& target, std::string* why_not) const = 0;
  // Throws Errc::interrupted (state left resumable), Errc::io on device errors.
  virtual Evidence run(EraseContext& ctx) = 0;
};

// Overwrite with the plan's passes through the io engine, verifying by
// read-back (full or sampled) as the plan says. Category Clear on every medium.
std::unique_ptr<EraseMethod> make_overwrite_method(const MethodPlan& plan);

// A record of physical destruction (shred, disintegrate, pulverize, incinerate,
// melt: Destroy) or degaussing (Purge, magnetic media only) done by other
// equipment and attested by people; run() performs no I/O.
std::unique_ptr<EraseMethod> make_destruction_record(const std::string& method,
                                                     const std::string& details);

// ---- Pieces the overwrite method is built from (exposed for tests) -------------
// The sub-ranges of extents covering logical bytes [from, from + len) of their
// concatenation.
std::vector<io::Extent> slice_extents(const std::vector<io::Extent>& extents, std::uint64_t from,
                                      std::uint64_t len);

// Uniformly spread samples over [0, total): total is cut into `unit`-byte
// units, the units into k = ceil(units * percent / 100) equal strata, and one
// unit is drawn from each stratum with SHA-256(seed || stratum index) (first 8
// bytes, little-endian, modulo the stratum width); the first and the last unit
// are always included. Returns logical (offset, length) ranges, sorted.
std::vector<io::Extent> choose_samples(std::uint64_t total, std::uint64_t unit, double percent,
                                       crypto::ByteView seed);

}  // namespace dlc::wipe
