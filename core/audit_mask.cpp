// mask_arguments: what of a command line may enter the audit log.
// The rule is written down in docs/formats/audit-log.md ("Masking").
#include <algorithm>
#include <array>
#include <cctype>
#include <regex>

#include "core/audit_log.h"

namespace dlc::audit {

namespace {

constexpr std::string_view kMask = "***";

constexpr std::array<std::string_view, 7> kSecretWords = {
    "passphrase", "password", "passwd", "secret", "token", "key", "credential"};
// Options that name where a secret is, or describe it, are not secret: paths,
// descriptors, variable names, ids, sizes, algorithms, fingerprints.
constexpr std::array<std::string_view, 14> kNotSecretSuffixes = {
    "-file", "-path", "-dir", "-fd",     "-env", "-id",        "-name",
    "-size", "-bits", "-len", "-length", "-alg", "-algorithm", "-fingerprint"};
constexpr std::array<std::string_view, 3> kPublicKeyNames = {"pubkey", "public-key", "publickey"};

std::string option_name(std::string_view raw) {
  std::string n(raw);
  for (char& c : n) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == '_') c = '-';
  }
  return n;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool sensitive_name(std::string_view raw) {
  const std::string name = option_name(raw);
  if (std::find(kPublicKeyNames.begin(), kPublicKeyNames.end(), name) != kPublicKeyNames.end())
    return false;
  for (auto s : kNotSecretSuffixes)
    if (ends_with(name, s)) return false;
  for (auto w : kSecretWords)
    if (name.find(w) != std::string::npos) return true;
  return false;
}

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// >= 32 hex digits (optionally 0x-prefixed): a raw key, a token, a digest.
bool looks_like_hex_secret(std::string_view v) {
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) v.remove_prefix(2);
  return v.size() >= 32 && std::all_of(v.begin(), v.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

// >= 40 characters of (standard or URL-safe) base64 with up to two '=' of
// padding, mixing upper case, lower case and digits, with a run of at least 20
// letters/digits between separators, and not starting like a path ('/', '.').
// The run rule spares device names such as nvme-Samsung_SSD_970_EVO_1TB_S4EW.
bool looks_like_base64_secret(std::string_view v) {
  while (!v.empty() && v.back() == '=') v.remove_suffix(1);
  if (v.size() < 40 || v.front() == '/' || v.front() == '.' || v.front() == '-') return false;
  bool upper = false, lower = false, digit = false;
  std::size_t run = 0, longest = 0;
  for (char c : v) {
    const bool sep = c == '+' || c == '/' || c == '-' || c == '_';
    if (!sep && !is_alnum(c)) return false;
    upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
    lower |= std::islower(static_cast<unsigned char>(c)) != 0;
    digit |= std::isdigit(static_cast<unsigned char>(c)) != 0;
    run = sep ? 0 : run + 1;
    longest = std::max(longest, run);
  }
  return upper && lower && digit && longest >= 20;
}

bool looks_secret(std::string_view v) {
  return v.find("-----BEGIN") != std::string_view::npos || looks_like_hex_secret(v) ||
         looks_like_base64_secret(v);
}

// A free-standing value: a secret-looking value, NAME=VALUE with a sensitive
// NAME or a secret-looking VALUE, or a URL's password.
std::string mask_value(const std::string& v) {
  if (v.empty()) return v;
  if (looks_secret(v)) return std::string(kMask);
  static const std::regex assignment(R"(^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$)");
  std::smatch m;
  if (std::regex_match(v, m, assignment) &&
      (sensitive_name(m[1].str()) || looks_secret(m[2].str())))
    return m[1].str() + "=" + std::string(kMask);
  static const std::regex url_password(R"(^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@)");
  return std::regex_replace(v, url_password, "$1:***@", std::regex_constants::format_first_only);
}

}  // namespace

std::vector<std::string> mask_arguments(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  bool options_ended = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.find("-----BEGIN") != std::string::npos) {  // a PEM block, whatever precedes it
      out.emplace_back(kMask);
      continue;
    }
    if (options_ended || a.size() < 2 || a[0] != '-') {
      out.push_back(mask_value(a));
      continue;
    }
    if (a == "--") {
      out.push_back(a);
      options_ended = true;
      continue;
    }
    if (a[1] != '-') {  // short options: their values are separate and masked as values
      out.push_back(a);
      continue;
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (eq != std::string::npos) {
      out.push_back("--" + name + "=" +
                    (sensitive_name(name) ? std::string(kMask) : mask_value(a.substr(eq + 1))));
      continue;
    }
    out.push_back(a);
    // --name VALUE: the next argument is the value unless it is another long option.
    if (sensitive_name(name) && i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
      out.emplace_back(kMask);
      ++i;
    }
  }
  return out;
}

}  // namespace dlc::audit
