#!/usr/bin/env python3
"""One contender of lock_fence_process_test.py: a loop of lock, critical
section, unlock, bounded in sections and seconds.

  lock_contender.py grpc    --endpoints E --id ID --log FILE --lock NAME ...
  lock_contender.py etcdctl --endpoints E --id ID --log FILE --lock NAME ...
  lock_contender.py section --endpoints E --id ID --log FILE  (run by etcdctl lock)

grpc: a lease with its own keep-alive stream, then the v3lock Lock RPC.
etcdctl: `etcdctl lock --ttl=N NAME -- lock_contender.py section ...`, the
client-side recipe, which runs the section with ETCD_LOCK_KEY set.

The fencing token is the lock key's create revision, read back after the
lock is held. The critical section writes RESOURCE three times (enter, work,
exit), each in a Txn guarded by create_revision(lock key) == token. The same
Txn also writes SHADOW unconditionally (on success and on failure), so
SHADOW receives what RESOURCE would without the fence. A rejected write ends
the section: the lock was lost. So does a failed one (its outcome is
unknown); the contender then moves to the next member.

--gate FILE --gate-after K: after K sections the contender waits (within
its time bound) until FILE exists, so that the test can keep sections for
after a fault however fast the first ones go.

--pause-first makes the contender stop itself with SIGSTOP right after the
enter write of its first section (with a token) (a process pause at the worst moment); the
test resumes it with SIGCONT.

Every write's outcome is appended to the log as one JSON line.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcd_grpc  # noqa: E402
from etcd_grpc import Conn, pb  # noqa: E402

RESOURCE = "fenced/resource"
SHADOW = "fenced/shadow"
ETCDCTL = "/usr/bin/etcdctl"


class Log:
    def __init__(self, path, cid):
        self.f = open(path, "a")
        self.cid = cid

    def write(self, **rec):
        rec["id"] = self.cid
        rec["t"] = time.monotonic()
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()


def critical_section(conn, log, key, token, pause):
    """The three guarded writes: "complete", "lost" once one is rejected, or
    "unknown" once one fails (its outcome is unknown; the section ends)."""
    guard = [etcd_grpc.create_revision_is(key, token)]
    for phase in ("enter", "work", "exit"):
        value = "token=%d id=%s phase=%s" % (token, log.cid, phase)
        try:
            r = conn.txn(guard, [etcd_grpc.put_op(RESOURCE, value),
                                 etcd_grpc.put_op(SHADOW, value)],
                         [etcd_grpc.put_op(SHADOW, value)])
        except grpc.RpcError as e:
            log.write(event="write", token=token, phase=phase, value=value, ok=None,
                      error=e.code().name, key=key)
            return "unknown"
        log.write(event="write", token=token, phase=phase, value=value, ok=r.succeeded,
                  rev=r.header.revision, key=key)
        if not r.succeeded:
            return "lost"
        if pause and phase == "enter":
            os.kill(os.getpid(), signal.SIGSTOP)
    return "complete"


def token_of(conn, key):
    kvs = conn.get(key).kvs
    return kvs[0].create_revision if kvs else 0


class KeepAlive(threading.Thread):
    """Renews one lease every TTL/3 until stopped or the lease is gone; when
    its stream fails (a member died), reopens it on the next member, as
    clientv3 does. stop() may be called from another thread."""

    def __init__(self, conns, first, lease_id, ttl):
        super().__init__(daemon=True)
        self.conns, self.cur, self.lease_id, self.ttl = conns, first, lease_id, ttl
        self.done = threading.Event()
        self.mu = threading.Lock()
        self.call = None

    def requests(self):
        while not self.done.is_set():
            yield pb.LeaseKeepAliveRequest(ID=self.lease_id)
            self.done.wait(self.ttl / 3.0)

    def run(self):
        while not self.done.is_set():
            with self.mu:
                if self.done.is_set():
                    return
                call = self.call = self.conns[self.cur].lease.LeaseKeepAlive(self.requests())
            try:
                for resp in call:
                    if resp.TTL <= 0:
                        return  # expired or revoked
            except grpc.RpcError:
                pass
            self.cur = (self.cur + 1) % len(self.conns)
            self.done.wait(0.1)  # paces reopening while members are down

    def stop(self):
        self.done.set()
        with self.mu:
            if self.call is not None:
                self.call.cancel()


def wait_for_gate(a, done_sections, deadline):
    """Holds the next section until the test opens the gate (if any)."""
    if not a.gate or done_sections < a.gate_after:
        return
    while not os.path.exists(a.gate) and time.monotonic() < deadline:
        time.sleep(0.02)


def run_grpc(a, log):
    """Moves to the next member whenever a request fails (a member may be
    down); a section whose write failed ends there."""
    conns = [Conn(ep) for ep in a.endpoints.split(",")]
    cur = a.index % len(conns)
    deadline = time.monotonic() + a.seconds
    sections = 0
    pause = a.pause_first
    while sections < a.sections and time.monotonic() < deadline:
        wait_for_gate(a, sections, deadline)
        conn = conns[cur]
        lease_id, ka = 0, None
        try:
            lease_id = conn.grant(a.ttl)
            ka = KeepAlive(conns, cur, lease_id, a.ttl)
            ka.start()
            key, header = conn.lock(a.lock, lease_id,
                                    timeout=max(1.0, deadline - time.monotonic()))
            token = token_of(conn, key)
            log.write(event="locked", key=key, token=token, lock_rev=header.revision)
            sections += 1
            if token == 0:
                log.write(event="section", token=token, outcome="expired before use")
                continue
            outcome = critical_section(conn, log, key, token, pause)
            pause = False
            log.write(event="section", token=token, outcome=outcome)
            if outcome == "unknown":
                cur = (cur + 1) % len(conns)
            else:
                conn.unlock(key)
        except grpc.RpcError as e:
            log.write(event="error", error=e.code().name)
            cur = (cur + 1) % len(conns)
        finally:
            if ka is not None:
                ka.stop()
            if lease_id:
                try:
                    conns[cur].revoke(lease_id)
                except grpc.RpcError:
                    pass  # expired while paused, or the member is down
    for c in conns:
        c.close()


def run_etcdctl(a, log):
    deadline = time.monotonic() + a.seconds
    for done in range(a.sections):
        wait_for_gate(a, done, deadline)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            p = subprocess.run(
                [ETCDCTL, "--endpoints=" + a.endpoints, "lock", "--ttl=%d" % a.ttl, a.lock,
                 "--", sys.executable, os.path.abspath(__file__), "section", "--endpoints",
                 a.endpoints, "--id", a.id, "--log", a.log, "--index", str(a.index)],
                env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True,
                timeout=left + 10)
        except subprocess.TimeoutExpired:
            log.write(event="etcdctl lock failed", rc=None, stderr="timed out")
            continue
        if p.returncode != 0:
            log.write(event="etcdctl lock failed", rc=p.returncode, stderr=p.stderr[-500:])


def run_section(a, log):
    key = os.environ["ETCD_LOCK_KEY"]
    eps = a.endpoints.split(",")
    for i in range(len(eps)):  # the first member that answers
        conn = Conn(eps[(a.index + i) % len(eps)])
        try:
            token = token_of(conn, key)
            break
        except grpc.RpcError:
            conn.close()
    else:
        log.write(event="error", error="no member answers")
        return
    log.write(event="locked", key=key, token=token, lock_rev=int(os.environ["ETCD_LOCK_REV"]))
    if token:
        outcome = critical_section(conn, log, key, token, False)
    else:
        outcome = "expired before use"
    log.write(event="section", token=token, outcome=outcome)
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["grpc", "etcdctl", "section"])
    ap.add_argument("--endpoints", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lock", default="fence-lock")
    ap.add_argument("--ttl", type=int, default=2)
    ap.add_argument("--sections", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--pause-first", action="store_true")
    ap.add_argument("--gate", default="")
    ap.add_argument("--gate-after", type=int, default=0)
    a = ap.parse_args()
    log = Log(a.log, a.id)
    {"grpc": run_grpc, "etcdctl": run_etcdctl, "section": run_section}[a.mode](a, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
