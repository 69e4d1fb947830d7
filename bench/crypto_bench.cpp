// Throughput of dlc::crypto on one core: each AEAD sealing and opening 64 KiB
// messages (backup's chunk path), the wipe keystream, the hashes, and Ed25519.
// Run: crypto_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "core/crypto.h"

namespace dlc::crypto {
namespace {

constexpr std::size_t kChunk = 64 * 1024;

void BM_AeadSeal(benchmark::State& state) {
  const auto alg = static_cast<AeadAlg>(state.range(0));
  state.SetLabel(std::string(aead_name(alg)));
  Aead aead(alg, random_key(aead_key_size(alg)));
  const Bytes plaintext = random_bytes(kChunk);
  const Bytes aad = random_bytes(32);
  Bytes nonce(kAeadNonceSize, 0);
  Bytes out(kChunk + kAeadTagSize);
  std::uint64_t counter = 0;
  for (auto _ : state) {
    ++counter;
    for (int i = 0; i < 8; ++i) nonce[i] = static_cast<std::uint8_t>(counter >> (8 * i));
    aead.seal(nonce, aad, plaintext, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kChunk));
}

void BM_AeadOpen(benchmark::State& state) {
  const auto alg = static_cast<AeadAlg>(state.range(0));
  state.SetLabel(std::string(aead_name(alg)));
  Aead aead(alg, random_key(aead_key_size(alg)));
  const Bytes nonce = random_bytes(kAeadNonceSize);
  const Bytes aad = random_bytes(32);
  const Bytes sealed = aead.seal(nonce, aad, random_bytes(kChunk));
  Bytes out(kChunk);
  for (auto _ : state) {
    aead.open(nonce, aad, sealed, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kChunk));
}

void AllAeads(benchmark::internal::Benchmark* b) {
  for (AeadAlg alg : all_aeads()) b->Arg(static_cast<int>(alg));
}
BENCHMARK(BM_AeadSeal)->Apply(AllAeads);
BENCHMARK(BM_AeadOpen)->Apply(AllAeads);

void BM_Keystream(benchmark::State& state) {
  const std::size_t block = static_cast<std::size_t>(state.range(0));
  Keystream ks(random_key(32), random_bytes(16));
  Bytes out(block);
  std::uint64_t offset = 0;
  for (auto _ : state) {
    ks.generate(offset, out);
    offset += block;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * block));
}
BENCHMARK(BM_Keystream)->Arg(4096)->Arg(64 * 1024)->Arg(1 << 20);

void BM_Hash(benchmark::State& state) {
  const auto alg = static_cast<HashAlg>(state.range(0));
  state.SetLabel(std::string(hash_name(alg)));
  Hasher hasher(alg);
  const Bytes data = random_bytes(kChunk);
  for (auto _ : state) {
    hasher.update(data);
    benchmark::DoNotOptimize(hasher.final());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kChunk));
}
BENCHMARK(BM_Hash)
    ->Arg(static_cast<int>(HashAlg::sha256))
    ->Arg(static_cast<int>(HashAlg::sm3))
    ->Arg(static_cast<int>(HashAlg::blake2b_256));

void BM_HmacSha256(benchmark::State& state) {
  const Bytes key = random_bytes(32);
  const Bytes data = random_bytes(kChunk);
  for (auto _ : state) benchmark::DoNotOptimize(hmac_sha256(key, data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kChunk));
}
BENCHMARK(BM_HmacSha256);

void BM_Ed25519Sign(benchmark::State& state) {
  const auto key = Ed25519PrivateKey::generate();
  const Bytes msg = random_bytes(256);
  for (auto _ : state) benchmark::DoNotOptimize(key.sign(msg));
}
BENCHMARK(BM_Ed25519Sign);

void BM_Ed25519Verify(benchmark::State& state) {
  const auto key = Ed25519PrivateKey::generate();
  const auto pub = key.public_key();
  const Bytes msg = random_bytes(256);
  const auto sig = key.sign(msg);
  for (auto _ : state) benchmark::DoNotOptimize(pub.verify(msg, sig));
}
BENCHMARK(BM_Ed25519Verify);

}  // namespace
}  // namespace dlc::crypto

BENCHMARK_MAIN();
