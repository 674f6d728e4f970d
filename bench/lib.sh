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

# Start the entrepot binary "$BIN" on a free loopback port, its state in DIR and
# its output in DIR.out and DIR.log; quiet (warnings only). Sets E_ADDR
# (host:port), E_PID and E_TOKEN (the bootstrap admin's token).
launch_entrepot() { # launch_entrepot DIR
    ENTREPOT_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$1" >"$1.out" 2>"$1.log" &
    E_PID=$!
    PIDS+=("$E_PID")
    for _ in $(seq 1 300); do
        grep -q '^entrepot listening' "$1.out" 2>/dev/null && break
        sleep 0.1
    done
    E_ADDR=$(head -1 "$1.out" | sed -n 's#^entrepot listening on http://##p')
    if [ -z "$E_ADDR" ]; then
        echo "bench: entrepot did not start:" >&2
        cat "$1.out" "$1.log" >&2
        exit 1
    fi
    wait_http "http://$E_ADDR/v2/"
    E_TOKEN=$(cat "$1/bootstrap-admin-token")
}

# The entrepot CLI, as the bootstrap admin of the server launch_entrepot started.
ecli() { ENTREPOT_SERVER="http://$E_ADDR" ENTREPOT_TOKEN=$E_TOKEN "$BIN" "$@"; }
