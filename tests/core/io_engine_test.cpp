// dlc::io::Engine and dlc::io::File on real files and on loop devices the
// tests create themselves (never any other block device).
#include "core/io_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/runtime.h"
#include "support/test_support.h"

namespace dlc::io {
namespace {

using test::LoopDevice;
using test::TempDir;

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB;

// ---- Helpers -------------------------------------------------------------------

// A byte pattern that depends on the absolute offset, so a block written to or
// read from the wrong place never compares equal.
std::uint8_t pattern_byte(std::uint64_t offset, std::uint64_t seed) {
  std::uint64_t z = (offset / 8) ^ seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<std::uint8_t>(z >> ((offset % 8) * 8));
}

void fill_pattern(std::uint64_t offset, std::span<std::uint8_t> buf, std::uint64_t seed) {
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = pattern_byte(offset + i, seed);
}

// Returns the offset of the first byte that differs from the pattern, or -1.
std::int64_t first_mismatch(std::uint64_t offset, std::span<const std::uint8_t> buf,
                            std::uint64_t seed) {
  for (std::size_t i = 0; i < buf.size(); ++i)
    if (buf[i] != pattern_byte(offset + i, seed)) return static_cast<std::int64_t>(offset + i);
  return -1;
}

// Reads [offset, offset + length) with plain pread on a separate buffered
// descriptor: checks what the engine wrote without trusting the engine.
std::vector<std::uint8_t> pread_all(const std::string& path, std::uint64_t offset,
                                    std::uint64_t length) {
  std::vector<std::uint8_t> out(length);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  std::uint64_t done = 0;
  while (fd >= 0 && done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n <= 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  EXPECT_EQ(done, length) << "short pread of " << path;
  if (fd >= 0) ::close(fd);
  return out;
}

// Makes a regular file of `size` bytes filled with `byte`.
void make_file(const std::string& path, std::uint64_t size, std::uint8_t byte = 0) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  std::vector<std::uint8_t> chunk(MiB, byte);
  for (std::uint64_t done = 0; done < size;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - done));
    ASSERT_EQ(::pwrite(fd, chunk.data(), n, static_cast<off_t>(done)), static_cast<ssize_t>(n));
    done += n;
  }
  ::close(fd);
}

File open_rw(const std::string& path, bool direct = true, bool create = false) {
  return File::open(path, {.mode = OpenMode::read_write, .direct = direct, .create = create});
}

EngineOptions options(bool fallback, unsigned qd, std::size_t bs) {
  EngineOptions o;
  o.queue_depth = qd;
  o.block_size = bs;
  o.force_fallback = fallback;
  return o;
}

// Captures notices for the lifetime of the object.
struct NoticeCapture {
  std::vector<std::string> messages;
  NoticeCapture() {
    set_notice_sink([this](NoticeLevel level, std::string_view m) {
      if (level == NoticeLevel::warning) messages.emplace_back(m);
    });
  }
  ~NoticeCapture() { set_notice_sink({}); }
};

// Writes the pattern over the extents, then reads them back through the
// engine (checking order and content) and with pread (checking the file).
void round_trip(Engine& engine, File& file, const std::vector<Extent>& extents,
                std::uint64_t seed) {
  std::uint64_t total = 0, requests = 0;
  for (const Extent& e : extents) {
    total += e.length;
    requests += (e.length + engine.options().block_size - 1) / engine.options().block_size;
  }
  std::vector<std::uint64_t> fill_offsets;
  IoStats w = engine.write(file, extents, [&](std::uint64_t off, std::span<std::uint8_t> buf) {
    fill_offsets.push_back(off);
    fill_pattern(off, buf, seed);
  });
  EXPECT_EQ(w.bytes, total);
  EXPECT_EQ(w.requests, requests);
  EXPECT_EQ(fill_offsets.size(), requests);

  std::vector<Extent> nonempty;
  for (const Extent& e : extents)
    if (e.length != 0) nonempty.push_back(e);
  std::vector<std::uint64_t> consume_offsets;
  std::uint64_t expected_next = nonempty.empty() ? 0 : nonempty[0].offset;
  std::size_t extent = 0;
  std::uint64_t consumed_in_extent = 0;
  IoStats r = engine.read(file, extents, [&](std::uint64_t off, std::span<const std::uint8_t> buf) {
    consume_offsets.push_back(off);
    // In extent order, and in strictly increasing, gapless offset order inside each.
    ASSERT_LT(extent, nonempty.size());
    EXPECT_EQ(off, expected_next);
    EXPECT_EQ(first_mismatch(off, buf, seed), -1) << "read back differs";
    consumed_in_extent += buf.size();
    expected_next = off + buf.size();
    if (consumed_in_extent == nonempty[extent].length) {
      consumed_in_extent = 0;
      if (++extent < nonempty.size()) expected_next = nonempty[extent].offset;
    }
  });
  EXPECT_EQ(r.bytes, total);
  EXPECT_EQ(r.requests, requests);
  EXPECT_EQ(consume_offsets, fill_offsets);
  EXPECT_EQ(extent, nonempty.size());

  for (const Extent& e : extents) {
    auto bytes = pread_all(file.path(), e.offset, e.length);
    EXPECT_EQ(first_mismatch(e.offset, bytes, seed), -1) << "file content differs";
  }
}

template <typename F>
Error catch_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no dlc::Error thrown";
  return Error(Errc::ok, "nothing thrown");
}

// ---- AlignedBuffer, File ---------------------------------------------------------

TEST(AlignedBuffer, IsAlignedZeroedAndMovable) {
  AlignedBuffer a(64 * KiB);
  ASSERT_NE(a.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 4096, 0u);
  EXPECT_EQ(a.size(), 64 * KiB);
  for (std::uint8_t b : a.span()) ASSERT_EQ(b, 0);
  std::uint8_t* p = a.data();
  AlignedBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  AlignedBuffer c(8192, 8192);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c.data()) % 8192, 0u);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
}

TEST(AlignedBuffer, LargeBuffersAreMappedZeroedAlignedAndUsableToTheLastByte) {
  // 2 MiB and up come from mmap (huge-page aligned), below from the heap:
  // both must be zeroed, aligned, writable over their whole size and movable.
  for (std::size_t size : {std::size_t{2} << 20, (std::size_t{8} << 20) + 100, std::size_t{3} << 20}) {
    AlignedBuffer a(size);
    ASSERT_NE(a.data(), nullptr);
    EXPECT_EQ(a.size(), size);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % (2u << 20), 0u) << size;
    for (std::uint8_t b : a.span()) ASSERT_EQ(b, 0) << size;
    std::memset(a.data(), 0xA5, size);
    std::uint8_t* p = a.data();
    AlignedBuffer b(std::move(a));
    EXPECT_EQ(b.data(), p);
    EXPECT_EQ(b.data()[size - 1], 0xA5);
    AlignedBuffer c(64 * KiB);
    c = std::move(b);  // frees the heap buffer, takes the mapping
    EXPECT_EQ(c.data(), p);
    EXPECT_EQ(c.size(), size);
    b = AlignedBuffer(size, 8192);  // a moved-from buffer takes a new one
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 8192, 0u);
  }
  // An alignment above 2 MiB still works (heap path).
  AlignedBuffer d(4u << 20, 4u << 20);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(d.data()) % (4u << 20), 0u);
  for (std::uint8_t x : d.span()) ASSERT_EQ(x, 0);
  // An invalid alignment is an error, large or small (not a division by zero).
  EXPECT_EQ(catch_error([] { AlignedBuffer(4u << 20, 0); }).code(), Errc::io);
  EXPECT_EQ(catch_error([] { AlignedBuffer(4u << 20, 3000); }).code(), Errc::io);
}

TEST(File, OpenMissingFileIsAnIoErrorNamingThePath) {
  TempDir dir;
  Error e = catch_error([&] { File::open((dir / "missing").string(), {}); });
  EXPECT_EQ(e.code(), Errc::io);
  EXPECT_EQ(e.info().target, (dir / "missing").string());
  EXPECT_EQ(e.info().detail, "No such file or directory");
}

TEST(File, OpenDirectoryIsAUsageError) {
  TempDir dir;
  EXPECT_EQ(catch_error([&] { File::open(dir.path().string(), {.direct = false}); }).code(),
            Errc::usage);
}

TEST(File, CreateSizeBlockSizeAndSyncOnARegularFile) {
  TempDir dir;
  const std::string path = (dir / "f").string();
  File f = open_rw(path, true, true);
  EXPECT_GE(f.fd(), 0);
  EXPECT_EQ(f.path(), path);
  EXPECT_FALSE(f.is_block_device());
  EXPECT_EQ(::fcntl(f.fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(f.size(), 0u);
  struct stat st {};
  ASSERT_EQ(::fstat(f.fd(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const std::uint32_t lbs = f.logical_block_size();
  if (f.direct()) {
    EXPECT_NE(::fcntl(f.fd(), F_GETFL) & O_DIRECT, 0);
    struct statx sx {};
    ASSERT_EQ(::statx(f.fd(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx), 0);
    if ((sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align != 0) {
      EXPECT_EQ(lbs, sx.stx_dio_offset_align);
    } else {
      EXPECT_EQ(lbs, 4096u);
    }
  }
  EXPECT_GE(lbs, 512u);
  EXPECT_EQ(lbs & (lbs - 1), 0u) << "a power of two";

  Engine engine;
  std::vector<Extent> one{{0, 3 * MiB}};
  engine.write(
      f, one, [](std::uint64_t, std::span<std::uint8_t> b) { std::memset(b.data(), 7, b.size()); });
  f.sync();
  EXPECT_EQ(f.size(), 3 * MiB);

  File buffered = File::open(path, {.mode = OpenMode::read, .direct = false});
  EXPECT_FALSE(buffered.direct());
  EXPECT_EQ(::fcntl(buffered.fd(), F_GETFL) & O_DIRECT, 0);
  EXPECT_EQ(buffered.logical_block_size(), 512u);
  EXPECT_EQ(buffered.size(), 3 * MiB);
}

TEST(File, ModesMapToOpenFlags) {
  TempDir dir;
  const std::string path = (dir / "f").string();
  make_file(path, 4096);
  EXPECT_EQ(::fcntl(File::open(path, {.mode = OpenMode::read}).fd(), F_GETFL) & O_ACCMODE,
            O_RDONLY);
  EXPECT_EQ(::fcntl(File::open(path, {.mode = OpenMode::write}).fd(), F_GETFL) & O_ACCMODE,
            O_WRONLY);
  EXPECT_EQ(::fcntl(File::open(path, {.mode = OpenMode::read_write}).fd(), F_GETFL) & O_ACCMODE,
            O_RDWR);
}

TEST(File, ExclusiveCreateRefusesAnExistingFile) {
  TempDir dir;
  const std::string path = (dir / "f").string();
  make_file(path, 4096);
  Error e = catch_error(
      [&] { File::open(path, {.mode = OpenMode::write, .exclusive = true, .create = true}); });
  EXPECT_EQ(e.code(), Errc::refused);
}

TEST(File, NoFollowRefusesASymlinkAndOpensTheFileItself) {
  TempDir dir;
  const std::string target = (dir / "data").string();
  const std::string link = (dir / "link").string();
  make_file(target, 4096);
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  Error e = catch_error([&] { File::open(link, {.mode = OpenMode::read, .no_follow = true}); });
  EXPECT_EQ(e.code(), Errc::refused);
  EXPECT_EQ(e.info().target, link);
  EXPECT_NO_THROW(File::open(link, {.mode = OpenMode::read}));  // followed without it
  EXPECT_NO_THROW(File::open(target, {.mode = OpenMode::read, .no_follow = true}));
}

TEST(File, TmpfsWorksWithOrWithoutODirect) {
  // tmpfs refused O_DIRECT before Linux 6.6: then the file is reopened
  // buffered, direct() says so, and I/O still works.
  if (::access("/dev/shm", W_OK) != 0) GTEST_SKIP() << "no writable /dev/shm";
  char tmpl[] = "/dev/shm/dlc-io-test-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    File f = open_rw(tmpl);
    Engine engine;
    round_trip(engine, f, {{0, 2 * MiB}}, 11);
  }
  ::unlink(tmpl);
}

// ---- Engine options and backends ---------------------------------------------------

TEST(Engine, InvalidOptionsAreUsageErrors) {
  EXPECT_EQ(catch_error([] { Engine e(options(false, 0, MiB)); }).code(), Errc::usage);
  EXPECT_EQ(catch_error([] { Engine e(options(false, 100000, MiB)); }).code(), Errc::usage);
  EXPECT_EQ(catch_error([] { Engine e(options(false, 4, 1000)); }).code(), Errc::usage);
  EXPECT_EQ(catch_error([] { Engine e(options(true, 4, 0)); }).code(), Errc::usage);
}

TEST(Engine, UsesIoUringWhenAvailableAndFallbackWhenForcedWithoutNotice) {
  NoticeCapture notices;
  Engine normal;
  EXPECT_EQ(normal.backend(), io_uring_available() ? Backend::io_uring : Backend::fallback);
  EXPECT_EQ(normal.options().queue_depth, 32u);
  EXPECT_EQ(normal.options().block_size, MiB);
  Engine forced(options(true, 8, 64 * KiB));
  EXPECT_EQ(forced.backend(), Backend::fallback);
  EXPECT_EQ(forced.options().queue_depth, 8u);
  if (io_uring_available()) {
    EXPECT_TRUE(notices.messages.empty());
  }
}

// In a child process whose seccomp filter makes io_uring_setup fail with
// EPERM, as a container runtime's default profile does.
int fallback_under_seccomp_child() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 10;
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 11;

  std::vector<std::string> notices;
  set_notice_sink([&](NoticeLevel, std::string_view m) { notices.emplace_back(m); });
  Engine first(options(false, 4, 64 * KiB));
  if (first.backend() != Backend::fallback) return 12;
  Engine second(options(false, 4, 64 * KiB));
  if (second.backend() != Backend::fallback) return 13;
  if (notices.size() != 1) return 14;
  if (notices[0].find("io_uring unavailable (") != 0 ||
      notices[0].find("using pread/pwrite, which is slower") == std::string::npos)
    return 15;
  TempDir dir;
  File f = open_rw((dir / "f").string(), true, true);
  std::vector<Extent> ext{{0, MiB + 64 * KiB}};
  first.write(f, ext,
              [](std::uint64_t off, std::span<std::uint8_t> b) { fill_pattern(off, b, 3); });
  bool same = true;
  second.read(f, ext, [&](std::uint64_t off, std::span<const std::uint8_t> b) {
    same = same && first_mismatch(off, b, 3) == -1;
  });
  return same ? 0 : 16;
}

TEST(EngineDeathTest, FallsBackToPreadPwriteWithOneNoticeWhenSeccompBlocksIoUring) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(fallback_under_seccomp_child()), ::testing::ExitedWithCode(0), "");
}

// ---- Round trips: both backends x queue depths x block sizes ----------------------

using Shape = std::tuple<bool, unsigned, std::size_t>;  // fallback, queue depth, block size

class RoundTrip : public ::testing::TestWithParam<Shape> {
 protected:
  Engine make_engine() const {
    auto [fallback, qd, bs] = GetParam();
    return Engine(options(fallback, qd, bs));
  }
  std::size_t block_size() const { return std::get<2>(GetParam()); }
};

TEST_P(RoundTrip, RegularFileWithAnExtentNotAMultipleOfTheBlockSize) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), true, true);
  Engine engine = make_engine();
  EXPECT_EQ(engine.backend(), std::get<0>(GetParam()) || !io_uring_available() ? Backend::fallback
                                                                               : Backend::io_uring);
  // 3 MiB + 20 KiB from 8 KiB: never a multiple of 4 KiB..1 MiB blocks.
  round_trip(engine, f, {{8 * KiB, 3 * MiB + 20 * KiB}}, block_size());
}

TEST_P(RoundTrip, LoopDevice) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(16 * MiB);
  File f = open_rw(loop.device());
  ASSERT_TRUE(f.is_block_device());
  ASSERT_TRUE(f.direct());
  Engine engine = make_engine();
  // An extent of 10 blocks + 8 KiB near the start, and one of 2 blocks +
  // 4 KiB that ends at the last LBA (kept small: 4 KiB at depth 1 is slow).
  const std::uint64_t bs = block_size();
  round_trip(engine, f,
             {{4 * KiB, 10 * bs + 8 * KiB}, {16 * MiB - 2 * bs - 4 * KiB, 2 * bs + 4 * KiB}},
             bs + 1);
}

TEST_P(RoundTrip, ScatteredExtentsInCallerOrderLeaveTheGapsAlone) {
  TempDir dir;
  const std::string path = (dir / "data").string();
  make_file(path, 8 * MiB, 0xEE);
  File f = open_rw(path);
  Engine engine = make_engine();
  // Not sorted, different sizes, one empty: consumed in the order given.
  const std::vector<Extent> extents{{5 * MiB, MiB + 4 * KiB},
                                    {64 * KiB, 8 * KiB},
                                    {MiB, 300 * KiB},
                                    {3 * MiB, 0},
                                    {2 * MiB + 4 * KiB, 4 * KiB}};
  round_trip(engine, f, extents, 77);
  auto all = pread_all(path, 0, 8 * MiB);
  for (std::uint64_t off = 0; off < all.size(); ++off) {
    bool inside = false;
    for (const Extent& e : extents)
      inside = inside || (off >= e.offset && off < e.offset + e.length);
    if (!inside) {
      ASSERT_EQ(all[off], 0xEE) << "gap byte at " << off << " was written";
    }
  }
}

std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  auto [fallback, qd, bs] = info.param;
  return std::string(fallback ? "fallback" : "uring") + "_qd" + std::to_string(qd) + "_bs" +
         std::to_string(bs / KiB) + "k";
}

INSTANTIATE_TEST_SUITE_P(Shapes, RoundTrip,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(1u, 4u, 32u),
                                            ::testing::Values(4 * KiB, 64 * KiB, MiB)),
                         shape_name);

// ---- Behaviour shared by both backends ---------------------------------------------

class Backends : public ::testing::TestWithParam<bool> {
 protected:
  Engine make_engine(unsigned qd = 8, std::size_t bs = 64 * KiB) const {
    return Engine(options(GetParam(), qd, bs));
  }
};

TEST_P(Backends, UnregisteredBuffersWorkToo) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), true, true);
  EngineOptions o = options(GetParam(), 8, 64 * KiB);
  o.register_buffers = false;
  Engine engine(o);
  round_trip(engine, f, {{0, 2 * MiB + 4 * KiB}}, 5);
}

TEST_P(Backends, ConsumeSeesStrictlyIncreasingOffsetsAtDepth32OnALoopDevice) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(16 * MiB);
  File f = open_rw(loop.device());
  // Small requests make out-of-order completions likely; the synchronous
  // fallback (in order by construction) uses larger ones to stay fast.
  Engine engine = make_engine(32, GetParam() ? 64 * KiB : 4 * KiB);
  std::vector<Extent> whole{{0, 8 * MiB}};
  engine.write(f, whole,
               [](std::uint64_t off, std::span<std::uint8_t> b) { fill_pattern(off, b, 9); });
  std::uint64_t next = 0, bad = 0;
  engine.read(f, whole, [&](std::uint64_t off, std::span<const std::uint8_t> b) {
    if (off != next || first_mismatch(off, b, 9) != -1) ++bad;
    next = off + b.size();
  });
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(next, 8 * MiB);
}

TEST_P(Backends, BufferedFilesAcceptUnalignedExtents) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), /*direct=*/false, true);
  ASSERT_FALSE(f.direct());
  Engine engine = make_engine(4, 4 * KiB);
  round_trip(engine, f, {{1, 10001}, {20000, 3}, {77777, 123456}}, 21);
}

TEST_P(Backends, MisalignedDirectExtentIsAUsageErrorBeforeAnyIo) {
  TempDir dir;
  const std::string path = (dir / "data").string();
  make_file(path, 2 * MiB, 0);
  File f = open_rw(path);
  ASSERT_TRUE(f.direct());
  const std::uint64_t lbs = f.logical_block_size();
  Engine engine = make_engine();
  int fills = 0;
  auto fill = [&](std::uint64_t, std::span<std::uint8_t> b) {
    ++fills;
    std::memset(b.data(), 1, b.size());
  };
  for (const Extent bad : {Extent{lbs / 2, lbs}, Extent{0, lbs + 100}, Extent{lbs + 1, 7}}) {
    // The first extent is fine: nothing of it may be written either.
    std::vector<Extent> extents{{0, 64 * KiB}, bad};
    Error e = catch_error([&] { engine.write(f, extents, fill); });
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(e.info().detail.find(std::to_string(lbs)), std::string::npos) << e.what();
    EXPECT_EQ(catch_error([&] {
                engine.read(f, extents, [](std::uint64_t, std::span<const std::uint8_t>) {});
              }).code(),
              Errc::usage);
  }
  EXPECT_EQ(fills, 0);
  auto head = pread_all(path, 0, 64 * KiB);
  for (auto b : head) ASSERT_EQ(b, 0);
}

TEST_P(Backends, MisalignedExtentOnALoopDeviceIsAUsageError) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(16 * MiB);
  File f = open_rw(loop.device());
  Engine engine = make_engine();
  std::vector<Extent> bad{{f.logical_block_size() / 2, 4096}};
  EXPECT_EQ(catch_error([&] {
              engine.write(f, bad, [](std::uint64_t, std::span<std::uint8_t>) {});
            }).code(),
            Errc::usage);
}

TEST_P(Backends, ReadingPastTheEndOfAFileIsAnIoErrorNamingTheOffset) {
  TempDir dir;
  const std::string path = (dir / "data").string();
  make_file(path, MiB + 4 * KiB, 0x5A);
  File f = open_rw(path);
  Engine engine = make_engine(8, 64 * KiB);
  std::uint64_t consumed = 0;
  std::vector<Extent> past{{0, 2 * MiB}};
  Error e = catch_error([&] {
    engine.read(f, past,
                [&](std::uint64_t, std::span<const std::uint8_t> b) { consumed += b.size(); });
  });
  EXPECT_EQ(e.code(), Errc::io);
  EXPECT_EQ(e.info().what, "read failed");
  EXPECT_EQ(e.info().target, path + " at offset " + std::to_string(MiB + 4 * KiB));
  EXPECT_EQ(e.info().detail, "unexpected end of file");
  EXPECT_LE(consumed, MiB);  // never handed over the short block
  // Still usable afterwards.
  std::vector<Extent> ok{{0, MiB + 4 * KiB}};
  EXPECT_EQ(engine.read(f, ok, [](std::uint64_t, std::span<const std::uint8_t>) {}).bytes,
            MiB + 4 * KiB);
}

TEST_P(Backends, ReadingAndWritingPastTheEndOfALoopDeviceNameTheEnd) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(16 * MiB);
  File f = open_rw(loop.device());
  Engine engine = make_engine(4, MiB);
  const std::string end = loop.device() + " at offset " + std::to_string(16 * MiB);
  // The last request crosses the end: a short transfer, then nothing more.
  std::vector<Extent> crossing{{15 * MiB, 2 * MiB}};
  Error w = catch_error([&] {
    engine.write(f, crossing,
                 [](std::uint64_t off, std::span<std::uint8_t> b) { fill_pattern(off, b, 4); });
  });
  EXPECT_EQ(w.code(), Errc::io);
  EXPECT_EQ(w.info().what, "write failed");
  EXPECT_EQ(w.info().target, end);
  auto tail = pread_all(loop.device(), 15 * MiB, MiB);
  EXPECT_EQ(first_mismatch(15 * MiB, tail, 4), -1) << "the part inside the device was written";

  std::vector<Extent> crossing_small{{16 * MiB - 64 * KiB, 128 * KiB}};
  Error r = catch_error(
      [&] { engine.read(f, crossing_small, [](std::uint64_t, std::span<const std::uint8_t>) {}); });
  EXPECT_EQ(r.code(), Errc::io);
  EXPECT_EQ(r.info().what, "read failed");
  EXPECT_EQ(r.info().target, end);
}

TEST_P(Backends, WriteErrorsAreIoErrorsNamingPathOffsetAndErrno) {
  TempDir dir;
  const std::string path = (dir / "data").string();
  make_file(path, MiB);
  File ro = File::open(path, {.mode = OpenMode::read});
  Engine engine = make_engine();
  std::vector<Extent> ext{{0, MiB}};
  Error e =
      catch_error([&] { engine.write(ro, ext, [](std::uint64_t, std::span<std::uint8_t>) {}); });
  EXPECT_EQ(e.code(), Errc::io);
  EXPECT_EQ(e.info().what, "write failed");
  EXPECT_EQ(e.info().target.rfind(path + " at offset ", 0), 0u) << e.info().target;
  EXPECT_EQ(e.info().detail, std::strerror(EBADF));
  // The engine drained and is usable.
  File rw = open_rw(path);
  round_trip(engine, rw, ext, 8);
}

TEST_P(Backends, CancelStopsWithInterruptedAndTheEngineStaysUsable) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), true, true);
  Engine engine = make_engine(8, 64 * KiB);
  std::vector<Extent> ext{{0, 8 * MiB}};
  std::atomic<bool> cancel{false};

  int fills = 0;
  Error w = catch_error([&] {
    engine.write(
        f, ext,
        [&](std::uint64_t off, std::span<std::uint8_t> b) {
          fill_pattern(off, b, 1);
          if (++fills == 10) cancel = true;
        },
        {}, &cancel);
  });
  EXPECT_EQ(w.code(), Errc::interrupted);
  EXPECT_EQ(w.info().target, f.path());
  EXPECT_EQ(fills, 10) << "the flag is polled before every new request";

  cancel = false;
  engine.write(f, ext,
               [](std::uint64_t off, std::span<std::uint8_t> b) { fill_pattern(off, b, 1); });
  int consumed = 0;
  Error r = catch_error([&] {
    engine.read(
        f, ext,
        [&](std::uint64_t off, std::span<const std::uint8_t> b) {
          EXPECT_EQ(first_mismatch(off, b, 1), -1);
          if (++consumed == 5) cancel = true;
        },
        {}, &cancel);
  });
  EXPECT_EQ(r.code(), Errc::interrupted);
  EXPECT_EQ(consumed, 5) << "nothing is consumed after the stop";

  // Set before the call: nothing happens at all.
  fills = 0;
  EXPECT_EQ(catch_error([&] {
              engine.write(
                  f, ext, [&](std::uint64_t, std::span<std::uint8_t>) { ++fills; }, {}, &cancel);
            }).code(),
            Errc::interrupted);
  EXPECT_EQ(fills, 0);

  cancel = false;
  round_trip(engine, f, ext, 2);
}

TEST_P(Backends, AnExceptionFromACallbackPropagatesAfterDraining) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), true, true);
  Engine engine = make_engine(8, 64 * KiB);
  std::vector<Extent> ext{{0, 4 * MiB}};
  int fills = 0;
  EXPECT_THROW(engine.write(f, ext,
                            [&](std::uint64_t, std::span<std::uint8_t>) {
                              if (++fills == 12) throw std::runtime_error("keystream failed");
                            }),
               std::runtime_error);
  engine.write(f, ext,
               [](std::uint64_t off, std::span<std::uint8_t> b) { fill_pattern(off, b, 6); });
  int consumed = 0;
  EXPECT_THROW(engine.read(f, ext,
                           [&](std::uint64_t, std::span<const std::uint8_t>) {
                             if (++consumed == 3) throw std::logic_error("verify failed");
                           }),
               std::logic_error);
  EXPECT_THROW(engine.read(
                   f, ext, [](std::uint64_t, std::span<const std::uint8_t>) {},
                   [](std::uint64_t done) {
                     if (done > MiB) throw std::length_error("ui");
                   }),
               std::length_error);
  round_trip(engine, f, ext, 6);
}

TEST_P(Backends, ProgressIsMonotonicAndEndsAtTheTotal) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), true, true);
  Engine engine = make_engine(8, 64 * KiB);
  std::vector<Extent> ext{{0, MiB + 12 * KiB}, {4 * MiB, 256 * KiB}};
  const std::uint64_t total = MiB + 12 * KiB + 256 * KiB;
  for (bool write : {true, false}) {
    std::vector<std::uint64_t> seen;
    auto progress = [&](std::uint64_t done) { seen.push_back(done); };
    IoStats st = write ? engine.write(
                             f, ext, [](std::uint64_t, std::span<std::uint8_t>) {}, progress)
                       : engine.read(
                             f, ext, [](std::uint64_t, std::span<const std::uint8_t>) {}, progress);
    ASSERT_FALSE(seen.empty());
    for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
    EXPECT_EQ(seen.back(), total);
    EXPECT_EQ(seen.size(), st.requests) << "one call per completed request";
    EXPECT_EQ(st.bytes, total);
    EXPECT_GE(st.seconds, 0.0);
  }
}

TEST_P(Backends, EmptyExtentListDoesNothing) {
  TempDir dir;
  File f = open_rw((dir / "data").string(), true, true);
  Engine engine = make_engine();
  IoStats st = engine.write(f, {}, [](std::uint64_t, std::span<std::uint8_t>) { FAIL(); });
  EXPECT_EQ(st.bytes, 0u);
  EXPECT_EQ(st.requests, 0u);
}

INSTANTIATE_TEST_SUITE_P(Both, Backends, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "fallback" : "uring");
                         });

// ---- Block devices ---------------------------------------------------------------

TEST(BlockDevice, SizeAndLogicalBlockSizeMatchBlockdev) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(24 * MiB);
  File f = File::open(loop.device(), {.mode = OpenMode::read});
  EXPECT_TRUE(f.is_block_device());
  auto size = test::run_shell("blockdev --getsize64 " + loop.device());
  auto ss = test::run_shell("blockdev --getss " + loop.device());
  ASSERT_EQ(size.exit_code, 0) << size.err;
  ASSERT_EQ(ss.exit_code, 0) << ss.err;
  EXPECT_EQ(f.size(), std::stoull(size.out));
  EXPECT_EQ(f.size(), 24 * MiB);
  EXPECT_EQ(f.logical_block_size(), std::stoul(ss.out));
}

// Mounts a device on a fresh directory and unmounts it on destruction.
class Mount {
 public:
  explicit Mount(const std::string& device) : device_(device) {
    auto r = test::run_shell("mount " + device + " " + dir_.path().string());
    mounted_ = r.exit_code == 0;
    error_ = r.err;
  }
  ~Mount() {
    if (mounted_) test::run_shell("umount " + dir_.path().string());
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  void unmount() {
    if (mounted_) mounted_ = test::run_shell("umount " + dir_.path().string()).exit_code != 0;
  }

 private:
  TempDir dir_;
  std::string device_;
  bool mounted_ = false;
  std::string error_;
};

TEST(BlockDevice, ExclusiveOpenOfAMountedDeviceIsRefused) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(32 * MiB);
  auto mkfs = test::run_shell("mkfs.ext4 -q -F " + loop.device());
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.err;
  Mount mount(loop.device());
  ASSERT_TRUE(mount.mounted()) << mount.error();
  Error e = catch_error(
      [&] { File::open(loop.device(), {.mode = OpenMode::read_write, .exclusive = true}); });
  EXPECT_EQ(e.code(), Errc::refused);
  EXPECT_EQ(e.info().what, "device is in use (mounted, held by dm/md/LVM, or open exclusively)");
  EXPECT_EQ(e.info().target, loop.device());
  mount.unmount();
  ASSERT_FALSE(mount.mounted());
  File f = File::open(loop.device(), {.mode = OpenMode::read_write, .exclusive = true});
  EXPECT_TRUE(f.is_block_device());
}

TEST(BlockDevice, TheEngineDoesNotKeepAClosedDeviceClaimed) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(16 * MiB);
  Engine engine;  // outlives the file: its ring must not hold the device
  const OpenOptions excl{.mode = OpenMode::read_write, .exclusive = true};
  {
    File f = File::open(loop.device(), excl);
    EXPECT_EQ(catch_error([&] { File::open(loop.device(), excl); }).code(), Errc::refused);
    round_trip(engine, f, {{0, 16 * MiB}}, 31);
  }
  File again = File::open(loop.device(), excl);
  EXPECT_TRUE(again.is_block_device());
}

}  // namespace
}  // namespace dlc::io
