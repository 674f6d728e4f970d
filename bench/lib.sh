# Helpers shared by the benchmark scripts (sourced, not run). Expects WORK (a
# scratch directory) and PIDS (an array) to be set by the caller.

# Stop every server the script started and remove the scratch directory.
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# Fail early, naming the tool, when one is missing.
require_tools() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
    done
    [ -x /usr/bin/docker-registry ] || { echo "bench: /usr/bin/docker-registry is missing (apt-get install -y docker-registry)" >&2; exit 1; }
}

# A free loopback port.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until a URL answers at all (any status).
wait_http() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench: $1 did not answer" >&2
    return 1
}
