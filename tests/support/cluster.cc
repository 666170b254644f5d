#include "tests/support/cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/support/postgres_server.h"
#include "tests/support/s3_server.h"

namespace dockyard::testing {
namespace fs = std::filesystem;

std::string Bin(const std::string& relative) { return absl::StrCat(DOCKYARD_BIN_DIR, "/", relative); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  ::pclose(pipe);
  return out;
}

Process::Process(std::vector<std::string> argv, std::string log_path) : log_path_(std::move(log_path)) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (Running()) {
    Signal(SIGKILL);
    Wait(absl::Seconds(10));
  }
}

void Process::Signal(int sig) {
  if (pid_ > 0 && status_ < 0) ::kill(pid_, sig);
}

bool Process::Running() {
  if (status_ >= 0) return false;
  int st = 0;
  struct rusage usage {};
  pid_t r = ::wait4(pid_, &st, WNOHANG, &usage);
  if (r == pid_) {
    max_rss_kb_ = usage.ru_maxrss;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

int Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

std::string Process::Log() const { return ReadFile(log_path_); }

Cluster::Cluster() {
  char tmpl[] = "/tmp/dyt-XXXXXX";  // short: unix socket paths stay under 108 chars
  dir_ = ::mkdtemp(tmpl);
}

Cluster::~Cluster() {
  // SIGTERM drains; a second one stops what still runs (removing its containers).
  for (auto& [name, agent] : agents_) agent->Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (auto& [name, agent] : agents_) agent->Signal(SIGTERM);
  for (auto& [name, agent] : agents_) {
    if (agent->Wait(absl::Seconds(20)) < 0) agent->Signal(SIGKILL);
  }
  if (controller_) {
    controller_->Signal(SIGTERM);
    if (controller_->Wait(absl::Seconds(10)) < 0) controller_->Signal(SIGKILL);
  }
  for (const std::string& name : agent_names_) {
    Shell(absl::StrCat("docker ps -aq --filter label=dockyard.agent=", name, " | xargs -r docker rm -f >/dev/null 2>&1"));
    Shell(absl::StrCat("docker volume ls -q --filter label=dockyard.agent=", name,
                       " | xargs -r docker volume rm -f >/dev/null 2>&1"));
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Cluster::StartController(std::vector<std::string> extra_flags) {
  const std::string address_file = dir_ + "/controller.address";
  fs::remove(address_file);
  // A restart keeps the port, so agents and clients find it again.
  const std::string listen = address_.empty() ? "127.0.0.1:0" : address_;
  std::vector<std::string> argv = {Bin("controller/dockyard-controller"), "--listen=" + listen,
                                   "--data_dir=" + dir_ + "/controller", "--address_file=" + address_file};
  if (insecure_) argv.push_back("--insecure");
  // The scale-out suite: the same test with the controller's state on PostgreSQL and
  // its blobs in S3, one database and bucket per cluster (a restarted controller
  // finds its runs and blobs there).
  if (const std::string postgres = PostgresForTests(); !postgres.empty() && state_flags_.empty()) {
    auto database = CreateDatabase(postgres, "cluster");
    if (!database.ok()) throw std::runtime_error(database.status().ToString());
    state_flags_ = {"--state=" + database->url, "--state_password_file=" + database->password_file};
  }
  if (const std::string s3 = S3ForTests(); !s3.empty() && blob_flags_.empty()) {
    auto bucket = CreateBucket(s3, "cluster");
    if (!bucket.ok()) throw std::runtime_error(bucket.status().ToString());
    blob_flags_ = {"--blobs=" + bucket->url + "/controller", "--s3_endpoint=" + bucket->endpoint,
                   "--s3_credentials_file=" + bucket->credentials_file};
  }
  argv.insert(argv.end(), state_flags_.begin(), state_flags_.end());
  argv.insert(argv.end(), blob_flags_.begin(), blob_flags_.end());
  for (auto& f : extra_flags) argv.push_back(f);
  controller_ = std::make_unique<Process>(argv, dir_ + "/controller.log");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!fs::exists(address_file)) {
    if (!controller_->Running() || absl::Now() > deadline) {
      throw std::runtime_error("controller did not start:\n" + controller_->Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  address_ = ReadFile(address_file);
  while (!address_.empty() && (address_.back() == '\n')) address_.pop_back();
}

std::vector<std::string> Cluster::SharedStoreFlags() const {
  std::vector<std::string> flags = state_flags_;
  flags.insert(flags.end(), blob_flags_.begin(), blob_flags_.end());
  return flags;
}

Process& Cluster::StartAgent(const AgentSpec& spec) {
  const std::string work_dir = dir_ + "/agent-" + spec.name;
  std::vector<std::string> argv = {Bin("agent/dockyard-agent"),
                                   "--controller=" + address_,
                                   "--name=" + spec.name,
                                   "--labels=" + absl::StrJoin(spec.labels, ","),
                                   absl::StrCat("--slots=", spec.slots),
                                   "--work_dir=" + work_dir};
  // First start: enrol with a one-time token; later starts present the certificate.
  if (insecure_) {
    argv.push_back("--insecure");
  } else if (!fs::exists(work_dir + "/identity/agent.crt")) {
    argv.push_back("--enrol_token_file=" + CreateEnrolToken());
    argv.push_back("--ca_file=" + ca_file());
  }
  for (const std::string& flag : spec.flags) argv.push_back(flag);
  agents_[spec.name] = std::make_unique<Process>(argv, absl::StrCat(dir_, "/agent-", spec.name, ".log"));
  if (std::find(agent_names_.begin(), agent_names_.end(), spec.name) == agent_names_.end()) {
    agent_names_.push_back(spec.name);
  }
  return *agents_[spec.name];
}

CliResult Cluster::Cli(const std::vector<std::string>& args, absl::Duration timeout) {
  return CliWithToken(admin_token_file(), args, timeout);
}

CliResult Cluster::CliWithToken(const std::string& token_file, const std::vector<std::string>& args,
                                absl::Duration timeout, const std::string& stdin_path) {
  static int counter = 0;
  const std::string out = absl::StrCat(dir_, "/cli-", ++counter, ".out");
  const std::string err = absl::StrCat(dir_, "/cli-", counter, ".err");
  std::string command = absl::StrCat("cd ", dir_, " && env -u DOCKYARD_TOKEN timeout ",
                                     absl::ToInt64Seconds(timeout), " ", Bin("cli/dockyard"),
                                     " --controller=", address_);
  for (const std::string& flag : ConnectionFlags(token_file)) absl::StrAppend(&command, " ", flag);
  for (const std::string& a : args) absl::StrAppend(&command, " '", a, "'");
  absl::StrAppend(&command, " <", stdin_path.empty() ? "/dev/null" : stdin_path, " >", out, " 2>", err);
  int status = std::system(command.c_str());
  CliResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  return result;
}

std::string Cluster::CreateToken(const std::string& role, const std::string& name) {
  CliResult r = Cli({"tokens", "create", "--role=" + role, "--name=" + name});
  if (r.exit_code != 0) throw std::runtime_error("tokens create failed:\n" + r.err);
  const std::string path = absl::StrCat(dir_, "/", name, ".token");
  std::ofstream(path) << r.out;
  ::chmod(path.c_str(), 0600);
  return path;
}

std::string Cluster::CreateEnrolToken(int uses, const std::string& ttl) {
  static int counter = 0;
  CliResult r = Cli({"agents", "enrol", absl::StrCat("--uses=", uses), "--ttl=" + ttl});
  if (r.exit_code != 0) throw std::runtime_error("agents enrol failed:\n" + r.err);
  const std::string path = absl::StrCat(dir_, "/enrol-", ++counter, ".token");
  std::ofstream(path) << r.out;
  ::chmod(path.c_str(), 0600);
  return path;
}

std::vector<std::string> Cluster::ConnectionFlags(const std::string& token_file) const {
  if (insecure_) return {"--insecure"};
  std::vector<std::string> flags = {"--ca_file=" + ca_file()};
  if (!token_file.empty()) flags.push_back("--token_file=" + token_file);
  return flags;
}

std::unique_ptr<Process> Cluster::SpawnCli(const std::vector<std::string>& args, const std::string& token_file) {
  static int counter = 0;
  std::vector<std::string> argv = {Bin("cli/dockyard"), "--controller=" + address_};
  for (const std::string& flag : ConnectionFlags(token_file.empty() ? admin_token_file() : token_file)) {
    argv.push_back(flag);
  }
  for (const std::string& a : args) argv.push_back(a);
  return std::make_unique<Process>(argv, absl::StrCat(dir_, "/spawned-cli-", ++counter, ".log"));
}

std::string Cluster::WaitForStatus(const std::string& run_id, const std::string& text, absl::Duration timeout) {
  std::string last;
  Eventually(
      [&] {
        last = Cli({"status", run_id}).out;
        return last.find(text) != std::string::npos;
      },
      timeout);
  return last;
}

std::string UniqueName(const std::string& base) { return absl::StrCat(base, "-", ::getpid()); }

bool Eventually(const std::function<bool()>& probe, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (probe()) return true;
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string AgentOfStage(const std::string& status_out, const std::string& stage) {
  std::istringstream in(status_out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("  " + stage + " ", 0) != 0) continue;
    size_t on = line.find(" on ");
    if (on == std::string::npos) return "";
    size_t end = line.find(' ', on + 4);
    return line.substr(on + 4, end == std::string::npos ? std::string::npos : end - on - 4);
  }
  return "";
}

std::string Cluster::WriteFile(const std::string& name, const std::string& text) {
  const fs::path path = fs::path(dir_) / name;
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

void Cluster::WaitForAgents(int count, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    CliResult r = Cli({"agents"});
    int connected = 0;
    size_t pos = 0;
    while ((pos = r.out.find(" connected ", pos)) != std::string::npos) {
      ++connected;
      ++pos;
    }
    if (connected >= count) return;
    if (absl::Now() > deadline) {
      std::string logs;
      for (auto& [name, agent] : agents_) absl::StrAppend(&logs, "--- agent ", name, ":\n", agent->Log());
      throw std::runtime_error("agents did not connect:\n" + r.out + r.err + logs);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace dockyard::testing
