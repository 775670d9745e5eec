#!/usr/bin/env bash
# Installs what is missing, configures and builds Arbiter.
#   scripts/build.sh              release-with-debug-info build in build/
#   scripts/build.sh --sanitize   ASan + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
flags=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) dir=build-asan; flags+=(-DARBITER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
    *) echo "usage: scripts/build.sh [--sanitize]" >&2; exit 2 ;;
  esac
done

bash scripts/setup-deps.sh
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$dir"
