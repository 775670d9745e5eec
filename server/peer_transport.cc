#include "server/peer_transport.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/peer.grpc.pb.h"
#include "server/thread_name.h"

namespace arbiter::server {
namespace {

void Log(raft::Logger* logger, raft::LogLevel level, const std::string& msg) {
  if (logger->Enabled(level)) logger->Log(level, msg);
}

}  // namespace

grpc::ChannelArguments PeerChannelArguments(const PeerTransportOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_timeout)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // gRPC's own reconnect backoff defaults to a minute or more; a member
  // that restarts must be reached again within an election timeout.
  const int min_ms = static_cast<int>(absl::ToInt64Milliseconds(o.min_backoff));
  const int max_ms = static_cast<int>(absl::ToInt64Milliseconds(o.max_backoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, min_ms);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, min_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
  // One connection per peer, not shared with other channels to it.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

void ConfigurePeerServer(const PeerTransportOptions& o, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(-1);
  builder->SetMaxSendMessageSize(-1);
  // Peers ping every keepalive_time; the defaults would call that abuse.
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time) / 2));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

// ---------------------------------------------------------------------------
// Sender: the queue, stream thread and snapshot thread of one peer.
// ---------------------------------------------------------------------------

class PeerTransport::Sender {
 public:
  Sender(PeerTransport* t, uint64_t peer, std::string address)
      : t_(t), peer_(peer), address_(std::move(address)) {
    stream_thread_ = std::thread([this] {
      SetThreadName("peer-send");
      RunStream();
    });
    snap_thread_ = std::thread([this] {
      SetThreadName("peer-snapshot");
      RunSnapshots();
    });
  }

  ~Sender() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
      if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
      if (snap_ctx_ != nullptr) snap_ctx_->TryCancel();
      cv_.SignalAll();
    }
    stream_thread_.join();
    snap_thread_.join();
    // What is left was never sent.
    for (size_t i = 0; i < queue_.size(); ++i) t_->ReportUnreachable(peer_);
    for (size_t i = 0; i < snaps_.size(); ++i) {
      t_->ReportUnreachable(peer_);
      t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFailure);
    }
  }

  void SetAddress(const std::string& address) {
    absl::MutexLock l(&mu_);
    if (address == address_) return;
    address_ = address;
    stub_.reset();
    if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
  }

  void Enqueue(raft::Message m) {
    absl::MutexLock l(&mu_);
    if (m.type() == raftpb::MSG_SNAP) {
      if (!snaps_.empty()) {
        // Raft sends at most one snapshot per follower at a time; a newer
        // one supersedes the queued one, which counts as failed.
        t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFailure);
        snaps_.clear();
      }
      snaps_.push_back(std::move(m));
      cv_.SignalAll();
      return;
    }
    if (queue_.size() >= t_->options_.max_queue) {
      ++dropped_;
      t_->ReportUnreachable(peer_);
      return;
    }
    queue_.push_back(std::move(m));
    cv_.SignalAll();
  }

 private:
  std::shared_ptr<peerpb::RaftPeer::Stub> Stub() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stub_ == nullptr) {
      auto channel = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(),
                                               PeerChannelArguments(t_->options_));
      stub_ = std::make_shared<peerpb::RaftPeer::Stub>(channel);
    }
    return stub_;
  }

  // Waits for queued messages and takes a batch of them. False on stop.
  bool TakeBatch(peerpb::MessageBatch* batch) {
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
    mu_.Await(absl::Condition(&ready));
    if (stop_) return false;
    size_t bytes = 0;
    while (!queue_.empty() &&
           (batch->messages_size() == 0 || bytes < t_->options_.max_batch_bytes)) {
      bytes += queue_.front().ByteSizeLong();
      *batch->add_messages() = std::move(queue_.front());
      queue_.pop_front();
    }
    return true;
  }

  // Sleeps for backoff unless stopped first. False on stop.
  bool Backoff(absl::Duration d) {
    absl::MutexLock l(&mu_);
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    return !mu_.AwaitWithTimeout(absl::Condition(&stopped), d);
  }

  void RunStream() {
    const PeerTransportOptions& o = t_->options_;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientWriter<peerpb::MessageBatch>> writer;
    peerpb::StreamAck ack;
    absl::Duration backoff = o.min_backoff;
    absl::BitGen rng;
    bool logged_failure = false;
    while (true) {
      peerpb::MessageBatch batch;
      if (!TakeBatch(&batch)) break;
      batch.set_cluster_id(o.cluster_id);
      batch.set_from(o.local_id);
      batch.set_to(peer_);
      if (writer == nullptr) {
        ctx = std::make_unique<grpc::ClientContext>();
        absl::MutexLock l(&mu_);
        if (stop_) break;
        stream_ctx_ = ctx.get();
        writer = Stub()->Stream(ctx.get(), &ack);
      }
      if (writer->Write(batch)) {
        backoff = o.min_backoff;
        if (logged_failure) {
          Log(t_->logger_, raft::LogLevel::kInfo,
              absl::StrFormat("peer %x: stream to %x is up again", o.local_id, peer_));
          logged_failure = false;
        }
        continue;
      }
      // The stream broke: this batch is lost. Finish tells why.
      grpc::Status st = writer->Finish();
      {
        absl::MutexLock l(&mu_);
        stream_ctx_ = nullptr;
      }
      writer.reset();
      ctx.reset();
      t_->ReportUnreachable(peer_);
      if (!logged_failure) {
        Log(t_->logger_, raft::LogLevel::kWarning,
            absl::StrFormat("peer %x: stream to %x failed: %s (code %d); retrying", o.local_id,
                            peer_, st.error_message(), static_cast<int>(st.error_code())));
        logged_failure = true;
      }
      const double jitter = absl::Uniform(rng, 0.5, 1.0);
      if (!Backoff(backoff * jitter)) break;
      backoff = std::min(backoff * 2, o.max_backoff);
    }
    if (writer != nullptr) {
      ctx->TryCancel();
      writer->Finish();
    }
    absl::MutexLock l(&mu_);
    stream_ctx_ = nullptr;
  }

  void RunSnapshots() {
    while (true) {
      raft::Message m;
      std::shared_ptr<peerpb::RaftPeer::Stub> stub;
      grpc::ClientContext ctx;
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !snaps_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (stop_) return;
        m = std::move(snaps_.front());
        snaps_.pop_front();
        stub = Stub();
        snap_ctx_ = &ctx;
      }
      grpc::Status st = SendSnapshot(stub.get(), &ctx, std::move(m));
      {
        absl::MutexLock l(&mu_);
        snap_ctx_ = nullptr;
      }
      if (st.ok()) {
        t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFinish);
      } else {
        Log(t_->logger_, raft::LogLevel::kWarning,
            absl::StrFormat("peer %x: snapshot to %x failed: %s", t_->options_.local_id, peer_,
                            st.error_message()));
        t_->ReportUnreachable(peer_);
        t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFailure);
      }
    }
  }

  grpc::Status SendSnapshot(peerpb::RaftPeer::Stub* stub, grpc::ClientContext* ctx,
                            raft::Message m) {
    const PeerTransportOptions& o = t_->options_;
    std::string data = std::move(*m.mutable_snapshot()->mutable_data());
    m.mutable_snapshot()->clear_data();
    peerpb::SnapshotAck ack;
    auto writer = stub->Snapshot(ctx, &ack);
    size_t off = 0;
    bool first = true;
    while (first || off < data.size()) {
      peerpb::SnapshotChunk chunk;
      chunk.set_cluster_id(o.cluster_id);
      chunk.set_from(o.local_id);
      chunk.set_to(peer_);
      if (first) {
        *chunk.mutable_message() = m;
        chunk.set_total_size(data.size());
        first = false;
      }
      const size_t n = std::min(o.snapshot_chunk_bytes, data.size() - off);
      chunk.set_data(data.substr(off, n));
      off += n;
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  PeerTransport* const t_;
  const uint64_t peer_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::string address_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<peerpb::RaftPeer::Stub> stub_ ABSL_GUARDED_BY(mu_);
  std::deque<raft::Message> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<raft::Message> snaps_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The calls in flight, so a stop can cancel them.
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* snap_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread stream_thread_;
  std::thread snap_thread_;
};

// ---------------------------------------------------------------------------
// Service: what peers call.
// ---------------------------------------------------------------------------

// Messages a follower passes on to the leader it knows with their
// proposer's id kept (raft_follower.cc), so they may come from another
// member than the sender when a stale follower forwards to a follower that
// forwards again. Everything else is written by the sender itself.
namespace {
bool IsForwarded(raft::MessageType t) {
  return t == raftpb::MSG_PROP || t == raftpb::MSG_READ_INDEX || t == raftpb::MSG_TRANSFER_LEADER;
}
}  // namespace

class PeerTransport::Service final : public peerpb::RaftPeer::Service {
 public:
  explicit Service(PeerTransport* t) : t_(t) {}

  grpc::Status Stream(grpc::ServerContext*, grpc::ServerReader<peerpb::MessageBatch>* reader,
                      peerpb::StreamAck*) override {
    // The sender, once its first batch is accepted. When the stream ends
    // from its side (Read fails: it cancelled, or its process died and the
    // kernel closed the connection) the transport counts the stream
    // closed; one this member refuses is not the peer going away.
    uint64_t peer = raft::kNone;
    bool refused = false;
    absl::Cleanup closed = [&] {
      if (peer != raft::kNone) t_->InboundStreamClosed(peer, /*by_peer=*/!refused);
    };
    peerpb::MessageBatch batch;
    while (reader->Read(&batch)) {
      grpc::Status s = Check(batch.cluster_id(), batch.from(), batch.to());
      if (s.ok() && peer != raft::kNone && batch.from() != peer) {
        s = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "sender changed within a stream");
      }
      if (s.ok()) s = Deliver(batch);
      if (!s.ok()) {
        refused = true;
        t_->CountRefused();
        return s;
      }
      if (peer == raft::kNone) {
        peer = batch.from();
        t_->InboundStreamOpened(peer);
      }
      batch.Clear();
    }
    return grpc::Status::OK;
  }

  grpc::Status Snapshot(grpc::ServerContext*, grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                        peerpb::SnapshotAck*) override {
    peerpb::SnapshotChunk chunk;
    if (!reader->Read(&chunk)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty snapshot stream");
    }
    if (grpc::Status s = Check(chunk.cluster_id(), chunk.from(), chunk.to()); !s.ok()) {
      t_->CountRefused();
      return s;
    }
    raft::Message m = std::move(*chunk.mutable_message());
    const uint64_t total = chunk.total_size();
    if (m.type() != raftpb::MSG_SNAP || m.from() != chunk.from() || m.to() != chunk.to()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first chunk is not a MsgSnap");
    }
    if (total > t_->options_.max_snapshot_bytes) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("snapshot of ", total, " bytes is over the limit"));
    }
    std::string data;
    data.reserve(total);
    while (true) {
      if (data.size() + chunk.data().size() > total) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "snapshot longer than announced");
      }
      data.append(chunk.data());
      if (data.size() == total) break;
      if (!reader->Read(&chunk)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "snapshot stream ended early");
      }
    }
    *m.mutable_snapshot()->mutable_data() = std::move(data);
    std::vector<raft::Message> msgs;
    msgs.push_back(std::move(m));
    t_->Deliver(std::move(msgs));
    return grpc::Status::OK;
  }

 private:
  grpc::Status Deliver(peerpb::MessageBatch& batch) {
    std::vector<raft::Message> msgs;
    msgs.reserve(batch.messages_size());
    for (raft::Message& m : *batch.mutable_messages()) {
      if (m.to() != batch.to() || (m.from() != batch.from() && !IsForwarded(m.type()))) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "message addressed differently from its batch");
      }
      msgs.push_back(std::move(m));
    }
    t_->Deliver(std::move(msgs));
    return grpc::Status::OK;
  }

  grpc::Status Check(uint64_t cluster_id, uint64_t from, uint64_t to) const {
    const PeerTransportOptions& o = t_->options_;
    if (cluster_id != o.cluster_id) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrFormat("cluster ID mismatch: this member is in cluster %x, the sender in %x",
                          o.cluster_id, cluster_id));
    }
    if (to != o.local_id) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrFormat("messages for member %x reached member %x", to, o.local_id));
    }
    if (!t_->IsPeer(from)) {
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          absl::StrFormat("member %x is not a member of cluster %x", from, o.cluster_id));
    }
    return grpc::Status::OK;
  }

  PeerTransport* const t_;
};

// ---------------------------------------------------------------------------
// PeerTransport
// ---------------------------------------------------------------------------

PeerTransport::PeerTransport(const PeerTransportOptions& options)
    : options_(options),
      logger_(options.logger != nullptr ? options.logger
                                        : raft::StderrLogger(raft::LogLevel::kWarning)),
      service_(std::make_unique<Service>(this)) {}

PeerTransport::~PeerTransport() {
  std::map<uint64_t, std::unique_ptr<Sender>> senders;
  {
    absl::MutexLock l(&mu_);
    senders.swap(senders_);
  }
  senders.clear();
}

void PeerTransport::AddPeer(uint64_t id, const std::string& address) {
  if (id == options_.local_id) return;
  absl::MutexLock l(&mu_);
  auto it = senders_.find(id);
  if (it != senders_.end()) {
    it->second->SetAddress(address);
    return;
  }
  senders_[id] = std::make_unique<Sender>(this, id, address);
}

void PeerTransport::RemovePeer(uint64_t id) {
  std::unique_ptr<Sender> s;
  {
    absl::MutexLock l(&mu_);
    auto it = senders_.find(id);
    if (it == senders_.end()) return;
    s = std::move(it->second);
    senders_.erase(it);
  }
  // Joined outside mu_: its threads may report through the handler.
}

std::vector<uint64_t> PeerTransport::Peers() const {
  absl::MutexLock l(&mu_);
  std::vector<uint64_t> out;
  for (const auto& [id, s] : senders_) out.push_back(id);
  return out;
}

bool PeerTransport::IsPeer(uint64_t id) const {
  absl::MutexLock l(&mu_);
  return senders_.count(id) > 0;
}

void PeerTransport::Attach(TransportHandler* handler) {
  absl::WriterMutexLock l(&handler_mu_);
  handler_ = handler;
}

void PeerTransport::Detach() {
  absl::WriterMutexLock l(&handler_mu_);
  handler_ = nullptr;
}

void PeerTransport::Send(std::vector<raft::Message> msgs) {
  absl::MutexLock l(&mu_);
  for (raft::Message& m : msgs) {
    auto it = senders_.find(m.to());
    if (it == senders_.end()) {
      // Not a peer (yet): nobody to send to.
      ReportUnreachable(m.to());
      if (m.type() == raftpb::MSG_SNAP) ReportSnapshot(m.to(), raft::SnapshotStatus::kFailure);
      continue;
    }
    it->second->Enqueue(std::move(m));
  }
}

grpc::Service* PeerTransport::service() { return service_.get(); }

uint64_t PeerTransport::refused_batches() const {
  absl::MutexLock l(&mu_);
  return refused_;
}

void PeerTransport::CountRefused() {
  absl::MutexLock l(&mu_);
  ++refused_;
}

void PeerTransport::Deliver(std::vector<raft::Message> msgs) {
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnMessages(std::move(msgs));
}

void PeerTransport::ReportUnreachable(uint64_t peer) {
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnUnreachable(peer);
}

void PeerTransport::InboundStreamOpened(uint64_t peer) {
  absl::MutexLock l(&mu_);
  ++inbound_streams_[peer];
}

void PeerTransport::InboundStreamClosed(uint64_t peer, bool by_peer) {
  {
    absl::MutexLock l(&mu_);
    auto it = inbound_streams_.find(peer);
    if (it == inbound_streams_.end()) return;
    if (--it->second > 0) {
      // The peer already reconnected (a new stream overlapping the old):
      // it is still there.
      return;
    }
    inbound_streams_.erase(it);
    if (!by_peer || senders_.count(peer) == 0) return;
  }
  Log(logger_, raft::LogLevel::kInfo,
      absl::StrFormat("peer %x: connection from %x closed", options_.local_id, peer));
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnConnectionLost(peer);
}

void PeerTransport::ReportSnapshot(uint64_t peer, raft::SnapshotStatus status) {
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnSnapshotStatus(peer, status);
}

}  // namespace arbiter::server
