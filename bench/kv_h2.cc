// arbiter-bench: the closed-loop key-value workloads (put, range, txn-put,
// mixed) on a lean HTTP/2 client. nghttp2 frames the calls; one thread
// drives every connection from an epoll loop. The calls on the wire are the
// gRPC calls gRPC's own client makes (same paths, headers, length-prefixed
// messages, deadline), so servers see no difference.
//
// Why not gRPC's C++ client: on a small machine the load generator shares
// the CPUs with the servers it measures. gRPC's callback client spends
// ~25 µs of CPU per call here, about what a lean server spends answering a
// read, so it holds a fast server back far more than a slow one and
// compresses their ratio. This client writes all the calls that are ready
// on a connection with one write and reads responses in bulk
// (docs/performance.md has the measured cost of both). --client grpc keeps
// the gRPC client (kv_async.cc).
//
// A connection that fails, or that the server closes (GOAWAY), ends the
// clients on it, with the calls it loses counted as UNAVAILABLE: this
// client measures healthy clusters (the failover workload uses gRPC's
// client, which reconnects).
//
// Thread safety: everything runs on the calling thread.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_common.h"
#include "proto/rpc.pb.h"

namespace arbiter::bench {
namespace {

// Each operation's deadline, sent as grpc-timeout, as gRPC's client does.
constexpr absl::Duration kDeadline = absl::Seconds(5);
// A call still outstanding when the run ended this long ago is counted as
// DEADLINE_EXCEEDED (the server was told to give up before).
constexpr absl::Duration kGrace = absl::Seconds(6);

std::string KeyOf(const Options& o, int64_t i) {
  std::string k = absl::StrFormat("%0*d", o.key_size, i % o.key_space);
  if (static_cast<int>(k.size()) > o.key_size) k = k.substr(k.size() - o.key_size);
  return k;
}

// gRPC's framing of a message: a compression flag and a big-endian length.
std::string Frame(const google::protobuf::MessageLite& m) {
  const size_t n = m.ByteSizeLong();
  std::string out(5 + n, '\0');
  out[1] = static_cast<char>(n >> 24);
  out[2] = static_cast<char>(n >> 16);
  out[3] = static_cast<char>(n >> 8);
  out[4] = static_cast<char>(n);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + 5));
  return out;
}

// Parses a unary response body (one framed, uncompressed message).
bool Unframe(const std::string& body, google::protobuf::MessageLite* m) {
  if (body.size() < 5 || body[0] != 0) return false;
  const size_t n = (static_cast<size_t>(static_cast<uint8_t>(body[1])) << 24) |
                   (static_cast<size_t>(static_cast<uint8_t>(body[2])) << 16) |
                   (static_cast<size_t>(static_cast<uint8_t>(body[3])) << 8) |
                   static_cast<size_t>(static_cast<uint8_t>(body[4]));
  return body.size() == 5 + n && m->ParseFromArray(body.data() + 5, static_cast<int>(n));
}

struct Conn;

// One gRPC call on a stream.
struct Call {
  int client = 0;
  std::string request;  // framed
  size_t sent = 0;
  std::string body;  // response DATA
  int http_status = 0;
  int grpc_status = -1;  // -1: no grpc-status received
  std::string grpc_message;
};

struct Conn {
  std::string authority;
  int fd = -1;
  nghttp2_session* session = nullptr;
  std::string out;           // bytes nghttp2 produced that the socket has not taken
  bool polling_out = false;  // EPOLLOUT is in the socket's epoll events
  bool dead = false;
  bool goaway = false;  // the server is closing it: no new calls
  std::map<int32_t, std::unique_ptr<Call>> calls;
};

class H2Bench {
 public:
  explicit H2Bench(const Options& o) : o_(o), value_(o.val_size, 'v') {}
  ~H2Bench() {
    for (auto& c : conns_) {
      if (c->session != nullptr) nghttp2_session_del(c->session);
      if (c->fd >= 0) close(c->fd);
    }
    if (ep_ >= 0) close(ep_);
  }

  int Run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) return Fail("epoll_create1", errno);
    for (int i = 0; i < o_.conns; ++i) {
      auto c = std::make_unique<Conn>();
      c->authority = o_.endpoints[i % o_.endpoints.size()];
      if (!Connect(c.get())) return 2;
      conns_.push_back(std::move(c));
    }
    clients_.resize(o_.clients);
    const ServerUsage usage0 = SampleServers(o_.server_pids);
    const absl::Time start = absl::Now();
    end_ = start + absl::Seconds(o_.max_time_s);
    active_ = o_.clients;
    for (int c = 0; c < o_.clients; ++c) Next(c);
    Loop();
    Report r;
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    r.ops = ok_;
    r.micros = micros_;
    r.errors = errors_;
    RecordServerUsage(o_, usage0, &r);
    PrintReport(o_, r);
    return r.ops > 0 ? 0 : 1;
  }

 private:
  struct ClientState {
    int conn = 0;
    absl::Time t0;
    std::string stage;                // the workload of the operation in flight
    etcdserverpb::RangeRequest read;  // txn-put's read
    bool done = false;
  };

  int Fail(const char* what, int err) {
    std::fprintf(stderr, "%s: %s\n", what, std::strerror(err));
    return 2;
  }

  bool Connect(Conn* c) {
    const size_t colon = c->authority.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "endpoint %s: want host:port\n", c->authority.c_str());
      return false;
    }
    std::string host = c->authority.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);  // [::1]:2379
    }
    const std::string port = c->authority.substr(colon + 1);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int e = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); e != 0) {
      std::fprintf(stderr, "endpoint %s: %s\n", c->authority.c_str(), gai_strerror(e));
      return false;
    }
    // Every address in turn, as gRPC's resolver does ("localhost" may be
    // ::1 first while the server listens on 127.0.0.1).
    bool connected = false;
    int err = 0;
    for (addrinfo* a = res; a != nullptr && !connected; a = a->ai_next) {
      if (c->fd >= 0) close(c->fd);
      c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      connected = c->fd >= 0 && connect(c->fd, a->ai_addr, a->ai_addrlen) == 0;
      err = errno;
    }
    freeaddrinfo(res);
    if (!connected) {
      std::fprintf(stderr, "endpoint %s: %s\n", c->authority.c_str(), std::strerror(err));
      return false;
    }
    const int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);

    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &H2Bench::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Bench::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Bench::OnClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Bench::OnFrame);
    contexts_.push_back({this, c});
    nghttp2_session_client_new(&c->session, cb, &contexts_.back());
    nghttp2_session_callbacks_del(cb);
    // Large windows, as gRPC's client grows them: flow control must not be
    // what limits a benchmark.
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                               {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 1 << 30);

    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev);
    return true;
  }

  // Starts client's next operation, or ends the client.
  void Next(int client) {
    ClientState& cs = clients_[client];
    const int64_t n = next_++;
    Conn* conn = conns_[client % conns_.size()].get();
    if (n >= o_.total || absl::Now() >= end_ || conn->dead || conn->goaway) {
      cs.done = true;
      --active_;
      return;
    }
    cs.t0 = absl::Now();
    const int64_t idx = o_.sequential ? n : absl::Uniform<int64_t>(rng_, 0, o_.key_space);
    cs.stage = o_.workload;
    if (cs.stage == "mixed") cs.stage = absl::Bernoulli(rng_, o_.read_ratio) ? "range" : "put";
    if (cs.stage == "put") {
      etcdserverpb::PutRequest put;
      put.set_key(KeyOf(o_, idx));
      put.set_value(value_);
      Submit(conn, client, "/etcdserverpb.KV/Put", Frame(put));
    } else if (cs.stage == "range") {
      etcdserverpb::RangeRequest range;
      range.set_key(KeyOf(o_, idx));
      range.set_serializable(o_.consistency == "s");
      Submit(conn, client, "/etcdserverpb.KV/Range", Frame(range));
    } else {
      // txn-put: a serializable read, then a put only if the key's mod
      // revision is still what the read saw (a compare-and-swap).
      cs.stage = "txn-read";
      cs.read.Clear();
      cs.read.set_key(KeyOf(o_, idx));
      cs.read.set_serializable(true);
      Submit(conn, client, "/etcdserverpb.KV/Range", Frame(cs.read));
    }
  }

  void Submit(Conn* conn, int client, const char* path, std::string request) {
    auto call = std::make_unique<Call>();
    call->client = client;
    call->request = std::move(request);
    auto nv = [](const char* name, const std::string& value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                        std::strlen(name), value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME};
    };
    static const std::string kPost = "POST", kHttp = "http", kGrpc = "application/grpc",
                             kTrailers = "trailers";
    const std::string p = path;
    // The operation's deadline (txn-put's second call gets what is left).
    const int64_t left_ms = std::max<int64_t>(
        1, absl::ToInt64Milliseconds(clients_[client].t0 + kDeadline - absl::Now()));
    const std::string timeout = absl::StrCat(left_ms, "m");
    const nghttp2_nv headers[] = {nv(":method", kPost),
                                  nv(":scheme", kHttp),
                                  nv(":path", p),
                                  nv(":authority", conn->authority),
                                  nv("content-type", kGrpc),
                                  nv("te", kTrailers),
                                  nv("grpc-timeout", timeout)};
    nghttp2_data_provider data;
    data.source.ptr = call.get();
    data.read_callback = &H2Bench::ReadRequest;
    const int32_t id = nghttp2_submit_request(conn->session, nullptr, headers, std::size(headers),
                                              &data, call.get());
    if (id < 0) {
      ++errors_["INTERNAL"];
      clients_[client].done = true;
      --active_;
      return;
    }
    conn->calls[id] = std::move(call);
  }

  static ssize_t ReadRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                             uint32_t* flags, nghttp2_data_source* source, void*) {
    Call* call = static_cast<Call*>(source->ptr);
    const size_t n = std::min(length, call->request.size() - call->sent);
    std::memcpy(buf, call->request.data() + call->sent, n);
    call->sent += n;
    if (call->sent == call->request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  struct Context {
    H2Bench* bench;
    Conn* conn;
  };

  static Call* FindCall(Conn* conn, int32_t id) {
    auto it = conn->calls.find(id);
    return it == conn->calls.end() ? nullptr : it->second.get();
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* ctx = static_cast<Context*>(user);
    Call* call = FindCall(ctx->conn, frame->hd.stream_id);
    if (call == nullptr) return 0;
    const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
    const absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
    int parsed = 0;
    if (n == ":status" && absl::SimpleAtoi(v, &parsed)) call->http_status = parsed;
    if (n == "grpc-status" && absl::SimpleAtoi(v, &parsed)) call->grpc_status = parsed;
    if (n == "grpc-message") call->grpc_message = std::string(v);
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    auto* ctx = static_cast<Context*>(user);
    if (Call* call = FindCall(ctx->conn, id); call != nullptr) {
      call->body.append(reinterpret_cast<const char*>(data), len);
    }
    return 0;
  }

  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_GOAWAY) static_cast<Context*>(user)->conn->goaway = true;
    return 0;
  }

  static int OnClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    auto* ctx = static_cast<Context*>(user);
    auto it = ctx->conn->calls.find(id);
    if (it == ctx->conn->calls.end()) return 0;
    std::unique_ptr<Call> call = std::move(it->second);
    ctx->conn->calls.erase(it);
    ctx->bench->Completed(ctx->conn, *call, error_code);
    return 0;
  }

  void Completed(Conn* conn, const Call& call, uint32_t h2_error) {
    ClientState& cs = clients_[call.client];
    std::string error;
    if (call.grpc_status > 0) {
      // A refusal (the server may also reset the stream, to stop a request
      // it will not read; its status still stands, as for gRPC's client).
      error = CodeName(static_cast<grpc::StatusCode>(call.grpc_status));
    } else if (h2_error != NGHTTP2_NO_ERROR) {
      error = ResetCode(h2_error);
    } else if (call.http_status != 200) {
      error = HttpCode(call.http_status);
    } else if (call.grpc_status < 0) {
      error = "INTERNAL";  // no status
    }
    if (error.empty() && cs.stage == "txn-read") {
      etcdserverpb::RangeResponse read;
      if (!Unframe(call.body, &read)) {
        error = "INTERNAL";
      } else {
        etcdserverpb::TxnRequest txn;
        etcdserverpb::Compare* c = txn.add_compare();
        c->set_key(cs.read.key());
        c->set_target(etcdserverpb::Compare::MOD);
        c->set_result(etcdserverpb::Compare::EQUAL);
        c->set_mod_revision(read.kvs_size() > 0 ? read.kvs(0).mod_revision() : 0);
        etcdserverpb::PutRequest* p = txn.add_success()->mutable_request_put();
        p->set_key(cs.read.key());
        p->set_value(value_);
        cs.stage = "txn";
        Submit(conn, call.client, "/etcdserverpb.KV/Txn", Frame(txn));
        return;
      }
    }
    if (error.empty()) {
      // Parsed as gRPC's client would, so that both clients do the work a
      // user's does.
      bool parsed = true;
      if (cs.stage == "put") {
        etcdserverpb::PutResponse r;
        parsed = Unframe(call.body, &r);
      } else if (cs.stage == "range") {
        etcdserverpb::RangeResponse r;
        parsed = Unframe(call.body, &r);
      } else {
        etcdserverpb::TxnResponse r;
        parsed = Unframe(call.body, &r);
      }
      if (!parsed) error = "INTERNAL";
    }
    if (error.empty()) {
      ++ok_;
      micros_.Record(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - cs.t0)));
    } else {
      ++errors_[error];
    }
    Next(call.client);
  }

  // gRPC's code for a stream reset without a status.
  static std::string ResetCode(uint32_t h2_error) {
    switch (h2_error) {
      case NGHTTP2_REFUSED_STREAM:
        return "UNAVAILABLE";
      case NGHTTP2_CANCEL:
        return "CANCELLED";
      case NGHTTP2_ENHANCE_YOUR_CALM:
        return "RESOURCE_EXHAUSTED";
      case NGHTTP2_INADEQUATE_SECURITY:
        return "PERMISSION_DENIED";
      default:
        return "INTERNAL";
    }
  }

  // gRPC's code for a response that is not HTTP 200.
  static std::string HttpCode(int http_status) {
    switch (http_status) {
      case 400:
        return "INTERNAL";
      case 401:
        return "UNAUTHENTICATED";
      case 403:
        return "PERMISSION_DENIED";
      case 404:
        return "UNIMPLEMENTED";
      case 429:
      case 502:
      case 503:
      case 504:
        return "UNAVAILABLE";
      default:
        return "UNKNOWN";
    }
  }

  // A session that will neither read nor write again (after a GOAWAY, or an
  // error nghttp2 answered with one) ends its connection.
  void EndIfFinished(Conn* c) {
    if (!c->dead && !nghttp2_session_want_read(c->session) &&
        !nghttp2_session_want_write(c->session) && c->out.empty()) {
      Kill(c, "HTTP/2 session ended");
    }
  }

  // Ends a connection that failed: its calls and clients with it.
  void Kill(Conn* c, const char* why) {
    if (c->dead) return;
    std::fprintf(stderr, "connection to %s: %s\n", c->authority.c_str(), why);
    c->dead = true;
    epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
    for (auto& [id, call] : c->calls) {
      ++errors_["UNAVAILABLE"];
      clients_[call->client].done = true;
      --active_;
    }
    c->calls.clear();
  }

  void Flush(Conn* c) {
    if (c->dead) return;
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n < 0) return Kill(c, nghttp2_strerror(static_cast<int>(n)));
      if (n == 0) break;
      c->out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    while (!c->out.empty()) {
      const ssize_t n = write(c->fd, c->out.data(), c->out.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n < 0) return Kill(c, std::strerror(errno));
      c->out.erase(0, static_cast<size_t>(n));
    }
    if (c->polling_out == c->out.empty()) {
      c->polling_out = !c->out.empty();
      epoll_event ev{};
      ev.events = c->polling_out ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
      ev.data.ptr = c;
      epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
    }
    EndIfFinished(c);
  }

  void Read(Conn* c) {
    static thread_local char buf[256 << 10];
    for (;;) {
      const ssize_t n = read(c->fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n < 0) return Kill(c, std::strerror(errno));
      if (n == 0) return Kill(c, "closed by the server");
      const ssize_t used = nghttp2_session_mem_recv(c->session, reinterpret_cast<uint8_t*>(buf),
                                                    static_cast<size_t>(n));
      if (used < 0) return Kill(c, nghttp2_strerror(static_cast<int>(used)));
      EndIfFinished(c);
      if (c->dead || static_cast<size_t>(n) < sizeof(buf)) return;
    }
  }

  void Loop() {
    for (auto& c : conns_) Flush(c.get());
    std::vector<epoll_event> events(conns_.size());
    while (active_ > 0) {
      const absl::Time now = absl::Now();
      if (now >= end_ + kGrace) {
        for (auto& c : conns_) {
          errors_["DEADLINE_EXCEEDED"] += static_cast<int64_t>(c->calls.size());
          c->calls.clear();
        }
        return;
      }
      const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        Conn* c = static_cast<Conn*>(events[i].data.ptr);
        if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) Read(c);
      }
      // Completions started new calls, on any connection: one write each.
      for (auto& c : conns_) Flush(c.get());
    }
  }

  const Options& o_;
  const std::string value_;
  int ep_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::deque<Context> contexts_;  // stable addresses for nghttp2's user data
  std::vector<ClientState> clients_;
  int active_ = 0;
  int64_t next_ = 0;
  absl::Time end_;
  absl::BitGen rng_;
  int64_t ok_ = 0;
  arbiter::server::Histogram micros_;
  std::map<std::string, int64_t> errors_;
};

}  // namespace

int RunKvH2(const Options& o) { return H2Bench(o).Run(); }

}  // namespace arbiter::bench
