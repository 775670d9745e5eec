#!/usr/bin/env bash
# Sets up, builds and runs Arbiter's default test suite through ctest:
# unit tests, 1,000 seeds of the cluster simulation, the planted-bug checks,
# and the format and purity checks.
#   scripts/test.sh               the default run
#   scripts/test.sh --sanitize    the same under ASan + UBSan (slower)
#   scripts/test.sh -R regex      only the matching tests (passed to ctest)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
build_flags=()
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) dir=build-asan; build_flags+=(--sanitize) ;;
    *) ctest_args+=("$1") ;;
  esac
  shift
done

bash scripts/build.sh "${build_flags[@]}"
cd "$dir"
ctest -j "$(nproc)" --output-on-failure --timeout 900 "${ctest_args[@]}"
