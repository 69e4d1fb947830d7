// dlc::crypto::Aead: published known-answer vectors for every algorithm, and
// the properties backup relies on: any single flipped bit anywhere is refused
// with Errc::auth and releases no plaintext, and every size round-trips.
#include <gcrypt.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/crypto.h"
#include "core/error.h"

namespace dlc::crypto {
namespace {

Bytes h(std::string_view hex) { return from_hex(hex); }

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 131 + (i >> 8));
  return b;
}

template <typename F>
Errc error_code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

bool all_zero(std::span<const std::uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

struct Kat {
  const char* source;
  AeadAlg alg;
  const char* key;
  const char* nonce;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

// The GCM plaintext of McGrew & Viega test cases 3/4/15/16 (4/16 use its first 60 bytes).
#define GCM_P64                                                      \
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define GCM_P60                                                      \
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"

const Kat kKats[] = {
    // D. McGrew, J. Viega, "The Galois/Counter Mode of Operation (GCM)", Appendix B.
    {"GCM spec test case 1", AeadAlg::aes_128_gcm, "00000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"},
    {"GCM spec test case 2", AeadAlg::aes_128_gcm, "00000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
    {"GCM spec test case 3", AeadAlg::aes_128_gcm, "feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "", GCM_P64,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"GCM spec test case 4", AeadAlg::aes_128_gcm, "feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", GCM_P60,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"GCM spec test case 13", AeadAlg::aes_256_gcm,
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"GCM spec test case 14", AeadAlg::aes_256_gcm,
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"GCM spec test case 15", AeadAlg::aes_256_gcm,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "", GCM_P64,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"GCM spec test case 16", AeadAlg::aes_256_gcm,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2", GCM_P60,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    // RFC 8439 section 2.8.2 (plaintext: "Ladies and Gentlemen of the class of '99: ...").
    {"RFC 8439 2.8.2", AeadAlg::chacha20_poly1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "070000004041424344454647",
     "50515253c0c1c2c3c4c5c6c7",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
     "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
     "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
     "637265656e20776f756c642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
     "3ff4def08e4b7a9de576d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
    // RFC 8998 Appendix A.1 (SM4-GCM).
    {"RFC 8998 A.1", AeadAlg::sm4_gcm, "0123456789ABCDEFFEDCBA9876543210",
     "00001234567800000000ABCD", "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2",
     "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
     "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
     "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
     "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D",
     "83DE3541E4C2B58177E065A9BF7B62EC"},
};

// First in this file on purpose: the first use of each algorithm in the
// process happens on several threads at once (one-time library set-up).
TEST(AeadThreads, OneObjectPerThreadConcurrentlyFromFirstUse) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int round = 0; round < 50; ++round) {
        for (const Kat& k : kKats) {
          Aead aead(k.alg, h(k.key));
          Bytes expected = h(k.ciphertext);
          const Bytes tag = h(k.tag);
          expected.insert(expected.end(), tag.begin(), tag.end());
          if (aead.seal(h(k.nonce), h(k.aad), h(k.plaintext)) != expected) ++failures[t];
          if (aead.open(h(k.nonce), h(k.aad), expected) != h(k.plaintext)) ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(AeadKnownAnswers, SealGivesThePublishedCiphertextAndTag) {
  for (const Kat& k : kKats) {
    SCOPED_TRACE(k.source);
    Aead aead(k.alg, h(k.key));
    Bytes expected = h(k.ciphertext);
    const Bytes tag = h(k.tag);
    expected.insert(expected.end(), tag.begin(), tag.end());
    EXPECT_EQ(to_hex(aead.seal(h(k.nonce), h(k.aad), h(k.plaintext))), to_hex(expected));
  }
}

TEST(AeadKnownAnswers, OpenRecoversThePublishedPlaintext) {
  for (const Kat& k : kKats) {
    SCOPED_TRACE(k.source);
    Aead aead(k.alg, h(k.key));
    Bytes sealed = h(k.ciphertext);
    const Bytes tag = h(k.tag);
    sealed.insert(sealed.end(), tag.begin(), tag.end());
    EXPECT_EQ(to_hex(aead.open(h(k.nonce), h(k.aad), sealed)), to_hex(h(k.plaintext)));
  }
}

// One Aead object keeps its context between messages and switches direction;
// the answers must not depend on what it did before.
TEST(AeadKnownAnswers, OneObjectAlternatingSealAndOpenKeepsGivingThePublishedAnswers) {
  for (const Kat& k : kKats) {
    SCOPED_TRACE(k.source);
    Aead aead(k.alg, h(k.key));
    Bytes expected = h(k.ciphertext);
    const Bytes tag = h(k.tag);
    expected.insert(expected.end(), tag.begin(), tag.end());
    for (int round = 0; round < 3; ++round) {
      // Disturb the state: an unrelated message, and a failed open.
      (void)aead.seal(pattern(12, 9), pattern(33, 1), pattern(100, 2));
      EXPECT_THROW((void)aead.open(pattern(12, 9), {}, pattern(40, 3)), Error);
      EXPECT_EQ(to_hex(aead.seal(h(k.nonce), h(k.aad), h(k.plaintext))), to_hex(expected));
      EXPECT_EQ(to_hex(aead.open(h(k.nonce), h(k.aad), expected)), to_hex(h(k.plaintext)));
    }
  }
}

// The SM4 block cipher under SM4-GCM, checked directly in libgcrypt (ECB, one
// block): GB/T 32907-2016 Appendix A, examples 1 and 2 (one million encryptions).
TEST(Sm4BlockCipher, GbT32907Examples) {
  (void)Aead(AeadAlg::sm4_gcm, Bytes(16));  // dlc's one-time libgcrypt initialisation
  const Bytes key = h("0123456789abcdeffedcba9876543210");
  gcry_cipher_hd_t hd = nullptr;
  ASSERT_EQ(gcry_cipher_open(&hd, GCRY_CIPHER_SM4, GCRY_CIPHER_MODE_ECB, 0), 0u);
  ASSERT_EQ(gcry_cipher_setkey(hd, key.data(), key.size()), 0u);
  Bytes block = key;  // plaintext = key in both examples
  ASSERT_EQ(gcry_cipher_encrypt(hd, block.data(), block.size(), nullptr, 0), 0u);
  EXPECT_EQ(to_hex(block), "681edf34d206965e86b3e94f536e4246");
  for (int i = 1; i < 1000000; ++i) gcry_cipher_encrypt(hd, block.data(), block.size(), nullptr, 0);
  EXPECT_EQ(to_hex(block), "595298c7c6fd271f0402f804c33d3f66");
  gcry_cipher_close(hd);
}

class AeadEveryAlg : public ::testing::TestWithParam<AeadAlg> {
 protected:
  Bytes key() const { return pattern(aead_key_size(GetParam()), 0x42); }
};

std::string alg_test_name(const ::testing::TestParamInfo<AeadAlg>& info) {
  std::string name(aead_name(info.param));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Algorithms, AeadEveryAlg, ::testing::ValuesIn(all_aeads()), alg_test_name);

TEST_P(AeadEveryAlg, RoundTripsEverySize) {
  Aead aead(GetParam(), key());
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 4096u, 1u << 20}) {
    SCOPED_TRACE(size);
    const Bytes plaintext = pattern(size, static_cast<std::uint8_t>(size));
    const Bytes nonce = pattern(kAeadNonceSize, static_cast<std::uint8_t>(size + 1));
    for (const Bytes& aad : {Bytes{}, pattern(13, 7)}) {
      const Bytes sealed = aead.seal(nonce, aad, plaintext);
      ASSERT_EQ(sealed.size(), size + kAeadTagSize);
      if (size >= 16) {
        EXPECT_NE(Bytes(sealed.begin(), sealed.begin() + 16),
                  Bytes(plaintext.begin(), plaintext.begin() + 16));
      }
      EXPECT_EQ(aead.open(nonce, aad, sealed), plaintext);
      // A fresh object with the same key opens it too (no hidden state).
      Aead other(GetParam(), key());
      EXPECT_EQ(other.open(nonce, aad, sealed), plaintext);
    }
  }
}

TEST_P(AeadEveryAlg, SealsAndOpensInPlace) {
  Aead aead(GetParam(), key());
  const Bytes nonce = pattern(12, 5);
  const Bytes plaintext = pattern(1000, 3);
  const Bytes expected = aead.seal(nonce, {}, plaintext);
  Bytes buf = plaintext;
  buf.resize(plaintext.size() + kAeadTagSize);
  aead.seal(nonce, {}, ByteView(buf.data(), plaintext.size()), buf);
  EXPECT_EQ(buf, expected);
  aead.open(nonce, {}, buf, std::span<std::uint8_t>(buf.data(), plaintext.size()));
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + 1000), plaintext);
}

TEST_P(AeadEveryAlg, PartiallyOverlappingBuffersAreAUsageError) {
  Aead aead(GetParam(), key());
  const Bytes nonce = pattern(12, 5);
  Bytes buf(2000);
  EXPECT_EQ(error_code_of([&] {
              aead.seal(nonce, {}, ByteView(buf.data() + 1, 100),
                        std::span<std::uint8_t>(buf.data(), 100 + kAeadTagSize));
            }),
            Errc::usage);
  const Bytes sealed = aead.seal(nonce, {}, pattern(100, 1));
  std::copy(sealed.begin(), sealed.end(), buf.begin());
  EXPECT_EQ(error_code_of([&] {
              aead.open(nonce, {}, ByteView(buf.data(), sealed.size()),
                        std::span<std::uint8_t>(buf.data() + 16, 100));
            }),
            Errc::usage);
}

TEST_P(AeadEveryAlg, EverySingleBitFlipIsRefusedAndReleasesNothing) {
  Aead aead(GetParam(), key());
  Bytes nonce = pattern(kAeadNonceSize, 0x11);
  Bytes aad = pattern(5, 0x22);
  const Bytes plaintext = pattern(7, 0x33);
  Bytes sealed = aead.seal(nonce, aad, plaintext);
  ASSERT_EQ(aead.open(nonce, aad, sealed), plaintext);

  auto expect_refused = [&](const char* what, std::size_t bit) {
    Bytes out(plaintext.size(), 0xAA);
    try {
      aead.open(nonce, aad, sealed, out);
      ADD_FAILURE() << what << " bit " << bit << " flipped, but open() succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::auth) << what << " bit " << bit << ": " << e.what();
    }
    EXPECT_TRUE(all_zero(out)) << what << " bit " << bit << ": output not zeroed";
  };
  for (std::size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    sealed[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    expect_refused(bit / 8 < plaintext.size() ? "ciphertext" : "tag", bit);
    sealed[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
  for (std::size_t bit = 0; bit < nonce.size() * 8; ++bit) {
    nonce[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    expect_refused("nonce", bit);
    nonce[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
  for (std::size_t bit = 0; bit < aad.size() * 8; ++bit) {
    aad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    expect_refused("aad", bit);
    aad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
  // Dropping or adding associated data is tampering too.
  Bytes out(plaintext.size(), 0xAA);
  EXPECT_EQ(error_code_of([&] { aead.open(nonce, {}, sealed, out); }), Errc::auth);
  EXPECT_TRUE(all_zero(out));
  // And everything still opens once restored.
  EXPECT_EQ(aead.open(nonce, aad, sealed), plaintext);
}

TEST_P(AeadEveryAlg, WrongKeyIsRefusedWithZeroedOutput) {
  const Bytes nonce = pattern(12, 1);
  const Bytes plaintext = pattern(4096, 2);
  const Bytes sealed = Aead(GetParam(), key()).seal(nonce, {}, plaintext);
  Bytes other_key = key();
  other_key[0] ^= 1;
  Aead wrong(GetParam(), other_key);
  Bytes out(plaintext.size(), 0xAA);
  EXPECT_EQ(error_code_of([&] { wrong.open(nonce, {}, sealed, out); }), Errc::auth);
  EXPECT_TRUE(all_zero(out));
  EXPECT_EQ(error_code_of([&] {
              (void)Aead(GetParam(), random_key(other_key.size())).open(nonce, {}, sealed);
            }),
            Errc::auth);
}

TEST_P(AeadEveryAlg, TruncatedInputIsAnAuthenticationFailure) {
  Aead aead(GetParam(), key());
  const Bytes nonce = pattern(12, 1);
  const Bytes sealed = aead.seal(nonce, {}, pattern(20, 2));
  for (std::size_t len : {0u, 1u, 15u, 16u, 35u}) {
    EXPECT_EQ(error_code_of([&] { (void)aead.open(nonce, {}, ByteView(sealed.data(), len)); }),
              Errc::auth)
        << len;
  }
}

TEST_P(AeadEveryAlg, BadSizesAreUsageErrors) {
  const std::size_t ks = aead_key_size(GetParam());
  EXPECT_EQ(error_code_of([&] { Aead(GetParam(), pattern(ks - 1, 0)); }), Errc::usage);
  EXPECT_EQ(error_code_of([&] { Aead(GetParam(), pattern(ks + 1, 0)); }), Errc::usage);
  EXPECT_EQ(error_code_of([&] { Aead(GetParam(), Bytes{}); }), Errc::usage);

  Aead aead(GetParam(), key());
  const Bytes pt = pattern(10, 0);
  for (std::size_t n : {0u, 8u, 11u, 13u, 16u}) {
    EXPECT_EQ(error_code_of([&] { (void)aead.seal(pattern(n, 0), {}, pt); }), Errc::usage) << n;
    EXPECT_EQ(error_code_of([&] { (void)aead.open(pattern(n, 0), {}, pattern(40, 0)); }),
              Errc::usage)
        << n;
  }
  Bytes small(pt.size() + kAeadTagSize - 1);
  EXPECT_EQ(error_code_of([&] { aead.seal(pattern(12, 0), {}, pt, small); }), Errc::usage);
  const Bytes sealed = aead.seal(pattern(12, 0), {}, pt);
  Bytes big(pt.size() + 1);
  EXPECT_EQ(error_code_of([&] { aead.open(pattern(12, 0), {}, sealed, big); }), Errc::usage);
}

TEST_P(AeadEveryAlg, ErrorMessagesNeverCarryKeyBytes) {
  const Bytes bad_key = pattern(aead_key_size(GetParam()) + 3, 0xC3);
  try {
    Aead aead(GetParam(), bad_key);
    FAIL() << "wrong key length accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find(to_hex(ByteView(bad_key.data(), 4))), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string(aead_name(GetParam()))), std::string::npos) << msg;
  }
}

TEST_P(AeadEveryAlg, MovedObjectKeepsWorking) {
  Aead a(GetParam(), key());
  const Bytes sealed = a.seal(pattern(12, 0), {}, pattern(50, 1));
  Aead b(std::move(a));
  EXPECT_EQ(b.alg(), GetParam());
  EXPECT_EQ(b.open(pattern(12, 0), {}, sealed), pattern(50, 1));
  Aead c(AeadAlg::aes_128_gcm, pattern(16, 0));
  c = std::move(b);
  EXPECT_EQ(c.open(pattern(12, 0), {}, sealed), pattern(50, 1));
}

TEST(AeadNames, RoundTripAndUnknownNamesListTheChoices) {
  ASSERT_EQ(all_aeads().size(), 4u);
  for (AeadAlg a : all_aeads()) EXPECT_EQ(aead_from_name(aead_name(a)), a);
  EXPECT_EQ(aead_name(AeadAlg::aes_256_gcm), "aes-256-gcm");
  EXPECT_EQ(aead_name(AeadAlg::aes_128_gcm), "aes-128-gcm");
  EXPECT_EQ(aead_name(AeadAlg::chacha20_poly1305), "chacha20-poly1305");
  EXPECT_EQ(aead_name(AeadAlg::sm4_gcm), "sm4-gcm");
  EXPECT_EQ(aead_key_size(AeadAlg::aes_256_gcm), 32u);
  EXPECT_EQ(aead_key_size(AeadAlg::aes_128_gcm), 16u);
  EXPECT_EQ(aead_key_size(AeadAlg::chacha20_poly1305), 32u);
  EXPECT_EQ(aead_key_size(AeadAlg::sm4_gcm), 16u);
  try {
    (void)aead_from_name("AES-256-GCM ");
    FAIL() << "unknown name accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("aes-256-gcm, aes-128-gcm, chacha20-poly1305, sm4-gcm"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dlc::crypto
