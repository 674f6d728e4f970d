# Helpers shared by the benchmark scripts (sourced, not run). Expects WORK (a
# scratch directory) and PIDS (an array) to be set by the caller.

# Stop every server the script started and remove the scratch directory.
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# Fail early, naming the tool, when one is missing. `docker-registry` means
# Debian's /usr/bin/docker-registry (the CNCF distribution registry).
require_tools() {
    for tool in "$@"; do
        if [ "$tool" = docker-registry ]; then
            [ -x /usr/bin/docker-registry ] || { echo "bench: /usr/bin/docker-registry is missing (apt-get install -y docker-registry)" >&2; exit 1; }
        else
            command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
        fi
    done
}

# Build this checkout's release binary of entrepot if FILE (a path to a
# binary) does not exist yet.
build_release_if_missing() { # build_release_if_missing FILE
    [ -x "$1" ] && return 0
    echo "== building entrepot (release)" >&2
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && cargo build --release --locked --quiet -p entrepot)
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
# its output in DIR.out and DIR.log; quiet (warnings only); ARGS are more
# `serve` flags. Sets E_ADDR (host:port), E_PID and E_TOKEN (the bootstrap
# admin's token, written at the directory's first start; on a later start the
# previous E_TOKEN is kept).
launch_entrepot() { # launch_entrepot DIR [ARGS...]
    ENTREPOT_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$1" "${@:2}" >"$1.out" 2>"$1.log" &
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
    # A later start of the same directory has removed the file: keep the token.
    if [ -f "$1/bootstrap-admin-token" ]; then E_TOKEN=$(cat "$1/bootstrap-admin-token"); fi
}

# Start Debian's docker-registry (the CNCF distribution registry) on a free
# loopback port, quiet (errors only, no access log), with deletes enabled and
# its storage in DATA; AUTH is more configuration (an `auth:` section). Its
# configuration and log are $WORK/NAME.yml and $WORK/NAME.log. Sets D_ADDR
# (host:port) and D_PID.
launch_distribution() { # launch_distribution NAME DATA [AUTH]
    local port
    port=$(free_port)
    cat >"$WORK/$1.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
${3:-}
YAML
    /usr/bin/docker-registry serve "$WORK/$1.yml" >"$WORK/$1.log" 2>&1 &
    D_PID=$!
    PIDS+=("$D_PID")
    D_ADDR="127.0.0.1:$port"
    wait_http "http://$D_ADDR/v2/"
}

# The entrepot CLI, as the bootstrap admin of the server launch_entrepot started.
ecli() { ENTREPOT_SERVER="http://$E_ADDR" ENTREPOT_TOKEN=$E_TOKEN "$BIN" "$@"; }

# Set BIN to the entrepot binary to measure: BENCH_BIN when set (bench/all.sh
# passes the one it measures), else this checkout's release build, brought up
# to date.
entrepot_bin() {
    if [ -n "${BENCH_BIN:-}" ]; then
        BIN=$BENCH_BIN
        [ -x "$BIN" ] || { echo "bench: BENCH_BIN=$BIN is not an executable" >&2; exit 1; }
        return 0
    fi
    echo "== building entrepot (release)" >&2
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && cargo build --release --locked --quiet -p entrepot)
    BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/entrepot"
}

# CPU milliseconds (user + system) of a process and its children (nginx's
# workers), from /proc.
cpu_ms_tree() { # cpu_ms_tree PID
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$pid/stat")))
    done
    echo "$total"
}

# Push the file BLOB (digest DIGEST) to an OCI registry at BASE in one
# monolithic upload, with curl as "${CURL[@]}" (default `curl -sS --fail`)
# and the credentials in "${CURL_AUTH[@]}".
push_blob() { # push_blob BASE REPO_PATH
    local location curl=(curl -sS --fail)
    if [ -n "${CURL+x}" ]; then curl=("${CURL[@]}"); fi
    location=$("${curl[@]}" "${CURL_AUTH[@]}" -X POST -o /dev/null -D - "$1/v2/$2/blobs/uploads/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case $location in http*) ;; *) location="$1$location" ;; esac
    case $location in *\?*) location="$location&digest=$DIGEST" ;; *) location="$location?digest=$DIGEST" ;; esac
    "${curl[@]}" "${CURL_AUTH[@]}" -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$BLOB" -o /dev/null "$location"
}
