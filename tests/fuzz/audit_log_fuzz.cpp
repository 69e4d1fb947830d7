// The audit log reader (docs/formats/audit-log.md): dlc::audit::verify,
// read_log and the head-file parser over an arbitrary log and head file.
//
// Input: LOG [kPartSeparator HEAD]. Each input is checked twice: as given, and
// "resealed": every line that is a JSON object gets its checkpoint signature
// (fixed host key), then its hash, recomputed with the real functions, and so
// does the head, so that the checks behind the hash and signature (fields,
// chain, times, checkpoints, recovery notes, head) see fuzzed records too.
#include <nlohmann/json.hpp>

#include "core/audit_internal.h"
#include "core/audit_log.h"
#include "core/crypto.h"
#include "fuzz_support.h"

using namespace dlc;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path g_log;
std::optional<crypto::Ed25519PublicKey> g_pinned;

std::string sign_hex(const std::string& message) {
  const auto sig = fuzz::host_key().private_key().sign(crypto::as_bytes(message));
  return crypto::to_hex(sig);
}

std::string reseal_log(std::string_view log) {
  std::string out;
  std::size_t pos = 0;
  while (pos < log.size()) {
    auto nl = log.find('\n', pos);
    const bool terminated = nl != std::string_view::npos;
    if (!terminated) nl = log.size();
    const std::string_view line = log.substr(pos, nl - pos);
    json rec = json::parse(line.begin(), line.end(), nullptr, false);
    if (rec.is_object()) {
      if (rec.value("type", json()) == "checkpoint") rec["sig"] = sign_hex(audit::detail::checkpoint_message(rec));
      rec["hash"] = audit::record_hash(rec);
      out += audit::canonical_json(rec);
    } else {
      out.append(line);
    }
    if (terminated) out += '\n';
    pos = nl + 1;
  }
  return out;
}

std::string reseal_head(std::string_view head) {
  json h = json::parse(head.begin(), head.end(), nullptr, false);
  if (!h.is_object()) return std::string(head);
  h["sig"] = sign_hex(audit::detail::head_message(h));
  return audit::canonical_json(h) + "\n";
}

void check(std::string_view log, std::optional<std::string_view> head) {
  fuzz::write_file(g_log, log);
  const fs::path hp = audit::head_path(g_log);
  std::error_code ec;
  fs::remove(hp, ec);
  if (head) fuzz::write_file(hp, *head, 0644);

  fuzz::accept_dlc_errors([&] {
    const audit::VerifyReport r = audit::verify(g_log, std::nullopt);
    (void)audit::to_json(r).dump();
  });
  fuzz::accept_dlc_errors([&] {
    const audit::VerifyReport r = audit::verify(g_log, g_pinned);
    (void)audit::to_json(r).dump();
    if (r.ok && !r.problem.empty()) fuzz::fail("verify: ok with a problem: " + r.problem);
    if (!r.ok && r.problem.empty()) fuzz::fail("verify: not ok but no problem named");
  });
  fuzz::accept_dlc_errors([&] {
    for (const auto& l : audit::read_log(g_log)) (void)l.record.dump();
    const auto last = audit::read_log(g_log, 2);
    if (last.size() > 2) fuzz::fail("read_log(last = 2) returned more than 2 lines");
  });
  fuzz::accept_dlc_errors([&] {
    if (auto h = audit::read_head(g_log)) (void)audit::head_signature_valid(*h);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_environment();
  g_log = fuzz::fresh_dir("audit") / "audit.jsonl";
  g_pinned = fuzz::host_key().public_key();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = fuzz::split_parts(fuzz::as_view(data, size));
  std::optional<std::string_view> head;
  if (parts.size() > 1) head = parts[1];
  check(parts[0], head);

  const std::string log2 = reseal_log(parts[0]);
  std::optional<std::string> head2;
  if (head) head2 = reseal_head(*head);
  check(log2, head2 ? std::optional<std::string_view>(*head2) : std::nullopt);
  return 0;
}
