// Context words (Chinese and English) that raise or lower the confidence of a
// candidate: "身份证", "卡号", "phone", "card_no"... A CSV/TSV column's name
// or a JSON field's name counts as context for its values.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "classify/classify.h"

namespace dlc::classify {

enum ContextBit : std::uint32_t {
  kCtxResidentId = 1u << 0,
  kCtxCard = 1u << 1,
  kCtxPhone = 1u << 2,
  kCtxUscc = 1u << 3,
  kCtxPassport = 1u << 4,
  kCtxPermit = 1u << 5,
  kCtxEmail = 1u << 6,
  kCtxIban = 1u << 7,
  kCtxNegative = 1u << 8,  // order numbers, serials, hashes, timestamps...
  kCtxAccount = 1u << 9,   // "account", "bank": weak evidence for a card
  kCtxIp = 1u << 10,       // "ip", "ipv6", "addr", "host": short IPv6 forms need it
};

// The context of the keyword that ends nearest to the end of `window`
// (the text just before a candidate on the same line); 0 when none.
std::uint32_t nearest_context(std::string_view window) noexcept;
// All context bits named in a column or field name.
std::uint32_t name_context(std::string_view name) noexcept;
// The context bit that supports a type (0 for types without context words).
constexpr std::uint32_t context_bit(InfoType t) noexcept {
  switch (t) {
    case InfoType::resident_id:
    case InfoType::resident_id_15:
      return kCtxResidentId;
    case InfoType::bank_card:
      return kCtxCard;
    case InfoType::mobile:
      return kCtxPhone;
    case InfoType::uscc:
      return kCtxUscc;
    case InfoType::passport:
      return kCtxPassport;
    case InfoType::travel_permit:
      return kCtxPermit;
    case InfoType::email:
      return kCtxEmail;
    case InfoType::iban:
      return kCtxIban;
    default:
      return 0;
  }
}

// A column name that declares credentials: it ends with password, passwd,
// pwd, 密码, secret, token, cvv, cvn2, pin... (case-insensitive).
std::optional<InfoType> credential_column(std::string_view name) noexcept;

}  // namespace dlc::classify
