#include "server/local_transport.h"

#include <utility>

#include "server/thread_name.h"

namespace arbiter::server {

class LocalNetwork::Endpoint_ final : public Transport {
 public:
  Endpoint_(LocalNetwork* net, uint64_t id) : net_(net), id_(id) {}
  void Send(std::vector<raft::Message> msgs) override { net_->SendFrom(id_, std::move(msgs)); }

 private:
  LocalNetwork* const net_;
  const uint64_t id_;
};

LocalNetwork::LocalNetwork(const Options& options) : options_(options) {
  delivery_thread_ = std::thread([this] {
    SetThreadName("local-delivery");
    DeliveryLoop();
  });
}

LocalNetwork::~LocalNetwork() {
  {
    absl::MutexLock l(&mu_);
    shutdown_ = true;
    work_cv_.SignalAll();
  }
  delivery_thread_.join();
}

std::unique_ptr<Transport> LocalNetwork::Endpoint(uint64_t id) {
  return std::make_unique<Endpoint_>(this, id);
}

void LocalNetwork::Attach(uint64_t id, TransportHandler* handler) {
  absl::MutexLock l(&mu_);
  Peer& p = PeerLocked(id);
  p.handler = handler;
  p.queue.clear();
}

void LocalNetwork::Detach(uint64_t id) {
  // Deliveries run under mu_, so once we hold it none is in progress.
  absl::MutexLock l(&mu_);
  Peer& p = PeerLocked(id);
  p.handler = nullptr;
  dropped_ += p.queue.size();
  p.queue.clear();
}

void LocalNetwork::Partition(const std::vector<std::vector<uint64_t>>& groups) {
  absl::MutexLock l(&mu_);
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = 0; j < groups.size(); ++j) {
      if (i == j) continue;
      for (uint64_t a : groups[i]) {
        for (uint64_t b : groups[j]) cut_.insert({a, b});
      }
    }
  }
}

void LocalNetwork::Isolate(uint64_t id) {
  absl::MutexLock l(&mu_);
  for (const auto& [other, unused] : peers_) {
    if (other == id) continue;
    cut_.insert({id, other});
    cut_.insert({other, id});
  }
}

void LocalNetwork::Heal() {
  absl::MutexLock l(&mu_);
  cut_.clear();
}

uint64_t LocalNetwork::delivered() const {
  absl::MutexLock l(&mu_);
  return delivered_;
}

uint64_t LocalNetwork::snapshots_delivered() const {
  absl::MutexLock l(&mu_);
  return snapshots_delivered_;
}

uint64_t LocalNetwork::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

bool LocalNetwork::Cut(uint64_t from, uint64_t to) const { return cut_.count({from, to}) > 0; }

LocalNetwork::Peer& LocalNetwork::PeerLocked(uint64_t id) { return peers_[id]; }

void LocalNetwork::DropLocked(const raft::Message& m) {
  ++dropped_;
  auto it = peers_.find(m.from());
  if (it == peers_.end() || it->second.handler == nullptr) return;
  it->second.handler->OnUnreachable(m.to());
  if (m.type() == raftpb::MSG_SNAP) {
    it->second.handler->OnSnapshotStatus(m.to(), raft::SnapshotStatus::kFailure);
  }
}

bool LocalNetwork::HasWorkLocked() const {
  for (const auto& [id, p] : peers_) {
    if (!p.queue.empty()) return true;
  }
  return false;
}

void LocalNetwork::SendFrom(uint64_t from, std::vector<raft::Message> msgs) {
  absl::MutexLock l(&mu_);
  bool queued = false;
  for (raft::Message& m : msgs) {
    Peer& dst = PeerLocked(m.to());
    if (dst.handler == nullptr || Cut(from, m.to()) || dst.queue.size() >= options_.max_queue) {
      DropLocked(m);
      continue;
    }
    dst.queue.push_back(std::move(m));
    queued = true;
  }
  if (queued) work_cv_.Signal();
}

void LocalNetwork::DeliveryLoop() {
  absl::MutexLock l(&mu_);
  while (true) {
    while (!shutdown_ && !HasWorkLocked()) work_cv_.Wait(&mu_);
    if (shutdown_) return;
    for (auto& [id, p] : peers_) {
      if (p.queue.empty()) continue;
      std::vector<raft::Message> batch;
      std::vector<uint64_t> snaps_from;
      while (!p.queue.empty()) {
        raft::Message m = std::move(p.queue.front());
        p.queue.pop_front();
        // Checked again: the link may have been cut while m was queued.
        if (p.handler == nullptr || Cut(m.from(), id)) {
          DropLocked(m);
          continue;
        }
        if (m.type() == raftpb::MSG_SNAP) snaps_from.push_back(m.from());
        batch.push_back(std::move(m));
      }
      if (batch.empty()) continue;
      delivered_ += batch.size();
      snapshots_delivered_ += snaps_from.size();
      p.handler->OnMessages(std::move(batch));
      for (uint64_t from : snaps_from) {
        auto it = peers_.find(from);
        if (it != peers_.end() && it->second.handler != nullptr) {
          it->second.handler->OnSnapshotStatus(id, raft::SnapshotStatus::kFinish);
        }
      }
    }
  }
}

}  // namespace arbiter::server
