#!/usr/bin/env bash
# Lints and renders the Helm chart, validates every rendered object and example offline, and
# checks (default) or regenerates (--write) manifests/ and the chart's CRD. Installs its pinned
# Python tools (PyPI) into target/k8s-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/k8s-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import helm_python, kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.4
fi
cargo build -q -p shoal-operator --bin shoal-operator
mode="${1:---check}"
exec "$venv/bin/python" scripts/k8s_manifests.py "$mode" --operator-bin "${CARGO_TARGET_DIR:-target}/debug/shoal-operator"
