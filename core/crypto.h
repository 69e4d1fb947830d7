// dlc::crypto: every cryptographic primitive dlc uses, behind small types.
// Implementations are OpenSSL 3 EVP, except SM4-GCM and BLAKE2b-256, which come
// from libgcrypt (OpenSSL 3.0 has no SM4-GCM and no 256-bit BLAKE2b digest).
// Nothing here is a hand-written primitive. Failures throw dlc::Error:
// Errc::auth when authentication fails (tag mismatch, bad signature key),
// Errc::io for library or entropy failures (fail closed: never a silent fallback).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/secure_buffer.h"

namespace dlc::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string to_hex(ByteView bytes);
Bytes from_hex(std::string_view hex);  // throws Errc::usage on bad hex

// ---- Random -----------------------------------------------------------------
// Fills out from the OpenSSL CSPRNG; throws (never returns weak bytes) on failure.
void random_bytes(std::span<std::uint8_t> out);
Bytes random_bytes(std::size_t n);
SecureBuffer random_key(std::size_t n);

// ---- AEAD -------------------------------------------------------------------
enum class AeadAlg { aes_256_gcm, aes_128_gcm, chacha20_poly1305, sm4_gcm };

// "aes-256-gcm", "aes-128-gcm", "chacha20-poly1305", "sm4-gcm".
std::string_view aead_name(AeadAlg alg) noexcept;
AeadAlg aead_from_name(std::string_view name);  // throws Errc::usage naming the valid choices
std::vector<AeadAlg> all_aeads();

constexpr std::size_t kAeadNonceSize = 12;
constexpr std::size_t kAeadTagSize = 16;
std::size_t aead_key_size(AeadAlg alg) noexcept;  // 32, 16, 32, 16

// One key, many messages. Not thread-safe: use one Aead per thread.
class Aead {
 public:
  Aead(AeadAlg alg, ByteView key);
  ~Aead();
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;

  AeadAlg alg() const noexcept;

  // out = ciphertext || tag (plaintext.size() + kAeadTagSize bytes).
  // out may start at plaintext.data() (sealing in place); other overlap is Errc::usage.
  void seal(ByteView nonce, ByteView aad, ByteView plaintext, std::span<std::uint8_t> out);
  Bytes seal(ByteView nonce, ByteView aad, ByteView plaintext);

  // in = ciphertext || tag; out receives in.size() - kAeadTagSize bytes.
  // Throws Errc::auth when the tag does not verify (out is then zeroed), also
  // for an input shorter than the tag. out may start at in.data() (in place).
  void open(ByteView nonce, ByteView aad, ByteView in, std::span<std::uint8_t> out);
  Bytes open(ByteView nonce, ByteView aad, ByteView in);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Hashes -----------------------------------------------------------------
enum class HashAlg { sha256, sm3, blake2b_256 };
std::string_view hash_name(HashAlg alg) noexcept;  // "sha256", "sm3", "blake2b-256"
HashAlg hash_from_name(std::string_view name);      // throws Errc::usage
constexpr std::size_t kHashSize = 32;                // all three produce 32 bytes

class Hasher {
 public:
  explicit Hasher(HashAlg alg = HashAlg::sha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(ByteView data);
  void update(std::string_view s) { update(as_bytes(s)); }
  // Returns the digest and resets the hasher for reuse.
  std::array<std::uint8_t, kHashSize> final();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::array<std::uint8_t, kHashSize> hash(HashAlg alg, ByteView data);
std::array<std::uint8_t, kHashSize> sha256(ByteView data);
inline std::array<std::uint8_t, kHashSize> sha256(std::string_view s) { return sha256(as_bytes(s)); }

// HMAC-SHA256 (keyed hash, e.g. for content IDs that leak nothing without the key).
std::array<std::uint8_t, 32> hmac_sha256(ByteView key, ByteView data);

// ---- Key derivation ---------------------------------------------------------
// HKDF-SHA256 (RFC 5869).
SecureBuffer hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t out_len);

struct ScryptParams {
  std::uint64_t n = 1u << 15;  // CPU/memory cost (power of two)
  std::uint32_t r = 8;
  std::uint32_t p = 1;
};
// scrypt (RFC 7914) for passphrases.
SecureBuffer scrypt(std::string_view passphrase, ByteView salt, const ScryptParams& params,
                    std::size_t out_len);

// ---- Keystream (wipe patterns) ---------------------------------------------
// AES-256-CTR keystream that is block-addressable: the 16-byte block at byte
// offset o uses counter iv + o/16, so any range can be regenerated (for
// read-back verification, sampling, or parallel generation) without storing it.
class Keystream {
 public:
  Keystream(ByteView key32, ByteView iv16);
  ~Keystream();
  Keystream(Keystream&&) noexcept;
  Keystream& operator=(Keystream&&) noexcept;
  // Writes the keystream bytes for [offset, offset + out.size()) into out.
  // offset must be a multiple of 16 (Errc::usage otherwise); out.size() need not be.
  // Not thread-safe: use one Keystream per thread (they are cheap).
  void generate(std::uint64_t offset, std::span<std::uint8_t> out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Ed25519 signatures -----------------------------------------------------
class Ed25519PublicKey;

class Ed25519PrivateKey {
 public:
  static Ed25519PrivateKey generate();
  // PKCS#8 PEM (unencrypted; the file holding it is 0600).
  static Ed25519PrivateKey from_pem(std::string_view pem);  // throws Errc::auth if unusable
  // The 32-byte RFC 8032 secret key (seed); throws Errc::usage unless 32 bytes.
  static Ed25519PrivateKey from_raw(ByteView seed32);
  ~Ed25519PrivateKey();
  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept;

  SecureBuffer to_pem() const;
  Ed25519PublicKey public_key() const;
  std::array<std::uint8_t, 64> sign(ByteView message) const;

 private:
  Ed25519PrivateKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
};

class Ed25519PublicKey {
 public:
  static Ed25519PublicKey from_raw(ByteView raw32);       // throws Errc::auth
  static Ed25519PublicKey from_pem(std::string_view pem);  // SubjectPublicKeyInfo PEM
  ~Ed25519PublicKey();
  Ed25519PublicKey(const Ed25519PublicKey&);
  Ed25519PublicKey& operator=(const Ed25519PublicKey&);
  Ed25519PublicKey(Ed25519PublicKey&&) noexcept;
  Ed25519PublicKey& operator=(Ed25519PublicKey&&) noexcept;

  std::array<std::uint8_t, 32> raw() const;
  std::string to_pem() const;
  // SHA-256 of the raw key, hex, first 16 bytes: a short stable key id.
  std::string fingerprint() const;
  bool verify(ByteView message, ByteView signature) const noexcept;

 private:
  friend class Ed25519PrivateKey;
  Ed25519PublicKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
};

}  // namespace dlc::crypto
