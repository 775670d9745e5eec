#!/usr/bin/env bash
# Side-by-side benchmark of a 3-member etcd 3.4 and a 3-member Arbiter on
# 127.0.0.1, driven by the same arbiter-bench workloads, alternating
# etcd, Arbiter, etcd, Arbiter... for --rounds rounds. Each cluster starts
# from fresh data dirs with the same heartbeat and election timeouts (etcd
# fsyncs its WAL, Arbiter its raft log; neither is told otherwise).
#
#   scripts/bench-vs-etcd.sh                 full set, 3 rounds (about 15 min)
#   scripts/bench-vs-etcd.sh --rounds 5 --duration 10
#   scripts/bench-vs-etcd.sh --quick         a short slice (about a minute)
# Options:
#   --rounds N        rounds (default 3; --quick: 1)
#   --duration S      seconds per timed workload (default 8; --quick: 1)
#   --out DIR         results folder (default bench-results/<UTC timestamp>)
#   --build DIR       build dir holding server/arbiterd and bench/arbiter-bench
#                     (default build/; built with ninja if missing)
#   --arbiterd PATH, --bench PATH, --etcd PATH (default /usr/bin/etcd),
#   --grpc-floor PATH (default <build>/bench/arbiter-grpc-floor)
#   --client h2|grpc  arbiter-bench's client for the closed-loop key-value
#                     workloads (default h2: the lean HTTP/2 client, which
#                     takes less of the CPUs the servers share with it)
#   --no-chart        skip the PNG chart (otherwise gnuplot is installed if missing)
#   --floor           also run the key-value workloads against three
#                     arbiter-grpc-floor servers (answer at once, no work):
#                     what gRPC and the kernel alone allow on this machine
#   --only CASES      run only these comma-separated cases (put-64, put-1,
#                     range-l-1, range-l-64, range-s-1, range-s-64, txn-put-64,
#                     watch, lease-keepalive, rss, failover-default,
#                     failover-fast; "failover" means both failovers). The
#                     key space is loaded only by put-64, so list it too for
#                     put-1 and the ranges to read or overwrite loaded keys.
#
# Per round and system: a cluster with the default timeouts (heartbeat 100
# ms, election 1000 ms) runs, in order: RSS idle; put 64 clients over 8
# connections loading 50,000 sequential keys (256-byte values); RSS after
# 50,000 keys; put 1 client (random keys of the 50,000); range linearizable
# and serializable with 1 and 64 clients; txn-put 64 clients; watch fan-out
# (10,000 watchers on one prefix over 8 streams, puts at --watch-rate/s);
# lease keep-alive (10,000 leases over one stream to the leader); failover
# (SIGKILL of the leader under 8 clients' puts). Then a cluster with fast
# timeouts (heartbeat 50 ms, election 250 ms) runs the failover alone.
# --quick runs one round with the fast timeouts only, smaller counts.
#
# The machine's 1-minute load average is recorded at the start and end of
# each session (others' work on a shared machine skews the figures).
# The servers' CPU time per operation comes from /proc/<pid>/stat (utime +
# stime) over each measured phase (arbiter-bench --server-pids); RSS from
# /proc/<pid>/status. Results: raw.jsonl (one JSON object per run),
# report.md (medians, Arbiter/etcd ratios, the targets), chart.png.
# Every process started is stopped by its PID on exit. Exit status 1 if a
# workload failed (errors in a non-failover workload, or a watch whose
# watchers did not all get every event).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rounds=3
duration=8
quick=0
out=""
build=build
arbiterd=""
bench=""
etcd=/usr/bin/etcd
chart=1
watch_rate=10
only=""
floor=0
grpc_floor=""
client=h2
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --arbiterd) arbiterd=$2; shift ;;
    --bench) bench=$2; shift ;;
    --etcd) etcd=$2; shift ;;
    --watch-rate) watch_rate=$2; shift ;;
    --no-chart) chart=0 ;;
    --only) only=$2; shift ;;
    --floor) floor=1 ;;
    --grpc-floor) grpc_floor=$2; shift ;;
    --client) client=$2; shift ;;
    *) sed -n '2,31p' "$0" >&2; exit 2 ;;
  esac
  shift
done

keys=50000
watchers=10000
leases=10000
if [ "$quick" = 1 ]; then
  rounds=1
  duration=1
  keys=2000
  watchers=500
  leases=500
fi

if [ -z "$arbiterd" ] || [ -z "$bench" ]; then
  if [ ! -x "$build/server/arbiterd" ] || [ ! -x "$build/bench/arbiter-bench" ]; then
    [ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ninja -C "$build" arbiterd arbiter-bench || exit 1
  fi
  arbiterd=${arbiterd:-$build/server/arbiterd}
  bench=${bench:-$build/bench/arbiter-bench}
fi
if [ "$floor" = 1 ] && [ -z "$grpc_floor" ]; then
  grpc_floor=$build/bench/arbiter-grpc-floor
  [ -x "$grpc_floor" ] || ninja -C "$build" arbiter-grpc-floor || exit 1
fi
etcdctl=/usr/bin/etcdctl
py=/usr/bin/python3
for b in "$arbiterd" "$bench" "$etcd" "$etcdctl" "$py" ${grpc_floor:+"$grpc_floor"}; do
  [ -x "$b" ] || { echo "missing executable: $b" >&2; exit 2; }
done

out=${out:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
raw=$out/raw.jsonl
: >"$raw"
work=$(mktemp -d)
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$out/run.log" >&2; }

# Members of the running cluster: the only processes left running between
# workloads (stop_cluster reaps each cluster before the next starts, so no
# PID here can have been reused).
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_seq=0
free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_cluster SYSTEM HEARTBEAT_MS ELECTION_MS: three members from fresh
# data dirs; sets pids, eps (all client endpoints) and client_eps (array).
start_cluster() {
  local sys=$1 hb=$2 el=$3
  cluster_seq=$((cluster_seq + 1))
  local dir=$work/$sys-$cluster_seq logs=$out/logs/$sys-$cluster_seq
  mkdir -p "$dir" "$logs"
  local names=(m1 m2 m3) cp=() pp=() cluster="" i
  for i in 0 1 2; do
    cp[$i]=$(free_port)
    pp[$i]=$(free_port)
    cluster+="${cluster:+,}${names[$i]}=http://127.0.0.1:${pp[$i]}"
  done
  pids=()
  client_eps=()
  for i in 0 1 2; do
    local common=(--name "${names[$i]}" --data-dir "$dir/${names[$i]}"
      --listen-client-urls "http://127.0.0.1:${cp[$i]}"
      --advertise-client-urls "http://127.0.0.1:${cp[$i]}"
      --listen-peer-urls "http://127.0.0.1:${pp[$i]}"
      --initial-advertise-peer-urls "http://127.0.0.1:${pp[$i]}"
      --initial-cluster "$cluster" --initial-cluster-token "bench-$sys"
      --heartbeat-interval "$hb" --election-timeout "$el")
    if [ "$sys" = etcd ]; then
      "$etcd" "${common[@]}" --logger zap --log-level warn 2>"$logs/${names[$i]}.log" &
    elif [ "$sys" = floor ]; then
      "$grpc_floor" --listen "127.0.0.1:${cp[$i]}" 2>"$logs/${names[$i]}.log" &
    else
      "$arbiterd" "${common[@]}" 2>"$logs/${names[$i]}.log" &
    fi
    pids+=($!)
    client_eps+=("127.0.0.1:${cp[$i]}")
  done
  eps=$(IFS=,; echo "${client_eps[*]}")
  # Ready when a put goes through (polled, with a deadline).
  local deadline=$((SECONDS + 60))
  until "$bench" put --endpoints "$eps" --total 1 --key-size 16 --json 2>/dev/null |
    grep -q '"ops":1,'; do
    if [ $SECONDS -ge $deadline ]; then
      log "FAIL: $sys cluster not ready within 60 s (logs: $logs)"
      return 1
    fi
  done
}

stop_cluster() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  local deadline=$((SECONDS + 20))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  pids=()
}

# Index (0..2) of the leader among the members, from Status; polled until
# every member names the same leader.
leader_index() {
  local deadline=$((SECONDS + 30)) idx
  while [ $SECONDS -lt $deadline ]; do
    idx=$("$etcdctl" --endpoints "$eps" endpoint status -w json --command-timeout 2s 2>/dev/null |
      "$py" -c '
import json, sys
s = json.load(sys.stdin)
leaders = {e["Status"]["leader"] for e in s}
ids = [e["Status"]["header"]["member_id"] for e in s]
eps = sys.argv[1].split(",")
if len(s) == 3 and len(leaders) == 1 and next(iter(leaders)) in ids:
    lead = next(iter(leaders))
    print(eps.index(s[ids.index(lead)]["Endpoint"]))
' "$eps" 2>/dev/null)
    if [ -n "$idx" ]; then echo "$idx"; return 0; fi
    sleep 0.2
  done
  return 1
}

failures=0
# record SYSTEM ROUND CASE JSON: appends one line to raw.jsonl.
record() {
  "$py" -c '
import json, sys
d = json.loads(sys.argv[4]) if sys.argv[4] else {}
d.update(system=sys.argv[1], round=int(sys.argv[2]), case=sys.argv[3])
print(json.dumps(d))' "$1" "$2" "$3" "$4" >>"$raw"
}

# run_bench SYSTEM ROUND CASE ARGS...: one arbiter-bench run, recorded.
run_bench() {
  wanted "$3" || return 0
  local sys=$1 round=$2 case=$3
  shift 3
  local res rc
  res=$("$bench" "$@" --json --client "$client" 2>>"$out/run.log")
  rc=$?
  res=$(tail -n 1 <<<"$res")
  if ! "$py" -c 'import json,sys; json.loads(sys.argv[1])' "$res" 2>/dev/null; then
    res='{}'
  fi
  local ok=1
  [ "$rc" = 0 ] || ok=0
  if [[ "$case" != failover* ]] && ! grep -q '"errors":{}' <<<"$res"; then ok=0; fi
  res=$("$py" -c 'import json,sys; d=json.loads(sys.argv[1]); d["ok"]=sys.argv[2]=="1"; print(json.dumps(d))' "$res" "$ok")
  record "$sys" "$round" "$case" "$res"
  if [ "$ok" = 1 ]; then
    log "$sys r$round $case: $("$py" -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.0f/s p50 %.2f ms p99 %.2f ms cpu %.3f ms/op gap %s ms" % (d["ops_per_sec"], d["p50_ms"], d["p99_ms"], d.get("server_cpu_ms_per_op", -1), d.get("failover_gap_ms", "-")))' "$res")"
  else
    log "FAIL: $sys r$round $case (exit $rc): $res"
    failures=$((failures + 1))
  fi
}

rss_kb() {
  local p out=""
  for p in "${pids[@]}"; do
    out+="${out:+,}$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo -1)"
  done
  echo "[$out]"
}

# wanted CASE: whether --only (if given) selects CASE.
wanted() {
  [ -z "$only" ] && return 0
  local c
  for c in ${only//,/ }; do
    [ "$c" = "$1" ] && return 0
    [ "$c" = failover ] && [[ "$1" == failover-* ]] && return 0
  done
  return 1
}

# One system's session with the default timeouts (or, with --quick, the
# fast ones): every workload, failover last.
session() {
  local sys=$1 round=$2 hb=100 el=1000 fo=failover-default
  if [ "$quick" = 1 ]; then hb=50; el=250; fo=failover-fast; fi
  local any=0 c
  for c in rss put-64 put-1 range-l-1 range-l-64 range-s-1 range-s-64 txn-put-64 watch \
    lease-keepalive "$fo"; do
    if wanted "$c"; then any=1; fi
  done
  [ "$any" = 1 ] || return 0
  start_cluster "$sys" "$hb" "$el" || { failures=$((failures + 1)); stop_cluster; return; }
  local sp
  sp=$(IFS=,; echo "${pids[*]}")
  # The floor servers hold nothing: only the key-value workloads apply.
  local kv_only=0
  [ "$sys" = floor ] && kv_only=1
  local c64=(--clients 64 --conns 8) c1=(--clients 1 --conns 1)
  local t=(--max-time "$duration" --total 100000000)
  record "$sys" "$round" load "{\"loadavg1\":$(cut -d' ' -f1 /proc/loadavg)}"
  wanted rss && [ "$kv_only" = 0 ] && record "$sys" "$round" rss-idle "{\"rss_kb\":$(rss_kb)}"
  run_bench "$sys" "$round" put-64 put --endpoints "$eps" "${c64[@]}" --sequential-keys \
    --total "$keys" --key-space "$keys" --val-size 256 --max-time 300 --server-pids "$sp"
  wanted rss && [ "$kv_only" = 0 ] && record "$sys" "$round" rss-50k "{\"rss_kb\":$(rss_kb),\"keys\":$keys}"
  run_bench "$sys" "$round" put-1 put --endpoints "$eps" "${c1[@]}" "${t[@]}" --key-space "$keys" \
    --val-size 256 --server-pids "$sp"
  local c
  for c in l s; do
    run_bench "$sys" "$round" "range-$c-1" range --endpoints "$eps" "${c1[@]}" "${t[@]}" \
      --consistency "$c" --key-space "$keys" --server-pids "$sp"
    run_bench "$sys" "$round" "range-$c-64" range --endpoints "$eps" "${c64[@]}" "${t[@]}" \
      --consistency "$c" --key-space "$keys" --server-pids "$sp"
  done
  run_bench "$sys" "$round" txn-put-64 txn-put --endpoints "$eps" "${c64[@]}" "${t[@]}" \
    --key-space "$keys" --val-size 256 --server-pids "$sp"
  if [ "$kv_only" = 1 ]; then
    record "$sys" "$round" load "{\"loadavg1\":$(cut -d' ' -f1 /proc/loadavg)}"
    stop_cluster
    return
  fi
  run_bench "$sys" "$round" watch watch --endpoints "$eps" --conns 8 --streams 8 --clients 2 \
    --watchers "$watchers" --rate "$watch_rate" --total $((watch_rate * duration)) \
    --max-time "$duration" --val-size 256 --server-pids "$sp"
  local li=0
  if wanted lease-keepalive; then
    li=$(leader_index) || { log "FAIL: $sys: no leader"; failures=$((failures + 1)); stop_cluster; return; }
  fi
  run_bench "$sys" "$round" lease-keepalive lease-keepalive --endpoints "${client_eps[$li]}" \
    --conns 8 --clients 64 --leases "$leases" --max-time "$duration" --server-pids "$sp"
  wanted "$fo" && failover "$sys" "$round" "$fo"
  record "$sys" "$round" load "{\"loadavg1\":$(cut -d' ' -f1 /proc/loadavg)}"
  stop_cluster
}

# failover SYSTEM ROUND CASE: SIGKILL the leader under puts to the others.
failover() {
  local sys=$1 round=$2 case=$3 li others=() i
  li=$(leader_index) || { log "FAIL: $sys: no leader"; failures=$((failures + 1)); return; }
  for i in 0 1 2; do [ "$i" = "$li" ] || others+=("${client_eps[$i]}"); done
  run_bench "$sys" "$round" "$case" failover --endpoints "$(IFS=,; echo "${others[*]}")" \
    --clients 8 --conns 2 --kill-pid "${pids[$li]}" --kill-after 1 \
    --max-time $((duration + 4)) --total 100000000 --key-space "$keys"
}

fast_failover_session() {
  local sys=$1 round=$2
  wanted failover-fast || return 0
  start_cluster "$sys" 50 250 || { failures=$((failures + 1)); stop_cluster; return; }
  failover "$sys" "$round" failover-fast
  stop_cluster
}

log "results: $out; rounds $rounds, $duration s per timed workload$([ "$quick" = 1 ] && echo ', quick')$([ -n "$only" ] && echo ", only $only")"
log "load before: $(uptime)"
{
  echo "etcd: $("$etcd" --version | head -1)"
  echo "arbiterd: $arbiterd ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null))"
  echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
  echo "arbiter-bench client (closed-loop key-value workloads): $client"
  echo "load before: $(uptime)"
} >"$out/env.txt"
for round in $(seq 1 "$rounds"); do
  for sys in etcd arbiter $([ "$floor" = 1 ] && echo floor); do
    session "$sys" "$round"
    [ "$quick" = 1 ] || [ "$sys" = floor ] || fast_failover_session "$sys" "$round"
  done
done
echo "load after: $(uptime)" >>"$out/env.txt"
log "load after: $(uptime)"

"$py" "$repo/scripts/bench_report.py" "$out" || failures=$((failures + 1))
if [ "$chart" = 1 ]; then
  if ! command -v gnuplot >/dev/null; then
    log "installing gnuplot-nox for the chart"
    apt-get install -y -q gnuplot-nox >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q gnuplot-nox >/dev/null 2>&1; }
  fi
  if command -v gnuplot >/dev/null; then
    (cd "$out" && gnuplot chart.gp) || log "chart failed"
  else
    log "no gnuplot: chart skipped"
  fi
fi
log "report: $out/report.md"
[ "$failures" = 0 ] || { log "$failures workload(s) failed"; exit 1; }
exit 0
