// A durable cluster member: one Raft node, its raft log store and its state
// machine, driven by one event-loop thread.
//
// The loop thread owns the RawNode, the store's write side and the state
// machine; nothing else touches them. Other threads talk to it through a
// bounded inbox (mutex + condvar): proposals, reads, membership changes,
// leadership transfers, peer messages and transport reports. Each loop
// iteration:
//   wait for inbox work or the next tick -> drain the inbox -> tick if due
//   -> while HasReady: persist (ONE RaftLogStore::Save, synced when the
//      Ready requires it) -> send -> apply -> serve reads -> Advance.
// Every proposal drained in one iteration shares that one synced write
// (group commit). Nothing is sent, applied or acknowledged before it is
// durable (raft/ready.h).
//
// Crash semantics: a failed Save or state-machine write is fail-stop: the
// member logs it, stops its loop, fails every waiter with ErrStopped naming
// the error and calls MemberOptions::on_fatal (the daemon exits there). It
// never retries: after a failed fsync the state of the write is unknown. On
// restart the member reopens its store, restores the state machine from the
// store's snapshot if the state machine is behind it, and Raft replays the
// committed log after it; commands at or below the state machine's applied
// index are skipped (see state_machine.h), so replay is idempotent.
//
// Requests are matched to their log entries by a header (proposing member
// id, request id) that the member prepends to every command; the state
// machine sees only the command. A waiter fails with ErrLeadershipChanged
// when the leader changes while it is pending, ErrNoLeader when no leader is
// known, ErrTimeout at its deadline (a proposal's outcome is then unknown)
// and ErrStopped when the member stops.
//
// Thread safety: every public method is thread-safe. The blocking ones
// (Propose, ReadIndex, ...) must not be called from the loop thread (for
// example from on_status_change).
#ifndef ARBITER_SERVER_MEMBER_H_
#define ARBITER_SERVER_MEMBER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kvstore/raft_log_store.h"
#include "raft/rand.h"
#include "raft/raw_node.h"
#include "server/histogram.h"
#include "server/state_machine.h"
#include "server/transport.h"

namespace leveldb {
class Env;
}  // namespace leveldb

namespace arbiter::server {

struct MemberOptions {
  // REQUIRES: != raft::kNone.
  uint64_t id = 0;
  // The voters of a new cluster, this member included. Used only when the
  // store is empty and join_existing is false: the member then bootstraps
  // (RaftLogStore::Bootstrap). A member with a stored state ignores it.
  std::vector<uint64_t> initial_members;
  // Start with an empty store and wait to be caught up (by a snapshot) by
  // the leader of a cluster that added this member by a conf change.
  bool join_existing = false;
  // Where the raft log store lives, and the Env it is opened with (not
  // owned; nullptr: the default Env).
  std::string data_dir;
  leveldb::Env* env = nullptr;

  absl::Duration tick_interval = absl::Milliseconds(100);
  int election_tick = 10;
  int heartbeat_tick = 1;
  // Take a raft snapshot (and compact the log) every this many applied
  // entries. REQUIRES: > 0.
  uint64_t snapshot_count = 10000;
  // Entries the raft log keeps behind each snapshot (RaftLogStore's
  // catch_up_entries); 0 keeps none.
  uint64_t snapshot_catchup_entries = 0;
  // Requests (proposals, reads, ...) queued before new ones fail with
  // ErrInboxFull; peer messages queued before new ones are dropped.
  size_t max_pending_requests = 10000;
  size_t max_inbox_messages = 10000;
  // Seed of the election-timeout jitter; 0 picks one from the clock.
  uint64_t seed = 0;
  // Not owned; nullptr logs warnings and errors to stderr.
  raft::Logger* logger = nullptr;
  // Called once from the loop thread when the member stops on a fatal
  // error (after waiters were failed).
  std::function<void(const absl::Status&)> on_fatal;
  // Called from the loop thread whenever Status() changed. Must be quick and
  // must not call the member's blocking methods.
  std::function<void()> on_status_change;
};

struct MemberStatus {
  uint64_t id = 0;
  bool running = false;
  // Non-OK after a fail-stop: why.
  absl::Status failure;
  uint64_t leader = 0;
  uint64_t term = 0;
  raft::StateType state = raft::StateType::kFollower;
  uint64_t commit = 0;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  // The index of the store's latest snapshot.
  uint64_t snapshot_index = 0;
  raft::ConfState conf_state;
};

// How the member's persistence behaves: each Ready is one Save (synced when
// Raft requires it), so entries per synced save shows how well concurrent
// proposals are grouped into one fsync.
struct PersistStats {
  uint64_t saves = 0;
  uint64_t synced_saves = 0;
  uint64_t entries = 0;
  // Microseconds per Save.
  Histogram save_micros;
};

class Member final : public TransportHandler {
 public:
  // Opens (or creates) the store, restores the state machine and starts the
  // loop thread. transport is not owned and must outlive the member; the
  // caller attaches the member (a TransportHandler) to whatever delivers
  // peer messages, and detaches it before destroying the member.
  static absl::StatusOr<std::unique_ptr<Member>> Start(const MemberOptions& options,
                                                       std::unique_ptr<StateMachine> sm,
                                                       Transport* transport);
  // Kills the member if it is still running.
  ~Member() override;

  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // Replicates command and returns the state machine's result once this
  // member applied it. A follower forwards it to the leader.
  absl::StatusOr<std::string> Propose(std::string command, absl::Time deadline);
  // Returns OK once a linearizable read may be served from this member's
  // state machine: leadership was confirmed by a quorum after the call began
  // and this member applied up to the commit index of that moment. Reads
  // queued together share one confirmation round.
  absl::Status ReadIndex(absl::Time deadline);

  // Propose and ReadIndex without a waiting thread: done runs exactly once
  // with what the blocking form would return (ReadIndex: an empty string
  // when the read may be served). It runs on the loop thread, or on the
  // caller's thread when the request is refused at once (inbox full,
  // stopped), so it must be quick and must not call the member's blocking
  // methods. A request still pending at its deadline fails with ErrTimeout
  // within a tick of it.
  using Callback = std::function<void(absl::StatusOr<std::string>)>;
  void ProposeAsync(std::string command, absl::Time deadline, Callback done);
  void ReadIndexAsync(absl::Time deadline, Callback done);

  // Proposes a membership change; returns the membership once applied here.
  absl::StatusOr<raft::ConfState> ProposeConfChange(const raft::ConfChangeV2& cc,
                                                    absl::Time deadline);
  // Asks the leader to hand leadership to transferee; OK once this member
  // sees transferee as leader.
  absl::Status TransferLeadership(uint64_t transferee, absl::Time deadline);

  // Runs fn on the loop thread against the state machine (as of the applied
  // index) and waits for it. fn must not block.
  absl::Status QueryStateMachine(std::function<void(const StateMachine&)> fn, absl::Time deadline);
  // The state machine's Hash(), for comparing members.
  absl::StatusOr<uint64_t> AppliedHash(absl::Time deadline);

  // Waits until this member has applied every entry that it had told any
  // peer was committed when the call began and, if it leads, an entry of its
  // own term is committed (a new leader's commit index then covers
  // everything its predecessor committed). Followers learn of commits only
  // from the leader, so on the leader a local read after this observes every
  // write that any member acknowledged before the call: what keeps a
  // keep-alive on the leader from missing a lease grant (or renewing a
  // revoked lease) that a follower applied and acknowledged first, while
  // the leader was still persisting before its own apply.
  // Errors: ErrTimeout at deadline, ErrStopped.
  absl::Status AwaitAnnouncedApplied(absl::Time deadline);

  MemberStatus Status() const;
  PersistStats persist_stats() const;
  // Requests (proposals, reads, ...) waiting in the inbox for the loop.
  size_t queued_requests() const;
  uint64_t id() const { return options_.id; }

  // Clean stop: a leader first hands leadership to its most up-to-date
  // follower and waits for it briefly (one election timeout at most), then
  // the loop stops. Pending waiters fail with ErrStopped.
  void Stop();
  // Abrupt stop, as a crash would: the loop stops at its next iteration
  // without transferring leadership. What was synced survives; the rest is
  // whatever the store's Env keeps (FaultEnv can drop it).
  void Kill();

  // TransportHandler. Non-blocking; dropped when the inbox is full or closed.
  void OnMessages(std::vector<raft::Message> msgs) override;
  void OnUnreachable(uint64_t peer) override;
  void OnSnapshotStatus(uint64_t peer, raft::SnapshotStatus status) override;
  void OnConnectionLost(uint64_t peer) override;

 private:
  struct Waiter;
  struct Request;
  struct Inbox;
  struct PendingRequest;
  struct ReadyRead;
  struct SnapshotBuild;

  Member(const MemberOptions& options, std::unique_ptr<StateMachine> sm, Transport* transport);

  // ---- Startup (member.cc) ----
  absl::Status Init();

  // ---- Inbox, called from any thread (member.cc) ----
  absl::Status Enqueue(Request req);
  absl::StatusOr<std::string> Call(Request req, absl::Time deadline, const char* what);
  void CallAsync(Request req, absl::Time deadline, Callback done);
  void Halt(bool graceful);

  // ---- Loop thread (member_loop.cc) ----
  void Run();
  Inbox WaitForWork();
  // Tells the loop that the inbox has something.
  void WakeLoop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(inbox_mu_);
  void HandleInbox(Inbox& in, absl::Time now);
  void HandleProposals(std::vector<Request>& props);
  void HandleConfChange(Request& req);
  void HandleReads(std::vector<Request>& reads);
  void MaybeTick(absl::Time now);
  absl::Status ProcessReadies();
  // Puts the state in place of a held-state marker (member_internal.h) in
  // every snapshot message, before it leaves.
  // Snapshot messages whose state the state machine can freeze go to the
  // builder thread instead, and leave when it is done (member_snapshot.cc).
  absl::Status FillSnapshots(std::vector<raft::Message>& msgs);
  void QueueSnapshotBuild(raft::Message m, std::unique_ptr<FrozenState> frozen);
  // Reports a snapshot to `to` as failed through the inbox.
  void DeferSnapshotFailure(uint64_t to);
  // The builder thread: serializes frozen states, hands the messages to
  // the loop through the inbox.
  void RunSnapshotBuilder();
  // Stops and joins the builder, dropping what it had not started.
  void StopSnapshotBuilder();
  // The snapshot's data is moved into the state machine (left empty).
  absl::Status ApplySnapshot(raft::Snapshot* snap);
  absl::Status ApplyEntries(const std::vector<raft::Entry>& ents);
  absl::Status ApplyNormal(const raft::Entry& e);
  absl::Status ApplyConfChangeEntry(const raft::Entry& e);
  absl::Status TakeSnapshot(uint64_t index);
  void HandleReadStates(std::vector<raft::ReadState>& states);
  void HandleSoftState(const raft::SoftState& ss);
  void ServeReads();
  void ExpireRequests(absl::Time now);
  void BeginStop(absl::Time now);
  bool StopDone(absl::Time now) const;
  // Closes the inbox and fails every request still queued, drained or
  // pending. why is OK for a requested stop.
  void Shutdown(const absl::Status& why, Inbox& drained);
  void FailAll(const absl::Status& s);
  // Fails pending proposals and unconfirmed reads, except those made while
  // except_lead led (kNone: all).
  void FailProposalsAndReads(const absl::Status& s, uint64_t except_lead);
  void Complete(uint64_t request_id, absl::StatusOr<std::string> result);
  void PublishStatus();
  // Records, before messages leave, the commit index they may carry.
  void AnnounceCommit();
  std::string DescribeState() const;

  const MemberOptions options_;
  Transport* const transport_;
  raft::Logger* const logger_;

  // ---- Owned by the loop thread (and by Init before it starts) ----
  std::unique_ptr<kv::RaftLogStore> store_;
  std::unique_ptr<StateMachine> sm_;
  std::unique_ptr<raft::SeededRand> rand_;
  std::unique_ptr<raft::RawNode> node_;
  raft::ConfState conf_state_;
  // Invariant: applied_ <= commit index; every entry up to it was applied.
  uint64_t applied_ = 0;
  uint64_t snapshot_index_ = 0;
  absl::Time next_tick_;
  uint64_t lead_ = 0;
  // Proposals and conf changes by request id, awaiting apply.
  absl::flat_hash_map<uint64_t, PendingRequest> pending_;
  // Reads by ReadIndex context, awaiting leadership confirmation.
  std::map<std::string, std::vector<PendingRequest>> read_rounds_;
  // Confirmed reads by read index, awaiting apply.
  std::multimap<uint64_t, PendingRequest> ready_reads_;
  std::vector<PendingRequest> transfers_;
  uint64_t next_read_ctx_ = 1;
  bool stopping_ = false;
  absl::Time stop_deadline_;

  // ---- Shared with other threads ----
  mutable absl::Mutex inbox_mu_;
  // Wakes the loop: a condition variable, or with a transport the loop
  // reads (Transport::ReadFd), an eventfd it polls along with that.
  absl::CondVar inbox_cv_;
  const int wake_fd_;
  bool loop_polling_ ABSL_GUARDED_BY(inbox_mu_) = false;
  std::unique_ptr<Inbox> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  // Set when the loop stops: requests fail at once.
  bool closed_ ABSL_GUARDED_BY(inbox_mu_) = false;
  absl::Status close_reason_ ABSL_GUARDED_BY(inbox_mu_);
  // Request ids are unique per member incarnation: a random start.
  uint64_t next_request_id_ ABSL_GUARDED_BY(inbox_mu_) = 0;

  mutable absl::Mutex status_mu_;
  MemberStatus status_ ABSL_GUARDED_BY(status_mu_);
  // The highest commit index sent to a peer (AnnounceCommit), and whether
  // the published commit index is of the current term (PublishStatus).
  uint64_t announced_commit_ ABSL_GUARDED_BY(status_mu_) = 0;
  bool commit_in_term_ ABSL_GUARDED_BY(status_mu_) = false;
  // The loop's copy of announced_commit_, to skip the lock when unchanged.
  uint64_t announced_commit_loop_ = 0;

  mutable absl::Mutex stats_mu_;
  PersistStats persist_stats_ ABSL_GUARDED_BY(stats_mu_);

  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);

  // The snapshot builder (member_snapshot.cc): started with its first job,
  // stopped when the loop shuts down.
  absl::Mutex build_mu_;
  std::deque<SnapshotBuild> build_jobs_ ABSL_GUARDED_BY(build_mu_);
  bool build_stop_ ABSL_GUARDED_BY(build_mu_) = false;
  // Tells a serialization in progress to give up (the member is stopping).
  std::atomic<bool> build_cancel_{false};
  std::thread builder_ ABSL_GUARDED_BY(build_mu_);
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_MEMBER_H_
