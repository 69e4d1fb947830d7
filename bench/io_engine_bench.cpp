// dlc_io_bench: writes zeros over / reads back a whole file or device with
// dlc::io::Engine and prints the throughput, for comparison with fio
// (bench/io_bench.sh). Usage:
//   dlc_io_bench --rw write|read --filename PATH [--bs BYTES] [--iodepth N]
//                [--size BYTES] [--fallback] [--buffered] [--no-fill]
// --no-fill skips the per-request memset (the buffers start zeroed, so zeros
// are still written): it separates the engine's own cost from the fill cost.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/io_engine.h"

namespace {

std::uint64_t parse_size(std::string_view s) {
  char* end = nullptr;
  std::string str(s);
  std::uint64_t v = std::strtoull(str.c_str(), &end, 10);
  switch (end && *end ? *end : '\0') {
    case 'k':
    case 'K':
      v <<= 10;
      break;
    case 'm':
    case 'M':
      v <<= 20;
      break;
    case 'g':
    case 'G':
      v <<= 30;
      break;
    default:
      break;
  }
  return v;
}

int usage() {
  std::fprintf(stderr,
               "usage: dlc_io_bench --rw write|read --filename PATH [--bs BYTES] "
               "[--iodepth N] [--size BYTES] [--fallback] [--buffered] [--no-fill]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string rw, path;
  std::uint64_t size = 0;
  dlc::io::EngineOptions eo;
  bool direct = true;
  bool no_fill = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string_view { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--rw")
      rw = value();
    else if (a == "--filename")
      path = value();
    else if (a == "--bs")
      eo.block_size = parse_size(value());
    else if (a == "--iodepth")
      eo.queue_depth = static_cast<unsigned>(parse_size(value()));
    else if (a == "--size")
      size = parse_size(value());
    else if (a == "--fallback")
      eo.force_fallback = true;
    else if (a == "--buffered")
      direct = false;
    else if (a == "--no-fill")
      no_fill = true;
    else
      return usage();
  }
  if ((rw != "write" && rw != "read") || path.empty()) return usage();
  const bool write = rw == "write";
  try {
    dlc::io::File file = dlc::io::File::open(
        path,
        {.mode = write ? dlc::io::OpenMode::write : dlc::io::OpenMode::read, .direct = direct});
    if (size == 0) size = file.size();
    dlc::io::Engine engine(eo);
    const dlc::io::Extent whole{0, size};
    dlc::io::IoStats st;
    std::uint64_t sink = 0;
    if (write) {
      st = engine.write(file, {&whole, 1}, [no_fill](std::uint64_t, std::span<std::uint8_t> buf) {
        if (!no_fill) std::memset(buf.data(), 0, buf.size());
      });
    } else {
      st =
          engine.read(file, {&whole, 1}, [&sink](std::uint64_t, std::span<const std::uint8_t> buf) {
            sink += buf[0] + buf[buf.size() - 1];
          });
    }
    if (sink == 1) std::fprintf(stderr, "\n");  // keeps the read loop from being optimised away
    std::printf("dlc %s %s: %.3f GB/s (%llu bytes in %.3f s, %llu requests, %llu retries, %s)\n",
                rw.c_str(), path.c_str(), static_cast<double>(st.bytes) / st.seconds / 1e9,
                static_cast<unsigned long long>(st.bytes), st.seconds,
                static_cast<unsigned long long>(st.requests),
                static_cast<unsigned long long>(st.short_retries),
                engine.backend() == dlc::io::Backend::io_uring ? "io_uring" : "pread/pwrite");
    return 0;
  } catch (const dlc::Error& e) {
    std::fprintf(stderr, "dlc_io_bench: %s\n", e.what());
    return dlc::exit_code(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dlc_io_bench: %s\n", e.what());
    return 4;
  }
}
