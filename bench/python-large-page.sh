#!/usr/bin/env bash
# Large upstream Python pages: how long entrepot takes to serve a project page
# of BENCH_FILES files (default 300,000) and a project list of BENCH_PROJECTS
# names (default 600,000) from a cold cache, and whether a small request is
# answered while the large page is being read. The upstream is python3's
# http.server on loopback serving two generated static pages (HTML, as
# pypiserver writes them); nothing leaves the machine. Bounded: one cold
# request and one warm request per page, one concurrent small request.
# Needs: cargo, curl, python3.
# Usage: bench/python-large-page.sh   (BENCH_FILES=300000 BENCH_PROJECTS=600000)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFILES=${BENCH_FILES:-300000}
NPROJECTS=${BENCH_PROJECTS:-600000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench-page.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools cargo curl python3

echo "== building entrepot (release)" >&2
(cd "$ROOT" && cargo build --release --locked --quiet)
BIN="$ROOT/target/release/entrepot"

echo "== writing a page of $NFILES files and a list of $NPROJECTS projects" >&2
mkdir -p "$WORK/up/simple/big" "$WORK/up/simple/small"
python3 - "$WORK/up/simple" "$NFILES" "$NPROJECTS" <<'PY'
import sys
root, nfiles, nprojects = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{root}/big/index.html", "w") as f:
    f.write("<!DOCTYPE html><html><body>\n")
    for i in range(nfiles):
        name = f"big-{i}.0-py3-none-any.whl"
        f.write(f'<a href="/files/{name}#sha256={i:064x}" data-requires-python="&gt;=3.8">{name}</a><br/>\n')
    f.write("</body></html>\n")
with open(f"{root}/small/index.html", "w") as f:
    f.write('<a href="/files/small-1.0.tar.gz#sha256=' + "0" * 64 + '">small-1.0.tar.gz</a>\n')
with open(f"{root}/index.html", "w") as f:
    f.write("<!DOCTYPE html><html><body>\n")
    for i in range(nprojects):
        f.write(f'<a href="/simple/project-{i}/">Project_{i}</a>\n')
    f.write("</body></html>\n")
PY
ls -l "$WORK/up/simple/index.html" "$WORK/up/simple/big/index.html" >&2

UP_PORT=$(free_port)
(cd "$WORK/up" && exec python3 -m http.server "$UP_PORT" --bind 127.0.0.1 >"$WORK/up.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP_PORT/simple/small/"

launch_entrepot "$WORK/data"
ecli access-policy allow "127.0.0.1:$UP_PORT" >/dev/null
ecli repositories create big --repository-format=python --mode=remote-repository \
    --remote-python-repo="http://127.0.0.1:$UP_PORT/simple/" >/dev/null
BASE="http://$E_ADDR/pypi/default/big/simple"
AUTH=(-H "Authorization: Bearer $E_TOKEN")
JSON=(-H "Accept: application/vnd.pypi.simple.v1+json")

timed() { # timed LABEL URL: prints seconds and the size of the answer
    curl -s -o "$WORK/answer" -w "$1: %{http_code} in %{time_total} s, %{size_download} bytes\n" "${AUTH[@]}" "${JSON[@]}" "$2"
}

echo "== project page of $NFILES files"
timed "cold (fetch, parse, record, render)" "$BASE/big/" &
BIG=$!
# The small request goes while the large page is being read.
for _ in $(seq 1 200); do
    grep -q "GET /simple/big/" "$WORK/up.log" 2>/dev/null && break
    sleep 0.05
done
timed "small page, concurrent" "$BASE/small/"
curl -s -o /dev/null -w "healthz, concurrent: %{http_code} in %{time_total} s\n" "http://$E_ADDR/healthz"
wait "$BIG"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print("files served:", len(p["files"]), "versions:", len(p["versions"]))' "$WORK/answer"
timed "warm" "$BASE/big/"

echo "== project list of $NPROJECTS projects"
timed "cold" "$BASE/"
timed "warm" "$BASE/"
timed "warm again" "$BASE/"
echo "entrepot RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$E_PID/status"), CPU seconds: $(awk '{print ($14 + $15) / 100}' "/proc/$E_PID/stat")"
