// Remote volume migration through the library, against a real receiver (the
// dlc binary) over loopback mutual TLS 1.3 with certificates made here: a
// byte damaged in transit is refused by the receiver before it is written and
// the next run sends only what is not verified; images land only below the
// receiver's root; a filesystem that refuses O_DIRECT still gets durable
// writes and re-reads that go to storage.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "migrate/migrate.h"
#include "migrate/volume_sink.h"
#include "support/test_support.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u + seed;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::string slice(const fs::path& p, std::uint64_t off, std::size_t n) {
  std::ifstream f(p, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(off));
  std::string s(n, '\0');
  f.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<std::size_t>(f.gcount()));
  return s;
}

class RemoteVolume : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DLC_HOME", (t_.path() / "home").c_str(), 1);
    pki_ = t_.path() / "pki";
    fs::create_directories(pki_);
    const RunResult g = run_shell(
        "set -e; cd " + pki_.string() +
        "; mkca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key "
        "-out $1.pem -days 2 -subj /CN=$1 2>/dev/null; }; "
        "mkcert() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr "
        "-subj /CN=$1 2>/dev/null; printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' $3 > $1.ext; "
        "openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem -days 2 -extfile $1.ext "
        "2>/dev/null; }; mkca ca; mkcert server ca IP:127.0.0.1; mkcert client ca DNS:client");
    ASSERT_EQ(g.exit_code, 0) << g.err;
    root_ = t_.path() / "recv";
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      run_shell("while kill -0 " + std::to_string(pid_) + " 2>/dev/null; do sleep 0.05; done");
    }
  }
  int start_receiver() {
    const fs::path port = t_.path() / ("port" + std::to_string(++n_));
    const std::string cmd = "DLC_HOME=" + (t_.path() / "rhome").string() + " " + DLC_BINARY +
                            " migrate receive --listen 127.0.0.1:0 --root " + root_.string() +
                            " --region cn-north-1 --tls-cert " + (pki_ / "server.pem").string() + " --tls-key " +
                            (pki_ / "server.key").string() + " --tls-ca " + (pki_ / "ca.pem").string() +
                            " --port-file " + port.string() + " >>" + (t_.path() / "recv.log").string() +
                            " 2>&1 & echo $!";
    pid_ = std::stoi(run_shell(cmd).out);
    for (int i = 0; i < 200 && !fs::exists(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    return std::stoi(read_file(port));
  }
  migrate::MigrateOptions opts(const fs::path& src, const std::string& dst) {
    migrate::MigrateOptions o;
    o.source = src.string();
    o.destination = dst;
    o.verify = true;
    o.tls.cert = (pki_ / "client.pem").string();
    o.tls.key = (pki_ / "client.key").string();
    o.tls.ca = (pki_ / "ca.pem").string();
    return o;
  }
  TempDir t_;
  fs::path pki_, root_;
  int pid_ = -1, n_ = 0;
};

TEST_F(RemoteVolume, AChunkDamagedInTransitIsNeverWrittenAndIsSentAgain) {
  const fs::path img = t_.path() / "src.img";
  const std::string data = pattern((3u << 25) + 4096 + 777, 5);  // 4 chunks, the last unaligned
  write_file(img, data);
  const int port = start_receiver();
  const std::string url = "dlc://127.0.0.1:" + std::to_string(port) + "/vols/a.img";
  auto o = opts(img, url);
  bool tampered = false;
  o.threads = 1;  // in order: chunk 0 verified before chunk 1 is damaged
  o.tamper_in_transit = [&](std::uint64_t off, std::span<std::uint8_t> chunk) {
    if (off == (32u << 20)) {
      chunk[1000] ^= 0x01;
      tampered = true;
    }
  };
  try {
    migrate::run_migrate(o);
    FAIL() << "a chunk damaged in transit was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::check_failed) << e.what();
    EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(tampered);
  // Nothing of the damaged chunk reached the image (it was sized, so it reads as zeros).
  EXPECT_EQ(slice(root_ / "vols/a.img", (32u << 20) + 1000, 1), std::string(1, '\0'));
  EXPECT_EQ(slice(root_ / "vols/a.img", 0, 4096), data.substr(0, 4096));

  // The next run, undamaged, sends what was not verified and verifies all.
  o.tamper_in_transit = nullptr;
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified");
  EXPECT_GE(r.files_skipped, 1u);
  EXPECT_EQ(r.files_sent + r.files_skipped, 4u);
  EXPECT_EQ(r.source_root, r.dest_root);
  EXPECT_EQ(read_file(root_ / "vols/a.img"), data);
  EXPECT_EQ(r.document["transfer"]["unit"], "chunk");
  // The sender's phases and the receiver's (which did the checking, writing and re-reading).
  const auto& prof = r.document["transfer"]["profile"];
  EXPECT_TRUE(prof["source_read_ms"].is_number_unsigned()) << prof.dump();
  for (const char* k : {"check_hash_ms", "write_ms", "sync_ms", "reread_ms"})
    EXPECT_TRUE(prof["receiver"].contains(k)) << k << ": " << prof.dump();
  EXPECT_EQ(r.document["destination"]["path"], url);
  EXPECT_EQ(r.document["destination"]["region"], "cn-north-1");
  EXPECT_TRUE(r.document["destination"]["attestation"].is_object());
}

TEST_F(RemoteVolume, PassesOverALiveVolumeResendWhatChangedAndTheFinalCheckHolds) {
  const fs::path img = t_.path() / "src.img";
  write_file(img, pattern((2u << 25) + 333, 6));  // 3 chunks, the last unaligned
  const int port = start_receiver();
  const std::string url = "dlc://127.0.0.1:" + std::to_string(port) + "/vols/live.img";
  auto o = opts(img, url);
  o.passes = 2;
  o.final_pass = true;
  o.threads = 1;  // in order: chunk 0 has been sent when the hook first runs
  o.after_commit = [&](std::uint64_t sent) {
    if (sent != 1) return;  // the application writes to chunk 0 during the bulk pass
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    f.write("rewritten", 9);
    f.flush();
    ASSERT_TRUE(f.good());
    f.close();
    run_shell("sync " + img.string());
  };
  const auto r = migrate::run_migrate(o);
  EXPECT_EQ(r.outcome, "verified") << r.document["verification"].dump();
  EXPECT_EQ(r.files_sent, 4u);  // 3, then chunk 0 again
  EXPECT_EQ(r.passes_run, 3u);  // bulk, resend, final check
  EXPECT_EQ(read_file(root_ / "vols/live.img"), read_file(img));
  EXPECT_EQ(r.source_root, r.dest_root);
}

TEST_F(RemoteVolume, ImagesLandOnlyBelowTheRootAndForeignImagesAreRefused) {
  const fs::path img = t_.path() / "src.img";
  write_file(img, pattern(1u << 20, 1));
  const int port = start_receiver();
  const std::string base = "dlc://127.0.0.1:" + std::to_string(port);
  for (const std::string bad : {"/../escape.img", "/a/../../escape.img", "//etc/passwd", "//dev/null"}) {
    try {
      migrate::run_migrate(opts(img, base + bad));
      FAIL() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::refused) << bad << ": " << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(t_.path() / "escape.img"));
  // A symlink below the root may not lead the image out of it.
  fs::create_symlink(t_.path(), root_ / "out");
  EXPECT_THROW(migrate::run_migrate(opts(img, base + "/out/escape.img")), Error);
  EXPECT_FALSE(fs::exists(t_.path() / "escape.img"));
  // An image this migration did not write is refused, untouched.
  write_file(root_ / "foreign.img", "keep me");
  const auto r = migrate::run_migrate(opts(img, base + "/foreign.img"));
  EXPECT_EQ(r.code, Errc::refused);
  EXPECT_EQ(read_file(root_ / "foreign.img"), "keep me");
}

// Filesystems that refuse O_DIRECT (ramfs; tmpfs before Linux 6.6) are
// written buffered, synced, and re-read after dropping the cache.
TEST_F(RemoteVolume, TheSinkFallsBackWhereODirectIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a ramfs";
  const fs::path mnt = t_.path() / "ram";
  fs::create_directories(mnt);
  ASSERT_EQ(::mount("dlc-test", mnt.c_str(), "ramfs", 0, "mode=0700"), 0) << std::strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    const int fd = ::open((mnt / "probe").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd >= 0) {
      ::close(fd);
      GTEST_SKIP() << "ramfs accepts O_DIRECT on this kernel";
    }
    ASSERT_EQ(errno, EINVAL);
  }
  const std::string data = pattern((1u << 20) + 4096 + 99, 3);  // 3 chunks of 512 KiB, unaligned tail
  migrate::VolumeSink sink(mnt, "d/v.img", crypto::HashAlg::sha256, {});
  EXPECT_FALSE(sink.info()["exists"].get<bool>());
  const std::uint64_t chunk = 512u << 10;
  sink.open(data.size(), chunk);
  for (std::uint64_t i = 0; i * chunk < data.size(); ++i) {
    const std::string part = data.substr(i * chunk, chunk);
    const std::string h = crypto::to_hex(crypto::hash(crypto::HashAlg::sha256, crypto::as_bytes(part)));
    sink.write_chunk(static_cast<unsigned>(i % 2), i, i * chunk, crypto::as_bytes(part), h);
  }
  const auto results = sink.take_results();
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.hash, crypto::to_hex(crypto::hash(crypto::HashAlg::sha256,
                                                  crypto::as_bytes(data.substr(r.index * chunk, chunk)))));
  }
  // A damaged chunk is refused before a byte is written.
  const std::string zeros(chunk, '\0');
  EXPECT_THROW(sink.write_chunk(0, 0, 0, crypto::as_bytes(zeros), results[0].hash), Error);
  const verify::Manifest m = sink.scan(2);
  EXPECT_EQ(m.read_method, "fadvise-dontneed");
  EXPECT_EQ(m.entries.front().size, data.size());
  EXPECT_EQ(read_file(mnt / "d/v.img"), data);
  // Changed behind the sink's back: the scan reads everything again and sees it.
  {
    std::fstream f(mnt / "d/v.img", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('Z');
  }
  const verify::Manifest again = sink.scan(2);
  EXPECT_NE(again.entries.front().chunks[0], m.entries.front().chunks[0]);
  EXPECT_EQ(again.entries.front().chunks[1], m.entries.front().chunks[1]);
  sink.close();
}

}  // namespace
}  // namespace dlc::test
