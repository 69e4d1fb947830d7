// dlc_classify_engines: which engine finds candidates fastest on the same
// in-memory text (single core). Not a test; run by bench/classify_bench.sh.
//
//   dlc_classify_engines FILE... [--mib N]
//
// Engines:
//   dlc-scanner      dlc's SIMD candidate scanner with validation, context and
//                    CSV columns off (text treated as plain text): the real cost.
//   hs-literals      Hyperscan, only the fixed-text prefixes dlc also looks for
//                    (key headers, token prefixes, credential keywords), match
//                    counting only: what a multi-pattern engine would cost for
//                    the part it is suited to.
//   mask-digits      the SIMD candidate pass alone (digit-run starts, '@'),
//   mask+prefixes    ... plus the fixed-text prefixes: their marginal cost.
//   hs-regex         Hyperscan with regexes for every type (IDs, cards, phones,
//                    e-mail, IPs, keys, keywords), match counting only, no
//                    validation: the "regex engine" design.
// Built with Hyperscan when DLC_HAVE_HYPERSCAN is defined (libhyperscan-dev).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "classify/scanner.h"

#ifdef DLC_HAVE_HYPERSCAN
#include <hs.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time of this thread: the machine may be shared, wall time is not honest.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void report(const char* name, std::size_t bytes, double wall, double cpu, std::uint64_t matches) {
  std::printf("%-14s %8.1f MB/s per core (cpu %.3f s, wall %.3f s) %12llu candidates/matches\n",
              name, static_cast<double>(bytes) / 1e6 / cpu, cpu, wall,
              static_cast<unsigned long long>(matches));
}

// dlc's candidate pass alone (no validation), with or without the fixed-text
// prefixes: the difference is what finding them costs inside the single pass.
void run_masks(const char* name, bool prefixes, const std::vector<std::string>& texts,
               std::size_t bytes) {
  std::uint64_t events = 0;
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  for (int round = 0; round < 4; ++round)
    for (const auto& t : texts) events += dlc::classify::candidate_pass(t, prefixes);
  report(name, bytes * 4, seconds_since(t0), cpu_seconds() - c0, events / 4);
}

#ifdef DLC_HAVE_HYPERSCAN
int on_match(unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
  ++*static_cast<std::uint64_t*>(ctx);
  return 0;
}

void run_hyperscan(const char* name, const std::vector<std::string>& texts, std::size_t bytes,
                   const std::vector<const char*>& patterns, unsigned flags) {
  std::vector<unsigned> fl(patterns.size(), flags), ids(patterns.size());
  for (unsigned i = 0; i < ids.size(); ++i) ids[i] = i;
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(patterns.data(), fl.data(), ids.data(),
                       static_cast<unsigned>(patterns.size()), HS_MODE_BLOCK, nullptr, &db,
                       &err) != HS_SUCCESS) {
    std::printf("%-14s compile failed: %s\n", name, err ? err->message : "?");
    hs_free_compile_error(err);
    return;
  }
  hs_scratch_t* scratch = nullptr;
  hs_alloc_scratch(db, &scratch);
  std::uint64_t matches = 0;
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  for (const auto& t : texts)
    hs_scan(db, t.data(), static_cast<unsigned>(t.size()), 0, scratch, on_match, &matches);
  report(name, bytes, seconds_since(t0), cpu_seconds() - c0, matches);
  hs_free_scratch(scratch);
  hs_free_database(db);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::size_t limit = 256u << 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
      limit = std::stoul(argv[++i]) << 20;
    else
      files.emplace_back(argv[i]);
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: dlc_classify_engines FILE... [--mib N]\n");
    return 2;
  }
  // An equal share of every file (so every kind of text is in the sample), in
  // texts of at most 8 MiB (Hyperscan block mode takes 32-bit lengths).
  std::vector<std::string> texts;
  std::size_t bytes = 0;
  const std::size_t share = limit / files.size();
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string all = ss.str();
    all.resize(std::min(all.size(), share));
    if (const auto nl = all.rfind('\n'); nl != std::string::npos) all.resize(nl + 1);
    for (std::size_t off = 0; off < all.size(); off += 8u << 20) {
      std::string part = all.substr(off, 8u << 20);
      bytes += part.size();
      texts.push_back(std::move(part));
    }
  }
  std::printf("engines on %.1f MB of text, one core\n", static_cast<double>(bytes) / 1e6);

  {
    std::uint64_t hits = 0;
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    for (const auto& t : texts) {
      dlc::classify::ChunkInput in;
      in.text = t;
      in.begin = 0;
      in.end = t.size();
      dlc::classify::ChunkOutput out;
      dlc::classify::scan_chunk(in, out);
      hits += out.hit_count;
    }
    report("dlc-scanner", bytes, seconds_since(t0), cpu_seconds() - c0, hits);
  }
  run_masks("mask-digits", false, texts, bytes);
  run_masks("mask+prefixes", true, texts, bytes);
#ifdef DLC_HAVE_HYPERSCAN
  run_hyperscan("hs-literals", texts, bytes,
                {"AKIA",   "ASIA", "AKID",   "LTAI",  "eyJ",     "-----BEGIN ", "password",
                 "passwd", "pwd",  "secret", "token", "api_key", "apikey",      "cvv",
                 "cvn",    "cvc",  "pin",    "密码",  "口令",    "安全码",      "@"},
                HS_FLAG_CASELESS);
  run_hyperscan("hs-regex", texts, bytes,
                {R"([1-8][0-9]{5}(18|19|20)[0-9]{9}[0-9Xx])", R"(1[3-9][0-9]{9})",
                 R"([2-6][0-9]{12,18})", R"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})",
                 R"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})",
                 R"([0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10})",
                 R"([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30})", R"((AKIA|ASIA)[A-Z2-7]{16})",
                 R"(LTAI[A-Za-z0-9]{12,20})", R"(AKID[A-Za-z0-9]{32})",
                 R"(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
                 R"(-----BEGIN [A-Z ]*PRIVATE KEY-----)",
                 R"((?i)(password|passwd|pwd|secret|token|api_key)["']?\s*[=:])"},
                0);
#else
  std::printf("hs-literals    not built (install libhyperscan-dev)\n");
#endif
  return 0;
}
