// NVMe Purge logic against the fake controller: the raw Identify/log parsers,
// which technique --method auto picks for every SANICAP/FNA combination and
// why, the scope rules (Sanitize erases the whole subsystem, Format too when
// FNA says so), the Format NVM commands, the sanitize state machine (attach,
// failure mode, controller reset, cancel) and what a read returns afterwards.
#include "wipe/nvme_method.h"

#include <gtest/gtest.h>
#include <libnvme.h>

#include <cstring>

#include "core/error.h"
#include "wipe/fake_nvme.h"

using namespace dlc;
using namespace dlc::wipe;
using namespace dlc::wipe::nvme;
using dlc::test::FakeNvme;

namespace {

ControllerInfo controller(std::uint32_t sanicap, std::uint8_t fna, std::uint16_t oacs = 0x2) {
  ControllerInfo c;
  c.model = "M";
  c.serial = "S";
  c.sanicap = sanicap;
  c.fna = fna;
  c.oacs = oacs;
  return c;
}

DriveFacts facts(std::uint32_t sanicap, std::uint8_t fna, std::vector<std::uint32_t> nss = {1},
                 std::uint32_t nsid = 1) {
  DriveFacts f;
  f.ctrl = controller(sanicap, fna);
  f.nsid = nsid;
  f.namespaces = std::move(nss);
  return f;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// A fake clock: sleeping advances it, nothing really waits.
struct FakeClock {
  std::chrono::steady_clock::time_point t{};
  WaitOptions options() {
    WaitOptions o;
    o.poll_interval = std::chrono::milliseconds(1000);
    o.unavailable_grace = std::chrono::seconds(30);
    o.sleep = [this](std::chrono::milliseconds d) { t += d; };
    o.now = [this] { return t; };
    return o;
  }
};

}  // namespace

// ---- Parsers ------------------------------------------------------------------------

TEST(NvmeParse, IdentifyControllerFieldsAtTheirSpecifiedOffsetsLittleEndian) {
  nvme_id_ctrl raw;
  std::memset(&raw, 0, sizeof raw);
  std::memcpy(raw.sn, "S123                ", 20);
  std::memcpy(raw.mn, "Example NVMe 3.84TB                     ", 40);
  std::memcpy(raw.fr, "FW1.2   ", 8);
  const std::uint8_t sanicap[4] = {0x07, 0x00, 0x00, 0x60};  // CES BES OWS, NDI, NODMMAS=1
  std::memcpy(&raw.sanicap, sanicap, 4);
  const std::uint8_t oacs[2] = {0x0a, 0x00};
  std::memcpy(&raw.oacs, oacs, 2);
  raw.fna = 0x06;
  raw.cmic = 0x02;
  std::memcpy(raw.subnqn, "nqn.2014.08.org.nvmexpress:uuid:1", 33);
  ControllerInfo c = parse_identify_ctrl(&raw);
  EXPECT_EQ(c.serial, "S123");
  EXPECT_EQ(c.model, "Example NVMe 3.84TB");
  EXPECT_EQ(c.firmware, "FW1.2");
  EXPECT_EQ(c.sanicap, 0x60000007u);
  EXPECT_TRUE(c.sanitize_crypto() && c.sanitize_block() && c.sanitize_overwrite());
  EXPECT_TRUE(c.no_dealloc_inhibited());
  EXPECT_EQ(c.nodmmas(), 1u);
  EXPECT_TRUE(c.format_supported());
  EXPECT_TRUE(c.ns_management());
  EXPECT_FALSE(c.format_applies_to_all());
  EXPECT_TRUE(c.secure_erase_applies_to_all());
  EXPECT_TRUE(c.format_crypto_erase());
  EXPECT_TRUE(c.multi_controller());
  EXPECT_EQ(c.subnqn, "nqn.2014.08.org.nvmexpress:uuid:1");
  auto j = c.to_json();
  EXPECT_EQ(j["sanicap"], "0x60000007");
  EXPECT_EQ(j["fna"], "0x06");
  EXPECT_EQ(j["sanicap_decoded"]["crypto_erase"], true);
}

TEST(NvmeParse, IdentifyNamespaceCurrentFormatDlfeatAndIdentifiers) {
  nvme_id_ns raw;
  std::memset(&raw, 0, sizeof raw);
  const std::uint8_t nsze[8] = {0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0};  // 0x100000 blocks
  std::memcpy(&raw.nsze, nsze, 8);
  raw.nlbaf = 1;
  raw.flbas = 0x11;  // format 1, metadata extended
  raw.lbaf[0].ds = 9;
  raw.lbaf[1].ds = 12;
  const std::uint8_t ms[2] = {8, 0};
  std::memcpy(&raw.lbaf[1].ms, ms, 2);
  raw.dps = 0x09;  // PI type 1, first
  raw.dlfeat = 0x09;
  raw.eui64[7] = 0x42;
  raw.nguid[0] = 0xab;
  NamespaceInfo n = parse_identify_ns(3, &raw);
  EXPECT_EQ(n.nsid, 3u);
  EXPECT_EQ(n.nsze, 0x100000u);
  EXPECT_EQ(n.lbaf_index(), 1u);
  EXPECT_EQ(n.lba_size, 4096u);
  EXPECT_EQ(n.metadata_size, 8u);
  EXPECT_TRUE(n.metadata_extended());
  EXPECT_EQ(n.bytes(), 0x100000ull * 4096);
  EXPECT_EQ(n.dealloc_read(), DeallocRead::zeros);
  EXPECT_EQ(n.eui64_hex(), "0000000000000042");
  EXPECT_EQ(n.nguid_hex().substr(0, 2), "ab");
}

TEST(NvmeParse, SanitizeLogStatusPassesAndEstimates) {
  nvme_sanitize_log_page raw;
  std::memset(&raw, 0, sizeof raw);
  const std::uint8_t sprog[2] = {0x00, 0x80};
  const std::uint8_t sstat[2] = {0x0a, 0x01};  // in progress, 1 pass, global data erased
  const std::uint8_t cdw10[4] = {0x04, 0, 0, 0};
  const std::uint8_t etce[4] = {0x78, 0, 0, 0};
  const std::uint8_t unknown[4] = {0xff, 0xff, 0xff, 0xff};
  std::memcpy(&raw.sprog, sprog, 2);
  std::memcpy(&raw.sstat, sstat, 2);
  std::memcpy(&raw.scdw10, cdw10, 4);
  std::memcpy(&raw.etce, etce, 4);
  std::memcpy(&raw.etbe, unknown, 4);
  SanitizeLog l = parse_sanitize_log(&raw);
  EXPECT_EQ(l.state(), SanitizeState::in_progress);
  EXPECT_EQ(l.passes(), 1u);
  EXPECT_TRUE(l.global_data_erased());
  EXPECT_DOUBLE_EQ(l.fraction(), 0.5);
  EXPECT_EQ(l.last_action(), SanitizeAction::crypto_erase);
  EXPECT_EQ(l.estimate(SanitizeAction::crypto_erase, false), 120u);
  EXPECT_FALSE(l.estimate(SanitizeAction::block_erase, false).has_value());
}

TEST(NvmeParse, StatusIsRenderedByLibnvme) {
  EXPECT_NE(Status{kScInvalidOpcode}.describe().find("Invalid Command Opcode"), std::string::npos)
      << Status{kScInvalidOpcode}.describe();
  EXPECT_NE(Status{kScSanitizeInProgress}.describe().find("0x01d"), std::string::npos);
  EXPECT_NE(Status{-ENODEV}.describe().find("No such device"), std::string::npos);
  EXPECT_EQ(Status{0x401d}.code(), kScSanitizeInProgress);  // DNR bit ignored
}

// ---- Method choice -------------------------------------------------------------------------

TEST(NvmeChoice, AutoPicksTheStrongestSupportedTechniqueForEverySanicapAndFna) {
  struct Case {
    std::uint32_t sanicap;
    std::uint8_t fna;
    std::uint16_t oacs;
    std::string expect;
  };
  for (const Case& c :
       {Case{0x7, 0x4, 0x2, "sanitize-crypto"}, Case{0x1, 0x0, 0x2, "sanitize-crypto"},
        Case{0x6, 0x4, 0x2, "sanitize-block"}, Case{0x2, 0x0, 0x0, "sanitize-block"},
        Case{0x4, 0x4, 0x2, "sanitize-overwrite"}, Case{0x0, 0x4, 0x2, "format-crypto"},
        Case{0x0, 0x0, 0x2, "format-user-data"}, Case{0x0, 0x4, 0x0, "nist-clear"},
        Case{0x20000000, 0x0, 0x0, "nist-clear"}}) {
    SCOPED_TRACE(c.expect + " sanicap " + std::to_string(c.sanicap));
    DriveFacts f = facts(c.sanicap, c.fna);
    f.ctrl.oacs = c.oacs;
    Choice ch = choose("auto", f, false, "nist-clear");
    EXPECT_EQ(ch.method, c.expect);
    EXPECT_EQ(ch.technique.has_value(), c.expect != "nist-clear");
    EXPECT_EQ(ch.considered.size(), c.expect == "nist-clear" ? 6u : 5u) << joined(ch.considered);
    EXPECT_FALSE(ch.why.empty());
    EXPECT_EQ(ch.to_json()["category"], c.expect == "nist-clear" ? "clear" : "purge");
  }
}

TEST(NvmeChoice, QemuLikeDriveAutoChoosesFormatAndExplicitSanitizeIsRefusedWithTheReason) {
  DriveFacts f = facts(0, 0);  // QEMU 7.2: SANICAP = FNA = 0, Format supported
  Choice ch = choose("auto", f, false, "nist-clear");
  EXPECT_EQ(ch.method, "format-user-data");
  EXPECT_NE(joined(ch.considered).find("no Sanitize command at all"), std::string::npos)
      << joined(ch.considered);
  EXPECT_NE(joined(ch.considered).find("FNA 0x00, bit 2 = 0"), std::string::npos);
  for (std::string m :
       {"sanitize-crypto", "sanitize-block", "sanitize-overwrite", "format-crypto"}) {
    SCOPED_TRACE(m);
    try {
      choose(m, f, false, "nist-clear");
      FAIL() << "not refused";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::refused);
      EXPECT_NE(std::string(e.what()).find("nothing was erased"), std::string::npos);
      EXPECT_NE(e.info().detail.find(m.rfind("sanitize", 0) == 0 ? "SANICAP 0x00000000" : "FNA"),
                std::string::npos)
          << e.info().detail;
    }
  }
  EXPECT_EQ(choose("format-user-data", f, false, "nist-clear").method, "format-user-data");
  EXPECT_THROW(choose("shred", f, false, "nist-clear"), Error);
}

TEST(NvmeChoice, SanitizeOnOneNamespaceOfSeveralNeedsWholeDrive) {
  DriveFacts f = facts(0x7, 0x4, {1, 2, 3}, 2);
  // auto: sanitize would erase namespaces 1 and 3, Format (FNA bit 1 clear) only 2.
  Choice ch = choose("auto", f, false, "nist-clear");
  EXPECT_EQ(ch.method, "format-crypto");
  EXPECT_EQ(ch.scope.nsids, (std::vector<std::uint32_t>{2}));
  EXPECT_FALSE(ch.scope.whole_subsystem);
  EXPECT_NE(joined(ch.considered).find("would also erase namespaces 1, 3"), std::string::npos)
      << joined(ch.considered);
  try {
    choose("sanitize-crypto", f, false, "nist-clear");
    FAIL() << "not refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
    EXPECT_NE(e.info().detail.find("--whole-drive"), std::string::npos);
    EXPECT_NE(e.info().detail.find("namespaces 1, 3"), std::string::npos);
  }
  Choice whole = choose("sanitize-crypto", f, true, "nist-clear");
  EXPECT_TRUE(whole.scope.whole_subsystem);
  EXPECT_EQ(whole.scope.nsids, (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(choose("auto", f, true, "nist-clear").method, "sanitize-crypto");
}

TEST(NvmeChoice, FormatWithSecureEraseAllNamespacesBitIsAlsoWholeDrive) {
  DriveFacts f = facts(0, 0x2, {1, 2});  // FNA bit 1: secure erase covers every namespace
  try {
    choose("format-user-data", f, false, "nist-clear");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
    EXPECT_NE(e.info().detail.find("bit 1 set"), std::string::npos) << e.info().detail;
  }
  // auto on one namespace finds nothing that stays inside it: overwrite, Clear.
  Choice ch = choose("auto", f, false, "nist-clear");
  EXPECT_FALSE(ch.technique);
  EXPECT_EQ(ch.method, "nist-clear");
  EXPECT_NE(ch.why.find("Clear"), std::string::npos);
  Choice whole = choose("format-user-data", f, true, "nist-clear");
  EXPECT_TRUE(whole.scope.whole_subsystem);
  // A single-namespace drive: format is the whole drive anyway.
  EXPECT_EQ(choose("format-user-data", facts(0, 0x3, {1}), false, "nist-clear").method,
            "format-user-data");
}

TEST(NvmeChoice, UnseenNamespacesOfOtherControllersNeedWholeDriveForSanitize) {
  DriveFacts f = facts(0x1, 0x0, {1});
  f.namespaces_complete = false;  // multi-controller subsystem without Namespace Management
  EXPECT_EQ(choose("auto", f, false, "nist-clear").method, "format-user-data");
  EXPECT_THROW(choose("sanitize-crypto", f, false, "nist-clear"), Error);
  EXPECT_EQ(choose("sanitize-crypto", f, true, "nist-clear").method, "sanitize-crypto");
}

TEST(NvmeChoice, APartitionIsNeverPurgedAndAControllerIsNeverOverwritten) {
  DriveFacts part = facts(0x7, 0x4);
  part.partition = true;
  EXPECT_THROW(choose("sanitize-crypto", part, true, "nist-clear"), Error);
  EXPECT_EQ(choose("auto", part, false, "nist-clear").method, "nist-clear");

  DriveFacts ctrl = facts(0, 0, {1, 2}, 0);
  Choice c = choose("auto", ctrl, true, "nist-clear");
  EXPECT_EQ(c.method, "format-user-data");
  EXPECT_EQ(c.scope.nsids, (std::vector<std::uint32_t>{1, 2}));
  ctrl.ctrl.oacs = 0;
  try {
    choose("auto", ctrl, true, "nist-clear");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
  }
}

TEST(NvmeChoice, NonNvmeDevices) {
  Choice c = choose_without_nvme("auto", "loop virtual", "nist-clear");
  EXPECT_EQ(c.method, "nist-clear");
  EXPECT_FALSE(c.technique);
  EXPECT_NE(c.why.find("not NVMe"), std::string::npos);
  try {
    choose_without_nvme("sanitize-crypto", "sata ssd", "nist-clear");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::refused);
  }
  EXPECT_TRUE(wants_nvme("auto"));
  EXPECT_TRUE(wants_nvme("format-crypto"));
  EXPECT_FALSE(wants_nvme("nist-clear"));
}

// ---- Format NVM commands ----------------------------------------------------------------

TEST(NvmeFormat, CommandsKeepEachNamespacesFormatAndFollowFna) {
  std::map<std::uint32_t, NamespaceInfo> ns;
  ns[1].nsid = 1;
  ns[1].flbas = 0x01;
  ns[1].dps = 0x09;
  ns[2].nsid = 2;
  ns[2].flbas = 0x10;
  DriveFacts f = facts(0, 0x4, {1, 2}, 1);
  auto one = format_commands(Technique::format_crypto, f, ns, 1000);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].nsid, 1u);
  EXPECT_EQ(one[0].lbaf, 1u);
  EXPECT_EQ(one[0].pi, 1u);
  EXPECT_TRUE(one[0].pil);
  EXPECT_EQ(one[0].ses, SecureErase::crypto);
  EXPECT_EQ(one[0].timeout_ms, 1000u);

  f.nsid = 0;  // the controller: one command per namespace
  auto each = format_commands(Technique::format_user_data, f, ns, 0);
  ASSERT_EQ(each.size(), 2u);
  EXPECT_EQ(each[1].nsid, 2u);
  EXPECT_TRUE(each[1].mset);
  EXPECT_EQ(each[1].ses, SecureErase::user_data);

  f.ctrl.fna = 0x1;  // formats are subsystem-wide: one command, NSID FFFFFFFFh
  auto all = format_commands(Technique::format_user_data, f, ns, 0);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].nsid, 0xffffffffu);
  f.ctrl.fna = 0x9;  // ... unless FNA bit 3 forbids FFFFFFFFh
  EXPECT_EQ(format_commands(Technique::format_user_data, f, ns, 0)[0].nsid, 1u);
}

// ---- Sanitize state machine ---------------------------------------------------------------

TEST(NvmeSanitize, RunsToCompletionReportingProgress) {
  FakeNvme d;
  d.ctrl.sanicap = 0x7;
  d.add_namespace(1, 1 << 20);
  d.sanitize_polls = 5;
  FakeClock clock;
  WaitOptions o = clock.options();
  std::vector<double> progress;
  o.on_progress = [&](const SanitizeLog& l) {
    if (l.state() == SanitizeState::in_progress) progress.push_back(l.fraction());
  };
  SanitizeParams p;
  p.action = SanitizeAction::crypto_erase;
  SanitizeRecord r = run_sanitize(d, p, o);
  EXPECT_TRUE(r.issued);
  EXPECT_FALSE(r.attached);
  EXPECT_EQ(r.initial.state(), SanitizeState::never);
  EXPECT_EQ(r.final.state(), SanitizeState::succeeded);
  EXPECT_EQ(r.final.last_action(), SanitizeAction::crypto_erase);
  EXPECT_TRUE(r.final.global_data_erased());
  EXPECT_EQ(r.polls, 5u);
  EXPECT_DOUBLE_EQ(r.seconds, 5.0);
  ASSERT_EQ(progress.size(), 4u);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(d.count("sanitize crypto-erase"), 1u);
  EXPECT_EQ(d.count("media-erased"), 1u);
  auto j = r.to_json();
  EXPECT_EQ(j["final_log"]["status"], "completed-successfully");
}

TEST(NvmeSanitize, AnOperationAlreadyRunningIsAttachedToNotRestarted) {
  FakeNvme d;
  d.ctrl.sanicap = 0x7;
  d.add_namespace(1, 1 << 20);
  d.start_foreign_sanitize(SanitizeAction::crypto_erase, 3);
  FakeClock clock;
  SanitizeParams p;
  p.action = SanitizeAction::crypto_erase;
  SanitizeRecord r = run_sanitize(d, p, clock.options());
  EXPECT_TRUE(r.attached);
  EXPECT_FALSE(r.issued);
  EXPECT_EQ(d.count("sanitize crypto-erase"), 0u);
  EXPECT_EQ(r.events[0]["event"], "attached");
  EXPECT_EQ(r.final.state(), SanitizeState::succeeded);

  // A running block erase is waited for, then the requested crypto erase runs.
  FakeNvme e;
  e.ctrl.sanicap = 0x7;
  e.add_namespace(1, 1 << 20);
  e.start_foreign_sanitize(SanitizeAction::block_erase, 2);
  SanitizeRecord r2 = run_sanitize(e, p, clock.options());
  EXPECT_FALSE(r2.attached);
  EXPECT_TRUE(r2.issued);
  EXPECT_EQ(e.count("sanitize crypto-erase"), 1u);
  EXPECT_EQ(r2.final.last_action(), SanitizeAction::crypto_erase);
}

TEST(NvmeSanitize, AFailureLeavesTheDriveInFailureModeAndARetryRecovers) {
  FakeNvme d;
  d.ctrl.sanicap = 0x7;
  d.add_namespace(1, 1 << 20);
  d.fail_at_poll = 2;
  FakeClock clock;
  SanitizeParams p;
  p.action = SanitizeAction::block_erase;
  try {
    run_sanitize(d, p, clock.options());
    FAIL() << "no failure";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(e.info().detail.find("failure mode"), std::string::npos);
    EXPECT_NE(e.info().hint.find("restricted"), std::string::npos);
  }
  // Restricted mode: exit failure mode is refused by the drive.
  try {
    exit_failure_mode(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(e.info().hint.find("only a successful sanitize"), std::string::npos);
  }
  d.fail_at_poll = 0;
  SanitizeRecord r = run_sanitize(d, p, clock.options());
  EXPECT_EQ(r.final.state(), SanitizeState::succeeded);
  EXPECT_EQ(r.events[0]["event"], "failure-mode");

  // Unrestricted: the operator may leave failure mode (nothing erased).
  FakeNvme u;
  u.ctrl.sanicap = 0x7;
  u.fail_at_poll = 1;
  p.ause = true;
  try {
    run_sanitize(u, p, clock.options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.info().hint.find("--sanitize-exit-failure"), std::string::npos);
  }
  auto j = exit_failure_mode(u);
  EXPECT_EQ(j["parameters"]["sanact"], 1);
}

TEST(NvmeSanitize, AControllerResetMidwayIsRiddenOutAndRecorded) {
  FakeNvme d;
  d.ctrl.sanicap = 0x1;
  d.add_namespace(1, 1 << 20);
  d.sanitize_polls = 4;
  d.reset_from = 3;  // log read 1 is dlc's initial read; 3..5 get no answer
  d.reset_polls = 3;
  FakeClock clock;
  SanitizeParams p;
  SanitizeRecord r = run_sanitize(d, p, clock.options());
  EXPECT_EQ(r.final.state(), SanitizeState::succeeded);
  std::vector<std::string> events;
  for (const auto& e : r.events) events.push_back(e["event"]);
  EXPECT_EQ(events,
            (std::vector<std::string>{"issued", "controller-unavailable", "controller-back"}));
  EXPECT_DOUBLE_EQ(r.events[2]["silent_seconds"].get<double>(), 3.0);

  // A controller that never comes back: an I/O error after the grace period.
  FakeNvme gone;
  gone.ctrl.sanicap = 0x1;
  gone.reset_from = 2;
  gone.reset_polls = 1000;
  try {
    run_sanitize(gone, p, clock.options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find("stopped answering"), std::string::npos);
  }
}

TEST(NvmeSanitize, CancelAndRejectionAreReportedHonestly) {
  FakeNvme d;
  d.ctrl.sanicap = 0x1;
  std::atomic<bool> stop{true};
  FakeClock clock;
  WaitOptions o = clock.options();
  o.cancel = &stop;
  SanitizeParams p;
  try {
    run_sanitize(d, p, o);  // stopped before: nothing issued
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::interrupted);
    EXPECT_EQ(e.info().detail, "nothing was erased");
  }
  EXPECT_EQ(d.count("sanitize crypto"), 0u);
  stop = false;
  o.on_progress = [&](const SanitizeLog&) { stop = true; };  // SIGINT while the drive works
  try {
    run_sanitize(d, p, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::interrupted);
    EXPECT_NE(e.info().detail.find("keeps erasing"), std::string::npos);
  }
  EXPECT_TRUE(d.sanitizing());  // the drive goes on

  FakeNvme q;  // QEMU: no Sanitize at all
  q.ctrl.sanicap = 0;
  try {
    run_sanitize(q, p, clock.options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(e.info().detail.find("Invalid Command Opcode"), std::string::npos) << e.info().detail;
  }
}

// ---- Expected reads ------------------------------------------------------------------------

TEST(NvmeExpect, TheDeallocatedReadDecidesUnlessNothingWasDeallocated) {
  NamespaceInfo zeros, ones, unknown;
  zeros.dlfeat = 0x09;
  ones.dlfeat = 0x02;
  unknown.dlfeat = 0x00;
  SanitizeParams p;
  EXPECT_EQ(expected_read(Technique::sanitize_crypto, SanitizeState::succeeded, zeros, p).kind,
            Expect::zeros);
  EXPECT_EQ(expected_read(Technique::format_user_data, std::nullopt, ones, p).kind, Expect::ones);
  EXPECT_EQ(expected_read(Technique::format_crypto, std::nullopt, unknown, p).kind,
            Expect::changed);
  EXPECT_EQ(
      expected_read(Technique::sanitize_block, SanitizeState::succeeded_no_dealloc, zeros, p).kind,
      Expect::changed);
  p.action = SanitizeAction::overwrite;
  p.ovrpat = 0x11223344;
  p.owpass = 2;
  p.oipbp = true;
  Expectation e =
      expected_read(Technique::sanitize_overwrite, SanitizeState::succeeded_no_dealloc, zeros, p);
  EXPECT_EQ(e.kind, Expect::pattern);
  EXPECT_EQ(e.label(),
            "pattern 0xbbccddee");  // inverted after an even number of passes, little-endian
  EXPECT_NE(expected_read(Technique::sanitize_crypto, SanitizeState::succeeded, zeros, p)
                .why.find("DLFEAT 0x09"),
            std::string::npos);
}
