// Key slots: each wraps the 32-byte master secret under one credential.
//   passphrase  KEK = scrypt(passphrase, salt, N, r, p)
//   keyfile     KEK = HKDF-SHA256(file bytes, salt, "dlc-backup/1 keyfile slot")
//   command     KEK = HKDF-SHA256(command output, salt, "dlc-backup/1 command slot")
//   pkcs11      the token's AES key encrypts the master with CKM_AES_GCM (it
//               never leaves the token)
// then wrapped = AEAD_cipher(KEK, nonce, aad = "dlc-backup/1 slot <id> <type>", master).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "backup/repository.h"
#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

std::string KeySource::kind() const {
  if (!key_file.empty()) return "keyfile";
  if (!key_command.empty()) return "command";
  if (!pkcs11_module.empty() || !pkcs11_token.empty() || !pkcs11_key.empty()) return "pkcs11";
  return "passphrase";
}


namespace {

void strip_newline(std::string& s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
}

SecureBuffer to_secure(std::string& s) {
  SecureBuffer b(crypto::as_bytes(s));
  for (auto& c : s) c = 0;
  s.clear();
  return b;
}

// Runs `sh -c command`, returning its standard output. Throws Errc::auth when
// it fails (its standard error passes through to ours).
std::string run_secret_command(const std::string& command, const std::string& what) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) throw_errno("cannot run the " + what, command);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (status != 0)
    throw Error(Errc::auth, "the " + what + " failed", {},
                WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status)) : "killed by a signal",
                "nothing was changed");
  strip_newline(out);
  return out;
}

std::string prompt_tty(const std::string& prompt) {
  Fd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC));
  if (!tty) return {};
  termios old{};
  const bool term = ::tcgetattr(tty.get(), &old) == 0;
  if (term) {
    termios t = old;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty.get(), TCSAFLUSH, &t);
  }
  (void)!::write(tty.get(), prompt.data(), prompt.size());
  std::string line;
  char c;
  while (::read(tty.get(), &c, 1) == 1 && c != '\n') line.push_back(c);
  if (term) ::tcsetattr(tty.get(), TCSAFLUSH, &old);
  (void)!::write(tty.get(), "\n", 1);
  return line;
}

std::string read_secret_file(const std::string& path, const std::string& what) {
  Bytes b;
  try {
    b = read_file_bytes(path);
  } catch (const Error& e) {
    throw Error(Errc::auth, "cannot read the " + what, path, e.info().detail, "nothing was changed");
  }
  std::string s(b.begin(), b.end());
  std::fill(b.begin(), b.end(), 0);
  return s;
}

}  // namespace

// The passphrase: command, else the file named by the env var, else a prompt.
SecureBuffer read_passphrase(const KeySource& src, bool confirm, const std::string& what) {
  std::string pass;
  if (!src.passphrase_command.empty()) {
    pass = run_secret_command(src.passphrase_command, "passphrase command");
  } else if (const char* f = std::getenv(src.passphrase_env.c_str()); f && *f) {
    pass = read_secret_file(f, "passphrase file named by " + src.passphrase_env);
    strip_newline(pass);
  } else if (src.prompt && ::isatty(STDIN_FILENO)) {
    pass = prompt_tty("Enter " + what + ": ");
    if (confirm && prompt_tty("Repeat " + what + ": ") != pass)
      throw Error(Errc::usage, "the passphrases do not match", {}, {}, "nothing was changed");
  } else {
    throw Error(Errc::usage, "no " + what + " given", {}, {},
                "set " + src.passphrase_env + " to the path of a file holding it, pass "
                "--passphrase-command CMD, or run on a terminal");
  }
  if (pass.empty()) throw Error(Errc::usage, "empty " + what, {}, {}, "nothing was changed");
  return to_secure(pass);
}

namespace {

SecureBuffer secret_for(const KeySource& src, const std::string& kind, bool creating) {
  if (kind == "passphrase") return read_passphrase(src, creating, "passphrase");
  if (kind == "command") {
    std::string s = run_secret_command(src.key_command, "key command");
    if (s.size() < 16)
      throw Error(Errc::auth, "the key command printed fewer than 16 bytes", {}, {},
                  "it must print the key (e.g. 32 random bytes, hex or raw)");
    return to_secure(s);
  }
  // keyfile: created (64 hex digits from the CSPRNG, 0600) when missing at init/key add.
  if (creating && !fs::exists(src.key_file)) {
    const std::string content = crypto::to_hex(crypto::random_key(32)) + "\n";
    Fd fd(::open(src.key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) throw_errno("cannot create key file", src.key_file);
    write_all(fd.get(), crypto::as_bytes(content), src.key_file);
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync key file", src.key_file);
    notice(NoticeLevel::warning, "created key file " + src.key_file + ": keep a copy apart from the repository");
  }
  struct stat st{};
  if (::stat(src.key_file.c_str(), &st) == 0 && (st.st_mode & 077))
    notice(NoticeLevel::warning, "key file " + src.key_file + " is readable by other users; chmod 600 it");
  std::string s = read_secret_file(src.key_file, "key file");
  if (s.size() < 32)
    throw Error(Errc::auth, "unusable key file", src.key_file, "shorter than 32 bytes", "nothing was changed");
  return to_secure(s);
}

std::string slot_aad(const std::string& id, const std::string& type) {
  return "dlc-backup/1 slot " + id + " " + type;
}

// Refuses scrypt parameters beyond kMaxScryptWork (before any memory is taken).
void check_scrypt_work(const crypto::ScryptParams& p, const std::string& slot_id) {
  const std::uint64_t r = p.r ? p.r : 1, q = p.p ? p.p : 1;
  if (p.n > kMaxScryptWork || r > kMaxScryptWork || q > kMaxScryptWork || p.n * r > kMaxScryptWork ||
      p.n * r * q > kMaxScryptWork)  // each product is checked before it could overflow
    throw Error(Errc::usage, "scrypt parameters beyond dlc's limit", slot_id,
                "N=" + std::to_string(p.n) + " r=" + std::to_string(p.r) + " p=" + std::to_string(p.p) +
                    " (N*r*p may be at most 2^23)",
                "use --scrypt-n 1048576 or less");
}

SecureBuffer slot_kek(const json& slot, crypto::ByteView secret, crypto::AeadAlg alg) {
  const std::string type = slot.at("type");
  const json& kdf = slot.at("kdf");
  const Bytes salt = crypto::from_hex(kdf.at("salt").get<std::string>());
  if (type == "passphrase") {
    crypto::ScryptParams p{kdf.at("n").get<std::uint64_t>(), kdf.at("r").get<std::uint32_t>(),
                           kdf.at("p").get<std::uint32_t>()};
    check_scrypt_work(p, slot.value("id", ""));
    std::string_view pass(reinterpret_cast<const char*>(secret.data()), secret.size());
    return crypto::scrypt(pass, salt, p, crypto::aead_key_size(alg));
  }
  const std::string info = "dlc-backup/1 " + type + " slot";
  return crypto::hkdf_sha256(secret, salt, crypto::as_bytes(info), crypto::aead_key_size(alg));
}

}  // namespace

json make_slot(const KeySource& src, crypto::AeadAlg alg, crypto::ByteView master, const std::string& label,
               std::uint64_t scrypt_n, bool create_pkcs11_key) {
  const std::string type = src.kind();
  json slot = {{"id", random_hex_id(8)},   {"type", type},           {"label", label},
               {"created", rfc3339(now_ns())}, {"host", host_name()}, {"user", user_name()},
               {"version", 1}};
  const std::string id = slot["id"];
  const Bytes nonce = crypto::random_bytes(crypto::kAeadNonceSize);
  slot["nonce"] = crypto::to_hex(nonce);
  const std::string aad = slot_aad(id, type);
  if (type == "pkcs11") {
    if (src.pkcs11_module.empty() || src.pkcs11_token.empty() || src.pkcs11_key.empty())
      throw Error(Errc::usage, "a PKCS#11 slot needs --pkcs11-module, --pkcs11-token and --pkcs11-key");
    slot["pkcs11"] = {{"module", src.pkcs11_module}, {"token", src.pkcs11_token},
                      {"key", src.pkcs11_key}, {"mechanism", "CKM_AES_GCM"}};
    slot["wrapped"] = crypto::to_hex(pkcs11_wrap(src, master, nonce, crypto::as_bytes(aad), create_pkcs11_key));
    return slot;
  }
  const Bytes salt = crypto::random_bytes(32);
  if (type == "passphrase") check_scrypt_work({scrypt_n, 8, 1}, id);
  if (type == "passphrase")
    slot["kdf"] = {{"name", "scrypt"}, {"n", scrypt_n}, {"r", 8}, {"p", 1}, {"salt", crypto::to_hex(salt)}};
  else
    slot["kdf"] = {{"name", "hkdf-sha256"}, {"salt", crypto::to_hex(salt)}};
  if (type == "keyfile") slot["hint"] = fs::absolute(src.key_file).string();
  if (type == "command") slot["hint"] = src.key_command;
  SecureBuffer secret = secret_for(src, type, true);
  SecureBuffer kek = slot_kek(slot, secret, alg);
  crypto::Aead aead(alg, kek);
  slot["wrapped"] = crypto::to_hex(aead.seal(nonce, crypto::as_bytes(aad), master));
  return slot;
}

std::optional<SecureBuffer> open_slot(const json& slot, const KeySource& src, crypto::AeadAlg alg,
                                      SecretCache& cache) {
  const std::string type = slot.at("type");
  const std::string id = slot.at("id");
  const Bytes nonce = crypto::from_hex(slot.at("nonce").get<std::string>());
  const Bytes wrapped = crypto::from_hex(slot.at("wrapped").get<std::string>());
  const std::string aad = slot_aad(id, type);
  if (type == "pkcs11") {
    const json& p = slot.at("pkcs11");
    KeySource s = src;
    if (s.pkcs11_module.empty()) s.pkcs11_module = p.value("module", "");
    if (s.pkcs11_token.empty()) s.pkcs11_token = p.value("token", "");
    if (s.pkcs11_key.empty()) s.pkcs11_key = p.value("key", "");
    if (s.pkcs11_token != p.value("token", "") || s.pkcs11_key != p.value("key", "")) return std::nullopt;
    return pkcs11_unwrap(s, wrapped, nonce, crypto::as_bytes(aad));
  }
  if (!cache.secret) cache.secret = secret_for(src, type, false);
  SecureBuffer kek = slot_kek(slot, *cache.secret, alg);
  crypto::Aead aead(alg, kek);
  SecureBuffer master(wrapped.size() >= crypto::kAeadTagSize ? wrapped.size() - crypto::kAeadTagSize : 0);
  try {
    aead.open(nonce, crypto::as_bytes(aad), wrapped, master.span());
  } catch (const Error& e) {
    if (e.code() == Errc::auth) return std::nullopt;
    throw;
  }
  return master;
}

bool slot_well_formed(const json& s, const std::string& file_name, std::string* why) {
  auto no = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  if (!s.is_object()) return no("not a JSON object");
  if (!s.contains("id") || !s["id"].is_string() || s["id"].get_ref<const std::string&>() != file_name)
    return no("its \"id\" is not its file name");
  for (const char* k : {"type", "nonce", "wrapped"})
    if (!s.contains(k) || !s[k].is_string()) return no(std::string("\"") + k + "\" is missing or not a string");
  for (const char* k : {"label", "created", "host", "user", "hint"})
    if (!json_string_or_absent(s, k)) return no(std::string("\"") + k + "\" is not a string");
  if (!json_uint_or_absent(s, "version")) return no("\"version\" is not a number");
  const std::string& type = s["type"].get_ref<const std::string&>();
  if (type == "pkcs11") {
    if (!s.contains("pkcs11") || !s["pkcs11"].is_object()) return no("\"pkcs11\" is missing or not an object");
    for (const char* k : {"module", "token", "key", "mechanism"})
      if (!json_string_or_absent(s["pkcs11"], k)) return no(std::string("pkcs11.") + k + " is not a string");
    return true;
  }
  if (!s.contains("kdf") || !s["kdf"].is_object()) return no("\"kdf\" is missing or not an object");
  const json& kdf = s["kdf"];
  if (!kdf.contains("salt") || !kdf["salt"].is_string() || !json_string_or_absent(kdf, "name"))
    return no("kdf.salt is missing or not a string");
  if (type == "passphrase") {
    for (const char* k : {"n", "r", "p"})
      if (!kdf.contains(k) || !json_uint_or_absent(kdf, k, k[0] == 'n' ? ~std::uint64_t{0} : UINT32_MAX))
        return no(std::string("kdf.") + k + " is missing or not an unsigned integer");
    try {
      check_scrypt_work({kdf["n"].get<std::uint64_t>(), kdf["r"].get<std::uint32_t>(), kdf["p"].get<std::uint32_t>()},
                        file_name);
    } catch (const Error& e) {
      return no(e.info().what + ": " + e.info().detail);
    }
  }
  return true;
}

std::string slot_detail(const json& slot) {
  const std::string type = slot.value("type", "");
  if (type == "pkcs11") {
    const json p = slot.value("pkcs11", json::object());
    return "token '" + p.value("token", "") + "' key '" + p.value("key", "") + "' (" + p.value("module", "") + ")";
  }
  if (type == "passphrase") {
    const json k = slot.value("kdf", json::object());
    return "scrypt N=" + std::to_string(k.value("n", 0)) + " r=" + std::to_string(k.value("r", 0)) +
           " p=" + std::to_string(k.value("p", 0));
  }
  return slot.value("hint", "");
}

}  // namespace dlc::backup
