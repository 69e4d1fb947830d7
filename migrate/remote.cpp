// The remote link: mutual TLS 1.3 (OpenSSL), optional pinning of the peer's
// certificate or public key, tenant-chosen cipher suites, and a small framed
// protocol whose data frames carry their own hash (checked by the receiver
// before a byte is written: integrity per chunk in transit, 9.2b). The
// receiver writes through the local destination (openat2-confined to its
// root), re-reads from storage, and attests its region with its host key.
//
// Frame: u32 big-endian header length, header (JSON), u64 big-endian payload
// length, payload. Requests get one reply; fbegin/fdata/fend are one-way and
// a failure among them is returned by the next request.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/audit_log.h"
#include "core/error.h"
#include "core/io_engine.h"
#include "core/text.h"
#include "migrate/remote.h"

namespace dlc::migrate {

using nlohmann::json;

namespace {

constexpr std::uint32_t kMaxHeader = 16u << 20;
constexpr std::uint64_t kMaxPayload = 1ull << 30;

std::string ssl_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "connection closed" : out;
}

std::string normalize_pin(std::string p) {
  std::string out;
  for (char c : p)
    if (c != ':') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// SHA-256 of the certificate (DER) and of its SubjectPublicKeyInfo (DER).
std::pair<std::string, std::string> cert_fingerprints(X509* cert) {
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  std::string c, k;
  if (n > 0) {
    c = crypto::to_hex(crypto::sha256(crypto::ByteView(der, static_cast<std::size_t>(n))));
    OPENSSL_free(der);
  }
  der = nullptr;
  const int m = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (m > 0) {
    k = crypto::to_hex(crypto::sha256(crypto::ByteView(der, static_cast<std::size_t>(m))));
    OPENSSL_free(der);
  }
  return {c, k};
}

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

CtxPtr make_ctx(const TlsOptions& t, bool server) {
  if (t.cert.empty() || t.key.empty() || t.ca.empty())
    throw Error(Errc::usage, "mutual TLS needs a certificate, its key and a CA", {}, {},
                "pass --tls-cert, --tls-key and --tls-ca");
  CtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) throw Error(Errc::io, "cannot create a TLS context", {}, ssl_errors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  if (!t.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx.get(), t.ciphersuites.c_str()) != 1)
    throw Error(Errc::usage, "unusable TLS 1.3 cipher suites", t.ciphersuites, ssl_errors(),
                "e.g. TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.cert.c_str()) != 1)
    throw Error(Errc::auth, "cannot load the TLS certificate", t.cert, ssl_errors(), "give a PEM certificate chain");
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), t.key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw Error(Errc::auth, "cannot load the TLS private key", t.key, ssl_errors(), "give a PEM private key");
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    throw Error(Errc::auth, "the TLS key does not match the certificate", t.key, ssl_errors());
  if (SSL_CTX_load_verify_locations(ctx.get(), t.ca.c_str(), nullptr) != 1)
    throw Error(Errc::auth, "cannot load the TLS CA bundle", t.ca, ssl_errors(), "give a PEM CA file");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  if (server) {
    // Tell clients which CAs are accepted.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(t.ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(ctx.get(), names);
  }
  return ctx;
}

// Checks the pins (if any) against the peer certificate; returns its fingerprints.
std::pair<std::string, std::string> check_peer(SSL* ssl, const TlsOptions& t, const std::string& who) {
  X509* peer = SSL_get1_peer_certificate(ssl);
  if (!peer) throw Error(Errc::auth, who + " presented no certificate");
  auto fp = cert_fingerprints(peer);
  X509_free(peer);
  if (!t.pins.empty()) {
    bool ok = false;
    for (const auto& p : t.pins) {
      const std::string n = normalize_pin(p);
      if (n == fp.first || n == fp.second) ok = true;
    }
    if (!ok)
      throw Error(Errc::auth, who + "'s certificate does not match the pinned fingerprint", {},
                  "certificate sha256 " + fp.first.substr(0, 16) + "..., key sha256 " + fp.second.substr(0, 16) + "...",
                  "check --tls-pin");
  }
  return fp;
}

class Conn {
 public:
  // A buffering BIO over the socket: TLS records (16 KiB each) are coalesced
  // into large write(2) calls, flushed whenever a reply is awaited or sent;
  // reads are buffered the same way. Without it a loopback migration spends
  // most of its time in 64 Ki small syscalls under the connection lock.
  Conn(SSL* ssl, int fd, std::string peer) : ssl_(ssl), fd_(fd), peer_(std::move(peer)) {
    BIO* sock = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO* buf = BIO_new(BIO_f_buffer());
    if (!sock || !buf) throw Error(Errc::io, "cannot create a TLS I/O buffer", {}, ssl_errors());
    BIO_set_buffer_size(buf, 1 << 20);
    BIO_push(buf, sock);
    SSL_set_bio(ssl_, buf, buf);
  }
  ~Conn() {
    if (ssl_) {
      SSL_shutdown(ssl_);
      BIO_flush(SSL_get_wbio(ssl_));
      SSL_free(ssl_);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  SSL* ssl() const { return ssl_; }
  const std::string& peer() const { return peer_; }

  void flush() {
    if (BIO_flush(SSL_get_wbio(ssl_)) != 1)
      throw Error(Errc::io, "connection lost to", peer_, ssl_errors(), "run the same command again to resume");
  }

  void send(const json& header, crypto::ByteView payload = {}) {
    const std::string h = header.dump();
    unsigned char pre[4];
    const auto hl = static_cast<std::uint32_t>(h.size());
    for (int i = 0; i < 4; ++i) pre[i] = static_cast<unsigned char>(hl >> (24 - 8 * i));
    unsigned char pl[8];
    const std::uint64_t n = payload.size();
    for (int i = 0; i < 8; ++i) pl[i] = static_cast<unsigned char>(n >> (56 - 8 * i));
    std::string buf;
    buf.reserve(12 + h.size() + (payload.size() < (256u << 10) ? payload.size() : 0));
    buf.append(reinterpret_cast<char*>(pre), 4);
    buf += h;
    buf.append(reinterpret_cast<char*>(pl), 8);
    if (payload.size() < (256u << 10)) {
      buf.append(reinterpret_cast<const char*>(payload.data()), payload.size());
      write_all(buf.data(), buf.size());
    } else {
      write_all(buf.data(), buf.size());
      write_all(payload.data(), payload.size());
    }
  }

  // Reads one frame; false on a clean close before a frame starts. The
  // payload is read into room(n), which returns at least n writable bytes.
  template <typename Room>
  bool recv(json& header, Room&& room) {
    flush();
    unsigned char pre[4];
    if (!read_all(pre, 4, true)) return false;
    std::uint32_t hl = 0;
    for (int i = 0; i < 4; ++i) hl = (hl << 8) | pre[i];
    if (hl > kMaxHeader) throw Error(Errc::io, "protocol error from", peer_, "frame header too large");
    std::string h(hl, '\0');
    read_all(h.data(), hl, false);
    unsigned char pl[8];
    read_all(pl, 8, false);
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | pl[i];
    if (n > kMaxPayload) throw Error(Errc::io, "protocol error from", peer_, "payload too large");
    read_all(room(n), n, false);
    try {
      header = json::parse(h);
    } catch (const json::exception&) {
      throw Error(Errc::io, "protocol error from", peer_, "frame header is not JSON");
    }
    return true;
  }
  bool recv(json& header, std::string& payload) {
    return recv(header, [&payload](std::uint64_t n) {
      payload.resize(n);
      return payload.data();
    });
  }

 private:
  void write_all(const void* p, std::size_t n) {
    const auto* c = static_cast<const char*>(p);
    while (n) {
      std::size_t w = 0;
      const int chunk = static_cast<int>(std::min<std::size_t>(n, 1u << 30));
      if (SSL_write_ex(ssl_, c, static_cast<std::size_t>(chunk), &w) != 1)
        throw Error(Errc::io, "connection lost to", peer_, ssl_errors(), "run the same command again to resume");
      c += w;
      n -= w;
    }
  }
  bool read_all(void* p, std::size_t n, bool eof_ok) {
    auto* c = static_cast<char*>(p);
    std::size_t got_total = 0;
    while (got_total < n) {
      std::size_t got = 0;
      if (SSL_read_ex(ssl_, c + got_total, n - got_total, &got) != 1) {
        const int err = SSL_get_error(ssl_, 0);
        if (eof_ok && got_total == 0 && err == SSL_ERROR_ZERO_RETURN) return false;
        const std::string why = ssl_errors();
        if (why.find("certificate") != std::string::npos || why.find("alert") != std::string::npos)
          throw Error(Errc::auth, "TLS peer refused the connection", peer_, why,
                      "check the certificates, the CA and the pins on both sides");
        throw Error(Errc::io, "connection lost to", peer_, why, "run the same command again to resume");
      }
      got_total += got;
    }
    return true;
  }

  SSL* ssl_ = nullptr;
  int fd_ = -1;
  std::string peer_;
};

// OpenSSL writes to the socket with write(2): a peer that vanished would kill
// the process with SIGPIPE instead of returning EPIPE, leaving no audit record
// and no clean, resumable exit. A process that opens a migration link ignores it.
void ignore_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPIPE, &sa, nullptr);
}

int connect_tcp(const std::string& host, std::uint16_t port) {
  ignore_sigpipe();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) throw Error(Errc::io, "cannot resolve", host, ::gai_strerror(rc));
  int fd = -1;
  int last = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    last = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) throw_errno("cannot connect to", host + ":" + std::to_string(port), last,
                          "is 'dlc migrate receive' running there?");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

json reply_ok(json j = json::object()) {
  j["ok"] = true;
  return j;
}

void check_reply(const json& r, const std::string& peer) {
  if (r.value("ok", false)) return;
  const int code = r.value("code", 4);
  throw Error(static_cast<Errc>(code), "the receiver reported an error", peer, r.value("error", std::string("?")),
              r.value("hint", std::string()));
}

// ---- The client side --------------------------------------------------------------

// A connected, mutually authenticated link to a receiver: TLS handshake, the
// receiver's name and pins checked, `hello` sent and its signed attestation
// checked (fresh nonce, bound to the receiver's TLS certificate).
class Link {
 public:
  Link(const Endpoint& ep, const MigrateOptions& o, json hello) : o_(o) {
    ctx_ = make_ctx(o.tls, false);
    const int fd = connect_tcp(ep.host, ep.port);
    SSL* ssl = SSL_new(ctx_.get());
    if (!ssl) {
      ::close(fd);
      throw Error(Errc::io, "cannot create a TLS session", {}, ssl_errors());
    }
    conn_ = std::make_unique<Conn>(ssl, fd, ep.host + ":" + std::to_string(ep.port));
    SSL_set_tlsext_host_name(ssl, ep.host.c_str());
    X509_VERIFY_PARAM* vp = SSL_get0_param(ssl);
    in6_addr a6{};
    in_addr a4{};
    if (::inet_pton(AF_INET, ep.host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, ep.host.c_str(), &a6) == 1)
      X509_VERIFY_PARAM_set1_ip_asc(vp, ep.host.c_str());
    else
      X509_VERIFY_PARAM_set1_host(vp, ep.host.c_str(), 0);
    if (SSL_connect(ssl) != 1)
      throw Error(Errc::auth, "TLS handshake failed with", conn_->peer(), ssl_errors(),
                  "check --tls-ca (the receiver's certificate must chain to it and name the host)");
    peer_fp_ = check_peer(ssl, o.tls, "the receiver");
    const std::string nonce = crypto::to_hex(crypto::random_bytes(16));
    hello["op"] = "hello";
    hello["version"] = 1;
    hello["path"] = ep.path;
    hello["hash"] = std::string(crypto::hash_name(o.alg));
    hello["nonce"] = nonce;
    hello_ = call(hello);
    attestation_ = hello_.value("attestation", json());
    check_attestation(nonce);
  }

  const json& hello_reply() const { return hello_; }
  const json& attestation() const { return attestation_; }
  const std::string& peer() const { return conn_->peer(); }

  // One request, one reply (an error reply throws, with the receiver's exit code).
  json call(const json& req, crypto::ByteView payload = {}, std::string* reply_payload = nullptr) {
    std::lock_guard<std::mutex> lk(mu_);
    conn_->send(req, payload);
    json r;
    std::string p;
    if (!conn_->recv(r, p)) throw Error(Errc::io, "the receiver closed the connection", conn_->peer());
    if (reply_payload) *reply_payload = std::move(p);  // an error reply may carry one too
    check_reply(r, conn_->peer());
    return r;
  }
  // A one-way frame (a failure comes back with the next request's reply).
  void send(const json& header, crypto::ByteView payload = {}) {
    std::lock_guard<std::mutex> lk(mu_);
    conn_->send(header, payload);
  }
  json parse(const std::string& payload) const {
    try {
      return json::parse(payload);
    } catch (const json::exception&) {
      throw Error(Errc::io, "protocol error from", conn_->peer(), "reply payload is not JSON");
    }
  }
  std::pair<double, double> measure_link() {
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    for (int i = 0; i < 5; ++i) call({{"op", "ping"}});
    const double rtt = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / 5;
    std::vector<std::uint8_t> blob(8u << 20);
    crypto::random_bytes(blob);
    t0 = clock::now();
    call({{"op", "sink"}}, blob);
    call({{"op", "sink"}}, blob);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    return {s > 0 ? static_cast<double>(2 * blob.size()) / s : 0, rtt};
  }
  // Where the receiver's time went; {} from a receiver that does not know
  // the request (an older dlc answers it as a usage error).
  json receiver_profile() {
    try {
      return call({{"op", "profile"}}).value("profile", json::object());
    } catch (const Error& e) {
      if (e.code() != Errc::usage) throw;
      return json::object();
    }
  }
  void bye() {
    if (closed_) return;
    closed_ = true;
    call({{"op", "bye"}});
  }

 private:
  void check_attestation(const std::string& nonce) {
    const json& a = attestation_;
    if (!a.is_object()) throw Error(Errc::auth, "the receiver sent no attestation", conn_->peer());
    std::optional<crypto::Ed25519PublicKey> pin;
    if (!o_.attestation_key.empty()) pin = audit::load_public_key(o_.attestation_key);
    const verify::SignatureCheck c = verify::check_signature(a, pin);
    if (!c.valid) throw Error(Errc::auth, "the receiver's attestation does not verify", conn_->peer(), c.problem,
                              "check --attestation-key");
    if (a.value("nonce", std::string()) != nonce)
      throw Error(Errc::auth, "the receiver's attestation is not fresh", conn_->peer(), "nonce mismatch");
    if (a.value("tls_cert_sha256", std::string()) != peer_fp_.first)
      throw Error(Errc::auth, "the receiver's attestation is bound to another TLS certificate", conn_->peer());
    attestation_["key_fingerprint"] = c.key_fingerprint;
  }

  const MigrateOptions& o_;
  CtxPtr ctx_;
  std::unique_ptr<Conn> conn_;
  std::mutex mu_;
  json hello_, attestation_;
  std::pair<std::string, std::string> peer_fp_;
  bool closed_ = false;
};

class RemoteDestination final : public Destination {
 public:
  RemoteDestination(const Endpoint& ep, const MigrateOptions& o)
      : link_(ep, o, {{"kind", "tree"}, {"xattrs", o.xattrs}, {"sparse", o.sparse}}), o_(o) {
    const json& r = link_.hello_reply();
    info_.exists = r.value("exists", false);
    info_.empty = r.value("empty", true);
    info_.free_bytes = r.value("free", std::uint64_t{0});
    info_.free_unknown = r.value("free_unknown", false);
    info_.attestation = link_.attestation();
  }

  ~RemoteDestination() override {
    try {
      close();
    } catch (...) {
    }
  }

  DestInfo info() override { return info_; }

  double measure_write_bps(std::uint64_t bytes) override {
    return link_.call({{"op", "measure_write"}, {"bytes", bytes}}).value("bps", 0.0);
  }

  std::pair<double, double> measure_link() override { return link_.measure_link(); }

  void prepare() override { link_.call({{"op", "prepare"}}); }

  std::vector<verify::Entry> list() override {
    std::string payload;
    link_.call({{"op", "list"}}, {}, &payload);
    std::vector<verify::Entry> out;
    for (const auto& e : link_.parse(payload)) out.push_back(verify::entry_from_json(e));
    return out;
  }

  void remove(const std::string& rel) override { link_.call(with_path({{"op", "remove"}}, "path", rel)); }
  void make_dir(const std::string& rel) override { link_.call(with_path({{"op", "mkdir"}}, "path", rel)); }
  void make_node(const verify::Entry& e) override { link_.call({{"op", "node"}, {"entry", verify::to_json(e)}}); }
  void make_link(const std::string& rel, const std::string& existing) override {
    json j = with_path({{"op", "link"}}, "path", rel);
    verify::put_bytes(j, "existing", existing);
    link_.call(j);
  }
  void set_meta(const verify::Entry& e) override { link_.call({{"op", "meta"}, {"entry", verify::to_json(e)}}); }

  void file_begin(std::uint32_t slot, const verify::Entry& e) override {
    link_.send({{"op", "fbegin"}, {"slot", slot}, {"entry", verify::to_json(e)}});
  }
  void file_data(std::uint32_t slot, std::uint64_t offset, crypto::ByteView data, const std::string* hash) override {
    const std::string h = hash ? *hash : crypto::to_hex(crypto::hash(o_.alg, data));
    link_.send({{"op", "fdata"}, {"slot", slot}, {"offset", offset}, {"h", h}}, data);
  }
  void file_end(std::uint32_t slot, const verify::Entry& e) override {
    link_.send({{"op", "fend"}, {"slot", slot}, {"entry", verify::to_json(e)}});
  }
  void commit(bool reread) override { link_.call({{"op", "commit"}, {"reread", reread}}); }
  void results(bool wait, const TakeResults& take) override {
    std::string payload;
    std::exception_ptr failed;
    try {
      link_.call({{"op", "results"}, {"wait", wait}}, {}, &payload);
    } catch (const Error&) {
      failed = std::current_exception();  // the receiver's error reply still lists what it finished
    }
    std::vector<Committed> out;
    if (!payload.empty() || !failed)
      for (const auto& c : link_.parse(payload))
        out.push_back({verify::get_bytes(c, "path"), c.value("hash", std::string()), c.value("error", std::string())});
    take(out);
    if (failed) std::rethrow_exception(failed);
  }
  verify::Manifest scan() override {
    std::string payload;
    link_.call({{"op", "scan"}}, {}, &payload);
    return verify::manifest_from_json(link_.parse(payload));
  }
  nlohmann::json profile() override { return nlohmann::json{{"receiver", link_.receiver_profile()}}; }
  void close() override { link_.bye(); }

 private:
  static json with_path(json j, const char* key, const std::string& rel) {
    verify::put_bytes(j, key, rel);
    return j;
  }

  Link link_;
  const MigrateOptions& o_;
  DestInfo info_;
};

class RemoteVolumeClient final : public RemoteVolume {
 public:
  RemoteVolumeClient(const Endpoint& ep, const MigrateOptions& o) : link_(ep, o, {{"kind", "volume"}}) {
    const json& r = link_.hello_reply();
    info_.target = r.value("target", std::string());
    info_.device = r.value("device", false);
    info_.exists = r.value("exists", false);
    info_.size = r.value("size", std::uint64_t{0});
    info_.free_bytes = r.value("free", std::uint64_t{0});
    info_.attestation = link_.attestation();
  }
  ~RemoteVolumeClient() override {
    try {
      close();
    } catch (...) {
    }
  }
  const RemoteVolumeInfo& info() const override { return info_; }
  double measure_write_bps(std::uint64_t bytes) override {
    return link_.call({{"op", "measure_write"}, {"bytes", bytes}}).value("bps", 0.0);
  }
  std::pair<double, double> measure_link() override { return link_.measure_link(); }
  void open(std::uint64_t size, std::uint64_t chunk_size) override {
    link_.call({{"op", "vopen"}, {"size", size}, {"chunk_size", chunk_size}});
  }
  void send_chunk(std::uint64_t index, std::uint64_t offset, crypto::ByteView data, const std::string& hash) override {
    link_.send({{"op", "vdata"}, {"slot", index}, {"index", index}, {"offset", offset}, {"h", hash}}, data);
  }
  void results(bool wait, const TakeResults& take) override {
    std::string payload;
    std::exception_ptr failed;
    try {
      link_.call({{"op", "vresults"}, {"wait", wait}}, {}, &payload);
    } catch (const Error&) {
      failed = std::current_exception();  // the receiver's error reply still lists what it finished
    }
    std::vector<ChunkResult> out;
    if (!payload.empty() || !failed)
      for (const auto& c : link_.parse(payload)) {
        ChunkResult r;
        r.index = c.value("index", std::uint64_t{0});
        r.hash = c.value("hash", std::string());
        r.error = c.value("error", std::string());
        out.push_back(std::move(r));
      }
    take(out);
    if (failed) std::rethrow_exception(failed);
  }
  nlohmann::json profile() override { return link_.receiver_profile(); }
  verify::Manifest scan() override {
    std::string payload;
    link_.call({{"op", "vscan"}}, {}, &payload);
    return verify::manifest_from_json(link_.parse(payload));
  }
  void close() override { link_.bye(); }

 private:
  Link link_;
  RemoteVolumeInfo info_;
};

// ---- The receiver side -------------------------------------------------------------------


// Received data frames land in reused buffers: a fresh std::string per frame
// cost a page-faulting allocation and a zero fill of every byte before TLS
// overwrote it (about a tenth of the receiver's CPU on the benchmark; measured
// with perf, receiver CPU 4.4-5.7 s -> 3.95-4.1 s per run). Buffers are
// 4096-aligned (io::AlignedBuffer), so they also suit O_DIRECT.
struct Payload {
  io::AlignedBuffer buf;
  std::size_t size = 0;
  crypto::ByteView bytes() const { return {buf.data(), size}; }
};

class PayloadPool {
 public:
  // A buffer of at least n bytes (n = 0 gets none): the smallest free one
  // that is large enough, else a new one.
  io::AlignedBuffer take(std::uint64_t n) {
    if (n == 0) return {};
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->size() >= n && (best == free_.end() || it->size() < best->size())) best = it;
      if (best != free_.end()) {
        io::AlignedBuffer b = std::move(*best);
        free_.erase(best);
        free_bytes_ -= b.size();
        return b;
      }
    }
    return io::AlignedBuffer(capacity_for(n));
  }
  void give(io::AlignedBuffer b) {
    if (b.size() == 0) return;
    std::lock_guard<std::mutex> lk(mu_);
    if (free_bytes_ + b.size() > kMaxFree) return;  // freed here
    free_bytes_ += b.size();
    free_.push_back(std::move(b));
  }
  // Powers of two from 64 KiB, then whole MiB (few sizes, so buffers fit again).
  static std::size_t capacity_for(std::uint64_t n) {
    if (n > (64ull << 20)) return static_cast<std::size_t>((n + (1u << 20) - 1) & ~std::uint64_t((1u << 20) - 1));
    std::size_t cap = 64u << 10;
    while (cap < n) cap <<= 1;
    return cap;
  }

 private:
  static constexpr std::size_t kMaxFree = 128u << 20;
  std::mutex mu_;
  std::vector<io::AlignedBuffer> free_;
  std::size_t free_bytes_ = 0;
};

class Session {
 public:
  Session(Conn& c, const ReceiverOptions& o, const std::string& own_cert_fp) : c_(c), o_(o), own_fp_(own_cert_fp) {}

  ~Session() { stop_lanes(); }

  void run() {
    json h;
    Payload payload;
    start_lanes();
    auto room = [&](std::uint64_t n) {
      if (payload.buf.size() < n) {
        pool_.give(std::move(payload.buf));
        payload.buf = pool_.take(n);
      }
      payload.size = static_cast<std::size_t>(n);
      return payload.buf.data();
    };
    while (c_.recv(h, room)) {
      std::string op = h.value("op", std::string());
      if (op == "fbegin" || op == "fdata" || op == "fend" || op == "vdata") {
        // Checked and written by a lane per slot (order within a file is kept),
        // so decrypting the next frames overlaps hashing and writing this one.
        dispatch(Task{std::move(op), std::move(h), std::move(payload)});
        payload = Payload();
        continue;
      }
      // A non-waiting volume results request is answered at once: the lanes
      // keep writing while the sender collects what is done.
      if (!(op == "vresults" && !h.value("wait", false))) drain();
      json reply;
      std::string out;
      try {
        std::string failure;
        Errc failure_code = Errc::io;
        {
          std::lock_guard<std::mutex> lk(err_mu_);
          failure.swap(error_);
          failure_code = error_code_;
        }
        if (!failure.empty()) {
          if (op == "results" || op == "vresults") {
            // What the lanes finished before the failure goes back with it,
            // so that the sender journals those as verified.
            drain();
            json now = h;
            now["wait"] = false;
            try {
              request(op, now, payload.bytes(), out);
            } catch (const std::exception&) {
              out.clear();
            }
          }
          throw Error(failure_code, failure);
        }
        reply = request(op, h, payload.bytes(), out);
      } catch (const Error& e) {
        reply = {{"ok", false}, {"error", std::string(e.what())}, {"code", exit_code(e.code())}};
      } catch (const std::exception& e) {
        reply = {{"ok", false}, {"error", std::string("receiver error: ") + e.what()}, {"code", 4}};
      }
      c_.send(reply, crypto::as_bytes(out));
      c_.flush();
      if (op == "bye") break;
    }
    drain();
    stop_lanes();
    if (dest_) dest_->close();
    if (vol_) vol_->close();
  }

  std::uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }
  const std::string& kind() const { return kind_; }

 private:
  Destination& dest() {
    if (!dest_) throw Error(Errc::usage, "protocol error: no tree session (hello with kind tree first)");
    return *dest_;
  }
  VolumeSink& vol() {
    if (!vol_) throw Error(Errc::usage, "protocol error: no volume session (hello with kind volume first)");
    return *vol_;
  }

  struct Task {
    std::string op;
    json h;
    Payload payload;
  };
  struct Lane {
    std::deque<Task> q;
    bool busy = false;
  };
  static constexpr std::uint64_t kMaxQueued = 64ull << 20;

  void start_lanes() {
    const unsigned n = std::max(2u, std::thread::hardware_concurrency());
    lanes_ = std::vector<Lane>(n);
    for (unsigned i = 0; i < n; ++i) lane_threads_.emplace_back([this, i] { lane_loop(i); });
  }
  void stop_lanes() {
    {
      std::lock_guard<std::mutex> lk(lane_mu_);
      stopping_ = true;
    }
    lane_cv_.notify_all();
    for (auto& t : lane_threads_) t.join();
    lane_threads_.clear();
  }
  void dispatch(Task t) {
    const std::size_t lane = t.h.value("slot", 0u) % lanes_.size();
    std::unique_lock<std::mutex> lk(lane_mu_);
    room_cv_.wait(lk, [&] { return queued_ < kMaxQueued; });
    queued_ += t.payload.buf.size();
    lanes_[lane].q.push_back(std::move(t));
    lane_cv_.notify_all();
  }
  void drain() {
    std::unique_lock<std::mutex> lk(lane_mu_);
    room_cv_.wait(lk, [&] {
      return std::all_of(lanes_.begin(), lanes_.end(), [](const Lane& l) { return l.q.empty() && !l.busy; });
    });
  }
  void lane_loop(unsigned i) {
    for (;;) {
      Task t;
      {
        std::unique_lock<std::mutex> lk(lane_mu_);
        lane_cv_.wait(lk, [&] { return stopping_ || !lanes_[i].q.empty(); });
        if (lanes_[i].q.empty()) return;
        t = std::move(lanes_[i].q.front());
        lanes_[i].q.pop_front();
        lanes_[i].busy = true;
      }
      bool failed;
      {
        std::lock_guard<std::mutex> lk(err_mu_);
        failed = !error_.empty();
      }
      if (!failed) {
        try {
          one_way(i, t.op, t.h, t.payload.bytes());
        } catch (const Error& e) {
          std::lock_guard<std::mutex> lk(err_mu_);
          if (error_.empty()) {
            error_ = e.what();
            error_code_ = e.code();
          }
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lk(err_mu_);
          if (error_.empty()) {
            error_ = std::string("receiver error: ") + e.what();
            error_code_ = Errc::io;
          }
        }
      }
      {
        std::lock_guard<std::mutex> lk(lane_mu_);
        queued_ -= t.payload.buf.size();
        lanes_[i].busy = false;
      }
      pool_.give(std::move(t.payload.buf));
      room_cv_.notify_all();
    }
  }

  void one_way(unsigned lane, const std::string& op, const json& h, crypto::ByteView data) {
    if (op == "vdata") {
      vol().write_chunk(lane, h.at("index").get<std::uint64_t>(), h.at("offset").get<std::uint64_t>(), data,
                        h.value("h", std::string()));
      bytes_.fetch_add(data.size());
      return;
    }
    const auto slot = h.at("slot").get<std::uint32_t>();
    if (op == "fbegin") {
      dest().file_begin(slot, verify::entry_from_json(h.at("entry")));
    } else if (op == "fdata") {
      if (crypto::to_hex(crypto::hash(alg_, data)) != h.value("h", std::string()))
        throw Error(Errc::check_failed, "a chunk arrived damaged", c_.peer(),
                    "its hash does not match (offset " + std::to_string(h.value("offset", 0ull)) + ")");
      dest().file_data(slot, h.at("offset").get<std::uint64_t>(), data, nullptr);
      bytes_.fetch_add(data.size());
    } else {
      dest().file_end(slot, verify::entry_from_json(h.at("entry")));
    }
  }

  json request(const std::string& op, const json& h, crypto::ByteView payload, std::string& out) {
    if (op == "hello" && h.value("kind", std::string("tree")) == "volume") {
      if (dest_ || vol_) throw Error(Errc::usage, "protocol error: a second hello");
      kind_ = "volume";
      path_ = h.value("path", std::string());
      alg_ = crypto::hash_from_name(h.value("hash", std::string("sha256")));
      vol_ = std::make_unique<VolumeSink>(o_.root, path_, alg_, o_.allowed_devices);
      json reply = vol_->info();
      json att = {{"format", "dlc-attestation/1"},
                  {"region", o_.region},
                  {"site", o_.site},
                  {"host", host_name()},
                  {"time", dlc::now_rfc3339()},
                  {"nonce", h.value("nonce", std::string())},
                  {"tls_cert_sha256", own_fp_}};
      verify::put_bytes(att, "root", vol_->target());
      verify::sign_document(att, audit::HostKey::load_or_create(dlc_home()));
      reply["attestation"] = att;
      return reply_ok(reply);
    }
    if (op == "vopen") {
      vol().open(h.at("size").get<std::uint64_t>(), h.at("chunk_size").get<std::uint64_t>());
      return reply_ok();
    }
    if (op == "vresults") {
      json a = json::array();
      for (const auto& c : vol().take_results()) a.push_back({{"index", c.index}, {"hash", c.hash}, {"error", c.error}});
      out = a.dump();
      return reply_ok();
    }
    if (op == "vscan") {
      out = verify::to_json(vol().scan(o_.threads)).dump();
      return reply_ok();
    }
    if (op == "measure_write" && vol_) {
      // Never a test write on a device; an image's filesystem is measured beside the root.
      if (vol_->device()) return reply_ok({{"bps", 0.0}});
      LocalOptions lo{alg_, o_.threads, false, false};
      return reply_ok({{"bps", make_local_destination(o_.root.string(), lo)->measure_write_bps(h.value("bytes", 16ull << 20))}});
    }
    if (op == "hello") {
      if (dest_ || vol_) throw Error(Errc::usage, "protocol error: a second hello");
      path_ = h.value("path", std::string("."));
      if (!plain_relative_path(path_, true))
        throw Error(Errc::refused, "refusing a destination outside the receiver's root", path_);
      alg_ = crypto::hash_from_name(h.value("hash", std::string("sha256")));
      LocalOptions lo{alg_, o_.threads, h.value("xattrs", true), h.value("sparse", true)};
      const std::string root = path_ == "." ? o_.root.string() : (o_.root / path_).string();
      dest_ = make_local_destination(root, lo);
      const DestInfo info = dest_->info();
      json att = {{"format", "dlc-attestation/1"},
                  {"region", o_.region},
                  {"site", o_.site},
                  {"host", host_name()},
                  {"time", dlc::now_rfc3339()},
                  {"nonce", h.value("nonce", std::string())},
                  {"tls_cert_sha256", own_fp_}};
      verify::put_bytes(att, "root", root);
      verify::sign_document(att, audit::HostKey::load_or_create(dlc_home()));
      return reply_ok({{"exists", info.exists},
                       {"empty", info.empty},
                       {"free", info.free_bytes},
                       {"free_unknown", info.free_unknown},
                       {"attestation", att}});
    }
    if (op == "ping") return reply_ok();
    if (op == "sink") return reply_ok({{"bytes", payload.size()}});
    if (op == "measure_write") return reply_ok({{"bps", dest().measure_write_bps(h.value("bytes", 16ull << 20))}});
    if (op == "prepare") {
      dest().prepare();
      return reply_ok();
    }
    if (op == "list") {
      json a = json::array();
      for (const auto& e : dest().list()) a.push_back(verify::to_json(e));
      out = a.dump();
      return reply_ok();
    }
    if (op == "remove") {
      dest().remove(verify::get_bytes(h, "path"));
      return reply_ok();
    }
    if (op == "mkdir") {
      dest().make_dir(verify::get_bytes(h, "path"));
      return reply_ok();
    }
    if (op == "node") {
      dest().make_node(verify::entry_from_json(h.at("entry")));
      return reply_ok();
    }
    if (op == "link") {
      dest().make_link(verify::get_bytes(h, "path"), verify::get_bytes(h, "existing"));
      return reply_ok();
    }
    if (op == "meta") {
      dest().set_meta(verify::entry_from_json(h.at("entry")));
      return reply_ok();
    }
    if (op == "commit") {
      dest().commit(h.value("reread", false));
      return reply_ok();
    }
    if (op == "results") {
      json a = json::array();
      try {
        dest().results(h.value("wait", false), [&a](const std::vector<Committed>& done) {
          for (const auto& c : done) {
            json j = {{"hash", c.hash}, {"error", c.error}};
            verify::put_bytes(j, "path", c.path);
            a.push_back(std::move(j));
          }
        });
      } catch (...) {
        out = a.dump();  // sent with the error reply: these files did verify
        throw;
      }
      out = a.dump();
      return reply_ok();
    }
    if (op == "scan") {
      out = verify::to_json(dest().scan()).dump();
      return reply_ok();
    }
    if (op == "profile") {  // the lanes were drained before this request
      return reply_ok({{"profile", vol_ ? vol_->profile() : dest_ ? dest_->profile() : json::object()}});
    }
    if (op == "bye") return reply_ok();
    throw Error(Errc::usage, "unknown request", op);
  }

  Conn& c_;
  const ReceiverOptions& o_;
  std::string own_fp_;
  std::unique_ptr<Destination> dest_;
  std::unique_ptr<VolumeSink> vol_;
  std::string kind_ = "tree";
  crypto::HashAlg alg_ = crypto::HashAlg::sha256;
  std::mutex err_mu_;
  std::string error_;
  Errc error_code_ = Errc::io;
  std::atomic<std::uint64_t> bytes_{0};
  std::string path_;
  std::mutex lane_mu_;
  std::condition_variable lane_cv_, room_cv_;
  std::vector<Lane> lanes_;
  std::vector<std::thread> lane_threads_;
  std::uint64_t queued_ = 0;
  bool stopping_ = false;
  PayloadPool pool_;
};

int listen_tcp(const std::string& spec, std::uint16_t* bound) {
  std::string host = spec, port = "7443";
  if (!spec.empty() && spec[0] == '[') {
    const auto close = spec.find(']');
    host = spec.substr(1, close - 1);
    if (close + 1 < spec.size() && spec[close + 1] == ':') port = spec.substr(close + 2);
  } else if (const auto colon = spec.rfind(':'); colon != std::string::npos) {
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) throw Error(Errc::usage, "cannot resolve the listen address", spec, ::gai_strerror(rc));
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    throw_errno("cannot create a socket for", spec);
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    const int err = errno;
    ::freeaddrinfo(res);
    ::close(fd);
    throw_errno("cannot listen on", spec, err);
  }
  ::freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *bound = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

}  // namespace

std::unique_ptr<Destination> make_remote_destination(const Endpoint& ep, const MigrateOptions& o) {
  return std::make_unique<RemoteDestination>(ep, o);
}

std::unique_ptr<RemoteVolume> make_remote_volume(const Endpoint& ep, const MigrateOptions& o) {
  return std::make_unique<RemoteVolumeClient>(ep, o);
}

void run_receiver(const ReceiverOptions& o) {
  if (o.root.empty()) throw Error(Errc::usage, "no --root given", {}, {}, "name the directory to receive into");
  std::error_code ec;
  if (!std::filesystem::is_directory(o.root, ec))
    throw Error(Errc::usage, "the receiver's root is not a directory", o.root.string(), {}, "create it first");
  for (const auto& d : o.allowed_devices) {
    struct stat st{};
    if (::stat(d.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
      throw Error(Errc::usage, "--allow-device names no block device", d, {},
                  "give a device path such as /dev/sdb or /dev/disk/by-id/...");
  }
  ignore_sigpipe();
  CtxPtr ctx = make_ctx(o.tls, true);
  std::string own_fp;
  if (X509* own = SSL_CTX_get0_certificate(ctx.get())) own_fp = cert_fingerprints(own).first;
  std::uint16_t port = 0;
  const int lfd = listen_tcp(o.listen, &port);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{lfd};
  if (o.on_listening) o.on_listening(port);
  for (;;) {
    if (stop_requested().load()) throw Error(Errc::interrupted, "receiver stopped");
    pollfd p{lfd, POLLIN, 0};
    const int pr = ::poll(&p, 1, 200);
    if (pr <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, addr, sizeof addr);
    else if (ss.ss_family == AF_INET6)
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, addr, sizeof addr);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL* ssl = SSL_new(ctx.get());
    Conn c(ssl, fd, addr);
    std::string outcome = "ok", error;
    std::uint64_t bytes = 0;
    std::string path, kind = "tree";
    std::string peer_fp;
    try {
      if (SSL_accept(ssl) != 1)
        throw Error(Errc::auth, "TLS handshake failed with", addr, ssl_errors(),
                    "the sender needs a certificate from the CA given with --tls-ca");
      peer_fp = check_peer(ssl, o.tls, "the sender").first;
      Session s(c, o, own_fp);
      s.run();
      bytes = s.bytes();
      path = s.path();
      kind = s.kind();
    } catch (const Error& e) {
      outcome = e.code() == Errc::auth ? "refused" : "failed";
      error = e.what();
      notice(NoticeLevel::warning, std::string("receiver: ") + e.what());
    }
    if (o.audit) {
      audit::Event ev;
      ev.command = "migrate receive";
      ev.args = o.command_line;
      ev.target = (o.root / path).string();
      ev.outcome = outcome;
      ev.details = {{"peer", addr}, {"peer_cert_sha256", peer_fp}, {"bytes", bytes}, {"kind", kind}};
      if (!error.empty()) ev.details["error"] = error;
      o.audit->append(ev);
    }
    if (o.once) {
      if (outcome != "ok") throw Error(outcome == "refused" ? Errc::auth : Errc::io, error);
      return;
    }
  }
}

}  // namespace dlc::migrate
