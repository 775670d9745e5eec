#include "cli/watch_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "cli/go_format.h"
#include "cli/printer.h"
#include "cli/txn_input.h"
#include "client/watch.h"

extern char** environ;

namespace arbiter::cli {
namespace {

using client::Watcher;
using client::WatchStream;

// Go's error strings are strerror's with a lower-case first letter.
std::string GoErrno(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = absl::ascii_tolower(text[0]);
  return text;
}

// exec.LookPath: a name without a slash is searched in $PATH.
std::optional<std::string> LookPath(const std::string& name, std::string* error) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path == nullptr ? "" : path, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0) {
      return candidate;
    }
  }
  *error = absl::StrCat("exec: ", GoQuote(name), ": executable file not found in $PATH");
  return std::nullopt;
}

// Runs the command to its end with the extra environment; its output goes
// to ours. The error as Go's exec.Cmd.Run words it, or nullopt.
std::optional<std::string> RunExec(const std::vector<std::string>& argv,
                                   const std::vector<std::string>& extra_env) {
  std::string error;
  std::optional<std::string> path = LookPath(argv[0], &error);
  if (!path.has_value()) return error;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> c_argv;
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const std::string& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);
  // The child reports a failed execve through a pipe closed on exec.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return absl::StrCat("pipe: ", GoErrno(errno));
  const pid_t pid = fork();
  if (pid < 0) return absl::StrCat("fork/exec ", *path, ": ", GoErrno(errno));
  if (pid == 0) {
    close(report[0]);
    execve(path->c_str(), c_argv.data(), c_env.data());
    const int e = errno;
    (void)!write(report[1], &e, sizeof(e));
    _exit(127);
  }
  close(report[1]);
  int exec_errno = 0;
  const bool failed = read(report[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno);
  close(report[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (failed) return absl::StrCat("fork/exec ", *path, ": ", GoErrno(exec_errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    return absl::StrCat("exit status ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    std::string name = strsignal(WTERMSIG(status));
    if (!name.empty()) name[0] = absl::ascii_tolower(name[0]);
    return absl::StrCat("signal: ", name);
  }
  return std::nullopt;
}

// Go's %q of a []string: ["a" "b"].
std::string QuoteList(const std::vector<std::string>& words) {
  std::string out = "[";
  for (size_t i = 0; i < words.size(); ++i) absl::StrAppend(&out, i ? " " : "", GoQuote(words[i]));
  return out + "]";
}

// The output of every watcher, one response at a time.
class Output {
 public:
  Output(Io io, Format format, bool hex) : io_(io), format_(format), hex_(hex) {}

  // Prints a watcher's responses until it ends. Returns an exit when the
  // command must end (the table format; an exec command that failed).
  // `first` is a response already taken from the watcher, if any.
  std::optional<Exit> Serve(Watcher& watcher, const std::vector<std::string>& exec,
                            std::optional<absl::StatusOr<etcdserverpb::WatchResponse>> first) {
    for (;;) {
      absl::StatusOr<etcdserverpb::WatchResponse> r =
          first.has_value() ? *std::move(first) : watcher.Next(absl::InfiniteFuture());
      first.reset();
      // The creation is not shown (a refused creation is: it is canceled).
      if (r.ok() && r->created() && !r->canceled()) continue;
      if (!r.ok()) {
        if (r.status().code() == absl::StatusCode::kCancelled) return std::nullopt;
        WatchOutput o = FormatWatchError(ClientErrorText(r.status()), format_ == Format::kJson);
        return Print(o);
      }
      const WatchOutput o = FormatWatchResponse(*r, format_ == Format::kJson, hex_);
      if (std::optional<Exit> exit = Print(o)) return exit;
      if (!exec.empty()) {
        for (const mvccpb::Event& e : r->events()) {
          if (std::optional<std::string> error = RunExec(exec, WatchExecEnv(*r, e))) {
            absl::MutexLock lock(&mu_);
            io_.err << "command " << QuoteList(exec) << " error (" << *error << ")\n";
            io_.err.flush();
            return Exit{kExitError, ""};
          }
        }
      }
      if (o.ended) return std::nullopt;
    }
  }

  void Err(const std::string& text) {
    absl::MutexLock lock(&mu_);
    io_.err << text;
    io_.err.flush();
  }

 private:
  std::optional<Exit> Print(const WatchOutput& o) {
    absl::MutexLock lock(&mu_);
    io_.err << o.err;
    io_.err.flush();
    if (format_ == Format::kTable) {
      // etcdctl prints the progress line, then fails to print the response.
      if (absl::StartsWith(o.out, "progress notify: "))
        io_.out << o.out.substr(0, o.out.find('\n') + 1);
      io_.out.flush();
      return Exit{kExitBadFeature, "table not supported as output format"};
    }
    io_.out << o.out;
    io_.out.flush();
    return std::nullopt;
  }

  absl::Mutex mu_;
  Io io_;
  const Format format_;
  const bool hex_;
};

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

absl::StatusOr<std::unique_ptr<WatchStream>> OpenStream(const GlobalFlags& global) {
  client::ClientOptions options;
  options.endpoints = global.endpoints;
  options.dial_timeout = GoParseDuration(global.dial_timeout).value_or(absl::Seconds(2));
  options.call_timeout = GoParseDuration(global.command_timeout).value_or(absl::Seconds(5));
  return WatchStream::Create(options);
}

// Ends the process from a watcher's thread, as etcdctl's os.Exit does.
[[noreturn]] void ExitNow(const Exit& exit, Io io) {
  io.out.flush();
  Finish(exit, io.err);
  io.err.flush();
  _exit(exit.code);
}

int Interactive(const GlobalFlags& global, Format format, const std::string& env_key,
                const std::string& env_range, Io io) {
  absl::StatusOr<std::unique_ptr<WatchStream>> stream = OpenStream(global);
  if (!stream.ok())
    return Finish(Exit{kExitBadConnection, std::string(stream.status().message())}, io.err);
  Output output(io, format, FlagBool(global.hex));
  std::vector<std::unique_ptr<Watcher>> watchers;
  std::vector<std::thread> threads;
  const auto finish = [&](const Exit& exit) {
    (*stream)->Close();
    for (std::thread& t : threads) t.join();
    io.out.flush();
    return Finish(exit, io.err);
  };
  for (;;) {
    std::string line;
    // A last line without its newline is not read, as in etcdctl.
    if (!std::getline(io.in, line) || io.in.eof()) {
      return finish(Exit{kExitInvalidInput, "Error reading watch request line: EOF"});
    }
    std::vector<std::string> words;
    if (std::optional<Exit> exit = Argify(line, &words)) return finish(*exit);
    if (words.empty()) {
      output.Err(absl::StrCat("Invalid command: ", line, " (watch and progress supported)\n"));
      continue;
    }
    if (words[0] == "watch") {
      if (words.size() < 2 && env_key.empty()) {
        output.Err(
            absl::StrCat("Invalid command ", line, " (command type or key is not provided)\n"));
        continue;
      }
      absl::StatusOr<WatchSpec> spec = ParseWatchLine(
          std::vector<std::string>(words.begin() + 1, words.end()), env_key, env_range);
      if (!spec.ok()) return finish(Exit{kExitBadArgs, std::string(spec.status().message())});
      absl::StatusOr<client::WatchOptions> options = WatchOptionsFor(*spec);
      if (!options.ok()) {
        output.Err(absl::StrCat("Invalid command ", line, " (", options.status().message(), ")\n"));
        continue;
      }
      // As clientv3's Watch, the line is done once the watcher is created,
      // so a "progress" on the next line reaches it.
      options->created_notify = true;
      absl::StatusOr<std::unique_ptr<Watcher>> watcher = (*stream)->Watch(*options);
      if (!watcher.ok()) return finish(Exit{kExitError, ClientErrorText(watcher.status())});
      Watcher* w = watcher->get();
      watchers.push_back(*std::move(watcher));
      absl::StatusOr<etcdserverpb::WatchResponse> created = w->Next(absl::InfiniteFuture());
      threads.emplace_back([&output, w, exec = spec->exec, io, created = std::move(created)] {
        if (std::optional<Exit> exit = output.Serve(*w, exec, created)) ExitNow(*exit, io);
      });
    } else if (words[0] == "progress") {
      if (absl::Status s = (*stream)->RequestProgress(); !s.ok()) {
        return finish(Exit{kExitError, ClientErrorText(s)});
      }
    } else {
      output.Err(absl::StrCat("Invalid command ", line, " (only support watch)\n"));
    }
  }
}

}  // namespace

int RunWatch(const GlobalFlags& global, const WatchFlags& flags,
             const std::vector<std::string>& os_args, Io io) {
  const std::string env_key = Env("ETCDCTL_WATCH_KEY");
  const std::string env_range = Env("ETCDCTL_WATCH_RANGE_END");
  if (env_key.empty() && !env_range.empty()) {
    return Finish(Exit{kExitBadArgs, absl::StrCat("ETCDCTL_WATCH_KEY is empty but got "
                                                  "ETCDCTL_WATCH_RANGE_END=",
                                                  GoQuote(env_range))},
                  io.err);
  }
  const bool interactive = FlagBool(flags.interactive);
  absl::StatusOr<WatchSpec> spec;
  if (!interactive) {
    spec = ParseWatchCommandLine(os_args, flags, env_key, env_range);
    if (!spec.ok()) return Finish(Exit{kExitBadArgs, std::string(spec.status().message())}, io.err);
  }
  std::optional<Format> format = ParseFormat(global.write_out);
  if (!format.has_value())
    return Finish(Exit{kExitBadFeature, "unsupported output format"}, io.err);
  if (interactive) return Interactive(global, *format, env_key, env_range, io);

  absl::StatusOr<std::unique_ptr<WatchStream>> stream = OpenStream(global);
  if (!stream.ok()) {
    return Finish(Exit{kExitBadConnection, std::string(stream.status().message())}, io.err);
  }
  absl::StatusOr<client::WatchOptions> options = WatchOptionsFor(*spec);
  if (!options.ok())
    return Finish(Exit{kExitBadArgs, std::string(options.status().message())}, io.err);
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = (*stream)->Watch(*options);
  if (!watcher.ok()) return Finish(Exit{kExitError, ClientErrorText(watcher.status())}, io.err);
  Output output(io, *format, FlagBool(global.hex));
  if (std::optional<Exit> exit = output.Serve(**watcher, spec->exec, std::nullopt)) {
    return Finish(*exit, io.err);
  }
  return Finish(Exit{kExitInterrupted, "watch is canceled by the server"}, io.err);
}

}  // namespace arbiter::cli
