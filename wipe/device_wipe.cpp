// wipe_devices: identity, interlocks and the method choice for every device
// first (an NVMe Purge also checks every other namespace it erases), then the
// confirmation, then one thread per device: an overwrite through its own io
// engine and resume journal, or an NVMe Purge (sanitize / format) verified by
// a read-back sample; each with its audit records and certificate.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <chrono>
#include <thread>

#include "core/crypto.h"
#include "core/error.h"
#include "core/io_engine.h"
#include "core/runtime.h"
#include "wipe/certificate.h"
#include "wipe/device_info.h"
#include "wipe/erase_method.h"
#include "wipe/interlocks.h"
#include "wipe/job.h"
#include "wipe/journal.h"
#include "wipe/nvme_method.h"
#include "wipe/nvme_topology.h"
#include "wipe/pattern.h"
#include "wipe/util.h"
#include "wipe/wipe.h"

namespace dlc::wipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A namespace an NVMe Purge erases that has a block device here: checked by
// the interlocks, held open exclusively, read back afterwards.
struct PurgeMember {
  std::uint32_t nsid = 0;
  std::string node;
  DeviceIdentity id;
  io::File file;
};

struct NvmeState {
  nvme::Topology topo;
  std::shared_ptr<nvme::Admin> admin;
  nvme::DriveFacts facts;
  std::map<std::uint32_t, nvme::NamespaceInfo> ns;  // Identify Namespace of the target and the erased ones
  std::vector<std::unique_ptr<PurgeMember>> members;
};

struct DeviceJob {
  std::string path;
  DeviceIdentity id;
  bool controller = false;  // an NVMe controller (/dev/nvmeX) was named
  InterlockReport checks;
  std::optional<nvme::Choice> choice;  // --method auto or an NVMe technique
  bool purge = false;                  // choice has a technique
  std::optional<NvmeState> nvme;
  nlohmann::json identity_extra = nlohmann::json::object();  // "nvme": controller / namespace facts
  MethodPlan plan;
  std::optional<Journal> journal;  // loaded (resume) or created (overwrite only)
  bool resuming = false;
  std::vector<std::string> warnings;
  io::File file;
  TargetReport report;
  nlohmann::json identity_json() const {
    nlohmann::json j = id.to_json();
    for (auto it = identity_extra.begin(); it != identity_extra.end(); ++it) j[it.key()] = it.value();
    return j;
  }
};

std::vector<std::string> device_warnings(const DeviceIdentity& id) {
  std::vector<std::string> w;
  if (id.media == "ssd" || id.media == "nvme")
    w.push_back("flash medium (" + id.media +
                "): overwrite reaches only the user-addressable blocks; over-provisioned, remapped "
                "and retired flash blocks can keep old data. This is NIST SP 800-88 Clear, not "
                "Purge; for Purge use the device's sanitize or crypto-erase command (NVMe: "
                "--method auto).");
  if (id.media == "hdd")
    w.push_back("hard disk: reallocated (grown-defect) sectors are not user-addressable and were "
                "not overwritten; NIST SP 800-88 classes a verified overwrite of an HDD as Clear.");
  if (id.transport == "loop")
    w.push_back("loop device: the overwrite went to its backing file " + id.loop_backing +
                "; whether the old blocks of that file on the underlying medium were overwritten "
                "depends on that filesystem and medium (copy-on-write filesystems and flash keep "
                "old copies).");
  else if (id.media == "virtual")
    w.push_back("virtual block device (" + id.transport +
                "): the overwrite reached what the virtual device exposes; the storage under it "
                "was not examined.");
  if (id.partition)
    w.push_back("only the partition " + id.node + " was overwritten, not the rest of disk " +
                id.disk + " (partition table, other partitions).");
  return w;
}

json discard_device(io::File& file, std::uint64_t size) {
  std::uint64_t range[2] = {0, size};
  json d = {{"requested", true}};
  if (::ioctl(file.fd(), BLKSECDISCARD, &range) == 0) {
    d["issued"] = "BLKSECDISCARD";
    d["note"] = "secure discard: the device was asked to erase the discarded blocks and their "
                "copies; how completely it does so is up to the device";
    return d;
  }
  int serr = errno;
  if (::ioctl(file.fd(), BLKDISCARD, &range) == 0) {
    d["issued"] = "BLKDISCARD";
    d["secure_discard_error"] = std::strerror(serr);
    d["note"] = "plain discard (TRIM/UNMAP): advisory; the device may keep the old blocks; it is "
                "not a sanitization technique and adds nothing to the certificate's category";
    return d;
  }
  int err = errno;
  d["issued"] = "none";
  d["error"] = std::strerror(err);
  d["note"] = "the device supports neither secure nor plain discard";
  return d;
}

std::string plan_line(const MethodPlan& plan) { return plan.describe(); }

void run_device(DeviceJob& job, const WipeOptions& opts, JobAudit& audit) {
  TargetReport& rep = job.report;
  const DeviceIdentity& id = job.id;
  Journal& journal = *job.journal;
  JournalData& d = journal.data();
  crypto::Bytes seed = crypto::from_hex(d.seed_hex);
  const std::string command = "wipe device";
  try {
    if (job.resuming) {
      json intr = {{"pass", d.pass + 1},
                   {"offset", d.offset},
                   {"phase", d.phase},
                   {"last_checkpoint_at", d.updated_at},
                   {"interrupted_pid", d.pid},
                   {"resumed_at", now_rfc3339(3)}};
      d.interruptions.push_back(intr);
      journal.save();
      rep.evidence["resumed"] = intr;
      audit.record(command, job.path, "resumed",
                   {{"certificate_id", d.certificate_id}, {"journal", journal.path().string()},
                    {"pass", d.pass + 1}, {"offset", d.offset}, {"phase", d.phase}});
    } else {
      d.audit_started = audit.record(
          command, job.path, "started",
          {{"certificate_id", d.certificate_id}, {"identity", id.to_json()},
           {"plan", job.plan.to_json()}, {"journal", journal.path().string()}});
      journal.save();
    }

    EraseTarget target;
    target.kind = "device";
    target.path = job.path;
    target.file = &job.file;
    target.extents = {{0, id.size}};
    target.sector = id.logical_sector;
    target.device = &id;
    auto method = make_overwrite_method(job.plan);
    EraseContext ctx{target, opts, seed, &journal, progress_of(opts), id.name, &stop_requested()};
    Evidence ev = method->run(ctx);

    if (opts.discard) ev.extra["discard"] = discard_device(job.file, id.size);

    // Pin: the device must still be the one that was checked and confirmed.
    DeviceIdentity after = read_device_identity(id.node);
    if (after.pin() != id.pin())
      throw Error(Errc::io, "the device identity changed during the wipe", job.path,
                  "before " + id.pin().dump() + ", after " + after.pin().dump(),
                  "the device may have been replaced; its certificate is withheld");

    rep.evidence["passes"] = ev.passes;
    rep.evidence["verification"] = ev.verification;
    rep.evidence["bytes_written"] = ev.bytes_written;
    rep.evidence["io"] = ev.extra;
    if (job.choice) rep.evidence["method_choice"] = job.choice->to_json();
    rep.evidence["interruptions"] = d.interruptions;
    rep.outcome = ev.verification_passed ? "sanitized" : "verification-failed";
    rep.code = ev.verification_passed ? Errc::ok : Errc::check_failed;
    if (!ev.verification_passed) {
      rep.error = "read-back verification found " +
                  std::to_string(ev.verification.value("mismatched_bytes", std::uint64_t{0})) +
                  " bytes that do not hold the pattern";
    }

    CertificateInput in;
    in.id = d.certificate_id;
    in.target_kind = "device";
    in.path = job.path;
    in.media = job.identity_json();
    in.media_type = id.media;
    in.category = method->category();
    in.method = job.plan.method;
    in.technique = method->technique();
    in.evidence = ev;
    if (job.choice) in.evidence.extra["method_choice"] = job.choice->to_json();
    in.outcome = rep.outcome;
    in.started_at = d.started_at;
    in.finished_at = now_rfc3339(3);
    in.interruptions = d.interruptions;
    in.warnings = job.warnings;
    bool any_random = false;
    for (const auto& p : job.plan.passes) any_random |= p.kind == PatternKind::random;
    if (any_random) in.seed_commitment = seed_commitment(seed);
    in.evidence.extra["journal_started_audit"] = d.audit_started;
    issue_certificate(in, opts, audit, command, ev.verification_passed ? "ok" : "failed", rep);
    journal.remove();
  } catch (const std::exception& e) {
    record_failure(rep, e);
    try {
      audit.record(command, job.path, rep.outcome == "interrupted" ? "interrupted" : "failed",
                   {{"certificate_id", d.certificate_id},
                    {"error", rep.error},
                    {"journal", journal.path().string()},
                    {"pass", d.pass + 1},
                    {"offset", d.offset}});
    } catch (const std::exception&) {
      // The failure itself is reported; a second failure of the audit log must not hide it.
    }
    if (rep.outcome == "interrupted" || rep.outcome == "failed")
      rep.evidence["resume"] = "dlc wipe device " + job.path + " --resume";
  }
}


// Best effort after a Purge: the partition table is gone, so the kernel's
// partitions of the namespace are stale; ask it to re-read (needs nobody
// holding the disk, so after our exclusive fds are closed).
nlohmann::json reread_partitions(const std::string& node) {
  int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {{"device", node}, {"result", std::strerror(errno)}};
  int rc = -1, err = 0;
  // io_uring drops the files it had registered asynchronously: the exclusive
  // claim of our closed fds can outlive close() by a moment (EBUSY).
  for (int attempt = 0; attempt < 20; ++attempt) {
    rc = ::ioctl(fd, BLKRRPART);
    err = errno;
    if (rc == 0 || err != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
  return {{"device", node}, {"result", rc == 0 ? std::string("ok") : std::string(std::strerror(err))}};
}

std::vector<std::string> purge_warnings(const DeviceJob& job) {
  std::vector<std::string> w;
  const nvme::Choice& c = *job.choice;
  if (c.scope.whole_subsystem)
    w.push_back(std::string(nvme::method_name(*c.technique)) + " erases the whole NVM subsystem: " +
                (c.scope.nsids.empty() ? std::string("every namespace")
                                       : "namespaces " + [&] {
                                           std::string l;
                                           for (auto id : c.scope.nsids) l += (l.empty() ? "" : ", ") + std::to_string(id);
                                           return l;
                                         }()) +
                ", and any namespace attached only to another controller");
  for (auto id : c.scope.nsids)
    if (job.nvme->topo.block_of(id).empty() && !(id == job.nvme->topo.nsid && !job.controller))
      w.push_back("namespace " + std::to_string(id) +
                  " has no block device on this host: it is erased by the drive, but dlc could neither "
                  "check it with the interlocks nor read it back");
  w.push_back("the drive's firmware performs the purge; dlc checked the command's completion status and "
              "read back a pseudorandom sample (first and last LBA included), as NIST SP 800-88 asks, "
              "but cannot inspect the flash cells themselves");
  if (job.id.partition)
    w.push_back("a partition was named; the purge covers the whole namespace " + job.id.disk);
  return w;
}

void run_purge(DeviceJob& job, const WipeOptions& opts, JobAudit& audit) {
  TargetReport& rep = job.report;
  NvmeState& nv = *job.nvme;
  const nvme::Choice& choice = *job.choice;
  const nvme::Technique t = *choice.technique;
  const std::string command = "wipe device";
  const std::string cert_id = util::random_uuid();
  const std::string started = now_rfc3339(3);
  try {
    nlohmann::json started_link = audit.record(
        command, job.path, "started",
        {{"certificate_id", cert_id},
         {"identity", job.identity_json()},
         {"method_choice", choice.to_json()},
         {"admin_device", nv.admin->device()}});

    nvme::PurgePlan plan;
    plan.choice = choice;
    plan.topology = nv.topo;
    plan.facts = nv.facts;
    plan.admin = nv.admin;
    io::File* target_file = nullptr;
    for (auto nsid : choice.scope.nsids) {
      nvme::PurgeNamespace pn;
      pn.nsid = nsid;
      auto it = nv.ns.find(nsid);
      if (it != nv.ns.end()) pn.info = it->second;
      for (auto& m : nv.members)
        if (m->nsid == nsid) {
          pn.node = m->node;
          pn.file = &m->file;
          if (m->id.name == job.id.disk) target_file = &m->file;
        }
      plan.namespaces.push_back(pn);
    }
    if (nvme::is_sanitize(t)) {
      plan.sanitize.action = t == nvme::Technique::sanitize_crypto  ? nvme::SanitizeAction::crypto_erase
                             : t == nvme::Technique::sanitize_block ? nvme::SanitizeAction::block_erase
                                                                    : nvme::SanitizeAction::overwrite;
      plan.sanitize.ause = opts.sanitize_unrestricted;
      plan.sanitize.owpass = 1;
      plan.sanitize.ovrpat = 0;
      plan.sanitize.nodas = false;
    } else {
      plan.formats = nvme::format_commands(t, nv.facts, nv.ns, 4u * 3600u * 1000u);
    }
    plan.verify = opts.verify.value_or(VerifyMode::last);
    plan.sample_percent = opts.purge_sample_percent.value_or(kPurgeSamplePercent);
    if (opts.nvme_test) plan.wait = opts.nvme_test->wait;

    EraseTarget target;
    target.kind = "device";
    target.path = job.path;
    target.file = target_file;
    target.extents = {{0, job.id.size}};
    target.sector = job.id.logical_sector;
    target.device = &job.id;
    auto method = nvme::make_purge_method(std::move(plan));
    EraseContext ctx{target, opts, {}, nullptr, progress_of(opts), job.id.name, &stop_requested()};
    Evidence ev = method->run(ctx);
    const std::string technique = method->technique();
    const Category category = method->category();
    method.reset();  // and its io engine: the ring must let go of the namespaces before BLKRRPART

    // Pin: every erased namespace must still be the one that was checked.
    for (auto& m : nv.members) {
      DeviceIdentity after = read_device_identity(m->node);
      if (after.pin() != m->id.pin())
        throw Error(Errc::io, "the device identity changed during the purge", m->node,
                    "before " + m->id.pin().dump() + ", after " + after.pin().dump(),
                    "the device may have been replaced or reformatted with another LBA format; its "
                    "certificate is withheld");
    }
    // Release the namespaces, then let the kernel drop its stale partitions.
    nlohmann::json reread = nlohmann::json::array();
    for (auto& m : nv.members) m->file = io::File();
    for (auto& m : nv.members) reread.push_back(reread_partitions(m->node));
    ev.extra["partition_table_reread"] = reread;

    rep.evidence["method_choice"] = choice.to_json();
    rep.evidence["passes"] = ev.passes;
    rep.evidence["verification"] = ev.verification;
    rep.evidence["bytes_written"] = 0;
    rep.evidence["nvme"] = ev.extra["nvme"];
    rep.outcome = ev.verification_passed ? "sanitized" : "verification-failed";
    rep.code = ev.verification_passed ? Errc::ok : Errc::check_failed;
    if (!ev.verification_passed)
      rep.error = "the read-back after the purge found " +
                  std::to_string(ev.verification.value("mismatched_bytes", std::uint64_t{0})) +
                  " bytes that do not read as expected";

    CertificateInput in;
    in.id = cert_id;
    in.target_kind = "device";
    in.path = job.path;
    in.media = job.identity_json();
    in.media_type = job.id.media;
    in.category = category;
    in.method = choice.method;
    in.technique = technique;
    in.evidence = ev;
    in.evidence.extra["method_choice"] = choice.to_json();
    in.evidence.extra["started_audit"] = started_link;
    in.outcome = rep.outcome;
    in.started_at = started;
    in.finished_at = now_rfc3339(3);
    in.warnings = job.warnings;
    issue_certificate(in, opts, audit, command, ev.verification_passed ? "ok" : "failed", rep);
  } catch (const std::exception& e) {
    record_failure(rep, e);
    try {
      audit.record(command, job.path, rep.outcome == "interrupted" ? "interrupted" : "failed",
                   {{"certificate_id", cert_id}, {"error", rep.error}, {"method", choice.method}});
    } catch (const std::exception&) {
      // The failure itself is reported; a second failure of the audit log must not hide it.
    }
    if (rep.outcome == "interrupted")
      rep.evidence["resume"] = "dlc wipe device " + job.path + " --method " + choice.method +
                               " (attaches to the sanitize still running in the drive)";
  }
}

void run_exit_failure(DeviceJob& job, JobAudit& audit) {
  TargetReport& rep = job.report;
  try {
    nlohmann::json r = nvme::exit_failure_mode(*job.nvme->admin);
    rep.evidence["nvme"] = r;
    rep.outcome = "failure-mode-exited";
    rep.code = Errc::check_failed;
    rep.error = "the drive left sanitize failure mode; NOTHING was sanitized: run a sanitize to erase it";
    audit.record("wipe device", job.path, "failure-mode-exited", {{"nvme", r}, {"identity", job.identity_json()}});
  } catch (const std::exception& e) {
    record_failure(rep, e);
    try {
      audit.record("wipe device", job.path, "failed", {{"error", rep.error}, {"action", "sanitize exit-failure-mode"}});
    } catch (const std::exception&) {
    }
  }
}

std::string nvme_kind(const DeviceIdentity& id) {
  return id.transport + " " + id.media + (id.transport == "loop" ? " (" + id.loop_backing + ")" : "");
}

// Identify the controller and the namespace named; what the method choice needs.
void identify(DeviceJob& job, const WipeOptions& opts) {
  NvmeState& nv = *job.nvme;
  nv.admin = opts.nvme_test && opts.nvme_test->open_admin ? opts.nvme_test->open_admin(nv.topo)
                                                          : std::shared_ptr<nvme::Admin>(nvme::open_admin(nv.topo.controller_node));
  nvme::Status s = nv.admin->identify_ctrl(nv.facts.ctrl);
  if (!s.ok())
    throw Error(Errc::io, "Identify Controller failed", nv.admin->device(), s.describe(),
                "check the drive (nvme id-ctrl); nothing was erased");
  nv.facts.nsid = job.controller ? 0 : nv.topo.nsid;
  nv.facts.partition = nv.topo.partition;
  std::set<std::uint32_t> all, active;
  std::vector<std::uint32_t> list;
  s = nv.admin->namespace_list(false, list);
  if (s.ok()) active.insert(list.begin(), list.end());
  bool complete = !nv.facts.ctrl.multi_controller();
  if (nv.facts.ctrl.ns_management() && nv.admin->namespace_list(true, list).ok()) {
    all.insert(list.begin(), list.end());
    complete = true;
  }
  for (const auto& n : nv.topo.namespaces) {
    all.insert(n.nsid);
    if (job.controller) active.insert(n.nsid);
  }
  all.insert(active.begin(), active.end());
  if (nv.facts.nsid) all.insert(nv.facts.nsid);
  all.erase(0);
  nv.facts.namespaces.assign(all.begin(), all.end());
  if (job.controller) nv.facts.namespaces.assign(active.begin(), active.end());
  nv.facts.namespaces_complete = complete || job.controller;
  if (nv.facts.nsid) {
    nvme::NamespaceInfo ni;
    s = nv.admin->identify_ns(nv.facts.nsid, ni);
    if (!s.ok())
      throw Error(Errc::io, "Identify Namespace " + std::to_string(nv.facts.nsid) + " failed", nv.admin->device(),
                  s.describe(), "check the drive (nvme id-ns); nothing was erased");
    nv.ns[nv.facts.nsid] = ni;
  }
  nlohmann::json facts = {{"controller", nv.facts.ctrl.to_json()},
                          {"topology", nv.topo.to_json()},
                          {"namespaces_known", nv.facts.namespaces}};
  if (nv.facts.nsid) {
    const auto& ni = nv.ns[nv.facts.nsid];
    facts["namespace"] = ni.to_json();
    facts["nsid"] = nv.facts.nsid;
    facts["eui64"] = ni.eui64_hex();
    facts["nguid"] = ni.nguid_hex();
  }
  job.identity_extra["nvme"] = facts;
}

// The namespaces a Purge erases: identified, checked by the interlocks like the
// target itself (refusals name the namespace), opened exclusively later.
void add_purge_members(DeviceJob& job) {
  NvmeState& nv = *job.nvme;
  for (auto nsid : job.choice->scope.nsids) {
    if (!nv.ns.count(nsid)) {
      nvme::NamespaceInfo ni;
      nvme::Status s = nv.admin->identify_ns(nsid, ni);
      if (!s.ok())
        throw Error(Errc::io, "Identify Namespace " + std::to_string(nsid) + " failed", nv.admin->device(),
                    s.describe(), "nothing was erased");
      nv.ns[nsid] = ni;
    }
    std::string block = nv.topo.block_of(nsid);
    if (!job.controller && nsid == nv.topo.nsid) block = nv.topo.block;
    if (block.empty()) continue;
    auto m = std::make_unique<PurgeMember>();
    m->nsid = nsid;
    m->node = (SysPaths{}.dev / block).string();
    if (!job.controller && block == job.id.disk && !job.id.partition) {
      m->id = job.id;
    } else {
      m->id = read_device_identity(m->node);
      InterlockReport r = check_interlocks(m->id);
      std::string why;
      if (r.ok() && !exclusive_open_possible(m->id.node, &why)) r.refusals.push_back(why);
      const std::string who = "namespace " + std::to_string(nsid) + " (" + m->node + ") is erased too, but ";
      for (const auto& x : r.refusals) job.checks.refusals.push_back(who + x);
      for (const auto& x : probe_signatures(m->id)) job.checks.signatures.push_back(x);
    }
    nv.members.push_back(std::move(m));
  }
}

}  // namespace

JobReport wipe_devices(const std::vector<std::string>& devices, const WipeOptions& opts) {
  JobReport report;
  report.command = "wipe device";
  report.started_at = now_rfc3339(3);
  if (devices.empty())
    throw Error(Errc::usage, "no device given", {}, {}, "name one or more block devices");
  JobAudit audit(opts);
  const fs::path jdir = opts.journal_dir.empty() ? Journal::default_dir() : opts.journal_dir;
  const bool nvme_requested = nvme::wants_nvme(opts.method) || opts.sanitize_exit_failure;
  // With --resume the journal says what was running; "auto" (the default) defers to it.
  if (opts.resume && nvme_requested && opts.method != "auto")
    throw Error(Errc::usage, "--resume applies to overwrites only", {}, {},
                "a Purge is not resumed from a journal: run the same command again (dlc attaches to a "
                "sanitize still running in the drive; a format is simply repeated)");
  if (opts.sanitize_exit_failure && opts.method != "nist-clear" && opts.method != "auto")
    throw Error(Errc::usage, "--sanitize-exit-failure takes no --method", {}, {},
                "it only leaves sanitize failure mode; run a sanitize method separately");

  std::vector<std::unique_ptr<DeviceJob>> jobs;
  std::vector<std::string> refusals;
  std::size_t method_refusals = 0;  // refusals of the method choice (they carry their own hint)
  for (const auto& path : devices) {
    auto job = std::make_unique<DeviceJob>();
    job->path = path;
    std::optional<nvme::Topology> topo = opts.nvme_test && opts.nvme_test->topology
                                             ? opts.nvme_test->topology(path)
                                             : nvme::map_nvme(path);
    job->controller = topo && topo->controller_target;
    if (job->controller && nvme::is_character_device(path)) {
      job->id = nvme::read_controller_identity(*topo);
    } else {
      if (nvme::is_character_device(path))
        throw Error(Errc::usage, "not a block device or an NVMe controller", path, {},
                    "name a block device (/dev/sdb, /dev/nvme0n1) or an NVMe controller (/dev/nvme0)");
      job->id = read_device_identity(path);
    }
    for (const auto& other : jobs)
      if (other->id.disk == job->id.disk)
        throw Error(Errc::usage, "the same disk is named twice", path,
                    "it is also " + other->path, "name each device once");
    if (topo) {
      job->nvme.emplace();
      job->nvme->topo = *topo;
      job->identity_extra["nvme"] = {{"topology", topo->to_json()}};
    }

    // Interlocks of the device named, before any admin command.
    if (!job->controller) {
      job->checks = check_interlocks(job->id);
      job->checks.signatures = probe_signatures(job->id);
      std::string why;
      if (job->checks.ok() && !exclusive_open_possible(job->id.node, &why))
        job->checks.refusals.push_back(why);
    }
    if (job->id.size == 0) job->checks.refusals.push_back(path + " has size 0 (no medium?)");

    if (opts.sanitize_exit_failure) {
      if (!topo) job->checks.refusals.push_back(path + " is not an NVMe device: there is no sanitize failure mode to leave");
      else if (job->checks.ok()) identify(*job, opts);
      job->plan.method = "sanitize-exit-failure";
    } else if (!opts.resume && nvme_requested) {
      // The method-selection step: which technique, and what it erases.
      if (job->checks.ok()) {
        try {
          if (!topo) {
            job->choice = nvme::choose_without_nvme(opts.method, nvme_kind(job->id), "nist-clear");
          } else {
            identify(*job, opts);
            job->choice = nvme::choose(opts.method, job->nvme->facts, opts.whole_drive || job->controller, "nist-clear");
          }
        } catch (const Error& e) {
          if (e.code() != Errc::refused) throw;
          job->checks.refusals.push_back(path + ": " + format_error(e.info()));
          ++method_refusals;
        }
      }
      if (job->choice && job->choice->technique) {
        job->purge = true;
        add_purge_members(*job);
        job->plan.method = job->choice->method;
      } else if (job->choice) {
        job->plan = plan_method(job->choice->method, opts.passes, opts.final_zero, opts.verify, opts.sample_percent);
      }
    } else if (job->controller) {
      job->checks.refusals.push_back(path + " is an NVMe controller: overwrite needs a namespace block device "
                                     "(/dev/nvmeXnY); or use --method auto for a Purge of every namespace");
    } else if (topo && job->checks.ok() && !opts.resume) {
      // An overwrite of an NVMe namespace: record what the drive could do instead.
      try {
        identify(*job, opts);
        nvme::Choice best = nvme::choose("auto", job->nvme->facts, true, "nist-clear");
        if (best.technique)
          job->warnings.push_back("this drive supports " + nvme::describe(*best.technique) +
                                  " (Purge); --method auto would use it instead of an overwrite (Clear)");
      } catch (const std::exception&) {
        // Only a note: the overwrite does not depend on it.
      }
    }

    if (!job->purge && !opts.sanitize_exit_failure && !job->controller) {
      fs::path jp = Journal::path_for(jdir, job->id.stable_id());
      auto existing = Journal::load(jp);
      if (opts.resume) {
        if (!existing)
          throw Error(Errc::usage, "no interrupted wipe to resume for", path,
                      "no journal " + jp.string(), "run without --resume to start a new wipe");
        if (existing->data().pin != job->id.pin())
          job->checks.refusals.push_back(
              path + " does not match the device the journal was written for (" +
              existing->data().pin.dump() + ")");
        job->plan = MethodPlan::from_json(existing->data().plan);
        job->journal = std::move(existing);
        job->resuming = true;
      } else if (!nvme_requested || job->choice) {
        if (existing && !opts.force)
          job->checks.refusals.push_back(
              "an interrupted wipe of " + path + " exists (journal " + jp.string() +
              "); pass --resume to continue it, or --force to start over");
        if (!job->choice)
          job->plan = plan_method(opts.method, opts.passes, opts.final_zero, opts.verify,
                                  opts.sample_percent);
        if (!opts.dry_run) {
          JournalData d;
          d.stable_id = job->id.stable_id();
          d.device = path;
          d.pin = job->id.pin();
          d.identity = job->id.to_json();
          d.plan = job->plan.to_json();
          SecureBuffer seed = draw_job_seed(opts);
          d.seed_hex = crypto::to_hex(seed.span());
          d.certificate_id = util::random_uuid();
          d.started_at = now_rfc3339(3);
          job->journal.emplace(jp, std::move(d));
        }
      }
    }
    for (const auto& w : job->purge ? purge_warnings(*job) : device_warnings(job->id)) job->warnings.push_back(w);
    for (const auto& r : job->checks.refusals) refusals.push_back(r);
    jobs.push_back(std::move(job));
  }

  // Two targets whose erasures overlap (a sanitize and another namespace of the same drive).
  for (std::size_t i = 0; i < jobs.size(); ++i)
    for (std::size_t j = i + 1; j < jobs.size(); ++j) {
      std::set<std::string> a, b;
      auto nodes = [](const DeviceJob& d, std::set<std::string>& out) {
        out.insert(d.id.node);
        if (d.nvme)
          for (const auto& m : d.nvme->members) out.insert(m->node);
      };
      nodes(*jobs[i], a);
      nodes(*jobs[j], b);
      for (const auto& n : a)
        if (b.count(n))
          throw Error(Errc::usage, "two targets erase the same namespace", n,
                      jobs[i]->path + " and " + jobs[j]->path, "name the drive once (with --whole-drive)");
    }

  auto plan_text = [](const DeviceJob& job, bool with_why = true) {
    if (job.plan.method == "sanitize-exit-failure")
      return std::string("sanitize exit-failure-mode: leave sanitize failure mode; NOTHING is erased");
    if (job.purge) {
      const auto& c = *job.choice;
      std::string nsl;
      for (auto id : c.scope.nsids) nsl += (nsl.empty() ? "" : ", ") + std::to_string(id);
      return c.method + ": " + nvme::describe(*c.technique) + " (NIST SP 800-88 Purge) of " +
             (c.scope.whole_subsystem ? "the WHOLE NVM subsystem" : "namespace(s)") +
             (nsl.empty() ? "" : " " + nsl) + (with_why ? "; " + c.why : "");
    }
    if (job.plan.passes.empty()) return std::string("nothing: refused (see the reasons)");
    std::string p = plan_line(job.plan) + (job.resuming ? " (resuming)" : "");
    if (job.choice && with_why) p += "; " + job.choice->why;
    return p;
  };

  if (opts.dry_run) {
    for (auto& job : jobs) {
      TargetReport t;
      t.kind = "device";
      t.path = job->path;
      t.identity = job->identity_json();
      t.identity["signatures_before"] = job->checks.signatures;
      t.warnings = job->warnings;
      t.outcome = job->checks.ok() ? "planned" : "refused";
      t.code = job->checks.ok() ? Errc::ok : Errc::refused;
      std::string err;
      for (const auto& r : job->checks.refusals) err += (err.empty() ? "" : "; ") + r;
      t.error = err;
      t.evidence["plan_text"] = plan_text(*job, false);
      if (job->choice) t.evidence["method_choice"] = job->choice->to_json();
      if (!job->purge && !job->plan.passes.empty()) t.evidence["plan"] = job->plan.to_json();
      if (job->purge) {
        nlohmann::json members = nlohmann::json::array();
        for (const auto& m : job->nvme->members) members.push_back({{"nsid", m->nsid}, {"device", m->node}});
        t.evidence["erases"] = members;
        if (!nvme::is_sanitize(*job->choice->technique)) {
          nlohmann::json f = nlohmann::json::array();
          for (const auto& c : nvme::format_commands(*job->choice->technique, job->nvme->facts, job->nvme->ns, 0))
            f.push_back(c.to_json());
          t.evidence["format_commands"] = f;
        }
      }
      report.targets.push_back(std::move(t));
    }
    report.code = worst(report.targets);
    report.finished_at = now_rfc3339(3);
    return report;
  }

  auto refuse_all = [&](const std::string& what, const std::string& detail,
                        const std::string& hint) {
    for (const auto& job : jobs) {
      try {
        audit.record("wipe device", job->path, "refused",
                     {{"reason", detail}, {"identity", job->identity_json()}});
      } catch (const std::exception&) {
      }
    }
    throw Error(Errc::refused, what, {}, detail, hint);
  };

  if (!refusals.empty()) {
    std::string detail;
    for (const auto& r : refusals) detail += (detail.empty() ? "" : "; ") + r;
    refuse_all("refusing to wipe: nothing was written", detail,
               refusals.size() > method_refusals
                   ? "--force overrides only an unfinished journal, never mounted, system, holders, "
                     "swap or in-use devices"
                   : "");
  }

  // Typed confirmation, device by device, before anything is written.
  if (!opts.yes) {
    for (const auto& job : jobs) {
      if (!opts.confirm)
        refuse_all("refusing to wipe without confirmation: nothing was written",
                   "there is no terminal to confirm " + job->path + " on",
                   "pass --yes to confirm non-interactively");
      TargetPreview pv;
      pv.path = job->path;
      pv.identity = job->identity_json();
      pv.signatures = job->checks.signatures;
      pv.warnings = job->warnings;
      pv.plan = plan_text(*job);
      if (!opts.confirm(pv))
        refuse_all("not confirmed: nothing was written", job->path + " was not confirmed",
                   "type the device name exactly, or pass --yes");
    }
  }

  // Exclusive opens, held for the whole job; identity pinned again.
  auto open_exclusive = [&](const std::string& node) {
    io::OpenOptions oo;
    oo.mode = io::OpenMode::read_write;
    oo.direct = true;
    oo.exclusive = true;
    return io::File::open(node, oo);
  };
  for (auto& job : jobs) {
    if (job->purge) {
      for (auto& m : job->nvme->members) {
        m->file = open_exclusive(m->id.node);
        DeviceIdentity again = read_device_identity(m->id.node);
        if (again.pin() != m->id.pin())
          refuse_all("refusing to wipe: the device changed after it was checked",
                     m->node + " now reports " + again.pin().dump(), "check the device and retry");
      }
    } else if (!job->controller) {
      job->file = open_exclusive(job->id.node);
      DeviceIdentity again = read_device_identity(job->id.node);
      if (again.pin() != job->id.pin())
        refuse_all("refusing to wipe: the device changed after it was checked",
                   job->path + " now reports " + again.pin().dump(), "check the device and retry");
    }
    job->report.kind = "device";
    job->report.path = job->path;
    job->report.identity = job->identity_json();
    job->report.identity["signatures_before"] = job->checks.signatures;
    job->report.warnings = job->warnings;
    if (job->purge) {
      job->report.evidence["plan"] = {{"method", job->choice->method}, {"category", "purge"},
                                      {"text", plan_text(*job)}};
    } else if (job->journal) {
      job->report.evidence["plan"] = job->plan.to_json();
      job->report.evidence["journal"] = job->journal->path().string();
    }
  }

  auto run = [&](DeviceJob& job) {
    if (opts.sanitize_exit_failure) run_exit_failure(job, audit);
    else if (job.purge) run_purge(job, opts, audit);
    else run_device(job, opts, audit);
  };
  if (jobs.size() == 1) {
    run(*jobs[0]);
  } else {
    std::vector<std::thread> threads;
    for (auto& job : jobs) threads.emplace_back([&job, &run] { run(*job); });
    for (auto& t : threads) t.join();
  }
  for (auto& job : jobs) report.targets.push_back(std::move(job->report));
  report.code = worst(report.targets);
  report.finished_at = now_rfc3339(3);
  return report;
}

}  // namespace dlc::wipe
