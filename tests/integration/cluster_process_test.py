#!/usr/bin/env python3
"""A real 3-member Arbiter cluster as processes on 127.0.0.1, driven by the
real etcdctl: a leader is elected; writes replicate; kill -9 of the leader
leads to a new leader; the killed member restarts from its data dir and
catches up (by snapshot: the survivors compacted their logs past it); every
member ends with the same key-value state (HashKV at one revision) and every
acknowledged key. Then the leader is paused (SIGSTOP): the others elect a
leader and take writes; resumed (SIGCONT), it catches up to the same state.

  cluster_process_test.py <arbiterd> [--keep]

Every process it starts is stopped by PID. Waits poll with deadlines.
"""
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
TIMEOUT = 30.0


_RESERVED = []  # lock files held open until exit


def free_port():
    """A port free now and reserved from other test processes until this
    one exits, as tests/server/free_port.h does for the C++ tests (an
    flock on /tmp/arbiter-test-ports/<port>): members restart on their
    ports, and a port picked elsewhere in between would take theirs."""
    lock_dir = "/tmp/arbiter-test-ports"
    os.makedirs(lock_dir, exist_ok=True)
    for _ in range(100000):
        port = random.randint(20000, 31999)
        try:
            f = open(os.path.join(lock_dir, str(port)), "a")
        except OSError:
            continue
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                f.close()
                continue
        _RESERVED.append(f)
        return port
    raise RuntimeError("no free port")


def ctl(endpoints, *args, check=True):
    env = dict(os.environ, ETCDCTL_API="3")
    p = subprocess.run([ETCDCTL, "--endpoints=" + ",".join(endpoints),
                        "--command-timeout=3s", "--dial-timeout=1s", *args],
                       env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("etcdctl %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def poll(what, fn, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = fn()
            if r:
                return r
        except Exception as e:  # a member may be down or electing
            last = e
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last error: %s)" % (what, last))


class Cluster:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.names = ["a", "b", "c"]
        self.client = {n: free_port() for n in self.names}
        self.peer = {n: free_port() for n in self.names}
        self.procs = {}

    def endpoint(self, n):
        return "127.0.0.1:%d" % self.client[n]

    def start(self, n):
        initial = ",".join("%s=http://127.0.0.1:%d" % (m, self.peer[m]) for m in self.names)
        log = open(os.path.join(self.work, n + ".log"), "a")
        self.procs[n] = subprocess.Popen([
            self.binary, "--name", n, "--data-dir", os.path.join(self.work, n),
            "--listen-client-urls", "http://" + self.endpoint(n),
            "--advertise-client-urls", "http://" + self.endpoint(n),
            "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer[n],
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer[n],
            "--initial-cluster", initial, "--initial-cluster-token", "process-test",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            # No entries kept behind snapshots (5,000 by default): a member
            # down for over a snapshot interval then needs a snapshot.
            "--snapshot-count", "100",
            "--experimental-snapshot-catchup-entries", "0"], stdout=log, stderr=log)

    def kill9(self, n):
        p = self.procs.pop(n)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop_all(self):
        for n, p in list(self.procs.items()):
            p.send_signal(signal.SIGTERM)
        for n, p in list(self.procs.items()):
            try:
                rc = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("member %s did not stop on SIGTERM" % n)
            if rc != 0:
                raise AssertionError("member %s exited %d on SIGTERM" % (n, rc))
        self.procs.clear()

    def status(self, n):
        out = ctl([self.endpoint(n)], "endpoint", "status", "-w", "json").stdout
        return json.loads(out)[0]["Status"]

    def leader(self, members):
        """The member that every listed member names as leader, if it leads."""
        seen = set()
        for n in members:
            seen.add(self.status(n)["leader"])
        if len(seen) != 1 or 0 in seen:
            return None
        lead = seen.pop()
        for n in members:
            if self.status(n)["header"]["member_id"] == lead:
                return n
        return None


def put_keys(c, members, first, count):
    eps = [c.endpoint(n) for n in members]
    for i in range(first, first + count):
        ctl(eps, "put", "key-%05d" % i, "value-%d" % i)


def main():
    binary = os.path.abspath(sys.argv[1])
    keep = "--keep" in sys.argv
    work = tempfile.mkdtemp(prefix="arbiter-process-test-")
    c = Cluster(binary, work)
    ok = False
    try:
        for n in c.names:
            c.start(n)
        lead = poll("a leader", lambda: c.leader(c.names))
        print("leader:", lead)

        def members_published():
            out = ctl([c.endpoint(n) for n in c.names], "member", "list", "-w", "json").stdout
            got = {m.get("name"): m.get("clientURLs", []) for m in json.loads(out)["members"]}
            want = {n: ["http://" + c.endpoint(n)] for n in c.names}
            return got == want
        poll("every member's name and client URLs in member list", members_published)
        put_keys(c, c.names, 0, 150)

        killed_index = c.status(lead)["raftIndex"]
        c.kill9(lead)
        rest = [n for n in c.names if n != lead]
        new_lead = poll("a new leader", lambda: c.leader(rest))
        assert new_lead != lead
        print("killed", lead, "; new leader:", new_lead)
        put_keys(c, rest, 150, 250)
        # The survivors' applied index is past the killed member's log by more
        # than a snapshot interval, so their logs were compacted past it.
        assert c.status(new_lead)["raftAppliedIndex"] > killed_index + 200

        c.start(lead)
        target = c.status(new_lead)
        rev = target["header"]["revision"]

        def caught_up():
            return all(c.status(n)["header"]["revision"] >= rev for n in c.names)
        poll("the restarted member to catch up", caught_up)

        def hashes():
            out = ctl([c.endpoint(n) for n in c.names], "endpoint", "hashkv",
                      "--rev", str(rev), "-w", "json").stdout
            return {r["Endpoint"]: r["HashKV"]["hash"] for r in json.loads(out)}
        h = hashes()
        assert len(set(h.values())) == 1, "members disagree at revision %d: %s" % (rev, h)

        # A paused leader (SIGSTOP) closes none of its connections: the others
        # elect a leader after an election timeout and keep taking writes,
        # while what they send the paused member piles up in its sockets.
        # Resumed, it steps down and catches up.
        lead = poll("a leader", lambda: c.leader(c.names))
        c.procs[lead].send_signal(signal.SIGSTOP)
        try:
            rest = [n for n in c.names if n != lead]
            new_lead = poll("a leader while %s is paused" % lead, lambda: c.leader(rest))
            print("paused", lead, "; new leader:", new_lead)
            put_keys(c, rest, 400, 50)
        finally:
            c.procs[lead].send_signal(signal.SIGCONT)
        rev = c.status(new_lead)["header"]["revision"]
        poll("the resumed member to catch up", caught_up)
        poll("one leader again", lambda: c.leader(c.names))
        h = hashes()
        assert len(set(h.values())) == 1, "members disagree at revision %d: %s" % (rev, h)
        for n in c.names:
            # etcdctl 3.4 has no --count-only; count ignores --limit.
            p = ctl([c.endpoint(n)], "get", "key-", "--prefix", "--limit", "1",
                    "--consistency=s", "-w", "json")
            count = json.loads(p.stdout).get("count", 0)
            assert count == 450, "member %s has %d of 450 acknowledged keys" % (n, count)
        c.stop_all()
        ok = True
        print("cluster process test: ok (hash %s at revision %d)" % (list(h.values())[0], rev))
    finally:
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
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
