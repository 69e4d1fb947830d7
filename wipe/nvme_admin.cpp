// The real NVMe admin edge over libnvme 1.3, and the parsers of the raw
// Identify / log structures (offsets from libnvme's own struct definitions,
// little-endian decoded byte by byte so the host's endianness never matters).
#include "wipe/nvme_admin.h"

#include <fcntl.h>
#include <libnvme.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/crypto.h"
#include "core/error.h"
#include "wipe/util.h"

namespace dlc::wipe::nvme {

namespace {

using nlohmann::json;

std::uint64_t le(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

const std::uint8_t* at(const void* base, std::size_t off) {
  return static_cast<const std::uint8_t*>(base) + off;
}

std::string text_field(const void* base, std::size_t off, std::size_t len) {
  const char* p = static_cast<const char*>(base) + off;
  std::string s;
  for (std::size_t i = 0; i < len && p[i] != '\0'; ++i) s.push_back(p[i]);
  return util::trim(s);
}

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

template <std::size_t N>
std::string hex_or_empty(const std::array<std::uint8_t, N>& a) {
  bool zero = true;
  for (auto b : a) zero &= b == 0;
  return zero ? std::string() : crypto::to_hex(crypto::ByteView(a.data(), a.size()));
}

class LibnvmeAdmin final : public Admin {
 public:
  LibnvmeAdmin(std::string node, int fd) : node_(std::move(node)), fd_(fd) {}
  ~LibnvmeAdmin() override { ::close(fd_); }
  LibnvmeAdmin(const LibnvmeAdmin&) = delete;
  LibnvmeAdmin& operator=(const LibnvmeAdmin&) = delete;

  std::string device() const override { return node_; }

  Status identify_ctrl(ControllerInfo& out) override {
    nvme_id_ctrl id{};
    Status s = result(nvme_identify_ctrl(fd_, &id));
    if (s.ok()) out = parse_identify_ctrl(&id);
    return s;
  }

  Status identify_ns(std::uint32_t nsid, NamespaceInfo& out) override {
    nvme_id_ns ns{};
    Status s = result(nvme_identify_ns(fd_, nsid, &ns));
    if (s.ok()) out = parse_identify_ns(nsid, &ns);
    return s;
  }

  Status namespace_list(bool allocated, std::vector<std::uint32_t>& out) override {
    out.clear();
    nvme_ns_list list{};
    std::uint32_t after = 0;
    // One page holds 1024 identifiers; continue after the last one until a
    // short page.
    for (;;) {
      std::memset(&list, 0, sizeof list);
      int rc = allocated ? nvme_identify_allocated_ns_list(fd_, after, &list)
                         : nvme_identify_active_ns_list(fd_, after, &list);
      Status s = result(rc);
      if (!s.ok()) return s;
      std::size_t n = 0;
      for (; n < NVME_ID_NS_LIST_MAX; ++n) {
        std::uint32_t id =
            static_cast<std::uint32_t>(le(reinterpret_cast<const std::uint8_t*>(&list.ns[n]), 4));
        if (id == 0) break;
        out.push_back(id);
        after = id;
      }
      if (n < NVME_ID_NS_LIST_MAX) return {};
    }
  }

  Status sanitize(const SanitizeParams& p) override {
    nvme_sanitize_nvm_args args{};
    args.args_size = sizeof(args);
    args.fd = fd_;
    args.timeout = 0;  // the command only starts the operation
    args.sanact = static_cast<nvme_sanitize_sanact>(p.action);
    args.ovrpat = p.ovrpat;
    args.ause = p.ause;
    args.owpass = static_cast<__u8>(p.owpass >= 16 ? 0 : p.owpass);
    args.oipbp = p.oipbp;
    args.nodas = p.nodas;
    return result(nvme_sanitize_nvm(&args));
  }

  Status sanitize_log(SanitizeLog& out) override {
    nvme_sanitize_log_page log{};
    Status s = result(nvme_get_log_sanitize(fd_, false, &log));
    if (s.ok()) out = parse_sanitize_log(&log);
    return s;
  }

  Status format(const FormatParams& p) override {
    nvme_format_nvm_args args{};
    args.args_size = sizeof(args);
    args.fd = fd_;
    args.timeout = p.timeout_ms;
    args.nsid = p.nsid;
    args.mset = p.mset ? NVME_FORMAT_MSET_EXTENDED : NVME_FORMAT_MSET_SEPARATE;
    args.pi = static_cast<nvme_cmd_format_pi>(p.pi & 7u);
    args.pil = p.pil ? NVME_FORMAT_PIL_FIRST : NVME_FORMAT_PIL_LAST;
    args.ses = static_cast<nvme_cmd_format_ses>(p.ses);
    args.lbaf = static_cast<__u8>(p.lbaf & 0xfu);
    args.lbafu = static_cast<__u8>((p.lbaf >> 4) & 3u);
    return result(nvme_format_nvm(&args));
  }

 private:
  static Status result(int rc) {
    if (rc < 0) return Status{-(errno ? errno : EIO)};
    return Status{rc};
  }

  std::string node_;
  int fd_;
};

}  // namespace

std::string Status::describe() const {
  if (value == 0) return "success";
  if (value < 0) return std::string(std::strerror(-value)) + " (no completion from the controller)";
  char code[32];
  std::snprintf(code, sizeof code, " (status 0x%03x)", value & 0x7ff);
  return std::string(nvme_status_to_string(value, false)) + code;
}

std::string_view sanitize_action_name(SanitizeAction a) noexcept {
  switch (a) {
    case SanitizeAction::exit_failure_mode:
      return "exit-failure-mode";
    case SanitizeAction::block_erase:
      return "block-erase";
    case SanitizeAction::overwrite:
      return "overwrite";
    case SanitizeAction::crypto_erase:
      return "crypto-erase";
  }
  return "unknown";
}

std::string_view sanitize_state_name(SanitizeState s) noexcept {
  switch (s) {
    case SanitizeState::never:
      return "never-sanitized";
    case SanitizeState::succeeded:
      return "completed-successfully";
    case SanitizeState::in_progress:
      return "in-progress";
    case SanitizeState::failed:
      return "failed";
    case SanitizeState::succeeded_no_dealloc:
      return "completed-successfully-no-deallocate";
    case SanitizeState::unknown:
      return "unknown";
  }
  return "unknown";
}

json ControllerInfo::to_json() const {
  return {{"model", model},
          {"serial", serial},
          {"firmware", firmware},
          {"subsystem_nqn", subnqn},
          {"cntlid", cntlid},
          {"ieee_oui", crypto::to_hex(crypto::ByteView(ieee.data(), ieee.size()))},
          {"oacs", hex32(oacs)},
          {"format_nvm_supported", format_supported()},
          {"namespace_management", ns_management()},
          {"namespaces_max", nn},
          {"cmic", hex8(cmic)},
          {"sanicap", hex32(sanicap)},
          {"sanicap_decoded",
           {{"crypto_erase", sanitize_crypto()},
            {"block_erase", sanitize_block()},
            {"overwrite", sanitize_overwrite()},
            {"no_deallocate_inhibited", no_dealloc_inhibited()},
            {"nodmmas", nodmmas()}}},
          {"fna", hex8(fna)},
          {"fna_decoded",
           {{"format_applies_to_all_namespaces", format_applies_to_all()},
            {"secure_erase_applies_to_all_namespaces", secure_erase_applies_to_all()},
            {"crypto_erase_supported", format_crypto_erase()},
            {"nsid_all_unsupported", format_all_nsid_unsupported()}}}};
}

std::string NamespaceInfo::eui64_hex() const { return hex_or_empty(eui64); }
std::string NamespaceInfo::nguid_hex() const { return hex_or_empty(nguid); }

json NamespaceInfo::to_json() const {
  const char* rb = dealloc_read() == DeallocRead::zeros  ? "zeros"
                   : dealloc_read() == DeallocRead::ones ? "ones"
                                                         : "not-reported";
  return {{"nsid", nsid},
          {"nsze", nsze},
          {"ncap", ncap},
          {"nuse", nuse},
          {"size_bytes", bytes()},
          {"flbas", hex8(flbas)},
          {"lba_format", lbaf_index()},
          {"lba_size", lba_size},
          {"metadata_size", metadata_size},
          {"metadata_extended", metadata_extended()},
          {"dps", hex8(dps)},
          {"dlfeat", hex8(dlfeat)},
          {"deallocated_read", rb},
          {"eui64", eui64_hex()},
          {"nguid", nguid_hex()}};
}

std::uint32_t SanitizeParams::cdw10() const {
  std::uint32_t v = static_cast<std::uint32_t>(action) & 7u;
  if (ause) v |= 1u << 3;
  v |= static_cast<std::uint32_t>(owpass >= 16 ? 0 : owpass & 0xfu) << 4;
  if (oipbp) v |= 1u << 8;
  if (nodas) v |= 1u << 9;
  return v;
}

json SanitizeParams::to_json() const {
  return {{"sanact", static_cast<int>(action)},
          {"action", std::string(sanitize_action_name(action))},
          {"ause", ause},
          {"owpass", owpass},
          {"oipbp", oipbp},
          {"ovrpat", hex32(ovrpat)},
          {"nodas", nodas},
          {"cdw10", hex32(cdw10())},
          {"cdw11", hex32(ovrpat)}};
}

SanitizeState SanitizeLog::state() const {
  unsigned s = sstat & 7u;
  return s <= 4 ? static_cast<SanitizeState>(s) : SanitizeState::unknown;
}

std::optional<std::uint32_t> SanitizeLog::estimate(SanitizeAction a, bool nodas) const {
  std::uint32_t v = 0xffffffffu;
  switch (a) {
    case SanitizeAction::overwrite:
      v = nodas ? etond : eto;
      break;
    case SanitizeAction::block_erase:
      v = nodas ? etbend : etbe;
      break;
    case SanitizeAction::crypto_erase:
      v = nodas ? etcend : etce;
      break;
    case SanitizeAction::exit_failure_mode:
      break;
  }
  // 0 means "not reported" for the no-deallocate estimates; FFFFFFFFh is "unknown".
  if (v == 0xffffffffu || (v == 0 && nodas)) return std::nullopt;
  return v;
}

json SanitizeLog::to_json() const {
  auto est = [](std::uint32_t v) { return v == 0xffffffffu ? json("unknown") : json(v); };
  char sst[16];
  std::snprintf(sst, sizeof sst, "0x%04x", sstat);
  char sp[16];
  std::snprintf(sp, sizeof sp, "0x%04x", sprog);
  return {{"sstat", sst},
          {"status", std::string(sanitize_state_name(state()))},
          {"completed_passes", passes()},
          {"global_data_erased", global_data_erased()},
          {"sprog", sp},
          {"scdw10", hex32(scdw10)},
          {"estimates_seconds",
           {{"overwrite", est(eto)},
            {"block_erase", est(etbe)},
            {"crypto_erase", est(etce)},
            {"overwrite_no_deallocate", est(etond)},
            {"block_erase_no_deallocate", est(etbend)},
            {"crypto_erase_no_deallocate", est(etcend)}}}};
}

json FormatParams::to_json() const {
  return {{"nsid", hex32(nsid)},
          {"lbaf", lbaf},
          {"mset", mset},
          {"pi", pi},
          {"pil", pil},
          {"ses", static_cast<int>(ses)},
          {"secure_erase", ses == SecureErase::crypto      ? "cryptographic-erase"
                           : ses == SecureErase::user_data ? "user-data-erase"
                                                           : "none"},
          {"timeout_ms", timeout_ms}};
}

ControllerInfo parse_identify_ctrl(const void* d) {
  using S = nvme_id_ctrl;
  ControllerInfo c;
  c.serial = text_field(d, offsetof(S, sn), sizeof(S::sn));
  c.model = text_field(d, offsetof(S, mn), sizeof(S::mn));
  c.firmware = text_field(d, offsetof(S, fr), sizeof(S::fr));
  c.subnqn = text_field(d, offsetof(S, subnqn), sizeof(S::subnqn));
  std::memcpy(c.ieee.data(), at(d, offsetof(S, ieee)), 3);
  c.cmic = *at(d, offsetof(S, cmic));
  c.cntlid = static_cast<std::uint16_t>(le(at(d, offsetof(S, cntlid)), 2));
  c.oacs = static_cast<std::uint16_t>(le(at(d, offsetof(S, oacs)), 2));
  c.sanicap = static_cast<std::uint32_t>(le(at(d, offsetof(S, sanicap)), 4));
  c.nn = static_cast<std::uint32_t>(le(at(d, offsetof(S, nn)), 4));
  c.fna = *at(d, offsetof(S, fna));
  return c;
}

NamespaceInfo parse_identify_ns(std::uint32_t nsid, const void* d) {
  using S = nvme_id_ns;
  NamespaceInfo n;
  n.nsid = nsid;
  n.nsze = le(at(d, offsetof(S, nsze)), 8);
  n.ncap = le(at(d, offsetof(S, ncap)), 8);
  n.nuse = le(at(d, offsetof(S, nuse)), 8);
  n.nlbaf = *at(d, offsetof(S, nlbaf));
  n.flbas = *at(d, offsetof(S, flbas));
  n.dps = *at(d, offsetof(S, dps));
  n.dlfeat = *at(d, offsetof(S, dlfeat));
  std::memcpy(n.eui64.data(), at(d, offsetof(S, eui64)), 8);
  std::memcpy(n.nguid.data(), at(d, offsetof(S, nguid)), 16);
  const std::size_t f = offsetof(S, lbaf) + n.lbaf_index() * sizeof(nvme_lbaf);
  n.metadata_size = static_cast<std::uint16_t>(le(at(d, f + offsetof(nvme_lbaf, ms)), 2));
  const unsigned ds = *at(d, f + offsetof(nvme_lbaf, ds));
  n.lba_size = ds >= 9 && ds < 32 ? (1u << ds) : 0;
  return n;
}

SanitizeLog parse_sanitize_log(const void* d) {
  using S = nvme_sanitize_log_page;
  SanitizeLog l;
  l.sprog = static_cast<std::uint16_t>(le(at(d, offsetof(S, sprog)), 2));
  l.sstat = static_cast<std::uint16_t>(le(at(d, offsetof(S, sstat)), 2));
  l.scdw10 = static_cast<std::uint32_t>(le(at(d, offsetof(S, scdw10)), 4));
  l.eto = static_cast<std::uint32_t>(le(at(d, offsetof(S, eto)), 4));
  l.etbe = static_cast<std::uint32_t>(le(at(d, offsetof(S, etbe)), 4));
  l.etce = static_cast<std::uint32_t>(le(at(d, offsetof(S, etce)), 4));
  l.etond = static_cast<std::uint32_t>(le(at(d, offsetof(S, etond)), 4));
  l.etbend = static_cast<std::uint32_t>(le(at(d, offsetof(S, etbend)), 4));
  l.etcend = static_cast<std::uint32_t>(le(at(d, offsetof(S, etcend)), 4));
  return l;
}

std::unique_ptr<Admin> open_admin(const std::string& node) {
  int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(Errc::io, "cannot open the NVMe controller", node, std::strerror(errno),
                "admin commands need root (CAP_SYS_ADMIN) and the controller's /dev/nvmeX node");
  return std::make_unique<LibnvmeAdmin>(node, fd);
}

}  // namespace dlc::wipe::nvme
