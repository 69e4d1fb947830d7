// fuzz_seed_gen DIR: writes the seed corpora (DIR/corpus/<target>/gen-*) and
// the fixtures the targets load (DIR/fixtures/) with the real dlc code, signed
// with the fuzz targets' fixed host key:
//   fuzz_seed_gen tests/fuzz
// Files named gen-* are replaced; other corpus files (regress-*: inputs that
// once failed) are kept. Review the diff, then commit corpus/ and fixtures/.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "backup/pack.h"
#include "backup/repository.h"
#include "backup/tree.h"
#include "classify/classify.h"
#include "core/audit_log.h"
#include "fuzz_support.h"
#include "migrate/journal.h"
#include "migrate/migrate.h"
#include "verify/verify.h"
#include "wipe/journal.h"
#include "wipe/pattern.h"
#include "wipe/wipe.h"

using namespace dlc;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path g_out;
std::size_t g_written = 0;

const std::string kSep(fuzz::kPartSeparator);

void seed(const std::string& target, const std::string& name, std::string_view bytes) {
  const fs::path dir = g_out / "corpus" / target;
  fs::create_directories(dir);
  fuzz::write_file(dir / ("gen-" + name), bytes, 0644);
  ++g_written;
}

std::string bytes_string(const crypto::Bytes& b) { return {b.begin(), b.end()}; }

void clear_generated() {
  std::error_code ec;
  if (fs::is_directory(g_out / "corpus"))
    for (const auto& d : fs::directory_iterator(g_out / "corpus"))
      for (const auto& f : fs::directory_iterator(d.path()))
        if (f.path().filename().string().rfind("gen-", 0) == 0) fs::remove(f.path(), ec);
}

audit::HostKey fixed_key() { return audit::HostKey::load(fuzz::host_key().path()); }

audit::Event event(const std::string& command, json details) {
  audit::Event e;
  e.command = command;
  e.args = {"dlc", command, "--passphrase", "hunter2", "/data/caf\xE9.csv"};
  e.target = "/data";
  e.outcome = "ok";
  e.details = std::move(details);
  return e;
}

std::string log_with_head(const fs::path& log) {
  std::string s = fuzz::read_file(log);
  if (fs::exists(audit::head_path(log))) s += kSep + fuzz::read_file(audit::head_path(log));
  return s;
}

// ---- audit log -------------------------------------------------------------------

void audit_seeds() {
  const fs::path dir = fuzz::fresh_dir("gen-audit");
  auto both = [](const std::string& name, const std::string& bytes) {
    seed("audit_log", name, bytes);
    seed("audit_writer", name, bytes);
  };
  const fs::path small = dir / "small.jsonl";
  {
    audit::AuditLog log(small, fixed_key());
    log.append(event("backup create", {{"files", 3}, {"ratio", 0.5}, {"nested", {{"a", json::array({1, "x"})}}}}));
    log.append(event("wipe device", {{"passes", 1}}));
    log.append(event("audit verify", json::object()));
  }
  both("small", log_with_head(small));
  both("no-head", fuzz::read_file(small));
  both("empty", "");

  const fs::path many = dir / "many.jsonl";
  {
    audit::AuditLog log(many, fixed_key());
    for (int i = 0; i < 70; ++i) log.append(event("classify", {{"i", i}}));
  }
  both("sealed-every-64", log_with_head(many));

  // A writer that died mid-line, then the next writer's recovery note.
  const fs::path cut = dir / "cut.jsonl";
  fs::copy_file(small, cut);
  fs::copy_file(audit::head_path(small), audit::head_path(cut));
  {
    std::FILE* f = std::fopen(cut.c_str(), "ab");
    std::fputs("{\"v\":\"dlc-audit/1\",\"type\":\"ev", f);
    std::fclose(f);
  }
  both("cut-short", log_with_head(cut));
  {
    audit::AuditLog log(cut, fixed_key());
    log.append(event("backup check", {{"ok", true}}));
  }
  both("recovered-cut-short", log_with_head(cut));

  // A writer that died before sealing (no destructor), then the recovery.
  const fs::path unsealed = dir / "unsealed.jsonl";
  fs::copy_file(small, unsealed);
  fs::copy_file(audit::head_path(small), audit::head_path(unsealed));
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto* log = new audit::AuditLog(unsealed, fixed_key());
    log->append(event("migrate", {{"bytes", 12}}));
    log->append(event("migrate", {{"bytes", 13}}));
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  both("unsealed", log_with_head(unsealed));
  { audit::AuditLog log(unsealed, fixed_key()); }
  both("recovered-unsealed", log_with_head(unsealed));
}

// ---- wipe --------------------------------------------------------------------------

void wipe_seeds() {
  const fs::path dir = fuzz::fresh_dir("gen-wipe");
  const fs::path log_path = dir / "audit.jsonl";
  std::vector<fs::path> certs;
  {
    audit::AuditLog log(log_path, fixed_key());
    wipe::WipeOptions o;
    o.yes = true;
    o.audit = &log;
    o.cert_dir = dir / "certs";
    o.journal_dir = dir / "journal";
    o.cert.operator_name = "Li Wei";
    o.cert.organisation = "Example Bank DC2";
    o.cert.witness = "Zhang Min";
    o.cert.destination = "recycling";
    o.command_line = {"dlc", "wipe", "file", "x", "--passphrase", "hunter2"};
    for (const char* method : {"nist-clear", "dod-3pass"}) {
      const fs::path f = dir / (std::string(method) + ".bin");
      fuzz::write_file(f, std::string(64 * 1024, 'S'));
      o.method = method;
      o.sample_percent = std::string(method) == "dod-3pass" ? 50 : 100;
      for (const auto& t : wipe::wipe_files({f.string()}, o).targets)
        if (!t.certificate_path.empty()) certs.push_back(t.certificate_path);
    }
    wipe::DestructionRecord d;
    d.media_type = "hdd";
    d.make = "ACME";
    d.model = "Disk 9000";
    d.serial = "SN123";
    d.size_bytes = 1ull << 40;
    d.method = "shred";
    d.details = "particle size 2 mm";
    d.location = "Shanghai DC2";
    d.date = "2026-11-25";
    o.method = "nist-clear";
    for (const auto& t : wipe::record_destruction(d, o).targets)
      if (!t.certificate_path.empty()) certs.push_back(t.certificate_path);
  }
  if (certs.size() != 3) fuzz::fail("expected three certificates, got " + std::to_string(certs.size()));
  const char* names[] = {"file-nist-clear.cert.json", "file-dod-3pass-sampled.cert.json", "destroyed.cert.json"};
  for (std::size_t i = 0; i < certs.size(); ++i) seed("wipe_certificate", names[i], fuzz::read_file(certs[i]));
  fuzz::write_file(g_out / "fixtures" / "wipe-audit.jsonl", fuzz::read_file(log_path), 0644);
  fuzz::write_file(g_out / "fixtures" / "wipe-audit.jsonl.head", fuzz::read_file(audit::head_path(log_path)), 0644);

  // Resume journals.
  auto journal = [&](const std::string& name, const wipe::MethodPlan& plan, unsigned pass, std::uint64_t offset) {
    wipe::JournalData d;
    d.stable_id = "wwn-0x5000c500a1b2c3d4";
    d.device = "/dev/sdz";
    d.pin = {{"dev", "8:0"}, {"size", 1ull << 30}, {"serial", "SN123"}};
    d.identity = {{"model", "Disk 9000"}, {"rotational", true}};
    d.plan = plan.to_json();
    d.seed_hex = std::string(64, '7');
    d.certificate_id = "0f3c2a10-1111-4222-8333-444455556666";
    d.started_at = "2026-11-25T12:00:00.000Z";
    d.audit_started = {{"seq", 7}, {"hash", std::string(64, 'a')}};
    d.pass = pass;
    d.offset = offset;
    d.phase = pass == 0 ? "write" : "verify";
    d.completed_passes = json::array({{{"index", 1}, {"pattern", "zero"}, {"bytes_written", 1 << 30}}});
    d.interruptions = json::array({{{"pass", 1}, {"offset", offset}, {"phase", "write"}}});
    d.bytes_written = offset;
    wipe::Journal j(dir / (name + ".json"), d);
    j.save();
    seed("wipe_journal", name, fuzz::read_file(dir / (name + ".json")));
  };
  journal("dod-3pass", wipe::plan_method("dod-3pass", 1, true, std::nullopt, 100), 1, 1048576);
  journal("custom-sampled", wipe::plan_method("custom:55,aa,random", 2, false, wipe::VerifyMode::all, 10), 0, 4096);
}

// ---- manifests, migration reports and journals -------------------------------------

void verify_and_migrate_seeds() {
  const fs::path dir = fuzz::fresh_dir("gen-migrate");
  const fs::path src = dir / "src";
  fuzz::make_sample_tree(src);
  verify::ScanOptions so;
  so.root = src;
  so.threads = 1;
  verify::Manifest m = verify::build_manifest(so);
  verify::save_manifest(m, dir / "signed.json", &fuzz::host_key());
  seed("verify_manifest", "tree-signed.json", fuzz::read_file(dir / "signed.json"));
  verify::save_manifest(m, dir / "unsigned.json", nullptr);
  seed("verify_manifest", "tree-unsigned.json", fuzz::read_file(dir / "unsigned.json"));
  verify::ScanOptions vo = so;
  vo.root = src / "sub" / "sparse.bin";
  vo.volume = true;
  vo.chunk_size = 256 * 1024;
  verify::Manifest v = verify::build_manifest(vo);
  verify::save_manifest(v, dir / "volume.json", &fuzz::host_key());
  seed("verify_manifest", "volume-signed.json", fuzz::read_file(dir / "volume.json"));

  // Reports: a plain verified migration, and one checked against a policy.
  const fs::path policy = dir / "policy.json";
  fuzz::write_file(policy, fuzz::read_file(g_out / "corpus" / "migrate_policy" / "gen-docs-example.json"));
  const fs::path labels = dir / "labels.json";
  classify::ClassifyOptions co;
  co.inputs = {src};
  co.threads = 1;
  co.hash_files = true;
  classify::write_labels(classify::scan(co), {labels, false});
  for (int with_policy = 0; with_policy < 2; ++with_policy) {
    migrate::MigrateOptions o;
    o.source = src.string();
    o.destination = (dir / ("dst" + std::to_string(with_policy))).string();
    o.verify = true;
    o.threads = 1;
    o.state_dir = dir / ("state" + std::to_string(with_policy));
    o.report_out = dir / ("report" + std::to_string(with_policy) + ".json");
    if (with_policy) {
      o.policy = policy;
      o.labels = labels;
      o.dest_region = "cn-north-1";
      o.dest_site = "bj1";
    }
    const migrate::MigrateReport r = migrate::run_migrate(o);
    if (r.code != Errc::ok) fuzz::fail("the seed migration did not succeed: " + r.refusal);
    seed("migrate_report", with_policy ? "report-residency.json" : "report.json", fuzz::read_file(o.report_out));
  }

  // A resume journal, as written, and cut short by kill -9.
  const json header = {{"source", "/src"}, {"destination", "/dst"}, {"kind", "tree"}, {"hash", "sha256"}};
  const fs::path jdir = dir / "journal";
  {
    migrate::Journal j(jdir, header, true);
    migrate::JournalRecord r;
    r.hash = std::string(64, 'b');
    r.size = 42;
    r.ino = 1234;
    r.mtime_ns = 1764077900123456789;
    r.ctime_ns = 1764077900123456789;
    j.record({{"a.csv", r}, {"sub/b.txt", r}, {std::string("caf\xE9"), r}});
    r.verified = true;
    j.record({{"a.csv", r}});
    j.forget({"sub/b.txt"});
    j.note({{"pass", 1}, {"files", 3}});
  }
  const std::string journal = fuzz::read_file(jdir / "journal.jsonl");
  seed("migrate_journal", "journal.jsonl", journal);
  seed("migrate_journal", "cut-short.jsonl", journal.substr(0, journal.size() - 9));
}

// ---- policies and labels -----------------------------------------------------------

void policy_and_label_seeds() {
  const std::string docs_example = R"({
  "format": "dlc-residency-policy/1",
  "name": "cn-financial-2026",
  "locations": {
    "cn": ["cn-*", "bj-*", "sh-*"],
    "hk": ["ap-east-1", "hk-*"],
    "anywhere": ["*"]
  },
  "default": "deny",
  "unlabelled": "refuse",
  "rules": [
    {"id": "pi-stays-in-cn", "when": {"personal_information": true}, "allow": ["cn"]},
    {"id": "level3-stays-in-cn", "when": {"min_level": 3}, "allow": ["cn"]},
    {"id": "public", "when": {"max_level": 2, "personal_information": false}, "allow": ["anywhere"]}
  ],
  "exceptions": [
    {"assessment_id": "CAC-SA-2026-0042", "expires": "2027-06-30", "rules": ["pi-stays-in-cn"],
     "allow": ["hk"], "paths": ["exports/*"], "note": "cross-border transfer assessment, HK branch"}
  ]
}
)";
  seed("migrate_policy", "docs-example.json", docs_example);
  seed("migrate_policy", "classify-unlabelled.json", R"({
  "format": "dlc-residency-policy/1",
  "locations": {"cn": "cn-*", "hk": ["ap-east-1"]},
  "default": {"allow": ["cn"]},
  "unlabelled": "classify",
  "rules": [
    {"id": "secrets", "when": {"categories": ["C3"], "types": ["password", "private_key"]}, "allow": []},
    {"id": "csv", "when": {"paths": ["*.csv"], "min_level": 2, "max_level": 5}, "allow": ["cn"]}
  ],
  "exceptions": [
    {"assessment_id": "CAC-SA-2026-0042", "expires": "2026-01-31", "allow": ["hk"]}
  ]
}
)");
  seed("migrate_policy", "allow-all.json",
       R"({"format": "dlc-residency-policy/1", "name": "open", "locations": {}, "default": "allow"})" "\n");

  // Labels of the sample tree, written by the classifier; its path becomes @SRC@.
  const fs::path dir = fuzz::fresh_dir("gen-labels");
  const fs::path src = dir / "src";
  fuzz::make_sample_tree(src);
  classify::ClassifyOptions co;
  co.inputs = {src};
  co.threads = 1;
  co.hash_files = true;
  classify::write_labels(classify::scan(co), {dir / "labels.json", false});
  std::string labels = fuzz::read_file(dir / "labels.json");
  for (std::size_t at; (at = labels.find(src.string())) != std::string::npos;) labels.replace(at, src.string().size(), "@SRC@");
  seed("classify_labels", "sample-tree.json", labels);
  json stale = json::parse(labels);
  for (auto& f : stale["files"]) f["size"] = 1;
  stale["files"].push_back({{"path", "@SRC@/missing"}, {"size", 4096}, {"status", "skipped"}});
  seed("classify_labels", "stale.json", stale.dump(2) + "\n");

  seed("classify_policy", "docs-example.json", R"({
  "name": "bank-2026",
  "min_confidence": 0.6,
  "types": {"ipv4": {"enabled": false}, "uscc": {"category": "C1", "level": 3}},
  "volume_rules": [{"category": "C2", "min_findings": 5000, "level": 4}]
}
)");
  seed("classify_policy", "strict.json", R"({
  "name": "strict",
  "min_confidence": 0,
  "types": {"email": {"category": "C3", "level": 5}, "mobile": {"level": 4, "enabled": true},
            "password": {"category": "none", "level": 1}},
  "volume_rules": [{"category": "C1", "min_findings": 1, "level": 5},
                   {"category": "C3", "min_findings": 0, "level": 2}]
}
)");
  seed("classify_policy", "empty.json", "{}\n");
}

// ---- the backup repository fixture -------------------------------------------------

void backup_seeds() {
  using namespace dlc::backup;
  const fs::path dir = fuzz::fresh_dir("gen-backup");
  const fs::path repo_dir = g_out / "fixtures" / "backup-repo";
  std::error_code ec;
  fs::remove_all(repo_dir, ec);
  const fs::path key_file = dir / "repo.key";
  const fs::path pass_file = dir / "repo.passphrase";
  fuzz::write_file(pass_file, "fuzz passphrase\n");
  ::setenv("DLC_FUZZ_PASSPHRASE_FILE", pass_file.c_str(), 1);

  InitOptions io;
  io.repo = repo_dir;
  io.key.key_file = key_file.string();
  io.key.prompt = false;
  io.label = "fuzz key file";
  io.region = "cn-north-1";
  io.site = "bj1";
  init(io);
  RepoOptions ro;
  ro.repo = repo_dir;
  ro.key = io.key;
  ro.threads = 1;
  KeyAddOptions ka;
  static_cast<RepoOptions&>(ka) = ro;
  ka.new_key.passphrase_env = "DLC_FUZZ_PASSPHRASE_FILE";
  ka.new_key.prompt = false;
  ka.label = "fuzz passphrase (scrypt N=16)";
  ka.scrypt_n = 16;
  run_key_add(ka);

  const fs::path src = dir / "src";
  fuzz::make_sample_tree(src);
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "line " + std::to_string(i % 50) + " of a compressible file\n";
  fuzz::write_file(src / "big.txt", text, 0644);
  std::string noise;
  for (int i = 0; noise.size() < 20000; ++i) {
    const auto h = crypto::sha256("noise " + std::to_string(i));
    noise.append(reinterpret_cast<const char*>(h.data()), h.size());
  }
  fuzz::write_file(src / "noise.bin", noise, 0644);
  BackupOptions bo;
  static_cast<RepoOptions&>(bo) = ro;
  bo.paths = {src};
  bo.tags = {"fuzz"};
  const BackupResult br = run_backup(bo);
  fs::copy_file(key_file, g_out / "fixtures" / "backup-repo.key", fs::copy_options::overwrite_existing);
  fs::copy_file(pass_file, g_out / "fixtures" / "backup-repo.passphrase", fs::copy_options::overwrite_existing);

  auto repo = Repository::open(ro, LockMode::none);
  repo->load_index();

  // Packs, their tables and blobs.
  int blob_n = 0;
  for (const auto& p : repo->index().packs()) {
    const std::string pack = fuzz::read_file(pack_path(repo_dir, p.id));
    seed("backup_pack", "pack-" + hex(p.id).substr(0, 8), pack);
    const auto* b = reinterpret_cast<const std::uint8_t*>(pack.data());
    const std::uint32_t tlen = get_u32(b + pack.size() - kPackFooterSize);
    crypto::Aead aead = repo->pack_aead(p.key_id, p.id);
    std::array<std::uint8_t, 12> table_nonce{};
    table_nonce[0] = 1;
    const crypto::Bytes table = aead.open(table_nonce, {b, kPackPrefixSize},
                                          {b + pack.size() - kPackFooterSize - tlen, tlen});
    seed("backup_pack", "table-" + hex(p.id).substr(0, 8), bytes_string(table));
    for (const auto& e : p.blobs) {
      const crypto::Bytes stored =
          aead.open(blob_nonce(e.offset), blob_aad(e.type, e.id), {b + e.offset, e.length});
      crypto::Bytes s = {static_cast<std::uint8_t>(e.type), e.flags};
      put_u32(s, e.raw_length);
      append(s, stored);
      if (blob_n < 6) seed("backup_pack", "blob-" + std::to_string(blob_n++) + (e.flags & kBlobZstd ? "-zstd" : ""), bytes_string(s));
    }
  }
  for (const auto& name : list_names(repo_dir / "index"))
    seed("backup_index", "index", bytes_string(repo->read_object("index", name, ObjectKind::index)));

  const Snapshot snap = repo->find_snapshot(br.snapshot_id);
  seed("backup_snapshot", "snapshot.json", snap.doc.dump());
  seed("backup_snapshot", "minimal.json", json{{"tree", snap.doc.at("tree")}, {"time_ns", 1}}.dump());

  // Trees: the root, every subtree, and two linked through "@1".
  const BlobId root = blob_id_from_hex(snap.doc.at("tree").get<std::string>());
  const std::string root_text = repo->read_tree(root).dump();
  seed("backup_tree", "root.json", root_text);
  int tree_n = 0;
  std::string linked;
  walk_tree(*repo, root, [&](const std::string&, const json& n) {
    if (n.value("type", "") != "dir" || !n.contains("subtree")) return true;
    const std::string sub = n["subtree"].get<std::string>();
    const std::string sub_text = repo->read_tree(blob_id_from_hex(sub)).dump();
    if (sub_text.find("sparse.bin") != std::string::npos || tree_n == 0)
      seed("backup_tree", "tree-" + std::to_string(tree_n) + ".json", sub_text);
    if (linked.empty() && root_text.find(sub) != std::string::npos) {
      linked = root_text;
      linked.replace(linked.find(sub), sub.size(), "@1");
      linked += kSep + sub_text;
    }
    ++tree_n;
    return true;
  });
  if (!linked.empty()) seed("backup_tree", "linked", linked);

  // Config, keyring plaintext and the passphrase slot.
  const std::string config = fuzz::read_file(repo_dir / "config");
  std::string slot;
  for (const auto& s : repo->slots())
    if (s.value("type", "") == "passphrase") slot = fuzz::read_file(repo_dir / "keys" / s.value("id", ""));
  const std::string keyring = bytes_string(repo->read_object("", "keyring", ObjectKind::keyring));
  seed("backup_config", "config-keyring-slot", config + kSep + keyring + kSep + slot);
  seed("backup_config", "config.json", config);
  seed("backup_config", "patch.json", R"({"location": {"region": "cn-east-2"}, "compression": {"level": 19}})");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seed_gen DIR   (DIR: tests/fuzz in the source tree)\n";
    return 2;
  }
  g_out = argv[1];
  try {
    fuzz::quiet_environment();
    fs::create_directories(g_out / "fixtures");
    clear_generated();
    audit_seeds();
    policy_and_label_seeds();
    wipe_seeds();
    verify_and_migrate_seeds();
    backup_seeds();
  } catch (const std::exception& e) {
    std::cerr << "fuzz_seed_gen: " << e.what() << '\n';
    return 1;
  }
  std::cout << "fuzz_seed_gen: wrote " << g_written << " seeds and the fixtures under " << g_out.string() << '\n';
  return 0;
}
