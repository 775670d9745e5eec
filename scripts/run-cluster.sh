#!/usr/bin/env bash
# Builds arbiterd (installing what is missing) and runs a local 3-member
# cluster on 127.0.0.1 with its data under ./data/ (kept between runs: a
# second run restarts the same cluster). Ctrl-C stops every member cleanly.
#   scripts/run-cluster.sh                 client ports 2379, 22379, 32379
#   scripts/run-cluster.sh --fresh         wipe ./data first
#   scripts/run-cluster.sh --base-port 4379  client ports 4379, 24379, 34379
# Peer ports are the client ports + 1 (etcd's 2380, 22380, 32380).
#   ARBITER_DATA=/path scripts/run-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fresh=0
base=2379
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1 ;;
    --base-port) base=$2; shift ;;
    *) echo "usage: scripts/run-cluster.sh [--fresh] [--base-port N]" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup-deps.sh
cmake -S . -B build -G Ninja >/dev/null
targets=(arbiterd)
if ninja -C build -t targets all 2>/dev/null | grep -q '^arbiterctl:'; then targets+=(arbiterctl); fi
ninja -C build "${targets[@]}"

data=${ARBITER_DATA:-$PWD/data}
[ "$fresh" = 1 ] && rm -rf "$data"
mkdir -p "$data"

names=(m1 m2 m3)
client_ports=("$base" $((base + 20000)) $((base + 30000)))
peer_ports=($((base + 1)) $((base + 20001)) $((base + 30001)))
cluster=""
for i in 0 1 2; do
  cluster+="${cluster:+,}${names[$i]}=http://127.0.0.1:${peer_ports[$i]}"
done

pids=()
stop() {
  trap - INT TERM
  echo "stopping members: ${pids[*]}"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  exit 0
}
trap stop INT TERM

for i in 0 1 2; do
  n=${names[$i]}
  build/server/arbiterd --name "$n" --data-dir "$data/$n" \
    --listen-client-urls "http://127.0.0.1:${client_ports[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${client_ports[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-token arbiter-local \
    2>"$data/$n.log" &
  pids+=($!)
done

endpoints=""
for p in "${client_ports[@]}"; do endpoints+="${endpoints:+,}127.0.0.1:$p"; done
echo "Arbiter cluster running (PIDs ${pids[*]}); logs in $data/*.log"
echo "endpoints: $endpoints"
echo "try: etcdctl --endpoints=$endpoints member list   (Ctrl-C to stop)"
# A member that exits (killed to try a failover, or failed) is reported;
# the others keep running until Ctrl-C.
while true; do
  alive=()
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
  [ ${#alive[@]} -eq 0 ] && { echo "every member exited; logs in $data/" >&2; exit 1; }
  wait -n "${alive[@]}" || true
  echo "a member exited; see its log in $data/" >&2
done
