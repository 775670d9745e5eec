// arbiterd: one member of an Arbiter cluster.
//
// Flags are etcd's where they mean the same (see server/config.h); a
// --config-file holds the same keys in etcd's YAML form, and flags given on
// the command line override it. Exit codes: 0 after a clean stop (SIGTERM
// or SIGINT: a leader hands leadership over first), 1 when the member
// fail-stops or cannot start, 2 for bad flags or an inconsistent cluster
// definition.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "server/etcd_server.h"

namespace {

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "arbiterd: %s\n", msg.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // abseil's mutex deadlock detection (on by default in Debian's build)
  // costs on every lock; the locking discipline is checked by the tests'
  // sanitizer builds instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"arbiterd: a member of an Arbiter cluster (etcd v3 API)"};
  std::map<std::string, std::string> given;
  for (const std::string& name : arbiter::server::ServerFlagNames()) {
    app.add_option_function<std::string>(
        "--" + name, [&given, name](const std::string& v) { given[name] = v; },
        "see etcd's --" + name);
  }
  std::string config_file;
  app.add_option("--config-file", config_file, "YAML file with the same keys as the flags");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::map<std::string, std::string> flags;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return Fail(2, "cannot read --config-file " + config_file);
    std::stringstream ss;
    ss << in.rdbuf();
    if (absl::Status s = arbiter::server::ParseConfigFile(ss.str(), &flags); !s.ok()) {
      return Fail(2, std::string(s.message()));
    }
  }
  for (const auto& [k, v] : given) flags[k] = v;
  auto config = arbiter::server::ConfigFromFlags(flags);
  if (!config.ok()) return Fail(2, std::string(config.status().message()));
  if (absl::Status s = config->Validate(); !s.ok()) return Fail(2, std::string(s.message()));

  // Signals are taken by sigwait below; every thread started from here on
  // inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  arbiter::server::EtcdServerOptions options;
  options.config = *config;
  options.logger = arbiter::raft::StderrLogger(arbiter::raft::LogLevel::kInfo);
  options.on_fatal = [](const absl::Status& s) {
    // Fail-stop: what was acknowledged is durable; the rest is unknown, so
    // the process must not go on.
    std::fprintf(stderr, "arbiterd: fatal: %s\n", std::string(s.message()).c_str());
    std::_Exit(1);
  };
  auto server = arbiter::server::EtcdServer::Start(std::move(options));
  if (!server.ok()) {
    const int code = absl::IsInvalidArgument(server.status()) ? 2 : 1;
    return Fail(code, std::string(server.status().message()));
  }
  const auto& id = (*server)->server()->identity();
  std::fprintf(stderr, "arbiterd: member %s (%llx) of cluster %llx serving clients on %s\n",
               config->name.c_str(), static_cast<unsigned long long>(id.member_id),
               static_cast<unsigned long long>(id.cluster_id),
               config->listen_client_urls.front().ToString().c_str());

  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(stderr, "arbiterd: received %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Stop();
  server->reset();
  return 0;
}
