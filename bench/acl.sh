#!/usr/bin/env bash
# ACL benchmark: GET and SET as Shoal's default user, as a restricted user with key patterns,
# and as the same restricted user on Redis 7.0, in one run:
#
#   bench/acl.sh [--rounds N] [--requests N]
#
# Installs what is missing the way bench/run.sh does, builds Shoal in release mode, then runs
# bench/acl.py, which writes its section of docs/benchmarks.md and bench/results/acl.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/prepare.sh
exec "$venv/bin/python" bench/acl.py "$@"
