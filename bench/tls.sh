#!/usr/bin/env bash
# TLS benchmark: GET over TLS at pipeline 1 and 16, Shoal against Debian's redis-server (built
# with TLS), plus plain GET P16 of a Shoal build without TLS support against this one:
#
#   bench/tls.sh [--rounds N] [--requests N] [--shoal-before path/to/shoal-node]
#
# Builds Shoal in release mode (bench/prepare.sh), then runs bench/tls.py, which writes its
# section of docs/benchmarks.md and bench/results/tls.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/prepare.sh
command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }
exec "$venv/bin/python" bench/tls.py "$@"
