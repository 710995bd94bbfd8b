#!/usr/bin/env bash
# The main job: builds Shoal in release mode and runs a self-managing local cluster of three
# shards on 127.0.0.1:7000-7002 (`redis-cli -c -p 7000` works). The control loop pushes the
# topology, restarts a node that dies and, with --autoscale, resizes the cluster from the
# nodes' metrics. Ctrl-C stops everything. More options: scripts/run.sh --help.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p shoal-node -p shoal-operator
if [ "${1:-}" = "--help" ]; then exec ./target/release/shoal-operator local --help; fi
exec ./target/release/shoal-operator local --shards 3 --port-base 7000 --dir target/shoal-local "$@"
