#include "migrate/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string_view>

#include "core/audit_log.h"
#include "core/crypto.h"
#include "core/error.h"
#include "verify/verify.h"

namespace dlc::migrate {

using nlohmann::json;

namespace {

// A journal is read back after crashes and may be damaged: every defect is one
// dlc::Error naming the line and what is wrong with it (never the bytes of a
// path), never a stray JSON exception, and never silently skipped: a lost
// "x" line would let a later run skip a file it must send again.
Error damaged(const std::filesystem::path& path, std::size_t line, const std::string& why) {
  return Error(Errc::io, "the migration resume journal is damaged", path.string(),
               "line " + std::to_string(line) + ": " + why,
               "pass --restart to start this migration afresh (files already at the destination are "
               "sent again)");
}

struct LineReader {
  const std::filesystem::path& path;
  std::size_t line;
  const json& j;

  [[noreturn]] void fail(const std::string& why) const { throw damaged(path, line, why); }

  // "p" (UTF-8) or "p_hex" (other bytes), as verify::put_bytes writes it.
  std::string path_member() const {
    const auto p = j.find("p"), h = j.find("p_hex");
    if ((p == j.end()) == (h == j.end())) fail("a record has no path or two (\"p\", \"p_hex\")");
    std::string out;
    if (p != j.end()) {
      if (!p->is_string()) fail("\"p\" is not a string");
      out = p->get<std::string>();
    } else {
      if (!h->is_string()) fail("\"p_hex\" is not a string");
      try {
        const crypto::Bytes b = crypto::from_hex(h->get<std::string>());
        out.assign(b.begin(), b.end());
      } catch (const Error&) {
        fail("\"p_hex\" is not hex");
      }
    }
    if (out.empty()) fail("a record has an empty path");
    return out;
  }
  std::uint64_t unsigned_member(const char* key) const {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned())
      fail(std::string("\"") + key + "\" is missing or not an unsigned integer");
    return it->get<std::uint64_t>();
  }
  std::int64_t signed_member(const char* key) const {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() ||
        (it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t{INT64_MAX}))
      fail(std::string("\"") + key + "\" is missing or not a 64-bit integer");
    return it->get<std::int64_t>();
  }
  // Every hash dlc migrates with is 32 bytes, written as lower-case hex.
  std::string hash_member() const {
    const auto it = j.find("h");
    const auto lower_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() != 2 * crypto::kHashSize ||
        !std::all_of(it->get_ref<const std::string&>().begin(), it->get_ref<const std::string&>().end(), lower_hex))
      fail("\"h\" is missing or not a " + std::to_string(2 * crypto::kHashSize) + "-digit hex hash");
    return it->get<std::string>();
  }
};

}  // namespace

Journal::Journal(const std::filesystem::path& dir, const json& header, bool restart) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(Errc::io, "cannot create the migration state directory", dir.string(), ec.message(),
                      "set DLC_HOME to a writable directory");
  path_ = dir / "journal.jsonl";
  if (restart) std::filesystem::remove(path_, ec);
  bool have_header = false;
  // Where the last complete line ends: a last line without its '\n' was cut
  // short (kill -9 while appending). It is dropped, and cut off the file below
  // so that the next record starts a line of its own instead of being glued
  // onto it (and lost at the next resume).
  std::size_t complete = 0, length = 0;
  if (std::filesystem::exists(path_, ec)) {
    const std::string text = verify::read_text_file(path_);
    length = text.size();
    const std::size_t last_nl = text.rfind('\n');
    complete = last_nl == std::string::npos ? 0 : last_nl + 1;
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < complete;) {
      const std::size_t nl = text.find('\n', pos);
      const std::string_view line(text.data() + pos, nl - pos);
      pos = nl + 1;
      ++line_no;
      if (line.empty()) continue;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception&) {
        throw damaged(path_, line_no, "not JSON");
      }
      const LineReader r{path_, line_no, j};
      if (!j.is_object()) r.fail("not a JSON object");
      const auto ti = j.find("t");
      if (ti == j.end() || !ti->is_string()) r.fail("no record type (\"t\")");
      const std::string& t = ti->get_ref<const std::string&>();
      if (t == "header") {
        if (have_header) r.fail("a second header");
        if (j.value("pair", json()) != header)
          throw Error(Errc::refused, "the resume journal belongs to another migration", path_.string(),
                      "it was written for a different source, destination or hash",
                      "pass --restart to start this migration afresh");
        have_header = true;
        continue;
      }
      if (!have_header) r.fail("records before the header");
      if (t == "c" || t == "v") {
        JournalRecord rec;
        rec.hash = r.hash_member();
        rec.size = r.unsigned_member("s");
        rec.ino = r.unsigned_member("i");
        rec.mtime_ns = r.signed_member("m");
        rec.ctime_ns = r.signed_member("ct");
        rec.verified = t == "v";
        files_[r.path_member()] = rec;
      } else if (t == "x") {
        files_.erase(r.path_member());
      } else if (t != "note") {
        r.fail("unknown record type");
      }
    }
  }
  resumed_ = !files_.empty();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw_errno("cannot open the resume journal", path_.string());
  if (complete < length && ::ftruncate(fd_, static_cast<off_t>(complete)) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw_errno("cannot cut the unfinished last line off the resume journal", path_.string(), err);
  }
  if (!have_header) append(audit::canonical_json({{"t", "header"}, {"pair", header}}) + "\n");
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t Journal::verified_count() const {
  std::size_t n = 0;
  for (const auto& [p, r] : files_) n += r.verified;
  return n;
}

void Journal::append(const std::string& lines) {
  std::size_t done = 0;
  while (done < lines.size()) {
    const ssize_t w = ::write(fd_, lines.data() + done, lines.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write the resume journal", path_.string());
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fdatasync(fd_) != 0) throw_errno("cannot sync the resume journal", path_.string());
}

void Journal::record(const std::vector<std::pair<std::string, JournalRecord>>& recs) {
  if (recs.empty()) return;
  std::string lines;
  for (const auto& [p, r] : recs) {
    json j = {{"t", r.verified ? "v" : "c"}, {"h", r.hash}, {"s", r.size}, {"i", r.ino},
              {"m", r.mtime_ns}, {"ct", r.ctime_ns}};
    verify::put_bytes(j, "p", p);
    lines += audit::canonical_json(j) + "\n";
  }
  std::lock_guard<std::mutex> lk(mu_);
  append(lines);
  for (const auto& [p, r] : recs) files_[p] = r;
}

void Journal::forget(const std::vector<std::string>& paths) {
  if (paths.empty()) return;
  std::string lines;
  for (const auto& p : paths) {
    json j = {{"t", "x"}};
    verify::put_bytes(j, "p", p);
    lines += audit::canonical_json(j) + "\n";
  }
  std::lock_guard<std::mutex> lk(mu_);
  append(lines);
  for (const auto& p : paths) files_.erase(p);
}

void Journal::note(const json& event) {
  json j = event;
  j["t"] = "note";
  std::lock_guard<std::mutex> lk(mu_);
  append(audit::canonical_json(j) + "\n");
}

}  // namespace dlc::migrate
