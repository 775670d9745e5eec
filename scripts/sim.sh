#!/usr/bin/env bash
# Runs the randomized Raft cluster simulation for longer than the default
# test run. Every argument goes to raft_sim, for example:
#   scripts/sim.sh --duration 600              as many seeds as fit in 10 minutes
#   scripts/sim.sh --start-seed 5000 --seeds 20000
#   scripts/sim.sh --seed 4242 --verbose       replay one failing seed
#   scripts/sim.sh --nodes 5 --steps 20000 --duration 300
# A long run is split across the cores: each process takes every Nth seed
# range when --duration is given.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec build/tests/raft_sim "$@"
