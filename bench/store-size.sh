#!/usr/bin/env bash
# Manifest GET against the size of the store, for two entrepot binaries (say,
# before and after a change) on the same data directory: one store holding
# BENCH_TAGS tags (default 100,000, the same manifest under each name) of one
# image and BENCH_REPOS repositories (default 10,000, one image tagged
# `latest` each), populated once; then, in interleaved rounds, each binary is
# started on it in turn and measured (wrk -t2 -c32, anonymous, after a
# warm-up that is not recorded: every tag and every repository asked for in
# turn, so that the figures are of a warm server, as one is after hours of
# pulls, not of a cache filling up):
#   - manifest GET by a tag drawn at random over the first 1,000 tags, and
#     over all of them (bench/scale-tags.lua);
#   - manifest GET of `latest` in a repository drawn at random over all of
#     them (bench/scale-repos.lua).
# Prints each round and a table of min / median / max req/s and B/A.
# Needs: wrk, curl, python3.
# Usage: bench/store-size.sh BIN_A BIN_B
#   (BENCH_ROUNDS=5 BENCH_SECS=5 BENCH_TAGS=100000 BENCH_REPOS=10000 to change;
#    --smoke: 2,000 tags, 200 repositories, one round of 1 s runs)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
if [ "${1:-}" = --smoke ]; then SMOKE=1; shift; fi
[ $# = 2 ] || { echo "usage: $0 [--smoke] BIN_A BIN_B" >&2; exit 2; }
if ((SMOKE)); then
    ROUNDS=1 SECS=1 TAGS=2000 REPOS=200
else
    ROUNDS=${BENCH_ROUNDS:-5} SECS=${BENCH_SECS:-5} TAGS=${BENCH_TAGS:-100000} REPOS=${BENCH_REPOS:-10000}
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT
require_tools wrk curl python3
PY="python3 $ROOT/bench/scale.py"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
DATA="$WORK/data"
started=$SECONDS

echo "== populating with $1: $TAGS tags, $REPOS repositories" >&2
BIN=$1
launch_entrepot "$DATA"
ecli repositories create bench --repository-format=docker >/dev/null
# Anonymous pulls of every repository of the project.
ecli projects add-iam-policy-binding default \
    --member=allUsers --role=roles/artifactregistry.reader >/dev/null
BASIC="Basic $(printf 'admin:%s' "$E_TOKEN" | base64 -w0)"
SCALE_AUTH="$BASIC" $PY push "$E_ADDR" default/bench/app "$WORK/manifest.json"
SCALE_AUTH="$BASIC" $PY tags "$E_ADDR" default/bench/app "$WORK/manifest.json" 1 "$TAGS" 16
SCALE_AUTH="$BASIC" $PY repos "$E_ADDR" entrepot "$WORK/manifest.json" 1 "$REPOS" 16
kill "$E_PID"
wait "$E_PID" 2>/dev/null || true

# measure SIDE NAME wrk-arguments...: one recorded run.
measure() {
    local side=$1 name=$2
    shift 2
    wrk -t 2 -c 32 -d "${SECS}s" -H "$ACCEPT" "$@" >"$WORK/wrk.out" 2>&1 || true
    if grep -q 'Non-2xx\|Socket errors' "$WORK/wrk.out"; then cat "$WORK/wrk.out" >&2; exit 1; fi
    local rps
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/wrk.out")
    echo "   round $round $side $name: $rps req/s" >&2
    echo "$side $name $rps" >>"$WORK/results"
}

: >"$WORK/results"
TAGS_LUA="$ROOT/bench/scale-tags.lua" REPOS_LUA="$ROOT/bench/scale-repos.lua"
HOT=$((TAGS < 1000 ? TAGS : 1000))
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then order="A B"; else order="B A"; fi
    for side in $order; do
        if [ "$side" = A ]; then BIN=$1; else BIN=$2; fi
        launch_entrepot "$DATA"
        url="http://$E_ADDR/"
        # About 5,000 requests a second even while the cache fills.
        wrk -t 2 -c 32 -d "$((TAGS / 5000 + 1))s" -s "$TAGS_LUA" -H "$ACCEPT" "$url" -- /v2/default/bench/app/manifests "$TAGS" sequential >/dev/null 2>&1 || true
        wrk -t 2 -c 32 -d "$((REPOS / 2000 + 1))s" -s "$REPOS_LUA" -H "$ACCEPT" "$url" -- default "$REPOS" sequential >/dev/null 2>&1 || true
        measure "$side" "tags-$HOT" -s "$TAGS_LUA" "$url" -- /v2/default/bench/app/manifests "$HOT"
        measure "$side" "tags-$TAGS" -s "$TAGS_LUA" "$url" -- /v2/default/bench/app/manifests "$TAGS"
        measure "$side" "repos-$REPOS" -s "$REPOS_LUA" "$url" -- default "$REPOS"
        kill "$E_PID"
        wait "$E_PID" 2>/dev/null || true
    done
done

echo "A = $1, B = $2; $ROUNDS interleaved rounds of ${SECS} s, req/s min / median / max; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $((SECONDS - started)) s in all"
echo
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = list(dict.fromkeys(r[1] for r in rows))
titles = {"tags": "manifest GET, random tag of the first {} of one image",
          "repos": "manifest GET, random repository of {}"}
print("| measure | A | B | B/A (medians) |")
print("|---|---|---|---|")
for name in names:
    kind, n = name.split("-")
    cells = []
    meds = []
    for side in "AB":
        v = sorted(float(r[2]) for r in rows if r[0] == side and r[1] == name)
        meds.append(statistics.median(v))
        cells.append(f"{v[0]:,.0f} / {meds[-1]:,.0f} / {v[-1]:,.0f}")
    title = titles[kind].format(f"{int(n):,}")
    print(f"| {title} | {cells[0]} | {cells[1]} | {meds[1] / meds[0]:.2f} |")
PY
