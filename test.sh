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
if ((${#missing[@]})); then
    echo "test.sh: the integration tests need: ${missing[*]}" >&2
    echo "test.sh: install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

exec cargo test --workspace --locked "$@"
