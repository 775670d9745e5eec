// arbiterd configuration: etcd's value formats, validation messages, and
// member/cluster IDs identical to etcd's for the same flags.
#include "server/config.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace arbiter::server {
namespace {

TEST(UrlTest, ParsesHostPort) {
  auto u = ParseUrl(" http://127.0.0.1:2380 ");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 2380);
  EXPECT_EQ(u->ToString(), "http://127.0.0.1:2380");
  auto v6 = ParseUrl("https://[::1]:2379");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->HostPort(), "[::1]:2379");
}

TEST(UrlTest, RejectsWithEtcdMessages) {
  struct Case {
    const char* in;
    const char* message;
  } cases[] = {
      {"ftp://a:1", "URL scheme must be http, https, unix, or unixs: ftp://a:1"},
      {"127.0.0.1:2380", "URL scheme must be http, https, unix, or unixs: 127.0.0.1:2380"},
      {"http://a", "URL address does not have the form \"host:port\": http://a"},
      {"http://a:b", "URL address does not have the form \"host:port\": http://a:b"},
      {"http://a:70000", "URL address does not have the form \"host:port\": http://a:70000"},
      {"http://::1:80", "URL address does not have the form \"host:port\": http://::1:80"},
      {"http://a:1/x", "URL must not contain a path: http://a:1/x"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    auto u = ParseUrl(c.in);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(u.status().message(), c.message);
  }
}

TEST(UrlTest, ListIsSortedAndNonEmpty) {
  auto urls = ParseUrls("http://b:2,http://a:1");
  ASSERT_TRUE(urls.ok());
  ASSERT_EQ(urls->size(), 2u);
  EXPECT_EQ((*urls)[0].ToString(), "http://a:1");
  EXPECT_FALSE(ParseUrls("").ok());
}

TEST(InitialClusterTest, ParsesNamesWithSeveralUrls) {
  auto c =
      ParseInitialCluster("a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,a=http://10.0.0.1:2380");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ(c->at("a").size(), 2u);
  EXPECT_EQ(FormatInitialCluster(*c),
            "a=http://10.0.0.1:2380,a=http://127.0.0.1:2380,b=http://127.0.0.1:2381");
  EXPECT_FALSE(ParseInitialCluster("a").ok());
  EXPECT_FALSE(ParseInitialCluster("a=localhost:1").ok());
}

TEST(IdsTest, MatchEtcdDefaults) {
  // A default single-member etcd: peer URL http://localhost:2380 and token
  // etcd-cluster give member 8e9e05c52164694d in cluster cdf818194e3a8c32.
  auto urls = ParseUrls("http://localhost:2380");
  ASSERT_TRUE(urls.ok());
  const uint64_t member = ComputeMemberId(*urls, "etcd-cluster");
  EXPECT_EQ(member, 0x8e9e05c52164694dULL);
  EXPECT_EQ(ComputeClusterId({member}), 0xcdf818194e3a8c32ULL);
  // The token changes the ID; the order of URLs does not.
  EXPECT_NE(ComputeMemberId(*urls, "other"), member);
  auto two = ParseUrls("http://b:2,http://a:1");
  auto two_rev = ParseUrls("http://a:1,http://b:2");
  EXPECT_EQ(ComputeMemberId(*two, "t"), ComputeMemberId(*two_rev, "t"));
  EXPECT_EQ(ComputeClusterId({1, 2, 3}), ComputeClusterId({3, 1, 2}));
}

std::map<std::string, std::string> ThreeMemberFlags() {
  return {{"name", "a"},
          {"initial-advertise-peer-urls", "http://127.0.0.1:2380"},
          {"listen-peer-urls", "http://127.0.0.1:2380"},
          {"listen-client-urls", "http://127.0.0.1:2379"},
          {"advertise-client-urls", "http://127.0.0.1:2379"},
          {"initial-cluster",
           "a=http://127.0.0.1:2380,b=http://127.0.0.1:12380,c=http://127.0.0.1:22380"},
          {"initial-cluster-state", "new"},
          {"heartbeat-interval", "50"},
          {"election-timeout", "500"},
          {"snapshot-count", "1000"},
          {"experimental-snapshot-catchup-entries", "20"}};
}

TEST(ConfigTest, FromFlags) {
  auto c = ConfigFromFlags(ThreeMemberFlags());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Validate().ok()) << c->Validate();
  EXPECT_EQ(c->name, "a");
  EXPECT_EQ(c->DataDir(), "a.etcd");
  EXPECT_EQ(c->initial_cluster.size(), 3u);
  EXPECT_EQ(c->heartbeat_interval_ms, 50u);
  EXPECT_EQ(c->election_timeout_ms, 500u);
  EXPECT_EQ(c->ElectionTicks(), 10);
  EXPECT_EQ(c->snapshot_count, 1000u);
  EXPECT_EQ(c->snapshot_catchup_entries, 20u);
  EXPECT_EQ(ConfigFromFlags({})->snapshot_catchup_entries, 5000u);
}

TEST(ConfigTest, DefaultsAreEtcds) {
  auto c = ConfigFromFlags({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Validate().ok()) << c->Validate();
  EXPECT_EQ(c->name, "default");
  EXPECT_EQ(c->DataDir(), "default.etcd");
  EXPECT_EQ(FormatInitialCluster(c->initial_cluster), "default=http://localhost:2380");
  EXPECT_EQ(c->listen_client_urls[0].ToString(), "http://localhost:2379");
  EXPECT_EQ(c->heartbeat_interval_ms, 100u);
  EXPECT_EQ(c->election_timeout_ms, 1000u);
}

TEST(ConfigTest, BadFlagsGiveEtcdMessages) {
  struct Case {
    const char* flag;
    const char* value;
    const char* message;
  } cases[] = {
      {"election-timeout", "400",
       "--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"},
      {"election-timeout", "60000",
       "--election-timeout[60000ms] is too long, and should be set less than 50000ms"},
      {"heartbeat-interval", "0", "--heartbeat-interval must be >0 (set to 0ms)"},
      {"initial-cluster", "b=http://127.0.0.1:2380",
       "couldn't find local name \"a\" in the initial cluster configuration"},
      {"initial-cluster", "a=http://127.0.0.1:9999",
       "--initial-cluster has a=http://127.0.0.1:9999 but missing from "
       "--initial-advertise-peer-urls=http://127.0.0.1:2380"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flag);
    auto flags = ThreeMemberFlags();
    if (std::string(c.flag) == "heartbeat-interval" || std::string(c.flag) == "election-timeout") {
      flags.erase("heartbeat-interval");
      flags.erase("election-timeout");
    }
    flags[c.flag] = c.value;
    auto cfg = ConfigFromFlags(flags);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    absl::Status s = cfg->Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(ConfigTest, UnparsableValuesAreRefused) {
  auto flags = ThreeMemberFlags();
  flags["initial-cluster-state"] = "old";
  auto c = ConfigFromFlags(flags);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "invalid value \"old\" for flag -initial-cluster-state: valid values are \"new\" or "
            "\"existing\"");
  flags = ThreeMemberFlags();
  flags["heartbeat-interval"] = "fast";
  EXPECT_FALSE(ConfigFromFlags(flags).ok());
  flags = ThreeMemberFlags();
  flags["listen-client-urls"] = "localhost:2379";
  EXPECT_FALSE(ConfigFromFlags(flags).ok());
  flags = ThreeMemberFlags();
  flags["no-such-flag"] = "1";
  EXPECT_FALSE(ConfigFromFlags(flags).ok());
}

TEST(ConfigTest, DuplicatePeerUrlsAreRefused) {
  auto flags = ThreeMemberFlags();
  flags["initial-cluster"] = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2380";
  auto c = ConfigFromFlags(flags);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(absl::StartsWith(c->Validate().message(), "member exists with identical ID"));
}

TEST(ConfigFileTest, FlatYaml) {
  std::map<std::string, std::string> flags;
  ASSERT_TRUE(ParseConfigFile("# etcd-style\nname: 'x'\n\ninitial-cluster-state: existing\n"
                              "heartbeat-interval: 20\n",
                              &flags)
                  .ok());
  EXPECT_EQ(flags["name"], "x");
  EXPECT_EQ(flags["initial-cluster-state"], "existing");
  EXPECT_EQ(flags["heartbeat-interval"], "20");
  absl::Status bad = ParseConfigFile("name x\n", &flags);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.message(), "line 1"));
}

}  // namespace
}  // namespace arbiter::server
