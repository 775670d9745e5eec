// Short names for the protobuf types the consensus core works on, and a few
// helpers over them.
//
// Thread safety: plain functions over values; safe from any thread.
#ifndef ARBITER_RAFT_TYPES_H_
#define ARBITER_RAFT_TYPES_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "proto/raft.pb.h"

namespace arbiter::raft {

using Entry = raftpb::Entry;
using HardState = raftpb::HardState;
using ConfState = raftpb::ConfState;
using Snapshot = raftpb::Snapshot;
using SnapshotMetadata = raftpb::SnapshotMetadata;
using Message = raftpb::Message;
using MessageType = raftpb::MessageType;
using ConfChange = raftpb::ConfChange;
using ConfChangeV2 = raftpb::ConfChangeV2;
using ConfChangeSingle = raftpb::ConfChangeSingle;

// The id that means "no node" (no leader, no vote).
inline constexpr uint64_t kNone = 0;
// Passed as a size limit: no limit.
inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

// Messages a node generates for itself (never sent over the network).
bool IsLocalMsg(MessageType t);
// Replies to another node's request.
bool IsResponseMsg(MessageType t);
// The response type for a vote request type (MsgVote or MsgPreVote).
MessageType VoteRespMsgType(MessageType t);

// Bytes an entry counts for in size limits (what its encoding costs).
uint64_t EntrySize(const Entry& e);
// Bytes of the payloads, for the uncommitted-size limit (etcd's rule: the
// data only, so empty entries are free).
uint64_t PayloadSize(const Entry& e);

// Returns the longest prefix of ents whose total EntrySize stays within
// max_size, but always at least one entry.
void LimitSize(std::vector<Entry>* ents, uint64_t max_size);

bool IsEmptyHardState(const HardState& hs);
bool IsEmptySnapshot(const Snapshot& s);
bool HardStateEqual(const HardState& a, const HardState& b);

// Short human-readable forms for logs and test failures.
std::string DescribeMessage(const Message& m);
std::string DescribeEntry(const Entry& e);
std::string DescribeConfState(const ConfState& cs);
const char* MessageTypeName(MessageType t);

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_TYPES_H_
