#include "raft/types.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace arbiter::raft {

using raftpb::MessageType;

bool IsLocalMsg(MessageType t) {
  switch (t) {
    case raftpb::MSG_HUP:
    case raftpb::MSG_BEAT:
    case raftpb::MSG_UNREACHABLE:
    case raftpb::MSG_SNAP_STATUS:
    case raftpb::MSG_CHECK_QUORUM:
      return true;
    default:
      return false;
  }
}

bool IsResponseMsg(MessageType t) {
  switch (t) {
    case raftpb::MSG_APP_RESP:
    case raftpb::MSG_VOTE_RESP:
    case raftpb::MSG_HEARTBEAT_RESP:
    case raftpb::MSG_UNREACHABLE:
    case raftpb::MSG_READ_INDEX_RESP:
    case raftpb::MSG_PRE_VOTE_RESP:
      return true;
    default:
      return false;
  }
}

MessageType VoteRespMsgType(MessageType t) {
  return t == raftpb::MSG_PRE_VOTE ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
}

uint64_t EntrySize(const Entry& e) {
  // Fixed overhead for term/index/type tags plus the payload; close to the
  // encoded size without the cost of computing it exactly.
  return 24 + e.data().size();
}

uint64_t PayloadSize(const Entry& e) { return e.data().size(); }

void LimitSize(std::vector<Entry>* ents, uint64_t max_size) {
  if (ents->empty() || max_size == kNoLimit) return;
  uint64_t size = EntrySize((*ents)[0]);
  size_t limit = 1;
  for (; limit < ents->size(); ++limit) {
    size += EntrySize((*ents)[limit]);
    if (size > max_size) break;
  }
  ents->resize(limit);
}

bool IsEmptyHardState(const HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}

bool IsEmptySnapshot(const Snapshot& s) { return s.metadata().index() == 0; }

bool HardStateEqual(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case raftpb::MSG_HUP:
      return "MsgHup";
    case raftpb::MSG_BEAT:
      return "MsgBeat";
    case raftpb::MSG_PROP:
      return "MsgProp";
    case raftpb::MSG_APP:
      return "MsgApp";
    case raftpb::MSG_APP_RESP:
      return "MsgAppResp";
    case raftpb::MSG_VOTE:
      return "MsgVote";
    case raftpb::MSG_VOTE_RESP:
      return "MsgVoteResp";
    case raftpb::MSG_SNAP:
      return "MsgSnap";
    case raftpb::MSG_HEARTBEAT:
      return "MsgHeartbeat";
    case raftpb::MSG_HEARTBEAT_RESP:
      return "MsgHeartbeatResp";
    case raftpb::MSG_UNREACHABLE:
      return "MsgUnreachable";
    case raftpb::MSG_SNAP_STATUS:
      return "MsgSnapStatus";
    case raftpb::MSG_CHECK_QUORUM:
      return "MsgCheckQuorum";
    case raftpb::MSG_TRANSFER_LEADER:
      return "MsgTransferLeader";
    case raftpb::MSG_TIMEOUT_NOW:
      return "MsgTimeoutNow";
    case raftpb::MSG_READ_INDEX:
      return "MsgReadIndex";
    case raftpb::MSG_READ_INDEX_RESP:
      return "MsgReadIndexResp";
    case raftpb::MSG_PRE_VOTE:
      return "MsgPreVote";
    case raftpb::MSG_PRE_VOTE_RESP:
      return "MsgPreVoteResp";
    default:
      return "MsgUnknown";
  }
}

std::string DescribeEntry(const Entry& e) {
  const char* type = e.type() == raftpb::ENTRY_NORMAL        ? ""
                     : e.type() == raftpb::ENTRY_CONF_CHANGE ? " conf"
                                                             : " confv2";
  return absl::StrCat(e.term(), "/", e.index(), type, " (", e.data().size(), "B)");
}

std::string DescribeMessage(const Message& m) {
  std::string s = absl::StrCat(m.from(), "->", m.to(), " ", MessageTypeName(m.type()),
                               " Term:", m.term(), " Log:", m.log_term(), "/", m.index());
  if (m.reject()) absl::StrAppend(&s, " Rejected (Hint: ", m.reject_hint(), ")");
  if (m.commit() != 0) absl::StrAppend(&s, " Commit:", m.commit());
  if (m.entries_size() > 0) {
    absl::StrAppend(&s, " Entries:[");
    for (int i = 0; i < m.entries_size(); ++i) {
      if (i > 0) absl::StrAppend(&s, ", ");
      absl::StrAppend(&s, DescribeEntry(m.entries(i)));
    }
    absl::StrAppend(&s, "]");
  }
  if (m.has_snapshot() && !IsEmptySnapshot(m.snapshot())) {
    absl::StrAppend(&s, " Snapshot: Index:", m.snapshot().metadata().index(),
                    " Term:", m.snapshot().metadata().term(), " ",
                    DescribeConfState(m.snapshot().metadata().conf_state()));
  }
  return s;
}

std::string DescribeConfState(const ConfState& cs) {
  std::string s = absl::StrCat("Voters:[", absl::StrJoin(cs.voters(), " "), "]");
  if (cs.voters_outgoing_size() > 0) {
    absl::StrAppend(&s, " VotersOutgoing:[", absl::StrJoin(cs.voters_outgoing(), " "), "]");
  }
  absl::StrAppend(&s, " Learners:[", absl::StrJoin(cs.learners(), " "), "]");
  if (cs.learners_next_size() > 0) {
    absl::StrAppend(&s, " LearnersNext:[", absl::StrJoin(cs.learners_next(), " "), "]");
  }
  if (cs.auto_leave()) absl::StrAppend(&s, " AutoLeave:true");
  return s;
}

}  // namespace arbiter::raft
