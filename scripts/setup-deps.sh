#!/usr/bin/env bash
# Installs the Debian packages that Arbiter's build and tests need.
#
# Idempotent: when every package is already installed it only checks and
# exits (no `apt-get update`, no network). Run as root, or with sudo on PATH.
set -euo pipefail

PACKAGES=(
  # Toolchain.
  g++ cmake ninja-build pkg-config clang-format
  # Libraries the build links.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libleveldb-dev libcli11-dev libabsl-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # arbiter-bench's lean HTTP/2 client.
  libnghttp2-dev
  # Real etcd 3.4 and clients, for conformance and differential tests.
  etcd-client etcd-server python3-etcd3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
