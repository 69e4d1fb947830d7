// Overwrite patterns. Every pattern is block-addressable: the bytes at any
// offset can be produced on their own, so verification regenerates what was
// written instead of storing it, can sample, and can start anywhere (resume).
// The random pattern is the AES-256-CTR keystream of a key and IV derived for
// each pass from a random 32-byte job seed with HKDF-SHA256; it fails closed
// (throws) if randomness or the keystream looks broken, never writing a
// predictable "random" pass.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/crypto.h"
#include "core/secure_buffer.h"
#include "wipe/wipe.h"

namespace dlc::wipe {

enum class PatternKind { bytes, random };

struct PassSpec {
  PatternKind kind = PatternKind::bytes;
  std::vector<std::uint8_t> bytes{0x00};  // repeated (bytes kind)
  std::string label() const;              // "zero", "one", "0x55aa", "random"
};

// A method resolved into its passes.
struct MethodPlan {
  std::string method;                // as given: "dod-3pass", "custom:55,aa"
  std::vector<PassSpec> passes;
  VerifyMode verify = VerifyMode::last;
  double sample_percent = 100;
  std::string describe() const;      // "dod-3pass: 3 passes (zero, one, random), verify last"
  nlohmann::json to_json() const;
  static MethodPlan from_json(const nlohmann::json& j);
};

// Resolves --method/--passes/--final-zero/--verify/--sample; throws Errc::usage
// naming the valid choices.
MethodPlan plan_method(const std::string& method, unsigned passes, bool final_zero,
                       std::optional<VerifyMode> verify, double sample_percent);

// The random pattern's key (32) and IV (16) for one pass (0-based) of a job.
SecureBuffer derive_pass_key(crypto::ByteView seed, unsigned pass_index);
// A public commitment to the job seed, for the certificate (hex SHA-256 of a
// domain-separated seed): it lets a later audit that is given the seed check it.
std::string seed_commitment(crypto::ByteView seed);

// Produces and checks one pass's bytes. Not thread-safe (one per thread).
class PatternGenerator {
 public:
  // seed is required for random passes (ignored otherwise).
  PatternGenerator(const PassSpec& spec, crypto::ByteView seed, unsigned pass_index,
                   std::size_t max_block);
  ~PatternGenerator();
  PatternGenerator(PatternGenerator&&) noexcept;
  PatternGenerator& operator=(PatternGenerator&&) noexcept;

  // Bytes for [offset, offset + out.size()); offset must be a multiple of 16.
  void fill(std::uint64_t offset, std::span<std::uint8_t> out);
  // Index of the first byte of data (read at offset) that differs from the
  // pattern, or data.size() when all match.
  std::size_t first_mismatch(std::uint64_t offset, std::span<const std::uint8_t> data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlc::wipe
