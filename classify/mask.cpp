#include "classify/mask.h"

#include <algorithm>
#include <vector>

#include "classify/bytes.h"

namespace dlc::classify {

namespace {

bool is_digit(char c) { return bytes::is_digit(static_cast<unsigned char>(c)); }
bool is_alnum(char c) { return bytes::is_alnum(static_cast<unsigned char>(c)); }

// Keeps the first `keep_head` and last `keep_tail` characters for which
// `counts` is true, replaces the other counted characters by '*', and leaves
// separators as they are. At least 40% of the counted characters are masked
// (an 18-digit ID shows 6 + 4, as in "110105********123X").
template <typename Pred>
std::string keep_ends(std::string_view raw, std::size_t keep_head, std::size_t keep_tail,
                      Pred counts) {
  std::size_t total = 0;
  for (char c : raw)
    if (counts(c)) ++total;
  const std::size_t max_kept = total - (total * 2 + 4) / 5;
  while (keep_head + keep_tail > max_kept && (keep_head > 0 || keep_tail > 0)) {
    if (keep_head >= keep_tail && keep_head > 0)
      --keep_head;
    else
      --keep_tail;
  }
  std::string out(raw);
  std::size_t k = 0;
  for (char& c : out) {
    if (!counts(c)) continue;
    if (k >= keep_head && k + keep_tail < total) c = '*';
    ++k;
  }
  return out;
}

std::string mask_mobile(std::string_view raw) {
  // raw may carry a +86 / 0086 prefix: only the last 11 digits are the number.
  std::vector<std::size_t> digits;
  for (std::size_t i = 0; i < raw.size(); ++i)
    if (is_digit(raw[i])) digits.push_back(i);
  std::string out(raw);
  if (digits.size() < 11) return std::string(raw.size(), '*');
  std::size_t first = digits.size() - 11;
  for (std::size_t k = first + 3; k < first + 7; ++k) out[digits[k]] = '*';
  return out;
}

std::string mask_email(std::string_view raw) {
  auto at = raw.find('@');
  if (at == std::string_view::npos || at == 0) return "***";
  std::string out;
  out += raw[0];
  out += "***";
  out += raw.substr(at);
  return out;
}

std::string mask_ipv4(std::string_view raw) {
  auto d1 = raw.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : raw.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return "*.*.*.*";
  return std::string(raw.substr(0, d2)) + ".*.*";
}

std::string mask_ipv6(std::string_view raw) {
  // Keep the first two groups (the first one before a "::").
  auto c1 = raw.find(':');
  if (c1 == std::string_view::npos || c1 == 0) return "*:*";
  auto c2 = raw.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c2 == c1 + 1) return std::string(raw.substr(0, c1)) + ":*";
  return std::string(raw.substr(0, c2)) + ":*";
}

// The parts of a private key block that may be shown: its "-----BEGIN ...-----"
// header and "-----END ...-----" footer, never a byte of the body, however the
// block is laid out (one line in a binary's strings, literal "\\n" in JSON).
struct KeyBlock {
  std::string_view header, footer, newline;
};
KeyBlock key_block(std::string_view raw) {
  KeyBlock k;
  k.newline = "\n";
  constexpr std::string_view begin = "-----BEGIN ";
  if (raw.substr(0, begin.size()) != begin) return k;
  const auto close = raw.find("-----", begin.size());
  if (close == std::string_view::npos || close - begin.size() > 64) return k;
  k.header = raw.substr(0, close + 5);
  const std::string_view rest = raw.substr(close + 5);
  if (rest.substr(0, 2) == "\\n")
    k.newline = "\\n";
  else if (rest.substr(0, 2) == "\r\n")
    k.newline = "\r\n";
  const auto end = raw.rfind("-----END ");
  if (end != std::string_view::npos && end >= k.header.size()) {
    const auto end_close = raw.find("-----", end + 9);
    if (end_close != std::string_view::npos && end_close - end <= 64)
      k.footer = raw.substr(end, end_close + 5 - end);
  }
  return k;
}

}  // namespace

std::string mask_sample(InfoType type, std::string_view raw) {
  switch (type) {
    case InfoType::resident_id:
      return keep_ends(raw, 6, 4, is_alnum);
    case InfoType::resident_id_15:
      return keep_ends(raw, 6, 3, is_alnum);
    case InfoType::bank_card:
      return keep_ends(raw, 4, 4, is_digit);
    case InfoType::mobile:
      return mask_mobile(raw);
    case InfoType::uscc:
      return keep_ends(raw, 4, 2, is_alnum);
    case InfoType::email:
      return mask_email(raw);
    case InfoType::ipv4:
      return mask_ipv4(raw);
    case InfoType::ipv6:
      return mask_ipv6(raw);
    case InfoType::iban:
      return keep_ends(raw, 4, 4, is_alnum);
    case InfoType::passport:
    case InfoType::travel_permit:
      return keep_ends(raw, 1, 3, is_alnum);
    case InfoType::private_key: {
      const KeyBlock k = key_block(raw);
      return k.header.empty() ? "[redacted private key]" : std::string(k.header) + " [redacted]";
    }
    case InfoType::aws_access_key:
    case InfoType::alibaba_access_key:
    case InfoType::tencent_secret_id:
      return std::string(raw.substr(0, 4)) + std::string(raw.size() > 4 ? raw.size() - 4 : 0, '*');
    case InfoType::jwt:
      return "eyJ***.***.***";
    case InfoType::password:
    case InfoType::secret:
      return "********";
    case InfoType::cvv:
      return "***";
    case InfoType::pin:
      return "****";
  }
  return "***";
}

std::string mask_replacement(InfoType type, std::string_view raw) {
  if (type != InfoType::private_key) return mask_sample(type, raw);
  const KeyBlock k = key_block(raw);
  if (k.header.empty()) return "[REDACTED by dlc]";
  std::string out(k.header);
  out.append(k.newline).append("[REDACTED by dlc]");
  if (!k.footer.empty()) out.append(k.newline).append(k.footer);
  return out;
}

}  // namespace dlc::classify
