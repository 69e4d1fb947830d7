// `wipe_devices` with NVMe methods, end to end through the library on real
// loop devices this test creates, each playing one namespace of a fake NVMe
// controller (tests/wipe/fake_nvme.h) whose erasures are applied to the loop
// devices. Proves: the method choice lands in the certificate (category Purge,
// command, parameters, SANICAP/FNA, final SSTAT, sample evidence with the
// first and last LBA); a drive that "forgets" a block fails verification; the
// interlocks run before any admin command and cover every namespace a
// sanitize erases; scope refusals leave everything intact; a running
// sanitize is attached to; --dry-run touches nothing; the random-pattern seed
// fails closed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/audit_log.h"
#include "core/crypto.h"
#include "core/runtime.h"
#include "support/test_support.h"
#include "wipe/fake_nvme.h"
#include "wipe/nvme_method.h"
#include "wipe/wipe.h"

using namespace dlc;
using namespace dlc::wipe;
using dlc::test::Erased;
using dlc::test::FakeNvme;
using dlc::test::LoopDevice;
using dlc::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kSize = 16 << 20;
const std::string kMarker = "TENANT-SECRET ";

std::string read_all(const std::string& dev) {
  std::string out(kSize, '\0');
  int fd = ::open(dev.c_str(), O_RDONLY | O_DIRECT);
  EXPECT_GE(fd, 0);
  void* buf = nullptr;
  EXPECT_EQ(::posix_memalign(&buf, 4096, 1 << 20), 0);
  for (std::uint64_t off = 0; off < kSize; off += 1 << 20) {
    EXPECT_EQ(::pread(fd, buf, 1 << 20, static_cast<off_t>(off)), 1 << 20);
    std::memcpy(out.data() + off, buf, 1 << 20);
  }
  ::free(buf);
  ::close(fd);
  return out;
}

void fill(const std::string& dev, const std::function<std::string(std::uint64_t)>& block_at) {
  int fd = ::open(dev.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (std::uint64_t off = 0; off < kSize; off += 1 << 20) {
    std::string b = block_at(off);
    ASSERT_EQ(::pwrite(fd, b.data(), b.size(), static_cast<off_t>(off)),
              static_cast<ssize_t>(b.size()));
  }
  ::fsync(fd);
  ::close(fd);
}

void fill_marker(const std::string& dev) {
  std::string b(1 << 20, '\0');
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = kMarker[i % kMarker.size()];
  fill(dev, [&](std::uint64_t) { return b; });
}

bool has_marker(const std::string& dev) { return read_all(dev).find(kMarker) != std::string::npos; }

// One loop device per namespace, bound to a fake controller.
struct Drive {
  FakeNvme fake;
  std::map<std::uint32_t, std::unique_ptr<LoopDevice>> loops;
  std::uint64_t skip_first = 0;  // a "forgetful" drive leaves these bytes of every namespace

  Drive(std::vector<std::uint32_t> nsids, std::uint8_t dlfeat = 0x09) {
    for (auto id : nsids) {
      loops[id] = std::make_unique<LoopDevice>(kSize);
      fake.add_namespace(id, kSize, dlfeat);
      fill_marker(loops[id]->device());
    }
    fake.on_erase = [this](std::uint32_t nsid, Erased how, std::uint32_t pattern) {
      const std::string& dev = loops.at(nsid)->device();
      fill(dev, [&](std::uint64_t off) {
        std::string b(1 << 20, '\0');
        if (off < skip_first) {
          for (std::size_t i = 0; i < b.size(); ++i) b[i] = kMarker[i % kMarker.size()];
          return b;
        }
        if (how == Erased::ones) b.assign(b.size(), '\xff');
        if (how == Erased::random) {
          auto r = crypto::random_bytes(b.size());
          std::memcpy(b.data(), r.data(), b.size());
        }
        if (how == Erased::pattern)
          for (std::size_t i = 0; i < b.size(); ++i)
            b[i] = static_cast<char>(pattern >> (8 * (i % 4)));
        return b;
      });
    };
  }
  std::string dev(std::uint32_t nsid) const { return loops.at(nsid)->device(); }
  std::string kernel_name(std::uint32_t nsid) const {
    return fs::path(dev(nsid)).filename().string();
  }

  std::shared_ptr<nvme::TestHooks> hooks() {
    auto h = std::make_shared<nvme::TestHooks>();
    h->topology = [this](const std::string& path) -> std::optional<nvme::Topology> {
      for (const auto& [id, loop] : loops) {
        if (loop->device() != path) continue;
        nvme::Topology t;
        t.path = path;
        t.block = kernel_name(id);
        t.nsid = id;
        t.controller = "nvme-fake0";
        t.controller_node = fake.device();
        t.controllers = {"nvme-fake0"};
        t.subsystem = "nvme-subsys-fake";
        t.subsysnqn = fake.ctrl.subnqn;
        for (const auto& [j, l] : loops) t.namespaces.push_back({j, kernel_name(j)});
        return t;
      }
      return std::nullopt;
    };
    h->open_admin = [this](const nvme::Topology&) {
      return std::shared_ptr<nvme::Admin>(&fake, [](nvme::Admin*) {});
    };
    h->wait.poll_interval = std::chrono::milliseconds(0);
    return h;
  }
};

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
  json certificate(const TargetReport& t) const {
    return json::parse(dlc::test::read_file(t.certificate_path));
  }
  bool verifies(const TargetReport& t) const {
    return verify_certificate(t.certificate_path, log->key().public_key().to_pem()).ok();
  }
};

}  // namespace

TEST(NvmeWipe, SanitizeCryptoEraseIsCertifiedAsPurgeWithItsEvidence) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1});
  d.fake.ctrl.sanicap = 0x7;
  d.fake.ctrl.fna = 0x4;
  d.fake.log.etce = 90;
  Env env;
  env.opts.method = "auto";
  env.opts.nvme_test = d.hooks();
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  ASSERT_EQ(r.targets.size(), 1u);
  const TargetReport& t = r.targets[0];
  ASSERT_EQ(r.code, Errc::ok) << t.error;
  EXPECT_EQ(t.outcome, "sanitized");
  EXPECT_FALSE(has_marker(d.dev(1)));
  EXPECT_EQ(d.fake.count("sanitize crypto-erase"), 1u);
  EXPECT_EQ(d.fake.count("format"), 0u);
  EXPECT_TRUE(env.verifies(t));

  json c = env.certificate(t);
  EXPECT_EQ(c["sanitization"]["category"], "purge");
  EXPECT_EQ(c["sanitization"]["method"], "sanitize-crypto");
  EXPECT_NE(c["sanitization"]["technique"].get<std::string>().find("SANACT 4"), std::string::npos);
  const json& nv = c["sanitization"]["details"]["nvme"];
  EXPECT_EQ(nv["command"], "sanitize");
  EXPECT_EQ(nv["parameters"]["sanact"], 4);
  EXPECT_EQ(nv["parameters"]["nodas"], false);
  EXPECT_EQ(nv["controller"]["sanicap"], "0x00000007");
  EXPECT_EQ(nv["controller"]["fna"], "0x04");
  EXPECT_EQ(nv["controller"]["serial"], "FAKE0001");
  EXPECT_EQ(nv["final_sstat"]["status"], "completed-successfully");
  EXPECT_EQ(nv["final_sstat"]["global_data_erased"], true);
  EXPECT_EQ(nv["method_choice"]["requested"], "auto");
  EXPECT_EQ(nv["namespaces"][0]["eui64"], "001b448b44000001");
  EXPECT_EQ(c["media"]["nvme"]["eui64"], "001b448b44000001");
  EXPECT_EQ(c["media"]["nvme"]["controller"]["model"], "DLC Fake NVMe");
  const json& v = c["verification"];
  EXPECT_EQ(v["result"], "passed");
  EXPECT_EQ(v["method"], "sampling");
  EXPECT_EQ(v["sample_percent"], "1");
  EXPECT_EQ(v["status_check"]["status"], "completed-successfully");
  ASSERT_EQ(v["namespaces"].size(), 1u);
  EXPECT_EQ(v["namespaces"][0]["expected"], "zeros");
  EXPECT_EQ(v["namespaces"][0]["first_lba_checked"], true);
  EXPECT_EQ(v["namespaces"][0]["last_lba_checked"], true);
  EXPECT_EQ(v["bytes_verified"], 2u << 20);  // 1 % of 16 MiB: the first and the last 1 MiB unit
  EXPECT_NE(render_certificate_text(c).find("SANICAP"), std::string::npos);
  // The audit log has started + finished records and verifies.
  auto rep = audit::verify(env.log->path(), env.log->key().public_key());
  EXPECT_TRUE(rep.ok) << rep.problem;
}

// What a progress display is told during a sanitize: the drive's own
// estimate for the chosen action (Sanitize Status log, ETCE for a crypto
// erase) goes to estimate() so the ETA comes from the drive, not the rate.
class RecordingProgress final : public ProgressSink {
 public:
  struct Task {
    std::string label;
    std::vector<std::uint64_t> updates;
    std::vector<double> estimates;
    bool ended = false, ok = false;
  };
  std::vector<Task> tasks;
  int begin(std::string label, std::uint64_t) override {
    tasks.push_back({std::move(label), {}, {}, false, false});
    return static_cast<int>(tasks.size()) - 1;
  }
  void update(int task, std::uint64_t done) override { tasks.at(task).updates.push_back(done); }
  void estimate(int task, double seconds) override { tasks.at(task).estimates.push_back(seconds); }
  void end(int task, bool ok) override {
    tasks.at(task).ended = true;
    tasks.at(task).ok = ok;
  }
  const Task* find(const std::string& word) const {
    for (const auto& t : tasks)
      if (t.label.find(word) != std::string::npos) return &t;
    return nullptr;
  }
};

TEST(NvmeWipe, TheDrivesSanitizeEstimateReachesTheProgressDisplay) {
  DLC_REQUIRE_LOOP_DEVICES();
  for (std::uint32_t etce : {90u, 0xffffffffu}) {  // 90 s, then "no estimate reported"
    Drive d({1});
    d.fake.ctrl.sanicap = 0x7;
    d.fake.ctrl.fna = 0x4;
    d.fake.log.etce = etce;
    d.fake.log.etbe = 7;  // another action's estimate must not be used
    Env env;
    RecordingProgress rec;
    env.opts.progress = &rec;
    env.opts.method = "sanitize-crypto";
    env.opts.nvme_test = d.hooks();
    JobReport r = wipe_devices({d.dev(1)}, env.opts);
    ASSERT_EQ(r.code, Errc::ok) << r.targets.at(0).error;
    const RecordingProgress::Task* t = rec.find("sanitize");
    ASSERT_NE(t, nullptr) << "no progress task for the sanitize";
    EXPECT_TRUE(t->ended && t->ok);
    EXPECT_FALSE(t->updates.empty());
    EXPECT_TRUE(std::is_sorted(t->updates.begin(), t->updates.end()));
    if (etce == 90u) {
      EXPECT_EQ(t->estimates, std::vector<double>{90.0});
      EXPECT_NE(t->label.find("drive estimates"), std::string::npos) << t->label;
    } else {
      EXPECT_TRUE(t->estimates.empty());
      EXPECT_EQ(t->label.find("drive estimates"), std::string::npos) << t->label;
    }
  }
}

TEST(NvmeWipe, WithoutADeallocatedReadValueEverySampleMustHaveChanged) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1}, /*dlfeat*/ 0x00);  // crypto erase leaves random-looking data
  d.fake.ctrl.sanicap = 0x1;
  Env env;
  env.opts.method = "sanitize-crypto";
  env.opts.purge_sample_percent = 25;
  env.opts.nvme_test = d.hooks();
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  const json& v = r.targets[0].evidence["verification"];
  EXPECT_EQ(v["namespaces"][0]["expected"], "changed");
  EXPECT_EQ(v["namespaces"][0]["unchanged_blank_bytes"], 0u);
  EXPECT_EQ(v["result"], "passed");
  EXPECT_GE(v["bytes_verified"].get<std::uint64_t>(), kSize / 4);
}

TEST(NvmeWipe, ADriveThatLeavesDataBehindFailsVerificationAtTheFirstLba) {
  DLC_REQUIRE_LOOP_DEVICES();
  for (std::uint8_t dlfeat : {std::uint8_t{0x01}, std::uint8_t{0x00}}) {
    SCOPED_TRACE(static_cast<int>(dlfeat));
    Drive d({1}, dlfeat);
    d.fake.ctrl.sanicap = 0x2;
    d.skip_first = 1 << 20;  // the first MiB keeps the tenant's data
    Env env;
    env.opts.method = "auto";
    env.opts.nvme_test = d.hooks();
    JobReport r = wipe_devices({d.dev(1)}, env.opts);
    const TargetReport& t = r.targets[0];
    EXPECT_EQ(r.code, Errc::check_failed);
    EXPECT_EQ(t.outcome, "verification-failed");
    const json& v = t.evidence["verification"];
    EXPECT_EQ(v["result"], "failed");
    EXPECT_EQ(v["mismatched_bytes"], 1u << 20);
    EXPECT_EQ(v["first_mismatches"][0]["offset"], 0u);
    CertificateCheck c = verify_certificate(t.certificate_path);
    EXPECT_TRUE(c.signature_ok);
    EXPECT_FALSE(c.ok());
  }
}

TEST(NvmeWipe, QemuLikeDriveAutoFormatsAndExplicitSanitizeIsRefusedBeforeAnyErasingCommand) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1});  // SANICAP = FNA = 0, Format supported: what QEMU 7.2 emulates
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "sanitize-crypto";
  try {
    wipe_devices({d.dev(1)}, env.opts);
    FAIL() << "not refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
    EXPECT_NE(e.info().detail.find("SANICAP 0x00000000"), std::string::npos) << e.what();
  }
  EXPECT_EQ(d.fake.count("sanitize"), 0u);
  EXPECT_TRUE(has_marker(d.dev(1)));

  env.opts.method = "auto";
  env.opts.purge_sample_percent = 100;
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  EXPECT_EQ(d.fake.count("format nsid=1 ses=1 lbaf=1"), 1u);
  json c = env.certificate(r.targets[0]);
  EXPECT_EQ(c["sanitization"]["category"], "purge");
  EXPECT_EQ(c["sanitization"]["method"], "format-user-data");
  EXPECT_EQ(c["verification"]["method"], "full read-back");
  EXPECT_EQ(c["verification"]["bytes_verified"], kSize);
  EXPECT_EQ(c["sanitization"]["details"]["nvme"]["parameters"][0]["ses"], 1);
  EXPECT_EQ(read_all(d.dev(1)), std::string(kSize, '\0'));
}

TEST(NvmeWipe,
     SanitizeOfOneNamespaceOfSeveralIsRefusedUnlessWholeDriveAndThenChecksEveryNamespace) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1, 2});
  d.fake.ctrl.sanicap = 0x1;
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "sanitize-crypto";
  try {
    wipe_devices({d.dev(1)}, env.opts);
    FAIL() << "not refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
    EXPECT_NE(e.info().detail.find("would also erase namespace 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(d.fake.count("sanitize"), 0u);

  // With --whole-drive, namespace 2 goes through the interlocks too: held open
  // exclusively elsewhere, it refuses the job before the sanitize.
  env.opts.whole_drive = true;
  {
    int busy = ::open(d.dev(2).c_str(), O_RDONLY | O_EXCL);
    ASSERT_GE(busy, 0);
    try {
      wipe_devices({d.dev(1)}, env.opts);
      ADD_FAILURE() << "not refused";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::refused);
      EXPECT_NE(e.info().detail.find("namespace 2 (" + d.dev(2) + ") is erased too"),
                std::string::npos)
          << e.what();
    }
    ::close(busy);
  }
  EXPECT_EQ(d.fake.count("sanitize"), 0u);
  EXPECT_TRUE(has_marker(d.dev(1)));
  EXPECT_TRUE(has_marker(d.dev(2)));

  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  EXPECT_FALSE(has_marker(d.dev(1)));
  EXPECT_FALSE(has_marker(d.dev(2)));
  const json& v = r.targets[0].evidence["verification"];
  ASSERT_EQ(v["namespaces"].size(), 2u);  // both read back
  EXPECT_EQ(v["namespaces"][1]["device"], d.dev(2));
  bool whole = false;
  for (const auto& w : r.targets[0].warnings)
    whole |= w.find("whole NVM subsystem") != std::string::npos;
  EXPECT_TRUE(whole);

  // auto without --whole-drive on a multi-namespace drive formats only namespace 1.
  Drive f({1, 2});
  f.fake.ctrl.sanicap = 0x1;
  Env env2;
  env2.opts.nvme_test = f.hooks();
  env2.opts.method = "auto";
  JobReport r2 = wipe_devices({f.dev(1)}, env2.opts);
  ASSERT_EQ(r2.code, Errc::ok) << r2.targets[0].error;
  EXPECT_EQ(r2.targets[0].evidence["method_choice"]["method"], "format-user-data");
  EXPECT_FALSE(has_marker(f.dev(1)));
  EXPECT_TRUE(has_marker(f.dev(2)));
}

TEST(NvmeWipe, InterlocksRunBeforeAnyAdminCommand) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1});
  d.fake.ctrl.sanicap = 0x7;
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "auto";
  int busy = ::open(d.dev(1).c_str(), O_RDONLY | O_EXCL);
  ASSERT_GE(busy, 0);
  EXPECT_THROW(wipe_devices({d.dev(1)}, env.opts), Error);
  ::close(busy);
  EXPECT_TRUE(d.fake.calls.empty()) << d.fake.calls.front();
  EXPECT_TRUE(has_marker(d.dev(1)));
}

TEST(NvmeWipe, ASanitizeAlreadyRunningIsAttachedToAndCertified) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1});
  d.fake.ctrl.sanicap = 0x7;
  d.fake.start_foreign_sanitize(nvme::SanitizeAction::crypto_erase, 3);
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "sanitize-crypto";
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  EXPECT_EQ(d.fake.count("sanitize crypto-erase"), 0u);
  const json& s = r.targets[0].evidence["nvme"]["sanitize"];
  EXPECT_EQ(s["attached_to_running_operation"], true);
  EXPECT_EQ(s["events"][0]["event"], "attached");
  EXPECT_FALSE(has_marker(d.dev(1)));
}

TEST(NvmeWipe, AFailedSanitizeIsAnIoErrorWithoutCertificate) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1});
  d.fake.ctrl.sanicap = 0x2;
  d.fake.fail_at_poll = 2;
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "auto";
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  EXPECT_EQ(r.code, Errc::io);
  EXPECT_EQ(r.targets[0].outcome, "failed");
  EXPECT_NE(r.targets[0].error.find("failure mode"), std::string::npos) << r.targets[0].error;
  EXPECT_TRUE(r.targets[0].certificate_path.empty());

  // --sanitize-exit-failure after a restricted failure: the drive refuses (I/O, 4).
  env.opts.method = "nist-clear";
  env.opts.sanitize_exit_failure = true;
  JobReport x = wipe_devices({d.dev(1)}, env.opts);
  EXPECT_EQ(x.code, Errc::io);
  // After an unrestricted failure it leaves failure mode, and says nothing was sanitized (1).
  Drive u({1});
  u.fake.ctrl.sanicap = 0x2;
  u.fake.fail_at_poll = 1;
  Env env2;
  env2.opts.nvme_test = u.hooks();
  env2.opts.method = "sanitize-block";
  env2.opts.sanitize_unrestricted = true;
  EXPECT_EQ(wipe_devices({u.dev(1)}, env2.opts).code, Errc::io);
  env2.opts.method = "nist-clear";
  env2.opts.sanitize_exit_failure = true;
  JobReport y = wipe_devices({u.dev(1)}, env2.opts);
  EXPECT_EQ(y.code, Errc::check_failed);
  EXPECT_EQ(y.targets[0].outcome, "failure-mode-exited");
  EXPECT_EQ(u.fake.count("sanitize exit-failure-mode"), 1u);
}

TEST(NvmeWipe, DryRunChoosesAndChecksButErasesNothing) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1, 2});
  d.fake.ctrl.sanicap = 0x7;
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "auto";
  env.opts.dry_run = true;
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  EXPECT_EQ(r.code, Errc::ok);
  EXPECT_EQ(r.targets[0].outcome, "planned");
  EXPECT_EQ(r.targets[0].evidence["method_choice"]["method"], "format-user-data");
  EXPECT_EQ(d.fake.count("sanitize"), 0u);
  EXPECT_EQ(d.fake.count("format"), 0u);
  env.opts.method = "sanitize-crypto";
  JobReport refused = wipe_devices({d.dev(1)}, env.opts);
  EXPECT_EQ(refused.code, Errc::refused);
  EXPECT_EQ(refused.targets[0].outcome, "refused");
  EXPECT_TRUE(has_marker(d.dev(1)));
}

TEST(NvmeWipe, OverwriteOfAnNvmeNamespaceStaysClearAndPointsAtThePurge) {
  DLC_REQUIRE_LOOP_DEVICES();
  Drive d({1});
  d.fake.ctrl.sanicap = 0x1;
  Env env;
  env.opts.nvme_test = d.hooks();
  env.opts.method = "zero";
  JobReport r = wipe_devices({d.dev(1)}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  json c = env.certificate(r.targets[0]);
  EXPECT_EQ(c["sanitization"]["category"], "clear");
  bool hint = false;
  for (const auto& w : c["warnings"])
    hint |= w.get<std::string>().find("--method auto would use it") != std::string::npos;
  EXPECT_TRUE(hint);
  EXPECT_EQ(d.fake.count("sanitize"), 0u);
}

TEST(NvmeWipe, AutoOnANonNvmeDeviceOverwritesAndSaysWhy) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(kSize);
  Env env;
  env.opts.method = "auto";
  JobReport r = wipe_devices({loop.device()}, env.opts);
  ASSERT_EQ(r.code, Errc::ok) << r.targets[0].error;
  json c = env.certificate(r.targets[0]);
  EXPECT_EQ(c["sanitization"]["category"], "clear");
  EXPECT_EQ(c["sanitization"]["method"], "nist-clear");
  EXPECT_NE(r.targets[0].evidence["method_choice"]["why"].get<std::string>().find("not NVMe"),
            std::string::npos);
  env.opts.method = "format-crypto";
  EXPECT_THROW(wipe_devices({loop.device()}, env.opts), Error);
}

TEST(WipeSeed, AFailingOrConstantRandomSourceAbortsBeforeAnyWrite) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice loop(kSize);
  fill_marker(loop.device());
  Env env;
  env.opts.method = "random";
  env.opts.random_source = [](std::span<std::uint8_t>) {
    throw Error(Errc::io, "RAND_bytes failed (simulated)");
  };
  try {
    wipe_devices({loop.device()}, env.opts);
    FAIL() << "not aborted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find("nothing was written"), std::string::npos);
  }
  env.opts.random_source = [](std::span<std::uint8_t> out) {
    std::memset(out.data(), 0, out.size());
  };
  EXPECT_THROW(wipe_devices({loop.device()}, env.opts), Error);
  EXPECT_TRUE(has_marker(loop.device()));
  // Files too.
  TempDir dir;
  dlc::test::write_file(dir / "f", "secret\n");
  EXPECT_THROW(wipe_files({(dir / "f").string()}, env.opts), Error);
  EXPECT_EQ(dlc::test::read_file(dir / "f"), "secret\n");
}
