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
};

// The context of the keyword that ends nearest to the end of `window`
// (the text just before a candidate on the same line); 0 when none.
std::uint32_t nearest_context(std::string_view window) noexcept;
// All context bits named in a column or field name.
std::uint32_t name_context(std::string_view name) noexcept;
// The context bit that supports a type (0 for types without context words).
std::uint32_t context_bit(InfoType t) noexcept;

// A column name that declares credentials: it ends with password, passwd,
// pwd, 密码, secret, token, cvv, cvn2, pin... (case-insensitive).
std::optional<InfoType> credential_column(std::string_view name) noexcept;

}  // namespace dlc::classify
