#include "server/maintenance_service.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/errors.h"
#include "server/etcd_errors.h"

namespace arbiter::server {
namespace {

// etcd's default request timeout when the client sets no deadline.
constexpr absl::Duration kDefaultTimeout = absl::Seconds(7);

absl::Time Deadline(const grpc::ServerContext* ctx) {
  const absl::Time client = absl::FromChrono(ctx->deadline());
  return std::min(client, absl::Now() + kDefaultTimeout);
}

// The answer of a method this server does not serve, in the words of the
// server's answer for methods of services it does not register.
grpc::Status NotServed(const char* method) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat(method, " is not implemented by this Arbiter server"));
}

}  // namespace

void FillHeader(ArbiterServer* server, const StoreInfo* store, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(server->identity().cluster_id);
  h->set_member_id(server->identity().member_id);
  h->set_raft_term(server->member()->Status().term);
  h->set_revision(store->CurrentRevision());
}

grpc::Status MaintenanceService::Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                                        etcdserverpb::StatusResponse* resp) {
  const MemberStatus st = server_->member()->Status();
  FillHeader(server_, store_, resp->mutable_header());
  resp->set_version(kEtcdApiVersion);
  resp->set_dbsize(store_->DbSize());
  resp->set_dbsizeinuse(store_->DbSize());
  resp->set_leader(st.leader);
  resp->set_raftindex(st.commit);
  resp->set_raftterm(st.term);
  resp->set_raftappliedindex(st.applied);
  const auto& learners = st.conf_state.learners();
  resp->set_islearner(std::find(learners.begin(), learners.end(), st.id) != learners.end());
  if (st.leader == 0) resp->add_errors("etcdserver: no leader");
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::MoveLeader(grpc::ServerContext* ctx,
                                            const etcdserverpb::MoveLeaderRequest* req,
                                            etcdserverpb::MoveLeaderResponse*) {
  const MemberStatus st = server_->member()->Status();
  if (st.state != raft::StateType::kLeader) return etcd::ErrNotLeader();
  const auto& voters = st.conf_state.voters();
  if (req->targetid() == 0 ||
      std::find(voters.begin(), voters.end(), req->targetid()) == voters.end()) {
    return etcd::ErrBadLeaderTransferee();
  }
  // Already there: etcd waits until the transferee leads, which it does.
  if (req->targetid() == st.id) return grpc::Status::OK;
  absl::Status s = server_->member()->TransferLeadership(req->targetid(), Deadline(ctx));
  // etcd does not map this error to a gRPC code, so clients see Unknown.
  if (IsTimeout(s)) {
    return grpc::Status(grpc::StatusCode::UNKNOWN,
                        "etcdserver: request timed out, leader transfer took too long");
  }
  if (!s.ok()) return etcd::FromMemberError(s);
  // etcd's MoveLeaderResponse carries no header (as AlarmResponse).
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::HashKV(grpc::ServerContext*,
                                        const etcdserverpb::HashKVRequest* req,
                                        etcdserverpb::HashKVResponse* resp) {
  uint32_t hash = 0;
  int64_t compact = 0;
  absl::Status s = store_->HashKv(req->revision(), &hash, &compact);
  if (!s.ok()) return etcd::FromStatus(s);
  FillHeader(server_, store_, resp->mutable_header());
  resp->set_hash(hash);
  resp->set_compact_revision(compact);
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Alarm(grpc::ServerContext*, const etcdserverpb::AlarmRequest*,
                                       etcdserverpb::AlarmResponse*) {
  // No alarm is ever raised yet; etcd's AlarmResponse carries no header.
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Defragment(grpc::ServerContext*,
                                            const etcdserverpb::DefragmentRequest*,
                                            etcdserverpb::DefragmentResponse* resp) {
  // Nothing to rewrite (see the header); the answer is etcd's.
  FillHeader(server_, store_, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Hash(grpc::ServerContext*, const etcdserverpb::HashRequest*,
                                      etcdserverpb::HashResponse* resp) {
  // etcd hashes its whole backend file, which has no counterpart here: the
  // digest is HashKV's at the current revision, which members that applied
  // the same log agree on (its value is not etcd's Hash).
  uint32_t hash = 0;
  int64_t compact = 0;
  absl::Status s = store_->HashKv(0, &hash, &compact);
  if (!s.ok()) return etcd::FromStatus(s);
  FillHeader(server_, store_, resp->mutable_header());
  resp->set_hash(hash);
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Snapshot(grpc::ServerContext*,
                                          const etcdserverpb::SnapshotRequest*,
                                          grpc::ServerWriter<etcdserverpb::SnapshotResponse>*) {
  return NotServed("/etcdserverpb.Maintenance/Snapshot");
}

std::map<uint64_t, etcdserverpb::Member> ClusterService::Members() const {
  std::map<uint64_t, etcdserverpb::Member> members;
  for (const auto& [mid, peer] : server_->identity().peers) {
    etcdserverpb::Member& m = members[mid];
    m.set_id(mid);
    m.set_name(peer.name);
    for (const Url& u : peer.peer_urls) m.add_peerurls(u.ToString());
  }
  for (const internalpb::MemberAttributes& a : store_->Members()) {
    if (a.removed()) {
      members.erase(a.id());
      continue;
    }
    etcdserverpb::Member& m = members[a.id()];
    m.set_id(a.id());
    m.set_name(a.name());
    m.mutable_peerurls()->CopyFrom(a.peer_urls());
    m.mutable_clienturls()->CopyFrom(a.client_urls());
    m.set_islearner(a.is_learner());
  }
  return members;
}

grpc::Status ClusterService::MemberList(grpc::ServerContext*,
                                        const etcdserverpb::MemberListRequest*,
                                        etcdserverpb::MemberListResponse* resp) {
  FillHeader(server_, store_, resp->mutable_header());
  // etcd's Cluster responses carry no revision.
  resp->mutable_header()->set_revision(0);
  for (auto& [mid, m] : Members()) *resp->add_members() = std::move(m);
  return grpc::Status::OK;
}

grpc::Status ClusterService::RefuseChange(uint64_t id, const char* method) const {
  if (Members().count(id) == 0) return etcd::ErrMemberNotFound();
  return NotServed(method);
}

grpc::Status ClusterService::MemberAdd(grpc::ServerContext*, const etcdserverpb::MemberAddRequest*,
                                       etcdserverpb::MemberAddResponse*) {
  return NotServed("/etcdserverpb.Cluster/MemberAdd");
}

grpc::Status ClusterService::MemberRemove(grpc::ServerContext*,
                                          const etcdserverpb::MemberRemoveRequest* req,
                                          etcdserverpb::MemberRemoveResponse*) {
  return RefuseChange(req->id(), "/etcdserverpb.Cluster/MemberRemove");
}

grpc::Status ClusterService::MemberUpdate(grpc::ServerContext*,
                                          const etcdserverpb::MemberUpdateRequest* req,
                                          etcdserverpb::MemberUpdateResponse*) {
  return RefuseChange(req->id(), "/etcdserverpb.Cluster/MemberUpdate");
}

grpc::Status ClusterService::MemberPromote(grpc::ServerContext*,
                                           const etcdserverpb::MemberPromoteRequest* req,
                                           etcdserverpb::MemberPromoteResponse*) {
  return RefuseChange(req->id(), "/etcdserverpb.Cluster/MemberPromote");
}

}  // namespace arbiter::server
