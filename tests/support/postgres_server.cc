#include "tests/support/postgres_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;

// The newest installed server's programs (Debian: /usr/lib/postgresql/15/bin).
std::string BinDir() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = (entry.path() / "bin").string();
    if (fs::exists(bin + "/initdb") && bin > best) best = bin;
  }
  return best;
}

// Runs `command` (as `nobody` when we are root), its output into `log`.
absl::Status RunAsServerUser(const std::string& command, const std::string& log) {
  const std::string as_user =
      ::geteuid() == 0 ? "setpriv --reuid=nobody --regid=nogroup --clear-groups -- " : "";
  const std::string line = absl::StrCat("cd / && ", as_user, command, " >>", log, " 2>&1");
  const int rc = std::system(line.c_str());
  if (rc != 0) {
    auto text = ReadFileToString(log);
    return absl::InternalError(absl::StrCat(command, " failed (", rc, "): ", text.ok() ? *text : ""));
  }
  return absl::OkStatus();
}

std::string Read(const std::string& path) {
  auto text = ReadFileToString(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : std::string();
}

}  // namespace

absl::Status StartPostgres(const std::string& dir) {
  const std::string bin = BinDir();
  if (bin.empty()) return absl::FailedPreconditionError("no PostgreSQL server under /usr/lib/postgresql");
  fs::create_directories(dir);
  const std::string password = absl::StrCat("pw-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()) % 1000003);
  if (absl::Status st = WriteFileAtomically(dir + "/password", password + "\n", 0644); !st.ok()) return st;
  if (::geteuid() == 0) {
    const std::string chown = absl::StrCat("chown -R nobody:nogroup ", dir);
    if (std::system(chown.c_str()) != 0) return absl::InternalError("cannot chown " + dir);
  }
  const std::string log = dir + "/server.log";
  if (absl::Status st = RunAsServerUser(absl::StrCat(bin, "/initdb -D ", dir, "/data -U dockyard -E UTF8 ",
                                                     "--auth=scram-sha-256 --pwfile=", dir, "/password"),
                                        log);
      !st.ok()) {
    return st;
  }
  const int port = FreeLoopbackPort();
  if (absl::Status st = RunAsServerUser(
          absl::StrCat(bin, "/pg_ctl -D ", dir, "/data -l ", dir, "/postgres.log -w -t 60 -o \"-p ", port, " -k ",
                       dir, " -c listen_addresses=127.0.0.1 -c max_connections=300\" start"),
          log);
      !st.ok()) {
    return st;
  }
  return WriteFileAtomically(dir + "/admin_url",
                             absl::StrCat("postgresql://dockyard@127.0.0.1:", port, "/postgres\n"), 0644);
}

absl::Status StopPostgres(const std::string& dir) {
  const absl::Status st = RunAsServerUser(absl::StrCat(BinDir(), "/pg_ctl -D ", dir, "/data -m fast -w stop"),
                                          "/dev/null");
  std::error_code ec;
  fs::remove_all(dir, ec);
  return st;
}

std::string PostgresForTests() {
  const char* dir = std::getenv("DOCKYARD_TEST_SCALEOUT");
  return dir == nullptr ? std::string() : std::string(dir) + "/postgres";
}

absl::StatusOr<PostgresDatabase> CreateDatabase(const std::string& dir, const std::string& hint) {
  static std::atomic<int> counter{0};
  std::string name = absl::StrCat("dy_", hint, "_", ::getpid(), "_", counter++);
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  name = absl::AsciiStrToLower(name).substr(0, 60);
  const std::string admin_url = Read(dir + "/admin_url");
  try {
    pqxx::connection admin(absl::StrCat(admin_url, "?password=", Read(dir + "/password")));
    pqxx::nontransaction tx(admin);
    tx.exec("CREATE DATABASE " + tx.quote_name(name));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot create database ", name, " on ", admin_url, ": ", e.what()));
  }
  PostgresDatabase database;
  database.url = admin_url.substr(0, admin_url.rfind('/') + 1) + name;
  database.password_file = dir + "/password";
  return database;
}

}  // namespace dockyard::testing
