// Watching keys over etcd's bidirectional Watch stream, for Arbiter and for
// etcd itself. A WatchStream holds one gRPC stream (to one endpoint at a
// time) that carries every Watcher made from it.
//
// Delivery: a Watcher hands out etcd's WatchResponse messages in order,
// with watch_id set to the watcher's own id (not the server's), fragments
// of one response joined into one, and the creation response withheld
// unless asked for. A response with no events and canceled unset is a
// progress notification: its header.revision is the revision the watcher
// has caught up to (or, for RequestProgress, the member's revision).
//
// Resume: when the stream fails (its member crashed, was restarted, lost
// its leader, refused the stream for having none, or stopped answering the
// stream's keepalive pings: ClientOptions::keepalive_*) the WatchStream opens
// a new one, trying the endpoints in turn from the next after the failed
// one with backoff, and re-creates each live watcher from the revision
// after the last event it delivered (a watcher that delivered nothing from
// a current-revision start resumes after the revision its creation
// reported). Events a member sends again are dropped, so a watcher's
// events have strictly increasing revisions with nothing missing and
// nothing twice. A watcher whose resume revision was compacted ends as
// etcd's clientv3 ends it: a last response with canceled and
// compact_revision set. The stream is opened with "hasleader: true", so a
// member cut off from the leader does not serve it. Errors that a retry
// cannot fix (INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED,
// UNIMPLEMENTED, FAILED_PRECONDITION on the stream) end every watcher with
// that status.
//
// Thread safety: a WatchStream and its Watchers are safe to use from many
// threads at once; Next blocks only its caller. One reader thread per
// WatchStream receives and routes responses; responses wait in the
// watcher's queue (unbounded) until Next takes them. Destroying the
// WatchStream (or Close) ends every watcher; a Watcher may outlive it.
#ifndef ARBITER_CLIENT_WATCH_H_
#define ARBITER_CLIENT_WATCH_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "proto/rpc.pb.h"

namespace arbiter::client {

struct WatchOptions {
  std::string key;
  // Empty: the key alone. "\0" (one zero byte): every key >= key. Else the
  // range [key, range_end).
  std::string range_end;
  // 0: from the next revision on. Else replay history from this revision.
  int64_t start_revision = 0;
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
  // Ask the server for periodic progress notifications.
  bool progress_notify = false;
  // Let the server split large responses (joined again here).
  bool fragment = false;
  // Deliver the response that reports the creation.
  bool created_notify = false;
};

// The smallest key greater than every key with this prefix, for
// range_end ("\0" when there is none, as etcd's GetPrefixRangeEnd).
std::string PrefixRangeEnd(const std::string& prefix);

class WatchStream;

class Watcher {
 public:
  virtual ~Watcher() = default;
  // This watcher's id, as set in the responses it delivers.
  virtual int64_t id() const = 0;
  // The next response. DEADLINE_EXCEEDED if none came by the deadline (the
  // watcher goes on). After the last response of a watcher (canceled set)
  // and after Cancel: CANCELLED "watcher is closed". When the stream ended
  // for good: that error.
  virtual absl::StatusOr<etcdserverpb::WatchResponse> Next(absl::Time deadline) = 0;
  // Asks the server to cancel the watcher and closes it here at once;
  // responses not yet taken are dropped.
  virtual void Cancel() = 0;
};

class WatchStream {
 public:
  // Connects lazily in its own thread; fails only on bad options.
  static absl::StatusOr<std::unique_ptr<WatchStream>> Create(const ClientOptions& options);
  virtual ~WatchStream() = default;

  // A new watcher. INVALID_ARGUMENT when the stream has ended for good.
  virtual absl::StatusOr<std::unique_ptr<Watcher>> Watch(const WatchOptions& options) = 0;
  // Asks the member to send every watcher a progress notification. Waits
  // up to the call timeout for a stream to be open; UNAVAILABLE if none is.
  virtual absl::Status RequestProgress() = 0;
  // Ends the stream and every watcher. Idempotent.
  virtual void Close() = 0;
  // How many streams were opened (1 + the resumes), and the endpoint of
  // the current one (empty while reconnecting); for tests and operators.
  virtual int streams_opened() const = 0;
  virtual std::string current_endpoint() const = 0;
};

}  // namespace arbiter::client

#endif  // ARBITER_CLIENT_WATCH_H_
