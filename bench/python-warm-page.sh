#!/usr/bin/env bash
# Warm Python project pages: how long entrepot takes to serve a cached project
# page of BENCH_FILES files (default 50,000) from memory (a loop of
# BENCH_LOOP requests), and from its store alone (the first request after each
# of BENCH_RESTARTS restarts: the stored page read back and rendered, as after
# a restart or after a file of the project was cached). The upstream is
# python3's http.server on loopback serving one generated static page (HTML,
# as pypiserver writes it); nothing leaves the machine.
# Needs: cargo, curl, python3.
# Usage: bench/python-warm-page.sh   (BENCH_FILES=50000 BENCH_LOOP=20 BENCH_RESTARTS=5 BENCH_BIN=...)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFILES=${BENCH_FILES:-50000}
LOOP=${BENCH_LOOP:-20}
RESTARTS=${BENCH_RESTARTS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench-warm.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools curl python3
entrepot_bin

mkdir -p "$WORK/up/simple/big"
python3 - "$WORK/up/simple" "$NFILES" <<'PY'
import sys
root, nfiles = sys.argv[1], int(sys.argv[2])
with open(f"{root}/big/index.html", "w") as f:
    f.write("<!DOCTYPE html><html><body>\n")
    for i in range(nfiles):
        name = f"big-{i}.0-py3-none-any.whl"
        f.write(f'<a href="/files/{name}#sha256={i:064x}" data-requires-python="&gt;=3.8" data-core-metadata="sha256={i + 1:064x}">{name}</a><br/>\n')
    f.write("</body></html>\n")
PY

UP_PORT=$(free_port)
(cd "$WORK/up" && exec python3 -m http.server "$UP_PORT" --bind 127.0.0.1 >"$WORK/up.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP_PORT/simple/big/"

launch_entrepot "$WORK/data"
ecli access-policy allow "127.0.0.1:$UP_PORT" >/dev/null
ecli repositories create big --repository-format=python --mode=remote-repository \
    --remote-python-repo="http://127.0.0.1:$UP_PORT/simple/" --remote-python-index-ttl=1h >/dev/null

timed() { # timed URL: seconds to the last byte of a JSON page
    curl -s -o /dev/null -w "%{time_total}\n" -H "Authorization: Bearer $E_TOKEN" \
        -H "Accept: application/vnd.pypi.simple.v1+json" "$1"
}
stats() { # stats LABEL: min / median / max of the numbers on stdin, in ms
    sort -n | awk -v label="$1" '{ v[NR] = $1 * 1000 } END { printf "%s: n=%d min %.1f ms, median %.1f ms, max %.1f ms\n", label, NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
}

URL="http://$E_ADDR/pypi/default/big/simple/big/"
echo "== project page of $NFILES files"
echo "cold: $(timed "$URL") s"
for _ in $(seq 1 "$LOOP"); do timed "$URL"; done | stats "warm, from memory"
# Not in a pipeline: the restarted servers must be this shell's, to be stopped.
for _ in $(seq 1 "$RESTARTS"); do
    kill "$E_PID"
    wait "$E_PID" 2>/dev/null || true
    launch_entrepot "$WORK/data"
    timed "http://$E_ADDR/pypi/default/big/simple/big/" >>"$WORK/restarts"
done
stats "warm, from the store (first request after a restart)" <"$WORK/restarts"
grep -c "GET /simple/big/" "$WORK/up.log" | sed 's/^/upstream page fetches: /'
