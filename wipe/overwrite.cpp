// OverwriteMethod: the passes of a MethodPlan written through the io engine,
// checkpointed into the journal (devices), then read back and compared with
// the regenerated pattern (full or sampled).
#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "wipe/erase_method.h"
#include "wipe/journal.h"

namespace dlc::wipe {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxMismatchRanges = 16;
constexpr std::uint64_t kSampleUnit = 1u << 20;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Keeps a byte rate by sleeping in the fill callback when ahead of schedule.
class Throttle {
 public:
  explicit Throttle(std::uint64_t rate) : rate_(rate), t0_(Clock::now()) {}
  void account(std::uint64_t n) {
    if (rate_ == 0) return;
    sent_ += n;
    auto due = t0_ + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(static_cast<double>(sent_) /
                                                       static_cast<double>(rate_)));
    if (Clock::now() < due) std::this_thread::sleep_until(due);
  }

 private:
  std::uint64_t rate_;
  Clock::time_point t0_;
  std::uint64_t sent_ = 0;
};

struct MismatchLog {
  std::uint64_t bytes = 0;
  nlohmann::json ranges = nlohmann::json::array();
  void add(std::uint64_t off, std::uint64_t len) {
    bytes += len;
    if (!ranges.empty()) {
      auto& last = ranges.back();
      std::uint64_t end = last["offset"].get<std::uint64_t>() + last["length"].get<std::uint64_t>();
      if (end == off) {
        last["length"] = last["length"].get<std::uint64_t>() + len;
        return;
      }
    }
    if (ranges.size() < kMaxMismatchRanges) ranges.push_back({{"offset", off}, {"length", len}});
  }
};

class OverwriteMethod final : public EraseMethod {
 public:
  explicit OverwriteMethod(MethodPlan plan) : plan_(std::move(plan)) {}

  std::string name() const override { return plan_.method; }
  Category category() const override { return Category::clear; }
  std::string technique() const override { return "overwrite; " + plan_.describe(); }

  bool supports(const EraseTarget& t, std::string* why_not) const override {
    if (t.file == nullptr) {
      if (why_not) *why_not = "overwrite needs a device or file open for writing";
      return false;
    }
    if (t.device && t.device->read_only) {
      if (why_not) *why_not = "the device is read-only";
      return false;
    }
    return true;
  }

  Evidence run(EraseContext& ctx) override;

 private:
  void write_pass(EraseContext& ctx, io::Engine& engine, PatternGenerator& gen, unsigned p,
                  std::uint64_t from, Evidence& ev);
  nlohmann::json verify_pass(EraseContext& ctx, io::Engine& engine, PatternGenerator& gen,
                             unsigned p, bool* passed, std::uint64_t* bytes);
  std::string pass_label(const EraseContext& ctx, unsigned p, const char* what) const {
    return ctx.label + " pass " + std::to_string(p + 1) + "/" +
           std::to_string(plan_.passes.size()) + " " + what;
  }

  MethodPlan plan_;
};

void OverwriteMethod::write_pass(EraseContext& ctx, io::Engine& engine, PatternGenerator& gen,
                                 unsigned p, std::uint64_t from, Evidence& ev) {
  EraseTarget& t = ctx.target;
  const std::uint64_t total = t.bytes();
  Throttle throttle(ctx.options.rate_limit);
  io::FillFn fill = [&](std::uint64_t off, std::span<std::uint8_t> buf) {
    throttle.account(buf.size());
    gen.fill(off, buf);
  };
  int task = ctx.progress.begin(pass_label(ctx, p, "write"), total);
  ctx.progress.update(task, from);
  std::uint64_t pos = from;
  try {
    while (pos < total) {
      // Checkpoint chunks are whole MiB so every chunk boundary stays aligned for O_DIRECT.
      constexpr std::uint64_t kMiB = 1u << 20;
      std::uint64_t chunk = ctx.journal ? std::max(ctx.options.checkpoint_bytes / kMiB * kMiB, kMiB)
                                        : total - pos;
      std::uint64_t len = std::min(chunk, total - pos);
      auto ext = slice_extents(t.extents, pos, len);
      const std::uint64_t base = pos;
      engine.write(*t.file, ext, fill,
                   [&](std::uint64_t done) { ctx.progress.update(task, base + done); }, ctx.cancel);
      pos += len;
      ev.bytes_written += len;
      if (ctx.journal) {
        t.file->sync();  // the checkpoint must never claim bytes the device may not hold
        ctx.journal->data().bytes_written = ev.bytes_written;
        ctx.journal->checkpoint(p, pos, "write");
      }
    }
    t.file->sync();
    // Buffered fallback (no O_DIRECT): drop the cached pages so that the
    // read-back comes from the medium, not from memory.
    if (!t.file->direct()) ::posix_fadvise(t.file->fd(), 0, 0, POSIX_FADV_DONTNEED);
  } catch (...) {
    ctx.progress.end(task, false);
    throw;
  }
  ctx.progress.end(task, true);
}

nlohmann::json OverwriteMethod::verify_pass(EraseContext& ctx, io::Engine& engine,
                                            PatternGenerator& gen, unsigned p, bool* passed,
                                            std::uint64_t* bytes) {
  EraseTarget& t = ctx.target;
  const std::uint64_t total = t.bytes();
  nlohmann::json vr;
  std::vector<io::Extent> ext;
  if (plan_.sample_percent >= 100) {
    ext = t.extents;
    vr["method"] = "full read-back";
  } else {
    crypto::Bytes seed = crypto::random_bytes(16);
    std::uint64_t unit = kSampleUnit;
    for (const auto& s : choose_samples(total, unit, plan_.sample_percent, seed)) {
      auto part = slice_extents(t.extents, s.offset, s.length);
      ext.insert(ext.end(), part.begin(), part.end());
    }
    vr["method"] = "sampling";
    vr["sample_percent"] = plan_.to_json()["sample_percent"];
    vr["sample_seed"] = crypto::to_hex(seed);
    vr["sample_unit"] = unit;
    vr["samples"] = ext.size();
  }
  std::uint64_t want = 0;
  for (const auto& e : ext) want += e.length;
  MismatchLog log;
  const std::uint32_t sector = std::max<std::uint32_t>(t.sector, 16);
  io::ConsumeFn consume = [&](std::uint64_t off, std::span<const std::uint8_t> data) {
    std::size_t idx = gen.first_mismatch(off, data);
    if (idx == data.size()) return;
    for (std::size_t s = idx / sector * sector; s < data.size(); s += sector) {
      std::size_t len = std::min<std::size_t>(sector, data.size() - s);
      if (gen.first_mismatch(off + s, data.subspan(s, len)) != len) log.add(off + s, len);
    }
  };
  int task = ctx.progress.begin(pass_label(ctx, p, "verify"), want);
  auto t0 = Clock::now();
  io::IoStats st;
  try {
    st = engine.read(*t.file, ext, consume, [&](std::uint64_t done) { ctx.progress.update(task, done); },
                     ctx.cancel);
  } catch (...) {
    ctx.progress.end(task, false);
    throw;
  }
  ctx.progress.end(task, log.bytes == 0);
  vr["seconds"] = seconds_since(t0);
  vr["bytes_verified"] = want;
  vr["mismatched_bytes"] = log.bytes;
  vr["first_mismatches"] = log.ranges;
  vr["result"] = log.bytes == 0 ? "passed" : "failed";
  *passed = log.bytes == 0;
  *bytes = want;
  (void)st;
  return vr;
}

Evidence OverwriteMethod::run(EraseContext& ctx) {
  Evidence ev;
  ev.technique = "overwrite";
  std::string why;
  if (!supports(ctx.target, &why)) throw Error(Errc::usage, "cannot overwrite", ctx.target.path, why);
  io::EngineOptions eo;
  eo.queue_depth = ctx.options.queue_depth;
  eo.block_size = ctx.options.block_size;
  // Small targets (files) get a ring and buffers their size, not 32 x 1 MiB.
  const std::uint64_t bytes = ctx.target.bytes();
  if (bytes < eo.block_size)
    eo.block_size = static_cast<std::size_t>(std::max<std::uint64_t>(4096, (bytes + 4095) / 4096 * 4096));
  eo.queue_depth = static_cast<unsigned>(std::clamp<std::uint64_t>(
      (bytes + eo.block_size - 1) / eo.block_size, 1, eo.queue_depth));
  io::Engine engine(eo);
  ev.extra["io_backend"] = engine.backend() == io::Backend::io_uring ? "io_uring" : "pread/pwrite";
  ev.extra["queue_depth"] = eo.queue_depth;
  ev.extra["block_size"] = eo.block_size;
  ev.extra["direct_io"] = ctx.target.file->direct();

  const unsigned n = static_cast<unsigned>(plan_.passes.size());
  unsigned start = 0;
  std::uint64_t from = 0;
  std::string phase = "write";
  if (ctx.journal) {
    const JournalData& d = ctx.journal->data();
    start = d.pass;
    from = d.offset;
    phase = d.phase;
    ev.passes = d.completed_passes;
    ev.bytes_written = d.bytes_written;
  }
  const std::uint64_t total = ctx.target.bytes();
  for (unsigned p = start; p < n; ++p) {
    PatternGenerator gen(plan_.passes[p], ctx.seed, p, eo.block_size);
    nlohmann::json rec = {{"index", p + 1}, {"pattern", plan_.passes[p].label()}};
    if (phase == "write") {
      if (from > 0) rec["resumed_at_offset"] = from;
      auto t0 = Clock::now();
      write_pass(ctx, engine, gen, p, from, ev);
      rec["bytes_written"] = total - from;
      rec["write_seconds"] = seconds_since(t0);
    } else {
      rec["bytes_written"] = total;
      rec["resumed_in"] = "verification";
    }
    const bool verify_now = plan_.verify == VerifyMode::all ||
                            (plan_.verify == VerifyMode::last && p + 1 == n);
    if (verify_now) {
      if (ctx.journal) ctx.journal->checkpoint(p, total, "verify");
      if (ctx.options.before_verify) ctx.options.before_verify(ctx.target.path, p);
      bool ok = true;
      std::uint64_t vb = 0;
      rec["verification"] = verify_pass(ctx, engine, gen, p, &ok, &vb);
      ev.bytes_verified += vb;
      if (!ok) ev.verification_passed = false;
    }
    ev.passes.push_back(rec);
    if (ctx.journal) {
      ctx.journal->data().completed_passes = ev.passes;
      ctx.journal->data().bytes_written = ev.bytes_written;
      ctx.journal->checkpoint(p + 1, 0, "write");
    }
    from = 0;
    phase = "write";
  }

  // The summary the certificate carries.
  nlohmann::json v;
  if (plan_.verify == VerifyMode::none) {
    v = {{"method", "none"}, {"result", "not-performed"}, {"scope", "none"}};
  } else {
    v["scope"] = plan_.verify == VerifyMode::all ? "every pass" : "last pass";
    v["method"] = plan_.sample_percent >= 100 ? "full read-back" : "sampling";
    if (plan_.sample_percent < 100) v["sample_percent"] = plan_.to_json()["sample_percent"];
    std::uint64_t mism = 0;
    nlohmann::json first = nlohmann::json::array();
    nlohmann::json seeds = nlohmann::json::array();
    bool passed = true;
    for (const auto& r : ev.passes) {
      if (!r.contains("verification")) continue;
      const auto& pv = r["verification"];
      if (pv.value("result", "") != "passed") passed = false;
      mism += pv.value("mismatched_bytes", std::uint64_t{0});
      for (const auto& m : pv.value("first_mismatches", nlohmann::json::array())) {
        if (first.size() < kMaxMismatchRanges) {
          auto mm = m;
          mm["pass"] = r["index"];
          first.push_back(mm);
        }
      }
      if (pv.contains("sample_seed")) seeds.push_back(pv["sample_seed"]);
    }
    if (!seeds.empty()) v["sample_seeds"] = seeds;
    ev.verification_passed = passed;
    v["result"] = passed ? "passed" : "failed";
    v["mismatched_bytes"] = mism;
    v["first_mismatches"] = first;
    v["bytes_verified"] = ev.bytes_verified;
  }
  ev.verification = v;
  return ev;
}

}  // namespace

std::string_view category_name(Category c) noexcept {
  switch (c) {
    case Category::clear: return "clear";
    case Category::purge: return "purge";
    case Category::destroy: return "destroy";
  }
  return "clear";
}

std::uint64_t EraseTarget::bytes() const {
  std::uint64_t n = 0;
  for (const auto& e : extents) n += e.length;
  return n;
}

std::unique_ptr<EraseMethod> make_overwrite_method(const MethodPlan& plan) {
  return std::make_unique<OverwriteMethod>(plan);
}

std::vector<io::Extent> slice_extents(const std::vector<io::Extent>& extents, std::uint64_t from,
                                      std::uint64_t len) {
  std::vector<io::Extent> out;
  std::uint64_t pos = 0;
  const std::uint64_t end = from + len;
  for (const auto& e : extents) {
    std::uint64_t a = pos, b = pos + e.length;
    pos = b;
    if (b <= from) continue;
    if (a >= end) break;
    std::uint64_t lo = std::max(a, from), hi = std::min(b, end);
    out.push_back({e.offset + (lo - a), hi - lo});
  }
  return out;
}

std::vector<io::Extent> choose_samples(std::uint64_t total, std::uint64_t unit, double percent,
                                       crypto::ByteView seed) {
  std::vector<io::Extent> out;
  if (total == 0 || unit == 0) return out;
  const std::uint64_t units = (total + unit - 1) / unit;
  std::uint64_t k = static_cast<std::uint64_t>(
      std::ceil(static_cast<double>(units) * std::min(percent, 100.0) / 100.0));
  k = std::max<std::uint64_t>(k, std::min<std::uint64_t>(2, units));
  if (k >= units) return {{0, total}};
  for (std::uint64_t i = 0; i < k; ++i) {
    std::uint64_t lo = i * units / k, hi = (i + 1) * units / k;
    std::uint64_t u;
    if (i == 0) {
      u = 0;
    } else if (i + 1 == k) {
      u = units - 1;
    } else {
      crypto::Hasher h;
      h.update(seed);
      std::uint8_t le[8];
      for (int b = 0; b < 8; ++b) le[b] = static_cast<std::uint8_t>(i >> (8 * b));
      h.update(crypto::ByteView(le, 8));
      auto d = h.final();
      std::uint64_t r = 0;
      for (int b = 7; b >= 0; --b) r = (r << 8) | d[static_cast<std::size_t>(b)];
      u = lo + r % (hi - lo);
    }
    std::uint64_t off = u * unit;
    std::uint64_t len = std::min(unit, total - off);
    if (!out.empty() && out.back().offset + out.back().length == off)
      out.back().length += len;
    else
      out.push_back({off, len});
  }
  return out;
}

}  // namespace dlc::wipe
