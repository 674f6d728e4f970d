#!/usr/bin/env bash
# Run every test of entrepot: unit tests, and integration tests that start the
# real binary on loopback and drive it with skopeo, podman and the CLI, against
# real upstreams (Debian's docker-registry, a Python token service).
# Extra arguments go to `cargo test` (e.g. ./test.sh -p entrepot --test oci_errors).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v cargo >/dev/null || { echo "test.sh: cargo is not installed; get Rust from https://rustup.rs (the toolchain is pinned in rust-toolchain.toml)" >&2; exit 1; }
command -v skopeo >/dev/null || missing+=(skopeo)
command -v podman >/dev/null || missing+=(podman)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v containerd >/dev/null && command -v ctr >/dev/null || missing+=(containerd)
command -v node >/dev/null || missing+=(nodejs npm)
command -v nginx >/dev/null || missing+=(nginx)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v promtool >/dev/null || missing+=(prometheus)
# pip, uv, twine and pypiserver for the Python tests live in a virtual environment.
venv="${ENTREPOT_PYTHON_VENV:-/opt/entrepot-ci}"
if [[ ! -x "$venv/bin/pypi-server" || ! -x "$venv/bin/uv" || ! -x "$venv/bin/twine" ]] ||
    ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    echo "test.sh: the Python tests need pip, uv, twine and pypiserver in $venv" >&2
    echo "test.sh: create it with: python3 -m venv $venv && $venv/bin/pip install -r .ci/requirements.txt (or set ENTREPOT_PYTHON_VENV)" >&2
    exit 1
fi
# Google's Node client for the Secret Manager compatibility tests.
if [[ ! -d crates/entrepot/tests/google/node/node_modules/@google-cloud/secret-manager ]] && command -v node >/dev/null; then
    echo "test.sh: the Node client tests need: npm ci --prefix crates/entrepot/tests/google/node" >&2
    exit 1
fi
# Chromium and playwright-core for the console's browser tests.
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if [[ ! -d crates/entrepot/tests/console/node_modules/playwright-core ]] && command -v node >/dev/null; then
    echo "test.sh: the console's browser tests need: npm ci --prefix crates/entrepot/tests/console" >&2
    exit 1
fi
if ((${#missing[@]})); then
    echo "test.sh: the integration tests need: ${missing[*]}" >&2
    echo "test.sh: install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

exec cargo test --workspace --locked "$@"
