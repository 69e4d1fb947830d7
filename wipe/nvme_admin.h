// The libnvme edge of dlc wipe: the five NVMe admin commands dlc issues
// (Identify Controller, Identify Namespace and the namespace lists, Sanitize,
// Get Log Page Sanitize Status, Format NVM) behind one small interface, with
// plain structs for the fields dlc reads. The real implementation sits on
// Debian 12's libnvme 1.3 (nvme_identify_ctrl, nvme_sanitize_nvm with struct
// nvme_sanitize_nvm_args, ...); unit tests use a fake (tests/wipe/fake_nvme.h).
// Method choice and the sanitize state machine (wipe/nvme_method.h) are pure
// logic over this interface. Field meanings: NVMe Base Specification 2.0,
// docs/nvme.md.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlc::wipe::nvme {

// The outcome of one admin command: 0 success, > 0 the NVMe status field
// (status code type << 8 | status code, plus More/DNR bits), < 0 -errno when
// no completion arrived (controller reset, removed, ioctl refused).
struct Status {
  int value = 0;
  bool ok() const { return value == 0; }
  bool is_nvme() const { return value > 0; }
  bool is_errno() const { return value < 0; }
  // Status code type and code without the More/DNR bits.
  int code() const { return value > 0 ? (value & 0x7ff) : 0; }
  // "Invalid Command Opcode: ..." (nvme_status_to_string) or strerror.
  std::string describe() const;
};

// NVMe status codes dlc reacts to (generic command status, type 0).
inline constexpr int kScInvalidOpcode = 0x01;
inline constexpr int kScInvalidField = 0x02;
inline constexpr int kScSanitizeFailed = 0x1c;
inline constexpr int kScSanitizeInProgress = 0x1d;
inline constexpr int kScNamespaceNotReady = 0x82;

// Identify Controller: the fields dlc reads.
struct ControllerInfo {
  std::string model, serial, firmware;  // MN, SN, FR (trimmed)
  std::string subnqn;
  std::uint16_t cntlid = 0;
  std::uint16_t oacs = 0;     // bit 1 Format NVM, bit 3 Namespace Management
  std::uint32_t sanicap = 0;  // bit 0 CES, 1 BES, 2 OWS, 29 NDI, 31:30 NODMMAS
  std::uint8_t fna =
      0;  // bit 0 format all ns, 1 secure erase all ns, 2 crypto erase, 3 no NSID FFFFFFFFh
  std::uint8_t cmic = 0;               // bit 1: the subsystem may have several controllers
  std::uint32_t nn = 0;                // number of namespaces
  std::array<std::uint8_t, 3> ieee{};  // OUI

  bool sanitize_crypto() const { return sanicap & 1u; }
  bool sanitize_block() const { return sanicap & 2u; }
  bool sanitize_overwrite() const { return sanicap & 4u; }
  bool no_dealloc_inhibited() const { return sanicap & (1u << 29); }
  unsigned nodmmas() const { return (sanicap >> 30) & 3u; }
  bool format_supported() const { return oacs & 2u; }
  bool ns_management() const { return oacs & 8u; }
  bool format_applies_to_all() const { return fna & 1u; }
  bool secure_erase_applies_to_all() const { return fna & 2u; }
  bool format_crypto_erase() const { return fna & 4u; }
  bool format_all_nsid_unsupported() const { return fna & 8u; }
  bool multi_controller() const { return cmic & 2u; }
  // The snapshot the certificate carries (raw hex values and decoded bits).
  nlohmann::json to_json() const;
};

// Deallocated-read behaviour (DLFEAT bits 2:0).
enum class DeallocRead { not_reported = 0, zeros = 1, ones = 2 };

// Identify Namespace: the fields dlc reads.
struct NamespaceInfo {
  std::uint32_t nsid = 0;
  std::uint64_t nsze = 0, ncap = 0, nuse = 0;  // in logical blocks
  std::uint8_t flbas = 0;
  std::uint8_t nlbaf = 0;
  std::uint8_t dps = 0;  // bits 2:0 PI type, bit 3 PI first
  std::uint8_t dlfeat = 0;
  std::uint32_t lba_size = 512;     // of the current format
  std::uint16_t metadata_size = 0;  // of the current format
  std::array<std::uint8_t, 8> eui64{};
  std::array<std::uint8_t, 16> nguid{};

  // Index of the current LBA format (FLBAS bits 3:0, and 6:5 above 16 formats).
  unsigned lbaf_index() const {
    return (flbas & 0xfu) | (nlbaf >= 16 ? ((flbas >> 5) & 3u) << 4 : 0u);
  }
  bool metadata_extended() const { return flbas & 0x10u; }
  DeallocRead dealloc_read() const {
    unsigned rb = dlfeat & 7u;
    return rb == 1 ? DeallocRead::zeros : rb == 2 ? DeallocRead::ones : DeallocRead::not_reported;
  }
  std::uint64_t bytes() const { return nsze * lba_size; }
  std::string eui64_hex() const;  // "" when all zero
  std::string nguid_hex() const;
  nlohmann::json to_json() const;
};

enum class SanitizeAction : std::uint8_t {
  exit_failure_mode = 1,
  block_erase = 2,
  overwrite = 3,
  crypto_erase = 4,
};
std::string_view sanitize_action_name(SanitizeAction a) noexcept;  // "crypto-erase", ...

struct SanitizeParams {
  SanitizeAction action = SanitizeAction::crypto_erase;
  bool ause = false;         // allow unrestricted sanitize exit (false: restricted completion mode)
  std::uint8_t owpass = 1;   // overwrite passes (1-16; the command encodes 16 as 0)
  bool oipbp = false;        // invert the overwrite pattern between passes
  std::uint32_t ovrpat = 0;  // overwrite pattern
  bool nodas = false;        // no deallocate after sanitize
  nlohmann::json to_json() const;  // also the CDW10/CDW11 values sent
  std::uint32_t cdw10() const;
};

// SSTAT bits 2:0.
enum class SanitizeState {
  never = 0,
  succeeded = 1,
  in_progress = 2,
  failed = 3,
  succeeded_no_dealloc = 4,
  unknown = 7,
};
std::string_view sanitize_state_name(SanitizeState s) noexcept;

// Sanitize Status log page (Log Identifier 81h).
struct SanitizeLog {
  std::uint16_t sprog = 0;  // progress, of 65536 (0xFFFF when not in progress)
  std::uint16_t sstat = 0;
  std::uint32_t scdw10 = 0;                         // CDW10 of the most recent sanitize command
  std::uint32_t eto = 0, etbe = 0, etce = 0;        // estimated seconds, 0xFFFFFFFF unknown
  std::uint32_t etond = 0, etbend = 0, etcend = 0;  // the same with No-Deallocate

  SanitizeState state() const;
  unsigned passes() const { return (sstat >> 3) & 0x1fu; }
  bool global_data_erased() const { return sstat & 0x100u; }
  SanitizeAction last_action() const { return static_cast<SanitizeAction>(scdw10 & 7u); }
  double fraction() const { return static_cast<double>(sprog) / 65536.0; }
  // The log's time estimate for this action, in seconds; nullopt when the
  // controller does not report one.
  std::optional<std::uint32_t> estimate(SanitizeAction a, bool nodas) const;
  nlohmann::json to_json() const;
};

enum class SecureErase : std::uint8_t { none = 0, user_data = 1, crypto = 2 };

struct FormatParams {
  std::uint32_t nsid = 0;  // 0xFFFFFFFF: every namespace
  std::uint8_t lbaf = 0;   // LBA format index (0-63): keep the current one
  bool mset = false;       // metadata extended
  std::uint8_t pi = 0;     // protection information type
  bool pil = false;        // PI first 8 bytes of metadata
  SecureErase ses = SecureErase::user_data;
  std::uint32_t timeout_ms = 0;
  nlohmann::json to_json() const;
};

// The admin commands dlc issues, on one controller. Each call returns the
// command's status; the outputs are valid only when it is ok().
class Admin {
 public:
  virtual ~Admin() = default;
  virtual std::string device() const = 0;  // "/dev/nvme0"
  virtual Status identify_ctrl(ControllerInfo& out) = 0;
  virtual Status identify_ns(std::uint32_t nsid, NamespaceInfo& out) = 0;
  // Active namespaces of this controller (CNS 02h) or, allocated = true,
  // every namespace of the subsystem (CNS 10h, needs Namespace Management).
  virtual Status namespace_list(bool allocated, std::vector<std::uint32_t>& out) = 0;
  virtual Status sanitize(const SanitizeParams& p) = 0;
  virtual Status sanitize_log(SanitizeLog& out) = 0;
  virtual Status format(const FormatParams& p) = 0;
};

// The real controller through libnvme 1.3: opens node (/dev/nvmeX, or a
// namespace block device) read-only; admin ioctls need CAP_SYS_ADMIN.
// Throws Errc::io when it cannot be opened.
std::unique_ptr<Admin> open_admin(const std::string& node);

// Parsers of the raw 4096-byte Identify data structures (little-endian
// fields at their specified offsets), exposed for tests.
ControllerInfo parse_identify_ctrl(const void* data4096);
NamespaceInfo parse_identify_ns(std::uint32_t nsid, const void* data4096);
SanitizeLog parse_sanitize_log(const void* data512);

}  // namespace dlc::wipe::nvme
