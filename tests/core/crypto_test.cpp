// dlc::crypto apart from the AEADs (see crypto_aead_test.cpp): hex, random,
// hashes, HMAC, HKDF, scrypt, the block-addressable keystream and Ed25519.
// Known answers come from the published standards named at each vector.
#include "core/crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace dlc::crypto {
namespace {

Bytes h(std::string_view hex) { return from_hex(hex); }

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& a) {
  return to_hex(ByteView(a));
}
std::string hex(const SecureBuffer& b) { return to_hex(b.span()); }

template <typename F>
Errc error_code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

// ---- Hex ----------------------------------------------------------------------

TEST(Hex, EncodesLowercaseAndDecodesEitherCase) {
  const Bytes b = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(to_hex(b), "00017f80abff");
  EXPECT_EQ(from_hex("00017f80abff"), b);
  EXPECT_EQ(from_hex("00017F80ABFF"), b);
  EXPECT_EQ(from_hex("00017f80AbFf"), b);
  EXPECT_EQ(to_hex(Bytes{}), "");
  EXPECT_TRUE(from_hex("").empty());
}

TEST(Hex, BadInputIsAUsageErrorThatDoesNotEchoTheInput) {
  EXPECT_EQ(error_code_of([] { (void)from_hex("abc"); }), Errc::usage);
  for (const char* bad : {"0g", "g0", "  ", "0x12", "12 3", "zz", "1-"}) {
    EXPECT_EQ(error_code_of([&] { (void)from_hex(bad); }), Errc::usage) << bad;
  }
  try {
    (void)from_hex("deadbeefcafebabeQ1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("deadbeef"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("position 16"), std::string::npos) << e.what();
  }
}

// ---- Random -------------------------------------------------------------------

TEST(Random, FillsBuffersWithFreshBytes) {
  const Bytes a = random_bytes(32);
  const Bytes b = random_bytes(32);
  ASSERT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_NE(a, Bytes(32, 0));
  EXPECT_TRUE(random_bytes(0).empty());

  std::uint8_t buf[100] = {};
  random_bytes(std::span<std::uint8_t>(buf));
  EXPECT_FALSE(std::all_of(std::begin(buf), std::end(buf), [](auto x) { return x == 0; }));

  SecureBuffer k = random_key(32);
  ASSERT_EQ(k.size(), 32u);
  EXPECT_NE(Bytes(k.data(), k.data() + 32), Bytes(32, 0));
  EXPECT_NE(hex(k), hex(random_key(32)));
}

TEST(Random, LargeRequestsAreFilledCompletely) {
  // Zero bytes would show up in a 4 MiB buffer about 16k times; a tail left
  // unfilled would show up as a long zero run at the end.
  const Bytes big = random_bytes(4u << 20);
  ASSERT_EQ(big.size(), 4u << 20);
  EXPECT_FALSE(std::all_of(big.end() - 64, big.end(), [](auto x) { return x == 0; }));
  const auto zeros = std::count(big.begin(), big.end(), 0);
  EXPECT_GT(zeros, 14000);
  EXPECT_LT(zeros, 19000);
}

// ---- Hashes -------------------------------------------------------------------

struct HashKat {
  const char* source;
  HashAlg alg;
  std::string message;
  const char* digest;
};

const std::vector<HashKat>& hash_kats() {
  static const std::vector<HashKat> kats = {
      // FIPS 180-2, Appendix B.1 / B.2 (and the empty-string digest).
      {"FIPS 180-2 B.1", HashAlg::sha256, "abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"FIPS 180-2 B.2", HashAlg::sha256,
       "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"SHA-256 empty", HashAlg::sha256, "",
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"FIPS 180-2 B.3 (one million 'a')", HashAlg::sha256, std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
      // GB/T 32905-2016 Appendix A examples 1 and 2.
      {"GB/T 32905 A.1", HashAlg::sm3, "abc",
       "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
      {"GB/T 32905 A.2", HashAlg::sm3,
       "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",
       "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
      // BLAKE2b with a 32-byte digest (RFC 7693 parameters); values checked against
      // Python's hashlib.blake2b(digest_size=32), an independent implementation.
      {"BLAKE2b-256 empty", HashAlg::blake2b_256, "",
       "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"},
      {"BLAKE2b-256 abc", HashAlg::blake2b_256, "abc",
       "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"},
  };
  return kats;
}

TEST(Hash, KnownAnswers) {
  for (const HashKat& k : hash_kats()) {
    SCOPED_TRACE(k.source);
    EXPECT_EQ(hex(hash(k.alg, as_bytes(k.message))), k.digest);
    Hasher hasher(k.alg);
    hasher.update(k.message);
    EXPECT_EQ(hex(hasher.final()), k.digest);
    if (k.alg == HashAlg::sha256) {
      EXPECT_EQ(hex(sha256(k.message)), k.digest);
    }
  }
}

TEST(Hash, StreamingInAnyPiecesEqualsOneShot) {
  for (const HashKat& k : hash_kats()) {
    if (k.message.size() > 1000) continue;
    SCOPED_TRACE(k.source);
    Hasher bytewise(k.alg);
    for (char c : k.message) bytewise.update(std::string_view(&c, 1));
    bytewise.update(std::string_view());  // empty updates change nothing
    EXPECT_EQ(hex(bytewise.final()), k.digest);
  }
  // Uneven chunks over block boundaries.
  std::string msg(100000, '\0');
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>(i * 7 + (i >> 9));
  for (HashAlg alg : {HashAlg::sha256, HashAlg::sm3, HashAlg::blake2b_256}) {
    Hasher hasher(alg);
    std::size_t pos = 0;
    for (std::size_t step = 1; pos < msg.size(); step = step * 3 % 1021 + 1) {
      const std::size_t n = std::min(step, msg.size() - pos);
      hasher.update(std::string_view(msg).substr(pos, n));
      pos += n;
    }
    EXPECT_EQ(hex(hasher.final()), hex(hash(alg, as_bytes(msg)))) << hash_name(alg);
  }
}

TEST(Hash, FinalResetsTheHasherForReuse) {
  for (const HashKat& k : hash_kats()) {
    if (k.message.size() > 1000) continue;
    SCOPED_TRACE(k.source);
    Hasher hasher(k.alg);
    hasher.update("something else entirely");
    (void)hasher.final();
    hasher.update(k.message);
    EXPECT_EQ(hex(hasher.final()), k.digest);
    hasher.update(k.message);
    EXPECT_EQ(hex(hasher.final()), k.digest);
  }
}

TEST(Hash, MovedHasherContinuesTheSameDigest) {
  Hasher a(HashAlg::sm3);
  a.update("ab");
  Hasher b(std::move(a));
  b.update("c");
  EXPECT_EQ(hex(b.final()), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  Hasher c;
  c = std::move(b);
  c.update("abc");
  EXPECT_EQ(hex(c.final()), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
}

TEST(Hash, NamesRoundTripAndUnknownIsUsage) {
  for (HashAlg a : {HashAlg::sha256, HashAlg::sm3, HashAlg::blake2b_256}) {
    EXPECT_EQ(hash_from_name(hash_name(a)), a);
  }
  EXPECT_EQ(hash_name(HashAlg::sha256), "sha256");
  EXPECT_EQ(hash_name(HashAlg::sm3), "sm3");
  EXPECT_EQ(hash_name(HashAlg::blake2b_256), "blake2b-256");
  EXPECT_EQ(error_code_of([] { (void)hash_from_name("md5"); }), Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)hash_from_name("SHA256"); }), Errc::usage);
}

// ---- HMAC ---------------------------------------------------------------------

TEST(HmacSha256, Rfc4231) {
  // RFC 4231 section 4.2, test case 1.
  EXPECT_EQ(hex(hmac_sha256(Bytes(20, 0x0b), as_bytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Section 4.3, test case 2 ("Jefe").
  EXPECT_EQ(hex(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Section 4.7, test case 6: a key longer than the block size is hashed first.
  EXPECT_EQ(hex(hmac_sha256(Bytes(131, 0xaa),
                            as_bytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, EmptyKeyAndMessageWork) {
  // Checked against Python's hmac module (an independent implementation).
  EXPECT_EQ(hex(hmac_sha256({}, {})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// ---- HKDF ---------------------------------------------------------------------

TEST(HkdfSha256, Rfc5869) {
  // RFC 5869 Appendix A.1, test case 1.
  SecureBuffer okm =
      hkdf_sha256(Bytes(22, 0x0b), h("000102030405060708090a0b0c"), h("f0f1f2f3f4f5f6f7f8f9"), 42);
  EXPECT_EQ(hex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  // Appendix A.3, test case 3: empty salt and info.
  EXPECT_EQ(hex(hkdf_sha256(Bytes(22, 0x0b), {}, {}, 42)),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfSha256, ShorterOutputIsAPrefixAndLimitsAreEnforced) {
  const SecureBuffer full = hkdf_sha256(Bytes(22, 0x0b), {}, {}, 42);
  const SecureBuffer part = hkdf_sha256(Bytes(22, 0x0b), {}, {}, 10);
  EXPECT_EQ(hex(part), hex(full).substr(0, 20));
  EXPECT_EQ(hkdf_sha256(as_bytes("k"), {}, {}, 255 * 32).size(), 255u * 32);
  EXPECT_EQ(error_code_of([] { (void)hkdf_sha256(as_bytes("k"), {}, {}, 0); }), Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)hkdf_sha256(as_bytes("k"), {}, {}, 255 * 32 + 1); }),
            Errc::usage);
}

// ---- scrypt -------------------------------------------------------------------

TEST(Scrypt, Rfc7914Section12) {
  EXPECT_EQ(hex(scrypt("", {}, {.n = 16, .r = 1, .p = 1}, 64)),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
            "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
  EXPECT_EQ(hex(scrypt("password", as_bytes("NaCl"), {.n = 1024, .r = 8, .p = 16}, 64)),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

TEST(Scrypt, DefaultParametersRunAndBadParametersAreUsage) {
  // The defaults (N=2^15, r=8: 32 MiB) must fit OpenSSL's memory limit as set.
  EXPECT_EQ(scrypt("pass", as_bytes("salt"), {}, 32).size(), 32u);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 1000, .r = 8, .p = 1}, 32); }),
            Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 1, .r = 8, .p = 1}, 32); }),
            Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 0, .r = 8, .p = 1}, 32); }),
            Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 16, .r = 0, .p = 1}, 32); }),
            Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 16, .r = 1, .p = 0}, 32); }),
            Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 16, .r = 1, .p = 1}, 0); }),
            Errc::usage);
  EXPECT_EQ(error_code_of([] { (void)scrypt("p", {}, {.n = 1ull << 40, .r = 8, .p = 1}, 32); }),
            Errc::usage);
}

// ---- Keystream ----------------------------------------------------------------

// AES-256-ECB of one block via OpenSSL: the independent model of what block i
// of the keystream must be (E_K(iv + i)).
Bytes ecb_block(ByteView key, const std::uint8_t block[16]) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(32);
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex2(ctx, EVP_aes_256_ecb(), key.data(), nullptr, nullptr), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &len, block, 16), 1);
  EVP_CIPHER_CTX_free(ctx);
  out.resize(16);
  return out;
}

// iv + i as a 128-bit big-endian integer, computed with unsigned __int128
// (a different implementation from the one under test).
void add_counter(const Bytes& iv, unsigned __int128 i, std::uint8_t out[16]) {
  unsigned __int128 v = 0;
  for (int b = 0; b < 16; ++b) v = v << 8 | iv[b];
  v += i;
  for (int b = 15; b >= 0; --b) {
    out[b] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

const Bytes kSp80038aKey =
    from_hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
const Bytes kSp80038aIv = from_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");

TEST(Keystream, Sp80038aF55) {
  // NIST SP 800-38A F.5.5 CTR-AES256.Encrypt: keystream = ciphertext XOR plaintext.
  const Bytes pt =
      h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  const Bytes ct =
      h("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6");
  Bytes expected(64);
  for (std::size_t i = 0; i < 64; ++i) expected[i] = pt[i] ^ ct[i];
  // F.5.5 also lists the output blocks themselves.
  ASSERT_EQ(to_hex(expected),
            "0bdf7df1591716335e9a8b15c860c5025a6e699d536119065433863c8f657b94"
            "1bc12c9c01610d5d0d8bd6a3378eca622956e1c8693536b1bee99c73a31576b6");
  Keystream ks(kSp80038aKey, kSp80038aIv);
  Bytes out(64);
  ks.generate(0, out);
  EXPECT_EQ(to_hex(out), to_hex(expected));
  // Random access: block 2 alone, and blocks 1..3 alone.
  Bytes block(16);
  ks.generate(32, block);
  EXPECT_EQ(to_hex(block), to_hex(ByteView(expected).subspan(32, 16)));
  Bytes tail(48);
  ks.generate(16, tail);
  EXPECT_EQ(to_hex(tail), to_hex(ByteView(expected).subspan(16)));
}

TEST(Keystream, AnySplitOfARangeGivesTheSameBytes) {
  Keystream ks(kSp80038aKey, kSp80038aIv);
  const std::size_t total = 1u << 20;
  Bytes whole(total);
  ks.generate(0, whole);
  std::mt19937 rng(20240601);
  for (int trial = 0; trial < 20; ++trial) {
    Bytes pieces(total, 0x5a);
    std::size_t pos = 0;
    while (pos < total) {
      // Pieces start 16-aligned; lengths are multiples of 16 except maybe the last.
      std::size_t len = (rng() % 4096 + 1) * 16;
      if (trial % 2 == 1) len = rng() % 3 == 0 ? 16 : (rng() % 200000 + 1) * 16;
      len = std::min(len, total - pos);
      ks.generate(pos, std::span<std::uint8_t>(pieces.data() + pos, len));
      pos += len;
    }
    ASSERT_EQ(pieces, whole) << "trial " << trial;
  }
  // Generating in reverse order, too.
  Bytes backwards(total);
  for (std::size_t pos = total; pos > 0;) {
    const std::size_t len = std::min<std::size_t>(pos, 48 * 1024);
    pos -= len;
    ks.generate(pos, std::span<std::uint8_t>(backwards.data() + pos, len));
  }
  EXPECT_EQ(backwards, whole);
}

TEST(Keystream, LengthNeedNotBeAMultipleOf16) {
  Keystream ks(kSp80038aKey, kSp80038aIv);
  Bytes ref(64);
  ks.generate(0, ref);
  for (std::size_t len : {1u, 5u, 15u, 17u, 37u, 63u}) {
    Bytes out(len);
    ks.generate(0, out);
    EXPECT_EQ(out, Bytes(ref.begin(), ref.begin() + len)) << len;
    // A following aligned call is not disturbed by the partial block before it.
    Bytes next(16);
    ks.generate(48, next);
    EXPECT_EQ(next, Bytes(ref.begin() + 48, ref.end())) << len;
  }
  Bytes odd(5);
  ks.generate(32, odd);
  EXPECT_EQ(odd, Bytes(ref.begin() + 32, ref.begin() + 37));
  ks.generate(32, std::span<std::uint8_t>());  // empty range: nothing to do
}

TEST(Keystream, CounterCarriesAcross64And128BitBoundaries) {
  const Bytes key = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  for (const char* iv_hex : {"0123456789abcdefffffffffffffffff",  // low 64 bits all ones
                             "0123456789abcdeffffffffffffffffe", "00000000fffffffffffffffffffffff0",
                             "ffffffffffffffffffffffffffffffff"}) {  // wraps mod 2^128
    SCOPED_TRACE(iv_hex);
    const Bytes iv = h(iv_hex);
    Keystream ks(key, iv);
    Bytes stream(64 * 16);
    ks.generate(0, stream);  // one call: OpenSSL increments across the boundary
    for (unsigned i = 0; i < 64; ++i) {
      std::uint8_t ctr[16];
      add_counter(iv, i, ctr);
      ASSERT_EQ(to_hex(ByteView(stream).subspan(i * 16, 16)), to_hex(ecb_block(key, ctr)))
          << "block " << i;
      Bytes single(16);
      ks.generate(std::uint64_t{i} * 16, single);  // computed IV per call
      ASSERT_EQ(single, Bytes(stream.begin() + i * 16, stream.begin() + (i + 1) * 16));
    }
  }
}

TEST(Keystream, FarOffsetsMatchTheBlockModel) {
  const Bytes key = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const Bytes iv = h("fedcba9876543210ffffffffff000000");
  Keystream ks(key, iv);
  for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1} << 32, std::uint64_t{1} << 40,
                               (std::uint64_t{1} << 44) + 160, ~std::uint64_t{0} - 15}) {
    Bytes out(32);
    ks.generate(offset, out);
    for (unsigned b = 0; b < 2; ++b) {
      std::uint8_t ctr[16];
      add_counter(iv, offset / 16 + b, ctr);
      EXPECT_EQ(to_hex(ByteView(out).subspan(b * 16, 16)), to_hex(ecb_block(key, ctr))) << offset;
    }
  }
}

TEST(Keystream, MisuseIsAUsageError) {
  Keystream ks(kSp80038aKey, kSp80038aIv);
  Bytes out(16);
  for (std::uint64_t bad : {1u, 8u, 15u, 17u, 4097u}) {
    EXPECT_EQ(error_code_of([&] { ks.generate(bad, out); }), Errc::usage) << bad;
  }
  EXPECT_EQ(error_code_of([] { Keystream(Bytes(31), Bytes(16)); }), Errc::usage);
  EXPECT_EQ(error_code_of([] { Keystream(Bytes(32), Bytes(12)); }), Errc::usage);
  Keystream moved(std::move(ks));
  moved.generate(0, out);
  EXPECT_EQ(to_hex(out), "0bdf7df1591716335e9a8b15c860c502");
}

// ---- Ed25519 ------------------------------------------------------------------

struct EdKat {
  const char* source;
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1.
const EdKat kEdKats[] = {
    {"RFC 8032 7.1 TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"RFC 8032 7.1 TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

TEST(Ed25519, Rfc8032KnownAnswers) {
  for (const EdKat& k : kEdKats) {
    SCOPED_TRACE(k.source);
    const Ed25519PrivateKey priv = Ed25519PrivateKey::from_raw(h(k.secret));
    const Ed25519PublicKey pub = priv.public_key();
    EXPECT_EQ(hex(pub.raw()), k.public_key);
    const auto sig = priv.sign(h(k.message));
    EXPECT_EQ(hex(sig), k.signature);

    const Ed25519PublicKey published = Ed25519PublicKey::from_raw(h(k.public_key));
    EXPECT_TRUE(published.verify(h(k.message), h(k.signature)));
  }
}

TEST(Ed25519, VerifyRejectsEveryAlterationWithoutThrowing) {
  const EdKat& k = kEdKats[1];
  const Ed25519PublicKey pub = Ed25519PublicKey::from_raw(h(k.public_key));
  const Bytes msg = h(k.message);
  Bytes sig = h(k.signature);
  for (std::size_t bit = 0; bit < sig.size() * 8; ++bit) {
    sig[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(pub.verify(msg, sig)) << "signature bit " << bit;
    sig[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
  EXPECT_FALSE(pub.verify(h("73"), sig));
  EXPECT_FALSE(pub.verify({}, sig));
  EXPECT_FALSE(pub.verify(msg, ByteView(sig.data(), 63)));
  EXPECT_FALSE(pub.verify(msg, {}));
  Bytes longer = sig;
  longer.push_back(0);
  EXPECT_FALSE(pub.verify(msg, longer));
  // The other RFC key does not verify this signature.
  EXPECT_FALSE(Ed25519PublicKey::from_raw(h(kEdKats[0].public_key)).verify(msg, sig));
  EXPECT_TRUE(pub.verify(msg, sig));
}

TEST(Ed25519, GeneratedKeysSignAndPemRoundTrips) {
  const Ed25519PrivateKey priv = Ed25519PrivateKey::generate();
  const SecureBuffer pem = priv.to_pem();
  const std::string_view pem_text(reinterpret_cast<const char*>(pem.data()), pem.size());
  EXPECT_EQ(pem_text.substr(0, 28), "-----BEGIN PRIVATE KEY-----\n");  // PKCS#8, unencrypted
  const Ed25519PrivateKey again = Ed25519PrivateKey::from_pem(pem_text);
  EXPECT_EQ(again.public_key().raw(), priv.public_key().raw());
  const Bytes msg = random_bytes(1000);
  EXPECT_EQ(again.sign(msg), priv.sign(msg));  // Ed25519 is deterministic
  EXPECT_TRUE(priv.public_key().verify(msg, again.sign(msg)));

  const std::string pub_pem = priv.public_key().to_pem();
  EXPECT_EQ(pub_pem.substr(0, 27), "-----BEGIN PUBLIC KEY-----\n");
  const Ed25519PublicKey pub = Ed25519PublicKey::from_pem(pub_pem);
  EXPECT_EQ(pub.raw(), priv.public_key().raw());
  EXPECT_TRUE(pub.verify(msg, priv.sign(msg)));

  EXPECT_NE(Ed25519PrivateKey::generate().public_key().raw(), priv.public_key().raw());
}

TEST(Ed25519, Rfc8032KeySurvivesPem) {
  const EdKat& k = kEdKats[0];
  const SecureBuffer pem = Ed25519PrivateKey::from_raw(h(k.secret)).to_pem();
  const auto back = Ed25519PrivateKey::from_pem(
      std::string_view(reinterpret_cast<const char*>(pem.data()), pem.size()));
  EXPECT_EQ(hex(back.sign({})), k.signature);
}

TEST(Ed25519, FingerprintIsTheFirst16BytesOfSha256OfTheRawKey) {
  const Ed25519PublicKey pub = Ed25519PublicKey::from_raw(h(kEdKats[0].public_key));
  const auto digest = sha256(h(kEdKats[0].public_key));
  EXPECT_EQ(pub.fingerprint(), to_hex(ByteView(digest.data(), 16)));
  EXPECT_EQ(pub.fingerprint().size(), 32u);
  EXPECT_NE(pub.fingerprint(), Ed25519PublicKey::from_raw(h(kEdKats[1].public_key)).fingerprint());
}

TEST(Ed25519, PublicKeysCopyAndMove) {
  std::optional<Ed25519PublicKey> original = Ed25519PublicKey::from_raw(h(kEdKats[1].public_key));
  Ed25519PublicKey copy = *original;
  Ed25519PublicKey assigned = Ed25519PublicKey::from_raw(h(kEdKats[0].public_key));
  assigned = copy;
  original.reset();  // copies outlive the original
  EXPECT_TRUE(copy.verify(h(kEdKats[1].message), h(kEdKats[1].signature)));
  EXPECT_TRUE(assigned.verify(h(kEdKats[1].message), h(kEdKats[1].signature)));
  Ed25519PublicKey moved(std::move(copy));
  EXPECT_TRUE(moved.verify(h(kEdKats[1].message), h(kEdKats[1].signature)));
  EXPECT_FALSE(copy.verify(h(kEdKats[1].message), h(kEdKats[1].signature)));  // NOLINT: moved-from
  EXPECT_EQ(error_code_of([&] { (void)copy.raw(); }), Errc::usage);

  Ed25519PrivateKey a = Ed25519PrivateKey::from_raw(h(kEdKats[1].secret));
  Ed25519PrivateKey b = std::move(a);
  EXPECT_EQ(hex(b.sign(h(kEdKats[1].message))), kEdKats[1].signature);
  EXPECT_EQ(error_code_of([&] { (void)a.sign({}); }), Errc::usage);  // NOLINT: moved-from
}

std::string pem_of(EVP_PKEY* key, bool public_only, const char* passphrase = nullptr) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (public_only) {
    EXPECT_EQ(PEM_write_bio_PUBKEY(bio, key), 1);
  } else if (passphrase != nullptr) {
    EXPECT_EQ(
        PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), passphrase,
                                      static_cast<int>(std::strlen(passphrase)), nullptr, nullptr),
        1);
  } else {
    EXPECT_EQ(PEM_write_bio_PKCS8PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

TEST(Ed25519, UnusableKeysAreAuthErrors) {
  EXPECT_EQ(error_code_of([] { (void)Ed25519PrivateKey::from_pem(""); }), Errc::auth);
  EXPECT_EQ(error_code_of([] {
              (void)Ed25519PrivateKey::from_pem(
                  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
            }),
            Errc::auth);
  EXPECT_EQ(error_code_of([] { (void)Ed25519PublicKey::from_pem("not a key"); }), Errc::auth);
  EXPECT_EQ(error_code_of([] { (void)Ed25519PublicKey::from_raw(Bytes(31)); }), Errc::auth);
  EXPECT_EQ(error_code_of([] { (void)Ed25519PublicKey::from_raw(Bytes(33)); }), Errc::auth);
  EXPECT_EQ(error_code_of([] { (void)Ed25519PrivateKey::from_raw(Bytes(31)); }), Errc::usage);

  // A key of another type (P-256) is refused in both directions.
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  const std::string ec_priv = pem_of(ec, false);
  const std::string ec_pub = pem_of(ec, true);
  EVP_PKEY_free(ec);
  EXPECT_EQ(error_code_of([&] { (void)Ed25519PrivateKey::from_pem(ec_priv); }), Errc::auth);
  EXPECT_EQ(error_code_of([&] { (void)Ed25519PublicKey::from_pem(ec_pub); }), Errc::auth);

  // A public key where a private key is expected.
  const std::string ed_pub = Ed25519PrivateKey::generate().public_key().to_pem();
  EXPECT_EQ(error_code_of([&] { (void)Ed25519PrivateKey::from_pem(ed_pub); }), Errc::auth);
}

TEST(Ed25519, EncryptedPemIsRefusedWithoutPromptingForAPassphrase) {
  // If the library fell back to OpenSSL's default callback, this would block
  // reading a passphrase from the terminal.
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  const std::string encrypted = pem_of(ed, false, "correct horse");
  EVP_PKEY_free(ed);
  ASSERT_NE(encrypted.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(error_code_of([&] { (void)Ed25519PrivateKey::from_pem(encrypted); }), Errc::auth);
}

}  // namespace
}  // namespace dlc::crypto
