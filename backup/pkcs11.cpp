// PKCS#11 key slots: the repository's master secret is encrypted with
// CKM_AES_GCM by an AES key that lives on the token (an HSM, SoftHSM2, or a
// KMS with a PKCS#11 module) and is created there non-extractable: the key
// never leaves the token. The module is dlopen'ed from the path the operator
// gives; the user PIN comes from the file named by $DLC_PKCS11_PIN_FILE or a prompt.
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "backup/repository.h"
#include "core/error.h"

namespace dlc::backup {

namespace {

std::string rv_name(CK_RV rv) {
  switch (rv) {
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    default: {
      char b[32];
      std::snprintf(b, sizeof b, "CKR 0x%lx", static_cast<unsigned long>(rv));
      return b;
    }
  }
}

std::string trim_label(const unsigned char* p, std::size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

class Session {
 public:
  explicit Session(const KeySource& src) : module_(src.pkcs11_module) {
    if (module_.empty())
      throw Error(Errc::usage, "no PKCS#11 module given", {}, {},
                  "pass --pkcs11-module PATH (e.g. /usr/lib/softhsm/libsofthsm2.so)");
    lib_ = ::dlopen(module_.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib_) throw Error(Errc::io, "cannot load PKCS#11 module", module_, ::dlerror());
    using GetFn = CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR);
    auto get = reinterpret_cast<GetFn>(::dlsym(lib_, "C_GetFunctionList"));
    if (!get || get(&f_) != CKR_OK || !f_) fail("C_GetFunctionList", CKR_GENERAL_ERROR);
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) fail("C_Initialize", rv);
    initialized_ = rv == CKR_OK;
    CK_ULONG n = 0;
    if ((rv = f_->C_GetSlotList(CK_TRUE, nullptr, &n)) != CKR_OK) fail("C_GetSlotList", rv);
    std::vector<CK_SLOT_ID> slots(n);
    if ((rv = f_->C_GetSlotList(CK_TRUE, slots.data(), &n)) != CKR_OK) fail("C_GetSlotList", rv);
    bool found = false;
    CK_SLOT_ID slot = 0;
    for (CK_ULONG i = 0; i < n && !found; ++i) {
      CK_TOKEN_INFO info{};
      if (f_->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
      if (trim_label(info.label, sizeof info.label) == src.pkcs11_token) {
        slot = slots[i];
        found = true;
      }
    }
    if (!found)
      throw Error(Errc::auth, "no PKCS#11 token labelled '" + src.pkcs11_token + "'", module_, {},
                  "check --pkcs11-token (softhsm2-util --show-slots lists the tokens)");
    if ((rv = f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h_)) != CKR_OK)
      fail("C_OpenSession", rv);
    open_ = true;
    KeySource pin_src;
    pin_src.passphrase_env = src.pkcs11_pin_env;
    pin_src.prompt = src.prompt;
    SecureBuffer pin = read_passphrase(pin_src, false, "PIN of token '" + src.pkcs11_token + "'");
    rv = f_->C_Login(h_, CKU_USER, pin.data(), pin.size());
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
      throw Error(Errc::auth, "the token refused the PIN", src.pkcs11_token, rv_name(rv), "nothing was changed");
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) fail("C_Login", rv);
    logged_in_ = rv == CKR_OK;
  }

  ~Session() {
    if (logged_in_) f_->C_Logout(h_);
    if (open_) f_->C_CloseSession(h_);
    if (initialized_) f_->C_Finalize(nullptr);
    if (lib_) ::dlclose(lib_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::optional<CK_OBJECT_HANDLE> find_key(const std::string& label) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    CK_RV rv = f_->C_FindObjectsInit(h_, tmpl, 2);
    if (rv != CKR_OK) fail("C_FindObjectsInit", rv);
    CK_OBJECT_HANDLE obj = 0;
    CK_ULONG count = 0;
    rv = f_->C_FindObjects(h_, &obj, 1, &count);
    f_->C_FindObjectsFinal(h_);
    if (rv != CKR_OK) fail("C_FindObjects", rv);
    if (count == 0) return std::nullopt;
    return obj;
  }

  // AES-256 key on the token: sensitive, not extractable.
  CK_OBJECT_HANDLE generate_key(const std::string& label) {
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},          {CKA_KEY_TYPE, &type, sizeof type},
                           {CKA_VALUE_LEN, &len, sizeof len},       {CKA_TOKEN, &yes, sizeof yes},
                           {CKA_PRIVATE, &yes, sizeof yes},         {CKA_SENSITIVE, &yes, sizeof yes},
                           {CKA_EXTRACTABLE, &no, sizeof no},       {CKA_ENCRYPT, &yes, sizeof yes},
                           {CKA_DECRYPT, &yes, sizeof yes},
                           {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    CK_OBJECT_HANDLE key = 0;
    CK_RV rv = f_->C_GenerateKey(h_, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &key);
    if (rv != CKR_OK) fail("C_GenerateKey", rv);
    notice(NoticeLevel::warning, "created AES-256 key '" + label + "' on the token (not extractable)");
    return key;
  }

  // AES-GCM inside the token. decrypt: returns nullopt when the tag fails.
  std::optional<Bytes> gcm(bool encrypt, CK_OBJECT_HANDLE key, crypto::ByteView in, crypto::ByteView iv,
                           crypto::ByteView aad) {
    CK_GCM_PARAMS params{};
    params.pIv = const_cast<CK_BYTE_PTR>(iv.data());
    params.ulIvLen = iv.size();
    params.ulIvBits = iv.size() * 8;
    params.pAAD = const_cast<CK_BYTE_PTR>(aad.data());
    params.ulAADLen = aad.size();
    params.ulTagBits = 128;
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof params};
    CK_RV rv = encrypt ? f_->C_EncryptInit(h_, &mech, key) : f_->C_DecryptInit(h_, &mech, key);
    if (rv != CKR_OK) fail(encrypt ? "C_EncryptInit" : "C_DecryptInit", rv);
    Bytes out(in.size() + 64);
    CK_ULONG out_len = out.size();
    auto* p = const_cast<CK_BYTE_PTR>(in.data());
    rv = encrypt ? f_->C_Encrypt(h_, p, in.size(), out.data(), &out_len)
                 : f_->C_Decrypt(h_, p, in.size(), out.data(), &out_len);
    if (!encrypt && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_GENERAL_ERROR ||
                     rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_DATA_INVALID))
      return std::nullopt;
    if (rv != CKR_OK) fail(encrypt ? "C_Encrypt" : "C_Decrypt", rv);
    out.resize(out_len);
    return out;
  }

 private:
  [[noreturn]] void fail(const char* call, CK_RV rv) {
    throw Error(Errc::io, std::string("PKCS#11 ") + call + " failed", module_, rv_name(rv));
  }

  std::string module_;
  void* lib_ = nullptr;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
  CK_SESSION_HANDLE h_ = 0;
  bool initialized_ = false, open_ = false, logged_in_ = false;
};

}  // namespace

Bytes pkcs11_wrap(const KeySource& src, crypto::ByteView plain, crypto::ByteView iv, crypto::ByteView aad,
                  bool create_key) {
  Session s(src);
  std::optional<CK_OBJECT_HANDLE> key = s.find_key(src.pkcs11_key);
  if (!key) {
    if (!create_key)
      throw Error(Errc::auth, "no AES key labelled '" + src.pkcs11_key + "' on the token", src.pkcs11_token);
    key = s.generate_key(src.pkcs11_key);
  }
  return *s.gcm(true, *key, plain, iv, aad);
}

std::optional<SecureBuffer> pkcs11_unwrap(const KeySource& src, crypto::ByteView wrapped, crypto::ByteView iv,
                                          crypto::ByteView aad) {
  Session s(src);
  std::optional<CK_OBJECT_HANDLE> key = s.find_key(src.pkcs11_key);
  if (!key)
    throw Error(Errc::auth, "no AES key labelled '" + src.pkcs11_key + "' on the token", src.pkcs11_token, {},
                "nothing was changed");
  std::optional<Bytes> plain = s.gcm(false, *key, wrapped, iv, aad);
  if (!plain) return std::nullopt;
  SecureBuffer out(*plain);
  std::fill(plain->begin(), plain->end(), 0);
  return out;
}

}  // namespace dlc::backup
