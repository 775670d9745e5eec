#!/usr/bin/env bash
# Fails if any C++ file differs from what clang-format (.clang-format) makes of it.
#   scripts/check-format.sh         check
#   scripts/check-format.sh --fix   rewrite the files in place
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
