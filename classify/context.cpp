#include "classify/context.h"

#include <algorithm>
#include <array>
#include <vector>

#include "classify/bytes.h"

namespace dlc::classify {

namespace {

struct Keyword {
  std::string_view text;  // lower-case ASCII or UTF-8
  std::uint32_t bits;
  bool whole_word;  // short words: not inside a longer ASCII word
};

constexpr Keyword kKeywords[] = {
    {"身份证", kCtxResidentId, false},
    {"证件号", kCtxResidentId, false},
    {"身份号", kCtxResidentId, false},
    {"公民身份", kCtxResidentId, false},
    {"id_card", kCtxResidentId, false},
    {"idcard", kCtxResidentId, false},
    {"id_no", kCtxResidentId, false},
    {"idno", kCtxResidentId, false},
    {"id_number", kCtxResidentId, false},
    {"idnumber", kCtxResidentId, false},
    {"id_num", kCtxResidentId, false},
    {"citizen", kCtxResidentId, false},
    {"identity", kCtxResidentId, false},
    {"sfz", kCtxResidentId, true},
    {"cert_no", kCtxResidentId, false},
    {"certno", kCtxResidentId, false},
    {"id card", kCtxResidentId, false},
    {"national id", kCtxResidentId, false},

    {"银行卡", kCtxCard, false},
    {"卡号", kCtxCard, false},
    {"借记卡", kCtxCard, false},
    {"信用卡", kCtxCard, false},
    {"储蓄卡", kCtxCard, false},
    {"账号", kCtxCard, false},
    {"帐号", kCtxCard, false},
    {"账户", kCtxCard, false},
    {"card", kCtxCard, false},
    {"pan", kCtxCard, true},
    {"account", kCtxAccount, false},
    {"acct", kCtxAccount, false},
    {"bank", kCtxAccount, false},

    {"手机", kCtxPhone, false},
    {"电话", kCtxPhone, false},
    {"联系方式", kCtxPhone, false},
    {"mobile", kCtxPhone, false},
    {"phone", kCtxPhone, false},
    {"tel", kCtxPhone, true},
    {"cell", kCtxPhone, true},
    {"msisdn", kCtxPhone, false},
    {"contact", kCtxPhone, false},

    {"信用代码", kCtxUscc, false},
    {"统一社会", kCtxUscc, false},
    {"营业执照", kCtxUscc, false},
    {"纳税人", kCtxUscc, false},
    {"credit_code", kCtxUscc, false},
    {"creditcode", kCtxUscc, false},
    {"uscc", kCtxUscc, false},
    {"social_credit", kCtxUscc, false},
    {"tax_no", kCtxUscc, false},
    {"taxpayer", kCtxUscc, false},

    {"护照", kCtxPassport, false},
    {"passport", kCtxPassport, false},

    {"通行证", kCtxPermit, false},
    {"回乡证", kCtxPermit, false},
    {"台胞证", kCtxPermit, false},
    {"permit", kCtxPermit, false},
    {"travel_doc", kCtxPermit, false},

    {"邮箱", kCtxEmail, false},
    {"email", kCtxEmail, false},
    {"mail", kCtxEmail, false},
    {"iban", kCtxIban, false},

    {"ip", kCtxIp, true},
    {"ipv6", kCtxIp, false},
    {"ip6", kCtxIp, false},
    {"inet6", kCtxIp, false},
    {"addr", kCtxIp, false},
    {"host", kCtxIp, false},

    {"订单", kCtxNegative, false},
    {"流水", kCtxNegative, false},
    {"交易号", kCtxNegative, false},
    {"发票", kCtxNegative, false},
    {"商户号", kCtxNegative, false},
    {"order", kCtxNegative, false},
    {"txn", kCtxNegative, false},
    {"trade_no", kCtxNegative, false},
    {"trace", kCtxNegative, false},
    {"serial", kCtxNegative, false},
    {"seq", kCtxNegative, true},
    {"uuid", kCtxNegative, false},
    {"timestamp", kCtxNegative, false},
    {"hash", kCtxNegative, false},
    {"md5", kCtxNegative, false},
    {"sha1", kCtxNegative, false},
    {"sha256", kCtxNegative, false},
    {"tracking", kCtxNegative, false},
    {"isbn", kCtxNegative, false},
    {"invoice", kCtxNegative, false},
    {"request_id", kCtxNegative, false},
    {"merchant", kCtxNegative, false},
    {"version", kCtxNegative, false},
};

using bytes::lower;
constexpr bool ascii_letter(unsigned char c) noexcept { return bytes::is_alpha(c); }

// Keywords grouped by their first two (lower-case) bytes: a 64 KiB table
// says which group, if any, may start at a position.
struct Index {
  std::array<unsigned char, 256> low{};
  std::array<std::uint8_t, 65536> group{};  // 0: no keyword starts so
  std::vector<std::vector<const Keyword*>> lists{1};
  std::size_t longest = 0;
  Index() {
    for (int c = 0; c < 256; ++c)
      low[static_cast<std::size_t>(c)] = lower(static_cast<unsigned char>(c));
    for (const auto& k : kKeywords) {
      const unsigned key =
          static_cast<unsigned char>(k.text[0]) << 8 | static_cast<unsigned char>(k.text[1]);
      if (!group[key]) {
        group[key] = static_cast<std::uint8_t>(lists.size());
        lists.emplace_back();
      }
      lists[group[key]].push_back(&k);
      longest = std::max(longest, k.text.size());
    }
  }
  // The keywords that may start at s[i] (nullptr for most positions).
  const std::vector<const Keyword*>* at(std::string_view s, std::size_t i) const {
    if (i + 1 >= s.size()) return nullptr;
    const std::uint8_t g = group[low[static_cast<unsigned char>(s[i])] << 8 |
                                 low[static_cast<unsigned char>(s[i + 1])]];
    return g ? &lists[g] : nullptr;
  }
};
const Index& index() {
  static const Index i;
  return i;
}

bool match_at(std::string_view s, std::size_t i, const Keyword& k) noexcept {
  if (s.size() - i < k.text.size()) return false;
  for (std::size_t j = 0; j < k.text.size(); ++j)
    if (lower(static_cast<unsigned char>(s[i + j])) != static_cast<unsigned char>(k.text[j]))
      return false;
  if (k.whole_word) {
    if (i > 0 && ascii_letter(static_cast<unsigned char>(s[i - 1]))) return false;
    std::size_t e = i + k.text.size();
    if (e < s.size() && ascii_letter(static_cast<unsigned char>(s[e]))) return false;
  }
  return true;
}

template <typename F>
void for_each_keyword(std::string_view s, F&& f) {
  const Index& ix = index();
  for (std::size_t i = 0; i < s.size(); ++i)
    if (const auto* list = ix.at(s, i))
      for (const Keyword* k : *list)
        if (match_at(s, i, *k)) f(i, *k);
}

}  // namespace

std::uint32_t nearest_context(std::string_view window) noexcept {
  // From the end backwards: the first keyword found is the nearest one (the
  // longest keyword starting there wins: "身份证号" over "身份").
  // Scanning from the end, stop once no keyword starting further left can end
  // later than the best one ("id_card" beats the "card" inside it).
  const Index& ix = index();
  std::uint32_t bits = 0;
  std::size_t best_end = 0, best_len = 0;
  for (std::size_t i = window.size(); i-- > 0;) {
    if (bits && i + ix.longest < best_end) break;
    const auto* list = ix.at(window, i);
    if (!list) continue;
    for (const Keyword* k : *list) {
      const std::size_t end = i + k->text.size();
      if ((end > best_end || (end == best_end && k->text.size() > best_len)) &&
          match_at(window, i, *k)) {
        best_end = end;
        best_len = k->text.size();
        bits = k->bits;
      }
    }
  }
  return bits;
}

std::uint32_t name_context(std::string_view name) noexcept {
  std::uint32_t bits = 0;
  for_each_keyword(name, [&](std::size_t, const Keyword& k) { bits |= k.bits; });
  return bits;
}

std::optional<InfoType> credential_column(std::string_view name) noexcept {
  while (!name.empty() && (name.back() == ' ' || name.back() == '"' || name.back() == '\''))
    name.remove_suffix(1);
  auto ends_with = [&](std::string_view suffix) {
    if (name.size() < suffix.size()) return false;
    std::string_view tail = name.substr(name.size() - suffix.size());
    for (std::size_t i = 0; i < suffix.size(); ++i)
      if (lower(static_cast<unsigned char>(tail[i])) != static_cast<unsigned char>(suffix[i]))
        return false;
    // An ASCII suffix must start a word: "pin" ends "shipping_pin" but not "spin".
    std::size_t at = name.size() - suffix.size();
    return at == 0 || !ascii_letter(static_cast<unsigned char>(name[at - 1])) ||
           static_cast<unsigned char>(suffix[0]) >= 0x80;
  };
  for (auto s : {"password", "passwd", "pwd", "passphrase", "密码", "口令"})
    if (ends_with(s)) return InfoType::password;
  for (auto s : {"secret", "token", "api_key", "apikey", "secret_key", "secretkey"})
    if (ends_with(s)) return InfoType::secret;
  for (auto s : {"cvv", "cvv2", "cvc", "cvc2", "cvn", "cvn2", "安全码"})
    if (ends_with(s)) return InfoType::cvv;
  for (auto s : {"pin", "pincode", "pin_code"})
    if (ends_with(s)) return InfoType::pin;
  return std::nullopt;
}

}  // namespace dlc::classify
