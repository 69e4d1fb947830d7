// dlc migrate end to end, through the real binary: every file type and its
// metadata arrive, a flipped byte is caught, kill -9 then resume sends nothing
// already verified, a residency violation writes nothing, the remote path
// over loopback with real TLS certificates (and a wrong client certificate
// refused), and a dry run that only estimates.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/test_support.h"

namespace dlc::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct stat lstat_of(const fs::path& p) {
  struct stat st{};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

// A tree with every file type and metadata dlc preserves.
void make_tree(const fs::path& src) {
  fs::create_directories(src / "dir/deep");
  write_file(src / "plain.txt", "hello\n");
  write_file(src / "dir/data.bin", random_bytes(3 << 20, 1));
  write_file(src / "empty", "");
  ::chown((src / "dir/data.bin").c_str(), 1234, 5678);  // before chmod: chown clears set-id bits
  ::chmod((src / "dir/data.bin").c_str(), 04750);
  ASSERT_EQ(::link((src / "plain.txt").c_str(), (src / "dir/hard.txt").c_str()), 0);
  ASSERT_EQ(::symlink("../plain.txt", (src / "dir/link").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/target", (src / "dangling").c_str()), 0);
  ASSERT_EQ(::mkfifo((src / "fifo").c_str(), 0640), 0);
  ASSERT_EQ(::mknod((src / "null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
  ASSERT_EQ(::setxattr((src / "plain.txt").c_str(), "user.tag", "blue\0\xff", 6, 0), 0);
  ASSERT_EQ(::setxattr((src / "dir").c_str(), "user.owner", "team-a", 6, 0), 0);
  {
    std::ofstream f(src / "sparse.img", std::ios::binary);
    f.seekp(8 << 20);
    f << "tail";
    f.seekp(1 << 20);
    f << std::string(8192, 'x');
  }
  ::chown((src / "dir/deep").c_str(), 42, 43);
  ::chmod((src / "dir/deep").c_str(), 0711);
  const timespec old[2] = {{0, UTIME_OMIT}, {978307200, 123456789}};
  ::utimensat(AT_FDCWD, (src / "dir/deep").c_str(), old, AT_SYMLINK_NOFOLLOW);
  ::utimensat(AT_FDCWD, (src / "dir/link").c_str(), old, AT_SYMLINK_NOFOLLOW);
  ::utimensat(AT_FDCWD, (src / "plain.txt").c_str(), old, 0);
}

// Built with append: GCC 12 warns falsely (-Wrestrict) on "f" + std::to_string(...).
std::string fname(int i) {
  std::string n("f");
  n.append(std::to_string(100 + i));
  return n;
}

json report_json(const RunResult& r) {
  try {
    return json::parse(r.out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON: " << r.out << r.err;
    return json::object();
  }
}

class MigrateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (owners, device nodes)";
    env_ = {{"DLC_HOME", (tmp_ / "home").string()}};
  }
  RunResult dlc(const std::vector<std::string>& args) { return run_dlc(args, {}, env_); }
  TempDir tmp_;
  std::map<std::string, std::string> env_;
};

TEST_F(MigrateCli, EveryFileTypeAndMetadataArrivesAndVerifies) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  make_tree(src);
  RunResult r = dlc({"--json", "migrate", src.string(), dst.string(), "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const json rep = report_json(r);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_EQ(rep["source"]["merkle_root"], rep["destination"]["merkle_root"]);
  EXPECT_EQ(rep["format"], "dlc-migration-report/1");
  EXPECT_TRUE(rep["signature"].is_object());

  EXPECT_EQ(read_file(dst / "dir/data.bin"), read_file(src / "dir/data.bin"));
  const struct stat data = lstat_of(dst / "dir/data.bin");
  EXPECT_EQ(data.st_mode & 07777, 04750u);
  EXPECT_EQ(data.st_uid, 1234u);
  EXPECT_EQ(data.st_gid, 5678u);
  EXPECT_EQ(lstat_of(dst / "plain.txt").st_ino, lstat_of(dst / "dir/hard.txt").st_ino);
  EXPECT_EQ(fs::read_symlink(dst / "dir/link"), "../plain.txt");
  EXPECT_EQ(fs::read_symlink(dst / "dangling"), "/nonexistent/target");
  EXPECT_EQ(lstat_of(dst / "dir/link").st_mtim.tv_sec, 978307200);
  EXPECT_TRUE(S_ISFIFO(lstat_of(dst / "fifo").st_mode));
  EXPECT_EQ(lstat_of(dst / "null").st_rdev, makedev(1, 3));
  char buf[16];
  ASSERT_EQ(::getxattr((dst / "plain.txt").c_str(), "user.tag", buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf, 6), std::string("blue\0\xff", 6));
  ASSERT_EQ(::getxattr((dst / "dir").c_str(), "user.owner", buf, sizeof buf), 6);
  const struct stat deep = lstat_of(dst / "dir/deep");
  EXPECT_EQ(deep.st_mode & 07777, 0711u);
  EXPECT_EQ(deep.st_uid, 42u);
  EXPECT_EQ(deep.st_mtim.tv_sec, 978307200);
  EXPECT_EQ(deep.st_mtim.tv_nsec, 123456789);
  const struct stat sp = lstat_of(dst / "sparse.img");
  EXPECT_EQ(sp.st_size, (8 << 20) + 4);
  EXPECT_LT(sp.st_blocks * 512, 1 << 20) << "holes were filled";
  EXPECT_EQ(read_file(dst / "sparse.img"), read_file(src / "sparse.img"));

  // The audit log has the migration's started and finished records.
  const std::string log = read_file(tmp_ / "home/audit.jsonl");
  EXPECT_NE(log.find("\"outcome\":\"started\""), std::string::npos);
  EXPECT_NE(log.find("\"command\":\"migrate\""), std::string::npos);
}

TEST_F(MigrateCli, FlippedByteIsCaughtByVerifyMigrationAndByTheNextRun) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  make_tree(src);
  const fs::path manifest = tmp_ / "m.json", report = tmp_ / "r.json";
  RunResult r = dlc({"migrate", src.string(), dst.string(), "--verify", "--manifest-out", manifest.string(),
                     "--report", report.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  RunResult ok = dlc({"verify", "migration", "--manifest", manifest.string(), dst.string(), "--report",
                      report.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err << ok.out;

  {  // flip one byte in place, keeping size and times
    const fs::path p = dst / "dir/data.bin";
    const struct stat before = lstat_of(p);
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char c;
    f.get(c);
    f.seekp(1000);
    f.put(static_cast<char>(c ^ 0x01));
    f.close();
    const timespec t[2] = {before.st_atim, before.st_mtim};
    ::utimensat(AT_FDCWD, p.c_str(), t, 0);
  }
  RunResult bad = dlc({"verify", "migration", "--manifest", manifest.string(), dst.string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.err << bad.out;
  EXPECT_NE(bad.err.find("content: dir/data.bin"), std::string::npos) << bad.err;

  RunResult again = dlc({"migrate", src.string(), dst.string(), "--verify"});
  EXPECT_EQ(again.exit_code, 1) << again.err << again.out;
  EXPECT_NE(again.err.find("dir/data.bin"), std::string::npos) << again.err;
  // The next run re-sends what did not verify.
  RunResult fixed = dlc({"--json", "migrate", src.string(), dst.string(), "--verify"});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  EXPECT_EQ(report_json(fixed)["transfer"]["sent"], 1);
  EXPECT_EQ(read_file(dst / "dir/data.bin"), read_file(src / "dir/data.bin"));
}

TEST_F(MigrateCli, KillNineThenResumeSendsNothingThatWasVerified) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  fs::create_directories(src);
  const int files = 48;
  for (int i = 0; i < files; ++i) write_file(src / fname(i), random_bytes(1 << 20, static_cast<unsigned>(i)));
  const fs::path home = tmp_ / "home";
  // Slow it down so that it is killed in the middle; batches commit every 1000 files or 64 MiB,
  // so with 1 MiB files the journal gets records as the re-reads complete.
  const std::string cmd = "DLC_HOME=" + home.string() + " " + DLC_BINARY + " migrate " + src.string() + " " +
                          dst.string() + " --verify --bwlimit 12M --threads 1 >/dev/null 2>&1 & echo $!";
  RunResult bg = run_shell(cmd);
  const int pid = std::stoi(bg.out);
  fs::path journal;
  int verified = 0;
  for (int tries = 0; tries < 200 && verified < 1; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fs::exists(home / "migrate"))
      for (const auto& d : fs::directory_iterator(home / "migrate")) journal = d.path() / "journal.jsonl";
    if (!journal.empty() && fs::exists(journal)) {
      const std::string j = read_file(journal);
      verified = 0;
      for (std::size_t p = j.find("\"t\":\"v\""); p != std::string::npos; p = j.find("\"t\":\"v\"", p + 1))
        ++verified;
    }
  }
  ::kill(pid, SIGKILL);
  run_shell("while kill -0 " + std::to_string(pid) + " 2>/dev/null; do sleep 0.05; done");
  ASSERT_GE(verified, 1) << "the migration never recorded a verified file";
  // Which files were verified before the kill, and their inodes at the destination.
  std::map<std::string, ino_t> inodes;
  {
    const std::string j = read_file(journal);
    std::istringstream in(j);
    std::string line;
    while (std::getline(in, line)) {
      json rec;
      try {
        rec = json::parse(line);
      } catch (...) {
        continue;
      }
      if (rec.value("t", "") == "v") inodes[rec["p"]] = lstat_of(dst / rec["p"].get<std::string>()).st_ino;
    }
  }
  ASSERT_FALSE(inodes.empty());
  ASSERT_LT(inodes.size(), static_cast<std::size_t>(files)) << "killed too late to test resume";

  RunResult r = dlc({"--json", "migrate", src.string(), dst.string(), "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rep = report_json(r);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_TRUE(rep["transfer"]["resumed"].get<bool>());
  EXPECT_GE(rep["transfer"]["skipped_verified"].get<std::size_t>(), inodes.size());
  EXPECT_EQ(rep["transfer"]["sent"].get<std::size_t>() + rep["transfer"]["skipped_verified"].get<std::size_t>(),
            static_cast<std::size_t>(files));
  for (const auto& [p, ino] : inodes) EXPECT_EQ(lstat_of(dst / p).st_ino, ino) << p << " was sent again";
  for (int i = 0; i < files; ++i) {
    const std::string n = fname(i);
    EXPECT_EQ(read_file(dst / n), read_file(src / n)) << n;
  }
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(dst))
    EXPECT_EQ(e.path().filename().string().rfind(".dlc-tmp", 0), std::string::npos) << e.path();
}

// A hand-written labels manifest (docs/formats/labels.md) for two files.
void write_labels(const fs::path& file, const fs::path& src) {
  auto rec = [&](const std::string& name, int level, const std::string& cat, bool pi, json types) {
    struct stat st = lstat_of(src / name);
    return json{{"path", (src / name).lexically_normal().string()},
                {"size", st.st_size},
                {"status", "classified"},
                {"mtime_ns", static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec},
                {"level", level},
                {"category", cat},
                {"personal_information", pi},
                {"types", types}};
  };
  json doc = {{"format", "dlc-labels"},
              {"version", 1},
              {"files", json::array({rec("customers.csv", 3, "C2", true, {{"resident_id", 120}, {"mobile", 120}}),
                                     rec("readme.txt", 1, "none", false, json::object())})}};
  write_file(file, doc.dump());
}

void write_policy(const fs::path& file, const std::string& expires) {
  json p = {{"format", "dlc-residency-policy/1"},
            {"name", "cn-financial"},
            {"locations", {{"cn", {"cn-*"}}, {"hk", {"ap-east-1"}}, {"anywhere", {"*"}}}},
            {"default", "deny"},
            {"unlabelled", "refuse"},
            {"rules",
             {{{"id", "pi-stays-in-cn"}, {"when", {{"personal_information", true}}}, {"allow", {"cn"}}},
              {{"id", "l3-stays-in-cn"}, {"when", {{"min_level", 3}}}, {"allow", {"cn"}}},
              {{"id", "public"}, {"when", {{"max_level", 2}, {"personal_information", false}}}, {"allow", {"anywhere"}}}}},
            {"exceptions",
             {{{"assessment_id", "CAC-SA-2026-0042"}, {"expires", expires}, {"allow", {"hk"}}}}}};
  write_file(file, p.dump(2));
}

TEST_F(MigrateCli, ResidencyViolationMovesZeroBytesAndNamesPathsWithMaskedReasons) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  fs::create_directories(src);
  write_file(src / "customers.csv", "id,phone\n110105199001011234,13812345678\n");
  write_file(src / "readme.txt", "public\n");
  write_labels(tmp_ / "labels.json", src);
  write_policy(tmp_ / "policy.json", "2099-12-31");
  const std::vector<std::string> base = {"migrate", src.string(), dst.string(), "--verify",
                                         "--policy", (tmp_ / "policy.json").string(),
                                         "--labels", (tmp_ / "labels.json").string()};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  RunResult r = dlc(with({"--dest-region", "ap-east-1"}));
  EXPECT_EQ(r.exit_code, 3) << r.err << r.out;
  EXPECT_FALSE(fs::exists(dst)) << "the destination was touched";
  EXPECT_NE(r.err.find("customers.csv: level 3, C2 personal information (mobile x120, resident_id x120)"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rule pi-stays-in-cn allows only cn"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("readme.txt"), std::string::npos) << "public data may go anywhere: " << r.err;
  EXPECT_EQ(r.err.find("110105199001011234"), std::string::npos) << "raw value leaked";
  EXPECT_NE(read_file(tmp_ / "home/audit.jsonl").find("\"outcome\":\"refused\""), std::string::npos);

  // Unknown approvals are refused; a valid one allows Hong Kong.
  RunResult unknown = dlc(with({"--dest-region", "ap-east-1", "--approval", "NOPE-1"}));
  EXPECT_EQ(unknown.exit_code, 3) << unknown.err;
  EXPECT_FALSE(fs::exists(dst));
  RunResult approved = dlc(with({"--dest-region", "ap-east-1", "--approval", "CAC-SA-2026-0042"}));
  EXPECT_EQ(approved.exit_code, 0) << approved.err << approved.out;
  EXPECT_NE(approved.out.find("CAC-SA-2026-0042"), std::string::npos) << approved.out;
  EXPECT_EQ(read_file(dst / "customers.csv"), read_file(src / "customers.csv"));
}

TEST_F(MigrateCli, ExpiredApprovalAndUnknownRegionAreRefused) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  fs::create_directories(src);
  write_file(src / "customers.csv", "x\n");
  write_file(src / "readme.txt", "public\n");
  write_labels(tmp_ / "labels.json", src);
  write_policy(tmp_ / "policy.json", "2020-01-01");
  RunResult r = dlc({"migrate", src.string(), dst.string(), "--policy", (tmp_ / "policy.json").string(),
                     "--labels", (tmp_ / "labels.json").string(), "--dest-region", "ap-east-1", "--approval",
                     "CAC-SA-2026-0042"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("expired 2020-01-01"), std::string::npos) << r.err;
  RunResult noregion = dlc({"migrate", src.string(), dst.string(), "--policy", (tmp_ / "policy.json").string(),
                            "--labels", (tmp_ / "labels.json").string()});
  EXPECT_EQ(noregion.exit_code, 3) << noregion.err;
  EXPECT_NE(noregion.err.find("region is unknown"), std::string::npos) << noregion.err;
  // In China everything may go; an unlabelled file is refused by this policy.
  write_file(src / "new.txt", "not labelled\n");
  RunResult unl = dlc({"migrate", src.string(), dst.string(), "--policy", (tmp_ / "policy.json").string(),
                       "--labels", (tmp_ / "labels.json").string(), "--dest-region", "cn-north-1"});
  EXPECT_EQ(unl.exit_code, 3) << unl.err;
  EXPECT_NE(unl.err.find("new.txt: no current classification label"), std::string::npos) << unl.err;
  EXPECT_FALSE(fs::exists(dst));
}

TEST_F(MigrateCli, DryRunEstimatesAndWritesNothing) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  make_tree(src);
  RunResult r = dlc({"migrate", src.string(), dst.string(), "--verify", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("estimated duration"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("free space"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dst));
}

TEST_F(MigrateCli, NonEmptyForeignDestinationIsRefused) {
  const fs::path src = tmp_ / "src", dst = tmp_ / "dst";
  make_tree(src);
  fs::create_directories(dst);
  write_file(dst / "precious", "keep me");
  RunResult r = dlc({"migrate", src.string(), dst.string(), "--verify"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(read_file(dst / "precious"), "keep me");
  EXPECT_FALSE(fs::exists(dst / "plain.txt"));
  // A destination inside the source (or the other way round) would never end.
  RunResult inside = dlc({"migrate", src.string(), (src / "dir/copy").string()});
  EXPECT_EQ(inside.exit_code, 2) << inside.err;
  EXPECT_FALSE(fs::exists(src / "dir/copy"));
}

// ---- Remote, over loopback with certificates made here -------------------------------

class RemoteMigrate : public MigrateCli {
 protected:
  void SetUp() override {
    MigrateCli::SetUp();
    if (IsSkipped()) return;
    pki_ = tmp_ / "pki";
    fs::create_directories(pki_);
    const std::string script =
        "set -e; cd " + pki_.string() +
        "; mkca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key "
        "-out $1.pem -days 2 -subj /CN=$1 2>/dev/null; }; "
        "mkcert() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr "
        "-subj /CN=$1 2>/dev/null; printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' $3 > $1.ext; "
        "openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem -days 2 -extfile $1.ext "
        "2>/dev/null; }; mkca ca; mkca evil; mkcert server ca IP:127.0.0.1,DNS:localhost; mkcert client ca DNS:client; "
        "mkcert intruder evil DNS:client";
    RunResult g = run_shell(script);
    ASSERT_EQ(g.exit_code, 0) << g.err;
    root_ = tmp_ / "recv";
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      run_shell("while kill -0 " + std::to_string(pid_) + " 2>/dev/null; do sleep 0.05; done");
    }
  }
  // Starts a receiver; returns its port.
  // wrapper: a program the receiver runs under (without_io_uring).
  int start_receiver(const std::string& listen = "127.0.0.1:0", const std::string& extra = "",
                     const std::string& wrapper = "") {
    const fs::path port = tmp_ / ("port" + std::to_string(++n_));
    const std::string cmd = "DLC_HOME=" + (tmp_ / "rhome").string() + " " + wrapper + " " + DLC_BINARY +
                            " migrate receive --listen " + listen + " --root " + root_.string() +
                            " --region cn-north-1 --site bj-1 --tls-cert " + (pki_ / "server.pem").string() +
                            " --tls-key " + (pki_ / "server.key").string() + " --tls-ca " + (pki_ / "ca.pem").string() +
                            " --port-file " + port.string() + " " + extra + " >>" + (tmp_ / "recv.log").string() +
                            " 2>&1 & echo $!";
    pid_ = std::stoi(run_shell(cmd).out);
    for (int i = 0; i < 200 && !fs::exists(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    return std::stoi(read_file(port));
  }
  std::vector<std::string> client(const std::string& who) {
    return {"--tls-cert", (pki_ / (who + ".pem")).string(), "--tls-key", (pki_ / (who + ".key")).string(),
            "--tls-ca", (pki_ / "ca.pem").string()};
  }
  fs::path pki_, root_;
  int pid_ = -1, n_ = 0;
};

TEST_F(RemoteMigrate, MutualTlsMigrationVerifiesAndAttestsTheRegion) {
  const fs::path src = tmp_ / "src";
  make_tree(src);
  const int port = start_receiver();
  std::vector<std::string> a = {"--json", "migrate", src.string(), "dlc://127.0.0.1:" + std::to_string(port) + "/t42",
                                "--verify", "--tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"};
  for (const auto& c : client("client")) a.push_back(c);
  RunResult r = dlc(a);
  ASSERT_EQ(r.exit_code, 0) << r.err << read_file(tmp_ / "recv.log");
  const json rep = report_json(r);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_EQ(rep["destination"]["region"], "cn-north-1");
  EXPECT_NE(rep["destination"]["region_source"].get<std::string>().find("receiver attestation"), std::string::npos);
  EXPECT_EQ(read_file(root_ / "t42/dir/data.bin"), read_file(src / "dir/data.bin"));
  EXPECT_EQ(lstat_of(root_ / "t42/plain.txt").st_ino, lstat_of(root_ / "t42/dir/hard.txt").st_ino);
  EXPECT_EQ(fs::read_symlink(root_ / "t42/dir/link"), "../plain.txt");
  // The receiver says where its time went, and that it re-read every byte sent.
  const json& recv_prof = rep["transfer"]["profile"]["receiver"];
  EXPECT_EQ(recv_prof["reread_bytes"], rep["transfer"]["bytes_sent"]) << rep["transfer"].dump();
  EXPECT_TRUE(recv_prof["write_ms"].is_number_unsigned()) << recv_prof.dump();

  // Re-running sends nothing; a wrong pin is refused before anything is sent.
  RunResult again = dlc(a);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(report_json(again)["transfer"]["sent"], 0);
  a.push_back("--tls-pin");
  a.push_back(std::string(64, 'a'));
  RunResult pinned = dlc(a);
  EXPECT_EQ(pinned.exit_code, 5) << pinned.err;
  EXPECT_NE(pinned.err.find("pinned"), std::string::npos) << pinned.err;
}

TEST_F(RemoteMigrate, WrongClientCertificateIsRefusedAndNothingIsWritten) {
  const fs::path src = tmp_ / "src";
  fs::create_directories(src);
  write_file(src / "secret.csv", "a,b\n");
  const int port = start_receiver();
  std::vector<std::string> a = {"migrate", src.string(), "dlc://127.0.0.1:" + std::to_string(port) + "/t1", "--verify"};
  for (const auto& c : client("intruder")) a.push_back(c);
  RunResult r = dlc(a);
  EXPECT_EQ(r.exit_code, 5) << r.err << r.out;
  EXPECT_FALSE(fs::exists(root_ / "t1"));
  // A residency policy that keeps PI in China passes for this receiver (it attests cn-north-1).
  std::vector<std::string> b = {"migrate", src.string(), "dlc://127.0.0.1:" + std::to_string(port) + "/t1", "--verify"};
  for (const auto& c : client("client")) b.push_back(c);
  RunResult ok = dlc(b);
  EXPECT_EQ(ok.exit_code, 0) << ok.err << read_file(tmp_ / "recv.log");
  EXPECT_TRUE(fs::exists(root_ / "t1/secret.csv"));
}

TEST_F(RemoteMigrate, ADroppedLinkResumesWithoutResendingVerifiedFiles) {
  const fs::path src = tmp_ / "src";
  fs::create_directories(src);
  const int files = 40;
  for (int i = 0; i < files; ++i) write_file(src / fname(i), random_bytes(1 << 20, static_cast<unsigned>(i)));
  const int port = start_receiver();
  const std::string url = "dlc://127.0.0.1:" + std::to_string(port) + "/t7";
  std::string cmd = "DLC_HOME=" + (tmp_ / "home").string() + " " + DLC_BINARY + " migrate " + src.string() + " " +
                    url + " --verify --bwlimit 10M --threads 1";
  for (const auto& c : client("client")) cmd += " " + c;
  cmd += " >" + (tmp_ / "sender.log").string() + " 2>&1; echo $? >" + (tmp_ / "sender.rc").string();
  run_shell("(" + cmd + ") >/dev/null 2>&1 &");
  // Wait until some files are verified, then drop the link by killing the receiver.
  int verified = 0;
  for (int tries = 0; tries < 200 && verified < 1; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    verified = 0;
    if (fs::exists(tmp_ / "home/migrate"))
      for (const auto& d : fs::directory_iterator(tmp_ / "home/migrate")) {
        const fs::path j = d.path() / "journal.jsonl";
        if (!fs::exists(j)) continue;
        const std::string text = read_file(j);
        for (std::size_t p = text.find("\"t\":\"v\""); p != std::string::npos; p = text.find("\"t\":\"v\"", p + 1))
          ++verified;
      }
  }
  ::kill(pid_, SIGKILL);
  run_shell("while kill -0 " + std::to_string(pid_) + " 2>/dev/null; do sleep 0.05; done");
  pid_ = -1;
  for (int i = 0; i < 400 && !fs::exists(tmp_ / "sender.rc"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(verified, 1);
  ASSERT_TRUE(fs::exists(tmp_ / "sender.rc"));
  EXPECT_EQ(read_file(tmp_ / "sender.rc"), "4\n") << read_file(tmp_ / "sender.log");
  // The receiver comes back on the same address; the same command resumes.
  start_receiver("127.0.0.1:" + std::to_string(port));
  std::vector<std::string> a = {"--json", "migrate", src.string(), url, "--verify"};
  for (const auto& c : client("client")) a.push_back(c);
  RunResult r = dlc(a);
  ASSERT_EQ(r.exit_code, 0) << r.err << read_file(tmp_ / "recv.log");
  const json rep = report_json(r);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_GE(rep["transfer"]["skipped_verified"].get<int>(), verified);
  EXPECT_EQ(rep["transfer"]["sent"].get<int>() + rep["transfer"]["skipped_verified"].get<int>(), files);
  for (int i = 0; i < files; ++i) EXPECT_EQ(read_file(root_ / "t7" / fname(i)), read_file(src / fname(i)));
}

// ---- Remote volumes ---------------------------------------------------------------------

int count_verified(const fs::path& home) {
  int verified = 0;
  if (!fs::exists(home / "migrate")) return 0;
  for (const auto& d : fs::directory_iterator(home / "migrate")) {
    const fs::path j = d.path() / "journal.jsonl";
    if (!fs::exists(j)) continue;
    const std::string text = read_file(j);
    for (std::size_t p = text.find("\"t\":\"v\""); p != std::string::npos; p = text.find("\"t\":\"v\"", p + 1))
      ++verified;
  }
  return verified;
}

void flip_byte(const fs::path& p, std::uint64_t offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x04));
}

TEST_F(RemoteMigrate, AVolumeImageResumesAfterTheReceiverIsKilledAndAFlippedByteIsCaught) {
  const fs::path img = tmp_ / "disk.img";
  const int chunks = 5;
  const std::string data = random_bytes((4u << 25) + 3 * 4096 + 123, 11);  // 4 whole chunks and an unaligned tail
  write_file(img, data);
  const int port = start_receiver();
  const std::string url = "dlc://127.0.0.1:" + std::to_string(port) + "/vols/t9/disk.img";
  std::string cmd = "DLC_HOME=" + (tmp_ / "home").string() + " " + DLC_BINARY + " migrate " + img.string() + " " +
                    url + " --verify --bwlimit 24M --threads 1";
  for (const auto& c : client("client")) cmd += " " + c;
  cmd += " >" + (tmp_ / "sender.log").string() + " 2>&1; echo $? >" + (tmp_ / "sender.rc").string();
  run_shell("(" + cmd + ") >/dev/null 2>&1 &");
  // Once a chunk is verified (re-read from the receiver's storage), drop the link.
  int verified = 0;
  for (int tries = 0; tries < 400 && verified < 1; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    verified = count_verified(tmp_ / "home");
  }
  ::kill(pid_, SIGKILL);
  run_shell("while kill -0 " + std::to_string(pid_) + " 2>/dev/null; do sleep 0.05; done");
  pid_ = -1;
  for (int i = 0; i < 400 && !fs::exists(tmp_ / "sender.rc"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(verified, 1);
  ASSERT_LT(verified, chunks) << "the transfer finished before the receiver was killed";
  ASSERT_TRUE(fs::exists(tmp_ / "sender.rc"));
  EXPECT_EQ(read_file(tmp_ / "sender.rc"), "4\n") << read_file(tmp_ / "sender.log");

  // The receiver comes back; the same command sends only what was not verified.
  start_receiver("127.0.0.1:" + std::to_string(port));
  std::vector<std::string> a = {"--json", "migrate", img.string(), url, "--verify"};
  for (const auto& c : client("client")) a.push_back(c);
  RunResult r = dlc(a);
  ASSERT_EQ(r.exit_code, 0) << r.err << read_file(tmp_ / "recv.log");
  json rep = report_json(r);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_EQ(rep["transfer"]["unit"], "chunk");
  EXPECT_TRUE(rep["transfer"]["resumed"].get<bool>());
  EXPECT_GE(rep["transfer"]["skipped_verified"].get<int>(), verified);
  EXPECT_EQ(rep["transfer"]["sent"].get<int>() + rep["transfer"]["skipped_verified"].get<int>(), chunks);
  EXPECT_EQ(rep["source"]["merkle_root"], rep["destination"]["merkle_root"]);
  EXPECT_EQ(rep["source"]["kind"], "volume");
  EXPECT_EQ(rep["destination"]["region"], "cn-north-1");
  EXPECT_EQ(rep["destination"]["attestation"]["root"], (root_ / "vols/t9/disk.img").string());
  EXPECT_TRUE(rep["signature"].is_object());
  EXPECT_EQ(read_file(root_ / "vols/t9/disk.img"), data);
  const std::string manifest = rep["source"]["manifest"];

  // A byte flipped at rest in the received image: the next run re-reads the
  // receiver's storage, names the chunk, and the run after that re-sends it only.
  flip_byte(root_ / "vols/t9/disk.img", (2u << 25) + 77);
  RunResult bad = dlc(a);
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  rep = report_json(bad);
  EXPECT_EQ(rep["outcome"], "verification-failed");
  EXPECT_NE(rep["verification"].dump().find("67108864"), std::string::npos) << rep["verification"].dump();
  // Verifying later, at the receiver, against the signed source manifest sees it too.
  RunResult later = dlc({"verify", "migration", "--manifest", manifest, (root_ / "vols/t9/disk.img").string()});
  EXPECT_EQ(later.exit_code, 1) << later.out << later.err;
  RunResult fixed = dlc(a);
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  rep = report_json(fixed);
  EXPECT_EQ(rep["transfer"]["sent"], 1);
  EXPECT_EQ(read_file(root_ / "vols/t9/disk.img"), data);
  later = dlc({"verify", "migration", "--manifest", manifest, (root_ / "vols/t9/disk.img").string()});
  EXPECT_EQ(later.exit_code, 0) << later.out << later.err;
}

// Where io_uring is refused (a container runtime's seccomp profile,
// kernel.io_uring_disabled), both ends fall back: the io engine to
// pread/pwrite, the receiver's durable batches to syncing threads.
TEST_F(RemoteMigrate, WithoutIoUringBothEndsFallBackAndATreeAndAVolumeVerify) {
  const fs::path src = tmp_ / "src";
  make_tree(src);
  const fs::path img = tmp_ / "disk.img";
  const std::string data = random_bytes((1u << 25) + 4096 + 77, 5);  // two chunks, the last with an unaligned tail
  write_file(img, data);
  const int port = start_receiver("127.0.0.1:0", "", DLC_WITHOUT_IO_URING);
  const std::string base = "dlc://127.0.0.1:" + std::to_string(port);
  auto migrate = [&](const std::string& from, const std::string& to) {
    std::string cmd = "DLC_HOME=" + (tmp_ / "home").string() + " " + DLC_WITHOUT_IO_URING + " " + DLC_BINARY +
                      " --json migrate " + from + " " + to + " --verify";
    for (const auto& c : client("client")) cmd += " " + c;
    return run_shell(cmd);
  };
  RunResult tree = migrate(src.string(), base + "/t");
  ASSERT_EQ(tree.exit_code, 0) << tree.err << read_file(tmp_ / "recv.log");
  EXPECT_EQ(report_json(tree)["outcome"], "verified");
  EXPECT_EQ(read_file(root_ / "t/dir/data.bin"), read_file(src / "dir/data.bin"));
  RunResult vol = migrate(img.string(), base + "/v/disk.img");
  ASSERT_EQ(vol.exit_code, 0) << vol.err << read_file(tmp_ / "recv.log");
  const json rep = report_json(vol);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_EQ(rep["source"]["merkle_root"], rep["destination"]["merkle_root"]);
  EXPECT_EQ(read_file(root_ / "v/disk.img"), data);
  // Both ends really ran without io_uring, and said so.
  EXPECT_NE(vol.err.find("io_uring unavailable"), std::string::npos) << vol.err;
  EXPECT_NE(read_file(tmp_ / "recv.log").find("io_uring unavailable"), std::string::npos) << read_file(tmp_ / "recv.log");
}

TEST_F(RemoteMigrate, ADeviceIsWrittenOnlyWhenTheReceiverAllowsIt) {
  DLC_REQUIRE_LOOP_DEVICES();
  LoopDevice src(64u << 20), dst(96u << 20);
  const std::string data = random_bytes(64u << 20, 21);
  {
    const int fd = ::open(src.device().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    ::fsync(fd);
    ::close(fd);
  }
  auto head = [&](const std::string& dev) {
    std::string s(4096, '\0');
    const int fd = ::open(dev.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, s.data(), s.size(), 0), 4096);
    ::close(fd);
    return s;
  };
  int port = start_receiver();
  const std::string url = "dlc://127.0.0.1:" + std::to_string(port) + "/" + dst.device();  // dlc://H:P//dev/loopN
  std::vector<std::string> a = {"--json", "migrate", src.device(), url, "--verify"};
  for (const auto& c : client("client")) a.push_back(c);
  RunResult refused = dlc(a);
  EXPECT_EQ(refused.exit_code, 3) << refused.err << refused.out;
  EXPECT_NE(refused.err.find("--allow-device"), std::string::npos) << refused.err;
  EXPECT_EQ(head(dst.device()), std::string(4096, '\0'));

  ::kill(pid_, SIGTERM);
  run_shell("while kill -0 " + std::to_string(pid_) + " 2>/dev/null; do sleep 0.05; done");
  port = start_receiver("127.0.0.1:" + std::to_string(port), "--allow-device " + dst.device());
  RunResult r = dlc(a);
  ASSERT_EQ(r.exit_code, 0) << r.err << read_file(tmp_ / "recv.log");
  const json rep = report_json(r);
  EXPECT_EQ(rep["outcome"], "verified");
  EXPECT_EQ(rep["source"]["merkle_root"], rep["destination"]["merkle_root"]);
  EXPECT_EQ(rep["transfer"]["sent"], 2);
  EXPECT_EQ(head(dst.device()), data.substr(0, 4096));
  // The receiver's audit log names the session as a volume.
  EXPECT_NE(read_file(tmp_ / "rhome/audit.jsonl").find("\"kind\":\"volume\""), std::string::npos);
}

}  // namespace
}  // namespace dlc::test
