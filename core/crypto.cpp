// Implementation of core/crypto.h over OpenSSL 3 EVP and (for SM4-GCM and
// BLAKE2b-256) libgcrypt. Every primitive is the library's; this file only
// checks sizes, manages contexts and maps failures to dlc::Error.
#include "core/crypto.h"

#include <gcrypt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace dlc::crypto {

namespace {

// EVP_*Update take int lengths; larger inputs go through in steps of this
// size (a multiple of every block size, so streaming state is unaffected).
constexpr std::size_t kMaxStep = std::size_t{1} << 30;

// Pointer for a possibly empty span: OpenSSL and libgcrypt treat a null
// pointer as "absent" in places where an empty value is meant.
const std::uint8_t kEmpty[1] = {0};
const std::uint8_t* ptr(ByteView v) noexcept { return v.empty() ? kEmpty : v.data(); }

void wipe(std::span<std::uint8_t> b) noexcept {
  if (!b.empty()) OPENSSL_cleanse(b.data(), b.size());
}

// The most recent OpenSSL error as text (never contains key bytes); clears the
// thread's error queue so stale entries do not leak into later reports.
std::string openssl_detail() {
  unsigned long last = 0;
  for (unsigned long e; (e = ERR_get_error()) != 0;) last = e;
  if (last == 0) return {};
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

[[noreturn]] void throw_openssl(std::string what) {
  throw Error(Errc::io, std::move(what), "", openssl_detail());
}

[[noreturn]] void throw_gcrypt(std::string what, gcry_error_t err) {
  throw Error(Errc::io, std::move(what), "", gcry_strerror(err));
}

[[noreturn]] void throw_size(std::string what, std::size_t got, std::size_t want) {
  throw Error(Errc::usage, std::move(what), "",
              "got " + std::to_string(got) + " bytes, expected " + std::to_string(want));
}

// libgcrypt must be initialised once per process before first use. Secure
// memory holds the SM4 key schedule; privileges are never dropped by it (dlc
// is not a setuid program and must not change its uid behind the CLI's back),
// and its "insecure memory" warning is silenced because mlock may legitimately
// fail for unprivileged users; the cipher handle is wiped on close regardless.
void ensure_gcrypt() {
  static const bool ready = [] {
    if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) return true;  // done by someone else
    if (gcry_check_version(GCRYPT_VERSION) == nullptr) {
      throw Error(Errc::io, "libgcrypt is older than the version dlc was built with", "",
                  std::string("need ") + GCRYPT_VERSION + ", have " + gcry_check_version(nullptr));
    }
    gcry_control(GCRYCTL_DISABLE_PRIV_DROP, 0);
    gcry_control(GCRYCTL_DISABLE_SECMEM_WARN, 0);
    gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 65536, 0);  // many Aead objects in parallel
    gcry_control(GCRYCTL_INIT_SECMEM, 65536, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    return true;
  }();
  (void)ready;
}

// Algorithms are fetched once (explicit fetch is far cheaper than the
// implicit fetch EVP_sha256() & co. cost on every init) and kept for the
// life of the process.
const EVP_CIPHER* fetch_cipher(const char* name) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (c == nullptr) throw_openssl(std::string("OpenSSL does not provide ") + name);
  return c;
}
const EVP_MD* fetch_md(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) throw_openssl(std::string("OpenSSL does not provide ") + name);
  return md;
}
EVP_KDF* fetch_kdf(const char* name) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, name, nullptr);
  if (kdf == nullptr) throw_openssl(std::string("OpenSSL does not provide ") + name);
  return kdf;
}
EVP_MAC* fetch_mac(const char* name) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, name, nullptr);
  if (mac == nullptr) throw_openssl(std::string("OpenSSL does not provide ") + name);
  return mac;
}

const EVP_MD* md_sha256() {
  static const EVP_MD* md = fetch_md("SHA256");
  return md;
}
const EVP_MD* md_sm3() {
  static const EVP_MD* md = fetch_md("SM3");
  return md;
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const noexcept { EVP_KDF_CTX_free(c); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

CipherCtx new_cipher_ctx() {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw_openssl("cannot allocate a cipher context");
  return ctx;
}

// Feeds data through EVP_CipherUpdate in int-sized steps; out == nullptr
// feeds additional authenticated data.
bool cipher_update(EVP_CIPHER_CTX* ctx, std::uint8_t* out, const std::uint8_t* in, std::size_t n) {
  while (n > 0) {
    const std::size_t step = std::min(n, kMaxStep);
    int len = 0;
    if (EVP_CipherUpdate(ctx, out, &len, in, static_cast<int>(step)) != 1) return false;
    if (out != nullptr) {
      if (static_cast<std::size_t>(len) != step) return false;
      out += step;
    }
    in += step;
    n -= step;
  }
  return true;
}

}  // namespace

// ---- Hex ----------------------------------------------------------------------

std::string to_hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return s;
}

Bytes from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    throw Error(Errc::usage, "bad hex string", "",
                "odd number of digits (" + std::to_string(hex.size()) + ")");
  }
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      // The position, not the character: hex strings may be key material.
      throw Error(Errc::usage, "bad hex string", "",
                  "non-hex character at position " + std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

// ---- Random -------------------------------------------------------------------

void random_bytes(std::span<std::uint8_t> out) {
  std::uint8_t* p = out.data();
  std::size_t n = out.size();
  while (n > 0) {
    const std::size_t step = std::min(n, kMaxStep);
    if (RAND_bytes(p, static_cast<int>(step)) != 1) {
      // Fail closed: never hand out a partially filled or predictable buffer.
      wipe(out);
      throw_openssl("cannot obtain random bytes from the OpenSSL CSPRNG");
    }
    p += step;
    n -= step;
  }
}

Bytes random_bytes(std::size_t n) {
  Bytes b(n);
  random_bytes(std::span<std::uint8_t>(b));
  return b;
}

SecureBuffer random_key(std::size_t n) {
  SecureBuffer k(n);
  random_bytes(k.span());
  return k;
}

// ---- AEAD ---------------------------------------------------------------------

std::string_view aead_name(AeadAlg alg) noexcept {
  switch (alg) {
    case AeadAlg::aes_256_gcm:
      return "aes-256-gcm";
    case AeadAlg::aes_128_gcm:
      return "aes-128-gcm";
    case AeadAlg::chacha20_poly1305:
      return "chacha20-poly1305";
    case AeadAlg::sm4_gcm:
      return "sm4-gcm";
  }
  return "unknown";
}

std::vector<AeadAlg> all_aeads() {
  return {AeadAlg::aes_256_gcm, AeadAlg::aes_128_gcm, AeadAlg::chacha20_poly1305, AeadAlg::sm4_gcm};
}

AeadAlg aead_from_name(std::string_view name) {
  std::string choices;
  for (AeadAlg a : all_aeads()) {
    if (aead_name(a) == name) return a;
    choices += (choices.empty() ? "" : ", ") + std::string(aead_name(a));
  }
  throw Error(Errc::usage, "unknown AEAD algorithm", "'" + std::string(name) + "'", "",
              "choose one of " + choices);
}

std::size_t aead_key_size(AeadAlg alg) noexcept {
  switch (alg) {
    case AeadAlg::aes_256_gcm:
      return 32;
    case AeadAlg::aes_128_gcm:
      return 16;
    case AeadAlg::chacha20_poly1305:
      return 32;
    case AeadAlg::sm4_gcm:
      return 16;
  }
  return 0;
}

// One cipher context per object, keyed once; each message only re-initialises
// the nonce (and the direction), which keeps the key schedule.
struct Aead::Impl {
  AeadAlg alg;
  CipherCtx ctx;                    // OpenSSL algorithms
  gcry_cipher_hd_t gcry = nullptr;  // sm4-gcm

  explicit Impl(AeadAlg a) : alg(a) {}
  ~Impl() {
    if (gcry != nullptr) gcry_cipher_close(gcry);  // wipes the key schedule
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

Aead::Aead(AeadAlg alg, ByteView key) : impl_(std::make_unique<Impl>(alg)) {
  const std::size_t want = aead_key_size(alg);
  if (want == 0) throw Error(Errc::usage, "unknown AEAD algorithm");
  if (key.size() != want) {
    throw_size("wrong key length for " + std::string(aead_name(alg)), key.size(), want);
  }
  if (alg == AeadAlg::sm4_gcm) {
    ensure_gcrypt();
    gcry_error_t err =
        gcry_cipher_open(&impl_->gcry, GCRY_CIPHER_SM4, GCRY_CIPHER_MODE_GCM, GCRY_CIPHER_SECURE);
    if (err) throw_gcrypt("cannot open SM4-GCM in libgcrypt", err);
    err = gcry_cipher_setkey(impl_->gcry, key.data(), key.size());
    if (err) throw Error(Errc::auth, "unusable SM4 key", "", gcry_strerror(err));
    return;
  }
  const EVP_CIPHER* cipher = nullptr;
  switch (alg) {
    case AeadAlg::aes_256_gcm: {
      static const EVP_CIPHER* c = fetch_cipher("AES-256-GCM");
      cipher = c;
      break;
    }
    case AeadAlg::aes_128_gcm: {
      static const EVP_CIPHER* c = fetch_cipher("AES-128-GCM");
      cipher = c;
      break;
    }
    case AeadAlg::chacha20_poly1305: {
      static const EVP_CIPHER* c = fetch_cipher("ChaCha20-Poly1305");
      cipher = c;
      break;
    }
    case AeadAlg::sm4_gcm:
      break;
  }
  impl_->ctx = new_cipher_ctx();
  if (EVP_CipherInit_ex2(impl_->ctx.get(), cipher, key.data(), nullptr, 1, nullptr) != 1) {
    throw Error(Errc::auth, "unusable key for " + std::string(aead_name(alg)), "",
                openssl_detail());
  }
}

Aead::~Aead() = default;
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;

AeadAlg Aead::alg() const noexcept { return impl_->alg; }

namespace {

void check_nonce(ByteView nonce) {
  if (nonce.size() != kAeadNonceSize) {
    throw_size("wrong AEAD nonce length", nonce.size(), kAeadNonceSize);
  }
}

// Input and output may be the same bytes (in place) or disjoint; anything in
// between would let the cipher overwrite input it has not read yet.
void check_overlap(ByteView in, std::span<const std::uint8_t> out) {
  if (in.empty() || out.empty()) return;
  const auto a = reinterpret_cast<std::uintptr_t>(in.data());
  const auto b = reinterpret_cast<std::uintptr_t>(out.data());
  if (a != b && a < b + out.size() && b < a + in.size()) {
    throw Error(Errc::usage, "AEAD input and output buffers partially overlap", "", "",
                "use the same buffer (in place) or separate buffers");
  }
}

}  // namespace

void Aead::seal(ByteView nonce, ByteView aad, ByteView plaintext, std::span<std::uint8_t> out) {
  if (!impl_) throw Error(Errc::usage, "AEAD object used after move");
  check_nonce(nonce);
  if (plaintext.size() > SIZE_MAX - kAeadTagSize || out.size() != plaintext.size() + kAeadTagSize) {
    throw_size("wrong AEAD output buffer size", out.size(), plaintext.size() + kAeadTagSize);
  }
  check_overlap(plaintext, out);
  const std::size_t n = plaintext.size();
  std::uint8_t* tag = out.data() + n;

  if (impl_->gcry != nullptr) {
    gcry_cipher_hd_t h = impl_->gcry;
    gcry_error_t err = gcry_cipher_reset(h);
    if (!err) err = gcry_cipher_setiv(h, nonce.data(), nonce.size());
    if (!err && !aad.empty()) err = gcry_cipher_authenticate(h, aad.data(), aad.size());
    if (!err && n > 0) {
      err = out.data() == plaintext.data()
                ? gcry_cipher_encrypt(h, out.data(), n, nullptr, 0)
                : gcry_cipher_encrypt(h, out.data(), n, plaintext.data(), n);
    }
    if (!err) err = gcry_cipher_gettag(h, tag, kAeadTagSize);
    if (err) {
      wipe(out);
      throw_gcrypt("SM4-GCM encryption failed", err);
    }
    return;
  }

  EVP_CIPHER_CTX* ctx = impl_->ctx.get();
  int len = 0;
  const bool ok =
      EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 1, nullptr) == 1 &&
      cipher_update(ctx, nullptr, aad.data(), aad.size()) &&
      cipher_update(ctx, out.data(), plaintext.data(), n) &&
      EVP_CipherFinal_ex(ctx, tag, &len) == 1 && len == 0 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagSize), tag) == 1;
  if (!ok) {
    wipe(out);
    throw_openssl(std::string(aead_name(impl_->alg)) + " encryption failed");
  }
}

Bytes Aead::seal(ByteView nonce, ByteView aad, ByteView plaintext) {
  Bytes out(plaintext.size() + kAeadTagSize);
  seal(nonce, aad, plaintext, out);
  return out;
}

void Aead::open(ByteView nonce, ByteView aad, ByteView in, std::span<std::uint8_t> out) {
  if (!impl_) throw Error(Errc::usage, "AEAD object used after move");
  check_nonce(nonce);
  if (in.size() < kAeadTagSize) {
    // Truncated input cannot be authentic: this is data, not a caller bug.
    wipe(out);
    throw Error(Errc::auth, "authentication failed", "",
                "ciphertext is shorter than the " + std::to_string(kAeadTagSize) + "-byte tag",
                "the data was truncated or is not a dlc ciphertext");
  }
  const std::size_t n = in.size() - kAeadTagSize;
  if (out.size() != n) throw_size("wrong AEAD output buffer size", out.size(), n);
  check_overlap(in, out);
  // Copy the tag first: the caller may decrypt in place (out aliases in).
  std::uint8_t tag[kAeadTagSize];
  std::memcpy(tag, in.data() + n, kAeadTagSize);

  bool authentic = false;
  std::string failure;
  if (impl_->gcry != nullptr) {
    gcry_cipher_hd_t h = impl_->gcry;
    gcry_error_t err = gcry_cipher_reset(h);
    if (!err) err = gcry_cipher_setiv(h, nonce.data(), nonce.size());
    if (!err && !aad.empty()) err = gcry_cipher_authenticate(h, aad.data(), aad.size());
    if (!err && n > 0) {
      err = out.data() == in.data() ? gcry_cipher_decrypt(h, out.data(), n, nullptr, 0)
                                    : gcry_cipher_decrypt(h, out.data(), n, in.data(), n);
    }
    if (!err) {
      err = gcry_cipher_checktag(h, tag, kAeadTagSize);  // constant time
      if (gcry_err_code(err) == GPG_ERR_CHECKSUM) {
        err = 0;  // a tag mismatch, not a library failure
      } else if (!err) {
        authentic = true;
      }
    }
    if (err) failure = gcry_strerror(err);
  } else {
    EVP_CIPHER_CTX* ctx = impl_->ctx.get();
    int len = 0;
    const bool ok =
        EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 0, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagSize), tag) == 1 &&
        cipher_update(ctx, nullptr, aad.data(), aad.size()) &&
        cipher_update(ctx, out.data(), in.data(), n);
    if (!ok) {
      failure = openssl_detail();
    } else {
      // Final fails exactly when the tag does not verify (CRYPTO_memcmp inside).
      std::uint8_t scratch[16];
      authentic = EVP_CipherFinal_ex(ctx, scratch, &len) == 1 && len == 0;
      ERR_clear_error();
    }
  }
  OPENSSL_cleanse(tag, sizeof tag);
  if (authentic) return;
  wipe(out);
  if (!failure.empty()) {
    throw Error(Errc::io, std::string(aead_name(impl_->alg)) + " decryption failed", "", failure);
  }
  throw Error(Errc::auth, "authentication failed", "",
              std::string(aead_name(impl_->alg)) + " tag does not verify",
              "the data was modified or the key is wrong");
}

Bytes Aead::open(ByteView nonce, ByteView aad, ByteView in) {
  Bytes out(in.size() >= kAeadTagSize ? in.size() - kAeadTagSize : 0);
  open(nonce, aad, in, out);  // throws Errc::auth for a too-short input
  return out;
}

// ---- Hashes -------------------------------------------------------------------

std::string_view hash_name(HashAlg alg) noexcept {
  switch (alg) {
    case HashAlg::sha256:
      return "sha256";
    case HashAlg::sm3:
      return "sm3";
    case HashAlg::blake2b_256:
      return "blake2b-256";
  }
  return "unknown";
}

HashAlg hash_from_name(std::string_view name) {
  for (HashAlg a : {HashAlg::sha256, HashAlg::sm3, HashAlg::blake2b_256}) {
    if (hash_name(a) == name) return a;
  }
  throw Error(Errc::usage, "unknown hash algorithm", "'" + std::string(name) + "'", "",
              "choose one of sha256, sm3, blake2b-256");
}

struct Hasher::Impl {
  HashAlg alg;
  MdCtx ctx;  // sha256, sm3
  const EVP_MD* md = nullptr;
  gcry_md_hd_t gcry = nullptr;  // blake2b-256

  explicit Impl(HashAlg a) : alg(a) {}
  ~Impl() {
    if (gcry != nullptr) gcry_md_close(gcry);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

Hasher::Hasher(HashAlg alg) : impl_(std::make_unique<Impl>(alg)) {
  if (alg == HashAlg::blake2b_256) {
    ensure_gcrypt();
    gcry_error_t err = gcry_md_open(&impl_->gcry, GCRY_MD_BLAKE2B_256, 0);
    if (err) throw_gcrypt("cannot open BLAKE2b-256 in libgcrypt", err);
    return;
  }
  impl_->md = alg == HashAlg::sm3 ? md_sm3() : md_sha256();
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx || EVP_DigestInit_ex2(impl_->ctx.get(), impl_->md, nullptr) != 1) {
    throw_openssl("cannot start " + std::string(hash_name(alg)));
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(ByteView data) {
  if (!impl_) throw Error(Errc::usage, "hasher used after move");
  if (data.empty()) return;
  if (impl_->gcry != nullptr) {
    gcry_md_write(impl_->gcry, data.data(), data.size());
    return;
  }
  if (EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) {
    throw_openssl(std::string(hash_name(impl_->alg)) + " update failed");
  }
}

std::array<std::uint8_t, kHashSize> Hasher::final() {
  if (!impl_) throw Error(Errc::usage, "hasher used after move");
  std::array<std::uint8_t, kHashSize> out{};
  if (impl_->gcry != nullptr) {
    const unsigned char* d = gcry_md_read(impl_->gcry, GCRY_MD_BLAKE2B_256);
    if (d == nullptr) throw Error(Errc::io, "blake2b-256 finalisation failed");
    std::memcpy(out.data(), d, out.size());
    gcry_md_reset(impl_->gcry);
    return out;
  }
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len) != 1 || len != kHashSize ||
      EVP_DigestInit_ex2(impl_->ctx.get(), impl_->md, nullptr) != 1) {
    throw_openssl(std::string(hash_name(impl_->alg)) + " finalisation failed");
  }
  return out;
}

std::array<std::uint8_t, kHashSize> hash(HashAlg alg, ByteView data) {
  if (alg == HashAlg::sha256) return sha256(data);
  Hasher h(alg);
  h.update(data);
  return h.final();
}

std::array<std::uint8_t, kHashSize> sha256(ByteView data) {
  std::array<std::uint8_t, kHashSize> out{};
  unsigned int len = 0;
  if (EVP_Digest(ptr(data), data.size(), out.data(), &len, md_sha256(), nullptr) != 1 ||
      len != kHashSize) {
    throw_openssl("sha256 failed");
  }
  return out;
}

std::array<std::uint8_t, 32> hmac_sha256(ByteView key, ByteView data) {
  static EVP_MAC* mac = fetch_mac("HMAC");
  MacCtx ctx(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  std::array<std::uint8_t, 32> out{};
  std::size_t len = 0;
  // A non-null key pointer even for an empty key: EVP_MAC_init treats null as
  // "keep the previous key".
  if (!ctx || EVP_MAC_init(ctx.get(), ptr(key), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), ptr(data), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size()) {
    throw_openssl("HMAC-SHA256 failed");
  }
  return out;
}

// ---- Key derivation -----------------------------------------------------------

namespace {

OSSL_PARAM octets(const char* name, ByteView v) {
  return OSSL_PARAM_construct_octet_string(name, const_cast<std::uint8_t*>(ptr(v)), v.size());
}

}  // namespace

SecureBuffer hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t out_len) {
  constexpr std::size_t kMaxOut = 255 * 32;  // RFC 5869 section 2.3
  if (out_len == 0 || out_len > kMaxOut) {
    throw Error(Errc::usage, "bad HKDF output length", "",
                std::to_string(out_len) + " bytes; must be 1.." + std::to_string(kMaxOut));
  }
  static EVP_KDF* kdf = fetch_kdf("HKDF");
  KdfCtx ctx(EVP_KDF_CTX_new(kdf));
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                               octets(OSSL_KDF_PARAM_KEY, ikm), octets(OSSL_KDF_PARAM_SALT, salt),
                               octets(OSSL_KDF_PARAM_INFO, info), OSSL_PARAM_construct_end()};
  SecureBuffer out(out_len);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    throw_openssl("HKDF-SHA256 failed");
  }
  return out;
}

SecureBuffer scrypt(std::string_view passphrase, ByteView salt, const ScryptParams& params,
                    std::size_t out_len) {
  const std::uint64_t n = params.n;
  const std::uint64_t r = params.r;
  const std::uint64_t p = params.p;
  // RFC 7914 section 2: N > 1 and a power of two; r * p < 2^30.
  if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0 || r * p >= (std::uint64_t{1} << 30) ||
      out_len == 0) {
    throw Error(Errc::usage, "bad scrypt parameters", "",
                "N=" + std::to_string(n) + " r=" + std::to_string(r) + " p=" + std::to_string(p) +
                    " length=" + std::to_string(out_len),
                "N must be a power of two > 1, r and p at least 1 with r*p < 2^30");
  }
  // Memory the parameters need (V is 128*r*N bytes, B is 128*r*p) plus slack;
  // OpenSSL refuses to exceed maxmem, whose default is too small for strong N.
  if (n > (std::uint64_t{1} << 40) / (128 * r)) {
    throw Error(Errc::usage, "scrypt parameters need too much memory", "",
                "N=" + std::to_string(n) + " r=" + std::to_string(r));
  }
  std::uint64_t maxmem = 128 * r * (n + p + 2) + (std::uint64_t{1} << 20);
  static EVP_KDF* kdf = fetch_kdf("SCRYPT");
  KdfCtx ctx(EVP_KDF_CTX_new(kdf));
  std::uint64_t n_param = n;
  std::uint32_t r_param = params.r;
  std::uint32_t p_param = params.p;
  const OSSL_PARAM ossl_params[] = {
      octets(OSSL_KDF_PARAM_PASSWORD, as_bytes(passphrase)),
      octets(OSSL_KDF_PARAM_SALT, salt),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n_param),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r_param),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p_param),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  SecureBuffer out(out_len);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), ossl_params) != 1) {
    throw_openssl("scrypt failed");
  }
  return out;
}

// ---- Keystream ----------------------------------------------------------------

struct Keystream::Impl {
  CipherCtx ctx;
  std::uint8_t iv[16];
  Impl() = default;
  ~Impl() { OPENSSL_cleanse(iv, sizeof iv); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

Keystream::Keystream(ByteView key32, ByteView iv16) : impl_(std::make_unique<Impl>()) {
  if (key32.size() != 32) throw_size("wrong keystream key length", key32.size(), 32);
  if (iv16.size() != 16) throw_size("wrong keystream IV length", iv16.size(), 16);
  static const EVP_CIPHER* cipher = fetch_cipher("AES-256-CTR");
  std::memcpy(impl_->iv, iv16.data(), 16);
  impl_->ctx = new_cipher_ctx();
  if (EVP_EncryptInit_ex2(impl_->ctx.get(), cipher, key32.data(), impl_->iv, nullptr) != 1) {
    throw_openssl("cannot key AES-256-CTR");
  }
}

Keystream::~Keystream() = default;
Keystream::Keystream(Keystream&&) noexcept = default;
Keystream& Keystream::operator=(Keystream&&) noexcept = default;

void Keystream::generate(std::uint64_t offset, std::span<std::uint8_t> out) {
  if (!impl_) throw Error(Errc::usage, "keystream used after move");
  if (offset % 16 != 0) {
    throw Error(Errc::usage, "keystream offset is not a multiple of 16", "",
                "offset " + std::to_string(offset));
  }
  if (out.empty()) return;
  // counter = iv + offset/16 as a 128-bit big-endian number (mod 2^128), the
  // same increment OpenSSL's CTR mode applies from block to block.
  std::uint8_t counter[16];
  std::memcpy(counter, impl_->iv, 16);
  std::uint64_t add = offset / 16;
  unsigned carry = 0;
  for (int i = 15; i >= 0; --i) {
    const unsigned sum = counter[i] + static_cast<unsigned>(add & 0xff) + carry;
    counter[i] = static_cast<std::uint8_t>(sum);
    carry = sum >> 8;
    add >>= 8;
  }
  EVP_CIPHER_CTX* ctx = impl_->ctx.get();
  // Re-init with the IV only: keeps the key schedule, resets the block position.
  std::memset(out.data(), 0, out.size());
  const bool ok = EVP_EncryptInit_ex2(ctx, nullptr, nullptr, counter, nullptr) == 1 &&
                  cipher_update(ctx, out.data(), out.data(), out.size());
  if (!ok) {
    wipe(out);
    throw_openssl("AES-256-CTR keystream generation failed");
  }
}

// ---- Ed25519 ------------------------------------------------------------------

namespace {

// Never prompt for a passphrase on the terminal: dlc keys are unencrypted
// PKCS#8 (protected by file mode), so an encrypted one is simply unusable.
int no_passphrase(char*, int, int, void*) { return -1; }

Bio read_bio(std::string_view pem) {
  if (pem.size() > INT_MAX) throw Error(Errc::auth, "unusable Ed25519 key", "", "PEM too large");
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw_openssl("cannot allocate a memory BIO");
  return bio;
}

bool is_ed25519(const EVP_PKEY* k) { return EVP_PKEY_is_a(k, "ED25519") == 1; }

EVP_PKEY* require(void* pkey) {
  if (pkey == nullptr) throw Error(Errc::usage, "Ed25519 key used after move");
  return static_cast<EVP_PKEY*>(pkey);
}

}  // namespace

Ed25519PrivateKey Ed25519PrivateKey::generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (k == nullptr) throw_openssl("cannot generate an Ed25519 key");
  Ed25519PrivateKey key;
  key.pkey_ = k;
  return key;
}

Ed25519PrivateKey Ed25519PrivateKey::from_pem(std::string_view pem) {
  Bio bio = read_bio(pem);
  Pkey k(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!k || !is_ed25519(k.get())) {
    std::string detail = k ? "not an Ed25519 key" : openssl_detail();
    ERR_clear_error();
    throw Error(Errc::auth, "unusable Ed25519 private key", "", detail,
                "expected an unencrypted PKCS#8 PEM Ed25519 key");
  }
  Ed25519PrivateKey key;
  key.pkey_ = k.release();
  return key;
}

Ed25519PrivateKey Ed25519PrivateKey::from_raw(ByteView seed32) {
  if (seed32.size() != 32) throw_size("wrong Ed25519 secret key length", seed32.size(), 32);
  EVP_PKEY* k =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed32.data(), seed32.size());
  if (k == nullptr) throw Error(Errc::auth, "unusable Ed25519 private key", "", openssl_detail());
  Ed25519PrivateKey key;
  key.pkey_ = k;
  return key;
}

Ed25519PrivateKey::~Ed25519PrivateKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&& other) noexcept
    : pkey_(std::exchange(other.pkey_, nullptr)) {}

Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = std::exchange(other.pkey_, nullptr);
  }
  return *this;
}

SecureBuffer Ed25519PrivateKey::to_pem() const {
  EVP_PKEY* k = require(pkey_);
  // A secure-memory BIO: its buffer is cleansed when freed or grown.
  Bio bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw_openssl("cannot encode the Ed25519 private key as PEM");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) throw_openssl("cannot encode the Ed25519 private key as PEM");
  return SecureBuffer(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data),
                                                    static_cast<std::size_t>(len)));
}

Ed25519PublicKey Ed25519PrivateKey::public_key() const {
  EVP_PKEY* k = require(pkey_);
  std::uint8_t raw[32];
  std::size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != sizeof raw) {
    throw_openssl("cannot extract the Ed25519 public key");
  }
  return Ed25519PublicKey::from_raw(raw);
}

std::array<std::uint8_t, 64> Ed25519PrivateKey::sign(ByteView message) const {
  EVP_PKEY* k = require(pkey_);
  MdCtx ctx(EVP_MD_CTX_new());
  std::array<std::uint8_t, 64> sig{};
  std::size_t len = sig.size();
  // Ed25519 is "pure": no separate digest (md NULL), one-shot DigestSign.
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, k, nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, ptr(message), message.size()) != 1 ||
      len != sig.size()) {
    throw_openssl("Ed25519 signing failed");
  }
  return sig;
}

Ed25519PublicKey Ed25519PublicKey::from_raw(ByteView raw32) {
  if (raw32.size() != 32) {
    throw Error(Errc::auth, "unusable Ed25519 public key", "",
                "got " + std::to_string(raw32.size()) + " bytes, expected 32");
  }
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw32.data(), raw32.size());
  if (k == nullptr) throw Error(Errc::auth, "unusable Ed25519 public key", "", openssl_detail());
  Ed25519PublicKey key;
  key.pkey_ = k;
  return key;
}

Ed25519PublicKey Ed25519PublicKey::from_pem(std::string_view pem) {
  Bio bio = read_bio(pem);
  Pkey k(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
  if (!k || !is_ed25519(k.get())) {
    std::string detail = k ? "not an Ed25519 key" : openssl_detail();
    ERR_clear_error();
    throw Error(Errc::auth, "unusable Ed25519 public key", "", detail,
                "expected a SubjectPublicKeyInfo PEM Ed25519 key");
  }
  Ed25519PublicKey key;
  key.pkey_ = k.release();
  return key;
}

Ed25519PublicKey::~Ed25519PublicKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

// Public keys are immutable once made, so copies share the reference-counted key.
Ed25519PublicKey::Ed25519PublicKey(const Ed25519PublicKey& other) : pkey_(other.pkey_) {
  if (pkey_ != nullptr && EVP_PKEY_up_ref(static_cast<EVP_PKEY*>(pkey_)) != 1) {
    pkey_ = nullptr;
    throw_openssl("cannot copy an Ed25519 public key");
  }
}

Ed25519PublicKey& Ed25519PublicKey::operator=(const Ed25519PublicKey& other) {
  if (this != &other) {
    Ed25519PublicKey copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Ed25519PublicKey::Ed25519PublicKey(Ed25519PublicKey&& other) noexcept
    : pkey_(std::exchange(other.pkey_, nullptr)) {}

Ed25519PublicKey& Ed25519PublicKey::operator=(Ed25519PublicKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = std::exchange(other.pkey_, nullptr);
  }
  return *this;
}

std::array<std::uint8_t, 32> Ed25519PublicKey::raw() const {
  std::array<std::uint8_t, 32> out{};
  std::size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(require(pkey_), out.data(), &len) != 1 || len != out.size()) {
    throw_openssl("cannot extract the Ed25519 public key");
  }
  return out;
}

std::string Ed25519PublicKey::to_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), require(pkey_)) != 1) {
    throw_openssl("cannot encode the Ed25519 public key as PEM");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) throw_openssl("cannot encode the Ed25519 public key as PEM");
  return std::string(data, static_cast<std::size_t>(len));
}

std::string Ed25519PublicKey::fingerprint() const {
  const auto raw_key = raw();
  const auto digest = sha256(ByteView(raw_key));
  return to_hex(ByteView(digest.data(), 16));
}

bool Ed25519PublicKey::verify(ByteView message, ByteView signature) const noexcept {
  if (pkey_ == nullptr || signature.size() != 64) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) {
    ERR_clear_error();
    return false;
  }
  const bool ok =
      EVP_DigestVerifyInit_ex(ctx, nullptr, nullptr, nullptr, nullptr,
                              static_cast<EVP_PKEY*>(pkey_), nullptr) == 1 &&
      EVP_DigestVerify(ctx, signature.data(), signature.size(), ptr(message), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

}  // namespace dlc::crypto
