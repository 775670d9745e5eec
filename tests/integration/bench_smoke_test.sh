#!/usr/bin/env bash
# A short, real run of arbiter-bench against a 3-member Arbiter, so the
# benchmark keeps working: every workload must complete operations without
# errors, on both key-value clients (lean HTTP/2 and gRPC's), which must
# also report refused calls alike; the watch check must catch the events lost with a killed member;
# failover must report a gap after killing the member it is given.
#   tests/integration/bench_smoke_test.sh <arbiterd> <arbiter-bench>
set -uo pipefail
arbiterd=$1
bench=$2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

names=(a b c)
declare -A cport pport
cluster=""
for n in "${names[@]}"; do
  cport[$n]=$(port)
  pport[$n]=$(port)
  cluster+="${cluster:+,}$n=http://127.0.0.1:${pport[$n]}"
done
for n in "${names[@]}"; do
  "$arbiterd" --name "$n" --data-dir "$work/$n" \
    --listen-client-urls "http://127.0.0.1:${cport[$n]}" \
    --advertise-client-urls "http://127.0.0.1:${cport[$n]}" \
    --listen-peer-urls "http://127.0.0.1:${pport[$n]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${pport[$n]}" \
    --initial-cluster "$cluster" --heartbeat-interval 50 --election-timeout 500 \
    2>"$work/$n.log" &
  pids+=($!)
done
eps="127.0.0.1:${cport[a]},127.0.0.1:${cport[b]},127.0.0.1:${cport[c]}"

# Writes fail fast while no leader is known: wait (with a deadline) until
# one put goes through.
deadline=$((SECONDS + 30))
until "$bench" put --endpoints "$eps" --total 1 --json 2>/dev/null | grep -q '"ops":1,'; do
  if [ $SECONDS -ge $deadline ]; then echo "FAIL: no leader within 30 s"; exit 1; fi
done

fail=0
for client in h2 grpc; do
  for w in put range txn-put mixed; do
    out=$("$bench" "$w" --client "$client" --endpoints "$eps" --clients 4 --conns 2 --total 200 \
      --max-time 20 --server-pids "$(IFS=,; echo "${pids[*]}")" --json)
    echo "$client $out"
    if ! grep -q '"errors":{}' <<<"$out" || ! grep -q '"ops":200,' <<<"$out"; then
      echo "FAIL: $client $w: $out"
      fail=1
    fi
    # The servers' usage was measured: some CPU and some context switches.
    if ! grep -Eq '"server_cpu_s":[0-9.]+,' <<<"$out" ||
      ! grep -Eq '"server_switches_per_op":(0\.[0-9]*[1-9]|[1-9])' <<<"$out"; then
      echo "FAIL: $client $w: server usage not measured: $out"
      fail=1
    fi
  done
done

# Refused calls are counted by their gRPC code, the same by both clients: a
# put of a 1 MiB key and a 1 MiB value is larger than a request may be.
errs=()
for client in h2 grpc; do
  out=$("$bench" put --client "$client" --endpoints "$eps" --total 3 --max-time 20 \
    --key-size 1048576 --val-size 1048576 --json)
  echo "$client $out"
  errs+=("$(grep -o '"errors":{[^}]*}' <<<"$out")")
done
if [ "${errs[0]}" != "${errs[1]}" ] || ! grep -Eq '"errors":\{"[A-Z_]+":3\}' <<<"${errs[0]}"; then
  echo "FAIL: the clients disagree on refused puts: h2 ${errs[0]}, grpc ${errs[1]}"
  fail=1
fi

# The watch check must catch lost events: with one stream per member, kill
# member c while puts go on through a; the watchers on c's stream miss the
# later puts, and the run must say so (exit 1, "verified":false) although
# every watcher was created and every put acknowledged.
"$bench" watch --endpoints "$eps" --conns 3 --streams 3 --watchers 30 --clients 1 --rate 20 \
  --total 200 --max-time 5 --json >"$work/watch.out" &
wpid=$!
# Kill c once its stream has delivered events: poll the put count through
# a's endpoint (a short range read of the watch prefix) with a deadline.
deadline=$((SECONDS + 20))
until [ "$(/usr/bin/etcdctl --endpoints "127.0.0.1:${cport[a]}" get bench-watch/ --prefix \
  --keys-only 2>/dev/null | grep -c .)" -ge 10 ]; do
  if [ $SECONDS -ge $deadline ]; then echo "FAIL: no watch puts within 20 s"; exit 1; fi
done
kill -9 "${pids[2]}"
wait "$wpid"
wrc=$?
out=$(cat "$work/watch.out")
echo "$out"
if [ "$wrc" = 0 ] || ! grep -q '"verified":false' <<<"$out" || grep -q 'not all created' <<<"$out" \
  || ! grep -q '"watchers_complete":20,' <<<"$out" || ! grep -q 'watch stream ended early' <<<"$out"; then
  echo "FAIL: the watch run did not report the events lost with member c"
  fail=1
fi
# Restart c from its data dir and wait (with a deadline) until it serves.
n=c
"$arbiterd" --name "$n" --data-dir "$work/$n" \
  --listen-client-urls "http://127.0.0.1:${cport[$n]}" \
  --advertise-client-urls "http://127.0.0.1:${cport[$n]}" \
  --listen-peer-urls "http://127.0.0.1:${pport[$n]}" \
  --initial-advertise-peer-urls "http://127.0.0.1:${pport[$n]}" \
  --initial-cluster "$cluster" --heartbeat-interval 50 --election-timeout 500 \
  2>>"$work/$n.log" &
pids[2]=$!
deadline=$((SECONDS + 30))
until "$bench" range --endpoints "127.0.0.1:${cport[c]}" --total 1 --json 2>/dev/null |
  grep -q '"ops":1,'; do
  if [ $SECONDS -ge $deadline ]; then echo "FAIL: c did not come back within 30 s"; exit 1; fi
done

# Failover: kill member a (leader or not, puts must continue) and expect a
# measured gap.
out=$("$bench" failover --endpoints "127.0.0.1:${cport[b]},127.0.0.1:${cport[c]}" --clients 2 \
  --total 100000 --max-time 6 --kill-after 1 --kill-pid "${pids[0]}" --json)
echo "$out"
if grep -q '"failover_gap_ms":-1.0' <<<"$out"; then
  echo "FAIL: no put was acknowledged after the kill"
  fail=1
fi
[ "$fail" = 0 ] && echo "arbiter-bench smoke: ok"
exit $fail
