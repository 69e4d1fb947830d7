// Files, directory trees and free space: overwrite in place through the io
// engine (O_DIRECT where the filesystem allows), verify, then remove the names;
// every result carries what the filesystem and medium let an overwrite achieve.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/crypto.h"
#include "core/error.h"
#include "core/io_engine.h"
#include "wipe/erase_method.h"
#include "wipe/fs_facts.h"
#include "wipe/job.h"
#include "wipe/pattern.h"
#include "wipe/util.h"
#include "wipe/wipe.h"

namespace dlc::wipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::uint64_t kAlign = 4096;
constexpr std::uint64_t kProgressMin = 16u << 20;

bool any_random(const MethodPlan& plan) {
  for (const auto& p : plan.passes)
    if (p.kind == PatternKind::random) return true;
  return false;
}

// The data extents of an open file (SEEK_DATA/SEEK_HOLE), widened to 4 KiB
// boundaries so the slack after the last byte of each block is covered too.
std::vector<io::Extent> data_extents(int fd, std::uint64_t size) {
  std::vector<io::Extent> out;
  if (size == 0) return out;
  auto add = [&](std::uint64_t a, std::uint64_t b) {
    a = a / kAlign * kAlign;
    b = (b + kAlign - 1) / kAlign * kAlign;
    if (!out.empty() && out.back().offset + out.back().length >= a) {
      std::uint64_t end = std::max(out.back().offset + out.back().length, b);
      out.back().length = end - out.back().offset;
    } else if (b > a) {
      out.push_back({a, b - a});
    }
  };
  off_t pos = 0;
  while (static_cast<std::uint64_t>(pos) < size) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      out.clear();                // SEEK_DATA unsupported: the whole file
      add(0, size);
      return out;
    }
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size);
    add(static_cast<std::uint64_t>(data), std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), size));
    pos = hole;
  }
  return out;
}

// Renames path to a random name of the same length in the same directory (so
// the old name is overwritten where the filesystem rewrites the entry in
// place), then removes it; fsyncs the directory after each step.
void remove_name(const fs::path& path, bool is_dir) {
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::size_t len = std::min<std::size_t>(std::max<std::size_t>(path.filename().string().size(), 1), 255);
  fs::path tmp;
  for (int tries = 0; tries < 16; ++tries) {
    tmp = dir / util::random_name(len);
    if (::renameat2(AT_FDCWD, path.c_str(), AT_FDCWD, tmp.c_str(), RENAME_NOREPLACE) == 0) break;
    if (errno != EEXIST) throw_errno("cannot rename before removal", path.string());
    tmp.clear();
  }
  if (tmp.empty()) tmp = path;
  fsync_dir(dir);
  if ((is_dir ? ::rmdir(tmp.c_str()) : ::unlink(tmp.c_str())) != 0)
    throw_errno(is_dir ? "cannot remove directory" : "cannot unlink", path.string());
  fsync_dir(dir);
}

// remove_name for many entries of one directory: all renamed, one fsync, all
// removed, one fsync (a tree of small files is bound by fsync latency).
void remove_names(const fs::path& dir, const std::vector<std::pair<std::string, bool>>& entries) {
  if (entries.empty()) return;
  std::vector<std::pair<fs::path, bool>> renamed;
  for (const auto& [name, is_dir] : entries) {
    fs::path from = dir / name, to;
    std::size_t len = std::min<std::size_t>(std::max<std::size_t>(name.size(), 1), 255);
    for (int tries = 0; tries < 16; ++tries) {
      to = dir / util::random_name(len);
      if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) break;
      if (errno != EEXIST) throw_errno("cannot rename before removal", from.string());
      to.clear();
    }
    renamed.emplace_back(to.empty() ? from : to, is_dir);
  }
  fsync_dir(dir);
  for (const auto& [p, is_dir] : renamed)
    if ((is_dir ? ::rmdir(p.c_str()) : ::unlink(p.c_str())) != 0)
      throw_errno(is_dir ? "cannot remove directory" : "cannot unlink", p.string());
  fsync_dir(dir);
}

struct FileResult {
  Evidence ev;
  FsFacts facts;
  std::uint64_t size = 0;
  std::uint64_t inode = 0;
  bool verified = true;
  bool removed = false;
};

// Overwrites one regular file (already lstat'ed as expect) and, unless the
// verification failed, truncates, renames and unlinks it.
FileResult overwrite_file(const fs::path& path, const struct stat& expect, const WipeOptions& opts,
                          const MethodPlan& plan, crypto::ByteView seed, ProgressSink& progress,
                          bool remove = true) {
  FileResult r;
  io::OpenOptions oo;
  oo.mode = io::OpenMode::read_write;
  oo.direct = true;
  oo.no_follow = true;  // a symlink swapped in after the lstat is refused at the open
  io::File file = io::File::open(path.string(), oo);
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) throw_errno("cannot stat", path.string());
  if (st.st_dev != expect.st_dev || st.st_ino != expect.st_ino || !S_ISREG(st.st_mode))
    throw Error(Errc::refused, "refusing to wipe", path.string(),
                "the file changed between the check and the open (a symlink swapped in?)",
                "check who else writes to this directory");
  r.size = static_cast<std::uint64_t>(st.st_size);
  r.inode = st.st_ino;
  file.sync();  // delayed allocation: give every byte its block before mapping extents
  r.facts = examine_fs(path.string(), file.fd(), true);

  EraseTarget target;
  target.kind = "file";
  target.path = path.string();
  target.file = &file;
  target.extents = data_extents(file.fd(), r.size);
  target.sector = 512;
  auto method = make_overwrite_method(plan);
  ProgressSink& prog = r.size >= kProgressMin ? progress : null_progress();
  EraseContext ctx{target, opts, seed, nullptr, prog, path.filename().string(), &stop_requested()};
  r.ev = method->run(ctx);
  r.ev.extra["extents"] = target.extents.size();
  r.ev.extra["bytes_covered"] = target.bytes();
  r.verified = r.ev.verification_passed;
  if (!r.verified) return r;  // keep it for a retry; the report says why

  // The truncate reaches the disk with the directory fsyncs of remove_name
  // (one journal transaction); the overwritten data was synced already.
  if (::ftruncate(file.fd(), 0) != 0) throw_errno("cannot truncate", path.string());
  file = io::File();  // close before the rename
  if (remove) {
    remove_name(path, false);
    r.removed = true;
  }
  return r;
}

struct Job {
  const WipeOptions& opts;
  MethodPlan plan;
  SecureBuffer seed;
  JobAudit audit;
  Job(const WipeOptions& o)
      : opts(o),
        plan(plan_method(o.method, o.passes, o.final_zero, o.verify, o.sample_percent)),
        seed(draw_job_seed(o)),
        audit(o) {}
};

void set_outcome(TargetReport& rep, bool verified, const std::string& assurance) {
  if (!verified) {
    rep.outcome = "verification-failed";
    rep.code = Errc::check_failed;
    rep.error = "read-back verification found bytes that do not hold the pattern; the file was kept";
  } else if (assurance == "none") {
    rep.outcome = "overwritten-not-erased";
    rep.code = Errc::check_failed;
    rep.error = "the overwrite succeeded but this filesystem keeps the old blocks elsewhere; see the notes";
  } else {
    rep.outcome = "sanitized";
    rep.code = Errc::ok;
  }
}

CertificateInput base_input(Job& job, const std::string& kind, const std::string& path,
                            const std::string& started) {
  CertificateInput in;
  in.id = util::random_uuid();
  in.target_kind = kind;
  in.path = path;
  in.media_type = kind;
  in.category = Category::clear;
  in.method = job.plan.method;
  in.technique = "overwrite; " + job.plan.describe();
  in.started_at = started;
  if (any_random(job.plan)) in.seed_commitment = seed_commitment(job.seed.span());
  return in;
}

TargetReport wipe_one_file(Job& job, const std::string& p) {
  TargetReport rep;
  rep.kind = "file";
  rep.path = p;
  const std::string started = now_rfc3339(3);
  try {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw_errno("cannot find", p);
    if (S_ISLNK(st.st_mode))
      throw Error(Errc::refused, "refusing to follow a symbolic link", p, {},
                  "name the target file itself (dlc never follows symlinks)");
    if (S_ISDIR(st.st_mode))
      throw Error(Errc::usage, "is a directory", p, {}, "use 'dlc wipe dir'");
    if (S_ISBLK(st.st_mode))
      throw Error(Errc::usage, "is a block device", p, {}, "use 'dlc wipe device'");
    if (!S_ISREG(st.st_mode))
      throw Error(Errc::usage, "not a regular file", p, {}, "only regular files can be overwritten");
    if (st.st_nlink > 1 && !job.opts.force)
      throw Error(Errc::refused, "refusing to wipe a file with several hard links", p,
                  std::to_string(st.st_nlink) + " names share its data; the other names would keep "
                  "pointing at the wiped data",
                  "remove the other links, or pass --force to overwrite anyway");
    rep.identity = {{"path", p}, {"size_bytes", st.st_size}, {"inode", st.st_ino},
                    {"links", st.st_nlink}};
    job.audit.record("wipe file", p, "started", {{"plan", job.plan.to_json()}, {"size", st.st_size}});
    FileResult fr = overwrite_file(p, st, job.opts, job.plan, job.seed.span(), progress_of(job.opts));
    rep.identity["filesystem"] = fr.facts.to_json();
    rep.warnings = fr.facts.warnings();
    if (st.st_nlink > 1)
      rep.warnings.push_back("the file had " + std::to_string(st.st_nlink) +
                             " hard links; the other names remain (now pointing at no data)");
    if (!fr.ev.extra.value("direct_io", true))
      rep.warnings.push_back("the filesystem refused O_DIRECT: the overwrite went through the page "
                             "cache, was fsynced, and the cache was dropped before the read-back");
    rep.evidence = {{"passes", fr.ev.passes},
                    {"verification", fr.ev.verification},
                    {"bytes_written", fr.ev.bytes_written},
                    {"io", fr.ev.extra},
                    {"removed", fr.removed},
                    {"plan", job.plan.to_json()}};
    set_outcome(rep, fr.verified, fr.facts.assurance());
    rep.evidence["assurance"] = fr.facts.assurance();

    CertificateInput in = base_input(job, "file", p, started);
    in.media = rep.identity;
    in.evidence = fr.ev;
    in.outcome = rep.outcome;
    in.finished_at = now_rfc3339(3);
    in.warnings = rep.warnings;
    in.evidence.extra["assurance"] = fr.facts.assurance();
    issue_certificate(in, job.opts, job.audit, "wipe file", rep.code == Errc::ok ? "ok" : "failed", rep);
  } catch (const std::exception& e) {
    record_failure(rep, e);
    try {
      job.audit.record("wipe file", p, rep.outcome, {{"error", rep.error}});
    } catch (const std::exception&) {
    }
  }
  return rep;
}

// ---- Directories ------------------------------------------------------------------

struct DirStats {
  std::uint64_t files = 0, bytes = 0, dirs = 0, other_names = 0;
  std::uint64_t bytes_written = 0, bytes_verified = 0;
  bool verified = true;
  std::string worst_assurance = "full";
  std::vector<std::string> problems;     // one per entry not wiped
  std::vector<std::string> warnings;     // de-duplicated facts
  json first_mismatches = json::array();
  Errc code = Errc::ok;
};

void note_assurance(DirStats& s, const std::string& a) {
  auto rank = [](const std::string& x) { return x == "none" ? 2 : x == "limited" ? 1 : 0; };
  if (rank(a) > rank(s.worst_assurance)) s.worst_assurance = a;
}

void add_warning(DirStats& s, const std::string& w) {
  for (const auto& x : s.warnings)
    if (x == w) return;
  s.warnings.push_back(w);
}

void walk(Job& job, const fs::path& dir, dev_t root_dev, DirStats& s, int depth) {
  if (depth > 4096) throw Error(Errc::io, "directory tree too deep", dir.string());
  if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted", dir.string());
  std::vector<std::string> names;
  {
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw_errno("cannot read directory", dir.string());
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::vector<std::pair<std::string, bool>> removable;  // wiped entries: (name, is_dir)
  for (const auto& n : names) {
    fs::path p = dir / n;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      s.problems.push_back(p.string() + ": " + std::strerror(errno));
      s.code = Errc::io;
      continue;
    }
    try {
      if (S_ISDIR(st.st_mode)) {
        if (st.st_dev != root_dev) {
          s.problems.push_back(p.string() + ": another filesystem is mounted here; not crossed");
          s.code = Errc::refused;
          continue;
        }
        std::size_t before = s.problems.size();
        walk(job, p, root_dev, s, depth + 1);
        if (s.problems.size() == before) {
          removable.emplace_back(n, true);
          ++s.dirs;
        }
      } else if (S_ISREG(st.st_mode)) {
        if (st.st_nlink > 1 && !job.opts.force) {
          s.problems.push_back(p.string() + ": has " + std::to_string(st.st_nlink) +
                               " hard links; not wiped (pass --force to overwrite it anyway)");
          s.code = Errc::refused;
          continue;
        }
        FileResult fr =
            overwrite_file(p, st, job.opts, job.plan, job.seed.span(), null_progress(), false);
        ++s.files;
        s.bytes += fr.size;
        s.bytes_written += fr.ev.bytes_written;
        s.bytes_verified += fr.ev.bytes_verified;
        note_assurance(s, fr.facts.assurance());
        for (const auto& w : fr.facts.warnings()) add_warning(s, w);
        if (!fr.verified) {
          s.verified = false;
          s.problems.push_back(p.string() + ": verification failed; kept");
          for (const auto& m : fr.ev.verification.value("first_mismatches", json::array()))
            if (s.first_mismatches.size() < 16) {
              json mm = m;
              mm["file"] = p.string();
              s.first_mismatches.push_back(mm);
            }
          if (s.code == Errc::ok) s.code = Errc::check_failed;
        } else {
          removable.emplace_back(n, false);
        }
      } else {
        // Symlinks, fifos, sockets, device nodes: the name goes, the target is
        // never opened.
        removable.emplace_back(n, false);
        ++s.other_names;
      }
    } catch (const Error& e) {
      if (e.code() == Errc::interrupted) throw;
      s.problems.push_back(p.string() + ": " + e.what());
      if (s.code == Errc::ok || s.code == Errc::check_failed) s.code = e.code();
    }
  }
  remove_names(dir, removable);
}

bool is_mountpoint(const std::string& path) {
  std::error_code ec;
  std::string real = fs::weakly_canonical(path, ec).string();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string f[5];
    for (auto& x : f) ss >> x;
    if (util::unescape_octal(f[4]) == real) return true;
  }
  return false;
}

}  // namespace

JobReport wipe_files(const std::vector<std::string>& paths, const WipeOptions& opts) {
  JobReport report;
  report.command = "wipe file";
  report.started_at = now_rfc3339(3);
  if (paths.empty()) throw Error(Errc::usage, "no file given");
  Job job(opts);
  for (const auto& p : paths) {
    report.targets.push_back(wipe_one_file(job, p));
    if (report.targets.back().code == Errc::interrupted) break;
  }
  report.code = worst(report.targets);
  report.finished_at = now_rfc3339(3);
  return report;
}

JobReport wipe_dir(const std::string& path, const WipeOptions& opts) {
  JobReport report;
  report.command = "wipe dir";
  report.started_at = now_rfc3339(3);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw_errno("cannot find", path);
  if (S_ISLNK(st.st_mode))
    throw Error(Errc::refused, "refusing to follow a symbolic link", path, {},
                "name the directory itself (dlc never follows symlinks)");
  if (!S_ISDIR(st.st_mode)) throw Error(Errc::usage, "not a directory", path, {}, "use 'dlc wipe file'");
  std::error_code ec;
  const std::string real = fs::weakly_canonical(path, ec).string();
  if (real == "/" || is_mountpoint(path))
    throw Error(Errc::refused, "refusing to wipe a mount point or the root directory", path, {},
                "wipe the directories inside it, or use 'dlc wipe free-space' / 'dlc wipe device'");
  Job job(opts);
  TargetReport rep;
  rep.kind = "directory";
  rep.path = path;
  const std::string started = now_rfc3339(3);
  DirStats s;
  try {
    job.audit.record("wipe dir", path, "started", {{"plan", job.plan.to_json()}});
    walk(job, path, st.st_dev, s, 0);
    if (s.problems.empty()) {
      remove_name(path, true);
      ++s.dirs;
    }
  } catch (const std::exception& e) {
    record_failure(rep, e);
  }
  rep.identity = {{"path", path}, {"files", s.files}, {"bytes", s.bytes}, {"directories", s.dirs},
                  {"other_names", s.other_names}};
  rep.warnings = s.warnings;
  rep.warnings.push_back(
      "names: every entry was renamed to a random name of the same length before removal; "
      "filesystems may still keep old names in freed directory blocks and in their journal. "
      "Run 'dlc wipe free-space' on the filesystem afterwards to overwrite freed blocks.");
  json verification = {{"method", job.plan.verify == VerifyMode::none ? "none"
                                  : job.plan.sample_percent >= 100 ? "full read-back" : "sampling"},
                       {"result", job.plan.verify == VerifyMode::none ? "not-performed"
                                  : s.verified ? "passed" : "failed"},
                       {"bytes_verified", s.bytes_verified},
                       {"first_mismatches", s.first_mismatches}};
  rep.evidence = {{"plan", job.plan.to_json()},       {"bytes_written", s.bytes_written},
                  {"verification", verification},     {"problems", s.problems},
                  {"assurance", s.worst_assurance}};
  if (rep.outcome.empty()) {
    if (!s.problems.empty() && s.verified) {
      rep.outcome = "failed";
      rep.code = s.code == Errc::ok ? Errc::io : s.code;
      rep.error = std::to_string(s.problems.size()) + " entries were not wiped (first: " +
                  s.problems.front() + ")";
    } else {
      set_outcome(rep, s.verified, s.worst_assurance);
      if (!s.problems.empty()) rep.error = s.problems.front();
    }
  }
  try {
    CertificateInput in = base_input(job, "directory", path, started);
    in.media = rep.identity;
    in.evidence.passes = json::array();
    in.evidence.verification = verification;
    in.evidence.bytes_written = s.bytes_written;
    in.evidence.extra = {{"files", s.files}, {"assurance", s.worst_assurance},
                         {"entries_not_wiped", s.problems.size()}};
    in.outcome = rep.outcome;
    in.finished_at = now_rfc3339(3);
    in.warnings = rep.warnings;
    if (rep.outcome != "interrupted")
      issue_certificate(in, opts, job.audit, "wipe dir", rep.code == Errc::ok ? "ok" : "failed", rep);
    else
      job.audit.record("wipe dir", path, "interrupted", {{"files_done", s.files}});
  } catch (const std::exception& e) {
    if (rep.code == Errc::ok) record_failure(rep, e);
  }
  report.targets.push_back(std::move(rep));
  report.code = worst(report.targets);
  report.finished_at = now_rfc3339(3);
  return report;
}

JobReport wipe_free_space(const std::string& mountpoint, const WipeOptions& opts) {
  JobReport report;
  report.command = "wipe free-space";
  report.started_at = now_rfc3339(3);
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0) throw_errno("cannot find", mountpoint);
  if (!S_ISDIR(st.st_mode) || !is_mountpoint(mountpoint))
    throw Error(Errc::usage, "not a mount point", mountpoint, {},
                "give the directory a filesystem is mounted on (findmnt lists them)");
  Job job(opts);
  TargetReport rep;
  rep.kind = "free-space";
  rep.path = mountpoint;
  const std::string started = now_rfc3339(3);
  const fs::path dir = fs::path(mountpoint) / (".dlc-free-space-" + util::random_name(8));
  std::uint64_t filled = 0, files = 0, written = 0, verified_bytes = 0;
  bool verified = true;
  json mismatches = json::array();
  FsFacts facts;
  try {
    job.audit.record("wipe free-space", mountpoint, "started", {{"plan", job.plan.to_json()}});
    if (::mkdir(dir.c_str(), 0700) != 0) throw_errno("cannot create the fill directory", dir.string());
    {
      int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        facts = examine_fs(mountpoint, dfd, false);
        ::close(dfd);
      }
    }
    const bool root = ::geteuid() == 0;
    std::uint64_t initial_free = 0;
    {
      struct statvfs sv {};
      if (::statvfs(dir.c_str(), &sv) == 0)
        initial_free = static_cast<std::uint64_t>(root ? sv.f_bfree : sv.f_bavail) * sv.f_frsize;
    }
    int task = progress_of(opts).begin(mountpoint + " free space", initial_free);
    for (;;) {
      if (stop_requested().load()) throw Error(Errc::interrupted, "interrupted", mountpoint);
      struct statvfs sv {};
      if (::statvfs(dir.c_str(), &sv) != 0) throw_errno("cannot statvfs", mountpoint);
      std::uint64_t free = static_cast<std::uint64_t>(root ? sv.f_bfree : sv.f_bavail) * sv.f_frsize;
      std::uint64_t want = std::min<std::uint64_t>(free, 1ull << 30) / kAlign * kAlign;
      if (want < kAlign) break;
      fs::path fp = dir / ("fill-" + std::to_string(files));
      io::OpenOptions oo;
      oo.mode = io::OpenMode::read_write;
      oo.create = true;
      oo.exclusive = true;  // a fill file is always new: never a file or link planted under its name
      oo.no_follow = true;
      oo.direct = true;
      io::File file = io::File::open(fp.string(), oo);
      ++files;
      // Reserve real blocks first: fallocate fails cleanly when space runs out,
      // and the overwrite then lands on exactly the blocks reserved.
      std::uint64_t got = 0;
      for (std::uint64_t try_len = want; try_len >= kAlign; try_len = try_len / 2 / kAlign * kAlign) {
        if (::fallocate(file.fd(), 0, 0, static_cast<off_t>(try_len)) == 0) {
          got = try_len;
          break;
        }
        if (errno != ENOSPC && errno != EDQUOT) {
          if (errno == EOPNOTSUPP) break;
          throw_errno("cannot reserve space", fp.string());
        }
        // A failed fallocate can keep the blocks it did get beyond the end of
        // the file, where the overwrite would not reach them: release them.
        if (::ftruncate(file.fd(), 0) != 0) throw_errno("cannot truncate", fp.string());
      }
      if (got == 0) {
        // No fallocate (or nothing left): write until the filesystem is full.
        PatternGenerator gen(job.plan.passes[0], job.seed.span(), 0, 1 << 16);
        io::AlignedBuffer buf(1 << 16);  // aligned: the file may be open with O_DIRECT
        for (std::uint64_t off = 0;; off += buf.size()) {
          gen.fill(off, buf.span());
          ssize_t w = ::pwrite(file.fd(), buf.data(), buf.size(), static_cast<off_t>(off));
          if (w <= 0) break;
          got += static_cast<std::uint64_t>(w);
          if (static_cast<std::size_t>(w) < buf.size()) break;
        }
        got = got / kAlign * kAlign;
        if (got == 0) break;
        file.sync();
      }
      EraseTarget target;
      target.kind = "free-space";
      target.path = fp.string();
      target.file = &file;
      target.extents = {{0, got}};
      auto method = make_overwrite_method(job.plan);
      EraseContext ctx{target, opts, job.seed.span(), nullptr, null_progress(), "free", &stop_requested()};
      Evidence ev = method->run(ctx);
      filled += got;
      written += ev.bytes_written;
      verified_bytes += ev.bytes_verified;
      progress_of(opts).update(task, filled);
      if (!ev.verification_passed) {
        verified = false;
        for (const auto& m : ev.verification.value("first_mismatches", json::array()))
          if (mismatches.size() < 16) mismatches.push_back(m);
      }
      // Bound the loop where free space does not shrink as it fills
      // (compression, thin provisioning): never fill more than was free.
      if (filled >= initial_free + (64u << 20)) break;
    }
    progress_of(opts).end(task, verified);
  } catch (const std::exception& e) {
    record_failure(rep, e);
  }
  // Always delete the fill files: they hold nothing but the pattern.
  std::error_code ec;
  fs::remove_all(dir, ec);
  try {
    fsync_dir(mountpoint);
  } catch (const std::exception&) {
  }
  rep.identity = {{"mountpoint", mountpoint}, {"filesystem", facts.to_json()}};
  rep.warnings = facts.warnings();
  rep.warnings.push_back(
      "free-space fill reaches the blocks the filesystem hands out: not its metadata, journal, "
      "reserved areas it keeps from every user, blocks held by snapshots, nor (on flash) "
      "over-provisioned pages. It clears space released by deleted data; it does not erase "
      "files that still exist.");
  json verification = {{"method", job.plan.verify == VerifyMode::none ? "none"
                                  : job.plan.sample_percent >= 100 ? "full read-back" : "sampling"},
                       {"result", job.plan.verify == VerifyMode::none ? "not-performed"
                                  : verified ? "passed" : "failed"},
                       {"bytes_verified", verified_bytes},
                       {"first_mismatches", mismatches}};
  rep.evidence = {{"plan", job.plan.to_json()},   {"bytes_filled", filled},
                  {"fill_files", files},          {"bytes_written", written},
                  {"verification", verification}, {"assurance", facts.assurance()}};
  if (rep.outcome.empty()) set_outcome(rep, verified, facts.assurance());
  if (rep.outcome != "interrupted" && rep.outcome != "failed") {
    try {
      CertificateInput in = base_input(job, "free-space", mountpoint, started);
      in.media = rep.identity;
      in.evidence.verification = verification;
      in.evidence.bytes_written = written;
      in.evidence.extra = {{"bytes_filled", filled}, {"assurance", facts.assurance()}};
      in.outcome = rep.outcome;
      in.finished_at = now_rfc3339(3);
      in.warnings = rep.warnings;
      issue_certificate(in, opts, job.audit, "wipe free-space", rep.code == Errc::ok ? "ok" : "failed", rep);
    } catch (const std::exception& e) {
      record_failure(rep, e);
    }
  } else {
    try {
      job.audit.record("wipe free-space", mountpoint, rep.outcome, {{"error", rep.error}});
    } catch (const std::exception&) {
    }
  }
  report.targets.push_back(std::move(rep));
  report.code = worst(report.targets);
  report.finished_at = now_rfc3339(3);
  return report;
}

}  // namespace dlc::wipe
