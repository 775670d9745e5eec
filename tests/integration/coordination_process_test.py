#!/usr/bin/env python3
"""Watch, leases, locks and elections on a real 3-member Arbiter cluster,
driven by the real etcdctl 3.4 and by python3-etcd3 (a second, independent
client):

- watch: history replay from a past revision, a live event, and a compacted
  start revision canceled with etcd's message;
- leases: grant, keep-alive, time-to-live with keys, revoke; a lease left
  alone expires no earlier than its TTL and no later than TTL + the bound of
  docs/leases.md, taking its key with it; a lease kept alive survives the
  leader being killed;
- lock: two contenders; the holder's process is killed and the other one
  takes the lock once the holder's lease expires;
- elect: two candidates; the leader's process is interrupted and the other
  one becomes leader, as an observer sees;
- python3-etcd3: watch and lease through its own client.

  coordination_process_test.py <arbiterd>
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_process_test import Cluster, ETCDCTL, ctl, poll  # noqa: E402

# With --election-timeout 500 the minimum TTL is 1 s; the lessor ticks every
# 100 ms and reconciles every 500 ms; a revoke commits within a few ms.
EXPIRY_SLACK = 1.5


def etcdctl_bg(endpoints, *args):
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.Popen([ETCDCTL, "--endpoints=" + ",".join(endpoints), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Reader:
    """Collects a background process's output lines."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self):
        return "\n".join(self.lines)


def check_watch(c, eps):
    for i in range(3):
        ctl(eps, "put", "w/%d" % i, "v%d" % i)
    first = int(ctl(eps, "get", "w/0", "-w", "json").stdout.split('"mod_revision":')[1].split(",")[0])
    w = etcdctl_bg(eps, "watch", "w/", "--prefix", "--rev", str(first))
    r = Reader(w)
    poll("history replay", lambda: r.text().count("PUT") >= 3)
    ctl(eps, "put", "w/live", "now")
    poll("a live event", lambda: "w/live" in r.text())
    w.kill()
    w.wait()
    lines = [ln for ln in r.lines if ln]
    assert lines[:6] == ["PUT", "w/0", "v0", "PUT", "w/1", "v1"], lines
    ctl(eps, "compaction", str(first + 2))
    p = subprocess.run([ETCDCTL, "--endpoints=" + ",".join(eps), "watch", "w/", "--prefix",
                        "--rev", str(first)], env=dict(os.environ, ETCDCTL_API="3"),
                       capture_output=True, text=True, timeout=20)
    assert "watch was canceled (etcdserver: mvcc: required revision has been compacted)" in \
        p.stdout + p.stderr, p.stdout + p.stderr


def grant(eps, ttl):
    out = ctl(eps, "lease", "grant", str(ttl)).stdout
    return out.split()[1]


def check_leases(c, eps):
    lid = grant(eps, 30)
    ctl(eps, "put", "--lease=" + lid, "leased", "x")
    out = ctl(eps, "lease", "keep-alive", "--once", lid).stdout
    assert "keepalived with TTL(30)" in out, out
    out = ctl(eps, "lease", "timetolive", "--keys", lid).stdout
    assert "granted with TTL(30s)" in out and "attached keys([leased])" in out, out
    assert lid in ctl(eps, "lease", "list").stdout
    ctl(eps, "lease", "revoke", lid)
    assert ctl(eps, "get", "leased").stdout == ""
    out = ctl(eps, "lease", "timetolive", lid).stdout
    assert "already expired" in out, out
    p = ctl(eps, "lease", "revoke", lid, check=False)
    assert "etcdserver: requested lease not found" in p.stderr, p.stderr

    # Expiry: not before the TTL, not long after.
    ttl = 3
    # Measured from before the grant was sent: the leader starts the TTL
    # when it applies the grant, which is after this.
    granted_at = time.monotonic()
    lid = grant(eps, ttl)
    ctl(eps, "put", "--lease=" + lid, "ephemeral", "x")
    while True:
        present = ctl(eps, "get", "ephemeral", "--consistency=s").stdout != ""
        elapsed = time.monotonic() - granted_at
        if not present:
            assert elapsed >= ttl, "key vanished after %.2fs, before its TTL of %ds" % (elapsed, ttl)
            break
        assert elapsed < ttl + EXPIRY_SLACK, "key outlived its TTL by more than the bound"
        time.sleep(0.05)


def check_lease_survives_leader_kill(c):
    eps = [c.endpoint(n) for n in c.names]
    lid = grant(eps, 4)
    ctl(eps, "put", "--lease=" + lid, "kept", "alive")
    keeper = etcdctl_bg(eps, "lease", "keep-alive", lid)
    try:
        lead = poll("a leader", lambda: c.leader(c.names))
        c.kill9(lead)
        rest = [n for n in c.names if n != lead]
        poll("a new leader", lambda: c.leader(rest))
        deadline = time.monotonic() + 3 * 4
        while time.monotonic() < deadline:
            assert ctl([c.endpoint(n) for n in rest], "get", "kept").stdout != "", \
                "a lease kept alive expired across a leader change"
            time.sleep(0.2)
    finally:
        keeper.kill()
        keeper.wait()
    c.start(lead)
    poll("the killed member back", lambda: c.leader(c.names))


def check_lock(c, eps):
    holder = etcdctl_bg(eps, "lock", "--ttl", "2", "mylock")
    rh = Reader(holder)
    poll("the first contender to hold the lock", lambda: "mylock/" in rh.text())
    waiter = etcdctl_bg(eps, "lock", "--ttl", "2", "mylock")
    rw = Reader(waiter)
    time.sleep(1.0)  # the waiter must still be waiting; nothing to poll for
    assert "mylock/" not in rw.text(), "two holders of one lock"
    holder.kill()
    holder.wait()
    poll("the second contender to take over", lambda: "mylock/" in rw.text())
    waiter.kill()
    waiter.wait()


def check_elect(c, eps):
    # etcdctl elect has no --ttl (its session lease is 60 s), so alice is
    # stopped with SIGINT, on which etcdctl resigns; lock above covers a
    # holder killed outright.
    alice = etcdctl_bg(eps, "elect", "election", "alice")
    ra = Reader(alice)
    poll("alice to lead", lambda: "alice" in ra.text())
    bob = etcdctl_bg(eps, "elect", "election", "bob")
    rb = Reader(bob)
    observer = etcdctl_bg(eps, "elect", "-l", "election")
    ro = Reader(observer)
    poll("the observer to see alice", lambda: "alice" in ro.text())
    assert "bob" not in rb.text(), "two leaders of one election"
    alice.send_signal(signal.SIGINT)
    alice.wait()
    poll("bob to lead", lambda: "bob" in rb.text())
    poll("the observer to see bob", lambda: "bob" in ro.text())
    for p in (bob, observer):
        p.kill()
        p.wait()


def check_python_client(c):
    py = "/usr/bin/python3"
    script = r"""
import sys, threading, etcd3
host, port = sys.argv[1].split(":")
c = etcd3.client(host=host, port=int(port))
events, cancel = c.watch_prefix("py/")
lease = c.lease(30)
c.put("py/a", "1", lease=lease)
ev = next(events)
assert ev.key == b"py/a" and ev.value == b"1", ev
assert lease.remaining_ttl > 0 and lease.granted_ttl == 30
lease.refresh()
assert [k for k in lease.keys] == [b"py/a"], lease.keys
lease.revoke()
ev = next(events)
assert type(ev).__name__ == "DeleteEvent", ev
cancel()
print("python3-etcd3 ok")
"""
    p = subprocess.run([py, "-c", script, c.endpoint(c.names[1])], capture_output=True,
                       text=True, timeout=60)
    assert "python3-etcd3 ok" in p.stdout, p.stdout + p.stderr


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="arbiter-coordination-test-")
    c = Cluster(binary, work)
    ok = False
    try:
        for n in c.names:
            c.start(n)
        poll("a leader", lambda: c.leader(c.names))
        eps = [c.endpoint(n) for n in c.names]
        poll("member list", lambda: ctl(eps, "member", "list").returncode == 0)
        for name, check in [("watch", lambda: check_watch(c, eps)),
                            ("leases", lambda: check_leases(c, eps)),
                            ("lock", lambda: check_lock(c, eps)),
                            ("elect", lambda: check_elect(c, eps)),
                            ("python3-etcd3", lambda: check_python_client(c)),
                            ("lease across a leader kill",
                             lambda: check_lease_survives_leader_kill(c))]:
            check()
            print("ok:", name)
        c.stop_all()
        ok = True
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
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
