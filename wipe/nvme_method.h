// NVMe Purge for dlc wipe: which technique a drive supports and what it
// erases (method choice and scope, pure logic over Identify data), the
// sanitize state machine (start or attach, poll the Sanitize Status log,
// survive controller resets, report failure), Format NVM with secure erase,
// and the EraseMethod that runs them and verifies the result by reading back
// a pseudorandom sample through the io engine. docs/nvme.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wipe/erase_method.h"
#include "wipe/nvme_admin.h"
#include "wipe/nvme_topology.h"

namespace dlc::wipe::nvme {

// The Purge techniques, strongest first (the order --method auto tries).
enum class Technique {
  sanitize_crypto,
  sanitize_block,
  sanitize_overwrite,
  format_crypto,
  format_user_data
};
inline constexpr Technique kStrongestFirst[] = {
    Technique::sanitize_crypto, Technique::sanitize_block, Technique::sanitize_overwrite,
    Technique::format_crypto, Technique::format_user_data};
std::string_view method_name(Technique t) noexcept;  // "sanitize-crypto", ..., "format-user-data"
std::optional<Technique> technique_from_method(std::string_view method);
bool is_sanitize(Technique t) noexcept;
// One line for the certificate: "NVMe Sanitize, crypto erase".
std::string describe(Technique t);

// What the choice needs to know about the drive.
struct DriveFacts {
  ControllerInfo ctrl;
  std::uint32_t nsid = 0;                 // the namespace named; 0: the controller was named
  std::vector<std::uint32_t> namespaces;  // every namespace known in the subsystem
  bool namespaces_complete = true;        // false: other controllers' namespaces may be unseen
  bool partition = false;                 // a partition of the namespace was named
};

// What a technique erases.
struct Scope {
  bool whole_subsystem = false;      // every namespace of the NVM subsystem
  std::vector<std::uint32_t> nsids;  // the namespaces known to be erased
  std::string reason;                // why the scope is what it is
  nlohmann::json to_json() const;
};

// Whether the drive can run t, and what it would erase. why_not: a sentence
// naming the Identify field that says no.
bool supported(Technique t, const DriveFacts& f, std::string* why_not);
Scope scope_of(Technique t, const DriveFacts& f);

struct Choice {
  std::string requested;               // "auto", "sanitize-crypto", ...
  std::optional<Technique> technique;  // empty: overwrite (Clear)
  std::string method;  // the method run: a technique's name, or the overwrite method
  Scope scope;
  std::string why;  // one sentence: why this method
  std::vector<std::string>
      considered;  // one line per candidate: chosen / not supported / out of scope
  nlohmann::json to_json() const;
};

// --method auto: the strongest technique the drive supports whose scope is
// the target (or anything, with whole_drive or a controller target); none:
// overwrite_fallback (Clear), saying why. An explicit technique: it, or
// Errc::refused naming the reason (unsupported, a partition, or other
// namespaces erased without whole_drive). Anything else: Errc::usage.
Choice choose(const std::string& requested, const DriveFacts& f, bool whole_drive,
              const std::string& overwrite_fallback);
// For a device that is not NVMe: auto -> overwrite_fallback; an NVMe
// technique -> Errc::refused.
Choice choose_without_nvme(const std::string& requested, const std::string& what_it_is,
                           const std::string& overwrite_fallback);
// Whether a --method value asks for NVMe handling ("auto" or a technique).
bool wants_nvme(std::string_view method);

// ---- Sanitize ---------------------------------------------------------------------
struct WaitOptions {
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::seconds unavailable_grace{600};  // tolerate a silent controller (reset) this long
  unsigned never_started_polls = 30;            // log still "never sanitized" after the command
  // Injectable for tests; defaults: std::this_thread::sleep_for, steady_clock::now.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(const SanitizeLog&)> on_progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct SanitizeRecord {
  SanitizeLog initial, final;
  bool issued = false;    // dlc's Sanitize command was accepted
  bool attached = false;  // the certified operation was already running when dlc started
  unsigned polls = 0;
  double seconds = 0;
  nlohmann::json events = nlohmann::json::array();  // attach, reset, failure-mode, ...
  nlohmann::json to_json() const;
};

// Runs one sanitize operation to its end: reads the log first (attaches to an
// operation in progress; after a failed one, a new sanitize restarts it),
// issues the command, polls the Sanitize Status log until SSTAT leaves "in
// progress", tolerating a controller that stops answering for up to
// unavailable_grace (a reset: the drive resumes the sanitize by itself).
// Throws Errc::io on rejection, failure (SSTAT failed: the drive is in
// sanitize failure mode), or silence; Errc::interrupted when cancel is set
// (the drive keeps sanitizing; running again attaches to it).
SanitizeRecord run_sanitize(Admin& admin, const SanitizeParams& p, const WaitOptions& o);

// Leaves sanitize failure mode (SANACT 1) after a failed unrestricted
// sanitize; nothing is erased. Throws Errc::io when the drive refuses.
nlohmann::json exit_failure_mode(Admin& admin);

// ---- Format NVM ---------------------------------------------------------------------
// The Format NVM commands for a technique: one per namespace erased when
// formats are per namespace, one for all when FNA says they are not (or a
// controller was named and NSID FFFFFFFFh is allowed); each keeps the
// namespace's LBA format, metadata and protection settings.
std::vector<FormatParams> format_commands(Technique t, const DriveFacts& f,
                                          const std::map<std::uint32_t, NamespaceInfo>& ns,
                                          std::uint32_t timeout_ms);

// ---- What a read returns after a Purge --------------------------------------------
enum class Expect { zeros, ones, pattern, changed };
struct Expectation {
  Expect kind = Expect::changed;
  std::vector<std::uint8_t> pattern;  // pattern: the bytes repeated
  std::string why;
  std::string label() const;  // "zeros", "ones", "pattern 0x...", "changed"
};
// final: the sanitize's final state (nullopt for Format).
Expectation expected_read(Technique t, std::optional<SanitizeState> final, const NamespaceInfo& ns,
                          const SanitizeParams& p);

// ---- The EraseMethod -------------------------------------------------------------------
struct PurgeNamespace {
  std::uint32_t nsid = 0;
  NamespaceInfo info;
  std::string node;          // /dev/nvme0n1 ("" when no block device here)
  io::File* file = nullptr;  // open read-write, O_DIRECT, held exclusively
};

struct PurgePlan {
  Choice choice;
  Topology topology;
  DriveFacts facts;
  std::shared_ptr<Admin> admin;
  std::vector<PurgeNamespace> namespaces;  // every namespace erased
  SanitizeParams sanitize;                 // sanitize techniques
  std::vector<FormatParams> formats;       // format techniques
  VerifyMode verify = VerifyMode::last;    // none: SSTAT / status only
  double sample_percent = 1;
  WaitOptions wait;
};

// Category Purge. run() pre-samples when the expected read is "changed", runs
// the command, checks SSTAT, then reads back a pseudorandom sample (first and
// last LBA always) of every erased namespace with a block device here.
std::unique_ptr<EraseMethod> make_purge_method(PurgePlan plan);

// ---- Test seam ------------------------------------------------------------------
// Where the hardware edge this machine lacks is replaced in tests: the
// topology of a device and the admin interface of a controller. Never set by
// the CLI.
struct TestHooks {
  std::function<std::optional<Topology>(const std::string& path)> topology;
  std::function<std::shared_ptr<Admin>(const Topology&)> open_admin;
  WaitOptions wait;
};

}  // namespace dlc::wipe::nvme
