#!/usr/bin/env python3
"""Mutual exclusion with fencing tokens under a process pause, on a real
3-member Arbiter cluster.

Four contender processes (lock_contender.py) loop: take the lock "fence-lock"
(three with a lease of 2 s and the v3lock Lock RPC, one with
`etcdctl lock --ttl=2`), then write a resource three times (enter, work,
exit) through Txns guarded by the lock key's create revision (the fencing
token). One contender stops itself with SIGSTOP right after its first enter
write; the test keeps it stopped until its lease has expired and another
contender has completed a section, then resumes it with SIGCONT. Later the
leader is killed with SIGKILL (and restarted) while the contenders go on:
requests to it fail (a write may have an unknown outcome), keep-alives move
to another member.

Checks:
  - in the resource's history (the store's order of accepted writes), the
    sections never interleave: tokens never go down, and each section's
    writes come in order enter, work, exit;
  - the paused holder's write after SIGCONT was rejected, and another
    contender held the lock (with a higher token) while it was stopped;
  - every write a contender saw accepted is in the history at its revision,
    and no write it saw rejected is; the lock key was held with the token
    exactly when a write was accepted (read back at the write's revision);
  - in real time, each complete section ends before the next one begins,
    while the paused holder's section spans another holder's (it believed
    it held the lock: the fence is what kept its write out);
  - each token is the create revision of its holder's lock key; tokens are
    distinct; every contender takes the lock (nearly) as often as it tries,
    and sections complete after the leader's kill.
The same analysis run on the shadow key (what the resource receives without
the fence) must report the overlap caused by the pause, so the check is
shown to fail when exclusion fails.

  lock_fence_process_test.py <arbiterd> [--sections N]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_process_test import Cluster, poll  # noqa: E402
import etcd_grpc  # noqa: E402
from etcd_grpc import Conn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
TTL = 2
PHASES = ("enter", "work", "exit")


def parse(value):
    f = dict(part.split("=", 1) for part in value.split())
    return int(f["token"]), f["id"], f["phase"]


def check_exclusion(history):
    """Problems in a resource's write history [(revision, value)]: a write
    whose token is lower than one already written (a stale holder wrote after
    a newer one: two sections overlap), or a section's writes out of order."""
    problems = []
    top, top_rev, phase_of = 0, 0, {}
    for rev, value in history:
        token, cid, phase = parse(value)
        if token < top:
            problems.append("overlap: %s's section with token %d wrote %s at revision %d, "
                            "after the section with token %d began (revision %d)" %
                            (cid, token, phase, rev, top, top_rev))
            continue
        if token > top:
            top, top_rev = token, rev
            if phase != "enter":
                problems.append("section with token %d starts with %s at revision %d" %
                                (token, phase, rev))
        elif PHASES.index(phase) != PHASES.index(phase_of[token]) + 1:
            problems.append("token %d: %s after %s at revision %d" %
                            (token, phase, phase_of[token], rev))
        phase_of[token] = phase
    return problems


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arbiterd")
    ap.add_argument("--sections", type=int, default=6,
                    help="lock acquisitions per contender (at most 60 s of them)")
    args = ap.parse_args()
    binary = os.path.abspath(args.arbiterd)
    sections_each = args.sections
    work = tempfile.mkdtemp(prefix="arbiter-lock-fence-test-")
    c = Cluster(binary, work)
    contenders = {}
    ok = False
    t0 = time.monotonic()

    def say(text):
        print("[%5.1f s] %s" % (time.monotonic() - t0, text))
    try:
        for n in c.names:
            c.start(n)
        poll("a leader", lambda: c.leader(c.names))
        eps = [c.endpoint(n) for n in c.names]
        conn = Conn(eps[0])
        start_rev = poll("the first revision", lambda: conn.revision()) + 1

        logs = {}
        # Each contender's last two sections wait for this file, created
        # once the leader is killed: sections go fast, and without it they
        # could all be done before the kill.
        gate = os.path.join(work, "after-kill")
        for i, (cid, mode) in enumerate([("c0", "grpc"), ("c1", "grpc"), ("c2", "grpc"),
                                         ("c3", "etcdctl")]):
            logs[cid] = os.path.join(work, cid + ".log")
            args = [PYTHON, os.path.join(HERE, "lock_contender.py"), mode,
                    "--endpoints", ",".join(eps), "--id", cid, "--index", str(i),
                    "--log", logs[cid], "--ttl", str(TTL), "--sections", str(sections_each),
                    "--seconds", "60", "--gate", gate, "--gate-after", str(sections_each - 2)]
            if cid == "c0":
                args.append("--pause-first")
            out = open(os.path.join(work, cid + ".out"), "w")
            # Each in a process group of its own, so that etcdctl and the
            # sections it runs are stopped with it.
            contenders[cid] = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                               start_new_session=True)
        victim = contenders["c0"]

        # The victim stops itself inside its first section.
        poll("c0 to stop inside its section", lambda: proc_state(victim.pid) == "T")
        enter = [r for r in read_log(logs["c0"]) if r["event"] == "write"][-1]
        assert enter["phase"] == "enter" and enter["ok"], enter
        vtoken, vkey = enter["token"], enter["key"]

        def lock_passed():
            if conn.get(vkey).kvs:
                return False  # its lease has not expired yet
            return [r for cid in ("c1", "c2", "c3") for r in read_log(logs[cid])
                    if r["event"] == "write" and r["ok"] and r["phase"] == "exit" and
                    r["token"] > vtoken]
        took_over = poll("another contender to complete a section", lock_passed, timeout=20)
        # Resumed only once its key is gone: its lease expired while it was
        # stopped.
        victim.send_signal(signal.SIGCONT)
        say("c0 (token %d) stopped for %.2f s after its enter write; meanwhile its lease "
              "expired and %s completed a section with token %d" %
              (vtoken, time.monotonic() - enter["t"], took_over[0]["id"],
               took_over[0]["token"]))

        def late_write():
            return [r for r in read_log(logs["c0"])
                    if r["event"] == "write" and r["token"] == vtoken and r["phase"] != "enter"]
        rejected = poll("c0's late write to be answered", late_write)[0]
        assert rejected["ok"] is False, "the paused holder's late write was not rejected: %s" % \
            rejected
        say("c0's late %s write with token %d was rejected (revision %d)" %
              (rejected["phase"], vtoken, rejected["rev"]))

        # SIGKILL the leader while the contenders go on; restart it.
        def completed():
            return [r for cid in logs for r in read_log(logs[cid])
                    if r["event"] == "section" and r["outcome"] == "complete"]
        done_before = len(completed())
        poll("two more sections", lambda: len(completed()) >= done_before + 2)
        lead = poll("a leader", lambda: c.leader(c.names))
        c.kill9(lead)
        rest = [n for n in c.names if n != lead]
        new_lead = poll("a new leader", lambda: c.leader(rest))
        conn.close()
        conn = Conn(c.endpoint(new_lead))
        kill_rev = conn.revision()
        say("killed leader %s at about revision %d; new leader %s" %
            (lead, kill_rev, new_lead))
        open(gate, "w").close()
        c.start(lead)
        poll("the killed member back", lambda: c.leader(c.names))
        say("%s restarted" % lead)

        poll("every contender to finish",
             lambda: all(p.poll() is not None for p in contenders.values()), timeout=75)
        say("contenders done")
        for cid, p in contenders.items():
            assert p.returncode == 0, "%s exited %d: %s" % (
                cid, p.returncode, open(os.path.join(work, cid + ".out")).read()[-2000:])

        # The store's history of the resource and of its unfenced shadow.
        kvs = conn.kv.Range(etcd_grpc.pb.RangeRequest(
            key=b"fenced/", range_end=etcd_grpc.prefix_end("fenced/"))).kvs
        end_rev = max(kv.mod_revision for kv in kvs)
        events = etcd_grpc.replay(c.endpoint(new_lead), "fenced/", etcd_grpc.prefix_end("fenced/"),
                                  start_rev, end_rev)
        fenced = [(e[3], e[2]) for e in events if e[1] == "fenced/resource"]
        shadow = [(e[3], e[2]) for e in events if e[1] == "fenced/shadow"]

        problems = check_exclusion(fenced)
        assert not problems, problems
        tokens = sorted({parse(v)[0] for _, v in fenced})
        say("resource: %d accepted writes, %d sections, tokens %s" %
              (len(fenced), len(tokens), tokens))

        # What the contenders saw agrees with the history.
        records = [r for cid in logs for r in read_log(logs[cid])]
        writes = [r for r in records if r["event"] == "write"]
        at = dict(fenced)
        for w in writes:
            if w["ok"]:
                assert at.get(w["rev"]) == w["value"], "accepted write not in history: %s" % w
            elif w["ok"] is False:
                assert w["value"] not in at.values(), "rejected write in history: %s" % w
        others = [w for w in writes if w["ok"] is False and w != rejected]
        unknown = [w for w in writes if w["ok"] is None]
        say("other rejected writes: %d; writes with unknown outcome (leader kill): %d" %
              (len(others), len(unknown)))
        # Every fence decision was right: an accepted write's lock key existed
        # with the token as create revision just before it (revision - 1), a
        # rejected one's did not at the revision it was decided at.
        for w in writes:
            if w["ok"] is None:
                continue
            held = [kv for kv in conn.kv.Range(etcd_grpc.pb.RangeRequest(
                key=w["key"].encode(), revision=w["rev"] - 1 if w["ok"] else w["rev"])).kvs
                if kv.create_revision == w["token"]]
            assert bool(held) == w["ok"], "fence decided %s for %s" % (w["ok"], w)
        # The paused holder's late write sits after the new holder's in the
        # shadow, and the analysis without the fence reports the overlap.
        unfenced = check_exclusion(shadow)
        assert any(p.startswith("overlap: c0's section with token %d " % vtoken)
                   for p in unfenced), "without the fence, the pause went unnoticed: %s" % unfenced
        say("without the fence: %s" % unfenced[0])

        # In real time (one machine, one monotonic clock): complete sections
        # follow each other, each ending before the next holder's begins;
        # the paused holder believed it held the lock while another did.
        spans = {}
        for w in writes:
            s = spans.setdefault(w["token"], [w["t"], w["t"]])
            s[1] = w["t"]
        complete = {r["token"] for r in records
                    if r["event"] == "section" and r["outcome"] == "complete"}
        ordered = sorted(t for t in spans if t in complete)
        for a, b in zip(ordered, ordered[1:]):
            assert spans[a][1] < spans[b][0], "sections %d and %d overlap in time" % (a, b)
        assert spans[vtoken][0] < spans[took_over[0]["token"]][0] and \
            spans[took_over[0]["token"]][1] < spans[vtoken][1]

        locked = [r for r in records if r["event"] == "locked"]
        # Lock can answer for a key whose lease expires before its holder
        # reads it (as etcd's can); the holder then sees no key and does not
        # use it. Count those, and keep them rare.
        gone = [r for r in locked if r["token"] == 0]
        locked = [r for r in locked if r["token"] > 0]
        say("locks answered for keys already gone: %d" % len(gone))
        assert len(gone) <= 2, gone
        by_token = {}
        for r in locked:
            assert r["token"] not in by_token, "two holders with token %d" % r["token"]
            by_token[r["token"]] = r
            if r["id"] == "c3":
                # etcdctl's ETCD_LOCK_REV: when the lock was seen free.
                assert r["lock_rev"] >= r["token"], r
            else:
                # Lock's header revision is the key's create revision.
                assert r["lock_rev"] == r["token"], r
        assert set(tokens) <= set(by_token), "an accepted write with an unknown token"
        sections = [r for r in records if r["event"] == "section" and r["token"] > 0]
        assert len(sections) == len(locked)
        for cid in contenders:
            n = len([r for r in locked if r["id"] == cid])
            assert sections_each - 2 <= n <= sections_each, \
                "%s held the lock %d times of %d" % (cid, n, sections_each)
        assert [s for s in sections if s["token"] == vtoken][0]["outcome"] == "lost"
        after_kill = [s for s in sections if s["outcome"] == "complete" and s["token"] > kill_rev]
        assert len(after_kill) >= 2, "too few sections after the leader's kill: %s" % after_kill

        conn.close()
        c.stop_all()
        ok = True
        say("lock fence test: ok (%.1f s)" % (time.monotonic() - t0))
    finally:
        for p in contenders.values():
            if p.poll() is None:  # not reaped yet, so its group ID is still its own
                os.killpg(p.pid, signal.SIGCONT)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for p in c.procs.values():
            p.kill()
            p.wait()
        if not ok:
            for name in sorted(os.listdir(work)):
                if name.endswith(".log") or name.endswith(".out"):
                    with open(os.path.join(work, name)) as f:
                        lines = f.readlines()
                    odd = [ln for ln in lines if name.startswith("c") and
                           ('"ok": true' not in ln and '"outcome": "complete"' not in ln and
                            '"event": "locked"' not in ln)]
                    if odd:
                        print("---- %s (failures)" % name)
                        print("".join(odd[-20:]))
                    print("---- %s (tail)" % name)
                    print("".join(lines[-15:]))
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
