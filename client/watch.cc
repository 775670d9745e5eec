#include "client/watch.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>
#include <deque>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/rpc.grpc.pb.h"

namespace arbiter::client {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

using Stream = grpc::ClientReaderWriter<WatchRequest, WatchResponse>;

struct WatchEndpoint {
  std::string name;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub;
};

// One opened stream. Requests are written by whichever thread has one to
// send, one at a time; `finished` is set before Finish so no write races it.
struct Conn {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream;
  std::string endpoint;
  absl::Mutex write_mu;
  bool finished ABSL_GUARDED_BY(write_mu) = false;

  bool Write(const WatchRequest& request) {
    absl::MutexLock lock(&write_mu);
    if (finished) return false;
    return stream->Write(request);
  }
};

// A watcher as the stream sees it.
struct WatcherState {
  int64_t id = 0;
  WatchOptions options;
  // The revision to resume from: set at the first creation and moved past
  // every delivered event. 0 until created.
  int64_t next_rev = 0;
  bool created_once = false;
  // The server's id on the current stream; -1 when not created there.
  int64_t server_id = -1;
  // Fragments of a response not yet complete.
  bool has_partial = false;
  WatchResponse partial;
  std::deque<WatchResponse> queue;
  // No more responses will be queued; Next returns `final` when the queue
  // is empty.
  bool ended = false;
  absl::Status final;
};

bool Halts(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return true;
    default:
      return false;
  }
}

absl::Status Closed() { return absl::CancelledError("watcher is closed"); }

WatchRequest CreateRequest(const WatcherState& w) {
  WatchRequest request;
  etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
  create->set_key(w.options.key);
  create->set_range_end(w.options.range_end);
  create->set_start_revision(w.next_rev > 0 ? w.next_rev : w.options.start_revision);
  create->set_prev_kv(w.options.prev_kv);
  create->set_progress_notify(w.options.progress_notify);
  create->set_fragment(w.options.fragment);
  if (w.options.no_put) create->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  if (w.options.no_delete) create->add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  return request;
}

WatchRequest CancelRequest(int64_t server_id) {
  WatchRequest request;
  request.mutable_cancel_request()->set_watch_id(server_id);
  return request;
}

// The state shared by the stream, its reader thread and its watchers.
class Core {
 public:
  explicit Core(const ClientOptions& options) : options_(options) {}

  absl::Status Init() {
    if (options_.endpoints.empty()) return absl::InvalidArgumentError("no endpoints");
    for (const std::string& name : options_.endpoints) {
      absl::StatusOr<std::string> target = EndpointTarget(name);
      if (!target.ok()) return target.status();
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(INT_MAX);
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      // A member that stops answering (frozen, cut off) would hold a watch
      // forever: pings on the open stream find it out, so the stream moves
      // on.
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                  static_cast<int>(absl::ToInt64Milliseconds(options_.keepalive_time)));
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                  static_cast<int>(absl::ToInt64Milliseconds(options_.keepalive_timeout)));
      args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
      WatchEndpoint endpoint;
      endpoint.name = name;
      endpoint.channel =
          grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(), args);
      endpoint.stub = etcdserverpb::Watch::NewStub(endpoint.channel);
      endpoints_.push_back(std::move(endpoint));
    }
    return absl::OkStatus();
  }

  // The reader thread: opens streams until closed or halted.
  void Run();

  absl::StatusOr<std::shared_ptr<WatcherState>> Add(const WatchOptions& options) {
    std::vector<WatchRequest> out;
    std::shared_ptr<Conn> conn;
    std::shared_ptr<WatcherState> w;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return absl::InvalidArgumentError("watch stream is closed");
      if (!halted_.ok()) return absl::InvalidArgumentError(halted_.message());
      w = std::make_shared<WatcherState>();
      w->id = next_id_++;
      w->options = options;
      watchers_[w->id] = w;
      pending_.push_back(w);
      SendNextCreate(&out);
      conn = conn_;
    }
    WriteAll(conn, out);
    return w;
  }

  absl::StatusOr<WatchResponse> Next(WatcherState& w, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    const auto ready = [&w]()
                           ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !w.queue.empty() || w.ended; };
    if (!mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
      return absl::DeadlineExceededError("no watch response before the deadline");
    }
    if (w.queue.empty()) return w.final;
    WatchResponse response = std::move(w.queue.front());
    w.queue.pop_front();
    return response;
  }

  void Cancel(WatcherState& w) {
    std::shared_ptr<Conn> conn;
    std::vector<WatchRequest> out;
    {
      absl::MutexLock lock(&mu_);
      if (w.ended) {
        w.queue.clear();
        w.final = Closed();
        return;
      }
      w.queue.clear();
      EndLocked(w, Closed());
      if (w.server_id >= 0) {
        out.push_back(CancelRequest(w.server_id));
        by_server_.erase(w.server_id);
        w.server_id = -1;
      }
      conn = conn_;
    }
    WriteAll(conn, out);
  }

  absl::Status RequestProgress() {
    std::shared_ptr<Conn> conn;
    {
      absl::MutexLock lock(&mu_);
      const auto open = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return conn_ != nullptr || closing_ || !halted_.ok();
      };
      mu_.AwaitWithTimeout(absl::Condition(&open), options_.call_timeout);
      conn = conn_;
    }
    if (conn == nullptr) return absl::UnavailableError("no watch stream is open");
    WatchRequest request;
    request.mutable_progress_request();
    if (!conn->Write(request)) return absl::UnavailableError("the watch stream failed");
    return absl::OkStatus();
  }

  void Close() {
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      closing_ = true;
      if (conn_ != nullptr) conn_->ctx.TryCancel();
      for (auto& [id, w] : watchers_) EndQuietly(*w, absl::CancelledError("watch stream closed"));
      watchers_.clear();
    }
  }

  int streams_opened() const {
    absl::MutexLock lock(&mu_);
    return streams_opened_;
  }
  std::string current_endpoint() const {
    absl::MutexLock lock(&mu_);
    return conn_ == nullptr ? "" : conn_->endpoint;
  }

 private:
  static void WriteAll(const std::shared_ptr<Conn>& conn, const std::vector<WatchRequest>& out) {
    if (conn == nullptr) return;
    for (const WatchRequest& request : out) {
      if (!conn->Write(request)) return;
    }
  }

  // Waits for the channel to connect, giving up at the deadline or when
  // the stream is closed.
  bool WaitConnected(grpc::Channel& channel, absl::Time deadline) {
    grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY) {
      if (state == GRPC_CHANNEL_SHUTDOWN || IsClosing()) return false;
      const absl::Time until = std::min(deadline, absl::Now() + absl::Milliseconds(50));
      if (!channel.WaitForStateChange(state, absl::ToChronoTime(until)) &&
          absl::Now() >= deadline) {
        return false;
      }
      state = channel.GetState(/*try_to_connect=*/true);
    }
    return true;
  }

  bool IsClosing() {
    absl::MutexLock lock(&mu_);
    return closing_;
  }

  // Sleeps for `d` unless the stream is closed first.
  void Pause(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&closing_), d);
  }

  void Deliver(WatcherState& w, WatchResponse response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (w.ended) return;
    response.set_watch_id(w.id);
    w.queue.push_back(std::move(response));
  }

  void EndQuietly(WatcherState& w, absl::Status final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (w.ended) return;
    w.ended = true;
    w.final = std::move(final);
  }

  void EndLocked(WatcherState& w, absl::Status final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EndQuietly(w, std::move(final));
    watchers_.erase(w.id);
  }

  // Sends the create request of the next pending watcher, if none is
  // awaiting its creation: the server answers creates in order, one
  // "created" response each, so one at a time keeps them matched.
  void SendNextCreate(std::vector<WatchRequest>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (conn_ == nullptr || in_flight_ != nullptr) return;
    while (!pending_.empty()) {
      std::shared_ptr<WatcherState> w = std::move(pending_.front());
      pending_.pop_front();
      if (w->ended) continue;
      in_flight_ = w;
      out->push_back(CreateRequest(*w));
      return;
    }
  }

  // A new stream: every live watcher is created again on it.
  void Rebuild(std::vector<WatchRequest>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    by_server_.clear();
    in_flight_ = nullptr;
    pending_.clear();
    for (auto& [id, w] : watchers_) {
      w->server_id = -1;
      w->has_partial = false;
      w->partial.Clear();
      if (!w->ended) pending_.push_back(w);
    }
    SendNextCreate(out);
  }

  void Handle(WatchResponse& r, std::vector<WatchRequest>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleCreated(WatchResponse& r, std::vector<WatchRequest>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClientOptions options_;
  std::vector<WatchEndpoint> endpoints_;  // Fixed after Init.

  mutable absl::Mutex mu_;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status halted_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Conn> conn_ ABSL_GUARDED_BY(mu_);
  int streams_opened_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  // Live watchers by id (ordered: re-created in the order they were made).
  std::map<int64_t, std::shared_ptr<WatcherState>> watchers_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::shared_ptr<WatcherState>> by_server_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<WatcherState>> pending_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<WatcherState> in_flight_ ABSL_GUARDED_BY(mu_);
};

void Core::HandleCreated(WatchResponse& r, std::vector<WatchRequest>* out) {
  std::shared_ptr<WatcherState> w = std::move(in_flight_);
  in_flight_ = nullptr;
  if (w != nullptr) {
    if (r.canceled()) {
      // Refused at creation (a bad range, a compacted or future revision).
      if (!w->ended) {
        w->created_once = true;
        Deliver(*w, r);
        EndLocked(*w, Closed());
      }
    } else if (w->ended) {
      out->push_back(CancelRequest(r.watch_id()));
    } else {
      w->server_id = r.watch_id();
      by_server_[r.watch_id()] = w;
      if (w->next_rev == 0) {
        w->next_rev =
            w->options.start_revision > 0 ? w->options.start_revision : r.header().revision() + 1;
      }
      if (!w->created_once) {
        w->created_once = true;
        if (w->options.created_notify) Deliver(*w, r);
      }
    }
  }
  SendNextCreate(out);
}

void Core::Handle(WatchResponse& r, std::vector<WatchRequest>* out) {
  if (r.created()) {
    HandleCreated(r, out);
    return;
  }
  if (r.watch_id() == -1 && r.events_size() == 0 && !r.canceled()) {
    // A progress notification for every watcher on the stream.
    for (auto& [id, w] : by_server_) Deliver(*w, r);
    return;
  }
  auto it = by_server_.find(r.watch_id());
  if (it == by_server_.end()) return;
  std::shared_ptr<WatcherState> w = it->second;
  if (r.fragment() || w->has_partial) {
    if (!w->has_partial) {
      w->partial = std::move(r);
      w->has_partial = true;
    } else {
      for (mvccpb::Event& e : *r.mutable_events()) *w->partial.add_events() = std::move(e);
      w->partial.set_fragment(r.fragment());
      w->partial.set_canceled(r.canceled());
      w->partial.set_compact_revision(r.compact_revision());
      w->partial.set_cancel_reason(r.cancel_reason());
    }
    if (w->partial.fragment()) return;
    r = std::move(w->partial);
    w->partial.Clear();
    w->has_partial = false;
  }
  const bool had_events = r.events_size() > 0;
  // Drop what an earlier stream already delivered.
  auto* events = r.mutable_events();
  events->erase(
      std::remove_if(events->begin(), events->end(),
                     [&](const mvccpb::Event& e) { return e.kv().mod_revision() < w->next_rev; }),
      events->end());
  if (!events->empty()) w->next_rev = events->rbegin()->kv().mod_revision() + 1;
  if (r.canceled()) {
    by_server_.erase(it);
    w->server_id = -1;
    Deliver(*w, std::move(r));
    EndLocked(*w, Closed());
    return;
  }
  if (had_events && events->empty()) return;
  Deliver(*w, std::move(r));
}

void Core::Run() {
  size_t index = 0;
  absl::Duration backoff = options_.initial_backoff;
  size_t failed_dials = 0;
  for (;;) {
    if (IsClosing()) return;
    WatchEndpoint& endpoint = endpoints_[index];
    if (!WaitConnected(*endpoint.channel, absl::Now() + options_.dial_timeout)) {
      index = (index + 1) % endpoints_.size();
      if (++failed_dials % endpoints_.size() == 0) {
        Pause(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
      continue;
    }
    failed_dials = 0;
    auto conn = std::make_shared<Conn>();
    conn->endpoint = endpoint.name;
    // A member without a leader must not serve the stream: its events may
    // lag the cluster's for as long as it is cut off.
    conn->ctx.AddMetadata("hasleader", "true");
    conn->stream = endpoint.stub->Watch(&conn->ctx);
    std::vector<WatchRequest> out;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) conn->ctx.TryCancel();
      conn_ = conn;
      ++streams_opened_;
      Rebuild(&out);
    }
    WriteAll(conn, out);
    bool received = false;
    WatchResponse response;
    while (conn->stream->Read(&response)) {
      received = true;
      out.clear();
      {
        absl::MutexLock lock(&mu_);
        Handle(response, &out);
      }
      WriteAll(conn, out);
    }
    {
      absl::MutexLock lock(&conn->write_mu);
      conn->finished = true;
    }
    const grpc::Status status = conn->stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      conn_.reset();
      in_flight_ = nullptr;
      if (closing_) return;
      if (Halts(status.error_code())) {
        halted_ = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                               status.error_message());
        for (auto& [id, w] : watchers_) EndQuietly(*w, halted_);
        watchers_.clear();
        return;
      }
    }
    // The member is likely gone or cut off: try the next one.
    index = (index + 1) % endpoints_.size();
    if (received) {
      backoff = options_.initial_backoff;
    } else {
      Pause(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

class WatcherImpl final : public Watcher {
 public:
  WatcherImpl(std::shared_ptr<Core> core, std::shared_ptr<WatcherState> state)
      : core_(std::move(core)), state_(std::move(state)) {}
  ~WatcherImpl() override { core_->Cancel(*state_); }

  int64_t id() const override { return state_->id; }
  absl::StatusOr<WatchResponse> Next(absl::Time deadline) override {
    return core_->Next(*state_, deadline);
  }
  void Cancel() override { core_->Cancel(*state_); }

 private:
  const std::shared_ptr<Core> core_;
  const std::shared_ptr<WatcherState> state_;
};

class WatchStreamImpl final : public WatchStream {
 public:
  explicit WatchStreamImpl(std::shared_ptr<Core> core)
      : core_(std::move(core)), reader_([core = core_] { core->Run(); }) {}
  ~WatchStreamImpl() override { Close(); }

  absl::StatusOr<std::unique_ptr<Watcher>> Watch(const WatchOptions& options) override {
    absl::StatusOr<std::shared_ptr<WatcherState>> state = core_->Add(options);
    if (!state.ok()) return state.status();
    return std::unique_ptr<Watcher>(new WatcherImpl(core_, *std::move(state)));
  }
  absl::Status RequestProgress() override { return core_->RequestProgress(); }
  void Close() override {
    core_->Close();
    absl::MutexLock lock(&join_mu_);
    if (reader_.joinable()) reader_.join();
  }
  int streams_opened() const override { return core_->streams_opened(); }
  std::string current_endpoint() const override { return core_->current_endpoint(); }

 private:
  const std::shared_ptr<Core> core_;
  absl::Mutex join_mu_;
  std::thread reader_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<std::unique_ptr<WatchStream>> WatchStream::Create(const ClientOptions& options) {
  auto core = std::make_shared<Core>(options);
  if (absl::Status status = core->Init(); !status.ok()) return status;
  return std::unique_ptr<WatchStream>(new WatchStreamImpl(std::move(core)));
}

}  // namespace arbiter::client
