#!/usr/bin/env bash
# Profiles one member of a fresh 3-member Arbiter on 127.0.0.1 under an
# arbiter-bench workload: CPU samples with call graphs (perf, DWARF
# unwinding), fdatasync count and latency (syscall tracepoints) and, with
# --sched, where its threads wait (perf sched: sleeping, runnable but
# waiting for a CPU, running). Every member started is stopped by its PID.
#
#   scripts/profile-arbiter.sh -- put --clients 64 --conns 8 --key-space 5000
#   scripts/profile-arbiter.sh --role follower --sched -- range --consistency l --clients 64 --conns 8
# Options:
#   --role leader|follower  which member to profile (default leader)
#   --seconds S             length of the CPU profile (default 8)
#   --preload N             sequential keys put before the workload (default 5000)
#   --sched                 also record scheduling for 4 s (system-wide)
#   --out DIR               results (default bench-results/profile-<UTC timestamp>)
#   --build DIR             build dir with server/arbiterd and bench/arbiter-bench
# The workload's --endpoints, --max-time, --total and --server-pids are set
# here (the load lasts the whole profile).
# Results: bench.json, threads.txt (CPU time and context switches per
# operation by thread name on the leader and the followers, over 3 s before
# the profile), top.txt (self time by library and symbol), children.txt
# (time including callees), fsync.txt, sched.txt, perf.data (perf report
# -i DIR/perf.data), member logs.
set -uo pipefail
cd "$(dirname "$0")/.."

role=leader
seconds=8
preload=5000
sched=0
out=""
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --role) role=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --preload) preload=$2; shift ;;
    --sched) sched=1 ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --) shift; break ;;
    *) sed -n '2,24p' "$0" >&2; exit 2 ;;
  esac
  shift
done
[ $# -gt 0 ] || { echo "give the workload after --, e.g. -- put --clients 64 --conns 8" >&2; exit 2; }
arbiterd=$build/server/arbiterd
bench=$build/bench/arbiter-bench
py=/usr/bin/python3
for b in "$arbiterd" "$bench" /usr/bin/etcdctl "$py"; do
  [ -x "$b" ] || { echo "missing executable: $b" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 2; }
out=${out:-bench-results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
work=$(mktemp -d)

pids=()
bench_pid=""
cleanup() {
  [ -n "$bench_pid" ] && kill -9 "$bench_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
names=(m1 m2 m3)
cp=()
pp=()
cluster=""
for i in 0 1 2; do
  cp[$i]=$(port)
  pp[$i]=$(port)
  cluster+="${cluster:+,}${names[$i]}=http://127.0.0.1:${pp[$i]}"
done
for i in 0 1 2; do
  "$arbiterd" --name "${names[$i]}" --data-dir "$work/${names[$i]}" \
    --listen-client-urls "http://127.0.0.1:${cp[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${cp[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${pp[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${pp[$i]}" \
    --initial-cluster "$cluster" 2>"$out/${names[$i]}.log" &
  pids+=($!)
done
eps="127.0.0.1:${cp[0]},127.0.0.1:${cp[1]},127.0.0.1:${cp[2]}"
deadline=$((SECONDS + 60))
until "$bench" put --endpoints "$eps" --total 1 --key-size 16 --json 2>/dev/null | grep -q '"ops":1,'; do
  [ $SECONDS -lt $deadline ] || { echo "no leader within 60 s" >&2; exit 1; }
done
li=$(/usr/bin/etcdctl --endpoints "$eps" endpoint status -w json | "$py" -c '
import json, sys
s = json.load(sys.stdin)
ids = [e["Status"]["header"]["member_id"] for e in s]
eps = sys.argv[1].split(",")
print(eps.index(s[ids.index(s[0]["Status"]["leader"])]["Endpoint"]))' "$eps") ||
  { echo "cannot find the leader" >&2; exit 1; }
target=${pids[$li]}
[ "$role" = follower ] && target=${pids[$(((li + 1) % 3))]}
echo "profiling the $role, pid $target; results in $out" >&2
"$bench" put --endpoints "$eps" --clients 64 --conns 8 --sequential-keys --total "$preload" \
  --key-space "$preload" --max-time 300 --json >"$out/preload.json"

sp=$(IFS=,; echo "${pids[*]}")
"$bench" "$@" --endpoints "$eps" --max-time $((seconds + 15)) --total 1000000000 \
  --server-pids "$sp" --json >"$out/bench.json" &
bench_pid=$!
# Let the load settle first (a bounded pause, not a wait for a condition).
sleep 2
# Every member's threads, by name: CPU time and context switches over 3 s
# before the profile, so that perf does not disturb them.
thread_snapshot() {
  "$py" -c '
import os, sys, time
for i, pid in enumerate(sys.argv[1:]):
    task = "/proc/%s/task" % pid
    for tid in os.listdir(task):
        try:
            name = open("%s/%s/comm" % (task, tid)).read().strip().replace(" ", "_")
            sw = sum(int(l.split()[1]) for l in open("%s/%s/status" % (task, tid))
                     if "ctxt_switches" in l)
            stat = open("%s/%s/stat" % (task, tid)).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        print(i, name, sw, int(stat[11]) + int(stat[12]))
print(time.time())' "${pids[@]}"
}
thread_snapshot >"$work/threads.a"
sleep 3
thread_snapshot >"$work/threads.b"
perf record -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync -p "$target" \
  -o "$work/fsync.data" -- sleep 5 >/dev/null 2>&1 &
fsync_pid=$!
perf record -F 997 --call-graph dwarf,16384 -p "$target" -o "$out/perf.data" -- sleep "$seconds" \
  >/dev/null 2>&1
wait "$fsync_pid"
if [ "$sched" = 1 ]; then
  perf sched record -o "$work/sched.data" -- sleep 4 >/dev/null 2>&1
  perf sched timehist -i "$work/sched.data" -p "$target" 2>/dev/null | "$py" -c '
import collections, re, sys
# Per thread name: how many threads, wake-ups, and the time sleeping,
# runnable but waiting for a CPU, and running (ms).
k = collections.defaultdict(lambda: [set(), 0, 0.0, 0.0, 0.0])
for line in sys.stdin:
    f = line.split()
    if len(f) < 6 or not re.match(r"^\d+\.\d+$", f[0]):
        continue
    m = re.match(r"(.*)\[(\d+)/(\d+)\]$", f[2])
    if not m:
        continue
    e = k[m.group(1)]
    e[0].add(m.group(2)); e[1] += 1
    e[2] += float(f[3]); e[3] += float(f[4]); e[4] += float(f[5])
print("thread name          threads  wake-ups  sleeping ms  runnable-waiting ms  running ms")
for name, e in sorted(k.items(), key=lambda x: -x[1][4]):
    print("%-20s %7d %9d %12.0f %20.0f %11.0f" % (name, len(e[0]), e[1], e[2], e[3], e[4]))
' >"$out/sched.txt"
fi
wait "$bench_pid"
bench_pid=""
"$py" - "$work/threads.a" "$work/threads.b" "$out/bench.json" "$li" "$(getconf CLK_TCK)" \
  >"$out/threads.txt" <<'PY'
import collections, json, sys
def load(path):
    rows = open(path).read().split("\n")
    acc = collections.defaultdict(lambda: [0, 0])
    for line in rows[:-2]:
        m, name, sw, ticks = line.split()
        acc[(m, name)][0] += int(sw)
        acc[(m, name)][1] += int(ticks)
    return acc, float(rows[-2])
a, t0 = load(sys.argv[1])
b, t1 = load(sys.argv[2])
ops = json.load(open(sys.argv[3]))["ops_per_sec"] * (t1 - t0)
leader, hz = sys.argv[4], int(sys.argv[5])
by = collections.defaultdict(lambda: [0, 0])
for k, (sw, ticks) in b.items():
    role = "leader" if k[0] == leader else "follower"
    by[(role, k[1])][0] += sw - a.get(k, [0, 0])[0]
    by[(role, k[1])][1] += ticks - a.get(k, [0, 0])[1]
print("about %.0f operations in %.1f s; per operation, summed over each role's members:" % (ops, t1 - t0))
print("%-9s %-16s %12s %12s" % ("role", "thread name", "CPU us/op", "switches/op"))
total = [0, 0]
for (role, name), (sw, ticks) in sorted(by.items(), key=lambda x: -x[1][1]):
    if sw == 0 and ticks == 0:
        continue
    us = ticks * 1e6 / hz / ops
    total[0] += us
    total[1] += sw / ops
    print("%-9s %-16s %12.1f %12.2f" % (role, name, us, sw / ops))
print("%-26s %12.1f %12.2f" % ("all", total[0], total[1]))
PY

perf script -i "$work/fsync.data" 2>/dev/null | "$py" -c '
import re, sys
start, d = {}, []
for line in sys.stdin:
    m = re.search(r"\s(\d+)\s+\[\d+\]\s+([\d.]+):\s+syscalls:sys_(enter|exit)_fdatasync", line)
    if not m:
        continue
    tid, t, kind = m.group(1), float(m.group(2)), m.group(3)
    if kind == "enter":
        start[tid] = t
    elif tid in start:
        d.append((t - start.pop(tid)) * 1000)
d.sort()
n = len(d)
if n == 0:
    print("no fdatasync in 5 s")
else:
    print("%d fdatasync in 5 s (%.0f/s); ms: mean %.2f p50 %.2f p90 %.2f p99 %.2f max %.2f; "
          "blocked in fdatasync %.0f%% of the time" % (n, n / 5, sum(d) / n, d[n // 2],
          d[int(n * 0.9)], d[min(n - 1, int(n * 0.99))], d[-1], sum(d) / 50))
' >"$out/fsync.txt"
perf report -i "$out/perf.data" --no-children -g none --sort dso,sym -q 2>/dev/null | head -80 \
  >"$out/top.txt"
perf report -i "$out/perf.data" --children -g none --sort sym -q 2>/dev/null |
  grep -v '^$' | head -120 >"$out/children.txt"
echo "workload: $(cat "$out/bench.json")"
echo "fsync ($role): $(cat "$out/fsync.txt")"
echo "threads (all members):"
cat "$out/threads.txt"
echo "top symbols:"
head -15 "$out/top.txt"
[ "$sched" = 1 ] && cat "$out/sched.txt"
echo "full results: $out"
