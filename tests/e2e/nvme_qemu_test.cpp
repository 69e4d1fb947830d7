// dlc wipe on REAL (emulated) NVMe: QEMU 7.2 boots Debian's cloud kernel with
// an initramfs holding the freshly built dlc (tests/nvme/qemu_harness.sh) and
// two `-device nvme` drives (one plain, one in a subsystem with two
// namespaces: native multipath); tests/nvme/guest_init.sh runs the scenario
// and prints machine-readable records on the serial console, parsed here:
// identify and sysfs mapping (also multipath and the controller node), the
// interlocks (a mounted partition refuses the namespace; real holders — a
// dm-linear target made with dmsetup and an md raid1 made through md's sysfs —
// refuse the namespaces and the controller node, --force included, with the
// data byte-for-byte unchanged, and the wipes proceed once they are removed),
// Sanitize refused
// (QEMU: SANICAP = 0, Invalid Opcode), an overwrite verified through io_uring
// (Clear), --method auto choosing Format NVM SES=1 (Purge) ending in a
// verified, signed certificate that also verifies on the host, per-namespace
// scope (the other namespace keeps its data), and the audit log.
// Skips only when qemu-system-x86_64 cannot run or the kernel cannot be fetched.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_support.h"

using dlc::test::run_dlc;
using dlc::test::run_shell;
using dlc::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Step {
  int rc = -1;
  std::string out, err;
  json doc() const {
    try {
      return json::parse(out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "): " << out;
      return json::object();
    }
  }
};

struct Guest {
  std::map<std::string, Step> steps;
  std::map<std::string, std::string> checks;
  std::map<std::string, std::string> files;
  bool done = false;
  std::string log;
};

Guest parse(const std::string& log) {
  Guest g;
  g.log = log;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    auto at = line.find("@@");
    if (at == std::string::npos) continue;
    line = line.substr(at);
    auto field = [&](std::size_t n) {  // n-th space-separated field and the rest after it
      std::size_t pos = 0;
      for (std::size_t i = 0; i < n && pos != std::string::npos; ++i) {
        pos = line.find(' ', pos);
        if (pos != std::string::npos) ++pos;
      }
      return pos == std::string::npos ? std::string() : line.substr(pos);
    };
    std::string rest1 = field(1);
    std::string name = rest1.substr(0, rest1.find(' '));
    std::string rest2 = field(2);
    if (line.rfind("@@STEP ", 0) == 0) {
      auto rc = rest2.find("rc=");
      g.steps[name].rc = rc == std::string::npos ? -1 : std::atoi(rest2.c_str() + rc + 3);
    } else if (line.rfind("@@OUT ", 0) == 0) {
      g.steps[name].out += rest2 + "\n";
    } else if (line.rfind("@@ERR ", 0) == 0) {
      g.steps[name].err += rest2 + "\n";
    } else if (line.rfind("@@CHECK ", 0) == 0) {
      auto t = rest2.rfind(" (t=");
      g.checks[name] = t == std::string::npos ? rest2 : rest2.substr(0, t);
    } else if (line.rfind("@@FILE ", 0) == 0) {
      g.files[name] += rest2 + "\n";
    } else if (line.rfind("@@DONE", 0) == 0) {
      g.done = true;
    }
  }
  return g;
}

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

std::string considered(const json& choice) {
  std::string s;
  for (const auto& c : choice.value("considered", json::array())) s += c.get<std::string>() + "\n";
  return s;
}

}  // namespace

TEST(NvmeQemu, WipeOnEmulatedNvmeDrives) {
  const fs::path work = fs::path(DLC_BINARY).parent_path() / "nvme-qemu";
  const std::string harness = std::string(DLC_SOURCE_DIR) + "/tests/nvme/qemu_harness.sh";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_shell("bash " + harness + " " + DLC_BINARY + " " + work.string());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.exit_code == 77) GTEST_SKIP() << r.out << r.err;
  ASSERT_EQ(r.exit_code, 0) << "harness failed:\n" << r.out << r.err;
  ASSERT_TRUE(contains(r.out, "SERIAL ")) << r.out;
  const Guest g = parse(dlc::test::read_file(work / "serial.log"));
  std::cout << "[ nvme-qemu ] harness + guest took " << secs << " s (" << r.err << ")\n";
  RecordProperty("seconds", std::to_string(secs));
  ASSERT_TRUE(g.done) << "the scenario did not finish (QEMU " << r.out << "):\n" << g.log;

  auto step = [&](const std::string& name) -> const Step& {
    static const Step none;
    auto it = g.steps.find(name);
    if (it == g.steps.end()) {
      ADD_FAILURE() << "no step " << name;
      return none;
    }
    return it->second;
  };
  auto check = [&](const std::string& name) {
    auto it = g.checks.find(name);
    return it == g.checks.end() ? std::string("<missing>") : it->second;
  };

  {
    SCOPED_TRACE("identify and sysfs mapping");
    EXPECT_EQ(check("nvme1n1_device_link"), "../../nvme-subsys1");  // native multipath for real
    const Step& p0 = step("plan_nvme0n1");
    EXPECT_EQ(p0.rc, 0) << p0.err;
    json t = p0.doc()["targets"][0];
    EXPECT_EQ(t["outcome"], "planned");
    const json& nv = t["identity"]["nvme"];
    EXPECT_EQ(nv["topology"]["controller"], "nvme0");
    EXPECT_EQ(nv["topology"]["admin_device"], "/dev/nvme0");
    EXPECT_EQ(nv["topology"]["nsid"], 1);
    EXPECT_EQ(nv["topology"]["native_multipath"], false);
    EXPECT_EQ(nv["controller"]["serial"], "DLCTEST0001");
    EXPECT_TRUE(contains(nv["controller"]["model"].get<std::string>(), "QEMU"));
    EXPECT_EQ(nv["controller"]["sanicap"], "0x00000000");
    EXPECT_EQ(nv["controller"]["fna"], "0x00");
    EXPECT_EQ(nv["controller"]["format_nvm_supported"], true);
    EXPECT_EQ(nv["namespace"]["nsid"], 1);
    EXPECT_EQ(nv["namespace"]["size_bytes"], 64u << 20);
    EXPECT_EQ(t["evidence"]["method_choice"]["method"], "format-user-data");
    EXPECT_TRUE(
        contains(considered(t["evidence"]["method_choice"]), "sanitize-crypto: not supported"));

    const Step& p1 = step("plan_nvme1n1");
    EXPECT_EQ(p1.rc, 0) << p1.err;
    json t1 = p1.doc()["targets"][0];
    const json& topo = t1["identity"]["nvme"]["topology"];
    EXPECT_EQ(topo["native_multipath"], true);
    EXPECT_TRUE(contains(topo["subsystem"].get<std::string>(), "nvme-subsys"));
    EXPECT_EQ(topo["controller"], "nvme1");
    EXPECT_EQ(topo["namespaces"].size(), 2u);
    EXPECT_EQ(t1["identity"]["nvme"]["controller"]["serial"], "DLCTEST0002");
    EXPECT_EQ(t1["evidence"]["method_choice"]["method"], "format-user-data");
    EXPECT_EQ(t1["evidence"]["method_choice"]["scope"]["namespaces"], json::array({1}));

    const Step& pc = step("plan_nvme1");
    EXPECT_EQ(pc.rc, 0) << pc.err;
    json tc = pc.doc()["targets"][0];
    EXPECT_EQ(tc["identity"]["nvme"]["topology"]["controller_target"], true);
    EXPECT_EQ(tc["evidence"]["method_choice"]["scope"]["namespaces"], json::array({1, 2}));
    EXPECT_EQ(tc["evidence"]["format_commands"].size(), 2u);
  }
  {
    SCOPED_TRACE("interlocks");
    EXPECT_EQ(check("mounted"), "1");
    for (const char* s : {"mounted_overwrite", "mounted_auto"}) {
      EXPECT_EQ(step(s).rc, 3) << s << ": " << step(s).err;
      EXPECT_TRUE(contains(step(s).err, "is mounted: /dev/nvme0n1p1 on /mnt")) << step(s).err;
    }
    EXPECT_EQ(check("precious_after_refusal"), "tenant file");
  }
  {
    // Holders on a real kernel: dm-0 (dm-linear "dlc-holder") over nvme0n1.
    // Every attempt, --force included, is refused by the holders interlock
    // (named as such: dm also claims the namespace exclusively, so the message
    // tells the two interlocks apart) and the namespace is unchanged.
    SCOPED_TRACE("holders: device-mapper");
    EXPECT_EQ(check("holder_modules"), "dm_mod md_mod raid1");
    EXPECT_EQ(check("dmsetup"), "present");
    EXPECT_TRUE(contains(check("dm_create"), "rc=0 table=0 131072 linear ")) << check("dm_create");
    EXPECT_EQ(check("holders_dm"), "dm-0");  // /sys/block/nvme0n1/holders
    EXPECT_EQ(check("dm_slaves"), "nvme0n1 name=dlc-holder");
    const std::string chain = "/dev/nvme0n1 has holders: nvme0n1 <- dm-0 (dm dlc-holder)";
    const Step& plan = step("holder_dm_plan");
    EXPECT_EQ(plan.rc, 3) << plan.out << plan.err;
    json t = plan.doc()["targets"][0];
    EXPECT_EQ(t["outcome"], "refused");
    EXPECT_TRUE(contains(t.value("error", ""), chain)) << t.dump(2);
    for (const char* s : {"holder_dm", "holder_dm_zero"}) {
      EXPECT_EQ(step(s).rc, 3) << s << ": " << step(s).out << step(s).err;
      EXPECT_TRUE(contains(step(s).err, "refusing to wipe: nothing was written")) << step(s).err;
      EXPECT_TRUE(contains(step(s).err, chain)) << step(s).err;
      EXPECT_TRUE(contains(step(s).err, "dmsetup remove")) << step(s).err;
    }
    EXPECT_TRUE(
        contains(step("holder_dm_zero").err, "--force overrides only an unfinished journal"));
    EXPECT_EQ(check("marker_after_holder_dm"), "present");
    EXPECT_EQ(check("digest_before_holder_dm").size(), 32u) << check("digest_before_holder_dm");
    EXPECT_EQ(check("digest_after_holder_dm"), check("digest_before_holder_dm"));
    EXPECT_EQ(check("dm_remove"), "rc=0 holders=");
    // Removed again, the overwrite that follows proceeds (asserted in full below).
    EXPECT_EQ(step("overwrite").rc, 0) << step("overwrite").err;
  }
  {
    // md0: a raid1 of nvme1n1 + nvme1n2 (no superblock, no resync). Each
    // namespace is refused, and so is the controller node /dev/nvme1 whose
    // Format would erase both; both namespaces are unchanged.
    SCOPED_TRACE("holders: md raid1 over both namespaces, and the controller node");
    const std::string md = check("md_create");
    EXPECT_TRUE(contains(md, "rc=0 level=raid1 ")) << md;
    EXPECT_TRUE(contains(md, "degraded=0")) << md;
    EXPECT_EQ(check("holders_md"), "md0 md0");
    EXPECT_EQ(check("md_slaves"), "nvme1n1 nvme1n2");
    const std::string chain1 = "/dev/nvme1n1 has holders: nvme1n1 <- md0 (md raid1)";
    const std::string chain2 = "/dev/nvme1n2 has holders: nvme1n2 <- md0 (md raid1)";
    EXPECT_EQ(step("holder_md").rc, 3) << step("holder_md").out << step("holder_md").err;
    EXPECT_TRUE(contains(step("holder_md").err, chain1)) << step("holder_md").err;
    EXPECT_TRUE(contains(step("holder_md").err, "mdadm --stop")) << step("holder_md").err;
    const Step& f = step("holder_md_force");
    EXPECT_EQ(f.rc, 3) << f.out << f.err;
    EXPECT_TRUE(contains(f.err, chain2)) << f.err;
    EXPECT_TRUE(contains(f.err, "--force overrides only an unfinished journal")) << f.err;
    const Step& plan = step("holder_md_ctrl_plan");
    EXPECT_EQ(plan.rc, 3) << plan.out << plan.err;
    json t = plan.doc()["targets"][0];
    EXPECT_EQ(t["outcome"], "refused");
    EXPECT_EQ(t["identity"]["nvme"]["topology"]["controller_target"], true);
    for (const auto& c : {"namespace 1 (/dev/nvme1n1) is erased too, but " + chain1,
                          "namespace 2 (/dev/nvme1n2) is erased too, but " + chain2})
      EXPECT_TRUE(contains(t.value("error", ""), c)) << t.dump(2);
    const Step& c = step("holder_md_ctrl");
    EXPECT_EQ(c.rc, 3) << c.out << c.err;
    EXPECT_TRUE(contains(c.err, "namespace 1 (/dev/nvme1n1) is erased too, but " + chain1))
        << c.err;
    EXPECT_TRUE(contains(c.err, "namespace 2 (/dev/nvme1n2) is erased too, but " + chain2))
        << c.err;
    EXPECT_EQ(check("markers_after_holder_md"), "present present");
    EXPECT_EQ(check("digest_before_holder_md").size(), 65u) << check("digest_before_holder_md");
    EXPECT_EQ(check("digest_after_holder_md"), check("digest_before_holder_md"));
    EXPECT_EQ(check("md_stop"), "rc=0 holders=");
    // Stopped again, the namespace and the controller formats proceed.
    EXPECT_EQ(step("format_ns1").rc, 0) << step("format_ns1").err;
    EXPECT_EQ(step("format_ctrl").rc, 0) << step("format_ctrl").err;
  }
  {
    SCOPED_TRACE("sanitize refused: QEMU has none");
    for (const char* s : {"sanitize_refused", "sanitize_refused_whole"}) {
      EXPECT_EQ(step(s).rc, 3) << s << ": " << step(s).err;
      EXPECT_TRUE(contains(step(s).err, "SANICAP 0x00000000")) << step(s).err;
    }
  }
  {
    SCOPED_TRACE("overwrite through io_uring: Clear");
    const Step& o = step("overwrite");
    EXPECT_EQ(o.rc, 0) << o.err;
    json t = o.doc()["targets"][0];
    EXPECT_EQ(t["outcome"], "sanitized");
    EXPECT_EQ(t["evidence"]["io"]["io_backend"], "io_uring");
    EXPECT_EQ(t["evidence"]["io"]["direct_io"], true);
    EXPECT_EQ(t["evidence"]["verification"]["result"], "passed");
    EXPECT_EQ(t["evidence"]["verification"]["bytes_verified"], 64u << 20);
    EXPECT_EQ(check("marker_before_overwrite"), "present");
    EXPECT_EQ(check("marker_after_overwrite"), "absent");
    json cert = json::parse(g.files.count("overwrite_cert") ? g.files.at("overwrite_cert") : "{}");
    EXPECT_EQ(cert["sanitization"]["category"], "clear");
    EXPECT_EQ(cert["media"]["type"], "nvme");
    bool clear_note = false;
    for (const auto& w : cert.value("warnings", json::array()))
      clear_note |= contains(w.get<std::string>(), "Clear, not Purge");
    EXPECT_TRUE(clear_note);
  }
  {
    SCOPED_TRACE("--method auto: Format NVM SES=1, Purge, verified and signed");
    const Step& f = step("format_auto");
    EXPECT_EQ(f.rc, 0) << f.err;
    json t = f.doc()["targets"][0];
    EXPECT_EQ(t["outcome"], "sanitized");
    EXPECT_EQ(t["evidence"]["method_choice"]["method"], "format-user-data");
    ASSERT_TRUE(g.files.count("format_cert"));
    const std::string cert_text = g.files.at("format_cert");
    json cert = json::parse(cert_text);
    EXPECT_EQ(cert["sanitization"]["category"], "purge");
    EXPECT_EQ(cert["sanitization"]["method"], "format-user-data");
    const json& nv = cert["sanitization"]["details"]["nvme"];
    EXPECT_EQ(nv["command"], "format-nvm");
    EXPECT_EQ(nv["parameters"][0]["ses"], 1);
    EXPECT_EQ(nv["parameters"][0]["nsid"], "0x00000001");
    EXPECT_EQ(nv["controller"]["sanicap"], "0x00000000");
    EXPECT_EQ(nv["format"]["commands"][0]["status"], "success");
    EXPECT_EQ(cert["media"]["serial"], "DLCTEST0001");
    EXPECT_EQ(cert["performer"]["name"], "QEMU Guest");
    const json& v = cert["verification"];
    EXPECT_EQ(v["result"], "passed");
    EXPECT_EQ(v["status_check"]["status"], "success");
    EXPECT_EQ(v["namespaces"][0]["expected"], "zeros");
    EXPECT_EQ(v["namespaces"][0]["first_lba_checked"], true);
    EXPECT_EQ(v["namespaces"][0]["last_lba_checked"], true);
    EXPECT_EQ(check("format_nonzero_bytes"), "0");
    EXPECT_EQ(check("partition_after_format"), "gone");
    EXPECT_EQ(step("format_cert_verify").rc, 0)
        << step("format_cert_verify").out << step("format_cert_verify").err;
    // The same certificate verifies on the host, pinned to the guest's key.
    TempDir d;
    dlc::test::write_file(d / "c.cert.json", cert_text);
    dlc::test::write_file(d / "host-key.pub",
                          g.files.count("host_pubkey") ? g.files.at("host_pubkey") : "");
    auto hv = run_dlc({"verify", "certificate", (d / "c.cert.json").string(), "--pubkey",
                       (d / "host-key.pub").string()});
    EXPECT_EQ(hv.exit_code, 0) << hv.out << hv.err;
    auto text =
        run_dlc({"verify", "certificate", (d / "c.cert.json").string(), "--render", "text"});
    EXPECT_TRUE(contains(text.out, "SANICAP")) << text.out;
  }
  {
    SCOPED_TRACE("multipath, two namespaces: the other keeps its data");
    const Step& n1 = step("format_ns1");
    EXPECT_EQ(n1.rc, 0) << n1.err;
    json t = n1.doc()["targets"][0];
    EXPECT_EQ(t["evidence"]["verification"]["method"], "full read-back");
    EXPECT_EQ(t["evidence"]["verification"]["bytes_verified"], 32u << 20);
    EXPECT_EQ(check("ns1_nonzero_bytes"), "0");
    EXPECT_EQ(check("ns2_marker_after_ns1"), "present");
    const Step& c = step("format_ctrl");
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.doc()["targets"][0]["evidence"]["nvme"]["format"]["commands"].size(), 2u);
    EXPECT_EQ(check("ns2_nonzero_after_ctrl"), "0");
  }
  EXPECT_EQ(step("audit_verify").rc, 0) << step("audit_verify").out << step("audit_verify").err;
  if (HasFailure()) std::cerr << "---- guest serial log ----\n" << g.log << "---- end ----\n";
}
