#!/usr/bin/env bash
# arbiterd refuses bad flags and inconsistent cluster definitions with a
# clear message and exit code 2, before touching any data dir.
#   tests/integration/arbiterd_flags_test.sh <path to arbiterd>
set -uo pipefail
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# expect <exit code> <message fragment> <args...>
expect() {
  local code=$1 want=$2
  shift 2
  local out rc
  out=$(cd "$work" && "$bin" "$@" 2>&1)
  rc=$?
  if [ "$rc" != "$code" ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: arbiterd $*: exit $rc (want $code), output: $out (want: $want)"
    fail=1
  fi
}

expect 2 "should be at least as 5 times as --heartbeat-interval" \
  --heartbeat-interval 100 --election-timeout 400
expect 2 "invalid value \"fast\" for flag -heartbeat-interval" --heartbeat-interval fast
expect 2 "couldn't find local name \"x\" in the initial cluster configuration" \
  --name x --initial-cluster y=http://127.0.0.1:2380
expect 2 'URL address does not have the form "host:port"' --listen-client-urls http://nope
expect 2 "valid values are \"new\" or \"existing\"" --initial-cluster-state old
expect 2 "--bogus" --bogus 1
expect 2 "cannot read --config-file" --config-file "$work/missing.yaml"
printf 'name: a\nheartbeat-interval: 100\nelection-timeout: 300\n' >"$work/bad.yaml"
expect 2 "should be at least as 5 times" --config-file "$work/bad.yaml"
expect 0 "--initial-cluster" --help
# Nothing was created by the refused starts.
if [ -n "$(ls "$work" | grep -v yaml)" ]; then
  echo "FAIL: refused starts left files: $(ls "$work")"
  fail=1
fi
# The checks can fail: a good flag set is not refused for these reasons.
out=$(cd "$work" && timeout 2 "$bin" --name a --data-dir "$work/a" \
  --listen-client-urls http://127.0.0.1:0 --advertise-client-urls http://127.0.0.1:1 \
  --listen-peer-urls http://127.0.0.1:0 --initial-advertise-peer-urls http://127.0.0.1:2 \
  --initial-cluster a=http://127.0.0.1:2 2>&1)
rc=$?
if [ "$rc" = 2 ]; then
  echo "FAIL: a valid configuration was refused: $out"
  fail=1
fi
[ "$fail" = 0 ] && echo "arbiterd flag checks: ok"
exit $fail
