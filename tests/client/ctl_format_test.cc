// arbiterctl's formatting and parsing pieces without a server: Go's number,
// duration and string formats, Go's JSON of etcd's structs, tablewriter's
// tables, the txn input syntax, and the watch command's arguments and
// output. The expected strings are etcdctl 3.4's
// output for the same values (tables and JSON as captured from etcdctl).

#include <sstream>

#include "cli/go_format.h"
#include "cli/go_json.h"
#include "cli/table.h"
#include "cli/txn_input.h"
#include "cli/watch_args.h"
#include "gtest/gtest.h"

namespace arbiter::cli {
namespace {

TEST(GoFormatTest, DurationsPrintAsGoPrintsThem) {
  EXPECT_EQ(GoDurationString(absl::ZeroDuration()), "0s");
  EXPECT_EQ(GoDurationString(absl::Nanoseconds(999)), "999ns");
  EXPECT_EQ(GoDurationString(absl::Nanoseconds(1500)), "1.5\xC2\xB5s");
  EXPECT_EQ(GoDurationString(absl::Nanoseconds(10613615)), "10.613615ms");
  EXPECT_EQ(GoDurationString(absl::Milliseconds(11)), "11ms");
  EXPECT_EQ(GoDurationString(absl::Seconds(2)), "2s");
  EXPECT_EQ(GoDurationString(absl::Milliseconds(1500)), "1.5s");
  EXPECT_EQ(GoDurationString(absl::Seconds(90)), "1m30s");
  EXPECT_EQ(GoDurationString(absl::Hours(1)), "1h0m0s");
  EXPECT_EQ(GoDurationString(-absl::Seconds(61)), "-1m1s");
}

TEST(GoFormatTest, DurationsParseWithGosErrors) {
  EXPECT_EQ(GoParseDuration("5s").value(), absl::Seconds(5));
  EXPECT_EQ(GoParseDuration("1m30s").value(), absl::Seconds(90));
  EXPECT_EQ(GoParseDuration("1.5h").value(), absl::Minutes(90));
  EXPECT_EQ(GoParseDuration("250ms").value(), absl::Milliseconds(250));
  EXPECT_EQ(GoParseDuration("0").value(), absl::ZeroDuration());
  EXPECT_EQ(GoParseDuration("x").status().message(), "time: invalid duration \"x\"");
  EXPECT_EQ(GoParseDuration("1").status().message(), "time: missing unit in duration \"1\"");
  EXPECT_EQ(GoParseDuration("5x").status().message(),
            "time: unknown unit \"x\" in duration \"5x\"");
}

TEST(GoFormatTest, IntegersParseWithStrconvErrors) {
  EXPECT_EQ(GoParseInt("-12", 10).value(), -12);
  EXPECT_EQ(GoParseInt("ff", 16).value(), 255);
  EXPECT_EQ(GoParseInt("abc", 10).status().message(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax");
  EXPECT_EQ(GoParseInt("", 10).status().message(),
            "strconv.ParseInt: parsing \"\": invalid syntax");
  EXPECT_EQ(GoParseInt("0x10", 16).status().message(),
            "strconv.ParseInt: parsing \"0x10\": invalid syntax");
  EXPECT_EQ(GoParseInt("9223372036854775808", 10).status().message(),
            "strconv.ParseInt: parsing \"9223372036854775808\": value out of range");
  EXPECT_EQ(GoParseInt("-9223372036854775808", 10).value(), INT64_MIN);
  // Base 0, as pflag's int flags parse.
  EXPECT_EQ(GoParseInt("0x10", 0).value(), 16);
  EXPECT_EQ(GoParseInt("-0b11", 0).value(), -3);
  EXPECT_EQ(GoParseInt("017", 0).value(), 15);
  EXPECT_EQ(GoParseInt("0o17", 0).value(), 15);
  EXPECT_EQ(GoParseInt("0", 0).value(), 0);
  EXPECT_EQ(GoParseInt("0x", 0).status().message(),
            "strconv.ParseInt: parsing \"0x\": invalid syntax");
  EXPECT_EQ(GoParseInt("09", 0).status().message(),
            "strconv.ParseInt: parsing \"09\": invalid syntax");
  EXPECT_EQ(GoParseUint("ffffffffffffffff", 16).value(), UINT64_MAX);
  EXPECT_FALSE(GoParseUint("-1", 10).ok());
  EXPECT_TRUE(GoParseBool("T").value());
  EXPECT_EQ(GoParseBool("yes").status().message(),
            "strconv.ParseBool: parsing \"yes\": invalid syntax");
}

TEST(GoFormatTest, QuotingRoundTrips) {
  EXPECT_EQ(GoQuote("a\n\"b\\"), R"("a\n\"b\\")");
  EXPECT_EQ(GoQuote(std::string("\x01\xff", 2)), R"("\x01\xff")");
  EXPECT_EQ(GoQuote("välue"), "\"välue\"");
  size_t used = 0;
  EXPECT_EQ(GoUnquotePrefix(R"("a\x41\u00e9" rest)", &used).value(), "aA\xC3\xA9");
  EXPECT_EQ(used, 13u);
  EXPECT_EQ(GoUnquotePrefix("`raw\\n` x", &used).value(), "raw\\n");
  EXPECT_FALSE(GoUnquotePrefix(R"("bad\q")", &used).has_value());
  EXPECT_FALSE(GoUnquotePrefix(R"("open)", &used).has_value());
}

TEST(GoFormatTest, SizesAsHumanizePrintsThem) {
  EXPECT_EQ(HumanizeBytes(0), "0 B");
  EXPECT_EQ(HumanizeBytes(9), "9 B");
  EXPECT_EQ(HumanizeBytes(20480), "20 kB");
  EXPECT_EQ(HumanizeBytes(24576), "25 kB");
  EXPECT_EQ(HumanizeBytes(1500000), "1.5 MB");
  EXPECT_EQ(HumanizeBytes(999999), "1000 kB");
}

TEST(GoJsonTest, RangeResponseAsEtcdctlPrintsIt) {
  etcdserverpb::RangeResponse r;
  r.mutable_header()->set_cluster_id(17050020162257132153u);
  r.mutable_header()->set_member_id(6457571940148314399u);
  r.mutable_header()->set_revision(4);
  r.mutable_header()->set_raft_term(2);
  mvccpb::KeyValue* kv = r.add_kvs();
  kv->set_key("foo");
  kv->set_create_revision(2);
  kv->set_mod_revision(4);
  kv->set_version(3);
  kv->set_value("q");
  r.set_count(1);
  EXPECT_EQ(GoJson(r),
            R"({"header":{"cluster_id":17050020162257132153,"member_id":6457571940148314399,)"
            R"("revision":4,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,)"
            R"("mod_revision":4,"version":3,"value":"cQ=="}],"count":1})");
}

TEST(GoJsonTest, OneofsAndEmptyMessages) {
  etcdserverpb::TxnResponse t;
  t.set_succeeded(true);
  t.add_responses()->mutable_response_put()->mutable_header()->set_revision(8);
  t.add_responses()->mutable_response_delete_range()->mutable_header();
  t.add_responses();
  EXPECT_EQ(GoJson(t), R"({"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":)"
                       R"({"revision":8}}}},{"Response":{"ResponseDeleteRange":{"header":{}}}},)"
                       R"({"Response":null}]})");
}

TEST(GoJsonTest, StringsAreEscapedAsGoEscapesThem) {
  EXPECT_EQ(GoJsonString("<a&b>"), R"("\u003ca\u0026b\u003e")");
  EXPECT_EQ(GoJsonString("\"\\\n\t\x01"), R"("\"\\\n\t\u0001")");
  EXPECT_EQ(GoJsonString("\xe2\x80\xa8"), R"("\u2028")");
  EXPECT_EQ(GoJsonString("ok\xff"), R"("ok\ufffd")");
  EXPECT_EQ(GoJsonString("välue"), "\"välue\"");
}

TEST(TableTest, MemberListAsEtcdctlPrintsIt) {
  const std::string want =
      "+------------------+---------+------+------------------------+------------------------+"
      "------------+\n"
      "|        ID        | STATUS  | NAME |       PEER ADDRS       |      CLIENT ADDRS      |"
      " IS LEARNER |\n"
      "+------------------+---------+------+------------------------+------------------------+"
      "------------+\n"
      "| 117b9266988c4966 | started |   m2 | http://127.0.0.1:22380 | http://127.0.0.1:22379 |"
      "      false |\n"
      "| 599de7774412011f | started |   m3 | http://127.0.0.1:23380 | http://127.0.0.1:23379 |"
      "      false |\n"
      "+------------------+---------+------+------------------------+------------------------+"
      "------------+\n";
  EXPECT_EQ(RenderTable({"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"},
                        {{"117b9266988c4966", "started", "m2", "http://127.0.0.1:22380",
                          "http://127.0.0.1:22379", "false"},
                         {"599de7774412011f", "started", "m3", "http://127.0.0.1:23380",
                          "http://127.0.0.1:23379", "false"}}),
            want);
}

TEST(TableTest, LongCellsWrapAtThirtyColumns) {
  // Six four-letter words fill 29 of 30 columns; the last two go below,
  // and the shorter cell is filled with blank lines.
  const std::string want =
      "+----+--------------------------------+\n"
      "| EP |             ERROR              |\n"
      "+----+--------------------------------+\n"
      "|  a |  aaaa bbbb cccc dddd eeee ffff |\n"
      "|    |                      gggg hhhh |\n"
      "+----+--------------------------------+\n";
  EXPECT_EQ(RenderTable({"ep", "error"}, {{"a", "aaaa bbbb cccc dddd eeee ffff gggg hhhh"}}), want);
}

TEST(TxnInputTest, ArgifyKeepsEtcdctlsQuoting) {
  std::vector<std::string> words;
  ASSERT_FALSE(Argify(R"(put "a b\x41" c)", &words).has_value());
  EXPECT_EQ(words, (std::vector<std::string>{"put", "a bA", "c"}));
  // etcdctl cuts a single-quoted word by the number of words (3 here).
  ASSERT_FALSE(Argify("put 'abc' v", &words).has_value());
  EXPECT_EQ(words, (std::vector<std::string>{"put", "a", "v"}));
  std::optional<Exit> panic = Argify("'x'", &words);
  ASSERT_TRUE(panic.has_value());
  EXPECT_TRUE(panic->panic);
}

TEST(TxnInputTest, ComparesParseAndFailAsInEtcdctl) {
  etcdserverpb::Compare c;
  ASSERT_FALSE(ParseCompare(R"(mod("k") > "5")", &c).has_value());
  EXPECT_EQ(c.key(), "k");
  EXPECT_EQ(c.target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(c.result(), etcdserverpb::Compare::GREATER);
  EXPECT_EQ(c.mod_revision(), 5);

  std::optional<Exit> bad = ParseCompare(R"(value("k") = v)", &c);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->code, kExitInvalidInput);
  EXPECT_EQ(bad->message, R"(malformed comparison: value("k") = v; got value("k") = "")");
  bad = ParseCompare(R"(ver("k") = "x")", &c);
  EXPECT_EQ(bad->message, R"(invalid txn compare request: ver("k") = "x")");
  bad = ParseCompare(R"(zz("k") = "1")", &c);
  EXPECT_EQ(bad->message, R"(malformed comparison: zz("k") = "1" (unknown target zz))");
}

TEST(TxnInputTest, ReadsTheThreeBlocksWithPrompts) {
  std::istringstream in("value(\"a\") = \"1\"\n\nget a\n\nput b 2\ndel c\n\n");
  std::ostringstream out;
  etcdserverpb::TxnRequest txn;
  ASSERT_FALSE(ReadTxn(in, /*interactive=*/true, out, &txn).has_value());
  EXPECT_EQ(out.str(),
            "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n");
  EXPECT_EQ(txn.compare_size(), 1);
  ASSERT_EQ(txn.success_size(), 1);
  EXPECT_EQ(txn.success(0).request_range().key(), "a");
  ASSERT_EQ(txn.failure_size(), 2);
  EXPECT_EQ(txn.failure(0).request_put().value(), "2");
  EXPECT_EQ(txn.failure(1).request_delete_range().key(), "c");

  std::istringstream cut("value(\"a\") = \"1\"\n");
  std::optional<Exit> eof = ReadTxn(cut, false, out, &txn);
  ASSERT_TRUE(eof.has_value());
  EXPECT_EQ(eof->message, "EOF");
}

// The watch command line as etcdctl splits it (watch_command.go).
TEST(WatchArgsTest, CommandLineSplitsKeyRangeAndExecCommand) {
  const auto parse = [](std::vector<std::string> os_args, std::vector<std::string> args,
                        const std::string& env_key = "") {
    WatchFlags flags;
    flags.args = std::move(args);
    return ParseWatchCommandLine(os_args, flags, env_key, "");
  };
  absl::StatusOr<WatchSpec> plain = parse({"etcdctl", "watch", "a", "b"}, {"a", "b"});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->args, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(plain->exec.empty());
  absl::StatusOr<WatchSpec> exec =
      parse({"etcdctl", "watch", "a", "--rev", "1", "--", "echo", "a"}, {"a", "echo", "a"});
  ASSERT_TRUE(exec.ok());
  EXPECT_EQ(exec->args, std::vector<std::string>{"a"});
  EXPECT_EQ(exec->exec, (std::vector<std::string>{"echo", "a"}));
  EXPECT_EQ(parse({"etcdctl", "watch"}, {}).status().message(), kBadArgsNum);
  EXPECT_EQ(parse({"etcdctl", "watch", "a", "--"}, {"a"}).status().message(), kBadArgsSeparator);
  EXPECT_EQ(parse({"etcdctl", "watch", "a"}, {"a"}, "k").status().message(), kBadArgsConflictEnv);
  EXPECT_EQ(parse({"etcdctl", "watch", "a", "--", "echo"}, {"a", "echo"}, "k").status().message(),
            kBadArgsConflictEnv);
  absl::StatusOr<WatchSpec> env = parse({"etcdctl", "watch", "--", "echo"}, {"echo"}, "k");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->args, std::vector<std::string>{"k"});
}

TEST(WatchArgsTest, InteractiveLinesHaveTheirOwnFlags) {
  absl::StatusOr<WatchSpec> line =
      ParseWatchLine({"a", "--rev=3", "--prefix", "--prev-kv=false", "--", "echo", "x"}, "", "");
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->args, std::vector<std::string>{"a"});
  EXPECT_EQ(line->rev, 3);
  EXPECT_TRUE(line->prefix);
  EXPECT_FALSE(line->prev_kv);
  EXPECT_EQ(line->exec, (std::vector<std::string>{"echo", "x"}));
  EXPECT_EQ(ParseWatchLine({"--foo", "a"}, "", "").status().message(), "unknown flag: --foo");
  EXPECT_EQ(ParseWatchLine({"-x"}, "", "").status().message(), "unknown shorthand flag: 'x' in -x");
  EXPECT_EQ(ParseWatchLine({"a", "--rev"}, "", "").status().message(),
            "flag needs an argument: --rev");
  EXPECT_EQ(ParseWatchLine({"--rev", "x", "a"}, "", "").status().message(),
            "invalid argument \"x\" for \"--rev\" flag: strconv.ParseInt: parsing \"x\": "
            "invalid syntax");
  EXPECT_EQ(ParseWatchLine({"--prefix"}, "", "").status().message(), kBadArgsNum);
}

TEST(WatchArgsTest, OptionsFollowGetWatchChan) {
  WatchSpec spec;
  EXPECT_EQ(WatchOptionsFor(spec).status().message(), kBadArgsNum);
  spec.args = {"a", "b"};
  spec.prefix = true;
  EXPECT_EQ(WatchOptionsFor(spec).status().message(),
            "`range_end` and `--prefix` are mutually exclusive");
  spec.args = {"ab"};
  EXPECT_EQ(WatchOptionsFor(spec)->range_end, "ac");
  spec.args = {""};
  EXPECT_EQ(WatchOptionsFor(spec)->key, std::string(1, '\0'));
  spec.args = {"a", "b", "c"};  // A third argument drops the range.
  spec.prefix = false;
  EXPECT_EQ(WatchOptionsFor(spec)->range_end, "");
}

TEST(WatchArgsTest, ResponsesPrintAsEtcdctlPrintsThem) {
  etcdserverpb::WatchResponse r;
  r.mutable_header()->set_revision(4);
  mvccpb::Event* e = r.add_events();
  e->set_type(mvccpb::Event::DELETE);
  e->mutable_kv()->set_key("a");
  e->mutable_kv()->set_mod_revision(4);
  e->mutable_prev_kv()->set_key("a");
  e->mutable_prev_kv()->set_value("1");
  EXPECT_EQ(FormatWatchResponse(r, false, false).out, "DELETE\na\n1\na\n\n");
  EXPECT_EQ(FormatWatchResponse(r, true, false).out,
            "{\"Header\":{\"revision\":4},\"Events\":[{\"type\":1,\"kv\":{\"key\":\"YQ==\","
            "\"mod_revision\":4},\"prev_kv\":{\"key\":\"YQ==\",\"value\":\"MQ==\"}}],"
            "\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n");
  etcdserverpb::WatchResponse progress;
  progress.mutable_header()->set_revision(9);
  EXPECT_EQ(FormatWatchResponse(progress, false, false).out, "progress notify: 9\n");
  etcdserverpb::WatchResponse compacted;
  compacted.set_canceled(true);
  compacted.set_compact_revision(3);
  const WatchOutput c = FormatWatchResponse(compacted, false, false);
  EXPECT_TRUE(c.ended);
  EXPECT_EQ(c.err, "watch was canceled (etcdserver: mvcc: required revision has been compacted)\n");
  etcdserverpb::WatchResponse refused;
  refused.set_created(true);
  refused.set_canceled(true);
  refused.set_cancel_reason("mvcc: watcher range is empty");
  EXPECT_EQ(FormatWatchResponse(refused, true, false).out,
            "{\"Header\":{},\"Events\":null,\"CompactRevision\":0,\"Canceled\":true,"
            "\"Created\":false}\n");
}

}  // namespace
}  // namespace arbiter::cli
