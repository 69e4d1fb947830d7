// The standalone driver: links a fuzz target without libFuzzer, for the normal
// (gcc) build and CI. It feeds every file of the given seed corpora to
// LLVMFuzzerTestOneInput, then --mutations=N deterministic mutations of each
// (bit flips, byte overwrites, insertions, deletions, truncations): the same
// inputs on every run, so a failure in CI reproduces with the same command.
//
//   fuzz_<target> [--mutations=N] [--seed=S] [--only=K] [--keep-going] PATH...
//
// PATH is a file or a directory (all regular files below it, sorted). --only=K
// runs only mutation K of each file (0: the file itself), to reproduce a
// failure the driver reported. On a crash the input is also written to
// ./fuzz-crash-<target>-<seed file>-<K> for libFuzzer or a debugger.
// --keep-going runs each input in a child process and lists every failing
// one at the end (triage), instead of stopping at the first.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*)(void));

namespace {

namespace fs = std::filesystem;

// The input being run, for the crash handlers (plain storage: they must not allocate).
std::vector<std::uint8_t> g_current;
char g_crash_name[512] = "";

void save_current_input() {
  static volatile sig_atomic_t saved = 0;
  if (saved || !g_crash_name[0]) return;
  saved = 1;
  const int fd = ::open(g_crash_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    std::size_t done = 0;
    while (done < g_current.size()) {
      const ssize_t w = ::write(fd, g_current.data() + done, g_current.size() - done);
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
    ::close(fd);
  }
  const char msg1[] = "\ndlc fuzz: the failing input was written to ";
  (void)!::write(2, msg1, sizeof msg1 - 1);
  (void)!::write(2, g_crash_name, std::strlen(g_crash_name));
  (void)!::write(2, "\n", 1);
}

void on_fatal_signal(int sig) {
  save_current_input();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_crash_handlers() {
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_current_input);
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    ::sigaction(sig, &sa, nullptr);
  }
}

// splitmix64: a small, fixed, portable generator (reproducible everywhere).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(next() % n) : 0; }
};

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

// Bytes that tend to change how a JSON or binary parser reads its input.
constexpr std::uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '"', '\\', '{', '}', '[',
                                         ']',  ':',  ',',  '-',  '0',  '9', 'e',  '.', '\n', ' '};

std::vector<std::uint8_t> mutate(const std::vector<std::uint8_t>& seed, Rng& rng) {
  std::vector<std::uint8_t> d = seed;
  const std::size_t ops = 1 + rng.below(4);
  for (std::size_t i = 0; i < ops; ++i) {
    switch (rng.below(6)) {
      case 0:  // flip one bit
        if (!d.empty()) d[rng.below(d.size())] ^= static_cast<std::uint8_t>(1u << rng.below(8));
        break;
      case 1:  // overwrite a byte with an interesting value
        if (!d.empty()) d[rng.below(d.size())] = kInteresting[rng.below(sizeof kInteresting)];
        break;
      case 2: {  // insert 1-4 bytes (random or interesting)
        const std::size_t at = rng.below(d.size() + 1);
        const std::size_t n = 1 + rng.below(4);
        for (std::size_t k = 0; k < n; ++k) {
          const auto b = rng.below(2) ? static_cast<std::uint8_t>(rng.next())
                                      : kInteresting[rng.below(sizeof kInteresting)];
          d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), b);
        }
        break;
      }
      case 3: {  // delete a short range
        if (d.empty()) break;
        const std::size_t at = rng.below(d.size());
        const std::size_t n = std::min(d.size() - at, 1 + rng.below(8));
        d.erase(d.begin() + static_cast<std::ptrdiff_t>(at), d.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 4:  // truncate
        d.resize(rng.below(d.size() + 1));
        break;
      default: {  // overwrite a little-endian integer-sized run with extremes
        if (d.size() < 4) break;
        const std::size_t at = rng.below(d.size() - 3);
        const std::uint8_t v = rng.below(2) ? 0xff : 0x00;
        std::fill(d.begin() + static_cast<std::ptrdiff_t>(at), d.begin() + static_cast<std::ptrdiff_t>(at + 4), v);
        break;
      }
    }
  }
  return d;
}

bool starts_with(const char* s, const char* prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  const std::string target = fs::path(argv[0]).filename().string();
  long mutations = 32;
  std::uint64_t seed = 0x646c632d66757a7aull;  // "dlc-fuzz"
  long only = -1;
  bool keep_going = false;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (starts_with(a, "--mutations=")) {
      mutations = std::strtol(a + 12, nullptr, 10);
    } else if (starts_with(a, "--seed=")) {
      seed = std::strtoull(a + 7, nullptr, 0);
    } else if (starts_with(a, "--only=")) {
      only = std::strtol(a + 7, nullptr, 10);
    } else if (std::strcmp(a, "--keep-going") == 0) {
      keep_going = true;
    } else if (a[0] == '-') {
      std::fprintf(stderr, "%s: ignoring libFuzzer-style option %s\n", target.c_str(), a);
    } else if (fs::is_directory(a)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(a))
        if (e.is_regular_file()) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(a)) {
      files.emplace_back(a);
    } else {
      std::fprintf(stderr, "%s: no such file or directory: %s\n", target.c_str(), a);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s [--mutations=N] [--seed=S] [--only=K] CORPUS_DIR_OR_FILE...\n",
                 target.c_str());
    return 2;
  }
  install_crash_handlers();
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t runs = 0;
  std::vector<std::string> failures;  // --keep-going
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<std::uint8_t> original((std::istreambuf_iterator<char>(in)),
                                             std::istreambuf_iterator<char>());
    Rng rng{seed ^ fnv1a(f.filename().string())};
    for (long k = 0; k <= mutations; ++k) {
      // Mutation k depends only on the seed, the file name and k.
      std::vector<std::uint8_t> input = k == 0 ? original : mutate(original, rng);
      if (only >= 0 && k != only) continue;
      g_current = std::move(input);
      std::snprintf(g_crash_name, sizeof g_crash_name, "fuzz-crash-%s-%s-%ld", target.c_str(),
                    f.filename().c_str(), k);
      ++runs;
      if (!keep_going) {
        LLVMFuzzerTestOneInput(g_current.data(), g_current.size());
        continue;
      }
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid == 0) {
        LLVMFuzzerTestOneInput(g_current.data(), g_current.size());
        std::fflush(nullptr);
        ::_exit(0);
      }
      int status = 0;
      ::waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failures.push_back(g_crash_name);
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start).count();
  if (!failures.empty()) {
    std::printf("%s: %zu of %llu inputs failed:\n", target.c_str(), failures.size(),
                static_cast<unsigned long long>(runs));
    for (const auto& f : failures) std::printf("  %s\n", f.c_str());
    return 1;
  }
  std::printf("%s: %llu inputs (%zu seed files, %ld mutations each) in %lld ms, no failures\n",
              target.c_str(), static_cast<unsigned long long>(runs), files.size(), mutations,
              static_cast<long long>(ms));
  return 0;
}
