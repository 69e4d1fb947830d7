#include "classify/engine.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "classify/decode.h"
#include "classify/mask.h"
#include "core/error.h"

namespace dlc::classify {

namespace fs = std::filesystem;

// ---- Files ------------------------------------------------------------------------------------

MappedFile::MappedFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open", path.string());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno("cannot stat", path.string(), err);
  }
  size_ = static_cast<std::size_t>(st.st_size);
  mtime_ns_ = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (size_ > 0) {
    data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (data_ == MAP_FAILED) {
      const int err = errno;
      data_ = nullptr;
      ::close(fd);
      throw_errno("cannot map", path.string(), err);
    }
    ::madvise(data_, size_, MADV_SEQUENTIAL);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

namespace {

std::string lower_extension(fs::path p, bool* gz) {
  std::string ext = p.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  *gz = ext == ".gz";
  if (*gz) {
    ext = p.stem().extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return ext;
}

constexpr std::size_t kMaxDecompressed = std::size_t{4} << 30;

}  // namespace

void load_file(const fs::path& path, BinaryMode binary, bool hash, FileReport& report,
               FileText& f) {
  f.map = std::make_unique<MappedFile>(path);
  const std::string_view raw = f.map->bytes();
  report.bytes = raw.size();
  report.mtime_ns = f.map->mtime_ns();
  if (hash) report.sha256 = sha256_hex(raw);
  std::string_view data = raw;
  if (is_gzip(raw)) {
    report.gzip = true;
    f.decoded = gunzip(raw, path.string(), kMaxDecompressed);
    data = f.decoded;
  }
  const std::string_view sample = data.substr(0, 64 << 10);
  if (looks_binary(sample)) {
    report.format = "binary";
    report.encoding = "binary";
    f.binary = true;
    if (binary == BinaryMode::skip) {
      report.skipped = "binary file (--binary skip)";
      return;
    }
    f.decoded = printable_runs(data, kMinPrintableRun);
    f.text = f.decoded;
    return;
  }
  if (looks_gb18030(sample)) {
    report.encoding = "gb18030";
    f.decoded = gb18030_to_utf8(data);
    f.text = f.decoded;
  } else {
    report.encoding = "utf-8";
    f.text = data;
  }
  bool gz = false;
  const std::string ext = lower_extension(path, &gz);
  if (ext == ".csv") {
    report.format = "csv";
    f.csv = csv_layout(f.text, 0);
  } else if (ext == ".tsv" || ext == ".tab") {
    report.format = "tsv";
    f.csv = csv_layout(f.text, '\t');
  } else if (ext == ".json" || ext == ".jsonl" || ext == ".ndjson") {
    report.format = "json";
  } else {
    report.format = "text";
  }
}

std::vector<std::pair<std::size_t, std::size_t>> split_chunks(std::string_view text,
                                                              std::size_t chunk) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t pos = 0;
  chunk = std::max<std::size_t>(chunk, 4096);
  while (pos < text.size()) {
    std::size_t end = std::min(text.size(), pos + chunk);
    // Keep the last piece from being tiny.
    if (text.size() - end < chunk / 2) end = text.size();
    if (end < text.size()) {
      const void* nl = std::memchr(text.data() + end, '\n', text.size() - end);
      end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1
               : text.size();
    }
    out.emplace_back(pos, end);
    pos = end;
  }
  if (out.empty()) out.emplace_back(0, 0);
  return out;
}

void finalize(const Policy& policy, const FileText& file, const std::vector<ChunkOutput>& chunks,
              std::size_t max_findings, FileReport& report, std::vector<Hit>* reported) {
  const CsvLayout* csv = file.csv ? &*file.csv : nullptr;
  // Absolute 1-based line numbers.
  std::uint64_t base = 1;
  std::uint64_t lines = 0;
  for (const auto& c : chunks) lines += c.newlines;
  if (!file.text.empty() && file.text.back() != '\n') ++lines;

  // CSV: classify each column as a whole; candidates in a column whose values
  // are mostly of one type take that type (this also settles 18-digit values
  // that are valid as more than one type).
  std::vector<std::optional<InfoType>> column_type;
  std::uint64_t rows = 0;
  // CSV rows are records: a newline inside a quoted field does not end one.
  std::uint64_t embedded_total = 0;
  for (const auto& c : chunks) embedded_total += c.embedded_newlines.size();
  if (csv) {
    const std::uint64_t records = lines - std::min(lines, embedded_total);
    rows = records > (csv->header ? 1u : 0u) ? records - (csv->header ? 1 : 0) : 0;
    std::vector<std::array<std::uint64_t, kTypeCount>> votes(csv->names.size());
    for (const auto& c : chunks)
      for (const HitTally& t : c.tallies) {
        if (t.column < 0 || static_cast<std::size_t>(t.column) >= votes.size()) continue;
        auto& v = votes[static_cast<std::size_t>(t.column)];
        v[static_cast<std::size_t>(t.type)] += t.count;
        for (std::uint32_t alt = t.alternatives; alt; alt &= alt - 1)
          v[static_cast<std::size_t>(__builtin_ctz(alt))] += t.count;
      }
    column_type.resize(votes.size());
    for (std::size_t col = 0; col < votes.size(); ++col) {
      const auto& v = votes[col];
      const auto best = static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
      if (rows > 0 && v[best] * 2 >= rows) column_type[col] = static_cast<InfoType>(best);
    }
  }

  // The type and confidence a hit ends with (its column's type when it is
  // valid as that type), and whether it is reported.
  auto settle = [&](std::int32_t column, InfoType& type, std::uint8_t& confidence,
                    std::uint8_t alternatives) {
    if (csv && column >= 0 && static_cast<std::size_t>(column) < column_type.size()) {
      const auto& ct = column_type[static_cast<std::size_t>(column)];
      if (ct && (type == *ct || (alternatives & (1u << static_cast<unsigned>(*ct))))) {
        type = *ct;
        confidence = std::max<std::uint8_t>(confidence, 90);
      }
    }
    const TypeRule& rule = policy.rule(type);
    return rule.enabled && confidence / 100.0 + 1e-6 >= policy.min_confidence;
  };
  std::vector<std::uint64_t> column_matches(column_type.size());
  for (const auto& c : chunks)
    for (const HitTally& t : c.tallies) {
      InfoType type = t.type;
      std::uint8_t confidence = t.confidence;
      if (!settle(t.column, type, confidence, t.alternatives)) continue;
      report.counts[static_cast<std::size_t>(type)] += t.count;
      report.total += t.count;
      if (csv && t.column >= 0 && static_cast<std::size_t>(t.column) < column_type.size() &&
          column_type[static_cast<std::size_t>(t.column)] == type)
        column_matches[static_cast<std::size_t>(t.column)] += t.count;
    }

  // The findings list (and every reported hit for masking) from the kept hits.
  std::uint64_t embedded_before = 0;  // embedded newlines before the chunk / the hit
  for (const auto& c : chunks) {
    const std::uint64_t chunk_base = base;
    base += c.newlines;
    std::size_t next_embedded = 0;
    for (const Hit& h0 : c.hits) {
      if (!reported && report.findings.size() >= max_findings) break;
      Hit h = h0;
      if (!settle(h.column, h.type, h.confidence, h.alternatives)) continue;
      if (reported) reported->push_back(h);
      if (report.findings.size() >= max_findings) continue;
      const TypeRule& rule = policy.rule(h.type);
      const std::uint64_t line = chunk_base + h0.line;
      Finding f;
      f.type = h.type;
      f.category = rule.category;
      f.level = rule.level;
      f.confidence = h.confidence / 100.0;
      f.offset = h.offset;
      f.line = file.binary ? 0 : line;
      if (csv && h.column >= 0) {
        while (next_embedded < c.embedded_newlines.size() &&
               c.embedded_newlines[next_embedded] < h.offset)
          ++next_embedded;
        f.row = line - (embedded_before + next_embedded) - (csv->header ? 1 : 0);
        const auto col = static_cast<std::size_t>(h.column);
        if (col < csv->names.size())
          f.column = csv->names[col];
        else
          f.column.append("#").append(std::to_string(col + 1));  // a row longer than the header
      }
      f.masked = mask_sample(h.type, file.text.substr(h.offset, h.length));
      report.findings.push_back(std::move(f));
    }
    embedded_before += c.embedded_newlines.size();
  }
  for (std::size_t col = 0; col < column_type.size(); ++col) {
    if (!column_type[col] || column_matches[col] == 0) continue;
    ColumnSummary s;
    s.name = csv->names[col];
    s.index = col;
    s.type = *column_type[col];
    s.rows = rows;
    s.matches = column_matches[col];
    report.columns.push_back(std::move(s));
  }
  report.level = policy.level_of(report.counts);
  report.category = policy.category_of(report.counts);
}

// ---- Walking the inputs ------------------------------------------------------------------------

namespace {

struct Entry {
  fs::path path;
  std::string display;
  std::uint64_t size = 0;
};

bool glob_match(const std::vector<std::string>& globs, const std::string& rel,
                const std::string& name) {
  for (const auto& g : globs)
    if (::fnmatch(g.c_str(), rel.c_str(), 0) == 0 || ::fnmatch(g.c_str(), name.c_str(), 0) == 0)
      return true;
  return false;
}

std::vector<Entry> walk(const ClassifyOptions& o, std::vector<FileReport>& walk_errors) {
  std::vector<Entry> out;
  for (const fs::path& input : o.inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(input, ec);
    if (ec || !fs::exists(st))
      throw Error(Errc::io, "cannot read input", input.string(),
                  ec ? ec.message() : std::string("No such file or directory"), "check the path");
    if (fs::is_regular_file(st)) {
      out.push_back({input, input.string(), fs::file_size(input, ec)});
      continue;
    }
    if (!fs::is_directory(st))
      throw Error(Errc::usage, "not a regular file or directory", input.string(), {},
                  "give files or directories to classify");
    fs::recursive_directory_iterator it(input, fs::directory_options::skip_permission_denied, ec);
    if (ec) throw Error(Errc::io, "cannot read directory", input.string(), ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        FileReport r;
        r.path = it->path().string();
        r.error = "cannot read directory: " + ec.message();
        walk_errors.push_back(std::move(r));
        ec.clear();
        continue;
      }
      const fs::directory_entry& e = *it;
      const std::string rel = e.path().lexically_relative(input).string();
      const std::string name = e.path().filename().string();
      if (e.is_symlink(ec)) continue;  // never followed: a link may leave the dataset
      if (e.is_directory(ec)) {
        if (glob_match(o.exclude, rel, name)) it.disable_recursion_pending();
        continue;
      }
      if (!e.is_regular_file(ec)) continue;
      if (!o.include.empty() && !glob_match(o.include, rel, name)) continue;
      if (glob_match(o.exclude, rel, name)) continue;
      out.push_back({e.path(), e.path().string(), e.file_size(ec)});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Entry& a, const Entry& b) { return a.display < b.display; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Entry& a, const Entry& b) { return a.display == b.display; }),
            out.end());
  return out;
}

// ---- A small pool: tasks may add tasks; run() returns when all are done
// ----------------------------

class TaskPool {
 public:
  explicit TaskPool(unsigned threads) : threads_(std::max(1u, threads)) {}
  void push(std::function<void()> task, bool urgent = false) {
    {
      std::lock_guard lock(mutex_);
      if (urgent)
        queue_.push_front(std::move(task));
      else
        queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  void run() {
    std::vector<std::thread> workers;
    for (unsigned i = 1; i < threads_; ++i) workers.emplace_back([this] { work(); });
    work();
    for (auto& w : workers) w.join();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return !queue_.empty() || busy_ == 0; });
      if (queue_.empty()) {
        cv_.notify_all();
        return;
      }
      auto task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
      lock.unlock();
      try {
        task();
      } catch (...) {
        std::lock_guard g(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      lock.lock();
      --busy_;
      cv_.notify_all();
    }
  }
  unsigned threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  unsigned busy_ = 0;
  std::exception_ptr error_;
};

// One file being scanned, possibly as several chunks on several threads.
struct FileJob {
  FileText file;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::vector<ChunkOutput> outputs;
  std::atomic<std::size_t> remaining{0};
  std::mutex error_mutex;
  std::string error;
};

}  // namespace

DatasetReport scan(const ClassifyOptions& o) {
  const Policy policy = Policy::resolve(o.policy_file, o.min_confidence);
  const auto t0 = std::chrono::steady_clock::now();
  DatasetReport rep;
  for (const auto& in : o.inputs) rep.roots.push_back(in.string());
  rep.policy = policy.name;
  rep.policy_sha256 = policy.sha256;
  rep.min_confidence = policy.min_confidence;
  rep.threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());

  std::vector<FileReport> walk_errors;
  const std::vector<Entry> entries = walk(o, walk_errors);
  rep.files.resize(entries.size());
  std::uint64_t total_bytes = 0;
  for (const auto& e : entries) total_bytes += e.size;
  ProgressSink& progress = o.progress ? *o.progress : null_progress();
  const int task = progress.begin("classify", total_bytes);
  std::atomic<std::uint64_t> done_bytes{0};

  TaskPool pool(rep.threads);
  std::uint32_t enabled_types = 0;
  for (std::size_t t = 0; t < kTypeCount; ++t)
    if (policy.types[t].enabled) enabled_types |= 1u << t;
  auto scan_range = [&](FileJob& job, std::size_t c, const CsvState& start) {
    ChunkInput in;
    in.text = job.file.text;
    in.begin = job.ranges[c].first;
    in.end = job.ranges[c].second;
    in.csv = job.file.csv ? &*job.file.csv : nullptr;
    in.csv_start = start;
    in.binary = job.file.binary;
    in.max_findings = o.max_findings_per_file;
    in.min_confidence = policy.min_confidence;
    in.enabled_types = enabled_types;
    job.outputs[c] = ChunkOutput{};
    scan_chunk(in, job.outputs[c]);
  };
  auto finish = [&](const std::shared_ptr<FileJob>& job, FileReport& fr) {
    // A CSV chunk that starts inside a quoted field (its predecessor ends in
    // one) was parsed from a wrong state: scan it again from the right one.
    if (job->error.empty() && job->file.csv && !stop_requested().load()) {
      try {
        for (std::size_t c = 1; c < job->outputs.size(); ++c)
          if (job->outputs[c - 1].csv_end.quoted) scan_range(*job, c, job->outputs[c - 1].csv_end);
      } catch (const std::exception& e) {
        job->error = e.what();
      }
    }
    if (!job->error.empty()) {
      fr.error = job->error;
    } else {
      finalize(policy, job->file, job->outputs, o.max_findings_per_file, fr, nullptr);
    }
    progress.update(task, done_bytes += fr.bytes);
  };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    pool.push([&, i] {
      FileReport& fr = rep.files[i];
      fr.path = entries[i].display;
      if (stop_requested().load()) return;
      auto job = std::make_shared<FileJob>();
      try {
        load_file(entries[i].path, o.binary, o.hash_files, fr, job->file);
      } catch (const Error& e) {
        fr.error = format_error(e.info());
        return;
      }
      if (!fr.skipped.empty()) return;
      job->ranges = split_chunks(job->file.text, o.chunk_bytes);
      job->outputs.resize(job->ranges.size());
      job->remaining = job->ranges.size();
      auto run_chunk = [&, job, i](std::size_t c) {
        try {
          if (!stop_requested().load()) scan_range(*job, c, CsvState{});
        } catch (const std::exception& e) {
          std::lock_guard lock(job->error_mutex);
          if (job->error.empty()) job->error = e.what();
        }
        if (--job->remaining == 0) finish(job, rep.files[i]);
      };
      // Later chunks go to the front of the queue so that a big file is
      // finished (and its memory released) before new files are opened.
      for (std::size_t c = 1; c < job->ranges.size(); ++c)
        pool.push([run_chunk, c] { run_chunk(c); }, true);
      run_chunk(0);
    });
  }
  pool.run();
  progress.end(task, !stop_requested().load());
  if (stop_requested().load())
    throw Error(Errc::interrupted, "classification interrupted", {}, {},
                "nothing was written; run it again");

  for (auto& r : walk_errors) rep.files.push_back(std::move(r));
  for (const auto& f : rep.files) {
    rep.bytes += f.bytes;
    if (!f.error.empty()) {
      ++rep.files_failed;
      continue;
    }
    if (!f.skipped.empty()) {
      ++rep.files_skipped;
      continue;
    }
    ++rep.files_scanned;
    for (std::size_t t = 0; t < kTypeCount; ++t) rep.counts[t] += f.counts[t];
    rep.total += f.total;
  }
  rep.level = policy.level_of(rep.counts);
  for (const auto& f : rep.files) rep.level = std::max(rep.level, f.level);
  rep.category = policy.category_of(rep.counts);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace dlc::classify
