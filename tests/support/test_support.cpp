#include "support/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace dlc::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dlc-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

static std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool LoopDevice::available(std::string* why) {
  if (::geteuid() != 0) {
    if (why) *why = "loop-device tests need root (run the README's test command as root)";
    return false;
  }
  if (::access("/dev/loop-control", R_OK | W_OK) != 0) {
    if (why) *why = "/dev/loop-control is not available on this machine";
    return false;
  }
  return true;
}

LoopDevice::LoopDevice(std::uint64_t size, bool direct_io) {
  file_ = dir_.path() / "backing.img";
  int fd = ::open(file_.c_str(), O_CREAT | O_RDWR | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + file_.string());
  // Fully allocate, so direct I/O measures the disk, not holes.
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot allocate " + file_.string());
  std::string cmd = "losetup --find --show ";
  if (direct_io) cmd += "--direct-io=on ";
  cmd += file_.string();
  RunResult r = run_shell(cmd);
  if (r.exit_code != 0) throw std::runtime_error("losetup failed: " + r.err);
  device_ = trim(r.out);
}

LoopDevice::~LoopDevice() {
  if (!device_.empty()) run_shell("losetup -d " + device_);
}

static RunResult spawn_capture(const std::vector<std::string>& argv, const std::string& input,
                               const std::vector<std::string>& envp) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : envp) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, av[0], &fa, nullptr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot start " + argv[0]);
  }
  RunResult r;
  size_t written = 0;
  if (input.empty()) {
    ::close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0 || in_pipe[1] >= 0) {
    pollfd p[3];
    int n = 0;
    if (out_pipe[0] >= 0) p[n++] = {out_pipe[0], POLLIN, 0};
    if (err_pipe[0] >= 0) p[n++] = {err_pipe[0], POLLIN, 0};
    if (in_pipe[1] >= 0) p[n++] = {in_pipe[1], POLLOUT, 0};
    if (::poll(p, n, -1) < 0) break;
    for (int i = 0; i < n; ++i) {
      if (!p[i].revents) continue;
      if (p[i].fd == in_pipe[1]) {
        ssize_t w = ::write(in_pipe[1], input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == input.size()) {
          ::close(in_pipe[1]);
          in_pipe[1] = -1;
        }
        continue;
      }
      ssize_t got = ::read(p[i].fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(p[i].fd);
        if (p[i].fd == out_pipe[0]) out_pipe[0] = -1; else err_pipe[0] = -1;
        --open_fds;
        continue;
      }
      (p[i].fd == out_pipe[0] ? r.out : r.err).append(buf, static_cast<size_t>(got));
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

static const fs::path& default_home() {
  static TempDir* home = new TempDir();  // lives for the whole test process
  return home->path();
}

RunResult run_dlc(const std::vector<std::string>& args, const std::string& input,
                  const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{DLC_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  vars["DLC_HOME"] = default_home().string();
  for (const auto& [k, v] : env) vars[k] = v;
  std::vector<std::string> envp;
  for (const auto& [k, v] : vars) envp.push_back(k + "=" + v);
  return spawn_capture(argv, input, envp);
}

RunResult run_shell(const std::string& command) {
  std::vector<std::string> envp;
  for (char** e = environ; *e; ++e) envp.emplace_back(*e);
  return spawn_capture({"/bin/sh", "-c", command}, {}, envp);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + p.string());
  out << content;
}

}  // namespace dlc::test
