#!/usr/bin/env bash
# A short, real run of arbiter-bench against a 3-member Arbiter, so the
# benchmark keeps working: every workload must complete operations without
# errors, and failover must report a gap after killing the member it is
# given.
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
for w in put range txn-put mixed; do
  out=$("$bench" "$w" --endpoints "$eps" --clients 4 --conns 2 --total 200 --max-time 20 --json)
  echo "$out"
  if ! grep -q '"errors":{}' <<<"$out" || ! grep -q '"ops":200,' <<<"$out"; then
    echo "FAIL: $w: $out"
    fail=1
  fi
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
