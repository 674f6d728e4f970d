#!/usr/bin/env bash
# Python pull-through cache benchmark: entrepot (a remote Python repository)
# against proxpi and devpi-server (its root/pypi mirror), all three caching the
# same upstream: pypiserver on loopback serving generated wheels (no real
# package is downloaded):
#   - BENCH_PACKAGES projects bench-pkg-00.. (3 versions each), each requiring
#     the next: the install set is all of them, named on the command line;
#   - one project, bench-big, with BENCH_FILES files (versions 0.0.1..).
# Measures, every proxy warm (it has served the same requests once before):
#   1. `pip install` and `uv pip install` of the set into a fresh --target
#      directory, no client cache, wall time, best of 3 (rounds interleave the
#      three proxies);
#   2. the server's part of those installs alone: every GET pip made during
#      a warm install (pages, metadata files, wheels, as its log lists them) replayed by one curl process, one after another over one
#      kept-alive connection as pip does, and 8 at a time as uv does; best of
#      5; the client's own work is left out;
#   3. `wrk -t 2 -c 32 -d 10s` on the bench-big index page, requests/s, with
#      `Accept: text/html` (HTML: the one format all three serve).
# For scale, the same installs also run with no index server at all
# (`--no-index --find-links` on a directory of the same wheels): the client's
# own work, a floor no proxy can go under.
# Every proxy is anonymous: entrepot's repository grants allUsers the reader
# role, so no client sends credentials to any of them. pip and uv run without
# any PIP_*/UV_* variable from the environment and without config files.
# proxpi runs under gunicorn (2 workers, one per core, 8 threads each); devpi
# with its defaults (50 threads); the index TTL is 30 minutes for all three.
# Needs: cargo, curl, wrk, python3 (with venv), and pip, uv and pypi-server in
# ENTREPOT_PYTHON_VENV (default /opt/entrepot-ci, see .ci/requirements.txt).
# proxpi, devpi-server and gunicorn are pip-installed into a venv under the
# scratch directory (from PyPI), or taken from BENCH_PEER_VENV if set.
# Usage: bench/python-remote.sh   (BENCH_PACKAGES=30 BENCH_FILES=2000 by default)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NPKG=${BENCH_PACKAGES:-30}
NFILES=${BENCH_FILES:-2000}
PYVENV=${ENTREPOT_PYTHON_VENV:-/opt/entrepot-ci}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench-python.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

for tool in cargo curl wrk python3 "$PYVENV/bin/pip" "$PYVENV/bin/uv" "$PYVENV/bin/pypi-server"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# pip and uv see none of the caller's PIP_*/UV_* settings.
CLEAN_ENV=(env)
for var in $(compgen -e); do
    case $var in PIP_* | UV_*) CLEAN_ENV+=(-u "$var") ;; esac
done

# BENCH_BIN=PATH measures that binary instead of building release.
entrepot_bin

PEER_VENV=${BENCH_PEER_VENV:-$WORK/venv}
if [ ! -x "$PEER_VENV/bin/devpi-server" ] || [ ! -x "$PEER_VENV/bin/gunicorn" ] ||
    ! "$PEER_VENV/bin/python" -c 'import proxpi' 2>/dev/null; then
    echo "== installing proxpi, devpi-server and gunicorn into $PEER_VENV" >&2
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/pip" install --quiet --disable-pip-version-check proxpi devpi-server gunicorn >&2
fi
PROXPI_VERSION=$("$PEER_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("proxpi"))')
DEVPI_VERSION=$("$PEER_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("devpi-server"))')

echo "== generating ${NPKG} projects and ${NFILES} files of bench-big" >&2
mkdir -p "$WORK/packages"
"$PYVENV/bin/python" - "$ROOT/crates/entrepot/tests/fixtures" "$WORK/packages" "$NPKG" "$NFILES" <<'PY'
import os, sys, types
# make_dist.py runs its main() when loaded: load it without that call.
path = os.path.join(sys.argv[1], "make_dist.py")
source = open(path).read()
assert source.rstrip().endswith("\nmain()"), path
make_dist = types.ModuleType("make_dist")
exec(compile(source.rstrip()[: -len("main()")], path, "exec"), make_dist.__dict__)
out, npkg, nfiles = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def put(name, version, requires):
    filename, data = make_dist.wheel_bytes(name, version, requires)
    with open(os.path.join(out, filename), "wb") as f:
        f.write(data)
for i in range(npkg):
    requires = [f"bench-pkg-{i + 1:02d}>=1.0"] if i + 1 < npkg else []
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        put(f"bench-pkg-{i:02d}", version, requires)
for i in range(1, nfiles + 1):
    put("bench-big", f"0.0.{i}", [])
PY
PKGS=()
for i in $(seq 0 $((NPKG - 1))); do PKGS+=("$(printf 'bench-pkg-%02d' "$i")"); done
# The install set's wheels alone, for the no-server floor.
mkdir -p "$WORK/floor"
cp "$WORK"/packages/bench_pkg_*.whl "$WORK/floor/"
LAST_MODULE=$(printf 'bench_pkg_%02d' $((NPKG - 1)))

UP_PORT=$(free_port)
"$PYVENV/bin/pypi-server" run -p "$UP_PORT" -i 127.0.0.1 --disable-fallback --hash-algo sha256 \
    -a . -P . "$WORK/packages" >"$WORK/pypiserver.log" 2>&1 &
PIDS+=($!)
UP="127.0.0.1:$UP_PORT"
wait_http "http://$UP/simple/"

echo "== entrepot" >&2
launch_entrepot "$WORK/entrepot"
ecli access-policy allow "$UP" >/dev/null
ecli repositories create up --repository-format=python --mode=remote-repository \
    --remote-python-repo="http://$UP/simple/" --remote-tag-ttl=30m >/dev/null
ecli repositories add-iam-policy-binding up --member=allUsers --role=roles/artifactregistry.reader >/dev/null
E_INDEX="http://$E_ADDR/pypi/default/up/simple/"

echo "== proxpi $PROXPI_VERSION" >&2
P_PORT=$(free_port)
PROXPI_INDEX_URL="http://$UP/simple/" PROXPI_INDEX_TTL=1800 PROXPI_CACHE_DIR="$WORK/proxpi-cache" \
    PROXPI_LOGGING_LEVEL=WARNING "$PEER_VENV/bin/gunicorn" --chdir "$WORK" --bind "127.0.0.1:$P_PORT" --preload \
    --workers 2 --threads 8 proxpi.server:app >"$WORK/proxpi.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_PORT/health"
P_INDEX="http://127.0.0.1:$P_PORT/index/"

echo "== devpi-server $DEVPI_VERSION" >&2
D_PORT=$(free_port)
D_DIR="$WORK/devpi"
"$PEER_VENV/bin/devpi-init" --serverdir "$D_DIR" --no-root-pypi >"$WORK/devpi-init.log" 2>&1
"$PEER_VENV/bin/devpi-server" --serverdir "$D_DIR" --host 127.0.0.1 --port "$D_PORT" \
    --mirror-cache-expiry 1800 >"$WORK/devpi.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$D_PORT/+api"
# root/pypi, a mirror of the local upstream, through devpi's REST API.
D_PASS=$(curl -sf -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' \
    -d '{"user": "root", "password": ""}' "http://127.0.0.1:$D_PORT/+login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["password"])')
D_AUTH=$(printf 'root:%s' "$D_PASS" | base64 -w0)
curl -sf -X PUT -H 'Content-Type: application/json' -H 'Accept: application/json' -H "X-Devpi-Auth: $D_AUTH" \
    -d "{\"type\": \"mirror\", \"mirror_url\": \"http://$UP/simple/\", \"volatile\": false}" \
    "http://127.0.0.1:$D_PORT/root/pypi" >/dev/null
D_INDEX="http://127.0.0.1:$D_PORT/root/pypi/+simple/"

NAMES=(entrepot proxpi devpi)
declare -A INDEX=([entrepot]=$E_INDEX [proxpi]=$P_INDEX [devpi]=$D_INDEX)

install() { # install pip|uv INDEX_URL|floor [PIP_LOG]: seconds taken, into a fresh target
    local target="$WORK/target" start end ok source log=()
    [ -n "${3:-}" ] && log=(-v --log "$3") # -v: the log then lists every request
    rm -rf "$target"
    if [ "$2" = floor ]; then
        source=(--no-index --find-links "$WORK/floor")
    else
        source=(--index-url "$2")
    fi
    start=$(date +%s.%N)
    if [ "$1" = pip ]; then
        "${CLEAN_ENV[@]}" PIP_CONFIG_FILE=/dev/null "$PYVENV/bin/pip" install --no-cache-dir \
            --disable-pip-version-check --no-input --retries 0 --timeout 120 \
            --target "$target" "${log[@]}" "${source[@]}" "${PKGS[@]}" >"$WORK/install.log" 2>&1 && ok=1 || ok=0
    else
        "${CLEAN_ENV[@]}" UV_HTTP_TIMEOUT=120 "$PYVENV/bin/uv" pip install --no-cache --no-config \
            --python "$PYVENV/bin/python" --target "$target" "${source[@]}" "${PKGS[@]}" \
            >"$WORK/install.log" 2>&1 && ok=1 || ok=0
    fi
    end=$(date +%s.%N)
    if [ "$ok" != 1 ] || [ ! -f "$target/$LAST_MODULE/__init__.py" ]; then
        echo "bench: $1 install from $2 failed:" >&2
        tail -20 "$WORK/install.log" >&2
        return 1
    fi
    python3 -c "print('%.3f' % ($end - $start))"
}

min() { python3 -c "import sys; print(min(sys.argv[1:], key=float))" "$@"; }

# What pip asks for, as a curl config: every GET its log records, with pip's
# Accept header (file downloads ignore it).
requests_of() { # requests_of PIP_LOG CURL_CONFIG
    {
        echo 'silent'
        echo 'fail'
        echo 'no-progress-meter'
        echo 'header = "Accept: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"'
        sed -n 's#.*\(http://[^ ]*\) "GET \([^ ]*\) HTTP/1\.1".*#url = "\1\2"\noutput = "/dev/null"#p' "$1"
    } >"$2"
    grep -c '^url' "$2"
}

replay() { # replay CURL_CONFIG PARALLEL: seconds for one curl process to fetch them all
    local start end parallel=()
    [ "$2" -gt 1 ] && parallel=(--parallel --parallel-max "$2")
    start=$(date +%s.%N)
    curl "${parallel[@]}" --config "$1" || { echo "bench: replaying $1 failed" >&2; return 1; }
    end=$(date +%s.%N)
    python3 -c "print('%.4f' % ($end - $start))"
}

echo "== warming every proxy (one pip and one uv install each, bench-big page)" >&2
declare -A NREQ
for name in "${NAMES[@]}"; do
    install pip "${INDEX[$name]}" >/dev/null
    install uv "${INDEX[$name]}" >/dev/null
    curl -sf -o /dev/null -H 'Accept: text/html' "${INDEX[$name]}bench-big/"
    # What a warm install asks for (entrepot, having cached the wheels, now
    # offers their metadata, so pip asks for that too).
    install pip "${INDEX[$name]}" "$WORK/pip-$name.log" >/dev/null
    NREQ[$name]=$(requests_of "$WORK/pip-$name.log" "$WORK/requests-$name.curl")
done

declare -A PIP UV
INDEX[floor]=floor
for round in 1 2 3; do
    echo "== install round $round of 3" >&2
    for name in "${NAMES[@]}" floor; do
        PIP[$name]="${PIP[$name]:-} $(install pip "${INDEX[$name]}")"
        UV[$name]="${UV[$name]:-} $(install uv "${INDEX[$name]}")"
    done
done

declare -A SEQ PAR
for round in 1 2 3 4 5; do
    echo "== replaying pip's requests, round $round of 5" >&2
    for name in "${NAMES[@]}"; do
        SEQ[$name]="${SEQ[$name]:-} $(replay "$WORK/requests-$name.curl" 1)"
        PAR[$name]="${PAR[$name]:-} $(replay "$WORK/requests-$name.curl" 8)"
    done
done

declare -A RPS PAGE_BYTES PAGE_FILES
for name in "${NAMES[@]}"; do
    url="${INDEX[$name]}bench-big/"
    curl -sf -H 'Accept: text/html' -o "$WORK/page.html" "$url"
    PAGE_BYTES[$name]=$(wc -c <"$WORK/page.html")
    PAGE_FILES[$name]=$(grep -o 'bench_big-0\.0\.[0-9]*-py3-none-any\.whl</a>' "$WORK/page.html" | wc -l)
    echo "== wrk on $name $url (${PAGE_FILES[$name]} files, ${PAGE_BYTES[$name]} bytes)" >&2
    wrk -t 2 -c 32 -d 2s -H 'Accept: text/html' "$url" >/dev/null # every worker and thread warm
    wrk -t 2 -c 32 -d 10s -H 'Accept: text/html' "$url" >"$WORK/wrk-$name.txt"
    if grep -q 'Non-2xx' "$WORK/wrk-$name.txt"; then
        echo "bench: $name answered non-2xx under wrk:" >&2
        cat "$WORK/wrk-$name.txt" >&2
        exit 1
    fi
    RPS[$name]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/wrk-$name.txt")
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
E_PIP=$(min ${PIP[entrepot]}) P_PIP=$(min ${PIP[proxpi]}) D_PIP=$(min ${PIP[devpi]})
E_UV=$(min ${UV[entrepot]}) P_UV=$(min ${UV[proxpi]}) D_UV=$(min ${UV[devpi]})
echo
echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD) vs proxpi $PROXPI_VERSION vs devpi-server $DEVPI_VERSION, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $LOAD_START at start, $LOAD_END at end"
echo "install set: $NPKG projects (3 versions each, a dependency chain); index page: bench-big, $NFILES files, Accept: text/html"
echo
row "measure" "entrepot" "proxpi" "devpi" "entrepot/proxpi" "entrepot/devpi"
row "---" "---" "---" "---" "---" "---"
row "warm pip install (s, best of 3)" "$E_PIP" "$P_PIP" "$D_PIP" "$(ratio "$E_PIP" "$P_PIP")" "$(ratio "$E_PIP" "$D_PIP")"
row "warm uv pip install (s, best of 3)" "$E_UV" "$P_UV" "$D_UV" "$(ratio "$E_UV" "$P_UV")" "$(ratio "$E_UV" "$D_UV")"
F_PIP=$(min ${PIP[floor]}) F_UV=$(min ${UV[floor]})
row "  no index server (s, best of 3): pip, uv" "$F_PIP, $F_UV" "" "" "" ""
row "  server's share above that floor (s): pip" "$(python3 -c "print('%.3f' % ($E_PIP - $F_PIP))")" \
    "$(python3 -c "print('%.3f' % ($P_PIP - $F_PIP))")" "$(python3 -c "print('%.3f' % ($D_PIP - $F_PIP))")" "" ""
row "  same, uv" "$(python3 -c "print('%.3f' % ($E_UV - $F_UV))")" \
    "$(python3 -c "print('%.3f' % ($P_UV - $F_UV))")" "$(python3 -c "print('%.3f' % ($D_UV - $F_UV))")" "" ""
E_SEQ=$(min ${SEQ[entrepot]}) P_SEQ=$(min ${SEQ[proxpi]}) D_SEQ=$(min ${SEQ[devpi]})
E_PAR=$(min ${PAR[entrepot]}) P_PAR=$(min ${PAR[proxpi]}) D_PAR=$(min ${PAR[devpi]})
row "pip's ${NREQ[entrepot]}/${NREQ[proxpi]}/${NREQ[devpi]} requests replayed one by one (s, best of 5)" \
    "$E_SEQ" "$P_SEQ" "$D_SEQ" "$(ratio "$E_SEQ" "$P_SEQ")" "$(ratio "$E_SEQ" "$D_SEQ")"
row "same, 8 at a time (s, best of 5)" \
    "$E_PAR" "$P_PAR" "$D_PAR" "$(ratio "$E_PAR" "$P_PAR")" "$(ratio "$E_PAR" "$D_PAR")"
row "warm index page, wrk -c32 (req/s)" "${RPS[entrepot]}" "${RPS[proxpi]}" "${RPS[devpi]}" \
    "$(ratio "${RPS[entrepot]}" "${RPS[proxpi]}")" "$(ratio "${RPS[entrepot]}" "${RPS[devpi]}")"
row "  page size (bytes)" "${PAGE_BYTES[entrepot]}" "${PAGE_BYTES[proxpi]}" "${PAGE_BYTES[devpi]}" "" ""
echo
echo "all runs (s): pip entrepot${PIP[entrepot]}, proxpi${PIP[proxpi]}, devpi${PIP[devpi]}, no server${PIP[floor]}; uv entrepot${UV[entrepot]}, proxpi${UV[proxpi]}, devpi${UV[devpi]}, no server${UV[floor]}"
echo "targets: time ratios <= 0.67 (entrepot >= 1.5x faster), req/s ratios >= 1.5, against both peers"
