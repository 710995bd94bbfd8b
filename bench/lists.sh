#!/usr/bin/env bash
# List benchmark (LPUSH/LPOP/RPUSH/RPOP), Shoal against Debian's redis-server:
#
#   bench/lists.sh [--requests N] [--rounds N]
#
# Builds Shoal in release mode and runs bench/lists.py, which reuses bench.py's servers,
# pinning and redis-benchmark parsing, and writes its own section of docs/benchmarks.md and
# bench/results/lists.json. Needs redis-server, redis-benchmark and taskset (bench/run.sh
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-benchmark taskset python3; do
    command -v "$tool" >/dev/null || { echo "bench/lists.sh: $tool not found (bench/run.sh installs it)" >&2; exit 1; }
done
cargo build --release --locked -p shoal-node
exec python3 bench/lists.py "$@"
