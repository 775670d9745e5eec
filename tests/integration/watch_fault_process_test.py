#!/usr/bin/env python3
"""Watch guarantees under faults, on a real 3-member Arbiter cluster.

A writer keeps putting and deleting keys under a prefix (single puts,
deletes and two-put txns, every value unique) while watchers follow the
prefix over raw gRPC streams that they reopen themselves, from the last
revision they saw + 1. Meanwhile:

  1. the watchers' streams are broken on purpose and reopened on the leader;
  2. that leader is stopped with SIGSTOP until the others have elected a new
     one and committed writes without it, then resumed with SIGCONT: the
     streams stay open and must deliver everything once it catches up;
  3. the streams move to the current leader, which is killed with SIGKILL:
     they break again (the watchers move to a survivor), and some writes are
     left with unknown outcomes;
  4. the killed member restarts, and the watchers are moved to it as soon
     as it serves, often while it is still catching up (by snapshot):
     they resume from a revision it may not have yet.

The checks:
  - every member's replay of the prefix from the first revision is the same
    list (the store's history);
  - the history agrees with the writer: no revision in the range is without
    an event, each acknowledged operation is exactly the events at its
    revision, every event comes from an attempted operation, at most once;
  - the resuming watcher's stream equals the history: revisions in order,
    no gap, no duplicate, no event that differs.

The checker is shown to catch faults: two more watchers resume wrongly on
purpose (from last + 2, and from last) and must be reported with a gap and
with duplicates; copies of the good stream with one event dropped,
duplicated, moved, or changed must each be reported.

  watch_fault_process_test.py <arbiterd> [--rounds N]

--rounds repeats steps 1 to 4 (the default run does them once).
"""
import argparse
import collections
import os
import queue
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_process_test import Cluster, poll  # noqa: E402
import etcd_grpc  # noqa: E402
from etcd_grpc import Conn, event_tuple  # noqa: E402

PREFIX = "wf/"
KEYS = 12
MAX_OPS = 1500      # hard bounds on the writer per round, whatever the
MAX_SECONDS = 40.0  # schedule does
REV = 3             # index of the mod revision in an event tuple


class ResumingWatcher(threading.Thread):
    """Follows PREFIX over one stream at a time; when a stream ends (broken
    on purpose or by a fault), opens another one from the last revision it
    saw + resume_offset (1 is right; the others are planted bugs).

    Thread-safety: the fields under `mu` are shared with the test thread.
    """

    def __init__(self, name, endpoints, start_rev, target, resume_offset=1):
        super().__init__(daemon=True)
        self.name = name
        self.endpoints = endpoints
        self.start_rev = start_rev
        self.resume_offset = resume_offset
        self.stop_flag = threading.Event()
        self.mu = threading.Lock()
        self.target = target      # index into endpoints for the next stream
        self.call = None          # the current stream, once created
        self.planned = False
        self.events = []
        self.streams = []         # (endpoint, start revision) of each stream
        self.ended = []           # why each stream ended
        self.failure = None       # a canceled watch: reported as a failure

    def connected_streams(self):
        with self.mu:
            return len(self.streams) if self.call is not None else 0

    def last_rev(self):
        with self.mu:
            return self.events[-1][REV] if self.events else 0

    def break_stream(self, target):
        """Ends the current stream; the next one opens on endpoints[target].
        Between streams (one just failed), only the target changes."""
        with self.mu:
            self.target = target
            call = self.call
            self.planned = call is not None
        if call is not None:
            call.cancel()

    def stop(self):
        self.stop_flag.set()
        with self.mu:
            call = self.call
        if call is not None:
            call.cancel()

    def run(self):
        while not self.stop_flag.is_set():
            with self.mu:
                ep = self.endpoints[self.target]
                last = self.events[-1][REV] if self.events else 0
            start = last + self.resume_offset if last else self.start_rev
            conn = Conn(ep)
            reqs = queue.Queue()
            reqs.put(etcd_grpc.watch_request(PREFIX, start))

            def requests():
                while True:
                    r = reqs.get()
                    if r is None:
                        return
                    yield r
            call = conn.watch.Watch(requests())
            why = "end of stream"
            try:
                for resp in call:
                    if resp.created:
                        with self.mu:
                            self.call = call
                            self.streams.append((ep, start))
                    if resp.canceled:
                        self.failure = "watch canceled: %s (compact revision %d)" % (
                            resp.cancel_reason, resp.compact_revision)
                        self.stop_flag.set()
                        break
                    if resp.events:
                        with self.mu:
                            self.events.extend(event_tuple(e) for e in resp.events)
            except grpc.RpcError as e:
                why = e.code().name
            finally:
                reqs.put(None)
                call.cancel()
                conn.close()
            with self.mu:
                self.call = None
                self.ended.append(("planned " if self.planned else "") + why)
                if not self.planned:
                    self.target = (self.target + 1) % len(self.endpoints)
                planned, self.planned = self.planned, False
            if not planned:
                self.stop_flag.wait(0.05)  # pace reconnects to a dead member


class Writer(threading.Thread):
    """Puts, deletes and two-put txns under PREFIX, one at a time, moving to
    the next member when a request fails (its outcome is then unknown).

    Thread-safety: `acked_count()` and `stop()` may be called from any thread;
    the lists are read only after join().
    """

    def __init__(self, endpoints, first, seed, rounds):
        super().__init__(daemon=True)
        self.conns = [Conn(ep) for ep in endpoints]
        self.rng = random.Random(seed)
        self.cur = first  # the leader, so that its kill catches writes in flight
        self.max_ops = MAX_OPS * rounds
        self.max_seconds = MAX_SECONDS * rounds
        self.stop_flag = threading.Event()
        self.mu = threading.Lock()
        self.acked = []      # (op, revision, deleted count)
        self.unknown = []    # (op, error)
        self.attempted = []

    def acked_count(self):
        with self.mu:
            return len(self.acked)

    def stop(self):
        self.stop_flag.set()

    def next_op(self, i):
        k = [PREFIX + "k%02d" % j for j in self.rng.sample(range(KEYS), 2)]
        roll = self.rng.random()
        if roll < 0.6:
            return ("put", [(k[0], "v%d" % i)])
        if roll < 0.85:
            return ("delete", [(k[0], "")])
        return ("txn", [(k[0], "v%d.a" % i), (k[1], "v%d.b" % i)])

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.max_ops):
            if self.stop_flag.is_set() or time.monotonic() > deadline:
                break
            op = self.next_op(i)
            self.attempted.append(op)
            conn = self.conns[self.cur]
            try:
                if op[0] == "put":
                    r = conn.put(*op[1][0])
                    result = (op, r.header.revision, 0)
                elif op[0] == "delete":
                    r = conn.delete(op[1][0][0])
                    result = (op, r.header.revision, r.deleted)
                else:
                    r = conn.txn([], [etcd_grpc.put_op(k, v) for k, v in op[1]], [])
                    result = (op, r.header.revision, 0)
                with self.mu:
                    self.acked.append(result)
            except grpc.RpcError as e:
                self.unknown.append((op, e.code().name))
                self.cur = (self.cur + 1) % len(self.conns)
        for c in self.conns:
            c.close()


def check_stream(stream, history):
    """What is wrong with a watcher's stream, given the store's history of
    the same range: a list of problems, empty when the stream is right."""
    problems = []
    for i in range(1, len(stream)):
        if stream[i][REV] < stream[i - 1][REV]:
            problems.append("out of order: revision %d after %d (position %d)" %
                            (stream[i][REV], stream[i - 1][REV], i))
    counts = collections.Counter(stream)
    for ev, n in sorted(counts.items(), key=lambda x: x[0][REV]):
        if n > 1:
            problems.append("duplicate: %s delivered %d times" % (ev, n))
    in_history = set(history)
    for ev in stream:
        if ev not in in_history:
            problems.append("not in the store's history: %s" % (ev,))
    for ev in history:
        if ev not in counts:
            problems.append("gap: %s never delivered" % (ev,))
    if not problems and stream != history:
        first = next(i for i, (a, b) in enumerate(zip(stream, history)) if a != b)
        problems.append("order within a revision differs at position %d" % first)
    return problems


def check_history_against_writer(history, start_rev, end_rev, writer):
    """The history is what the writer did: every revision from start_rev to
    end_rev has events, each acknowledged op is exactly the events at its
    revision, every event comes from one attempted op, at most once."""
    by_rev = collections.defaultdict(list)
    for ev in history:
        by_rev[ev[REV]].append(ev)
    missing = [r for r in range(start_rev, end_rev + 1) if r not in by_rev]
    assert not missing, "revisions without events: %s" % missing[:10]
    assert min(by_rev) >= start_rev and max(by_rev) <= end_rev, sorted(by_rev)[-3:]
    for op, rev, deleted in writer.acked:
        if op[0] == "delete" and deleted == 0:
            continue  # deleted nothing: no revision of its own
        want = [("DELETE" if op[0] == "delete" else "PUT", k, v) for k, v in op[1]]
        got = [ev[:3] for ev in by_rev[rev]]
        assert got == want, "acknowledged %s at revision %d, history has %s" % (op, rev, got)
    puts = {}
    deletes = collections.Counter()
    for op in writer.attempted:
        for k, v in op[1]:
            if op[0] == "delete":
                deletes[k] += 1
            else:
                puts[v] = k
    seen_values = set()
    for ev in history:
        if ev[0] == "PUT":
            assert puts.get(ev[2]) == ev[1], "a put nobody attempted: %s" % (ev,)
            assert ev[2] not in seen_values, "a put applied twice: %s" % (ev,)
            seen_values.add(ev[2])
        else:
            deletes[ev[1]] -= 1
            assert deletes[ev[1]] >= 0, "more deletes of %s than attempted" % ev[1]


def show_checker_catches_faults(good, history):
    """Each planted fault in a copy of a correct stream must be reported."""
    assert len(good) > 20
    mid = len(good) // 2
    j = next(i for i in range(mid, len(good) - 1) if good[i][REV] != good[i + 1][REV])
    dropped = good[:mid] + good[mid + 1:]
    duplicated = good[:mid + 1] + [good[mid]] + good[mid + 1:]
    reordered = good[:j] + [good[j + 1], good[j]] + good[j + 2:]
    changed = list(good)
    changed[mid] = changed[mid][:2] + (changed[mid][2] + "x",) + changed[mid][3:]
    for what, stream, word in [("dropped", dropped, "gap:"),
                               ("duplicated", duplicated, "duplicate:"),
                               ("reordered", reordered, "out of order:"),
                               ("changed", changed, "not in the store's history:")]:
        problems = check_stream(stream, history)
        assert any(p.startswith(word) for p in problems), \
            "the checker missed one %s event: %s" % (what, problems)
        print("checker catches one %s event: %s" % (what, problems[0]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arbiterd")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of pause, kill and restart (about 10 s each)")
    args = ap.parse_args()
    binary = os.path.abspath(args.arbiterd)
    work = tempfile.mkdtemp(prefix="arbiter-watch-fault-test-")
    c = Cluster(binary, work)
    watchers = []
    writer = None
    ok = False
    t0 = time.monotonic()
    try:
        for n in c.names:
            c.start(n)
        first_lead = poll("a leader", lambda: c.leader(c.names))
        eps = [c.endpoint(n) for n in c.names]
        index = {n: i for i, n in enumerate(c.names)}
        follower = next(i for i, n in enumerate(c.names) if n != first_lead)
        setup = Conn(eps[follower])
        start_rev = poll("the first revision", lambda: setup.revision()) + 1
        setup.close()

        # The good watcher, and two that resume wrongly on purpose.
        watchers = [ResumingWatcher("resume from last+1", eps, start_rev, follower, 1),
                    ResumingWatcher("planted: resume from last+2", eps, start_rev, follower, 2),
                    ResumingWatcher("planted: resume from last", eps, start_rev, follower, 0)]
        for w in watchers:
            w.start()
        poll("watchers connected", lambda: all(w.connected_streams() == 1 for w in watchers))
        writer = Writer(eps, index[first_lead], seed=start_rev, rounds=args.rounds)
        writer.start()

        def after_acks(n):
            # The writer is bounded (MAX_OPS, MAX_SECONDS): once it has used
            # its budget, during a slow catch-up say, no more acks can come,
            # and the checks below cover what it wrote.
            poll("%d acknowledged writes" % n,
                 lambda: writer.acked_count() >= n or not writer.is_alive())
            if writer.acked_count() < n:
                print("writer finished its %d operations at %d acknowledged writes" %
                      (writer.max_ops, writer.acked_count()))

        def move_watchers(n):
            """Break every stream on purpose; reopen it on member n."""
            before = [len(w.streams) for w in watchers]
            for w in watchers:
                w.break_stream(index[n])

            def moved():
                done = True
                for w, b in zip(watchers, before):
                    count = w.connected_streams()
                    if count > b and w.streams[-1][0] == c.endpoint(n):
                        continue
                    done = False
                    if count and w.streams[-1][0] != c.endpoint(n):
                        w.break_stream(index[n])  # it was reconnecting elsewhere
                return done
            poll("watchers on %s" % n, moved)

        for r in range(args.rounds):
            lead = poll("a leader", lambda: c.leader(c.names))
            after_acks(writer.acked_count() + 60)
            # 1. Break every stream; reopen it on the leader.
            move_watchers(lead)
            after_acks(writer.acked_count() + 60)
            # 2. SIGSTOP that leader until the others have elected a new one
            # and committed writes without it; SIGCONT. The watchers' streams
            # stay open through the pause and must then deliver everything.
            paused = c.procs[lead]
            paused.send_signal(signal.SIGSTOP)
            try:
                rest = [n for n in c.names if n != lead]
                other = poll("a leader while %s is stopped" % lead, lambda: c.leader(rest))
                after_acks(writer.acked_count() + 60)
            finally:
                paused.send_signal(signal.SIGCONT)
            print("round %d: stopped leader %s until %s led; resumed it" % (r + 1, lead, other))
            after_acks(writer.acked_count() + 60)
            # 3. The same on the current leader, then SIGKILL it: the streams
            # break.
            lead = poll("a leader", lambda: c.leader(c.names))
            move_watchers(lead)
            after_acks(writer.acked_count() + 60)
            killed_index = c.status(lead)["raftIndex"]
            c.kill9(lead)
            rest = [n for n in c.names if n != lead]
            new_lead = poll("a new leader", lambda: c.leader(rest))
            print("round %d: killed leader %s; new leader %s" % (r + 1, lead, new_lead))
            # Over two snapshot intervals (--snapshot-count 100) while it is
            # down, so, as in cluster_process_test.py, it catches up by
            # snapshot and must still serve the history from before.
            after_acks(writer.acked_count() + 250)
            assert c.status(new_lead)["raftAppliedIndex"] > killed_index + 200
            # 4. Restart it and move the watchers onto it as soon as it
            # serves, often before it has caught up: they resume from a
            # revision it may not have yet, and must get every event across
            # its catch-up.
            c.start(lead)
            back = Conn(c.endpoint(lead))
            serving = poll("the restarted member to serve",
                           lambda: back.get(PREFIX, serializable=True,
                                            timeout=0.5).header.revision)
            survivor = Conn(c.endpoint(new_lead))
            target = survivor.revision()
            survivor.close()
            move_watchers(lead)
            print("round %d: watchers moved to %s at its revision %d (the cluster's: %d)" %
                  (r + 1, lead, serving, target))
            poll("the restarted member to catch up",
                 lambda: back.get(PREFIX, serializable=True,
                                  timeout=0.5).header.revision >= target)
            back.close()
        after_acks(writer.acked_count() + 60)
        writer.stop()
        writer.join(timeout=10)
        assert not writer.is_alive()

        live = Conn(c.endpoint(new_lead))
        end_rev = live.revision()
        live.close()
        good = watchers[0]
        poll("the watcher to reach revision %d" % end_rev,
             lambda: good.failure or good.last_rev() >= end_rev, timeout=15)
        for w in watchers:
            w.stop()
        for w in watchers:
            w.join(timeout=5)
        assert good.failure is None, good.failure

        histories = {ep: etcd_grpc.replay(ep, PREFIX, etcd_grpc.prefix_end(PREFIX), start_rev,
                                          end_rev) for ep in eps}
        history = histories[eps[0]]
        for ep, h in histories.items():
            assert h == history, "members' histories differ: %s vs %s" % (ep, eps[0])
        check_history_against_writer(history, start_rev, end_rev, writer)
        print("history: revisions %d..%d, %d events; writer: %d acknowledged, %d unknown (%s)" %
              (start_rev, end_rev, len(history), len(writer.acked), len(writer.unknown),
               collections.Counter(e for _, e in writer.unknown).most_common()))

        stream = [e for e in good.events if e[REV] <= end_rev]
        print("%s: %d events over %d streams %s; ended: %s" %
              (good.name, len(stream), len(good.streams), good.streams, good.ended))
        broken = [e for e in good.ended[:-1] if not e.startswith("planned")]
        assert len(broken) >= args.rounds, \
            "the leader's kill did not break the stream: %s" % good.ended
        problems = check_stream(stream, history)
        assert not problems, problems[:5]

        skip = check_stream([e for e in watchers[1].events if e[REV] <= end_rev], history)
        assert any(p.startswith("gap:") for p in skip), \
            "a watcher resuming from last+2 was not caught: %s" % skip[:3]
        print("%s: caught: %s" % (watchers[1].name, skip[0]))
        dup = check_stream([e for e in watchers[2].events if e[REV] <= end_rev], history)
        assert any(p.startswith("duplicate:") for p in dup), \
            "a watcher resuming from last was not caught: %s" % dup[:3]
        print("%s: caught: %s" % (watchers[2].name, dup[0]))
        show_checker_catches_faults(stream, history)

        c.stop_all()
        ok = True
        print("watch fault test: ok (%.1f s)" % (time.monotonic() - t0))
    finally:
        if writer is not None:
            writer.stop()
        for w in watchers:
            w.stop()
        for p in c.procs.values():
            p.kill()
            p.wait()
        if not ok:
            for n in c.names:
                path = os.path.join(work, n + ".log")
                if os.path.exists(path):
                    print("---- %s.log (tail)" % n)
                    with open(path) as f:
                        print("".join(f.readlines()[-15:]))
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
