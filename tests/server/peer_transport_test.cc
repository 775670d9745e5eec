// Tests of the TCP peer transport between real sockets on loopback:
// ordered delivery, chunked snapshots, refusal of strangers, reports of
// what could not be sent, of a peer's stream closing, and recovery when a
// peer comes back.
#include "server/peer_transport.h"

#include <linux/filter.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "proto/peer.pb.h"
#include "server/net.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::WaitFor;

// Stands in for a member's loop on a transport with loop_reads: waits for
// its ReadFd and calls ReadReady, on one thread, until stopped.
class LoopReader {
 public:
  explicit LoopReader(PeerTransport* t)
      : t_(t), stop_fd_(eventfd(0, EFD_CLOEXEC)), thread_([this] { Run(); }) {}
  ~LoopReader() {
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
    close(stop_fd_);
  }

 private:
  // No timeout: a reader that is not woken by what arrives fails the test.
  void Run() {
    while (true) {
      pollfd p[2] = {{t_->ReadFd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) continue;
      if ((p[1].revents & POLLIN) != 0) return;
      if ((p[0].revents & POLLIN) != 0) t_->ReadReady();
    }
  }
  PeerTransport* const t_;
  const int stop_fd_;
  std::thread thread_;
};

// Records what a transport hands to its member.
class RecordingHandler final : public TransportHandler {
 public:
  void OnMessages(std::vector<raft::Message> msgs) override {
    absl::MutexLock l(&mu_);
    for (auto& m : msgs) received_.push_back(std::move(m));
  }
  void OnUnreachable(uint64_t peer) override {
    absl::MutexLock l(&mu_);
    ++unreachable_[peer];
  }
  void OnSnapshotStatus(uint64_t peer, raft::SnapshotStatus status) override {
    absl::MutexLock l(&mu_);
    snap_status_.push_back({peer, status});
  }
  void OnConnectionLost(uint64_t peer) override {
    absl::MutexLock l(&mu_);
    lost_.push_back({peer, received_.size()});
  }

  std::vector<raft::Message> received() const {
    absl::MutexLock l(&mu_);
    return received_;
  }
  int unreachable(uint64_t peer) const {
    absl::MutexLock l(&mu_);
    auto it = unreachable_.find(peer);
    return it == unreachable_.end() ? 0 : it->second;
  }
  std::vector<std::pair<uint64_t, raft::SnapshotStatus>> snap_status() const {
    absl::MutexLock l(&mu_);
    return snap_status_;
  }
  // (peer, messages received before the report) per OnConnectionLost.
  std::vector<std::pair<uint64_t, size_t>> lost() const {
    absl::MutexLock l(&mu_);
    return lost_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<raft::Message> received_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, int> unreachable_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, raft::SnapshotStatus>> snap_status_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, size_t>> lost_ ABSL_GUARDED_BY(mu_);
};

// One endpoint: a transport listening on an ephemeral (or given) port of
// 127.0.0.1, and a recording handler.
// With loop_reads, a LoopReader plays the member's loop.
struct Endpoint {
  Endpoint(uint64_t cluster, uint64_t id, size_t chunk = 1 << 20, int port = 0,
           bool loop_reads = false) {
    PeerTransportOptions o;
    o.cluster_id = cluster;
    o.local_id = id;
    o.snapshot_chunk_bytes = chunk;
    o.loop_reads = loop_reads;
    o.logger = raft::DiscardLogger();
    transport = std::make_unique<PeerTransport>(o);
    transport->Attach(&handler);
    auto ports = transport->Listen({absl::StrCat("127.0.0.1:", port)});
    if (ports.ok()) this->port = ports->front();
    if (loop_reads) loop = std::make_unique<LoopReader>(transport.get());
  }
  ~Endpoint() { Shutdown(); }
  void Shutdown() {
    loop.reset();
    transport->StopListening();
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }

  RecordingHandler handler;
  std::unique_ptr<PeerTransport> transport;
  std::unique_ptr<LoopReader> loop;
  int port = 0;
};

raft::Message Msg(uint64_t from, uint64_t to, uint64_t index) {
  raft::Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(1);
  m.set_index(index);
  return m;
}

// a (member 1) sends count messages to b (member 2) in batches of 10; b
// must receive them all, in order. b learns of a first, so that a's first
// connection is never refused.
void SendInOrder(Endpoint& a, Endpoint& b, int count) {
  b.transport->AddPeer(1, a.address());
  a.transport->AddPeer(2, b.address());
  for (int i = 1; i <= count; i += 10) {
    std::vector<raft::Message> batch;
    for (int j = i; j < i + 10; ++j) batch.push_back(Msg(1, 2, j));
    a.transport->Send(std::move(batch));
  }
  ASSERT_TRUE(WaitFor([&] { return b.handler.received().size() == static_cast<size_t>(count); }));
  std::vector<raft::Message> got = b.handler.received();
  for (int i = 0; i < count; ++i) ASSERT_EQ(got[i].index(), static_cast<uint64_t>(i + 1));
  EXPECT_EQ(a.handler.unreachable(2), 0);
}

TEST(PeerTransportTest, DeliversInOrderBetweenMembersOfOneCluster) {
  Endpoint a(7, 1), b(7, 2);
  ASSERT_NE(a.port, 0);
  ASSERT_NE(b.port, 0);
  SendInOrder(a, b, 2000);
}

// The same, read by the member's loop instead of the transport's thread;
// a peer that goes away is still reported after its last message.
TEST(PeerTransportTest, TheMembersLoopCanReadThePeers) {
  Endpoint a(7, 1), b(7, 2, 1 << 20, 0, /*loop_reads=*/true);
  ASSERT_GE(b.transport->ReadFd(), 0);
  EXPECT_LT(a.transport->ReadFd(), 0);
  constexpr int kCount = 2000;
  ASSERT_NO_FATAL_FAILURE(SendInOrder(a, b, kCount));
  a.transport->RemovePeer(2);  // stops its sender, closing the stream
  ASSERT_TRUE(WaitFor([&] { return b.handler.lost().size() == 1; }));
  EXPECT_EQ(b.handler.lost()[0], std::make_pair(uint64_t{1}, size_t{kCount}));
}

// Frames far larger than the reader's buffer, read by the loop a few reads
// per round: all arrive whole and in order, and closing the listener with
// streams open reports none of them lost.
TEST(PeerTransportTest, TheMembersLoopReadsLargeFramesOverSeveralRounds) {
  Endpoint a(7, 1), b(7, 2, 1 << 20, 0, /*loop_reads=*/true);
  b.transport->AddPeer(1, a.address());
  a.transport->AddPeer(2, b.address());
  constexpr int kBatches = 8, kPerBatch = 4;
  constexpr size_t kData = 300 << 10;  // 1.2 MB frames against a 256 KiB buffer
  uint64_t index = 0;
  for (int i = 0; i < kBatches; ++i) {
    std::vector<raft::Message> batch;
    for (int j = 0; j < kPerBatch; ++j) {
      raft::Message m = Msg(1, 2, ++index);
      m.add_entries()->set_data(std::string(kData, 'y'));
      batch.push_back(std::move(m));
    }
    a.transport->Send(std::move(batch));
  }
  ASSERT_TRUE(WaitFor([&] { return b.handler.received().size() == index; }));
  std::vector<raft::Message> got = b.handler.received();
  for (uint64_t i = 0; i < index; ++i) {
    ASSERT_EQ(got[i].index(), i + 1);
    ASSERT_EQ(got[i].entries(0).data().size(), kData);
  }
  b.Shutdown();
  EXPECT_EQ(b.transport->inbound_streams_closed(), 1u);
  EXPECT_TRUE(b.handler.lost().empty());
}

TEST(PeerTransportTest, SnapshotTravelsInChunksAndIsReportedFinished) {
  Endpoint a(7, 1, /*chunk=*/1000), b(7, 2);
  a.transport->AddPeer(2, b.address());
  b.transport->AddPeer(1, a.address());
  raft::Message snap;
  snap.set_type(raftpb::MSG_SNAP);
  snap.set_from(1);
  snap.set_to(2);
  snap.set_term(3);
  std::string data;
  for (int i = 0; i < 10500; ++i) data.push_back(static_cast<char>('a' + i % 26));
  snap.mutable_snapshot()->set_data(data);
  snap.mutable_snapshot()->mutable_metadata()->set_index(42);
  a.transport->Send({snap});
  ASSERT_TRUE(WaitFor([&] { return b.handler.received().size() == 1; }));
  const raft::Message got = b.handler.received()[0];
  EXPECT_EQ(got.type(), raftpb::MSG_SNAP);
  EXPECT_EQ(got.snapshot().metadata().index(), 42u);
  EXPECT_EQ(got.snapshot().data(), data);
  ASSERT_TRUE(WaitFor([&] { return a.handler.snap_status().size() == 1; }));
  EXPECT_EQ(a.handler.snap_status()[0].first, 2u);
  EXPECT_EQ(a.handler.snap_status()[0].second, raft::SnapshotStatus::kFinish);
}

// A follower with a stale idea of the leader forwards a proposal to another
// follower, which forwards it again to the leader with the proposer's id
// kept: the leader must take it (and the stream must stay up), while a
// message the sender writes itself must carry the sender's id.
TEST(PeerTransportTest, TakesMessagesForwardedForAnotherMemberOnly) {
  Endpoint leader(7, 1), relay(7, 2);
  leader.transport->AddPeer(2, relay.address());
  relay.transport->AddPeer(1, leader.address());
  std::vector<raft::Message> forwarded;
  for (raftpb::MessageType t :
       {raftpb::MSG_PROP, raftpb::MSG_READ_INDEX, raftpb::MSG_TRANSFER_LEADER}) {
    raft::Message m;
    m.set_type(t);
    m.set_from(3);
    m.set_to(1);
    forwarded.push_back(m);
  }
  relay.transport->Send(forwarded);
  relay.transport->Send({Msg(2, 1, 7)});
  ASSERT_TRUE(WaitFor([&] { return leader.handler.received().size() == 4; }));
  EXPECT_EQ(leader.handler.received()[0].from(), 3u);
  EXPECT_EQ(leader.transport->refused_batches(), 0u);
  // An append claiming to be from member 3 is refused with its batch.
  relay.transport->Send({Msg(3, 1, 8)});
  ASSERT_TRUE(WaitFor([&] { return leader.transport->refused_batches() == 1; }));
  EXPECT_EQ(leader.handler.received().size(), 4u);
}

TEST(PeerTransportTest, RefusesAnotherClusterAndUnknownMembers) {
  Endpoint member(7, 1), stranger(8, 2), unknown(7, 3);
  member.transport->AddPeer(2, stranger.address());  // known id, wrong cluster
  stranger.transport->AddPeer(1, member.address());
  unknown.transport->AddPeer(1, member.address());  // right cluster, not a peer
  stranger.transport->Send({Msg(2, 1, 1)});
  unknown.transport->Send({Msg(3, 1, 1)});
  ASSERT_TRUE(WaitFor([&] { return member.transport->refused_batches() >= 2; }));
  EXPECT_TRUE(member.handler.received().empty());
  // The senders learn that their messages do not arrive: a refused stream
  // is closed, and the next write on it (Raft's next heartbeat) fails.
  ASSERT_TRUE(WaitFor([&] {
    stranger.transport->Send({Msg(2, 1, 2)});
    unknown.transport->Send({Msg(3, 1, 2)});
    absl::SleepFor(absl::Milliseconds(20));  // pace the retries, as ticks would
    return stranger.handler.unreachable(1) > 0 && unknown.handler.unreachable(1) > 0;
  }));
  EXPECT_TRUE(member.handler.received().empty());
  // Control: a message from a real peer of the same cluster gets through.
  Endpoint friendly(7, 2);
  member.transport->AddPeer(2, friendly.address());
  friendly.transport->AddPeer(1, member.address());
  friendly.transport->Send({Msg(2, 1, 5)});
  ASSERT_TRUE(WaitFor([&] { return member.handler.received().size() == 1; }));
}

// The peer's sender goes away (as when its process exits): the receiving
// side reports the connection lost once, after everything that arrived on
// it. A new stream from the peer (it came back) is not reported.
TEST(PeerTransportTest, ReportsConnectionLostWhenThePeersStreamEnds) {
  Endpoint a(7, 1), b(7, 2);
  a.transport->AddPeer(2, b.address());
  b.transport->AddPeer(1, a.address());
  constexpr size_t kCount = 50;
  for (uint64_t i = 1; i <= kCount; ++i) a.transport->Send({Msg(1, 2, i)});
  ASSERT_TRUE(WaitFor([&] { return b.handler.received().size() == kCount; }));
  EXPECT_TRUE(b.handler.lost().empty());

  a.transport->RemovePeer(2);  // stops a's sender to b, closing its stream
  ASSERT_TRUE(WaitFor([&] { return !b.handler.lost().empty(); }));
  EXPECT_EQ(b.handler.lost()[0].first, 1u);
  EXPECT_EQ(b.handler.lost()[0].second, kCount);
  EXPECT_TRUE(a.handler.lost().empty());  // b's sender to a never opened

  a.transport->AddPeer(2, b.address());
  a.transport->Send({Msg(1, 2, kCount + 1)});
  ASSERT_TRUE(WaitFor([&] { return b.handler.received().size() == kCount + 1; }));
  EXPECT_EQ(b.handler.lost().size(), 1u);
}

TEST(PeerTransportTest, ReportsUnreachablePeerAndRecoversWhenItReturns) {
  Endpoint a(7, 1);
  int b_port = 0;
  {
    Endpoint b(7, 2);
    b_port = b.port;
  }  // b is gone: its port refuses connections.
  a.transport->AddPeer(2, absl::StrCat("127.0.0.1:", b_port));
  a.transport->Send({Msg(1, 2, 1)});
  ASSERT_TRUE(WaitFor([&] { return a.handler.unreachable(2) > 0; }));
  raft::Message snap;
  snap.set_type(raftpb::MSG_SNAP);
  snap.set_from(1);
  snap.set_to(2);
  a.transport->Send({snap});
  ASSERT_TRUE(WaitFor([&] { return !a.handler.snap_status().empty(); }));
  EXPECT_EQ(a.handler.snap_status()[0].second, raft::SnapshotStatus::kFailure);

  // The peer comes back on the same port; Raft's retries get through.
  Endpoint b(7, 2, 1 << 20, b_port);
  ASSERT_EQ(b.port, b_port);
  b.transport->AddPeer(1, a.address());
  uint64_t index = 100;
  ASSERT_TRUE(WaitFor([&] {
    a.transport->Send({Msg(1, 2, index++)});
    absl::SleepFor(absl::Milliseconds(20));  // pace the retries, as ticks would
    return !b.handler.received().empty();
  }));
}

TEST(PeerTransportTest, ASlowPeerDoesNotStallTheOthers) {
  Endpoint a(7, 1), c(7, 3);
  a.transport->AddPeer(3, c.address());
  c.transport->AddPeer(1, a.address());
  // Peer 2's address accepts nothing; its queue fills and overflows.
  a.transport->AddPeer(2, "127.0.0.1:1");
  for (int i = 0; i < 10000; ++i) a.transport->Send({Msg(1, 2, i)});
  a.transport->Send({Msg(1, 3, 1)});
  ASSERT_TRUE(WaitFor([&] { return c.handler.received().size() == 1; }));
  EXPECT_GT(a.handler.unreachable(2), 0);
}

// A member removed from the cluster is refused on the connection it
// already had open, not only when it dials again.
// a, reading its peers on its own thread or with the member's loop, stops
// taking b's messages once b is removed, although b stays connected.
void RefusesAPeerRemovedWhileConnected(bool loop_reads) {
  Endpoint a(7, 1, 1 << 20, 0, loop_reads), b(7, 2);
  a.transport->AddPeer(2, b.address());
  b.transport->AddPeer(1, a.address());
  b.transport->Send({Msg(2, 1, 1)});
  ASSERT_TRUE(WaitFor([&] { return a.handler.received().size() == 1; }));
  a.transport->RemovePeer(2);
  b.transport->Send({Msg(2, 1, 2)});
  ASSERT_TRUE(WaitFor([&] { return a.transport->refused_batches() == 1; }));
  EXPECT_EQ(a.handler.received().size(), 1u);
}

TEST(PeerTransportTest, RefusesAPeerRemovedWhileConnected) {
  RefusesAPeerRemovedWhileConnected(/*loop_reads=*/false);
}

TEST(PeerTransportTest, TheMembersLoopRefusesAPeerRemovedWhileConnected) {
  RefusesAPeerRemovedWhileConnected(/*loop_reads=*/true);
}

// More peers with bytes waiting than one read round takes (16): the loop
// gets to every one of them, each peer's messages in order.
TEST(PeerTransportTest, TheMembersLoopReadsMorePeersThanOneRoundTakes) {
  constexpr int kPeers = 20;
  constexpr int kEach = 200;
  Endpoint hub(7, 100, 1 << 20, 0, /*loop_reads=*/true);
  std::vector<std::unique_ptr<Endpoint>> peers;
  for (int p = 1; p <= kPeers; ++p) {
    peers.push_back(std::make_unique<Endpoint>(7, p));
    hub.transport->AddPeer(p, peers.back()->address());
    peers.back()->transport->AddPeer(100, hub.address());
  }
  for (int i = 1; i <= kEach; i += 10) {
    for (int p = 1; p <= kPeers; ++p) {
      std::vector<raft::Message> batch;
      for (int j = i; j < i + 10; ++j) batch.push_back(Msg(p, 100, j));
      peers[p - 1]->transport->Send(std::move(batch));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return hub.handler.received().size() == size_t{kPeers * kEach}; }))
      << hub.handler.received().size() << " of " << kPeers * kEach << " messages";
  std::map<uint64_t, uint64_t> last;
  for (const raft::Message& m : hub.handler.received()) {
    ASSERT_EQ(m.index(), last[m.from()] + 1) << "from " << m.from();
    last[m.from()] = m.index();
  }
  EXPECT_EQ(last.size(), size_t{kPeers});
}

// Something that is not a peer of this version (here an HTTP/2 client's
// preface) is refused without a crash, and real peers still get through.
TEST(PeerTransportTest, RefusesAConnectionThatIsNotAPeer) {
  Endpoint a(7, 1), b(7, 2);
  auto fd = DialTcp(a.address(), absl::Seconds(5), -1, TcpLiveness{});
  ASSERT_TRUE(fd.ok()) << fd.status();
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  ASSERT_TRUE(WriteAll(*fd, preface.data(), preface.size()).ok());
  char c;
  EXPECT_EQ(recv(*fd, &c, 1, 0), 0);  // closed without an answer
  close(*fd);
  EXPECT_EQ(a.transport->refused_batches(), 1u);
  a.transport->AddPeer(2, b.address());
  b.transport->AddPeer(1, a.address());
  b.transport->Send({Msg(2, 1, 1)});
  ASSERT_TRUE(WaitFor([&] { return a.handler.received().size() == 1; }));
}

// A listening socket standing in for a peer, driven by hand: it accepts a
// transport's connection, answers its hello and reads its frames raw.
class FakePeer {
 public:
  // rcvbuf > 0 shrinks the accepted sockets' receive buffer, so a sender
  // that outpaces the reader has to queue sooner.
  explicit FakePeer(int rcvbuf = 0) {
    auto fd = ListenTcp("127.0.0.1:0", &port_);
    if (fd.ok()) listener_ = *fd;
    if (rcvbuf > 0) setsockopt(listener_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  ~FakePeer() {
    for (int fd : conns_) close(fd);
    if (listener_ >= 0) close(listener_);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Accepts the next connection and answers its hello with OK; -1 if none
  // comes within timeout.
  int Accept(uint64_t want_from, absl::Duration timeout = testing::kLongTimeout) {
    pollfd p{listener_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return -1;
    const int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) return -1;
    conns_.push_back(fd);
    SetIoTimeout(fd, testing::kLongTimeout);  // a broken test fails, never hangs
    char magic[8];
    peerpb::PeerHello hello;
    if (!ReadFull(fd, magic, sizeof(magic)).ok() || !ReadFrame(fd, 4096, &hello).ok() ||
        hello.from() != want_from || !WriteFrame(fd, peerpb::PeerStatus()).ok()) {
      return -1;
    }
    return fd;
  }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> conns_;
};

// Makes fd's end of a connection drop every packet that reaches it, before
// TCP sees it: nothing is acknowledged, as with a peer that is cut off or
// whose host is down.
bool DropEverythingArriving(int fd) {
  static sock_filter drop[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog prog{1, drop};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0;
}

PeerTransportOptions SenderOptions() {
  PeerTransportOptions o;
  o.cluster_id = 7;
  o.local_id = 1;
  o.logger = raft::DiscardLogger();
  return o;
}

// A transport (member 1) whose peer 2 is a FakePeer, connected: fd is the
// FakePeer's end (-1 if the connection never came).
struct SenderAndFakePeer {
  explicit SenderAndFakePeer(const PeerTransportOptions& o, int rcvbuf = 0)
      : sender(o), peer(rcvbuf) {
    sender.Attach(&handler);
    sender.AddPeer(2, peer.address());
    fd = peer.Accept(1);
  }
  RecordingHandler handler;
  PeerTransport sender;
  FakePeer peer;
  int fd = -1;
};

raft::Message MsgWithData(uint64_t index, size_t bytes) {
  raft::Message m = Msg(1, 2, index);
  m.add_entries()->set_data(std::string(bytes, 'x'));
  return m;
}

// A peer that does not read (paused, or slower than the leader) fills its
// socket; what does not fit is queued and written, in order, once it reads
// again.
TEST(PeerTransportTest, QueuesWhatTheSocketCannotTakeAndWritesItInOrderLater) {
  SenderAndFakePeer c(SenderOptions());
  auto& [handler, sender, peer, fd] = c;
  ASSERT_GE(fd, 0);
  // 32 MiB in 256 batches, far more than the socket buffers hold; the
  // receiver reads nothing yet.
  constexpr int kBatches = 256;
  constexpr size_t kPayload = 128 << 10;
  for (int i = 1; i <= kBatches; ++i) sender.Send({MsgWithData(i, kPayload)});
  EXPECT_EQ(handler.unreachable(2), 0);
  for (int i = 1; i <= kBatches; ++i) {
    peerpb::MessageBatch batch;
    ASSERT_TRUE(ReadFrame(fd, 1 << 30, &batch).ok()) << i;
    ASSERT_EQ(batch.messages_size(), 1);
    ASSERT_EQ(batch.messages(0).index(), static_cast<uint64_t>(i));
    ASSERT_EQ(batch.messages(0).entries(0).data().size(), kPayload);
  }
  EXPECT_EQ(handler.unreachable(2), 0);
}

// One Ready can carry more for a peer than max_queue_bytes (a follower far
// behind): it is cut into frames and all of it goes, none is dropped.
TEST(PeerTransportTest, CutsALargeBatchIntoFramesAndSendsAllOfIt) {
  PeerTransportOptions o = SenderOptions();
  o.max_queue_bytes = 1 << 20;
  o.batch_bytes = 300 << 10;
  SenderAndFakePeer c(o);
  auto& [handler, sender, peer, fd] = c;
  ASSERT_GE(fd, 0);
  constexpr int kMsgs = 32;  // 4 MiB in one call
  std::vector<raft::Message> msgs;
  for (int i = 1; i <= kMsgs; ++i) msgs.push_back(MsgWithData(i, 128 << 10));
  sender.Send(std::move(msgs));
  int frames = 0;
  uint64_t next = 1;
  while (next <= kMsgs) {
    peerpb::MessageBatch batch;
    ASSERT_TRUE(ReadFrame(fd, 1 << 30, &batch).ok()) << next;
    ++frames;
    EXPECT_LE(batch.messages_size(), 2);  // a third 128 KiB would pass 300 KiB
    for (const auto& m : batch.messages()) ASSERT_EQ(m.index(), next++);
  }
  EXPECT_EQ(frames, kMsgs / 2);
  EXPECT_EQ(handler.unreachable(2), 0);
}

// A peer that reads, only slower than the leader writes, keeps a backlog
// that never empties; the queue's limit counts what is still queued, not
// everything that passed through it.
TEST(PeerTransportTest, CountsOnlyWhatIsStillQueuedUnderASteadyBacklog) {
  PeerTransportOptions o = SenderOptions();
  o.max_queue = 300;
  o.max_queue_bytes = size_t{1} << 30;
  SenderAndFakePeer c(o, /*rcvbuf=*/64 << 10);
  auto& [handler, sender, peer, fd] = c;
  ASSERT_GE(fd, 0);
  constexpr size_t kPayload = 64 << 10;
  // 200 frames (12.5 MiB): the socket buffers take a few MiB, the rest is
  // queued. Then 100 rounds of reading 20 and sending 20 more: 2,200
  // messages pass through a queue that holds well under 300 at any time.
  uint64_t sent = 0, read = 0;
  for (int i = 0; i < 200; ++i) sender.Send({MsgWithData(++sent, kPayload)});
  auto read_frames = [&](int n) {
    for (int i = 0; i < n; ++i) {
      peerpb::MessageBatch batch;
      ASSERT_TRUE(ReadFrame(fd, 1 << 30, &batch).ok()) << read;
      ASSERT_EQ(batch.messages_size(), 1);
      ASSERT_EQ(batch.messages(0).index(), ++read);
    }
  };
  for (int round = 0; round < 100; ++round) {
    read_frames(20);
    for (int i = 0; i < 20; ++i) sender.Send({MsgWithData(++sent, kPayload)});
    ASSERT_EQ(handler.unreachable(2), 0) << "round " << round;
  }
  read_frames(200);
  EXPECT_EQ(read, sent);
  EXPECT_EQ(handler.unreachable(2), 0);
}

// A peer cut off mid-connection acknowledges nothing: the connection is
// broken within peer_timeout, reported, and dialed again (where TCP alone
// would retransmit for many minutes before giving up).
TEST(PeerTransportTest, RedialsAPeerThatStopsAcknowledging) {
  PeerTransportOptions o = SenderOptions();
  o.peer_timeout = absl::Seconds(1);
  SenderAndFakePeer c(o);
  auto& [handler, sender, peer, fd] = c;
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(DropEverythingArriving(fd));
  sender.Send({Msg(1, 2, 1)});
  const int again = peer.Accept(1);
  ASSERT_GE(again, 0) << "the unacknowledged connection was never given up";
  EXPECT_GT(handler.unreachable(2), 0);
  sender.Send({Msg(1, 2, 2)});
  peerpb::MessageBatch batch;
  ASSERT_TRUE(ReadFrame(again, 1 << 20, &batch).ok());
  EXPECT_EQ(batch.messages(0).index(), 2u);
}

// The receiving side of a cut-off link: its keepalive probes go
// unanswered, the connection ends with a timeout, and that is not reported
// as the peer closing it (a partition says nothing of the leader's health).
TEST(PeerTransportTest, AConnectionThatTimesOutIsNotReportedLost) {
  PeerTransportOptions o = SenderOptions();
  o.local_id = 2;
  o.peer_timeout = absl::Seconds(1);
  RecordingHandler handler;
  PeerTransport receiver(o);
  receiver.Attach(&handler);
  auto ports = receiver.Listen({"127.0.0.1:0"});
  ASSERT_TRUE(ports.ok()) << ports.status();
  receiver.AddPeer(1, "127.0.0.1:1");  // known; never reached in this test
  auto fd =
      DialTcp(absl::StrCat("127.0.0.1:", ports->front()), absl::Seconds(5), -1, TcpLiveness{});
  ASSERT_TRUE(fd.ok()) << fd.status();
  SetIoTimeout(*fd, testing::kLongTimeout);
  peerpb::PeerHello hello;
  hello.set_cluster_id(7);
  hello.set_from(1);
  hello.set_to(2);
  std::string out = "ARBPEER1";
  AppendFrame(hello, &out);
  peerpb::MessageBatch batch;
  *batch.add_messages() = Msg(1, 2, 1);
  AppendFrame(batch, &out);
  ASSERT_TRUE(WriteAll(*fd, out.data(), out.size()).ok());
  peerpb::PeerStatus answer;
  ASSERT_TRUE(ReadFrame(*fd, 4096, &answer).ok());
  ASSERT_EQ(answer.code(), 0);
  ASSERT_TRUE(WaitFor([&] { return handler.received().size() == 1; }));
  ASSERT_TRUE(DropEverythingArriving(*fd));
  ASSERT_TRUE(WaitFor([&] { return receiver.inbound_streams_closed() == 1; }))
      << "the silent connection was never given up";
  EXPECT_TRUE(handler.lost().empty());
  close(*fd);
}

}  // namespace
}  // namespace arbiter::server
