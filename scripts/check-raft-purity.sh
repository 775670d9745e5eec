#!/usr/bin/env bash
# The consensus core is a pure state machine: no threads, clocks, sockets,
# files or RPC. Fails if anything in raft/ includes a header that brings
# them in.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='#include *[<"](thread|chrono|mutex|shared_mutex|condition_variable|future|atomic|filesystem|fstream|random|ctime|time\.h|unistd\.h|fcntl\.h|sys/[a-z_]+\.h|netinet/[a-z_]+\.h|arpa/[a-z_]+\.h|grpc[^">]*|grpcpp/[^">]*|leveldb/[^">]*|absl/synchronization/[^">]*|absl/time/[^">]*)[>"]'
if grep -nE "$forbidden" raft/*.h raft/*.cc; then
  echo "raft/ must stay free of threads, clocks, I/O and RPC (see above)" >&2
  exit 1
fi
echo "raft purity: $(ls raft/*.h raft/*.cc | wc -l) files clean"
