// Checks, through the protobuf descriptors compiled into the generated code,
// that our rewrite of the etcd v3 protos keeps every fact that is on the wire:
// package, service and method names (they form the gRPC paths), streaming
// kinds, message and field names (the JSON gateway's keys), field numbers,
// types, labels, oneof membership and enum values. The tables below are the
// specification (etcd 3.4); every message and enum of the etcd packages must
// appear in them, and nothing else may, so a field added, dropped, renamed or
// renumbered in a .proto makes a test fail.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proto/internal.pb.h"
#include "proto/kv.pb.h"
#include "proto/rpc.pb.h"
#include "proto/v3election.pb.h"
#include "proto/v3lock.pb.h"

namespace arbiter {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// One line per message: "<full name>: <field>; <field>; ...". A field is
// "<number> <name> <type>", where type is a scalar type name or the full name
// of a message or enum, optionally preceded by "rep" and followed by
// "@<oneof>". An empty message has nothing after the colon.
constexpr const char* kMessages[] = {
    "mvccpb.KeyValue: 1 key bytes; 2 create_revision int64; 3 mod_revision int64; "
    "4 version int64; 5 value bytes; 6 lease int64",
    "mvccpb.Event: 1 type mvccpb.Event.EventType; 2 kv mvccpb.KeyValue; "
    "3 prev_kv mvccpb.KeyValue",
    "authpb.UserAddOptions: 1 no_password bool",
    "authpb.User: 1 name bytes; 2 password bytes; 3 roles rep string; "
    "4 options authpb.UserAddOptions",
    "authpb.Permission: 1 permType authpb.Permission.Type; 2 key bytes; 3 range_end bytes",
    "authpb.Role: 1 name bytes; 2 keyPermission rep authpb.Permission",
    "etcdserverpb.ResponseHeader: 1 cluster_id uint64; 2 member_id uint64; 3 revision int64; "
    "4 raft_term uint64",
    "etcdserverpb.RangeRequest: 1 key bytes; 2 range_end bytes; 3 limit int64; "
    "4 revision int64; 5 sort_order etcdserverpb.RangeRequest.SortOrder; "
    "6 sort_target etcdserverpb.RangeRequest.SortTarget; 7 serializable bool; "
    "8 keys_only bool; 9 count_only bool; 10 min_mod_revision int64; "
    "11 max_mod_revision int64; 12 min_create_revision int64; 13 max_create_revision int64",
    "etcdserverpb.RangeResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 kvs rep mvccpb.KeyValue; 3 more bool; 4 count int64",
    "etcdserverpb.PutRequest: 1 key bytes; 2 value bytes; 3 lease int64; 4 prev_kv bool; "
    "5 ignore_value bool; 6 ignore_lease bool",
    "etcdserverpb.PutResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 prev_kv mvccpb.KeyValue",
    "etcdserverpb.DeleteRangeRequest: 1 key bytes; 2 range_end bytes; 3 prev_kv bool",
    "etcdserverpb.DeleteRangeResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 deleted int64; 3 prev_kvs rep mvccpb.KeyValue",
    "etcdserverpb.RequestOp: 1 request_range etcdserverpb.RangeRequest @request; "
    "2 request_put etcdserverpb.PutRequest @request; "
    "3 request_delete_range etcdserverpb.DeleteRangeRequest @request; "
    "4 request_txn etcdserverpb.TxnRequest @request",
    "etcdserverpb.ResponseOp: 1 response_range etcdserverpb.RangeResponse @response; "
    "2 response_put etcdserverpb.PutResponse @response; "
    "3 response_delete_range etcdserverpb.DeleteRangeResponse @response; "
    "4 response_txn etcdserverpb.TxnResponse @response",
    "etcdserverpb.Compare: 1 result etcdserverpb.Compare.CompareResult; "
    "2 target etcdserverpb.Compare.CompareTarget; 3 key bytes; "
    "4 version int64 @target_union; 5 create_revision int64 @target_union; "
    "6 mod_revision int64 @target_union; 7 value bytes @target_union; "
    "8 lease int64 @target_union; 64 range_end bytes",
    "etcdserverpb.TxnRequest: 1 compare rep etcdserverpb.Compare; "
    "2 success rep etcdserverpb.RequestOp; 3 failure rep etcdserverpb.RequestOp",
    "etcdserverpb.TxnResponse: 1 header etcdserverpb.ResponseHeader; 2 succeeded bool; "
    "3 responses rep etcdserverpb.ResponseOp",
    "etcdserverpb.CompactionRequest: 1 revision int64; 2 physical bool",
    "etcdserverpb.CompactionResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.HashRequest:",
    "etcdserverpb.HashKVRequest: 1 revision int64",
    "etcdserverpb.HashKVResponse: 1 header etcdserverpb.ResponseHeader; 2 hash uint32; "
    "3 compact_revision int64",
    "etcdserverpb.HashResponse: 1 header etcdserverpb.ResponseHeader; 2 hash uint32",
    "etcdserverpb.SnapshotRequest:",
    "etcdserverpb.SnapshotResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 remaining_bytes uint64; 3 blob bytes",
    "etcdserverpb.WatchRequest: "
    "1 create_request etcdserverpb.WatchCreateRequest @request_union; "
    "2 cancel_request etcdserverpb.WatchCancelRequest @request_union; "
    "3 progress_request etcdserverpb.WatchProgressRequest @request_union",
    "etcdserverpb.WatchCreateRequest: 1 key bytes; 2 range_end bytes; 3 start_revision int64; "
    "4 progress_notify bool; 5 filters rep etcdserverpb.WatchCreateRequest.FilterType; "
    "6 prev_kv bool; 7 watch_id int64; 8 fragment bool",
    "etcdserverpb.WatchCancelRequest: 1 watch_id int64",
    "etcdserverpb.WatchProgressRequest:",
    "etcdserverpb.WatchResponse: 1 header etcdserverpb.ResponseHeader; 2 watch_id int64; "
    "3 created bool; 4 canceled bool; 5 compact_revision int64; 6 cancel_reason string; "
    "7 fragment bool; 11 events rep mvccpb.Event",
    "etcdserverpb.LeaseGrantRequest: 1 TTL int64; 2 ID int64",
    "etcdserverpb.LeaseGrantResponse: 1 header etcdserverpb.ResponseHeader; 2 ID int64; "
    "3 TTL int64; 4 error string",
    "etcdserverpb.LeaseRevokeRequest: 1 ID int64",
    "etcdserverpb.LeaseRevokeResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.LeaseCheckpoint: 1 ID int64; 2 remaining_TTL int64",
    "etcdserverpb.LeaseCheckpointRequest: 1 checkpoints rep etcdserverpb.LeaseCheckpoint",
    "etcdserverpb.LeaseCheckpointResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.LeaseKeepAliveRequest: 1 ID int64",
    "etcdserverpb.LeaseKeepAliveResponse: 1 header etcdserverpb.ResponseHeader; 2 ID int64; "
    "3 TTL int64",
    "etcdserverpb.LeaseTimeToLiveRequest: 1 ID int64; 2 keys bool",
    "etcdserverpb.LeaseTimeToLiveResponse: 1 header etcdserverpb.ResponseHeader; 2 ID int64; "
    "3 TTL int64; 4 grantedTTL int64; 5 keys rep bytes",
    "etcdserverpb.LeaseLeasesRequest:",
    "etcdserverpb.LeaseStatus: 1 ID int64",
    "etcdserverpb.LeaseLeasesResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 leases rep etcdserverpb.LeaseStatus",
    "etcdserverpb.Member: 1 ID uint64; 2 name string; 3 peerURLs rep string; "
    "4 clientURLs rep string; 5 isLearner bool",
    "etcdserverpb.MemberAddRequest: 1 peerURLs rep string; 2 isLearner bool",
    "etcdserverpb.MemberAddResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 member etcdserverpb.Member; 3 members rep etcdserverpb.Member",
    "etcdserverpb.MemberRemoveRequest: 1 ID uint64",
    "etcdserverpb.MemberRemoveResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 members rep etcdserverpb.Member",
    "etcdserverpb.MemberUpdateRequest: 1 ID uint64; 2 peerURLs rep string",
    "etcdserverpb.MemberUpdateResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 members rep etcdserverpb.Member",
    "etcdserverpb.MemberListRequest:",
    "etcdserverpb.MemberListResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 members rep etcdserverpb.Member",
    "etcdserverpb.MemberPromoteRequest: 1 ID uint64",
    "etcdserverpb.MemberPromoteResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 members rep etcdserverpb.Member",
    "etcdserverpb.DefragmentRequest:",
    "etcdserverpb.DefragmentResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.MoveLeaderRequest: 1 targetID uint64",
    "etcdserverpb.MoveLeaderResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AlarmRequest: 1 action etcdserverpb.AlarmRequest.AlarmAction; "
    "2 memberID uint64; 3 alarm etcdserverpb.AlarmType",
    "etcdserverpb.AlarmMember: 1 memberID uint64; 2 alarm etcdserverpb.AlarmType",
    "etcdserverpb.AlarmResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 alarms rep etcdserverpb.AlarmMember",
    "etcdserverpb.StatusRequest:",
    "etcdserverpb.StatusResponse: 1 header etcdserverpb.ResponseHeader; 2 version string; "
    "3 dbSize int64; 4 leader uint64; 5 raftIndex uint64; 6 raftTerm uint64; "
    "7 raftAppliedIndex uint64; 8 errors rep string; 9 dbSizeInUse int64; 10 isLearner bool",
    "etcdserverpb.AuthEnableRequest:",
    "etcdserverpb.AuthDisableRequest:",
    "etcdserverpb.AuthenticateRequest: 1 name string; 2 password string",
    "etcdserverpb.AuthUserAddRequest: 1 name string; 2 password string; "
    "3 options authpb.UserAddOptions",
    "etcdserverpb.AuthUserGetRequest: 1 name string",
    "etcdserverpb.AuthUserDeleteRequest: 1 name string",
    "etcdserverpb.AuthUserChangePasswordRequest: 1 name string; 2 password string",
    "etcdserverpb.AuthUserGrantRoleRequest: 1 user string; 2 role string",
    "etcdserverpb.AuthUserRevokeRoleRequest: 1 name string; 2 role string",
    "etcdserverpb.AuthRoleAddRequest: 1 name string",
    "etcdserverpb.AuthRoleGetRequest: 1 role string",
    "etcdserverpb.AuthUserListRequest:",
    "etcdserverpb.AuthRoleListRequest:",
    "etcdserverpb.AuthRoleDeleteRequest: 1 role string",
    "etcdserverpb.AuthRoleGrantPermissionRequest: 1 name string; 2 perm authpb.Permission",
    "etcdserverpb.AuthRoleRevokePermissionRequest: 1 role string; 2 key bytes; "
    "3 range_end bytes",
    "etcdserverpb.AuthEnableResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthDisableResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthenticateResponse: 1 header etcdserverpb.ResponseHeader; 2 token string",
    "etcdserverpb.AuthUserAddResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserGetResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 roles rep string",
    "etcdserverpb.AuthUserDeleteResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserChangePasswordResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserGrantRoleResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserRevokeRoleResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleAddResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleGetResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 perm rep authpb.Permission",
    "etcdserverpb.AuthRoleListResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 roles rep string",
    "etcdserverpb.AuthUserListResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 users rep string",
    "etcdserverpb.AuthRoleDeleteResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleGrantPermissionResponse: 1 header etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleRevokePermissionResponse: 1 header etcdserverpb.ResponseHeader",
    "v3electionpb.CampaignRequest: 1 name bytes; 2 lease int64; 3 value bytes",
    "v3electionpb.CampaignResponse: 1 header etcdserverpb.ResponseHeader; "
    "2 leader v3electionpb.LeaderKey",
    "v3electionpb.LeaderKey: 1 name bytes; 2 key bytes; 3 rev int64; 4 lease int64",
    "v3electionpb.LeaderRequest: 1 name bytes",
    "v3electionpb.LeaderResponse: 1 header etcdserverpb.ResponseHeader; 2 kv mvccpb.KeyValue",
    "v3electionpb.ResignRequest: 1 leader v3electionpb.LeaderKey",
    "v3electionpb.ResignResponse: 1 header etcdserverpb.ResponseHeader",
    "v3electionpb.ProclaimRequest: 1 leader v3electionpb.LeaderKey; 2 value bytes",
    "v3electionpb.ProclaimResponse: 1 header etcdserverpb.ResponseHeader",
    "v3lockpb.LockRequest: 1 name bytes; 2 lease int64",
    "v3lockpb.LockResponse: 1 header etcdserverpb.ResponseHeader; 2 key bytes",
    "v3lockpb.UnlockRequest: 1 key bytes",
    "v3lockpb.UnlockResponse: 1 header etcdserverpb.ResponseHeader",
};

// "<full name>: NAME=number ...".
constexpr const char* kEnums[] = {
    "mvccpb.Event.EventType: PUT=0 DELETE=1",
    "authpb.Permission.Type: READ=0 WRITE=1 READWRITE=2",
    "etcdserverpb.RangeRequest.SortOrder: NONE=0 ASCEND=1 DESCEND=2",
    "etcdserverpb.RangeRequest.SortTarget: KEY=0 VERSION=1 CREATE=2 MOD=3 VALUE=4",
    "etcdserverpb.Compare.CompareResult: EQUAL=0 GREATER=1 LESS=2 NOT_EQUAL=3",
    "etcdserverpb.Compare.CompareTarget: VERSION=0 CREATE=1 MOD=2 VALUE=3 LEASE=4",
    "etcdserverpb.WatchCreateRequest.FilterType: NOPUT=0 NODELETE=1",
    "etcdserverpb.AlarmType: NONE=0 NOSPACE=1 CORRUPT=2",
    "etcdserverpb.AlarmRequest.AlarmAction: GET=0 ACTIVATE=1 DEACTIVATE=2",
};

enum class Kind { kUnary, kServerStream, kBidiStream };

struct MethodSpec {
  const char* path;  // As on the wire: /<package>.<Service>/<Method>.
  Kind kind;
  const char* input;
  const char* output;
};

constexpr MethodSpec kMethods[] = {
    {"/etcdserverpb.KV/Range", Kind::kUnary, "RangeRequest", "RangeResponse"},
    {"/etcdserverpb.KV/Put", Kind::kUnary, "PutRequest", "PutResponse"},
    {"/etcdserverpb.KV/DeleteRange", Kind::kUnary, "DeleteRangeRequest", "DeleteRangeResponse"},
    {"/etcdserverpb.KV/Txn", Kind::kUnary, "TxnRequest", "TxnResponse"},
    {"/etcdserverpb.KV/Compact", Kind::kUnary, "CompactionRequest", "CompactionResponse"},
    {"/etcdserverpb.Watch/Watch", Kind::kBidiStream, "WatchRequest", "WatchResponse"},
    {"/etcdserverpb.Lease/LeaseGrant", Kind::kUnary, "LeaseGrantRequest", "LeaseGrantResponse"},
    {"/etcdserverpb.Lease/LeaseRevoke", Kind::kUnary, "LeaseRevokeRequest", "LeaseRevokeResponse"},
    {"/etcdserverpb.Lease/LeaseKeepAlive", Kind::kBidiStream, "LeaseKeepAliveRequest",
     "LeaseKeepAliveResponse"},
    {"/etcdserverpb.Lease/LeaseTimeToLive", Kind::kUnary, "LeaseTimeToLiveRequest",
     "LeaseTimeToLiveResponse"},
    {"/etcdserverpb.Lease/LeaseLeases", Kind::kUnary, "LeaseLeasesRequest", "LeaseLeasesResponse"},
    {"/etcdserverpb.Cluster/MemberAdd", Kind::kUnary, "MemberAddRequest", "MemberAddResponse"},
    {"/etcdserverpb.Cluster/MemberRemove", Kind::kUnary, "MemberRemoveRequest",
     "MemberRemoveResponse"},
    {"/etcdserverpb.Cluster/MemberUpdate", Kind::kUnary, "MemberUpdateRequest",
     "MemberUpdateResponse"},
    {"/etcdserverpb.Cluster/MemberList", Kind::kUnary, "MemberListRequest", "MemberListResponse"},
    {"/etcdserverpb.Cluster/MemberPromote", Kind::kUnary, "MemberPromoteRequest",
     "MemberPromoteResponse"},
    {"/etcdserverpb.Maintenance/Alarm", Kind::kUnary, "AlarmRequest", "AlarmResponse"},
    {"/etcdserverpb.Maintenance/Status", Kind::kUnary, "StatusRequest", "StatusResponse"},
    {"/etcdserverpb.Maintenance/Defragment", Kind::kUnary, "DefragmentRequest",
     "DefragmentResponse"},
    {"/etcdserverpb.Maintenance/Hash", Kind::kUnary, "HashRequest", "HashResponse"},
    {"/etcdserverpb.Maintenance/HashKV", Kind::kUnary, "HashKVRequest", "HashKVResponse"},
    {"/etcdserverpb.Maintenance/Snapshot", Kind::kServerStream, "SnapshotRequest",
     "SnapshotResponse"},
    {"/etcdserverpb.Maintenance/MoveLeader", Kind::kUnary, "MoveLeaderRequest",
     "MoveLeaderResponse"},
    {"/etcdserverpb.Auth/AuthEnable", Kind::kUnary, "AuthEnableRequest", "AuthEnableResponse"},
    {"/etcdserverpb.Auth/AuthDisable", Kind::kUnary, "AuthDisableRequest", "AuthDisableResponse"},
    {"/etcdserverpb.Auth/Authenticate", Kind::kUnary, "AuthenticateRequest",
     "AuthenticateResponse"},
    {"/etcdserverpb.Auth/UserAdd", Kind::kUnary, "AuthUserAddRequest", "AuthUserAddResponse"},
    {"/etcdserverpb.Auth/UserGet", Kind::kUnary, "AuthUserGetRequest", "AuthUserGetResponse"},
    {"/etcdserverpb.Auth/UserList", Kind::kUnary, "AuthUserListRequest", "AuthUserListResponse"},
    {"/etcdserverpb.Auth/UserDelete", Kind::kUnary, "AuthUserDeleteRequest",
     "AuthUserDeleteResponse"},
    {"/etcdserverpb.Auth/UserChangePassword", Kind::kUnary, "AuthUserChangePasswordRequest",
     "AuthUserChangePasswordResponse"},
    {"/etcdserverpb.Auth/UserGrantRole", Kind::kUnary, "AuthUserGrantRoleRequest",
     "AuthUserGrantRoleResponse"},
    {"/etcdserverpb.Auth/UserRevokeRole", Kind::kUnary, "AuthUserRevokeRoleRequest",
     "AuthUserRevokeRoleResponse"},
    {"/etcdserverpb.Auth/RoleAdd", Kind::kUnary, "AuthRoleAddRequest", "AuthRoleAddResponse"},
    {"/etcdserverpb.Auth/RoleGet", Kind::kUnary, "AuthRoleGetRequest", "AuthRoleGetResponse"},
    {"/etcdserverpb.Auth/RoleList", Kind::kUnary, "AuthRoleListRequest", "AuthRoleListResponse"},
    {"/etcdserverpb.Auth/RoleDelete", Kind::kUnary, "AuthRoleDeleteRequest",
     "AuthRoleDeleteResponse"},
    {"/etcdserverpb.Auth/RoleGrantPermission", Kind::kUnary, "AuthRoleGrantPermissionRequest",
     "AuthRoleGrantPermissionResponse"},
    {"/etcdserverpb.Auth/RoleRevokePermission", Kind::kUnary, "AuthRoleRevokePermissionRequest",
     "AuthRoleRevokePermissionResponse"},
    {"/v3electionpb.Election/Campaign", Kind::kUnary, "CampaignRequest", "CampaignResponse"},
    {"/v3electionpb.Election/Proclaim", Kind::kUnary, "ProclaimRequest", "ProclaimResponse"},
    {"/v3electionpb.Election/Leader", Kind::kUnary, "LeaderRequest", "LeaderResponse"},
    {"/v3electionpb.Election/Observe", Kind::kServerStream, "LeaderRequest", "LeaderResponse"},
    {"/v3electionpb.Election/Resign", Kind::kUnary, "ResignRequest", "ResignResponse"},
    {"/v3lockpb.Lock/Lock", Kind::kUnary, "LockRequest", "LockResponse"},
    {"/v3lockpb.Lock/Unlock", Kind::kUnary, "UnlockRequest", "UnlockResponse"},
};

// The files of the etcd packages, reached through a generated type of each
// so the linker keeps them and the pool knows them.
std::vector<const FileDescriptor*> EtcdFiles() {
  return {mvccpb::KeyValue::descriptor()->file(), authpb::User::descriptor()->file(),
          etcdserverpb::RangeRequest::descriptor()->file(),
          v3electionpb::LeaderKey::descriptor()->file(),
          v3lockpb::LockRequest::descriptor()->file()};
}

void CollectTypes(const Descriptor* d, std::set<std::string>* messages,
                  std::set<std::string>* enums) {
  messages->insert(d->full_name());
  for (int i = 0; i < d->nested_type_count(); ++i) CollectTypes(d->nested_type(i), messages, enums);
  for (int i = 0; i < d->enum_type_count(); ++i) enums->insert(d->enum_type(i)->full_name());
}

// "<number> <name> [rep] <type> [@oneof]" of a field, in the table's form.
std::string Describe(const FieldDescriptor* f) {
  std::ostringstream out;
  out << f->number() << " " << f->name() << " ";
  if (f->is_repeated()) out << "rep ";
  if (f->message_type() != nullptr) {
    out << f->message_type()->full_name();
  } else if (f->enum_type() != nullptr) {
    out << f->enum_type()->full_name();
  } else {
    out << f->type_name();
  }
  if (f->real_containing_oneof() != nullptr) out << " @" << f->real_containing_oneof()->name();
  return out.str();
}

TEST(WireTest, EveryMessageMatchesTheTable) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  for (const char* line : kMessages) {
    SCOPED_TRACE(line);
    std::pair<std::string, std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 1));
    const Descriptor* d = pool->FindMessageTypeByName(parts.first);
    ASSERT_NE(d, nullptr) << "no message " << parts.first;
    std::vector<std::string> want;
    for (absl::string_view f : absl::StrSplit(parts.second, ';', absl::SkipWhitespace())) {
      want.emplace_back(absl::StripAsciiWhitespace(f));
    }
    std::vector<std::string> got;
    for (int i = 0; i < d->field_count(); ++i) got.push_back(Describe(d->field(i)));
    EXPECT_EQ(got, want);
    for (int i = 0; i < d->field_count(); ++i) {
      // Only proto3 scalars without explicit presence, as in etcd.
      EXPECT_FALSE(d->field(i)->has_optional_keyword()) << d->field(i)->name();
    }
  }
}

TEST(WireTest, TheTableCoversEveryMessageAndEnum) {
  std::set<std::string> messages, enums;
  for (const FileDescriptor* file : EtcdFiles()) {
    EXPECT_EQ(file->syntax(), FileDescriptor::SYNTAX_PROTO3) << file->name();
    for (int i = 0; i < file->message_type_count(); ++i) {
      CollectTypes(file->message_type(i), &messages, &enums);
    }
    for (int i = 0; i < file->enum_type_count(); ++i) enums.insert(file->enum_type(i)->full_name());
  }
  std::set<std::string> want_messages, want_enums;
  for (const char* line : kMessages) {
    want_messages.insert(
        std::string(absl::string_view(line).substr(0, std::strchr(line, ':') - line)));
  }
  for (const char* line : kEnums) {
    want_enums.insert(
        std::string(absl::string_view(line).substr(0, std::strchr(line, ':') - line)));
  }
  EXPECT_EQ(messages, want_messages);
  EXPECT_EQ(enums, want_enums);
}

TEST(WireTest, EveryEnumMatchesTheTable) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  for (const char* line : kEnums) {
    SCOPED_TRACE(line);
    std::pair<std::string, std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 1));
    const EnumDescriptor* e = pool->FindEnumTypeByName(parts.first);
    ASSERT_NE(e, nullptr);
    std::vector<std::string> got;
    for (int i = 0; i < e->value_count(); ++i) {
      got.push_back(absl::StrCat(e->value(i)->name(), "=", e->value(i)->number()));
    }
    std::vector<std::string> want = absl::StrSplit(parts.second, ' ', absl::SkipWhitespace());
    EXPECT_EQ(got, want);
  }
}

TEST(WireTest, EveryMethodHasItsPathKindAndTypes) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  std::set<std::string> want_paths;
  for (const MethodSpec& m : kMethods) {
    SCOPED_TRACE(m.path);
    want_paths.insert(m.path);
    // "/pkg.Service/Method" names the method "pkg.Service.Method".
    std::string full = std::string(m.path + 1);
    full[full.find('/')] = '.';
    const MethodDescriptor* md = pool->FindMethodByName(full);
    ASSERT_NE(md, nullptr);
    EXPECT_EQ(md->client_streaming(), m.kind == Kind::kBidiStream);
    EXPECT_EQ(md->server_streaming(), m.kind != Kind::kUnary);
    const std::string package = md->service()->file()->package();
    // Election and lock messages live in their own package; every other
    // method speaks etcdserverpb.
    EXPECT_EQ(md->input_type()->full_name(), package + "." + m.input);
    EXPECT_EQ(md->output_type()->full_name(), package + "." + m.output);
  }
  std::set<std::string> got_paths;
  for (const FileDescriptor* file : EtcdFiles()) {
    for (int s = 0; s < file->service_count(); ++s) {
      const ServiceDescriptor* sd = file->service(s);
      for (int i = 0; i < sd->method_count(); ++i) {
        got_paths.insert(absl::StrCat("/", sd->full_name(), "/", sd->method(i)->name()));
      }
    }
  }
  EXPECT_EQ(got_paths, want_paths);
}

// The numbers that differ from a naive renumbering, checked on the encoded
// bytes: a tag is (number << 3) | wire type, as a varint.
TEST(WireTest, HighFieldNumbersOnTheWire) {
  etcdserverpb::Compare compare;
  compare.set_range_end("z");
  // 64 << 3 | 2 = 514 = varint 0x82 0x04.
  EXPECT_EQ(compare.SerializeAsString(), std::string("\x82\x04\x01z", 4));

  etcdserverpb::WatchResponse watch;
  watch.add_events();
  // 11 << 3 | 2 = 0x5a, then an empty Event.
  EXPECT_EQ(watch.SerializeAsString(), std::string("\x5a\x00", 2));
}

// The JSON gateway names fields by their proto names; etcd's capitalised
// ones must survive.
TEST(WireTest, JsonUsesTheOriginalFieldNames) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;

  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ttl.set_id(7);
  ttl.set_ttl(5);
  ttl.set_grantedttl(10);
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(ttl, &json, options).ok());
  EXPECT_EQ(json, R"({"ID":"7","TTL":"5","grantedTTL":"10"})");

  etcdserverpb::Member member;
  member.add_peerurls("http://127.0.0.1:2380");
  member.set_islearner(true);
  json.clear();
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(member, &json, options).ok());
  EXPECT_EQ(json, R"({"peerURLs":["http://127.0.0.1:2380"],"isLearner":true})");

  etcdserverpb::StatusResponse status;
  status.set_dbsize(4096);
  json.clear();
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(status, &json, options).ok());
  EXPECT_EQ(json, R"({"dbSize":"4096"})");
}

// The state machine commands carry the client requests unchanged.
TEST(WireTest, InternalCommandsEmbedTheClientMessages) {
  arbiter::internalpb::Request request;
  request.set_leader_time_ms(1234);
  request.mutable_put()->set_key("k");
  arbiter::internalpb::Request parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(parsed.request_case(), arbiter::internalpb::Request::kPut);
  EXPECT_EQ(parsed.put().key(), "k");
  EXPECT_EQ(parsed.leader_time_ms(), 1234);

  const Descriptor* d = arbiter::internalpb::Response::descriptor();
  EXPECT_EQ(d->FindFieldByName("lease_checkpoint")->message_type()->full_name(),
            "etcdserverpb.LeaseCheckpointResponse");
}

}  // namespace
}  // namespace arbiter
