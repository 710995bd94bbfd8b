#!/usr/bin/env bash
# Builds Shoal in release mode and starts a shard node on 127.0.0.1:6379 (override any
# directive: scripts/run.sh --port 7000 --io-threads 2).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p shoal-node
exec ./target/release/shoal-node --port 6379 "$@"
