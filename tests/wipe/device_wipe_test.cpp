// Device wipes through the library on real loop devices this test creates:
// every method leaves the pattern it promises, verification catches a block
// written behind its back and names the offset, several devices run at once.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "core/audit_log.h"
#include "core/crypto.h"
#include "support/test_support.h"
#include "wipe/wipe.h"

using namespace dlc;
using namespace dlc::wipe;
using dlc::test::LoopDevice;
using dlc::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kSize = 16 << 20;

std::string read_all(const std::string& dev, std::uint64_t size) {
  std::string out(size, '\0');
  int fd = ::open(dev.c_str(), O_RDONLY | O_DIRECT);
  EXPECT_GE(fd, 0);
  void* buf = nullptr;
  EXPECT_EQ(::posix_memalign(&buf, 4096, 1 << 20), 0);
  for (std::uint64_t off = 0; off < size; off += 1 << 20) {
    ssize_t n = ::pread(fd, buf, 1 << 20, static_cast<off_t>(off));
    EXPECT_EQ(n, 1 << 20);
    std::memcpy(out.data() + off, buf, 1 << 20);
  }
  ::free(buf);
  ::close(fd);
  return out;
}

void write_at(const std::string& dev, std::uint64_t off, const std::string& data) {
  int fd = ::open(dev.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)),
            static_cast<ssize_t>(data.size()));
  ::fsync(fd);
  ::close(fd);
}

void fill_known(const std::string& dev) {
  std::string block(1 << 20, '\0');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>("SECRET-DATA "[i % 12]);
  for (std::uint64_t off = 0; off < kSize; off += block.size()) write_at(dev, off, block);
}

struct Env {
  TempDir home;
  std::unique_ptr<audit::AuditLog> log;
  WipeOptions opts;
  Env() {
    log = std::make_unique<audit::AuditLog>(home / "audit.jsonl",
                                            audit::HostKey::load_or_create(home.path()));
    opts.audit = log.get();
    opts.yes = true;
    opts.cert_dir = home / "certs";
    opts.journal_dir = home / "journal";
    opts.command_line = {"dlc", "wipe", "device"};
  }
};

}  // namespace

TEST(DeviceWipe, EachMethodLeavesItsPatternAndACertificate) {
  DLC_REQUIRE_LOOP_DEVICES();
  struct Case {
    std::string method;
    int expect;  // byte every position must hold, -1 random, -2 custom 55aa
  };
  for (const Case& c : {Case{"zero", 0x00}, Case{"one", 0xff}, Case{"random", -1},
                        Case{"dod-3pass", -1}, Case{"nist-clear", 0x00}, Case{"custom:55aa", -2}}) {
    SCOPED_TRACE(c.method);
    LoopDevice loop(kSize);
    fill_known(loop.device());
    Env env;
    env.opts.method = c.method;
    JobReport r = wipe_devices({loop.device()}, env.opts);
    ASSERT_EQ(r.targets.size(), 1u);
    const TargetReport& t = r.targets[0];
    EXPECT_EQ(r.code, Errc::ok) << t.error;
    EXPECT_EQ(t.outcome, "sanitized");
    EXPECT_EQ(t.evidence["verification"]["result"], "passed");
    EXPECT_TRUE(fs::exists(t.certificate_path));
    EXPECT_TRUE(verify_certificate(t.certificate_path, env.log->key().public_key().to_pem()).ok());
    std::string data = read_all(loop.device(), kSize);
    EXPECT_EQ(data.find("SECRET-DATA"), std::string::npos);
    if (c.expect >= 0) {
      EXPECT_EQ(data, std::string(kSize, static_cast<char>(c.expect)));
    } else if (c.expect == -2) {
      for (std::size_t i = 0; i < data.size(); i += 4093)
        ASSERT_EQ(static_cast<unsigned char>(data[i]), i % 2 ? 0xaa : 0x55) << i;
    } else {
      // Random: no long run of one byte anywhere we look.
      for (std::size_t i = 0; i + 64 < data.size(); i += 1 << 16)
        EXPECT_NE(data.substr(i, 32), std::string(32, data[i])) << i;
    }
    // Journal gone after success.
    EXPECT_TRUE(!fs::exists(env.opts.journal_dir) || fs::is_empty(env.opts.journal_dir));
  }
}

TEST(DeviceWipe, VerificationCatchesABlockLeftUnwipedAndNamesItsOffset) {
  DLC_REQUIRE_LOOP_DEVICES();
  for (const std::string method : {"zero", "random"}) {
    SCOPED_TRACE(method);
    LoopDevice loop(kSize);
    Env env;
    env.opts.method = method;
    const std::uint64_t bad = 5 * (1 << 20) + 3 * 512;
    env.opts.before_verify = [&](const std::string& path, unsigned) {
      write_at(path, bad, std::string(512, 'X'));  // plain open: O_EXCL does not stop it
    };
    JobReport r = wipe_devices({loop.device()}, env.opts);
    const TargetReport& t = r.targets[0];
    EXPECT_EQ(r.code, Errc::check_failed);
    EXPECT_EQ(t.outcome, "verification-failed");
    const auto& v = t.evidence["verification"];
    EXPECT_EQ(v["result"], "failed");
    EXPECT_EQ(v["mismatched_bytes"], 512);
    ASSERT_FALSE(v["first_mismatches"].empty());
    EXPECT_EQ(v["first_mismatches"][0]["offset"], bad);
    EXPECT_EQ(v["first_mismatches"][0]["length"], 512);
    // The certificate records the failure and does not certify the medium.
    CertificateCheck c = verify_certificate(t.certificate_path);
    EXPECT_TRUE(c.signature_ok);
    EXPECT_FALSE(c.ok());
  }
}

TEST(DeviceWipe, SampledVerificationRecordsPercentAndSeed) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(kSize);
  Env env;
  env.opts.method = "random";
  env.opts.sample_percent = 25;
  JobReport r = wipe_devices({loop.device()}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  const auto& v = r.targets[0].evidence["verification"];
  EXPECT_EQ(v["method"], "sampling");
  EXPECT_EQ(v["sample_percent"], "25");
  EXPECT_EQ(v["sample_seeds"].size(), 1u);
  EXPECT_LT(v["bytes_verified"].get<std::uint64_t>(), kSize);
  EXPECT_GE(v["bytes_verified"].get<std::uint64_t>(), kSize / 4);
}

TEST(DeviceWipe, SeveralDevicesAtOnceEachWithItsOwnCertificate) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice a(kSize), b(kSize), c(kSize);
  fill_known(a.device());
  fill_known(b.device());
  Env env;
  env.opts.method = "dod-3pass";
  JobReport r = wipe_devices({a.device(), b.device(), c.device()}, env.opts);
  ASSERT_EQ(r.code, Errc::ok);
  ASSERT_EQ(r.targets.size(), 3u);
  std::set<std::string> ids;
  for (const auto& t : r.targets) {
    EXPECT_EQ(t.outcome, "sanitized") << t.path << ": " << t.error;
    ids.insert(t.certificate_id);
    EXPECT_EQ(t.evidence["passes"].size(), 3u);
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(read_all(a.device(), kSize).find("SECRET-DATA"), std::string::npos);
  // Every wipe is in the audit log, and the log verifies.
  auto rep = audit::verify(env.log->path(), env.log->key().public_key());
  EXPECT_TRUE(rep.ok) << rep.problem;
  EXPECT_GE(rep.records, 6u);  // started + finished per device
}

TEST(DeviceWipe, WithoutConfirmationAndWithoutYesNothingIsWritten) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(kSize);
  fill_known(loop.device());
  Env env;
  env.opts.yes = false;  // and no confirm callback: no terminal
  try {
    wipe_devices({loop.device()}, env.opts);
    FAIL() << "not refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
    EXPECT_NE(std::string(e.what()).find("--yes"), std::string::npos);
  }
  // A confirmation that says no is refused too.
  env.opts.confirm = [](const TargetPreview& p) {
    EXPECT_FALSE(p.identity.empty());
    return false;
  };
  EXPECT_THROW(wipe_devices({loop.device()}, env.opts), Error);
  EXPECT_NE(read_all(loop.device(), kSize).find("SECRET-DATA"), std::string::npos);
}

TEST(DeviceWipe, DiscardIsReportedAsWhatItIs) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(kSize);
  Env env;
  env.opts.method = "zero";
  env.opts.discard = true;
  JobReport r = wipe_devices({loop.device()}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  const auto& d = r.targets[0].evidence["io"]["discard"];
  EXPECT_TRUE(d["issued"] == "BLKSECDISCARD" || d["issued"] == "BLKDISCARD" || d["issued"] == "none");
  EXPECT_FALSE(d["note"].get<std::string>().empty());
}
