#include "wipe/nvme_method.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include "core/crypto.h"
#include "core/error.h"
#include "wipe/pattern.h"

namespace dlc::wipe::nvme {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string hex32(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
std::string hex8(std::uint8_t v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v);
  return b;
}

std::string list_nsids(const std::vector<std::uint32_t>& ids) {
  std::string s;
  for (auto id : ids) s += (s.empty() ? "" : ", ") + std::to_string(id);
  return s;
}

std::string seconds_text(std::uint64_t s) {
  char b[32];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60));
  else
    std::snprintf(b, sizeof b, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  return b;
}

// The namespaces a technique erases besides the one named.
std::vector<std::uint32_t> others(const Scope& s, std::uint32_t nsid) {
  std::vector<std::uint32_t> o;
  for (auto id : s.nsids)
    if (id != nsid) o.push_back(id);
  return o;
}

// Why a technique cannot be used on this target with these flags ("" when it can).
std::string scope_problem(Technique t, const Scope& s, const DriveFacts& f, bool whole_drive) {
  if (f.partition)
    return std::string(method_name(t)) + " erases the whole namespace " + std::to_string(f.nsid) +
           ", not one partition; name the namespace (or its controller) instead";
  if (f.nsid == 0 || whole_drive) return {};
  auto o = others(s, f.nsid);
  if (!o.empty())
    return std::string(method_name(t)) + " would also erase namespace" +
           (o.size() > 1 ? "s " : " ") + list_nsids(o) + " (" + s.reason +
           "); pass --whole-drive to erase the whole drive";
  if (s.whole_subsystem && !f.namespaces_complete)
    return std::string(method_name(t)) +
           " erases every namespace of the NVM subsystem, and this "
           "controller cannot list namespaces attached to the subsystem's other controllers (" +
           s.reason + "); pass --whole-drive to erase the whole drive";
  return {};
}

}  // namespace

std::string_view method_name(Technique t) noexcept {
  switch (t) {
    case Technique::sanitize_crypto:
      return "sanitize-crypto";
    case Technique::sanitize_block:
      return "sanitize-block";
    case Technique::sanitize_overwrite:
      return "sanitize-overwrite";
    case Technique::format_crypto:
      return "format-crypto";
    case Technique::format_user_data:
      return "format-user-data";
  }
  return "?";
}

std::optional<Technique> technique_from_method(std::string_view m) {
  for (Technique t : kStrongestFirst)
    if (method_name(t) == m) return t;
  return std::nullopt;
}

bool is_sanitize(Technique t) noexcept {
  return t == Technique::sanitize_crypto || t == Technique::sanitize_block ||
         t == Technique::sanitize_overwrite;
}

std::string describe(Technique t) {
  switch (t) {
    case Technique::sanitize_crypto:
      return "NVMe Sanitize, crypto erase";
    case Technique::sanitize_block:
      return "NVMe Sanitize, block erase";
    case Technique::sanitize_overwrite:
      return "NVMe Sanitize, overwrite";
    case Technique::format_crypto:
      return "NVMe Format NVM, secure erase setting 2 (cryptographic erase)";
    case Technique::format_user_data:
      return "NVMe Format NVM, secure erase setting 1 (user data erase)";
  }
  return "?";
}

bool wants_nvme(std::string_view method) {
  return method == "auto" || technique_from_method(method).has_value();
}

json Scope::to_json() const {
  return {{"whole_subsystem", whole_subsystem}, {"namespaces", nsids}, {"reason", reason}};
}

bool supported(Technique t, const DriveFacts& f, std::string* why_not) {
  const ControllerInfo& c = f.ctrl;
  auto no = [&](std::string why) {
    if (why_not) *why_not = std::move(why);
    return false;
  };
  const std::string sanicap = "SANICAP " + hex32(c.sanicap);
  const std::string none = c.sanicap == 0 ? " (the controller has no Sanitize command at all)" : "";
  switch (t) {
    case Technique::sanitize_crypto:
      if (!c.sanitize_crypto())
        return no("the controller does not support Sanitize crypto erase: " + sanicap +
                  ", CES (bit 0) = 0" + none);
      return true;
    case Technique::sanitize_block:
      if (!c.sanitize_block())
        return no("the controller does not support Sanitize block erase: " + sanicap +
                  ", BES (bit 1) = 0" + none);
      return true;
    case Technique::sanitize_overwrite:
      if (!c.sanitize_overwrite())
        return no("the controller does not support Sanitize overwrite: " + sanicap +
                  ", OWS (bit 2) = 0" + none);
      return true;
    case Technique::format_crypto:
      if (!c.format_supported())
        return no("the controller does not support Format NVM: OACS " + hex32(c.oacs) +
                  ", bit 1 = 0");
      if (!c.format_crypto_erase())
        return no("the controller does not support cryptographic erase in Format NVM: FNA " +
                  hex8(c.fna) + ", bit 2 = 0");
      return true;
    case Technique::format_user_data:
      if (!c.format_supported())
        return no("the controller does not support Format NVM: OACS " + hex32(c.oacs) +
                  ", bit 1 = 0");
      return true;
  }
  return no("unknown technique");
}

Scope scope_of(Technique t, const DriveFacts& f) {
  Scope s;
  s.nsids = f.namespaces;
  if (f.nsid != 0 && std::find(s.nsids.begin(), s.nsids.end(), f.nsid) == s.nsids.end()) {
    s.nsids.push_back(f.nsid);
    std::sort(s.nsids.begin(), s.nsids.end());
  }
  if (is_sanitize(t)) {
    s.whole_subsystem = true;
    s.reason =
        "Sanitize acts on the whole NVM subsystem: every namespace, including any attached to "
        "other controllers";
    return s;
  }
  const ControllerInfo& c = f.ctrl;
  if (c.format_applies_to_all() || c.secure_erase_applies_to_all()) {
    s.whole_subsystem = true;
    s.reason =
        std::string("FNA ") + hex8(c.fna) +
        (c.secure_erase_applies_to_all()
             ? ": bit 1 set, a secure erase in Format NVM erases every namespace of the subsystem"
             : ": bit 0 set, a Format NVM formats every namespace of the subsystem");
    return s;
  }
  if (f.nsid == 0) {
    s.reason = "the controller was named: every namespace it reaches, one Format NVM each (FNA " +
               hex8(c.fna) + ")";
    return s;
  }
  s.nsids = {f.nsid};
  s.reason = "FNA " + hex8(c.fna) + ": Format NVM with secure erase acts on namespace " +
             std::to_string(f.nsid) + " only";
  return s;
}

json Choice::to_json() const {
  return {{"requested", requested},
          {"method", method},
          {"category", technique ? "purge" : "clear"},
          {"why", why},
          {"considered", considered},
          {"scope", scope.to_json()}};
}

Choice choose(const std::string& requested, const DriveFacts& f, bool whole_drive,
              const std::string& overwrite_fallback) {
  Choice c;
  c.requested = requested;
  if (requested == "auto") {
    for (Technique t : kStrongestFirst) {
      const std::string name(method_name(t));
      std::string why;
      if (!supported(t, f, &why)) {
        c.considered.push_back(name + ": not supported: " + why);
        continue;
      }
      Scope s = scope_of(t, f);
      std::string problem = scope_problem(t, s, f, whole_drive);
      if (!problem.empty()) {
        c.considered.push_back(name + ": supported, not used: " + problem);
        continue;
      }
      if (!c.technique) {
        c.technique = t;
        c.method = name;
        c.scope = s;
        c.why =
            "--method auto: " + describe(t) +
            " is the strongest Purge technique this drive supports for this target (order: "
            "sanitize-crypto, sanitize-block, sanitize-overwrite, format-crypto, format-user-data, "
            "then overwrite)";
        c.considered.push_back(name + ": chosen");
      } else {
        c.considered.push_back(name + ": supported (weaker than " + c.method + ")");
      }
    }
    if (!c.technique) {
      if (f.nsid == 0)
        throw Error(
            Errc::refused, "no Purge technique fits and a controller cannot be overwritten", {},
            [&] {
              std::string d;
              for (const auto& l : c.considered) d += (d.empty() ? "" : "; ") + l;
              return d;
            }(),
            "name its namespaces (/dev/nvmeXnY) to overwrite them (NIST SP 800-88 Clear)");
      c.method = overwrite_fallback;
      c.scope.nsids = {f.nsid};
      c.scope.reason =
          f.partition ? "the partition named" : "the namespace named, by ordinary writes";
      c.why =
          "--method auto: no Purge technique of this drive fits this target (see 'considered'); "
          "falling back to overwrite (" +
          overwrite_fallback + "), which is NIST SP 800-88 Clear, not Purge, on flash";
      c.considered.push_back("overwrite (" + overwrite_fallback + "): chosen (Clear)");
    }
    return c;
  }
  auto t = technique_from_method(requested);
  if (!t)
    throw Error(Errc::usage, "not an NVMe method", "'" + requested + "'", {},
                "use auto, sanitize-crypto, sanitize-block, sanitize-overwrite, format-crypto or "
                "format-user-data");
  std::string why;
  if (!supported(*t, f, &why))
    throw Error(Errc::refused, "refusing --method " + requested + ": nothing was erased", {}, why,
                "use --method auto to let dlc pick the strongest technique the drive supports");
  Scope s = scope_of(*t, f);
  std::string problem = scope_problem(*t, s, f, whole_drive);
  if (!problem.empty())
    throw Error(Errc::refused, "refusing --method " + requested + ": nothing was erased", {},
                problem,
                "check the other namespaces first ('dlc wipe device DEV --method " + requested +
                    " --dry-run' lists them)");
  c.technique = t;
  c.method = requested;
  c.scope = s;
  c.why = "--method " + requested + " as requested (" + describe(*t) + ")";
  c.considered.push_back(requested + ": requested, supported");
  return c;
}

Choice choose_without_nvme(const std::string& requested, const std::string& what_it_is,
                           const std::string& overwrite_fallback) {
  if (requested != "auto")
    throw Error(
        Errc::refused, "refusing --method " + requested + ": nothing was erased", {},
        "the device is not an NVMe namespace or controller (" + what_it_is + ")",
        "NVMe methods need /dev/nvmeXnY or /dev/nvmeX; use --method auto or an overwrite method");
  Choice c;
  c.requested = requested;
  c.method = overwrite_fallback;
  c.scope.reason = "the device named, by ordinary writes";
  c.why = "--method auto: the device is not NVMe (" + what_it_is +
          "); dlc has no Purge command for it, so it overwrites (" + overwrite_fallback +
          "): NIST SP 800-88 Clear";
  c.considered = {"nvme techniques: not applicable (" + what_it_is + ")",
                  "overwrite (" + overwrite_fallback + "): chosen (Clear)"};
  return c;
}

// ---- Sanitize -------------------------------------------------------------------------

json SanitizeRecord::to_json() const {
  return {{"initial_log", initial.to_json()},
          {"final_log", final.to_json()},
          {"command_issued", issued},
          {"attached_to_running_operation", attached},
          {"polls", polls},
          {"seconds", seconds},
          {"events", events}};
}

namespace {

struct Waiter {
  Admin& admin;
  const WaitOptions& o;
  SanitizeRecord& rec;
  Clock::time_point t0;

  Clock::time_point now() const { return o.now ? o.now() : Clock::now(); }
  void sleep() const {
    if (o.sleep)
      o.sleep(o.poll_interval);
    else
      std::this_thread::sleep_for(o.poll_interval);
  }
  double elapsed() const { return std::chrono::duration<double>(now() - t0).count(); }

  // Polls until the log leaves "in progress"; returns the final log.
  SanitizeLog until_done(bool just_issued) {
    bool silent = false;
    Clock::time_point silent_since{};
    unsigned never = 0;
    for (;;) {
      if (o.cancel && o.cancel->load())
        throw Error(Errc::interrupted, "stopped while the drive sanitizes", admin.device(),
                    "a sanitize cannot be stopped: the drive keeps erasing (and resumes after a "
                    "reset or power loss)",
                    "run the same dlc command again: it attaches to the running sanitize and "
                    "certifies it when it completes");
      sleep();
      SanitizeLog log;
      Status s = admin.sanitize_log(log);
      ++rec.polls;
      if (!s.ok()) {
        if (!silent) {
          silent = true;
          silent_since = now();
          rec.events.push_back({{"event", "controller-unavailable"},
                                {"at_seconds", elapsed()},
                                {"status", s.describe()},
                                {"note",
                                 "the controller did not answer (reset?); a sanitize resumes by "
                                 "itself after a reset"}});
        }
        if (now() - silent_since > o.unavailable_grace)
          throw Error(
              Errc::io, "the controller stopped answering during the sanitize", admin.device(),
              s.describe() + " for more than " + std::to_string(o.unavailable_grace.count()) + " s",
              "check the drive (dmesg, nvme list); the sanitize resumes when it comes back: run "
              "the same dlc command again to attach to it");
        continue;
      }
      if (silent) {
        rec.events.push_back(
            {{"event", "controller-back"},
             {"at_seconds", elapsed()},
             {"silent_seconds", std::chrono::duration<double>(now() - silent_since).count()},
             {"sstat", log.to_json()["status"]}});
        silent = false;
      }
      if (o.on_progress) o.on_progress(log);
      switch (log.state()) {
        case SanitizeState::in_progress:
          never = 0;
          continue;
        case SanitizeState::succeeded:
        case SanitizeState::succeeded_no_dealloc:
        case SanitizeState::failed:
          return log;
        case SanitizeState::never:
        case SanitizeState::unknown:
          if (!just_issued) return log;
          if (++never >= o.never_started_polls)
            throw Error(Errc::io, "the sanitize never started", admin.device(),
                        "the controller accepted the Sanitize command but its log still says " +
                            std::string(sanitize_state_name(log.state())),
                        "check the drive's firmware; nothing is certified");
          continue;
      }
    }
  }
};

}  // namespace

SanitizeRecord run_sanitize(Admin& admin, const SanitizeParams& p, const WaitOptions& o) {
  SanitizeRecord rec;
  Waiter w{admin, o, rec, o.now ? o.now() : Clock::now()};
  Status s = admin.sanitize_log(rec.initial);
  if (!s.ok())
    throw Error(Errc::io, "cannot read the Sanitize Status log", admin.device(), s.describe(),
                "nothing was erased; check the drive (nvme sanitize-log)");
  const std::string ours(sanitize_action_name(p.action));
  SanitizeLog state = rec.initial;
  for (int round = 0; round < 3; ++round) {
    if (state.state() == SanitizeState::in_progress) {
      const std::string theirs(sanitize_action_name(state.last_action()));
      rec.events.push_back(
          {{"event", "attached"},
           {"at_seconds", w.elapsed()},
           {"running_action", theirs},
           {"sprog", state.sprog},
           {"note", "a sanitize was already in progress when dlc started; dlc waits for it"}});
      SanitizeLog done = w.until_done(false);
      if ((done.state() == SanitizeState::succeeded ||
           done.state() == SanitizeState::succeeded_no_dealloc) &&
          done.last_action() == p.action && ((done.scdw10 >> 9) & 1u) == (p.nodas ? 1u : 0u)) {
        rec.attached = true;
        rec.final = done;
        rec.seconds = w.elapsed();
        rec.events.push_back({{"event", "attached-operation-completed"},
                              {"at_seconds", w.elapsed()},
                              {"note", "the running sanitize was the one requested (" + ours +
                                           "); it is certified"}});
        return rec;
      }
      rec.events.push_back(
          {{"event", "attached-operation-ended"},
           {"at_seconds", w.elapsed()},
           {"status", std::string(sanitize_state_name(done.state()))},
           {"action", std::string(sanitize_action_name(done.last_action()))},
           {"note", "not the requested " + ours + ", or not successful: dlc starts its own"}});
      state = done;
    }
    if (state.state() == SanitizeState::failed)
      rec.events.push_back({{"event", "failure-mode"},
                            {"at_seconds", w.elapsed()},
                            {"note",
                             "the most recent sanitize had failed (sanitize failure mode); a new "
                             "sanitize restarts it"}});
    if (o.cancel && o.cancel->load())
      throw Error(Errc::interrupted, "stopped before the sanitize was started", admin.device(),
                  "nothing was erased", "run the command again");
    s = admin.sanitize(p);
    if (s.code() == kScSanitizeInProgress) {
      // Someone started one between the log read and our command: attach.
      s = admin.sanitize_log(state);
      if (!s.ok())
        throw Error(Errc::io, "cannot read the Sanitize Status log", admin.device(), s.describe());
      state.sstat = static_cast<std::uint16_t>((state.sstat & ~7u) | 2u);
      continue;
    }
    if (!s.ok())
      throw Error(Errc::io, "the controller rejected Sanitize " + ours, admin.device(),
                  s.describe(),
                  s.code() == kScInvalidOpcode || s.code() == kScInvalidField
                      ? "the drive does not accept this sanitize action although Identify said so; "
                        "nothing was erased: try --method auto"
                      : "nothing was certified; check the drive (nvme sanitize-log, dmesg)");
    rec.issued = true;
    rec.events.push_back(
        {{"event", "issued"}, {"at_seconds", w.elapsed()}, {"cdw10", hex32(p.cdw10())}});
    rec.final = w.until_done(true);
    rec.seconds = w.elapsed();
    const SanitizeState st = rec.final.state();
    if (st == SanitizeState::failed)
      throw Error(
          Errc::io, "the sanitize failed", admin.device(),
          "the Sanitize Status log says failed (SSTAT " +
              rec.final.to_json()["sstat"].get<std::string>() +
              "); the drive is in sanitize failure mode and accepts only Sanitize commands",
          p.ause ? "run the same dlc command again to retry; or leave failure mode without "
                   "sanitizing: dlc wipe device DEV --sanitize-exit-failure"
                 : "run the same dlc command again to retry (restricted completion mode: only a "
                   "successful sanitize leaves failure mode)");
    if (st != SanitizeState::succeeded && st != SanitizeState::succeeded_no_dealloc)
      throw Error(Errc::io, "the sanitize did not complete", admin.device(),
                  "the Sanitize Status log says " + std::string(sanitize_state_name(st)));
    if (rec.final.last_action() != p.action)
      throw Error(Errc::io, "the completed sanitize is not the one dlc issued", admin.device(),
                  "the log's SCDW10 names " +
                      std::string(sanitize_action_name(rec.final.last_action())) + ", dlc issued " +
                      ours,
                  "another agent sanitized the drive meanwhile; run the command again");
    return rec;
  }
  throw Error(Errc::io, "could not start a sanitize", admin.device(),
              "another sanitize kept running or starting", "run the command again later");
}

json exit_failure_mode(Admin& admin) {
  SanitizeParams p;
  p.action = SanitizeAction::exit_failure_mode;
  SanitizeLog before;
  Status ls = admin.sanitize_log(before);
  Status s = admin.sanitize(p);
  if (!s.ok())
    throw Error(Errc::io, "the controller refused to exit sanitize failure mode", admin.device(),
                s.describe(),
                s.code() == kScSanitizeFailed
                    ? "the failed sanitize ran in restricted completion mode: only a successful "
                      "sanitize leaves failure mode; run a sanitize again"
                    : "check the drive (nvme sanitize-log)");
  json j = {{"command", "sanitize"}, {"parameters", p.to_json()}, {"status", s.describe()}};
  if (ls.ok()) j["log_before"] = before.to_json();
  return j;
}

// ---- Format NVM -----------------------------------------------------------------------

std::vector<FormatParams> format_commands(Technique t, const DriveFacts& f,
                                          const std::map<std::uint32_t, NamespaceInfo>& ns,
                                          std::uint32_t timeout_ms) {
  const SecureErase ses =
      t == Technique::format_crypto ? SecureErase::crypto : SecureErase::user_data;
  auto for_ns = [&](std::uint32_t nsid, std::uint32_t cmd_nsid) {
    auto it = ns.find(nsid);
    if (it == ns.end())
      throw Error(Errc::io, "no Identify Namespace data for namespace " + std::to_string(nsid), {},
                  {}, "this is a bug in dlc; report it");
    const NamespaceInfo& n = it->second;
    FormatParams p;
    p.nsid = cmd_nsid;
    p.lbaf = static_cast<std::uint8_t>(n.lbaf_index());
    p.mset = n.metadata_extended();
    p.pi = static_cast<std::uint8_t>(n.dps & 7u);
    p.pil = (n.dps & 8u) != 0;
    p.ses = ses;
    p.timeout_ms = timeout_ms;
    return p;
  };
  const bool all = f.ctrl.format_applies_to_all() || f.ctrl.secure_erase_applies_to_all();
  if (f.nsid != 0) return {for_ns(f.nsid, f.nsid)};
  if (f.namespaces.empty())
    throw Error(Errc::refused, "the controller has no namespace to format", {}, {}, {});
  if (all) {
    const std::uint32_t first = f.namespaces.front();
    return {for_ns(first, f.ctrl.format_all_nsid_unsupported() ? first : 0xffffffffu)};
  }
  std::vector<FormatParams> out;
  for (auto id : f.namespaces) out.push_back(for_ns(id, id));
  return out;
}

// ---- Expected reads ----------------------------------------------------------------------

std::string Expectation::label() const {
  switch (kind) {
    case Expect::zeros:
      return "zeros";
    case Expect::ones:
      return "ones";
    case Expect::pattern:
      return "pattern 0x" + crypto::to_hex(pattern);
    case Expect::changed:
      return "changed";
  }
  return "?";
}

Expectation expected_read(Technique t, std::optional<SanitizeState> final, const NamespaceInfo& ns,
                          const SanitizeParams& p) {
  Expectation e;
  const bool no_dealloc =
      is_sanitize(t) && (p.nodas || final == SanitizeState::succeeded_no_dealloc);
  if (no_dealloc) {
    if (t == Technique::sanitize_overwrite) {
      const unsigned passes = p.owpass == 0 || p.owpass >= 16 ? 16 : p.owpass;
      std::uint32_t v = p.oipbp && passes % 2 == 0 ? ~p.ovrpat : p.ovrpat;
      e.kind = Expect::pattern;
      e.pattern = {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
                   static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
      e.why = "sanitize overwrite without deallocation leaves the last pass's pattern";
      return e;
    }
    e.kind = Expect::changed;
    e.why =
        "a crypto or block erase without deallocation leaves indeterminate data: every sample must "
        "differ from what it held before the purge";
    return e;
  }
  const std::string after =
      is_sanitize(t) ? "after a sanitize with deallocation" : "after Format NVM";
  switch (ns.dealloc_read()) {
    case DeallocRead::zeros:
      e.kind = Expect::zeros;
      e.why = after + ", blocks read as deallocated: DLFEAT " + hex8(ns.dlfeat) +
              " (read behaviour 001b) says zeros";
      return e;
    case DeallocRead::ones:
      e.kind = Expect::ones;
      e.why = after + ", blocks read as deallocated: DLFEAT " + hex8(ns.dlfeat) +
              " (read behaviour 010b) says 0xFF";
      return e;
    case DeallocRead::not_reported:
      break;
  }
  e.kind = Expect::changed;
  e.why = "DLFEAT " + hex8(ns.dlfeat) +
          " does not say what deallocated blocks return: every sample must "
          "differ from what it held before the purge";
  return e;
}

// ---- The EraseMethod -------------------------------------------------------------------------

namespace {

constexpr std::uint64_t kSampleUnit = 1u << 20;
constexpr std::size_t kMaxMismatchRanges = 16;
constexpr std::uint64_t kDigestBlock = 4096;

struct Mismatches {
  std::uint64_t bytes = 0;
  json ranges = json::array();
  void add(std::uint64_t off, std::uint64_t len) {
    bytes += len;
    if (!ranges.empty()) {
      auto& last = ranges.back();
      if (last["offset"].get<std::uint64_t>() + last["length"].get<std::uint64_t>() == off) {
        last["length"] = last["length"].get<std::uint64_t>() + len;
        return;
      }
    }
    if (ranges.size() < kMaxMismatchRanges) ranges.push_back({{"offset", off}, {"length", len}});
  }
};

std::uint64_t digest(std::span<const std::uint8_t> block) {
  crypto::Hasher h;
  h.update(crypto::ByteView(block.data(), block.size()));
  auto d = h.final();
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | d[static_cast<std::size_t>(i)];
  return v;
}

bool uniform(std::span<const std::uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [&](std::uint8_t x) { return x == b[0]; });
}

// The sampled ranges of one namespace and, for "changed" checks, a digest of
// every 4 KiB block of them taken before the purge.
struct Sample {
  PurgeNamespace* ns = nullptr;
  crypto::Bytes seed;
  std::vector<io::Extent> ext;
  std::vector<std::uint64_t> starts;  // logical start of each extent in the digest array
  std::vector<std::uint64_t> before;
  std::vector<bool> before_uniform;
  bool prehashed = false;
  std::uint64_t bytes() const {
    std::uint64_t n = 0;
    for (const auto& e : ext) n += e.length;
    return n;
  }
  // Index of the 4 KiB block at device offset off.
  std::size_t index(std::uint64_t off) const {
    auto it = std::upper_bound(ext.begin(), ext.end(), off,
                               [](std::uint64_t o, const io::Extent& e) { return o < e.offset; });
    std::size_t i = static_cast<std::size_t>(it - ext.begin()) - 1;
    return static_cast<std::size_t>((starts[i] + (off - ext[i].offset)) / kDigestBlock);
  }
};

class PurgeMethod final : public EraseMethod {
 public:
  explicit PurgeMethod(PurgePlan plan) : p_(std::move(plan)) {}

  std::string name() const override { return p_.choice.method; }
  Category category() const override { return Category::purge; }
  std::string technique() const override {
    std::string s = describe(*p_.choice.technique);
    if (is_sanitize(*p_.choice.technique)) {
      s += " (SANACT " + std::to_string(static_cast<int>(p_.sanitize.action)) + ", AUSE " +
           std::to_string(p_.sanitize.ause) + ", NODAS " + std::to_string(p_.sanitize.nodas);
      if (p_.sanitize.action == SanitizeAction::overwrite)
        s += ", OWPASS " + std::to_string(p_.sanitize.owpass) + ", OIPBP " +
             std::to_string(p_.sanitize.oipbp) + ", OVRPAT " + hex32(p_.sanitize.ovrpat);
      s += ")";
    } else {
      s += " (";
      for (std::size_t i = 0; i < p_.formats.size(); ++i)
        s += std::string(i ? "; " : "") + "NSID " + hex32(p_.formats[i].nsid) + " LBAF " +
             std::to_string(p_.formats[i].lbaf) + " SES " +
             std::to_string(static_cast<int>(p_.formats[i].ses));
      s += ")";
    }
    const auto& ids = p_.choice.scope.nsids;
    if (p_.choice.scope.whole_subsystem)
      return s + "; the whole NVM subsystem" +
             (ids.empty() ? "" : " (namespaces " + list_nsids(ids) + ")");
    return s + "; namespace" + (ids.size() > 1 ? "s " : " ") + list_nsids(ids);
  }
  bool supports(const EraseTarget&, std::string* why_not) const override {
    if (!p_.choice.technique || !p_.admin) {
      if (why_not) *why_not = "no NVMe technique or controller";
      return false;
    }
    return true;
  }
  Evidence run(EraseContext& ctx) override;

 private:
  std::vector<Sample> pick_samples(EraseContext& ctx, bool prehash);
  json verify(EraseContext& ctx, Sample& s, const Expectation& e, bool* passed,
              std::uint64_t* bytes, std::uint64_t* mism, json& first);
  io::Engine& engine(EraseContext& ctx) {
    if (!engine_) {
      io::EngineOptions eo;
      eo.queue_depth = ctx.options.queue_depth;
      eo.block_size = ctx.options.block_size;
      eo.block_size = std::min<std::size_t>(eo.block_size, kSampleUnit);
      engine_ = std::make_unique<io::Engine>(eo);
    }
    return *engine_;
  }

  PurgePlan p_;
  std::unique_ptr<io::Engine> engine_;
};

std::vector<Sample> PurgeMethod::pick_samples(EraseContext& ctx, bool prehash) {
  std::vector<Sample> out;
  for (auto& n : p_.namespaces) {
    if (!n.file) continue;
    Sample s;
    s.ns = &n;
    s.seed = crypto::random_bytes(16);
    const std::uint64_t total = n.file->size();
    s.ext = choose_samples(total, kSampleUnit, p_.sample_percent, s.seed);
    std::uint64_t pos = 0;
    for (const auto& e : s.ext) {
      s.starts.push_back(pos);
      pos += (e.length + kDigestBlock - 1) / kDigestBlock * kDigestBlock;
    }
    if (prehash) {
      const std::size_t blocks = static_cast<std::size_t>(pos / kDigestBlock);
      s.before.assign(blocks, 0);
      s.before_uniform.assign(blocks, false);
      int task = ctx.progress.begin(
          ctx.label + " nsid " + std::to_string(n.nsid) + " pre-purge sample", s.bytes());
      try {
        engine(ctx).read(
            *n.file, s.ext,
            [&](std::uint64_t off, std::span<const std::uint8_t> data) {
              for (std::size_t i = 0; i < data.size(); i += kDigestBlock) {
                auto b = data.subspan(i, std::min<std::size_t>(kDigestBlock, data.size() - i));
                std::size_t k = s.index(off + i);
                s.before[k] = digest(b);
                s.before_uniform[k] = uniform(b);
              }
            },
            [&](std::uint64_t done) { ctx.progress.update(task, done); }, ctx.cancel);
      } catch (...) {
        ctx.progress.end(task, false);
        throw;
      }
      ctx.progress.end(task, true);
      s.prehashed = true;
    }
    out.push_back(std::move(s));
  }
  return out;
}

json PurgeMethod::verify(EraseContext& ctx, Sample& s, const Expectation& e, bool* passed,
                         std::uint64_t* bytes, std::uint64_t* mism, json& first) {
  PurgeNamespace& n = *s.ns;
  const std::uint64_t total = n.file->size();
  json v = {
      {"nsid", n.nsid},
      {"device", n.node},
      {"expected", e.label()},
      {"expected_why", e.why},
      {"sample_seed", crypto::to_hex(s.seed)},
      {"sample_unit", kSampleUnit},
      {"samples", s.ext.size()},
      {"first_lba_checked", !s.ext.empty() && s.ext.front().offset == 0},
      {"last_lba_checked", !s.ext.empty() && s.ext.back().offset + s.ext.back().length == total}};
  Mismatches log;
  std::uint64_t blank_unchanged = 0;
  const std::uint32_t sector = std::max<std::uint32_t>(n.info.lba_size ? n.info.lba_size : 512, 16);
  std::optional<PatternGenerator> gen;
  if (e.kind != Expect::changed) {
    PassSpec spec;
    spec.kind = PatternKind::bytes;
    spec.bytes = e.kind == Expect::zeros  ? std::vector<std::uint8_t>{0x00}
                 : e.kind == Expect::ones ? std::vector<std::uint8_t>{0xff}
                                          : e.pattern;
    gen.emplace(spec, crypto::ByteView{}, 0, engine(ctx).options().block_size);
  } else if (!s.prehashed) {
    v["result"] = "not-performed";
    v["detail"] = "the expected read is 'changed' but no pre-purge sample was taken";
    *passed = false;
    return v;
  }
  io::ConsumeFn consume = [&](std::uint64_t off, std::span<const std::uint8_t> data) {
    if (gen) {
      std::size_t idx = gen->first_mismatch(off, data);
      if (idx == data.size()) return;
      for (std::size_t i = idx / sector * sector; i < data.size(); i += sector) {
        std::size_t len = std::min<std::size_t>(sector, data.size() - i);
        if (gen->first_mismatch(off + i, data.subspan(i, len)) != len) log.add(off + i, len);
      }
      return;
    }
    for (std::size_t i = 0; i < data.size(); i += kDigestBlock) {
      auto b = data.subspan(i, std::min<std::size_t>(kDigestBlock, data.size() - i));
      std::size_t k = s.index(off + i);
      if (digest(b) != s.before[k]) continue;
      if (s.before_uniform[k])
        blank_unchanged += b.size();  // held no data before: proves nothing either way
      else
        log.add(off + i, b.size());
    }
  };
  const std::uint64_t want = s.bytes();
  int task =
      ctx.progress.begin(ctx.label + " nsid " + std::to_string(n.nsid) + " verify sample", want);
  try {
    engine(ctx).read(
        *n.file, s.ext, consume, [&](std::uint64_t done) { ctx.progress.update(task, done); },
        ctx.cancel);
  } catch (...) {
    ctx.progress.end(task, false);
    throw;
  }
  ctx.progress.end(task, log.bytes == 0);
  v["bytes_verified"] = want;
  v["mismatched_bytes"] = log.bytes;
  v["first_mismatches"] = log.ranges;
  if (e.kind == Expect::changed) v["unchanged_blank_bytes"] = blank_unchanged;
  v["result"] = log.bytes == 0 ? "passed" : "failed";
  *passed = log.bytes == 0;
  *bytes += want;
  *mism += log.bytes;
  for (const auto& m : log.ranges)
    if (first.size() < kMaxMismatchRanges) {
      auto mm = m;
      mm["nsid"] = n.nsid;
      first.push_back(mm);
    }
  return v;
}

Evidence PurgeMethod::run(EraseContext& ctx) {
  const Technique t = *p_.choice.technique;
  Evidence ev;
  ev.technique = "nvme-" + std::string(method_name(t));
  const bool verify_reads = p_.verify != VerifyMode::none;

  // What a read returns afterwards decides whether a pre-purge sample is needed:
  // a sanitize may end without deallocation, so it always takes one.
  bool prehash = false;
  for (const auto& n : p_.namespaces) {
    if (!n.file) continue;
    prehash |= is_sanitize(t) ||
               expected_read(t, std::nullopt, n.info, p_.sanitize).kind == Expect::changed;
  }
  std::vector<Sample> samples = verify_reads ? pick_samples(ctx, prehash) : std::vector<Sample>{};

  std::uint64_t scope_bytes = 0;
  for (const auto& n : p_.namespaces) scope_bytes += n.info.bytes();
  json nvme = {{"command", is_sanitize(t) ? "sanitize" : "format-nvm"},
               {"technique", std::string(method_name(t))},
               {"admin_device", p_.admin->device()},
               {"topology", p_.topology.to_json()},
               {"controller", p_.facts.ctrl.to_json()},
               {"method_choice", p_.choice.to_json()},
               {"scope", p_.choice.scope.to_json()}};
  json nsj = json::array();
  for (const auto& n : p_.namespaces) {
    json j = n.info.to_json();
    j["block_device"] = n.node;
    nsj.push_back(j);
  }
  nvme["namespaces"] = nsj;

  std::optional<SanitizeState> final_state;
  json status_check;
  auto t0 = Clock::now();
  if (is_sanitize(t)) {
    nvme["parameters"] = p_.sanitize.to_json();
    SanitizeLog first;
    std::string label =
        ctx.label + " sanitize " + std::string(sanitize_action_name(p_.sanitize.action));
    std::optional<std::uint32_t> est;
    if (p_.admin->sanitize_log(first).ok()) est = first.estimate(p_.sanitize.action, p_.sanitize.nodas);
    if (est) label += " (drive estimates " + seconds_text(*est) + ")";
    int task = ctx.progress.begin(label, scope_bytes ? scope_bytes : 65536);
    if (est) ctx.progress.estimate(task, static_cast<double>(*est));
    WaitOptions w = p_.wait;
    w.cancel = ctx.cancel;
    w.on_progress = [&](const SanitizeLog& l) {
      if (l.state() == SanitizeState::in_progress)
        ctx.progress.update(
            task, static_cast<std::uint64_t>(
                      static_cast<double>(scope_bytes ? scope_bytes : 65536) * l.fraction()));
    };
    SanitizeRecord rec;
    try {
      rec = run_sanitize(*p_.admin, p_.sanitize, w);
    } catch (...) {
      ctx.progress.end(task, false);
      throw;
    }
    ctx.progress.update(task, scope_bytes ? scope_bytes : 65536);
    ctx.progress.end(task, true);
    nvme["sanitize"] = rec.to_json();
    nvme["final_sstat"] = rec.final.to_json();
    final_state = rec.final.state();
    status_check = {{"source", "Sanitize Status log (log page 81h)"},
                    {"sstat", rec.final.to_json()["sstat"]},
                    {"status", std::string(sanitize_state_name(rec.final.state()))},
                    {"global_data_erased", rec.final.global_data_erased()},
                    {"completed_passes", rec.final.passes()},
                    {"result", "passed"}};
  } else {
    json cmds = json::array();
    for (const auto& f : p_.formats) cmds.push_back(f.to_json());
    nvme["parameters"] = cmds;
    int task =
        ctx.progress.begin(ctx.label + " format-nvm (synchronous, no progress from the drive)",
                           scope_bytes ? scope_bytes : 1);
    json results = json::array();
    for (const auto& f : p_.formats) {
      auto f0 = Clock::now();
      Status s = p_.admin->format(f);
      results.push_back({{"nsid", hex32(f.nsid)},
                         {"status", s.describe()},
                         {"seconds", std::chrono::duration<double>(Clock::now() - f0).count()}});
      if (!s.ok()) {
        ctx.progress.end(task, false);
        throw Error(
            Errc::io, "Format NVM failed", p_.admin->device(),
            "namespace " + hex32(f.nsid) + ": " + s.describe(),
            s.code() == kScInvalidField
                ? "the drive rejected the secure erase setting or LBA format; nothing is certified"
                : "nothing is certified; check the drive (dmesg, nvme error-log)");
      }
    }
    ctx.progress.update(task, scope_bytes ? scope_bytes : 1);
    ctx.progress.end(task, true);
    nvme["format"] = {{"commands", results}};
    status_check = {
        {"source", "Format NVM completion status"}, {"status", "success"}, {"result", "passed"}};
  }
  nvme["seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  ev.passes.push_back({{"index", 1},
                       {"pattern", "device-internal: " + describe(t)},
                       {"command", nvme["command"]},
                       {"seconds", nvme["seconds"]}});

  // Verification: the status first, then the read-back.
  json v = {{"scope", "after the purge"}, {"status_check", status_check}};
  bool passed = true;
  std::uint64_t bytes = 0, mism = 0;
  json first = json::array();
  json per_ns = json::array();
  json seeds = json::array();
  for (auto& s : samples) {
    Expectation e = expected_read(t, final_state, s.ns->info, p_.sanitize);
    bool ok = true;
    per_ns.push_back(verify(ctx, s, e, &ok, &bytes, &mism, first));
    seeds.push_back(crypto::to_hex(s.seed));
    passed &= ok;
  }
  for (const auto& n : p_.namespaces)
    if (!n.file)
      per_ns.push_back({{"nsid", n.nsid},
                        {"result", "not-verified"},
                        {"detail",
                         "no block device for this namespace on this host; erased per the status, "
                         "not read back"}});
  if (!verify_reads || samples.empty()) {
    v["method"] = "other";
    v["detail"] = verify_reads
                      ? "status check only: no erased namespace has a block device on this host"
                      : "status check only (--verify none): no read-back";
    v["result"] = "passed";
  } else {
    v["method"] = p_.sample_percent >= 100 ? "full read-back" : "sampling";
    std::ostringstream pct;
    pct << p_.sample_percent;
    if (p_.sample_percent < 100) v["sample_percent"] = pct.str();
    v["sample_seeds"] = seeds;
    v["bytes_verified"] = bytes;
    v["mismatched_bytes"] = mism;
    v["first_mismatches"] = first;
    v["result"] = passed ? "passed" : "failed";
  }
  v["namespaces"] = per_ns;
  ev.verification = v;
  ev.verification_passed = passed;
  ev.bytes_verified = bytes;
  ev.extra["nvme"] = nvme;
  return ev;
}

}  // namespace

std::unique_ptr<EraseMethod> make_purge_method(PurgePlan plan) {
  return std::make_unique<PurgeMethod>(std::move(plan));
}

}  // namespace dlc::wipe::nvme
