#include "common/tar_archive.h"
#include "common/tar_matches.h"
#include "common/tar_io.h"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "/tar_archive_XXXXXX";
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& contents, time_t mtime = 1'700'000'000) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  struct timeval times[2] = {{mtime, 0}, {mtime, 0}};
  ::utimes(path.c_str(), times);
}

struct TarEntry {
  std::string name;
  mode_t type = AE_IFREG;
  int perm = 0644;
  std::string contents;
  std::string link;  // symlink target, or hard link target when type is 0
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;
  int64_t mtime = 0;
};

std::vector<TarEntry> ListTar(const std::string& path) {
  std::vector<TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 10240), ARCHIVE_OK) << path;
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntry t;
    t.name = archive_entry_pathname(e);
    t.type = archive_entry_hardlink(e) != nullptr ? 0 : archive_entry_filetype(e);
    t.perm = archive_entry_perm(e);
    if (archive_entry_symlink(e) != nullptr) t.link = archive_entry_symlink(e);
    if (archive_entry_hardlink(e) != nullptr) t.link = archive_entry_hardlink(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    if (archive_entry_uname(e) != nullptr) t.uname = archive_entry_uname(e);
    t.mtime = archive_entry_mtime(e);
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) t.contents.append(buf, n);
    out.push_back(t);
  }
  archive_read_free(a);
  return out;
}

std::vector<std::string> Names(const std::vector<TarEntry>& entries) {
  std::vector<std::string> names;
  for (const TarEntry& e : entries) names.push_back(e.name);
  return names;
}

// Crafts tars the way a hostile or unusual producer might; libarchive's writer stores
// names such as "../x" or "/etc/x" verbatim.
void WriteTar(const std::string& path, const std::vector<TarEntry>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const TarEntry& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_perm(e, t.perm);
    if (t.type == 0) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, t.link.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, t.type);
      if (t.type == AE_IFLNK) archive_entry_set_symlink(e, t.link.c_str());
      archive_entry_set_size(e, t.type == AE_IFREG ? t.contents.size() : 0);
    }
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    if (!t.contents.empty()) archive_write_data(a, t.contents.data(), t.contents.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

// A source tree with a bit of everything PackDirectory has to handle.
void MakeTree(const TempDir& dir) {
  WriteFile(dir / "src/app.py", "print('hi')\n");
  WriteFile(dir / "src/b.py", "b\n");
  WriteFile(dir / "setup.py", "setup()\n");
  WriteFile(dir / "run.sh", "#!/bin/sh\n");
  ::chmod((dir / "run.sh").c_str(), 0755);
  fs::create_directories(dir / "empty");
  fs::create_symlink("src/app.py", dir / "link.py");
  WriteFile(dir / ".git/HEAD", "ref: refs/heads/main\n");
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0644), 0);
}

TEST(PackDirectory, SameTreeGivesIdenticalBytes) {
  TempDir src, out;
  MakeTree(src);
  // Names ustar cannot hold go into pax headers, which must be deterministic too.
  std::string long_name = "deep/" + std::string(120, 'x') + "/" + std::string(120, 'y') + ".txt";
  WriteFile(src / long_name, "long");
  WriteFile(src / "caf\xc3\xa9.txt", "utf-8");
  ASSERT_TRUE(PackDirectory(src.path(), out / "a.tar").ok());
  ASSERT_TRUE(PackDirectory(src.path(), out / "b.tar").ok());
  std::string a = ReadFile(out / "a.tar");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, ReadFile(out / "b.tar"));
  // Packing again over an existing output gives the same bytes too.
  ASSERT_TRUE(PackDirectory(src.path(), out / "a.tar").ok());
  EXPECT_EQ(a, ReadFile(out / "a.tar"));
  EXPECT_FALSE(fs::exists(out / "a.tar.tmp"));
  std::vector<std::string> names = Names(ListTar(out / "a.tar"));
  EXPECT_THAT(names, ::testing::Contains(long_name));
  EXPECT_THAT(names, ::testing::Contains("caf\xc3\xa9.txt"));
}

TEST(PackDirectory, StoresSortedEntriesOwnedByRootWithModesMtimesAndSymlinks) {
  TempDir src, out;
  MakeTree(src);
  ASSERT_TRUE(PackDirectory(src.path(), out / "src.tar").ok());
  std::vector<TarEntry> entries = ListTar(out / "src.tar");
  // Depth-first, names in byte order; .git, the fifo and the root itself are left out.
  EXPECT_THAT(Names(entries), ElementsAre("empty/", "link.py", "run.sh", "setup.py", "src/",
                                          "src/app.py", "src/b.py"));
  for (const TarEntry& e : entries) {
    EXPECT_EQ(e.uid, 0) << e.name;
    EXPECT_EQ(e.gid, 0) << e.name;
    EXPECT_EQ(e.uname, "") << e.name;
  }
  EXPECT_EQ(entries[0].type, AE_IFDIR);
  EXPECT_EQ(entries[1].type, AE_IFLNK);
  EXPECT_EQ(entries[1].link, "src/app.py");
  EXPECT_EQ(entries[2].perm, 0755);
  EXPECT_EQ(entries[3].perm, 0644);
  EXPECT_EQ(entries[3].mtime, 1'700'000'000);
  EXPECT_EQ(entries[5].contents, "print('hi')\n");
}

TEST(PackDirectory, HonoursDockyardIgnoreRules) {
  TempDir src, out;
  WriteFile(src / ".dockyardignore",
            "# build output\n"
            "*.pyc\n"
            "build/\n"
            "/top.log\n"
            "docs/tmp\n"
            "**/cache/**\n"
            "*.log\n"
            "!keep.log\n"
            "  \n");
  WriteFile(src / "a.py", "");
  WriteFile(src / "a.pyc", "");
  WriteFile(src / "pkg/b.pyc", "");
  WriteFile(src / "pkg/b.py", "");
  WriteFile(src / "build/out.o", "");
  WriteFile(src / "pkg/build/out.o", "");
  WriteFile(src / "build.txt", "");  // "build/" only matches directories
  WriteFile(src / "top.log", "");
  WriteFile(src / "keep.log", "");
  WriteFile(src / "pkg/top.txt", "");
  WriteFile(src / "docs/tmp/x", "");
  WriteFile(src / "docs/index.md", "");
  WriteFile(src / "pkg/docs/tmp/y", "");  // anchored: only docs/tmp at the root is ignored
  WriteFile(src / "pkg/cache/blob", "");
  WriteFile(src / ".git/config", "");
  WriteFile(src / "pkg/.git/config", "");
  ASSERT_TRUE(PackDirectory(src.path(), out / "src.tar").ok());
  EXPECT_THAT(Names(ListTar(out / "src.tar")),
              ElementsAre(".dockyardignore", "a.py", "build.txt", "docs/", "docs/index.md",
                          "keep.log", "pkg/", "pkg/b.py", "pkg/cache/", "pkg/docs/",
                          "pkg/docs/tmp/", "pkg/docs/tmp/y", "pkg/top.txt"));
}

TEST(PackDirectory, DoesNotPackItsOwnOutput) {
  TempDir src;
  WriteFile(src / "a.txt", "a");
  ASSERT_TRUE(PackDirectory(src.path(), src / "self.tar").ok());
  EXPECT_THAT(Names(ListTar(src / "self.tar")), ElementsAre("a.txt"));
}

TEST(PackDirectory, FailsForMissingDirectoryWithoutLeavingOutput) {
  TempDir out;
  absl::Status status = PackDirectory(out / "missing", out / "x.tar");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(out / "x.tar"));
  EXPECT_FALSE(fs::exists(out / "x.tar.tmp"));
}

TEST(PrefixTar, ListsEntriesUnderThePrefixWithParentDirsFirst) {
  TempDir src, out;
  WriteFile(src / "app.py", "app");
  WriteFile(src / "pkg/mod.py", "mod");
  ASSERT_TRUE(PackDirectory(src.path(), out / "src.tar").ok());
  ASSERT_TRUE(PrefixTar(out / "src.tar", "srv/app/", out / "prefixed.tar").ok());
  std::vector<TarEntry> entries = ListTar(out / "prefixed.tar");
  EXPECT_THAT(Names(entries), ElementsAre("srv/", "srv/app/", "srv/app/app.py", "srv/app/pkg/",
                                          "srv/app/pkg/mod.py"));
  EXPECT_EQ(entries[0].type, AE_IFDIR);
  EXPECT_EQ(entries[0].perm, 0755);
  EXPECT_EQ(entries[1].perm, 0755);
  EXPECT_EQ(entries[2].contents, "app");
  EXPECT_EQ(entries[4].contents, "mod");
  EXPECT_FALSE(fs::exists(out / "prefixed.tar.tmp"));
}

TEST(PrefixTar, PrefixesHardLinkTargetsAndDropsTheRootEntry) {
  TempDir dir;
  WriteTar(dir / "in.tar", {{.name = "./", .type = AE_IFDIR, .perm = 0755},
                            {.name = "./a.txt", .contents = "data"},
                            {.name = "./b.txt", .type = 0, .link = "./a.txt"}});
  ASSERT_TRUE(PrefixTar(dir / "in.tar", "/application", dir / "out.tar").ok());
  std::vector<TarEntry> entries = ListTar(dir / "out.tar");
  EXPECT_THAT(Names(entries), ElementsAre("application/", "application/a.txt", "application/b.txt"));
  EXPECT_EQ(entries[2].type, 0);
  EXPECT_EQ(entries[2].link, "application/a.txt");
}

TEST(PrefixTar, RefusesEscapingPrefixesAndEntries) {
  TempDir dir;
  WriteTar(dir / "in.tar", {{.name = "a.txt", .contents = "a"}});
  EXPECT_EQ(PrefixTar(dir / "in.tar", "../up", dir / "out.tar").code(),
            absl::StatusCode::kInvalidArgument);
  WriteTar(dir / "bad.tar", {{.name = "../evil", .contents = "x"}});
  EXPECT_EQ(PrefixTar(dir / "bad.tar", "app", dir / "out.tar").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir / "out.tar"));
  EXPECT_FALSE(fs::exists(dir / "out.tar.tmp"));
}

struct Matched {
  std::string path;
  std::string data;
  std::string hardlink_to;
};

// What VisitMatchingFiles hands over, with each file's data read as the agent reads it.
absl::StatusOr<std::vector<Matched>> MatchingFiles(const fs::path& tar, const std::string& root,
                                                   const std::string& pattern) {
  auto reader = tar_io::OpenReader(tar);
  if (!reader.ok()) return reader.status();
  std::vector<Matched> seen;
  absl::Status st = VisitMatchingFiles(reader->get(), tar.string(), root, pattern,
                                       [&](const MatchedFile& file, archive* data) -> absl::Status {
                                         Matched m{file.container_path, "", file.hardlink_to};
                                         if (!file.hardlink_to.empty()) {
                                           seen.push_back(m);
                                           return absl::OkStatus();
                                         }
                                         absl::Status read = ReadEntryData(data, "test", file.size,
                                                                           [&](absl::string_view bytes) {
                                                                             m.data.append(bytes.data(), bytes.size());
                                                                             return absl::OkStatus();
                                                                           });
                                         seen.push_back(m);
                                         return read;
                                       });
  if (!st.ok()) return st;
  return seen;
}

TEST(MatchingFiles, AreOnlyTheMatchingRegularFilesInArchiveOrder) {
  TempDir dir;
  WriteTar(dir / "docker.tar", {{.name = "wheelhouse/", .type = AE_IFDIR, .perm = 0755},
                                {.name = "wheelhouse/b-1.0.whl", .contents = "bbb"},
                                {.name = "wheelhouse/notes.txt", .contents = "no"},
                                {.name = "wheelhouse/a-1.0.whl", .contents = "aaaa"},
                                {.name = "wheelhouse/sub/", .type = AE_IFDIR, .perm = 0755},
                                {.name = "wheelhouse/sub/c-1.0.whl", .contents = "nested"},
                                {.name = "wheelhouse/l.whl", .type = AE_IFLNK, .link = "a-1.0.whl"},
                                {.name = "wheelhouse/d.whl/", .type = AE_IFDIR, .perm = 0755}});
  auto files = MatchingFiles(dir / "docker.tar", "/wheelhouse", "/wheelhouse/*.whl");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "/wheelhouse/b-1.0.whl");
  EXPECT_EQ((*files)[0].data, "bbb");
  EXPECT_EQ((*files)[1].path, "/wheelhouse/a-1.0.whl");
  EXPECT_EQ((*files)[1].data, "aaaa");
}

TEST(MatchingFiles, AreMappedBelowANestedArchiveRoot) {
  TempDir dir;
  WriteTar(dir / "docker.tar", {{.name = "dist/", .type = AE_IFDIR, .perm = 0755},
                                {.name = "dist/app.tar.gz", .contents = "gz"}});
  auto files = MatchingFiles(dir / "docker.tar", "/srv/app/dist/", "/srv/app/dist/*.tar.gz");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "/srv/app/dist/app.tar.gz");
}

TEST(MatchingFiles, RefuseDotDotEntries) {
  TempDir dir;
  WriteTar(dir / "evil.tar", {{.name = "wheelhouse/ok.whl", .contents = "ok"},
                              {.name = "wheelhouse/../../evil.whl", .contents = "evil"}});
  auto files = MatchingFiles(dir / "evil.tar", "/wheelhouse", "/*");
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(files.status().message()), HasSubstr("\"..\""));
}

TEST(MatchingFiles, RefuseAbsoluteEntries) {
  TempDir dir;
  WriteTar(dir / "abs.tar", {{.name = "/etc/passwd", .contents = "root"}});
  EXPECT_EQ(MatchingFiles(dir / "abs.tar", "/etc", "/etc/*").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MatchingFiles, RefuseTwoMatchesWithTheSameBaseName) {
  TempDir dir;
  WriteTar(dir / "dup.tar", {{.name = "out/a/x.whl", .contents = "1"},
                             {.name = "out/b/x.whl", .contents = "2"}});
  auto files = MatchingFiles(dir / "dup.tar", "/out", "/out/*/*.whl");
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(files.status().message()), HasSubstr("/out/a/x.whl and /out/b/x.whl"));
}

TEST(MatchingFiles, NameTheTargetOfAHardLinkedMatch) {
  TempDir dir;
  WriteTar(dir / "links.tar", {{.name = "w/a.whl", .contents = "wheel"},
                               {.name = "w/b.whl", .type = 0, .link = "w/a.whl"}});
  auto files = MatchingFiles(dir / "links.tar", "/w", "/w/*.whl");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[1].path, "/w/b.whl");
  EXPECT_EQ((*files)[1].hardlink_to, "/w/a.whl");
  // A link to a file the pattern does not take cannot be published.
  EXPECT_EQ(MatchingFiles(dir / "links.tar", "/w", "/w/b.whl").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dockyard
