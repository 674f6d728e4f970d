#!/usr/bin/env bash
# What authentication costs per request: warm manifest GET by tag under load,
#   anonymous, with a registry token (Bearer JWT from /v2/token, what docker
#   and podman send) and with a personal access token in HTTP Basic (what
#   `docker login` with a token sends), on loopback.
#   1. start the release binary (and, if BENCH_BEFORE_BIN names one, an older
#      binary beside it) with a temporary data directory; push a small image
#      to a hosted repository that allUsers and a user `puller` may read;
#   2. BENCH_ROUNDS rounds; each round runs wrk (-t2 -c BENCH_CONNECTIONS
#      -d BENCH_SECS) for every binary and every kind of caller in turn, so
#      all see the same background load; a fresh registry token per run;
#   3. print the median requests/s of each, and each authenticated figure as a
#      ratio to anonymous on the same binary (target: >= 0.8); also the
#      server's CPU time per request, which other load on the machine skews
#      less than requests/s.
# Needs: wrk, curl, skopeo, python3; the release binary (built if missing).
# Usage: bench/auth-cost.sh
#   BENCH_BEFORE_BIN=/path/to/old/entrepot bench/auth-cost.sh   (before/after)
#   BENCH_ROUNDS=3 BENCH_SECS=10 BENCH_CONNECTIONS=64 to change the load.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools wrk curl skopeo python3

AFTER_BIN=${BIN:-"$ROOT/target/release/entrepot"}
build_release_if_missing "$AFTER_BIN"
NAMES=(after)
BINS=("$AFTER_BIN")
if [ -n "${BENCH_BEFORE_BIN:-}" ]; then
    NAMES=(before after)
    BINS=("$BENCH_BEFORE_BIN" "$AFTER_BIN")
fi
MODES=(anonymous bearer-jwt basic-pat)
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'

echo "== building a small image" >&2
python3 - "$WORK/layout" <<'PY'
import hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    payload = b"hello\n"
    info = tarfile.TarInfo("hello.txt"); info.size = len(payload); info.mtime = 0
    tar.addfile(info, io.BytesIO(payload))
layer = buf.getvalue()
layer_digest = put(layer)
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}]}).encode()
md = put(manifest)
with open(f"{root}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]}, f)
with open(f"{root}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
PY

# Per binary: its address, process and the puller's personal access token.
ADDRS=() SERVER_PIDS=() PATS=()
for i in "${!BINS[@]}"; do
    BIN=${BINS[$i]}
    echo "== starting ${NAMES[$i]} ($BIN)" >&2
    launch_entrepot "$WORK/data-${NAMES[$i]}"
    api() { curl -sf -H "Authorization: Bearer $E_TOKEN" -H 'content-type: application/json' "$@"; }
    ecli repositories create bench --repository-format=docker >/dev/null
    # The same depth of policy walk for both callers: both are bound on the
    # repository itself.
    ecli repositories add-iam-policy-binding bench \
        --member=allUsers --role=roles/artifactregistry.reader >/dev/null
    api -X POST "http://$E_ADDR/v1/users" -d '{"email":"puller@example.com"}' >/dev/null
    ecli repositories add-iam-policy-binding bench \
        --member=user:puller@example.com --role=roles/artifactregistry.reader >/dev/null
    PAT=$(api -X POST "http://$E_ADDR/v1/tokens" -d '{"principal":"user:puller@example.com"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
        --dest-creds="admin:$E_TOKEN" "oci:$WORK/layout:1.0" "docker://$E_ADDR/default/bench/app:1.0"
    ADDRS+=("$E_ADDR")
    SERVER_PIDS+=("$E_PID")
    PATS+=("$PAT")
done

# The Authorization header for a kind of caller ("" for anonymous).
auth_header() { # auth_header MODE ADDR PAT
    case $1 in
        anonymous) echo "" ;;
        bearer-jwt)
            local jwt
            jwt=$(curl -sf -u "_token:$3" \
                "http://$2/v2/token?service=entrepot&scope=repository:default/bench/app:pull" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
            echo "Authorization: Bearer $jwt" ;;
        basic-pat) echo "Authorization: Basic $(printf '%s' "_token:$3" | base64 -w0)" ;;
    esac
}

# CPU time a process has used, in milliseconds (user + system).
cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

# "requests/s server-CPU-us-per-request" of one wrk run; fails on any non-2xx
# answer.
rps() { # rps ADDR PID HEADER
    local url="http://$1/v2/default/bench/app/manifests/1.0" args=(-H "$ACCEPT") cpu0 cpu1
    [ -n "$3" ] && args+=(-H "$3")
    curl -fs -o /dev/null "${args[@]}" "$url"
    cpu0=$(cpu_ms "$2")
    wrk -t 2 -c "$CONNECTIONS" -d "${SECS}s" "${args[@]}" "$url" >"$WORK/wrk.txt"
    cpu1=$(cpu_ms "$2")
    if grep -q 'Non-2xx' "$WORK/wrk.txt"; then
        echo "bench: $url answered errors under load:" >&2
        cat "$WORK/wrk.txt" >&2
        exit 1
    fi
    awk -v cpu=$((cpu1 - cpu0)) '
        / requests in / { n = $1 }
        /^Requests\/sec:/ { r = $2 }
        END { printf "%.0f %.1f", r, cpu * 1000 / n }' "$WORK/wrk.txt"
}

echo "== measuring: $ROUNDS rounds of ${SECS}s runs, $CONNECTIONS connections" >&2
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!BINS[@]}"; do
        for mode in "${MODES[@]}"; do
            header=$(auth_header "$mode" "${ADDRS[$i]}" "${PATS[$i]}")
            r=$(rps "${ADDRS[$i]}" "${SERVER_PIDS[$i]}" "$header")
            echo "round $round ${NAMES[$i]} $mode $r" >&2
            echo "${NAMES[$i]} $mode $r" >>"$WORK/results"
        done
    done
done

echo
echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "warm manifest GET by tag, wrk -t2 -c$CONNECTIONS -d${SECS}s, $ROUNDS interleaved rounds"
python3 - "$WORK/results" "${NAMES[@]}" <<'PY'
import statistics, sys
path, names = sys.argv[1], sys.argv[2:]
runs, cpu = {}, {}
for line in open(path):
    name, mode, r, us = line.split()
    runs.setdefault((name, mode), []).append(int(r))
    cpu.setdefault((name, mode), []).append(float(us))
modes = ["anonymous", "bearer-jwt", "basic-pat"]
med = statistics.median
print("| binary | caller | req/s (median) | runs | ratio to anonymous | server CPU us/request (median) | CPU ratio to anonymous |")
print("|---|---|---|---|---|---|---|")
for name in names:
    anon, anon_cpu = med(runs[(name, "anonymous")]), med(cpu[(name, "anonymous")])
    for mode in modes:
        rs, us = runs[(name, mode)], med(cpu[(name, mode)])
        print(f"| {name} | {mode} | {med(rs):,.0f} | {', '.join(f'{r:,}' for r in rs)} | {med(rs) / anon:.2f} | {us:.1f} | {us / anon_cpu:.2f} |")
if len(names) == 2:
    print()
    for mode in modes:
        b, a = med(runs[(names[0], mode)]), med(runs[(names[1], mode)])
        print(f"{mode}: after/before {a / b:.2f} (req/s)")
PY
for i in "${!BINS[@]}"; do
    m=$(curl -s "http://${ADDRS[$i]}/metrics" | grep -E '^entrepot_credential_cache_(hits|misses)_total ' | tr '\n' ' ' || true)
    if [ -n "$m" ]; then echo "${NAMES[$i]}: $m"; fi
done
