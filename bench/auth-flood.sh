#!/usr/bin/env bash
# Wrong-password flood on loopback: does the server stay small and keep serving?
#   1. start the release binary on a free loopback port with a temporary data
#      directory, create a user with a password and a personal access token;
#   2. flood GET /v2/ with wrong Basic passwords for that user from
#      BENCH_CONNECTIONS connections for BENCH_SECS seconds (wrk, bounded by
#      its duration and timeout);
#   3. meanwhile, once a second, sample the server's VmRSS and the latency of
#      a normal request with the token (and of an anonymous one);
#   4. print the baseline and peak RSS (VmHWM), the latencies, and what wrk saw.
# Needs: wrk, curl, python3, and the release binary (built if missing:
#   cargo build --release -p entrepot).
# Usage: bench/auth-flood.sh   (BENCH_CONNECTIONS=200 BENCH_SECS=60 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNECTIONS=${BENCH_CONNECTIONS:-200}
SECS=${BENCH_SECS:-60}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools wrk curl python3

BIN=${BIN:-"$ROOT/target/release/entrepot"}
build_release_if_missing "$BIN"

echo "== starting entrepot on loopback" >&2
launch_entrepot "$WORK/entrepot-data"
BASE="http://$E_ADDR"
api() { curl -sf -H "Authorization: Bearer $E_TOKEN" -H 'content-type: application/json' "$@"; }
api -X POST "$BASE/v1/users" -d '{"email":"victim@example.com","password":"correct horse battery"}' >/dev/null
PAT=$(api -X POST "$BASE/v1/tokens" -d '{"principal":"user:admin"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

rss_kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$E_PID/status"; }
# Seconds for one request, or "fail".
timed() { curl -s -o /dev/null -m 30 -w '%{http_code} %{time_total}\n' "$@" || echo "fail"; }

BASELINE=$(rss_kib VmRSS)
WRONG=$(printf 'victim@example.com:wrong-password' | base64 -w0)

echo "== flooding: $CONNECTIONS connections of wrong passwords for ${SECS}s" >&2
wrk -t 2 -c "$CONNECTIONS" -d "${SECS}s" --timeout 30s \
    -H "Authorization: Basic $WRONG" "$BASE/v2/" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
PIDS+=("$WRK_PID")

: >"$WORK/samples"
end=$((SECONDS + SECS))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$WRK_PID" 2>/dev/null; do
    token=$(timed -H "Authorization: Bearer $PAT" "$BASE/v1/projects")
    anon=$(timed "$BASE/v2/")
    echo "$(rss_kib VmRSS) $token $anon" >>"$WORK/samples"
    sleep 1
done
wait "$WRK_PID" || true
PEAK=$(rss_kib VmHWM)

python3 - "$WORK/samples" "$BASELINE" "$PEAK" "$CONNECTIONS" "$SECS" <<'EOF'
import statistics, sys
path, baseline, peak, conns, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [l.split() for l in open(path) if l.strip()]
rss = [int(r[0]) for r in rows if r and r[0].isdigit()]
def lat(col_status, col_time):
    ok = [float(r[col_time]) for r in rows if len(r) > col_time and r[col_status] == "200"]
    bad = sum(1 for r in rows if len(r) <= col_time or r[col_status] not in ("200", "401"))
    return ok, bad
tok, tok_bad = lat(1, 2)
anon = [float(r[4]) for r in rows if len(r) > 4 and r[3] == "401"]
ms = lambda xs: "n/a" if not xs else f"median {statistics.median(xs)*1000:.1f} ms, max {max(xs)*1000:.1f} ms"
print(f"flood: {conns} connections of wrong passwords for {secs} s")
print(f"RSS baseline {baseline/1024:.1f} MiB, max sampled VmRSS {max(rss, default=0)/1024:.1f} MiB, peak VmHWM {peak/1024:.1f} MiB")
print(f"token request (GET /v1/projects) during the flood: {len(tok)} x 200, {tok_bad} failed; {ms(tok)}")
print(f"anonymous request (GET /v2/) during the flood: {ms(anon)}")
EOF
echo "wrk:"
sed -n '/requests in/,$p' "$WORK/wrk.out" | sed 's/^/  /'
M=$(curl -s "$BASE/metrics" | grep -E '^entrepot_password_(verifications|refused_backoff|refused_busy)_total ')
echo "$M" | sed 's/^/  /'
