// A faithful fake of an NVMe controller at dlc's admin edge (wipe/nvme_admin.h)
// for unit tests on a machine without NVMe hardware. It behaves as the NVMe
// Base Specification says a controller does, as far as dlc can tell:
// - Sanitize is Invalid Command Opcode when SANICAP is 0 (as QEMU 7.2 answers),
//   Invalid Field for an action SANICAP lacks or No-Deallocate when NDI is set,
//   Sanitize In Progress while one runs; it runs in the background, advancing
//   SPROG once per Sanitize Status log read, and ends with SSTAT 1 (or 4 with
//   no-deallocate), or 3 when told to fail; then the drive is in failure mode,
//   which Exit Failure Mode leaves only after an unrestricted (AUSE=1) one.
// - A controller reset makes log reads fail (-ENODEV) for a number of polls;
//   the sanitize goes on.
// - Format NVM is Invalid Command Opcode without OACS bit 1, Invalid Field for
//   a cryptographic erase without FNA bit 2, and erases the namespace, or all
//   of them when FNA bit 0/1 says so or NSID is FFFFFFFFh.
// Erasing is delegated to on_erase so a test can apply it to the loop device
// that plays the namespace.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "wipe/nvme_admin.h"

namespace dlc::test {

using namespace dlc::wipe::nvme;

enum class Erased { zeros, ones, random, pattern };

class FakeNvme final : public Admin {
 public:
  ControllerInfo ctrl;
  std::map<std::uint32_t, NamespaceInfo> ns;
  // Active namespaces of this controller; empty: every key of ns.
  std::vector<std::uint32_t> active;

  // How long a sanitize runs, in Sanitize Status log reads.
  unsigned sanitize_polls = 4;
  // The running sanitize fails at this poll (0: never).
  unsigned fail_at_poll = 0;
  // A reset: log reads number reset_from .. reset_from + reset_polls - 1
  // (counted from 1 over the controller's life) fail with -ENODEV.
  unsigned reset_from = 0, reset_polls = 0;
  // Completes with SSTAT 4 (success, no deallocation) even without NODAS.
  bool complete_without_dealloc = false;
  // Erasing a namespace's media; the test applies it to its loop device.
  std::function<void(std::uint32_t nsid, Erased how, std::uint32_t pattern)> on_erase;

  SanitizeLog log;                 // what the Sanitize Status log says
  std::vector<std::string> calls;  // every command, in order
  unsigned log_reads = 0;

  FakeNvme() {
    ctrl.model = "DLC Fake NVMe";
    ctrl.serial = "FAKE0001";
    ctrl.firmware = "1.0";
    ctrl.subnqn = "nqn.2024-01.test.dlc:fake";
    ctrl.oacs = 0x2;  // Format NVM
    log.sprog = 0xffff;
    log.eto = log.etbe = log.etce = 0xffffffffu;
  }

  // A namespace of n bytes in 4 KiB blocks reading zeros when deallocated.
  NamespaceInfo& add_namespace(std::uint32_t nsid, std::uint64_t bytes,
                               std::uint8_t dlfeat = 0x09) {
    NamespaceInfo& i = ns[nsid];
    i.nsid = nsid;
    i.nsze = i.ncap = i.nuse = bytes / 4096;
    i.flbas = 0x01;  // LBA format 1
    i.nlbaf = 1;
    i.lba_size = 4096;
    i.dlfeat = dlfeat;
    i.eui64 = {0x00, 0x1b, 0x44, 0x8b, 0x44, 0x00, 0x00, static_cast<std::uint8_t>(nsid)};
    return i;
  }

  // A sanitize somebody else started before dlc runs.
  void start_foreign_sanitize(SanitizeAction a, unsigned polls) {
    begin(SanitizeParams{a, false, 1, false, 0, false});
    remaining_ = polls;
  }

  bool sanitizing() const { return (log.sstat & 7u) == 2; }
  unsigned count(const std::string& prefix) const {
    unsigned n = 0;
    for (const auto& c : calls) n += c.rfind(prefix, 0) == 0;
    return n;
  }

  std::string device() const override { return "/dev/fake-nvme0"; }

  Status identify_ctrl(ControllerInfo& out) override {
    calls.push_back("identify-ctrl");
    out = ctrl;
    return {};
  }

  Status identify_ns(std::uint32_t nsid, NamespaceInfo& out) override {
    calls.push_back("identify-ns " + std::to_string(nsid));
    auto it = ns.find(nsid);
    if (it == ns.end()) return Status{0x0b};  // Invalid Namespace or Format
    out = it->second;
    return {};
  }

  Status namespace_list(bool allocated, std::vector<std::uint32_t>& out) override {
    calls.push_back(allocated ? "ns-list allocated" : "ns-list active");
    if (allocated && !ctrl.ns_management()) return Status{kScInvalidField};
    out.clear();
    if (!allocated && !active.empty()) {
      out = active;
      return {};
    }
    for (const auto& [id, i] : ns) out.push_back(id);
    return {};
  }

  Status sanitize(const SanitizeParams& p) override {
    calls.push_back("sanitize " + std::string(sanitize_action_name(p.action)));
    if (ctrl.sanicap == 0) return Status{kScInvalidOpcode};
    if (sanitizing()) return Status{kScSanitizeInProgress};
    if (p.action == SanitizeAction::exit_failure_mode) {
      if ((log.sstat & 7u) != 3 || !failure_mode_) return {};
      if (!last_ause_) return Status{kScSanitizeFailed};
      failure_mode_ = false;
      return {};
    }
    const bool ok = (p.action == SanitizeAction::crypto_erase && ctrl.sanitize_crypto()) ||
                    (p.action == SanitizeAction::block_erase && ctrl.sanitize_block()) ||
                    (p.action == SanitizeAction::overwrite && ctrl.sanitize_overwrite());
    if (!ok) return Status{kScInvalidField};
    if (p.nodas && ctrl.no_dealloc_inhibited()) return Status{kScInvalidField};
    begin(p);
    remaining_ = sanitize_polls;
    return {};
  }

  Status sanitize_log(SanitizeLog& out) override {
    ++log_reads;
    if (reset_polls && log_reads >= reset_from && log_reads < reset_from + reset_polls) {
      calls.push_back("sanitize-log (reset: no answer)");
      return Status{-ENODEV};
    }
    calls.push_back("sanitize-log");
    if (sanitizing()) advance();
    out = log;
    return {};
  }

  Status format(const FormatParams& p) override {
    calls.push_back("format nsid=" + std::to_string(p.nsid) + " ses=" +
                    std::to_string(static_cast<int>(p.ses)) + " lbaf=" + std::to_string(p.lbaf));
    if (!ctrl.format_supported()) return Status{kScInvalidOpcode};
    if (sanitizing()) return Status{kScSanitizeInProgress};
    if (failure_mode_) return Status{kScSanitizeFailed};
    if (p.ses == SecureErase::crypto && !ctrl.format_crypto_erase()) return Status{kScInvalidField};
    const bool all = p.nsid == 0xffffffffu || ctrl.format_applies_to_all() ||
                     (p.ses != SecureErase::none && ctrl.secure_erase_applies_to_all());
    if (!all && !ns.count(p.nsid)) return Status{0x0b};
    if (p.nsid != 0xffffffffu && ns.count(p.nsid) && p.lbaf != ns[p.nsid].lbaf_index())
      return Status{0x0a};  // Invalid Format: dlc must keep the current format
    for (auto& [id, i] : ns)
      if (all || id == p.nsid) erase(id, dealloc_fill(i));
    return {};
  }

 private:
  void begin(const SanitizeParams& p) {
    current_ = p;
    last_ause_ = p.ause;
    log.scdw10 = p.cdw10();
    log.sstat = 2;  // in progress, 0 passes
    log.sprog = 0;
    polls_ = 0;
  }

  Erased dealloc_fill(const NamespaceInfo& i) const {
    switch (i.dealloc_read()) {
      case DeallocRead::zeros:
        return Erased::zeros;
      case DeallocRead::ones:
        return Erased::ones;
      case DeallocRead::not_reported:
        break;
    }
    return Erased::random;
  }

  void erase(std::uint32_t nsid, Erased how, std::uint32_t pattern = 0) {
    calls.push_back("media-erased " + std::to_string(nsid));
    if (on_erase) on_erase(nsid, how, pattern);
  }

  void advance() {
    ++polls_;
    if (fail_at_poll && polls_ >= fail_at_poll) {
      log.sstat = 3;
      log.sprog = 0xffff;
      failure_mode_ = true;
      return;
    }
    if (polls_ < remaining_) {
      log.sprog = static_cast<std::uint16_t>(65536ull * polls_ / remaining_);
      return;
    }
    const bool no_dealloc = current_.nodas || complete_without_dealloc;
    for (auto& [id, i] : ns) {
      if (!no_dealloc)
        erase(id, dealloc_fill(i));
      else if (current_.action == SanitizeAction::overwrite)
        erase(id, Erased::pattern, current_.ovrpat);
      else
        erase(id, Erased::random);
    }
    log.sstat = static_cast<std::uint16_t>((no_dealloc ? 4 : 1) | (1u << 3) | 0x100);
    log.sprog = 0xffff;
    failure_mode_ = false;
  }

  SanitizeParams current_;
  unsigned remaining_ = 0, polls_ = 0;
  bool failure_mode_ = false;
  bool last_ause_ = false;
};

}  // namespace dlc::test
