#include "classify/context.h"

#include <algorithm>
#include <array>
#include <bitset>
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

// Keywords indexed by their first (lower-case) byte.
struct Index {
  std::array<std::vector<const Keyword*>, 256> by_first;
  std::bitset<65536> first_two;  // (lower-case) first two bytes of some keyword
  std::size_t longest = 0;
  Index() {
    for (const auto& k : kKeywords) {
      by_first[static_cast<unsigned char>(k.text[0])].push_back(&k);
      first_two.set(static_cast<unsigned char>(k.text[0]) << 8 |
                    static_cast<unsigned char>(k.text[1]));
      longest = std::max(longest, k.text.size());
    }
  }
  // Whether a keyword may start at s[i]: most positions fail this at once.
  bool may_start(std::string_view s, std::size_t i) const {
    return i + 1 < s.size() && first_two.test(lower(static_cast<unsigned char>(s[i])) << 8 |
                                              lower(static_cast<unsigned char>(s[i + 1])));
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
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!ix.may_start(s, i)) continue;
    const auto& list = ix.by_first[lower(static_cast<unsigned char>(s[i]))];
    for (const Keyword* k : list)
      if (match_at(s, i, *k)) f(i, *k);
  }
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
    if (!ix.may_start(window, i)) continue;
    for (const Keyword* k : ix.by_first[lower(static_cast<unsigned char>(window[i]))]) {
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

std::uint32_t context_bit(InfoType t) noexcept {
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
