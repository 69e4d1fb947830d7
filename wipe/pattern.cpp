#include "wipe/pattern.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

#include "core/error.h"

namespace dlc::wipe {

namespace {

const char kValidMethods[] =
    "zero, one, random, dod-3pass, nist-clear, custom:PAT[,PAT...] (PAT = hex bytes such as 55, "
    "aa, 924924, or 'random')";

PassSpec bytes_pass(std::vector<std::uint8_t> b) {
  PassSpec p;
  p.kind = PatternKind::bytes;
  p.bytes = std::move(b);
  return p;
}
PassSpec random_pass() {
  PassSpec p;
  p.kind = PatternKind::random;
  p.bytes.clear();
  return p;
}

PassSpec parse_custom(std::string tok, const std::string& method) {
  std::string t;
  for (char c : tok)
    if (!std::isspace(static_cast<unsigned char>(c))) t.push_back(static_cast<char>(std::tolower(c)));
  if (t == "random") return random_pass();
  if (t.rfind("0x", 0) == 0) t = t.substr(2);
  if (t.empty() || t.size() % 2 != 0 || t.size() > 128 ||
      !std::all_of(t.begin(), t.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
    throw Error(Errc::usage, "bad pattern in --method", "'" + method + "'",
                "'" + tok + "' is not an even number of hex digits (1 to 64 bytes) or 'random'",
                std::string("valid methods: ") + kValidMethods);
  return bytes_pass(crypto::from_hex(t));
}

}  // namespace

std::string_view verify_mode_name(VerifyMode m) noexcept {
  switch (m) {
    case VerifyMode::none: return "none";
    case VerifyMode::last: return "last";
    case VerifyMode::all: return "all";
  }
  return "last";
}

VerifyMode verify_mode_from_name(std::string_view name) {
  if (name == "none") return VerifyMode::none;
  if (name == "last") return VerifyMode::last;
  if (name == "all") return VerifyMode::all;
  throw Error(Errc::usage, "bad value for --verify", "'" + std::string(name) + "'", {},
              "use none, last or all");
}

std::string PassSpec::label() const {
  if (kind == PatternKind::random) return "random";
  if (bytes.size() == 1 && bytes[0] == 0x00) return "zero";
  if (bytes.size() == 1 && bytes[0] == 0xff) return "one";
  return "0x" + crypto::to_hex(bytes);
}

std::string MethodPlan::describe() const {
  std::ostringstream s;
  s << method << ": " << passes.size() << (passes.size() == 1 ? " pass (" : " passes (");
  for (std::size_t i = 0; i < passes.size(); ++i) s << (i ? ", " : "") << passes[i].label();
  s << "), verify " << verify_mode_name(verify);
  if (verify != VerifyMode::none && sample_percent < 100) s << " (sampling " << sample_percent << "%)";
  return s.str();
}

nlohmann::json MethodPlan::to_json() const {
  nlohmann::json p = nlohmann::json::array();
  for (const auto& s : passes)
    p.push_back(s.kind == PatternKind::random
                    ? nlohmann::json{{"pattern", "random"}}
                    : nlohmann::json{{"pattern", s.label()}, {"bytes", crypto::to_hex(s.bytes)}});
  std::ostringstream pct;
  pct << sample_percent;
  return {{"method", method},
          {"passes", p},
          {"verify", verify_mode_name(verify)},
          {"sample_percent", pct.str()}};
}

MethodPlan MethodPlan::from_json(const nlohmann::json& j) {
  // A journal is read back after crashes and may be damaged: every defect is
  // a dlc::Error naming it, never a stray JSON or conversion exception.
  auto damaged = [](const std::string& why) {
    return Error(Errc::io, "the method plan in the resume journal is damaged", {}, why,
                 "start the wipe over with --force (the device is overwritten again from the start)");
  };
  MethodPlan m;
  try {
    m.method = j.at("method").get<std::string>();
    for (const auto& p : j.at("passes")) {
      if (p.at("pattern").get<std::string>() == "random") {
        m.passes.push_back(random_pass());
      } else {
        auto bytes = crypto::from_hex(p.at("bytes").get<std::string>());
        if (bytes.empty() || bytes.size() > 64) throw damaged("a pass has no pattern bytes or more than 64");
        m.passes.push_back(bytes_pass(std::move(bytes)));
      }
    }
    if (m.passes.empty()) throw damaged("no passes");
    m.verify = verify_mode_from_name(j.at("verify").get<std::string>());
    std::size_t used = 0;
    const std::string pct = j.at("sample_percent").get<std::string>();
    m.sample_percent = std::stod(pct, &used);
    if (used != pct.size() || !(m.sample_percent > 0 && m.sample_percent <= 100))
      throw damaged("sample_percent '" + pct + "' is not a percentage in (0, 100]");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw damaged(e.what());
  }
  return m;
}

MethodPlan plan_method(const std::string& method, unsigned passes, bool final_zero,
                       std::optional<VerifyMode> verify, double sample_percent) {
  if (passes < 1 || passes > 100)
    throw Error(Errc::usage, "bad value for --passes", std::to_string(passes), {},
                "use 1 to 100 (the method's passes are repeated this many times)");
  if (!(sample_percent > 0 && sample_percent <= 100))
    throw Error(Errc::usage, "bad value for --sample", std::to_string(sample_percent), {},
                "use a percentage greater than 0 and at most 100");
  MethodPlan plan;
  plan.method = method;
  std::vector<PassSpec> one_round;
  VerifyMode default_verify = VerifyMode::last;
  if (method == "zero") {
    one_round = {bytes_pass({0x00})};
  } else if (method == "one") {
    one_round = {bytes_pass({0xff})};
  } else if (method == "random") {
    one_round = {random_pass()};
  } else if (method == "dod-3pass") {
    // DoD 5220.22-M (E): a character, its complement, a random character;
    // here 0x00, 0xFF, then a random stream, verifying the last pass.
    one_round = {bytes_pass({0x00}), bytes_pass({0xff}), random_pass()};
  } else if (method == "nist-clear") {
    // NIST SP 800-88 Clear: a single pass of a fixed value, with full verification.
    one_round = {bytes_pass({0x00})};
    default_verify = VerifyMode::all;
  } else if (method.rfind("custom:", 0) == 0) {
    std::string list = method.substr(7);
    std::string tok;
    std::istringstream ss(list);
    while (std::getline(ss, tok, ',')) one_round.push_back(parse_custom(tok, method));
    if (one_round.empty())
      throw Error(Errc::usage, "empty pattern list in --method", "'" + method + "'", {},
                  std::string("valid methods: ") + kValidMethods);
    if (one_round.size() > 64)
      throw Error(Errc::usage, "too many patterns in --method", "'" + method + "'", {},
                  "use at most 64");
  } else {
    throw Error(Errc::usage, "unknown wipe method", "'" + method + "'", {},
                std::string("valid methods: ") + kValidMethods);
  }
  for (unsigned r = 0; r < passes; ++r)
    plan.passes.insert(plan.passes.end(), one_round.begin(), one_round.end());
  if (final_zero) plan.passes.push_back(bytes_pass({0x00}));
  plan.verify = verify.value_or(default_verify);
  plan.sample_percent = sample_percent;
  return plan;
}

SecureBuffer derive_pass_key(crypto::ByteView seed, unsigned pass_index) {
  std::string info = "dlc wipe pass " + std::to_string(pass_index) + " aes-256-ctr key+iv";
  return crypto::hkdf_sha256(seed, crypto::as_bytes("dlc-wipe-v1"), crypto::as_bytes(info), 48);
}

std::string seed_commitment(crypto::ByteView seed) {
  crypto::Hasher h;
  h.update(std::string_view("dlc wipe seed commitment v1\n"));
  h.update(seed);
  auto d = h.final();
  return crypto::to_hex(d);
}

struct PatternGenerator::Impl {
  PassSpec spec;
  std::optional<crypto::Keystream> ks;
  std::vector<std::uint8_t> tile;      // bytes pattern repeated over max_block + pattern length
  std::vector<std::uint8_t> scratch;   // random: regenerated stream for comparison
  std::size_t max_block = 0;
};

PatternGenerator::PatternGenerator(const PassSpec& spec, crypto::ByteView seed,
                                   unsigned pass_index, std::size_t max_block)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = spec;
  impl_->max_block = max_block;
  if (spec.kind == PatternKind::random) {
    if (seed.size() != 32)
      throw Error(Errc::io, "random pattern without a 32-byte seed", {}, {},
                  "this is a bug in dlc; report it");
    SecureBuffer k = derive_pass_key(seed, pass_index);
    impl_->ks.emplace(k.span().subspan(0, 32), k.span().subspan(32, 16));
    impl_->scratch.resize(max_block);
  } else {
    if (spec.bytes.empty())
      throw Error(Errc::usage, "empty byte pattern", {}, {}, "give at least one byte");
    impl_->tile.resize(max_block + spec.bytes.size());
    for (std::size_t i = 0; i < impl_->tile.size(); ++i)
      impl_->tile[i] = spec.bytes[i % spec.bytes.size()];
  }
}

PatternGenerator::~PatternGenerator() = default;
PatternGenerator::PatternGenerator(PatternGenerator&&) noexcept = default;
PatternGenerator& PatternGenerator::operator=(PatternGenerator&&) noexcept = default;

void PatternGenerator::fill(std::uint64_t offset, std::span<std::uint8_t> out) {
  Impl& m = *impl_;
  if (m.spec.kind == PatternKind::random) {
    m.ks->generate(offset, out);
    // Fail closed: a real keystream never starts a block with 32 equal bytes
    // (probability 2^-248); a broken generator (all zeros) does.
    if (out.size() >= 32 &&
        std::all_of(out.begin(), out.begin() + 32, [&](std::uint8_t b) { return b == out[0]; }))
      throw Error(Errc::io, "the random pattern generator produced a constant block", {},
                  "refusing to write a predictable 'random' pass",
                  "check the OpenSSL installation and the kernel entropy source");
    return;
  }
  const std::size_t n = m.spec.bytes.size();
  if (n == 1) {
    std::memset(out.data(), m.spec.bytes[0], out.size());
    return;
  }
  std::size_t phase = static_cast<std::size_t>(offset % n);
  std::size_t done = 0;
  while (done < out.size()) {
    std::size_t step = std::min(out.size() - done, m.max_block);
    std::memcpy(out.data() + done, m.tile.data() + phase, step);
    done += step;
    phase = (phase + step) % n;
  }
}

std::size_t PatternGenerator::first_mismatch(std::uint64_t offset,
                                             std::span<const std::uint8_t> data) {
  Impl& m = *impl_;
  auto scan = [&](const std::uint8_t* expect, std::size_t len, std::size_t base) -> std::size_t {
    if (std::memcmp(data.data() + base, expect, len) == 0) return data.size();
    for (std::size_t i = 0; i < len; ++i)
      if (data[base + i] != expect[i]) return base + i;
    return data.size();
  };
  std::size_t done = 0;
  while (done < data.size()) {
    std::size_t step = std::min(data.size() - done, m.max_block);
    std::size_t r;
    if (m.spec.kind == PatternKind::random) {
      m.ks->generate(offset + done, std::span<std::uint8_t>(m.scratch.data(), step));
      r = scan(m.scratch.data(), step, done);
    } else {
      std::size_t phase = static_cast<std::size_t>((offset + done) % m.spec.bytes.size());
      r = scan(m.tile.data() + phase, step, done);
    }
    if (r != data.size()) return r;
    done += step;
  }
  return data.size();
}

}  // namespace dlc::wipe
