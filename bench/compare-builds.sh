#!/usr/bin/env bash
# Two entrepot binaries side by side on loopback (say, before and after a
# change), the same measures on each in interleaved rounds:
#   - manifest GET by tag, wrk -t2 -c32 (req/s);
#   - push of a BENCH_BLOB_MIB blob in one PUT body, and in a chunked PATCH
#     (MB/s, and the server's CPU milliseconds for the push);
#   - GET of that blob (MB/s).
# Prints each round's figures and the medians.
# Needs: wrk, curl, python3.
# Usage: bench/compare-builds.sh BIN_A BIN_B
#   (BENCH_ROUNDS=5 BENCH_SECS=5 BENCH_BLOB_MIB=200 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# = 2 ] || { echo "usage: $0 BIN_A BIN_B" >&2; exit 2; }
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-5}
BLOB_MIB=${BENCH_BLOB_MIB:-200}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT
require_tools wrk curl python3
PY="python3 $ROOT/bench/scale.py"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'

head -c $((BLOB_MIB * 1024 * 1024)) /dev/urandom >"$WORK/blob"
DIGEST="sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)"

declare -A ADDR PID AUTH
for side in A B; do
    if [ "$side" = A ]; then BIN=$1; else BIN=$2; fi
    launch_entrepot "$WORK/data-$side"
    ecli repositories create bench --repository-format=docker >/dev/null 2>&1
    ecli repositories add-iam-policy-binding bench \
        --member=allUsers --role=roles/artifactregistry.reader >/dev/null 2>&1
    ADDR[$side]=$E_ADDR PID[$side]=$E_PID
    AUTH[$side]="Basic $(printf 'admin:%s' "$E_TOKEN" | base64 -w0)"
    SCALE_AUTH="${AUTH[$side]}" $PY push "$E_ADDR" default/bench/app "$WORK/manifest.json"
done

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
sep() { if [[ $1 == *\?* ]]; then echo '&'; else echo '?'; fi; }
mbs() { python3 -c "print(round($1 / 1e6))"; }

# Upload session of a fresh image (so that nothing is skipped as present).
session() { # session SIDE IMAGE
    curl -sf -D - -o /dev/null -X POST -H "Authorization: ${AUTH[$1]}" \
        "http://${ADDR[$1]}/v2/default/bench/$2/blobs/uploads/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p'
}

: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then order="A B"; else order="B A"; fi
    for side in $order; do
        a=${ADDR[$side]} pid=${PID[$side]}
        wrk -t 2 -c 32 -d "${SECS}s" -H "$ACCEPT" "http://$a/v2/default/bench/app/manifests/x-seed" >"$WORK/wrk.out"
        if grep -q 'Non-2xx' "$WORK/wrk.out"; then cat "$WORK/wrk.out" >&2; exit 1; fi
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/wrk.out")

        loc=$(session "$side" "put$round")
        c0=$(cpu_ms "$pid")
        put=$(curl -sf -o /dev/null -w '%{speed_upload}' -X PUT -T "$WORK/blob" \
            -H "Authorization: ${AUTH[$side]}" -H 'Content-Type: application/octet-stream' \
            "http://$a$loc$(sep "$loc")digest=$DIGEST")
        put_cpu=$(($(cpu_ms "$pid") - c0))

        loc=$(session "$side" "patch$round")
        c0=$(cpu_ms "$pid")
        patch=$(curl -sf -o /dev/null -w '%{speed_upload}' -X PATCH -T "$WORK/blob" \
            -H 'Transfer-Encoding: chunked' -H "Authorization: ${AUTH[$side]}" \
            -H 'Content-Type: application/octet-stream' "http://$a$loc")
        patch_cpu=$(($(cpu_ms "$pid") - c0))

        get=$(curl -sf -o /dev/null -w '%{speed_download}' -H "Authorization: ${AUTH[$side]}" \
            "http://$a/v2/default/bench/put$round/blobs/$DIGEST")
        echo "round $round $side: manifest GET $rps req/s; PUT $(mbs "$put") MB/s, $put_cpu ms CPU; PATCH $(mbs "$patch") MB/s, $patch_cpu ms CPU; GET $(mbs "$get") MB/s" >&2
        echo "$side $rps $(mbs "$put") $put_cpu $(mbs "$patch") $patch_cpu $(mbs "$get")" >>"$WORK/results"
    done
done

echo "A = $1, B = $2; $ROUNDS interleaved rounds, medians; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK/results" "$BLOB_MIB" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
mib = sys.argv[2]
names = ["manifest GET, wrk -c32 (req/s)", f"push {mib} MiB, one PUT body (MB/s)", "  server CPU (ms)",
         f"push {mib} MiB, chunked PATCH (MB/s)", "  server CPU (ms)", f"GET {mib} MiB blob (MB/s)"]
print("| measure | A | B | B/A |")
print("|---|---|---|---|")
for i, name in enumerate(names, start=1):
    a = statistics.median(float(r[i]) for r in rows if r[0] == "A")
    b = statistics.median(float(r[i]) for r in rows if r[0] == "B")
    print(f"| {name} | {a:,.0f} | {b:,.0f} | {b / a if a else float('nan'):.2f} |")
EOF
