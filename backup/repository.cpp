#include "backup/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "backup/tree.h"
#include "core/error.h"

namespace dlc::backup {

using nlohmann::json;

namespace {
constexpr char kObjectMagic[] = "DLCO";
constexpr std::size_t kObjectHeader = 4 + 1 + 4 + crypto::kAeadNonceSize;

SecureBuffer derive(crypto::ByteView master, std::string_view info, std::size_t n) {
  return crypto::hkdf_sha256(master, {}, crypto::as_bytes(info), n);
}

std::string config_mac(const Secrets& s, json doc) {
  doc.erase("mac");
  return crypto::to_hex(crypto::hmac_sha256(s.config_key, crypto::as_bytes(doc.dump())));
}
}  // namespace

Secrets Secrets::derive(SecureBuffer master, crypto::AeadAlg alg) {
  Secrets s;
  s.id_key = backup::derive(master, "dlc-backup/1 blob-id", 32);
  s.gear_seed = backup::derive(master, "dlc-backup/1 chunker", 2048);
  s.keyring_key = backup::derive(master, "dlc-backup/1 keyring", crypto::aead_key_size(alg));
  s.config_key = backup::derive(master, "dlc-backup/1 config", 32);
  s.master = std::move(master);
  return s;
}

SnapshotInfo Snapshot::info() const {
  SnapshotInfo i;
  i.id = id;
  i.time = doc.value("time", "");
  i.host = doc.value("host", "");
  i.user = doc.value("user", "");
  i.paths = doc.value("paths", std::vector<std::string>{});
  i.tags = doc.value("tags", std::vector<std::string>{});
  i.tree = doc.value("tree", "");
  i.parent = doc.value("parent", "");
  i.key_id = doc.value("key_id", 0u);
  i.summary = doc.value("summary", json::object());
  return i;
}

// ---- lock ---------------------------------------------------------------------

RepoLock::RepoLock(const fs::path& repo, LockMode mode, double wait_seconds) {
  const fs::path p = repo / "lock";
  fd_.reset(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) fd_.reset(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_) throw_errno("cannot open the repository lock", p.string());
  const int op = (mode == LockMode::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(wait_seconds * 1000));
  while (::flock(fd_.get(), op) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) throw_errno("cannot lock the repository", p.string());
    if (std::chrono::steady_clock::now() >= deadline || stop_requested().load())
      throw Error(Errc::refused, "repository is locked", repo.string(),
                  mode == LockMode::exclusive
                      ? "a backup, restore or check is using it"
                      : "an exclusive operation (prune, repair, key rotation) is running",
                  "retry later or pass --lock-wait SECONDS");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// ---- open / create ---------------------------------------------------------------

Repository::~Repository() = default;

void Repository::read_config() {
  const fs::path p = path_ / "config";
  if (!fs::exists(p))
    throw Error(Errc::io, "not a dlc backup repository", path_.string(), "no config file",
                "create one with 'dlc backup init --repo DIR'");
  json doc;
  try {
    const Bytes b = read_file_bytes(p);
    doc = json::parse(b.begin(), b.end());
  } catch (const json::exception& e) {
    throw Error(Errc::io, "damaged repository config", p.string(), e.what());
  }
  auto damaged = [&](const std::string& why) {
    return Error(Errc::io, "damaged repository config", p.string(), why, "restore the config file from a copy");
  };
  if (!doc.is_object()) throw damaged("not a JSON object");
  if (!json_string_or_absent(doc, "format") || doc.value("format", "") != kFormat)
    throw Error(Errc::io, "unsupported repository format", path_.string(),
                doc.contains("format") ? printable_utf8(doc["format"].dump()) : "?",
                "this dlc reads " + std::string(kFormat));
  for (const char* k : {"id", "cipher", "created", "mac"})
    if (!json_string_or_absent(doc, k)) throw damaged(std::string("\"") + k + "\" is not a string");
  const auto chunker = doc.find("chunker");
  if (chunker == doc.end() || !chunker->is_object())
    throw damaged("\"chunker\" is missing or not an object");
  for (const char* k : {"min", "avg", "max"})
    if (!chunker->contains(k) || !json_uint_or_absent(*chunker, k, UINT32_MAX))
      throw damaged(std::string("chunker.") + k + " is not a 32-bit unsigned integer");
  for (const char* k : {"compression", "location"})
    if (doc.contains(k) && !doc[k].is_object()) throw damaged(std::string("\"") + k + "\" is not an object");
  const json compression = doc.value("compression", json::object());
  if (!json_int_or_absent(compression, "level") ||
      (compression.contains("level") && (compression["level"].get<std::int64_t>() < -131072 ||
                                         compression["level"].get<std::int64_t>() > 22)))
    throw damaged("compression.level is not a zstd level");
  const json loc = doc.value("location", json::object());
  if (!json_string_or_absent(loc, "region") || !json_string_or_absent(loc, "site"))
    throw damaged("location.region and location.site must be strings");
  config_.raw = doc;
  config_.id = doc.value("id", "");
  config_.cipher = crypto::aead_from_name(doc.value("cipher", ""));
  config_.chunker = {chunker->at("min").get<std::uint32_t>(), chunker->at("avg").get<std::uint32_t>(),
                     chunker->at("max").get<std::uint32_t>()};
  config_.compression_level = static_cast<int>(compression.value("level", std::int64_t{3}));
  config_.region = loc.value("region", "");
  config_.site = loc.value("site", "");
  config_.created = doc.value("created", "");
}

std::unique_ptr<Repository> Repository::open(const RepoOptions& opts, LockMode mode, bool unlock) {
  if (opts.repo.empty())
    throw Error(Errc::usage, "no repository given", {}, {}, "pass --repo DIR or set DLC_REPOSITORY");
  std::unique_ptr<Repository> r(new Repository());
  r->opts_ = opts;
  r->path_ = opts.repo;
  r->threads_ = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  r->read_config();
  if (mode != LockMode::none) r->lock_ = std::make_unique<RepoLock>(r->path_, mode, opts.lock_wait_seconds);
  if (unlock) r->unlock(opts.key);
  return r;
}

void Repository::unlock(const KeySource& src) {
  const std::string kind = src.kind();
  SecretCache cache;
  std::size_t tried = 0;
  for (const json& slot : slots()) {  // well-formed slots only (see slots())
    if (slot.value("type", "") != kind) continue;
    ++tried;
    std::optional<SecureBuffer> master = open_slot(slot, src, config_.cipher, cache);
    if (!master) continue;
    secrets_ = Secrets::derive(std::move(*master), config_.cipher);
    slot_id_ = slot.value("id", "");
    if (config_.raw.value("mac", "") != config_mac(secrets_, config_.raw))
      throw Error(Errc::auth, "repository config does not authenticate", (path_ / "config").string(),
                  "it was modified outside dlc", "restore the config file from a copy");
    load_keyring();
    return;
  }
  if (tried == 0)
    throw Error(Errc::auth, "no key slot of type " + kind, path_.string(), {},
                "list the slots with 'dlc backup key list' and give a matching credential");
  throw Error(Errc::auth, "wrong " + std::string(kind == "passphrase" ? "passphrase" : "key"),
              path_.string(), "no " + kind + " slot opened with it", "nothing was changed");
}

void Repository::load_keyring() {
  const fs::path p = path_ / "keyring";
  const Bytes plain = read_object("", "keyring", ObjectKind::keyring);
  auto damaged = [&](const std::string& why) {
    return Error(Errc::io, "damaged keyring", p.string(), why, "restore the keyring file from a copy");
  };
  const json doc = json::parse(plain.begin(), plain.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) throw damaged("not a JSON object");
  const auto keys = doc.find("data_keys");
  if (keys == doc.end() || !keys->is_array()) throw damaged("\"data_keys\" is not a list");
  if (!doc.contains("current") || !json_uint_or_absent(doc, "current", UINT32_MAX))
    throw damaged("\"current\" is not a key id");
  keys_.clear();
  for (const json& k : *keys) {
    if (!k.is_object() || !k.contains("id") || !json_uint_or_absent(k, "id", UINT32_MAX) ||
        !json_string_or_absent(k, "created") ||
        !is_hex_string(k.value("key", json()), crypto::aead_key_size(config_.cipher)))
      throw damaged("a data key is malformed");
    DataKey d;
    d.id = k.at("id").get<std::uint32_t>();
    d.created = k.value("created", "");
    const Bytes raw = crypto::from_hex(k.at("key").get<std::string>());
    d.key = SecureBuffer(raw);
    d.object_key = derive(d.key, "dlc-backup/1 object", crypto::aead_key_size(config_.cipher));
    keys_.push_back(std::move(d));
  }
  current_key_ = doc.at("current").get<std::uint32_t>();
  data_key(current_key_);
}

void Repository::save_keyring() {
  json doc;
  doc["data_keys"] = json::array();
  for (const auto& k : keys_)
    doc["data_keys"].push_back({{"id", k.id}, {"created", k.created}, {"key", crypto::to_hex(k.key)}});
  doc["current"] = current_key_;
  const std::string text = doc.dump();
  write_atomic(path_ / "keyring", seal_object(ObjectKind::keyring, crypto::as_bytes(text), 0));
}

void Repository::add_data_key() {
  DataKey d;
  d.id = keys_.empty() ? 1 : keys_.back().id + 1;
  d.created = rfc3339(now_ns());
  d.key = crypto::random_key(crypto::aead_key_size(config_.cipher));
  d.object_key = derive(d.key, "dlc-backup/1 object", crypto::aead_key_size(config_.cipher));
  current_key_ = d.id;
  keys_.push_back(std::move(d));
}

void Repository::rewrite_config(const json& changes) {
  json doc = config_.raw;
  doc.merge_patch(changes);
  doc["mac"] = config_mac(secrets_, doc);
  write_atomic(path_ / "config", crypto::as_bytes(doc.dump(2) + "\n"), 0644);
  read_config();
}

InitResult Repository::create(const InitOptions& o) {
  const crypto::AeadAlg alg = crypto::aead_from_name(o.cipher);
  validate(o.chunker);
  if (o.compression_level < 0 || o.compression_level > 19)
    throw Error(Errc::usage, "bad compression level", std::to_string(o.compression_level), {}, "use 0 (off) to 19");
  std::error_code ec;
  if (fs::exists(o.repo) && !fs::is_empty(o.repo, ec))
    throw Error(Errc::refused, "will not create a repository in a non-empty directory", o.repo.string(),
                {}, "choose a new or empty directory");
  for (const char* d : {"", "keys", "data", "index", "snapshots"}) {
    fs::create_directories(o.repo / d, ec);
    if (ec) throw Error(Errc::io, "cannot create directory", (o.repo / d).string(), ec.message());
  }
  std::unique_ptr<Repository> r(new Repository());
  r->path_ = o.repo;
  r->config_.cipher = alg;
  r->secrets_ = Secrets::derive(crypto::random_key(32), alg);
  r->add_data_key();
  r->save_keyring();
  json slot = make_slot(o.key, alg, r->secrets_.master, o.label, o.scrypt_n, true);
  write_atomic(o.repo / "keys" / slot.at("id").get<std::string>(), crypto::as_bytes(slot.dump(2) + "\n"), 0600);
  { Fd lock(::open((o.repo / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)); }
  json cfg = {{"format", kFormat},
              {"id", random_hex_id(16)},
              {"cipher", crypto::aead_name(alg)},
              {"chunker", {{"algorithm", "fastcdc-nc2"}, {"min", o.chunker.min_size},
                           {"avg", o.chunker.avg_size}, {"max", o.chunker.max_size}}},
              {"compression", {{"algorithm", "zstd"}, {"level", o.compression_level}}},
              {"blob_id", "hmac-sha256"},
              {"pack_size", kPackTargetSize},
              {"created", rfc3339(now_ns())},
              {"location", {{"region", o.region}, {"site", o.site}}}};
  cfg["mac"] = config_mac(r->secrets_, cfg);
  write_atomic(o.repo / "config", crypto::as_bytes(cfg.dump(2) + "\n"), 0644);
  fsync_dir(o.repo);
  return {cfg["id"], std::string(crypto::aead_name(alg)), slot["id"], slot["type"]};
}

// ---- keys ----------------------------------------------------------------------------

const DataKey& Repository::current_key() const { return data_key(current_key_); }

const DataKey& Repository::data_key(std::uint32_t id) const {
  for (const auto& k : keys_)
    if (k.id == id) return k;
  throw Error(Errc::io, "unknown data key", "key " + std::to_string(id), "the keyring does not hold it",
              "the keyring file may be older than the data");
}

BlobId Repository::blob_id(crypto::ByteView plain) const { return crypto::hmac_sha256(secrets_.id_key, plain); }

Chunker Repository::make_chunker() const { return Chunker(config_.chunker, secrets_.gear_seed); }

crypto::Aead Repository::pack_aead(std::uint32_t key_id, const BlobId& salt) const {
  return crypto::Aead(config_.cipher, derive_pack_key(config_.cipher, data_key(key_id).key, salt));
}

// ---- objects ------------------------------------------------------------------------

Bytes Repository::seal_object(ObjectKind kind, crypto::ByteView plain, std::uint32_t key_id) const {
  Bytes out;
  append(out, std::string_view(kObjectMagic, 4));
  out.push_back(static_cast<std::uint8_t>(kind));
  put_u32(out, key_id);
  const Bytes nonce = crypto::random_bytes(crypto::kAeadNonceSize);
  append(out, nonce);
  const crypto::ByteView key = kind == ObjectKind::keyring ? crypto::ByteView(secrets_.keyring_key)
                                                           : crypto::ByteView(data_key(key_id).object_key);
  crypto::Aead aead(config_.cipher, key);
  const Bytes sealed = aead.seal(nonce, crypto::ByteView(out.data(), 9), plain);
  append(out, sealed);
  return out;
}

Bytes Repository::open_object(ObjectKind kind, crypto::ByteView b, const fs::path& what) const {
  if (b.size() < kObjectHeader + crypto::kAeadTagSize || std::memcmp(b.data(), kObjectMagic, 4) != 0 ||
      b[4] != static_cast<std::uint8_t>(kind))
    throw Error(Errc::io, "damaged repository object", what.string(), "bad header");
  const std::uint32_t key_id = get_u32(b.data() + 5);
  const crypto::ByteView key = kind == ObjectKind::keyring ? crypto::ByteView(secrets_.keyring_key)
                                                           : crypto::ByteView(data_key(key_id).object_key);
  crypto::Aead aead(config_.cipher, key);
  try {
    return aead.open(b.subspan(9, crypto::kAeadNonceSize), b.subspan(0, 9), b.subspan(kObjectHeader));
  } catch (const Error& e) {
    if (e.code() == Errc::auth)
      throw Error(Errc::io, "damaged repository object", what.string(), "does not authenticate");
    throw;
  }
}

std::string Repository::write_object(const std::string& dir, ObjectKind kind, crypto::ByteView plain) const {
  const std::string name = random_hex_id(32);
  write_atomic(path_ / dir / name, seal_object(kind, plain, current_key_));
  return name;
}

Bytes Repository::read_object(const std::string& dir, const std::string& name, ObjectKind kind) const {
  const fs::path p = dir.empty() ? path_ / name : path_ / dir / name;
  return open_object(kind, read_file_bytes(p), p);
}

// ---- index ------------------------------------------------------------------------------

void Repository::load_index(std::vector<std::string>* errors) {
  index_.clear();
  index_files_ = list_names(path_ / "index");
  for (const auto& name : index_files_) {
    try {
      const Bytes plain = read_object("index", name, ObjectKind::index);
      for (auto& p : Index::decode(plain, path_ / "index" / name)) index_.add_pack(std::move(p));
    } catch (const Error& e) {
      if (!errors || e.code() == Errc::auth) {
        if (e.code() == Errc::io)
          throw Error(Errc::io, e.info().what, e.info().target, e.info().detail,
                      "run 'dlc backup repair index' to rebuild the index from the packs");
        throw;
      }
      errors->push_back("index file " + name + ": " + e.what());
    }
  }
}

std::string Repository::write_index(const std::vector<PackInfo>& packs) const {
  return write_object("index", ObjectKind::index, Index::encode(packs));
}

Bytes Repository::read_blob(const BlobId& id) const {
  const PackInfo* pack = nullptr;
  const BlobEntry* e = index_.find(id, &pack);
  if (!e) throw Error(Errc::io, "blob not in the index", hex(id), {}, "run 'dlc backup check'");
  const fs::path p = pack_path(path_, pack->id);
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open pack", p.string(), errno, "run 'dlc backup check'");
  // The index is trusted for where a blob is, not for how much to allocate.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot read pack", p.string());
  if (e->offset > static_cast<std::uint64_t>(st.st_size) ||
      e->length > static_cast<std::uint64_t>(st.st_size) - e->offset)
    throw Error(Errc::check_failed, "blob beyond the end of its pack", hex(id), "pack " + hex(pack->id) + " is shorter",
                "run 'dlc backup check'");
  Bytes sealed(e->length);
  pread_all(fd.get(), sealed.data(), sealed.size(), e->offset, p);
  crypto::Aead aead = pack_aead(pack->key_id, pack->id);
  try {
    return open_blob(aead, *e, sealed);
  } catch (const Error& err) {
    if (err.code() == Errc::auth)
      throw Error(Errc::check_failed, "damaged blob", hex(id), "does not authenticate in pack " + hex(pack->id),
                  "run 'dlc backup check --read-data'");
    throw;
  }
}

json Repository::read_tree(const BlobId& id) const {
  const Bytes b = read_blob(id);
  json doc;
  try {
    doc = json::parse(b.begin(), b.end());
  } catch (const json::parse_error& e) {
    // Not e.what(): it quotes the bytes it read, which need not be UTF-8.
    throw Error(Errc::io, "damaged tree", hex(id), "not JSON (at byte " + std::to_string(e.byte) + ")");
  }
  validate_tree(doc, hex(id));
  return doc;
}

// ---- snapshots --------------------------------------------------------------------------

Snapshot parse_snapshot(const std::string& id, crypto::ByteView plain) {
  auto damaged = [&](const std::string& why) {
    return Error(Errc::io, "damaged snapshot", id, why, "forget it ('dlc backup forget " + id + "')");
  };
  Snapshot s;
  s.id = id;
  s.doc = json::parse(plain.begin(), plain.end(), nullptr, /*allow_exceptions=*/false);
  const json& d = s.doc;
  if (!d.is_object()) throw damaged("not a JSON object");
  if (!is_hex_string(d.value("tree", json()), 32)) throw damaged("\"tree\" is not a tree id");
  for (const char* k : {"time", "host", "user", "parent", "program"})
    if (!json_string_or_absent(d, k)) throw damaged(std::string("\"") + k + "\" is not a string");
  if (!json_int_or_absent(d, "time_ns") || !json_uint_or_absent(d, "key_id", UINT32_MAX))
    throw damaged("\"time_ns\" or \"key_id\" is not an integer");
  for (const char* k : {"paths", "tags"}) {
    const json v = d.value(k, json::array());
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); }))
      throw damaged(std::string("\"") + k + "\" is not a list of strings");
  }
  if (d.contains("summary") && !d["summary"].is_object()) throw damaged("\"summary\" is not an object");
  s.time_ns = d.value("time_ns", std::int64_t{0});
  return s;
}

std::vector<Snapshot> Repository::snapshots() const {
  std::vector<Snapshot> out;
  for (const auto& name : list_names(path_ / "snapshots"))
    out.push_back(parse_snapshot(name, read_object("snapshots", name, ObjectKind::snapshot)));
  std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

Snapshot Repository::find_snapshot(const std::string& ref) const {
  std::vector<Snapshot> all = snapshots();
  if (ref.empty() || ref == "latest") {
    if (all.empty()) throw Error(Errc::usage, "the repository has no snapshots", path_.string());
    return all.back();
  }
  std::vector<Snapshot> hits;
  for (auto& s : all)
    if (s.id.rfind(ref, 0) == 0) hits.push_back(s);
  if (hits.empty()) throw Error(Errc::usage, "no such snapshot", ref, {}, "list them with 'dlc backup snapshots'");
  if (hits.size() > 1) throw Error(Errc::usage, "ambiguous snapshot id", ref, {}, "give more characters");
  return hits.front();
}

std::string Repository::write_snapshot(const json& doc) const {
  return write_object("snapshots", ObjectKind::snapshot, crypto::as_bytes(doc.dump()));
}

// ---- slots ----------------------------------------------------------------------------------

std::vector<json> Repository::slots() const {
  std::vector<json> out;
  for (const auto& name : list_names(path_ / "keys")) {
    try {
      const Bytes b = read_file_bytes(path_ / "keys" / name);
      json s = json::parse(b.begin(), b.end());
      std::string why;
      if (!slot_well_formed(s, name, &why)) {
        notice(NoticeLevel::warning, "ignoring malformed key slot " + (path_ / "keys" / name).string() + ": " + why);
        continue;
      }
      out.push_back(std::move(s));
    } catch (const json::exception&) {
      notice(NoticeLevel::warning, "ignoring unreadable key slot " + (path_ / "keys" / name).string());
    }
  }
  return out;
}

std::string Repository::add_slot(const KeySource& src, const std::string& label, std::uint64_t scrypt_n,
                                 bool create_pkcs11_key) {
  json slot = make_slot(src, config_.cipher, secrets_.master, label, scrypt_n, create_pkcs11_key);
  const std::string id = slot.at("id");
  write_atomic(path_ / "keys" / id, crypto::as_bytes(slot.dump(2) + "\n"), 0600);
  return id;
}

}  // namespace dlc::backup
