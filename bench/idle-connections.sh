#!/usr/bin/env bash
# Memory per idle keep-alive connection, entrepot beside distribution on
# loopback: open BENCH_CONNECTIONS connections that send nothing, or GET a
# small manifest once (one after another, or all in flight at once), and
# BENCH_UPLOAD_CONNECTIONS that each push a BENCH_UPLOAD_KIB blob, then sit
# idle; compare the server's VmRSS before and after, twice in a row (the
# second batch shows what the first left behind). Then
# manifest GET throughput (wrk -t2 -c32, BENCH_SECS), so that a change that
# saves memory can be seen not to cost speed, and its latency (p50, p99) and
# throughput with 1,000 concurrent keep-alive connections (wrk -t2 -c1000),
# BENCH_ROUNDS interleaved rounds, min / median / max.
# Needs: wrk, curl, python3, docker-registry.
# Usage: bench/idle-connections.sh [--bin PATH]
#   (BENCH_CONNECTIONS=5000 BENCH_UPLOAD_CONNECTIONS=300 BENCH_UPLOAD_KIB=4096
#    BENCH_SECS=10 BENCH_ROUNDS=3 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${BENCH_CONNECTIONS:-5000}
UPLOADS=${BENCH_UPLOAD_CONNECTIONS:-300}
UPLOAD_KIB=${BENCH_UPLOAD_KIB:-4096}
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
BIN=${BIN:-"$ROOT/target/release/entrepot"}
[ "${1:-}" = --bin ] && BIN=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT
require_tools wrk curl python3 docker-registry
PY="python3 $ROOT/bench/scale.py"
[ -x "$BIN" ] || { echo "bench: $BIN is missing (cargo build --release -p entrepot)" >&2; exit 1; }
# The client needs a descriptor per connection too.
ulimit -n "$(ulimit -Hn)"

# Room for every connection (the default limit is 4,096).
export ENTREPOT_MAX_CONNECTIONS=$((COUNT + 1000))
MANIFEST=/v2/default/bench/app/manifests/x-seed

# A fresh entrepot and distribution, each with the small image: sets E_ADDR,
# E_PID, D and D_PID. A fresh pair per case, since memory a process freed
# stays in its RSS and would be reused by the next case.
fresh_servers() { # fresh_servers N
    launch_entrepot "$WORK/entrepot-data-$1"
    ecli repositories create bench --repository-format=docker >/dev/null 2>&1
    ecli repositories add-iam-policy-binding bench \
        --member=allUsers --role=roles/artifactregistry.reader >/dev/null 2>&1
    launch_distribution "registry-$1" "$WORK/registry-data-$1"
    D="$D_ADDR"
    SCALE_AUTH="Basic $(printf 'admin:%s' "$E_TOKEN" | base64 -w0)" \
        $PY push "$E_ADDR" default/bench/app "$WORK/manifest.json"
    $PY push "$D" default/bench/app "$WORK/manifest.json"
}

stop_servers() {
    kill "$E_PID" "$D_PID"
    wait "$E_PID" "$D_PID" 2>/dev/null || true
}

# The Authorization header value for pushing to ADDR (distribution: none).
auth_of() { [ "$1" = "$E_ADDR" ] && echo "Basic $(printf 'admin:%s' "$E_TOKEN" | base64 -w0)" || true; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# KiB per connection of one batch of idle connections, and the RSS left once
# they are closed. PATH `-` sends nothing; `upload` pushes a blob.
batch() { # batch ADDR PID PATH [at-once]
    local before after closed n=$COUNT
    # Warm: the request once, so that caches and pools are not counted.
    curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$1$MANIFEST"
    sleep 1
    before=$(rss_kib "$2")
    if [ "$3" = upload ]; then
        n=$UPLOADS
        coproc HOLD { SCALE_AUTH=$(auth_of "$1") $PY hold-upload "$1" default/bench/app "$n" "$UPLOAD_KIB"; }
    else
        coproc HOLD { SCALE_HOLD_AT_ONCE=$([ "${4:-}" = at-once ] && echo 1 || echo 0) $PY hold "$1" "$3" "$n"; }
    fi
    read -r line <&"${HOLD[0]}"
    [ "$line" = open ] || { echo "bench: holding connections failed" >&2; exit 1; }
    sleep 1
    after=$(rss_kib "$2")
    exec {HOLD[1]}>&-
    wait "$HOLD_PID"
    sleep 2
    closed=$(rss_kib "$2")
    python3 -c "print(f'{($after - $before) / $n:.1f} KiB per connection (RSS {$before / 1024:.1f} -> {$after / 1024:.1f} MiB, {$closed / 1024:.1f} MiB once closed)')"
}

rps() { # rps ADDR [CONNECTIONS]: "p50_ms p99_ms req/s socket_errors"
    wrk -t 2 -c "${2:-32}" -d "${SECS}s" --timeout 30s --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$1$MANIFEST" >"$WORK/wrk.out" 2>&1
    if grep -q 'Non-2xx' "$WORK/wrk.out"; then cat "$WORK/wrk.out" >&2; exit 1; fi
    read -r p50 p99 rate errors < <($PY wrk-parse "$WORK/wrk.out")
    echo "$p50 $p99 $rate $errors"
}

echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD) vs distribution, $COUNT idle connections, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
n=0
for case in "silent:-:" "after one request each:$MANIFEST:" "after one request each, all in flight at once:$MANIFEST:at-once" \
    "after pushing a $UPLOAD_KIB KiB blob each ($UPLOADS connections):upload:"; do
    IFS=: read -r label path mode <<<"$case"
    n=$((n + 1))
    fresh_servers "$n"
    for server in entrepot distribution; do
        if [ "$server" = entrepot ]; then addr=$E_ADDR pid=$E_PID; else addr=$D pid=$D_PID; fi
        first=$(batch "$addr" "$pid" "$path" "$mode") || exit 1
        second=$(batch "$addr" "$pid" "$path" "$mode") || exit 1
        echo "$server, $label: $first; a second batch: $second"
    done
    stop_servers
done
fresh_servers rps
: >"$WORK/rps"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then order="entrepot distribution"; else order="distribution entrepot"; fi
    for server in $order; do
        if [ "$server" = entrepot ]; then addr=$E_ADDR; else addr=$D; fi
        for conns in 32 1000; do
            echo "$server $conns $(rps "$addr" "$conns")" >>"$WORK/rps"
        done
    done
done
echo
echo "manifest GET, wrk -t2, ${SECS} s runs, $ROUNDS interleaved rounds, min / median / max:"
echo
python3 - "$WORK/rps" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def cell(v, fmt):
    v = sorted(v)
    return " / ".join(fmt.format(x) for x in (v[0], statistics.median(v), v[-1]))
print("| connections | server | p50 (ms) | p99 (ms) | req/s | failed requests (all rounds) |")
print("|---|---|---|---|---|---|")
for conns in ("32", "1000"):
    for server in ("entrepot", "distribution"):
        sel = [r for r in rows if r[0] == server and r[1] == conns]
        print(f"| {conns} | {server} | {cell([float(r[2]) for r in sel], '{:.2f}')} | "
              f"{cell([float(r[3]) for r in sel], '{:.2f}')} | {cell([float(r[4]) for r in sel], '{:,.0f}')} | "
              f"{sum(int(r[5]) for r in sel)} |")
PY
