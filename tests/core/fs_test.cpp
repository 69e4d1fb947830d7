// core/fs.h: durable, atomic replacement of small files.
#include "core/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using dlc::Errc;
using dlc::ParentDir;
using dlc::test::TempDir;

namespace {

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) n.push_back(e.path().filename().string());
  std::sort(n.begin(), n.end());
  return n;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST(WriteFileAtomic, WritesReplacesAndSetsTheModeLeavingNoTemporaryFile) {
  TempDir dir;
  const fs::path p = dir / "report.json";
  dlc::write_file_atomic(p, "first\n", 0644);
  EXPECT_EQ(dlc::test::read_file(p), "first\n");
  EXPECT_EQ(mode_of(p), 0644u);
  dlc::write_file_atomic(p, std::string(100000, 'x'), 0600);
  EXPECT_EQ(dlc::test::read_file(p), std::string(100000, 'x'));
  EXPECT_EQ(mode_of(p), 0600u);
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"report.json"});
}

TEST(WriteFileAtomic, UserOutputsTakeTheUmaskLikeOpen) {
  TempDir dir;
  const mode_t old = ::umask(027);
  dlc::write_file_atomic(dir / "report.csv", "a,b\n", dlc::kModeFromUmask);
  ::umask(077);
  dlc::write_file_atomic(dir / "masked.txt", "x", dlc::kModeFromUmask);
  ::umask(old);
  EXPECT_EQ(mode_of(dir / "report.csv"), 0640u);
  EXPECT_EQ(mode_of(dir / "masked.txt"), 0600u);
}

TEST(WriteFileAtomic, AMissingDirectoryIsAnErrorUnlessAskedToCreateIt) {
  TempDir dir;
  const fs::path p = dir / "a" / "b" / "cert.json";
  try {
    dlc::write_file_atomic(p, "x");
    FAIL() << "no error for a missing directory";
  } catch (const dlc::Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_EQ(e.info().target, (dir / "a" / "b").string());
  }
  dlc::write_file_atomic(p, "x", 0600, ParentDir::create);
  EXPECT_EQ(dlc::test::read_file(p), "x");
  EXPECT_EQ(mode_of(dir / "a" / "b"), 0700u);
}

TEST(WriteFileAtomic, AFailedRenameKeepsTheOldTargetAndRemovesTheTemporaryFile) {
  TempDir dir;
  const fs::path p = dir / "target";
  fs::create_directory(p);  // rename(file, non-empty dir) fails
  dlc::test::write_file(p / "inside", "keep");
  EXPECT_THROW(dlc::write_file_atomic(p, "new"), dlc::Error);
  EXPECT_TRUE(fs::is_directory(p));
  EXPECT_EQ(dlc::test::read_file(p / "inside"), "keep");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"target"});
}

TEST(WriteFileAtomic, TemporaryNamesAreRecognised) {
  EXPECT_TRUE(dlc::is_atomic_temp_name(".index.json.dlc-tmp-Ab12Cd"));
  EXPECT_FALSE(dlc::is_atomic_temp_name("index.json"));
  EXPECT_FALSE(dlc::is_atomic_temp_name("index.dlc-tmp-Ab12Cd"));  // no leading dot
}
