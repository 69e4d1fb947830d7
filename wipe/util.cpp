#include "wipe/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/crypto.h"
#include "core/error.h"

namespace dlc::wipe::util {

namespace fs = std::filesystem;

std::string random_uuid() {
  crypto::Bytes b = crypto::random_bytes(16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  std::string h = crypto::to_hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

std::string random_name(std::size_t len) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  crypto::Bytes b = crypto::random_bytes(len);
  std::string s(len, 'x');
  // 252 = 7 * 36: reject larger bytes so every character is equally likely.
  for (std::size_t i = 0; i < len; ++i) {
    std::uint8_t v = b[i];
    while (v >= 252) v = crypto::random_bytes(1)[0];
    s[i] = alphabet[v % 36];
  }
  return s;
}

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && (std::isspace(static_cast<unsigned char>(s[a])) || s[a] == '\0')) ++a;
  while (b > a && (std::isspace(static_cast<unsigned char>(s[b - 1])) || s[b - 1] == '\0')) --b;
  return std::string(s.substr(a, b - a));
}

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return trim(ss.str());
}

std::string read_text_or(const fs::path& p, std::string fallback) {
  auto v = read_text(p);
  return v ? *v : std::move(fallback);
}

std::optional<std::uint64_t> read_u64(const fs::path& p) {
  auto v = read_text(p);
  if (!v || v->empty()) return std::nullopt;
  try {
    std::size_t used = 0;
    std::uint64_t n = std::stoull(*v, &used, 10);
    if (used != v->size()) return std::nullopt;
    return n;
  } catch (...) {
    return std::nullopt;
  }
}

std::uint64_t parse_size(std::string_view text, std::string_view option) {
  std::string t = trim(text);
  auto bad = [&]() -> Error {
    return Error(Errc::usage, "bad size for " + std::string(option), "'" + t + "'", {},
                 "use a number with an optional K, M, G or T suffix (binary units)");
  };
  if (t.empty()) throw bad();
  std::uint64_t mult = 1;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
  if (last == 'B' && t.size() >= 2) {  // "64MiB" / "64MB" / "64B"
    t.pop_back();
    if (!t.empty() && (t.back() == 'i' || t.back() == 'I')) t.pop_back();
    last = t.empty() ? '0' : static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
  }
  switch (last) {
    case 'K': mult = 1ull << 10; break;
    case 'M': mult = 1ull << 20; break;
    case 'G': mult = 1ull << 30; break;
    case 'T': mult = 1ull << 40; break;
    default: break;
  }
  if (mult != 1) t.pop_back();
  if (t.empty()) throw bad();
  for (char c : t)
    if (!std::isdigit(static_cast<unsigned char>(c))) throw bad();
  std::uint64_t n = 0;
  try {
    n = std::stoull(t);
  } catch (...) {
    throw bad();
  }
  if (n > (~0ull) / mult) throw bad();
  return n * mult;
}

std::string unescape_octal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<MountInfoRow> read_mountinfo(const fs::path& mountinfo) {
  std::vector<MountInfoRow> out;
  std::ifstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::vector<std::string> f;
    for (std::string w; ss >> w;) f.push_back(w);
    if (f.size() < 7) continue;
    MountInfoRow m;
    m.devnum = f[2];
    m.mountpoint = unescape_octal(f[4]);
    // Optional fields end at "-"; then fstype, source, super options.
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 2 < f.size()) {
      m.fstype = f[dash + 1];
      m.source = unescape_octal(f[dash + 2]);
      if (dash + 3 < f.size()) m.superopts = f[dash + 3];
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace dlc::wipe::util
