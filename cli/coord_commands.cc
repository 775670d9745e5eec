#include "cli/coord_commands.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "cli/command_util.h"
#include "cli/go_format.h"
#include "client/concurrency.h"

extern char** environ;

namespace arbiter::cli {
namespace {

using client::Client;

Exit BadArgs(std::string message) { return Exit{kExitBadArgs, std::move(message)}; }

// SIGINT and SIGTERM, taken by a thread of their own: they cancel the
// blocking calls and wake the command. Made before the client, so that no
// thread of gRPC's has them unblocked.
class Interrupts {
 public:
  Interrupts() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, kQuit);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] { Run(); });
  }
  ~Interrupts() {
    {
      absl::MutexLock lock(&mu_);
      quit_ = true;
    }
    pthread_kill(thread_.native_handle(), kQuit);
    thread_.join();
  }

  client::Canceller* canceller() { return &canceller_; }
  void SetLost() {
    absl::MutexLock lock(&mu_);
    lost_ = true;
  }
  bool interrupted() const {
    absl::MutexLock lock(&mu_);
    return interrupted_;
  }
  // Blocks until a signal came (true) or the session was lost (false).
  bool WaitInterruptedOrLost() {
    absl::MutexLock lock(&mu_);
    const auto woken = [this] {
      mu_.AssertReaderHeld();
      return interrupted_ || lost_;
    };
    mu_.Await(absl::Condition(&woken));
    return interrupted_;
  }
  // The signal mask a child process starts with: the one before.
  const sigset_t& original_mask() const { return old_; }

 private:
  static constexpr int kQuit = SIGUSR2;

  void Run() {
    for (;;) {
      int signal = 0;
      if (sigwait(&set_, &signal) != 0) continue;
      absl::MutexLock lock(&mu_);
      if (signal == kQuit) {
        if (quit_) return;
        continue;
      }
      interrupted_ = true;
      canceller_.Cancel();
    }
  }

  sigset_t set_;
  sigset_t old_;
  client::Canceller canceller_;
  mutable absl::Mutex mu_;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Exit for a failed blocking call: "context canceled" after a signal.
Exit WaitError(const absl::Status& status, const Interrupts& interrupts) {
  if (interrupts.interrupted()) return Exit{kExitError, "context canceled"};
  return ClientError(status);
}

// Go's text of an errno ("no such file or directory").
std::string ErrnoText(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

// Go's names of the signals a command usually dies of.
std::string SignalText(int signal) {
  static const auto* const kNames = new std::map<int, std::string>{
      {SIGHUP, "hangup"},
      {SIGINT, "interrupt"},
      {SIGQUIT, "quit"},
      {SIGILL, "illegal instruction"},
      {SIGTRAP, "trace/breakpoint trap"},
      {SIGABRT, "aborted"},
      {SIGBUS, "bus error"},
      {SIGFPE, "floating point exception"},
      {SIGKILL, "killed"},
      {SIGUSR1, "user defined signal 1"},
      {SIGSEGV, "segmentation fault"},
      {SIGUSR2, "user defined signal 2"},
      {SIGPIPE, "broken pipe"},
      {SIGALRM, "alarm clock"},
      {SIGTERM, "terminated"},
  };
  auto it = kNames->find(signal);
  return it != kNames->end() ? it->second : absl::StrCat("signal ", signal);
}

// exec.LookPath: a name without a slash is searched for in $PATH.
std::optional<std::string> LookPath(const std::string& file, std::string* error) {
  if (file.find('/') != std::string::npos) return file;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path == nullptr ? "" : path, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", file);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111) != 0) {
      return candidate;
    }
  }
  *error = absl::StrCat("exec: ", GoQuote(file), ": executable file not found in $PATH");
  return std::nullopt;
}

// Runs argv with `extra` added to the environment (the parent's value wins
// for a name in both, as Go's os/exec keeps the last), and waits for it.
// nullopt when it exits 0; Go's error text otherwise.
std::optional<std::string> RunCommandHolding(const std::vector<std::string>& argv,
                                             const std::vector<std::string>& extra,
                                             const sigset_t& mask) {
  std::string error;
  std::optional<std::string> path = LookPath(argv[0], &error);
  if (!path.has_value()) return error;
  std::map<std::string, std::string> by_name;
  std::vector<std::string> env = extra;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  std::vector<std::string> names;
  for (const std::string& entry : env) {
    const std::string name = entry.substr(0, entry.find('='));
    if (!by_name.count(name)) names.push_back(name);
    by_name[name] = entry;
  }
  std::vector<char*> c_env;
  for (const std::string& name : names) c_env.push_back(by_name[name].data());
  c_env.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_argv;
  for (std::string& a : args) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::StrCat("pipe: ", ErrnoText(errno));
  const pid_t pid = fork();
  if (pid < 0) return absl::StrCat("fork/exec ", *path, ": ", ErrnoText(errno));
  if (pid == 0) {
    pthread_sigmask(SIG_SETMASK, &mask, nullptr);
    execve(path->c_str(), c_argv.data(), c_env.data());
    const int failure = errno;
    (void)!write(pipe_fds[1], &failure, sizeof(failure));
    _exit(127);
  }
  close(pipe_fds[1]);
  int failure = 0;
  ssize_t n = 0;
  do {
    n = read(pipe_fds[0], &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n == sizeof(failure)) return absl::StrCat("fork/exec ", *path, ": ", ErrnoText(failure));
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0) return std::nullopt;
    return absl::StrCat("exit status ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    std::string text = absl::StrCat("signal: ", SignalText(WTERMSIG(status)));
    if (WCOREDUMP(status)) absl::StrAppend(&text, " (core dumped)");
    return text;
  }
  return "wait: unexpected status";
}

// The key as etcdctl prints it once held: a Range of it.
std::optional<Exit> PrintKey(Client& client, Printer& printer, const std::string& key,
                             const Interrupts& interrupts, Io io) {
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  absl::StatusOr<etcdserverpb::RangeResponse> response = client.Range(request);
  if (!response.ok()) return WaitError(response.status(), interrupts);
  if (response->kvs().empty()) return Exit{kExitError, "lock lost on init"};
  std::optional<Exit> exit = printer.Get(*response);
  io.out.flush();
  return exit;
}

int Observe(Client& client, Printer& printer, const std::string& name, Interrupts& interrupts,
            Io io) {
  client::Coordinator coordinator(&client);
  std::optional<Exit> print_exit;
  const absl::Status status = coordinator.Observe(
      name,
      [&](const v3electionpb::LeaderResponse& leader) {
        if (print_exit.has_value()) return;
        etcdserverpb::RangeResponse range;
        *range.mutable_header() = leader.header();
        *range.add_kvs() = leader.kv();
        print_exit = printer.Get(range);
        io.out.flush();
        if (print_exit.has_value()) interrupts.canceller()->Cancel();
      },
      interrupts.canceller());
  if (print_exit.has_value()) return Done(print_exit, io);
  if (!status.ok()) return Done(ClientError(status), io);
  return kExitSuccess;
}

int Campaign(Client& client, Printer& printer, const std::string& name, const std::string& value,
             Interrupts& interrupts, Io io) {
  // etcdctl's elect session: clientv3's default TTL.
  constexpr int64_t kSessionTtl = 60;
  absl::StatusOr<std::unique_ptr<client::Session>> session =
      client::Session::Create(&client, kSessionTtl, [&interrupts] { interrupts.SetLost(); });
  if (!session.ok()) return Done(ClientError(session.status()), io);
  client::Coordinator coordinator(&client);
  absl::StatusOr<v3electionpb::LeaderKey> leader =
      coordinator.Campaign(name, (*session)->lease(), value, interrupts.canceller());
  if (!leader.ok()) return Done(WaitError(leader.status(), interrupts), io);
  if (auto exit = PrintKey(client, printer, leader->key(), interrupts, io)) return Done(exit, io);
  if (!interrupts.WaitInterruptedOrLost()) {
    return Done(Exit{kExitError, "elect: session expired"}, io);
  }
  absl::Status resigned = coordinator.Resign(*leader);
  if (!resigned.ok()) return Done(ClientError(resigned), io);
  return kExitSuccess;
}

}  // namespace

int RunElect(const GlobalFlags& global, bool listen, const std::vector<std::string>& args, Io io) {
  if (args.size() != 1 && args.size() != 2) {
    return Done(BadArgs("elect takes one election name argument and an optional proposal argument"),
                io);
  }
  Interrupts interrupts;
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  if (args.size() == 1) {
    if (!listen) return Done(BadArgs("no proposal argument but -l not set"), io);
    return Observe(*client, *printer, args[0], interrupts, io);
  }
  if (listen) return Done(BadArgs("proposal given but -l is set"), io);
  return Campaign(*client, *printer, args[0], args[1], interrupts, io);
}

int RunLock(const GlobalFlags& global, const std::string& ttl_flag,
            const std::vector<std::string>& args, Io io) {
  if (args.empty()) {
    return Done(BadArgs("lock takes a lock name argument and an optional command to execute"), io);
  }
  // Checked when the flags were parsed.
  int64_t ttl = GoParseInt(ttl_flag, 0).value_or(10);
  // clientv3 keeps its default TTL for a TTL that is not positive.
  if (ttl <= 0) ttl = 60;
  Interrupts interrupts;
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<std::unique_ptr<client::Session>> session =
      client::Session::Create(client.get(), ttl, [&interrupts] { interrupts.SetLost(); });
  if (!session.ok()) return Done(ClientError(session.status()), io);
  client::Coordinator coordinator(client.get());
  absl::StatusOr<client::LockHold> hold =
      coordinator.Lock(args[0], (*session)->lease(), interrupts.canceller());
  if (!hold.ok()) return Done(WaitError(hold.status(), interrupts), io);
  if (args.size() > 1) {
    io.out.flush();
    const std::vector<std::string> command(args.begin() + 1, args.end());
    std::optional<std::string> failed =
        RunCommandHolding(command,
                          {absl::StrCat("ETCD_LOCK_KEY=", hold->key),
                           absl::StrCat("ETCD_LOCK_REV=", hold->header_revision)},
                          interrupts.original_mask());
    absl::Status unlocked = coordinator.Unlock(hold->key);
    if (failed.has_value()) return Done(Exit{kExitError, *failed}, io);
    if (!unlocked.ok()) return Done(ClientError(unlocked), io);
    return kExitSuccess;
  }
  if (auto exit = PrintKey(*client, *printer, hold->key, interrupts, io)) return Done(exit, io);
  if (!interrupts.WaitInterruptedOrLost()) return Done(Exit{kExitError, "session expired"}, io);
  absl::Status unlocked = coordinator.Unlock(hold->key);
  if (!unlocked.ok()) return Done(ClientError(unlocked), io);
  return kExitSuccess;
}

}  // namespace arbiter::cli
