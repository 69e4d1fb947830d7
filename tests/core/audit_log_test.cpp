// The audit log (JR/T 0167 10.4, 7.2.4c, 11.4.6b): what a writer produces, and
// that verification names the first bad record for every kind of tampering.
#include "core/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "support/test_support.h"

namespace dlc::audit {
namespace {

namespace fs = std::filesystem;
using dlc::test::read_file;
using dlc::test::TempDir;
using dlc::test::write_file;
using nlohmann::json;

std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::istringstream in(read_file(p));
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  write_file(p, s);
}

// A record line re-serialized after `edit`, with its hash fixed or not.
std::string edited(const std::string& line, const std::function<void(json&)>& edit, bool rehash) {
  json r = json::parse(line);
  edit(r);
  if (rehash) r["hash"] = record_hash(r);
  return canonical_json(r);
}

Event event(int i) {
  return Event{"test op",
               {"dlc", "test", "--n", std::to_string(i)},
               "target-" + std::to_string(i),
               "ok",
               json{{"i", i}}};
}

class AuditLogTest : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path log = dir / "audit.jsonl";

  HostKey key() { return HostKey::load_or_create(dir.path()); }
  crypto::Ed25519PublicKey pub() { return key().public_key(); }

  // One writer session: n events, sealed when the log object goes away.
  void session(int n, const fs::path& where = {}) {
    AuditLog l(where.empty() ? log : where, key());
    for (int i = 0; i < n; ++i) l.append(event(i));
  }

  VerifyReport check(bool pinned = true) {
    return verify(log, pinned ? std::optional(pub()) : std::nullopt);
  }
};

#define EXPECT_BAD_AT(report, line, text)                                           \
  do {                                                                              \
    const VerifyReport& r_ = (report);                                              \
    EXPECT_FALSE(r_.ok);                                                            \
    EXPECT_EQ(r_.first_bad_line, std::optional<std::uint64_t>(line)) << r_.problem; \
    EXPECT_NE(r_.problem.find(text), std::string::npos) << r_.problem;              \
  } while (0)

// ---- what is written ------------------------------------------------------------

TEST_F(AuditLogTest, TimeIsRfc3339UtcWithNanoseconds) {
  const std::regex format(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$)");
  EXPECT_TRUE(std::regex_match(now_rfc3339(), format)) << now_rfc3339();
}

TEST_F(AuditLogTest, RecordsCarryTheDocumentedFieldsAndChain) {
  session(2);
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 3u);  // two events and the checkpoint that sealed them
  const json first = json::parse(lines[0]);
  EXPECT_EQ(first["v"], "dlc-audit/1");
  EXPECT_EQ(first["type"], "event");
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], std::string(64, '0'));
  EXPECT_EQ(first["command"], "test op");
  EXPECT_EQ(first["target"], "target-0");
  EXPECT_EQ(first["outcome"], "ok");
  EXPECT_EQ(first["uid"], ::getuid());
  EXPECT_EQ(first["pid"], ::getpid());
  EXPECT_TRUE(first["user"].is_string() && !first["user"].get<std::string>().empty());
  EXPECT_TRUE(first["host"].is_string());
  EXPECT_TRUE(std::regex_match(first["time"].get<std::string>(),
                               std::regex(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$)")));
  EXPECT_EQ(first["hash"], record_hash(first));
  EXPECT_EQ(lines[0], canonical_json(first)) << "lines are written in canonical form";

  const json second = json::parse(lines[1]);
  EXPECT_EQ(second["prev"], first["hash"]);
  const json cp = json::parse(lines[2]);
  EXPECT_EQ(cp["type"], "checkpoint");
  EXPECT_EQ(cp["head_seq"], 2);
  EXPECT_EQ(cp["head_hash"], second["hash"]);
  EXPECT_EQ(cp["key"]["fingerprint"], pub().fingerprint());
  EXPECT_EQ(cp["sig"].get<std::string>().size(), 128u);
}

TEST_F(AuditLogTest, FilesAreCreatedWithTheDocumentedModes) {
  session(1);
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "host-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "host-key.pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_TRUE(fs::exists(head_path(log)));
}

TEST_F(AuditLogTest, ArgumentsAreMaskedWhenAppended) {
  {
    AuditLog l(log, key());
    l.append(
        Event{"backup init", {"dlc", "backup", "init", "--passphrase", "hunter2"}, "/repo", "ok"});
  }
  const json r = json::parse(lines_of(log)[0]);
  EXPECT_EQ(r["args"], json({"dlc", "backup", "init", "--passphrase", "***"}));
}

TEST_F(AuditLogTest, InvalidUtf8BecomesEscapedText) {
  {
    AuditLog l(log, key());
    l.append(Event{"wipe file", {}, std::string("/data/caf\xe9.csv"), "ok"});
  }
  EXPECT_EQ(json::parse(lines_of(log)[0])["target"], "/data/caf\\xE9.csv");
  EXPECT_TRUE(check().ok);
}

TEST_F(AuditLogTest, SealsEvery64RecordsAndAtTheEnd) {
  session(130);
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 130u);
  EXPECT_EQ(r.checkpoints, 3u);  // after 64, after 128, and at the end
  EXPECT_EQ(r.last_seq, 133u);
  EXPECT_EQ(r.head_seq, std::optional<std::uint64_t>(133));
}

TEST_F(AuditLogTest, ExplicitCheckpointIsIdempotent) {
  AuditLog l(log, key());
  l.append(event(1));
  l.checkpoint();
  l.checkpoint();  // nothing new: no second checkpoint
  EXPECT_EQ(lines_of(log).size(), 2u);
}

// ---- verification of a clean log -----------------------------------------------

TEST_F(AuditLogTest, CleanLogVerifiesPinned) {
  session(5);
  session(3);
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 8u);
  EXPECT_EQ(r.checkpoints, 2u);
  EXPECT_EQ(r.last_seq, 10u);
  EXPECT_TRUE(r.pinned);
  EXPECT_EQ(r.key_fingerprint, pub().fingerprint());
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
}

TEST_F(AuditLogTest, UnpinnedVerificationWarns) {
  session(2);
  const auto r = check(/*pinned=*/false);
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(r.pinned);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("unpinned"), std::string::npos);
}

TEST_F(AuditLogTest, EmptyLogVerifies) {
  write_file(log, "");
  const auto r = check();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.last_seq, 0u);
}

TEST_F(AuditLogTest, MissingLogIsAnIoError) {
  try {
    check();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find(log.string()), std::string::npos);
  }
}

// ---- tampering: each kind names the first bad record -----------------------------

TEST_F(AuditLogTest, EditedFieldIsAHashMismatch) {
  session(5);
  auto lines = lines_of(log);
  lines[2] = edited(
      lines[2], [](json& r) { r["outcome"] = "failed"; }, /*rehash=*/false);
  write_lines(log, lines);
  const auto r = check();
  EXPECT_BAD_AT(r, 3, "hash mismatch");
  EXPECT_EQ(r.first_bad_seq, std::optional<std::uint64_t>(3));
}

TEST_F(AuditLogTest, EditedAndRehashedRecordBreaksTheNextPrev) {
  session(5);
  auto lines = lines_of(log);
  lines[2] = edited(
      lines[2], [](json& r) { r["target"] = "elsewhere"; }, /*rehash=*/true);
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 4, "prev does not match");
}

TEST_F(AuditLogTest, DeletedRecordIsASeqGap) {
  session(5);
  auto lines = lines_of(log);
  lines.erase(lines.begin() + 3);
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 4, "seq gap: expected seq 4");
}

TEST_F(AuditLogTest, DeletedFirstRecordIsCaught) {
  session(3);
  auto lines = lines_of(log);
  lines.erase(lines.begin());
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 1, "starts at seq 2");
}

TEST_F(AuditLogTest, InsertedWellForgedRecordIsCaughtAtTheNextOne) {
  session(5);
  auto lines = lines_of(log);
  // A forger who knows the format: right seq, right prev, right hash.
  const json third = json::parse(lines[2]);
  const std::string forged = edited(
      lines[3],
      [&](json& r) {
        r["seq"] = 4;
        r["prev"] = third["hash"];
        r["command"] = "forged";
      },
      /*rehash=*/true);
  lines.insert(lines.begin() + 3, forged);
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 5, "seq 4 repeats");
}

TEST_F(AuditLogTest, InsertedCopiedRecordIsCaughtAtItself) {
  session(5);
  auto lines = lines_of(log);
  lines.insert(lines.begin() + 3, lines[1]);
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 4, "repeats or goes back");
}

TEST_F(AuditLogTest, SwappedRecordsAreCaught) {
  session(5);
  auto lines = lines_of(log);
  std::swap(lines[2], lines[3]);
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 3, "seq gap");
}

TEST_F(AuditLogTest, TruncatedLastLinesAreCaughtByTheHead) {
  session(3);  // seq 1-3, checkpoint 4
  session(3);  // seq 5-7, checkpoint 8; the head says 8
  auto lines = lines_of(log);
  lines.resize(4);  // cut the whole second session, checkpoint included
  write_lines(log, lines);
  const auto r = check();
  EXPECT_BAD_AT(r, 5, "truncated: log ends at seq 4, the signed head says 8");
}

TEST_F(AuditLogTest, TruncatedMidLineIsATruncatedRecord) {
  session(3);
  std::string text = read_file(log);
  text.resize(text.size() - 20);
  write_file(log, text);
  EXPECT_BAD_AT(check(), 4, "truncated record");
}

TEST_F(AuditLogTest, CheckpointWithABadSignatureIsCaught) {
  session(3);
  auto lines = lines_of(log);
  lines[3] = edited(
      lines[3],
      [](json& r) {
        std::string sig = r["sig"];
        sig[10] = sig[10] == '0' ? '1' : '0';
        r["sig"] = sig;
      },
      /*rehash=*/true);
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 4, "bad checkpoint signature");
}

TEST_F(AuditLogTest, ForgedCheckpointWithItsOwnKeyFailsAgainstThePinnedKey) {
  session(3);
  TempDir other;
  const auto other_key = HostKey::load_or_create(other.path()).public_key();
  const auto r = verify(log, other_key);
  EXPECT_BAD_AT(r, 4, "not the pinned key");
}

TEST_F(AuditLogTest, KeyChangeWithinTheLogIsCaughtUnpinned) {
  session(2);
  TempDir other;
  {
    AuditLog l(log, HostKey::load_or_create(other.path()));
    l.append(event(9));
  }
  const auto r = check(/*pinned=*/false);
  EXPECT_BAD_AT(r, 5, "the key changed");
}

TEST_F(AuditLogTest, AnotherLogsHeadFileIsCaught) {
  const fs::path other = dir / "other.jsonl";
  session(3);
  session(4, other);
  fs::copy_file(head_path(other), head_path(log), fs::copy_options::overwrite_existing);
  const auto r = check();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("belongs to a different log"), std::string::npos) << r.problem;
}

TEST_F(AuditLogTest, EditedHeadFileIsCaught) {
  session(3);
  const json original = json::parse(read_file(head_path(log)));
  for (const char* field : {"seq", "hash", "log", "time"}) {
    json h = original;
    h[field] = field == std::string("seq")
                   ? json(2)
                   : json(std::string(field) == "time" ? "2030-01-01T00:00:00.000000000Z"
                                                       : std::string(64, 'a'));
    write_file(head_path(log), canonical_json(h) + "\n");
    const auto r = check();
    EXPECT_FALSE(r.ok) << field;
    EXPECT_NE(r.problem.find("bad signature"), std::string::npos) << field << ": " << r.problem;
  }
}

TEST_F(AuditLogTest, ForkedLogDoesNotMatchTheOthersHead) {
  // Two copies of one log that went on separately share their first record,
  // but not the checkpoint the head names.
  const fs::path fork = dir / "fork.jsonl";
  session(3);
  fs::copy_file(log, fork);
  session(3);        // seq 5-7, checkpoint 8
  session(3, fork);  // seq 5-7, another checkpoint 8
  fs::copy_file(head_path(log), head_path(fork), fs::copy_options::overwrite_existing);
  const auto r = verify(fork, pub());
  EXPECT_BAD_AT(r, 8, "head file does not match this log");
}

TEST_F(AuditLogTest, MissingHeadFileIsAWarning) {
  session(3);
  fs::remove(head_path(log));
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("no head file"), std::string::npos);
}

TEST_F(AuditLogTest, UnparsableLineIsCaught) {
  session(3);
  auto lines = lines_of(log);
  lines.insert(lines.begin() + 1, "this is not json");
  write_lines(log, lines);
  EXPECT_BAD_AT(check(), 2, "unparsable line");
}

TEST_F(AuditLogTest, TimeGoingBackIsAWarning) {
  session(3);
  auto lines = lines_of(log);
  lines[1] = edited(
      lines[1], [](json& r) { r["time"] = "2001-01-01T00:00:00.000000000Z"; }, true);
  // Re-chain the next record by hand and drop the checkpoint (its signature
  // cannot be redone here): what remains is a log whose clock stepped back.
  const json moved = json::parse(lines[1]);
  lines[2] = edited(
      lines[2], [&](json& r) { r["prev"] = moved["hash"]; }, true);
  lines.resize(3);
  write_lines(log, lines);
  fs::remove(head_path(log));
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  bool warned = false;
  for (const auto& w : r.warnings) warned |= w.find("time goes back") != std::string::npos;
  EXPECT_TRUE(warned);
}

// ---- concurrency and crashes ----------------------------------------------------------

TEST_F(AuditLogTest, TwoProcessesAppendingConcurrentlyMakeOneValidChain) {
  key();  // create the host key before the writers start
  pid_t kids[2];
  for (pid_t& kid : kids) {
    kid = ::fork();
    ASSERT_GE(kid, 0);
    if (kid == 0) {
      int rc = 0;
      try {
        AuditLog l(log, key());
        for (int i = 0; i < 200; ++i) l.append(event(i));
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);
    }
  }
  for (pid_t kid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(kid, &status, 0), kid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 400u);
  EXPECT_GE(r.checkpoints, 6u);  // each writer seals every 64 of its records and at its end
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  std::set<long> pids;
  for (const auto& l : lines_of(log)) pids.insert(json::parse(l)["pid"].get<long>());
  EXPECT_EQ(pids.size(), 2u);
}

TEST_F(AuditLogTest, VerifyingWhileAWriterAppendsNeverSeesAHalfRecord) {
  key();
  session(1);
  const pid_t kid = ::fork();
  ASSERT_GE(kid, 0);
  if (kid == 0) {
    int rc = 0;
    try {
      AuditLog l(log, key());
      for (int i = 0; i < 300; ++i)
        l.append(Event{"bulk", {}, std::string(3000, 'x'), "ok"});  // lines that straddle pages
    } catch (...) {
      rc = 1;
    }
    ::_exit(rc);
  }
  int runs = 0;
  int status = 0;
  while (::waitpid(kid, &status, WNOHANG) == 0) {
    const auto r = check();
    ASSERT_TRUE(r.ok) << r.problem;
    ++runs;
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GT(runs, 0);
  EXPECT_TRUE(check().ok);
}

TEST_F(AuditLogTest, ThreadsSharingOneLogMakeOneValidChain) {
  {
    AuditLog l(log, key());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) l.append(event(i));
      });
    for (auto& t : threads) t.join();
  }
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 200u);
}

TEST_F(AuditLogTest, CrashedWritersUnsealedRecordsAreNotedByTheNextWriter) {
  key();
  const pid_t kid = ::fork();
  ASSERT_GE(kid, 0);
  if (kid == 0) {  // a writer that dies without sealing
    auto* l = new AuditLog(log, key());
    for (int i = 0; i < 3; ++i) l->append(event(i));
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(kid, &status, 0), kid);

  auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("3 record(s) after the last checkpoint"), std::string::npos)
      << r.warnings[0];

  { AuditLog next(log, key()); }  // opens, notes the crash, seals
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 5u);
  const json note = json::parse(lines[3]);
  EXPECT_EQ(note["command"], "audit recover");
  EXPECT_EQ(note["outcome"], "recovered");
  EXPECT_EQ(note["details"]["unsealed"]["records"], 3);
  EXPECT_EQ(note["details"]["unsealed"]["first_seq"], 1);
  EXPECT_EQ(note["details"]["unsealed"]["last_seq"], 3);
  EXPECT_EQ(json::parse(lines[4])["type"], "checkpoint");

  r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("stopped without sealing 3 record(s)"), std::string::npos)
      << r.warnings[0];
}

TEST_F(AuditLogTest, LiveWritersUnsealedRecordsAreNotMistakenForACrash) {
  AuditLog first(log, key());
  first.append(event(1));
  {
    AuditLog second(log, key());  // `first` is alive: its record is not a crash
    second.append(event(2));
  }
  for (const auto& l : lines_of(log)) EXPECT_NE(json::parse(l)["command"], "audit recover");
}

TEST_F(AuditLogTest, RecordCutShortByACrashIsAcknowledgedByTheNextWriter) {
  session(2);
  std::string text = read_file(log);
  write_file(log, text + R"({"v":"dlc-audit/1","type":"event","seq":4,"ti)");  // crash mid-write
  EXPECT_BAD_AT(check(), 4, "truncated record");

  session(1);
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 7u);  // 3 + the fragment + recovery note + event + checkpoint
  const json note = json::parse(lines[4]);
  EXPECT_EQ(note["command"], "audit recover");
  EXPECT_EQ(note["seq"], 4);
  EXPECT_EQ(note["details"]["incomplete"].size(), 1u);
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("cut short by a crash"), std::string::npos) << r.warnings[0];
}

TEST_F(AuditLogTest, RecordThatLostOnlyItsNewlineIsContinued) {
  session(2);
  std::string text = read_file(log);
  text.pop_back();
  write_file(log, text);
  EXPECT_BAD_AT(check(), 3, "truncated record");
  session(1);
  const auto r = check();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 3u);
}

TEST_F(AuditLogTest, WriterRefusesALogWhoseEndIsNotRecords) {
  std::string garbage;
  for (int i = 0; i < 70; ++i) garbage += "garbage\n";
  write_file(log, garbage);
  try {
    AuditLog l(log, key());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::check_failed);
  }
}

// ---- third-party reproduction ----------------------------------------------------------

TEST_F(AuditLogTest, PythonAndOpensslReproduceHashesAndSignatures) {
  if (dlc::test::run_shell("command -v python3 && command -v openssl").exit_code != 0)
    GTEST_SKIP() << "python3 or openssl not installed";
  {
    AuditLog l(log, key());
    l.append(Event{"wipe file",
                   {"dlc", "wipe", "客户 \"A\"\tB"},
                   "/数据/客户.csv",
                   "ok",
                   json{{"zeta", 1}, {"alpha", json{{"b", "\x01"}, {"a", -2}}}, {"ratio", 0.5}}});
    l.append(event(2));
  }
  session(1);
  // The auditor's procedure from docs/formats/audit-log.md, in Python, with
  // signatures checked by the openssl command line tool.
  const fs::path script = dir / "check.py";
  write_file(script, R"PY(
import hashlib, json, subprocess, sys, os
log, pub, work = sys.argv[1], sys.argv[2], sys.argv[3]
def canon(o): return json.dumps(o, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
def ed25519_ok(msg, sig_hex, key):
    assert hashlib.sha256(bytes.fromhex(key['public'])).hexdigest()[:32] == key['fingerprint']
    open(os.path.join(work, 'msg'), 'wb').write(msg)
    open(os.path.join(work, 'sig'), 'wb').write(bytes.fromhex(sig_hex))
    return subprocess.run(['openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin',
                           '-in', os.path.join(work, 'msg'), '-sigfile', os.path.join(work, 'sig')],
                          capture_output=True).returncode == 0
prev, seq, sigs = '0' * 64, 0, 0
with open(log, 'rb') as f:
    for n, raw in enumerate(f, 1):
        assert raw.endswith(b'\n'), n
        rec = json.loads(raw.decode('utf-8'))
        assert canon(rec) + b'\n' == raw, ('not canonical', n)
        h = rec.pop('hash')
        assert hashlib.sha256(canon(rec)).hexdigest() == h, ('hash', n)
        assert rec['prev'] == prev and rec['seq'] == seq + 1, ('chain', n)
        if rec['type'] == 'checkpoint':
            sig = rec.pop('sig')
            assert ed25519_ok(canon(rec), sig, rec['key']), ('signature', n)
            sigs += 1
        prev, seq = h, rec['seq']
head = json.load(open(log + '.head'))
sig = head.pop('sig')
assert ed25519_ok(canon(head), sig, head['key']), 'head signature'
assert head['seq'] == seq and head['hash'] == prev, 'head'
print('ok', seq, sigs)
)PY");
  const auto r = dlc::test::run_shell("python3 " + script.string() + " " + log.string() + " " +
                                      (dir / "host-key.pub").string() + " " + dir.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ok 5 2\n") << r.err;
}

// ---- keys ---------------------------------------------------------------------------------

TEST_F(AuditLogTest, HostKeyIsCreatedOnceAndLoadedAfterwards) {
  const auto a = key().public_key().fingerprint();
  const auto b = key().public_key().fingerprint();
  EXPECT_EQ(a, b);
  EXPECT_EQ(load_public_key(dir / "host-key.pub").fingerprint(), a);
}

TEST_F(AuditLogTest, TwoFirstUsersAgreeOnOneHostKey) {
  for (int round = 0; round < 5; ++round) {
    TempDir home;
    pid_t kids[2];
    for (int k = 0; k < 2; ++k) {
      kids[k] = ::fork();
      ASSERT_GE(kids[k], 0);
      if (kids[k] == 0) {
        int rc = 0;
        try {
          write_file(home / ("fp" + std::to_string(k)),
                     HostKey::load_or_create(home.path()).public_key().fingerprint());
        } catch (...) {
          rc = 1;
        }
        ::_exit(rc);
      }
    }
    for (pid_t kid : kids) {
      int status = 0;
      ::waitpid(kid, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    EXPECT_EQ(read_file(home / "fp0"), read_file(home / "fp1"));
  }
}

TEST_F(AuditLogTest, CorruptHostKeyIsAnUnusableKeyFile) {
  const fs::path pem = dir / "host-key.pem";
  write_file(pem, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
  fs::permissions(pem, fs::perms::owner_read | fs::perms::owner_write);
  try {
    HostKey::load(pem);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
    EXPECT_EQ(e.info().what, "unusable key file");
    EXPECT_EQ(e.info().target, pem.string());
    EXPECT_FALSE(e.info().hint.empty());
  }
}

TEST_F(AuditLogTest, HostKeyReadableByOthersIsRefused) {
  key();
  fs::permissions(dir / "host-key.pem", fs::perms::others_read, fs::perm_options::add);
  try {
    key();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
    EXPECT_NE(e.info().detail.find("0604"), std::string::npos) << e.info().detail;
  }
}

TEST_F(AuditLogTest, PublicKeyFilesArePemOrRawHex) {
  const auto k = pub();
  write_file(dir / "raw.hex", crypto::to_hex(k.raw()) + "\n");
  EXPECT_EQ(load_public_key(dir / "raw.hex").fingerprint(), k.fingerprint());

  write_file(dir / "bad.pub", "hello\n");
  try {
    load_public_key(dir / "bad.pub");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
  try {
    load_public_key(dir / "host-key.pem");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
    EXPECT_NE(e.info().detail.find("private key"), std::string::npos);
  }
  try {
    load_public_key(dir / "missing.pub");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
  }
}

// ---- masking --------------------------------------------------------------------------------

TEST(MaskArguments, SensitiveOptionValuesInBothForms) {
  EXPECT_EQ(mask_arguments({"dlc", "--passphrase", "p1", "--password=p2", "--db-passwd", "p3",
                            "--client-secret=s", "--api-token", "t", "--key", "k", "--sm4-key=k2",
                            "--CREDENTIALS", "c"}),
            (std::vector<std::string>{"dlc", "--passphrase", "***", "--password=***", "--db-passwd",
                                      "***", "--client-secret=***", "--api-token", "***", "--key",
                                      "***", "--sm4-key=***", "--CREDENTIALS", "***"}));
}

TEST(MaskArguments, WhereASecretIsIsNotSecret) {
  const std::vector<std::string> argv = {
      "dlc",      "--key-file",       "/etc/k.pem",         "--passphrase-file=/run/p",
      "--pubkey", "host.pub",         "--public-key=h.pub", "--key-id",
      "kms-1",    "--passphrase-env", "DLC_PASS",           "--key-size",
      "256"};
  EXPECT_EQ(mask_arguments(argv), argv);
}

TEST(MaskArguments, ValueAfterASensitiveFlagIsMaskedUnlessItIsAnOption) {
  EXPECT_EQ(mask_arguments({"--token", "--verbose"}),
            (std::vector<std::string>{"--token", "--verbose"}));
  EXPECT_EQ(mask_arguments({"--token"}), (std::vector<std::string>{"--token"}));
  EXPECT_EQ(mask_arguments({"--token", "-x"}), (std::vector<std::string>{"--token", "***"}));
}

TEST(MaskArguments, SecretLookingArgumentsAnywhere) {
  EXPECT_EQ(mask_arguments({std::string(64, 'a')}), (std::vector<std::string>{"***"}));
  EXPECT_EQ(mask_arguments({"0x00112233445566778899aabbccddeeff"}),
            (std::vector<std::string>{"***"}));
  EXPECT_EQ(mask_arguments({"--", "q3T9vX2mLp8RkZ4sW7yB1nC6dF0gH5jK3aE9uI2oPx=="}),
            (std::vector<std::string>{"--", "***"}));
  EXPECT_EQ(mask_arguments({"--label=q3T9vX2mLp8RkZ4sW7yB1nC6dF0gH5jK3aE9uI2oPx"}),
            (std::vector<std::string>{"--label=***"}));
  EXPECT_EQ(mask_arguments({"-----BEGIN PRIVATE KEY-----\nMC4C..."}),
            (std::vector<std::string>{"***"}));
  EXPECT_EQ(mask_arguments({"PASSWORD=x", "AWS_SECRET_ACCESS_KEY=y", "mode=fast"}),
            (std::vector<std::string>{"PASSWORD=***", "AWS_SECRET_ACCESS_KEY=***", "mode=fast"}));
  EXPECT_EQ(mask_arguments({"s3://admin:pa55@store.example/bucket", "https://host/path"}),
            (std::vector<std::string>{"s3://admin:***@store.example/bucket", "https://host/path"}));
}

TEST(MaskArguments, OrdinaryArgumentsAreKept) {
  const std::vector<std::string> argv = {
      "dlc",
      "wipe",
      "device",
      "/dev/disk/by-id/nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0R123456",
      "nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0R123456",
      "--method",
      "overwrite",
      "--passes=3",
      "/srv/backups/Tenant0042/QuarterlyReports2024Final/data.tar",
      std::string(31, 'a'),
      "-p",
      "backup-2024-11-25T12:00:00Z"};
  EXPECT_EQ(mask_arguments(argv), argv);
}

TEST(MaskArguments, MaskingIsIdempotent) {
  const std::vector<std::string> argv = {"--passphrase", "x", "--token=y", std::string(40, 'f')};
  EXPECT_EQ(mask_arguments(mask_arguments(argv)), mask_arguments(argv));
}

}  // namespace
}  // namespace dlc::audit
