#!/usr/bin/env bash
# Pull-through cache benchmark: entrepot (remote repository) against distribution
# (Debian's docker-registry in proxy mode), both in front of the same upstream
# docker-registry on loopback, pulling the same image with the same client:
#   1. cold pull (empty cache) and warm pull, wall time, against a direct pull
#      from the upstream;
#   2. N concurrent cold pulls: wall time and bytes the upstream sent;
#   3. peak RSS of each proxy over the whole run, and its CPU time for the
#      cold pull and for the concurrent pulls.
# BENCH_ROUNDS rounds (default 1), the servers in a different order in each;
# every server starts afresh for each cold measure. With BENCH_BIN_B=PATH
# (and BENCH_BIN_C) more entrepot binaries (say, before a change) run beside
# the first as "entrepot-B" (and "entrepot-C"); BENCH_DISTRIBUTION=0 leaves
# distribution out. A measure that fails (distribution's proxy sometimes
# answers 500 under concurrent pulls) is retried, up to twice, and counted.
# With more than one round the table gives min / median / max and how many
# rounds meet each target.
# Needs: cargo, skopeo, docker-registry, curl, python3.
# Usage: bench/oci-remote.sh   (BENCH_IMAGE_MIB=200 BENCH_CONCURRENCY=20 BENCH_ROUNDS=1 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE_MIB=${BENCH_IMAGE_MIB:-200}
CONCURRENCY=${BENCH_CONCURRENCY:-20}
ROUNDS=${BENCH_ROUNDS:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench-remote.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools cargo skopeo curl python3 docker-registry

# BENCH_BIN=PATH measures that binary instead of building release.
entrepot_bin

# registry NAME PORT [extra yaml]: start a docker-registry with storage in $WORK/NAME.
registry() {
    local name=$1 port=$2 extra=${3:-}
    cat >"$WORK/$name.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/$name-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$extra
YAML
    /usr/bin/docker-registry serve "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    LAST_PID=$!
    wait_http "http://127.0.0.1:$port/v2/"
}

# The upstream keeps its access log: it counts what the proxies fetch.
UP_PORT=$(free_port)
registry upstream "$UP_PORT"
UP="127.0.0.1:$UP_PORT"

echo "== building a ${IMAGE_MIB} MiB image of four layers" >&2
python3 - "$WORK/layout" "$IMAGE_MIB" <<'PY'
import hashlib, io, json, os, sys, tarfile
root, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d
layers = []
for i in range(4):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        payload = os.urandom(mib * 1024 * 1024 // 4)
        info = tarfile.TarInfo(f"layer-{i}.bin"); info.size = len(payload); info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    data = buf.getvalue()
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(data), "size": len(data)})
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
    "layers": layers}).encode()
md = put(manifest)
with open(f"{root}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, f)
with open(f"{root}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(f"{root}/image-bytes", "w") as f:
    f.write(str(sum(l["size"] for l in layers) + len(config) + len(manifest)))
PY
IMAGE_BYTES=$(cat "$WORK/layout/image-bytes")
skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
    "oci:$WORK/layout:big" "docker://$UP/bench/big:big"

# Bytes of blob bodies the upstream sent since its log had $1 lines.
upstream_bytes_since() {
    tail -n +"$(($1 + 1))" "$WORK/upstream.log" |
        awk '/"GET \/v2\/[^ ]*\/blobs\/sha256:/ { for (i = 1; i <= NF; i++) if ($i ~ /^HTTP\/1\.1"$/) { s += $(i + 2) } } END { print s + 0 }'
}

pull() { # pull SOURCE DEST: seconds taken
    local start end
    rm -rf "$2"
    start=$(date +%s.%N)
    skopeo --insecure-policy copy --quiet --src-tls-verify=false ${CREDS:+--src-creds="$CREDS"} "docker://$1" "oci:$2:big"
    end=$(date +%s.%N)
    python3 -c "print('%.2f' % ($end - $start))"
}

# concurrent_pulls SOURCE: wall seconds for $CONCURRENCY pulls at once; the
# CPU milliseconds the clients took (user + system, all of them) go to
# $WORK/client-cpu.
concurrent_pulls() {
    local start end
    start=$(date +%s.%N)
    (
        pids=()
        for i in $(seq 1 "$CONCURRENCY"); do
            skopeo --insecure-policy copy --quiet --src-tls-verify=false ${CREDS:+--src-creds="$CREDS"} \
                "docker://$1" "oci:$WORK/c$i:big" &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid" || exit 1; done
        times >"$WORK/times"
        tail -1 "$WORK/times" | python3 -c '
import re, sys
secs = [int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([0-9.]+)s", sys.stdin.read())]
print(round(sum(secs) * 1000))' >"$WORK/client-cpu"
    ) || { echo "bench: a concurrent pull failed" >&2; return 1; }
    end=$(date +%s.%N)
    rm -rf "$WORK"/c[0-9]*
    python3 -c "print('%.2f' % ($end - $start))"
}

peak_rss_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

start_entrepot() { # start_entrepot DATA_DIR: sets E_ADDR, E_PID, E_TOKEN, E_CREDS
    launch_entrepot "$1"
    E_CREDS="admin:$E_TOKEN"
    # The upstream is on loopback: allow it (where an access policy is enforced).
    ecli access-policy allow "$UP" >/dev/null 2>&1 || true
    ecli repositories create up --repository-format=docker \
        --mode=remote-repository --remote-docker-repo="http://$UP" >/dev/null
}

start_proxy() { # start_proxy NAME: sets D_ADDR, D_PID
    local port
    port=$(free_port)
    registry "$1" "$port" "proxy:
  remoteurl: http://$UP"
    D_ADDR="127.0.0.1:$port"
    D_PID=$LAST_PID
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# measure_server NAME ROUND: cold, warm and concurrent pulls through a fresh
# instance of server NAME; appends one line to $WORK/results.
measure_server() {
    local name=$1 round=$2 addr pid source creds="" cold warm conc up cpu0 cold_cpu conc_cpu client_cpu rss lines
    case $name in
        entrepot*)
            case $name in entrepot-B) BIN=$BIN_B ;; entrepot-C) BIN=$BIN_C ;; *) BIN=$BIN_A ;; esac
            start_entrepot "$WORK/$name-$round-a"
            addr=$E_ADDR pid=$E_PID creds=$E_CREDS source="$E_ADDR/default/up/bench/big:big" ;;
        distribution)
            start_proxy "proxy-$round-a"
            addr=$D_ADDR pid=$D_PID source="$D_ADDR/bench/big:big" ;;
    esac
    cpu0=$(cpu_ms_tree "$pid")
    cold=$(CREDS=$creds pull "$source" "$WORK/pull") || { stop "$pid"; return 1; }
    cold_cpu=$(($(cpu_ms_tree "$pid") - cpu0))
    warm=$(CREDS=$creds pull "$source" "$WORK/pull")
    rss=$(peak_rss_mib "$pid")
    stop "$pid"
    case $name in
        entrepot*)
            start_entrepot "$WORK/$name-$round-b"
            pid=$E_PID creds=$E_CREDS source="$E_ADDR/default/up/bench/big:big" ;;
        distribution)
            start_proxy "proxy-$round-b"
            pid=$D_PID source="$D_ADDR/bench/big:big" ;;
    esac
    lines=$(wc -l <"$WORK/upstream.log")
    cpu0=$(cpu_ms_tree "$pid")
    conc=$(CREDS=$creds concurrent_pulls "$source") || { stop "$pid"; return 1; }
    conc_cpu=$(($(cpu_ms_tree "$pid") - cpu0))
    client_cpu=$(cat "$WORK/client-cpu")
    up=$(upstream_bytes_since "$lines")
    rss=$(python3 -c "print(max($rss, $(peak_rss_mib "$pid")))")
    stop "$pid"
    rm -rf "$WORK/$name-$round-"* "$WORK/proxy-$round-"*-data
    echo "   round $round $name: cold $cold s ($cold_cpu ms CPU), warm $warm s, $CONCURRENCY concurrent $conc s ($conc_cpu ms CPU, clients $client_cpu ms, $(python3 -c "print('%.2f' % ($up / $IMAGE_BYTES))") images from the upstream), peak RSS $rss MiB" >&2
    echo "$round $name $cold $warm $conc $up $rss $cold_cpu $conc_cpu $client_cpu" >>"$WORK/results"
}

BIN_A=$BIN
BIN_B=${BENCH_BIN_B:-}
BIN_C=${BENCH_BIN_C:-}
SERVERS="entrepot${BIN_B:+ entrepot-B}${BIN_C:+ entrepot-C}"
[ "${BENCH_DISTRIBUTION:-1}" = 0 ] || SERVERS="$SERVERS distribution"
RETRIES=0
echo "== direct pull from the upstream" >&2
pull "$UP/bench/big:big" "$WORK/direct" >/dev/null  # warm the page cache
: >"$WORK/results"
: >"$WORK/direct-times"
for round in $(seq 1 "$ROUNDS"); do
    pull "$UP/bench/big:big" "$WORK/direct" >>"$WORK/direct-times"
    # Rotate who goes first.
    order=$(python3 -c "import sys; s = sys.argv[1].split(); r = (int(sys.argv[2]) - 1) % len(s); print(' '.join(s[r:] + s[:r]))" "$SERVERS" "$round")
    for name in $order; do
        echo "== round $round: $name" >&2
        for attempt in 1 2 3; do
            measure_server "$name" "$round" && break
            [ "$attempt" = 3 ] && { echo "bench: $name failed three times in round $round" >&2; exit 1; }
            RETRIES=$((RETRIES + 1))
            echo "   round $round $name: a pull failed; measuring again" >&2
        done
    done
done

echo
echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)${BIN_B:+ (entrepot-B: $BIN_B)}${BIN_C:+ (entrepot-C: $BIN_C)} vs distribution $(/usr/bin/docker-registry --version | awk '{print $3}') proxy, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), ${IMAGE_MIB} MiB image, $ROUNDS round(s), $RETRIES measure(s) retried after a failed pull, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$WORK/results" "$WORK/direct-times" "$IMAGE_BYTES" "$CONCURRENCY" "$SERVERS" "$(nproc)" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
direct = {i + 1: float(x) for i, x in enumerate(open(sys.argv[2]).read().split())}
image, conc, servers = int(sys.argv[3]), sys.argv[4], sys.argv[5].split()
by = {(int(r[0]), r[1]): [float(x) for x in r[2:]] for r in rows}
rounds = sorted({int(r[0]) for r in rows})
def cell(values, fmt="{:.2f}"):
    values = sorted(values)
    if len(values) == 1:
        return fmt.format(values[0])
    return " / ".join(fmt.format(v) for v in (values[0], statistics.median(values), values[-1]))
measures = [("cold pull (s)", 0, "{:.2f}"), ("warm pull (s)", 1, "{:.2f}"),
            (f"{conc} concurrent cold pulls, wall (s)", 2, "{:.2f}"),
            ("  upstream bytes (images' worth)", 3, "{:.2f}"),
            ("server CPU, cold pull (ms)", 5, "{:.0f}"),
            (f"server CPU, {conc} concurrent pulls (ms)", 6, "{:.0f}"),
            (f"clients' CPU, {conc} concurrent pulls (ms)", 7, "{:.0f}"),
            ("peak RSS (MiB)", 4, "{:.0f}")]
spread = " (min / median / max)" if len(rounds) > 1 else ""
print(f"| measure{spread} | " + " | ".join(servers) + " |")
print("|---" * (len(servers) + 1) + "|")
print(f"| direct pull from the upstream (s) | {cell(direct.values())} |" + " |" * (len(servers) - 1))
for title, i, fmt in measures:
    cells = []
    for s in servers:
        vals = [by[(r, s)][i] / (image if i == 3 else 1) for r in rounds if (r, s) in by]
        cells.append(cell(vals, fmt))
    print(f"| {title} | " + " | ".join(cells) + " |")
print()
cores = int(sys.argv[6])
for s in servers:
    vals = sorted((by[(r, s)][7] + by[(r, s)][6]) / 1000 / cores for r in rounds if (r, s) in by)
    print(f"{s}: the {conc} concurrent pulls need {statistics.median(vals):.1f} s of the {cores} cores "
          f"at least (clients' and server's CPU / cores, median), against {statistics.median(sorted(by[(r, s)][2] for r in rounds)):.1f} s of wall time")
print()
print("| ratio, per round (min / median / max) | " + " | ".join(s for s in servers if s != "distribution") + " | target | rounds meeting it |")
print("|---" * (len(servers) + 2) + "|")
targets = [("cold pull / direct pull", lambda s, r: by[(r, s)][0] / direct[r], 1.1)]
if "distribution" in servers:
    targets += [("warm pull / distribution's", lambda s, r: by[(r, s)][1] / by[(r, "distribution")][1], 1.0),
                (f"{conc} concurrent / distribution's", lambda s, r: by[(r, s)][2] / by[(r, "distribution")][2], 0.8)]
for title, f, target in targets:
    cells, met = [], []
    for s in servers:
        if s == "distribution":
            continue
        vals = [f(s, r) for r in rounds]
        cells.append(cell(vals))
        met.append(f"{sum(v <= target for v in vals)}/{len(vals)}" + (f" ({s})" if len(cells) > 1 or len(servers) > 2 else ""))
    print(f"| {title} | " + " | ".join(cells) + f" | <= {target} | " + ", ".join(met) + " |")
PY
echo
echo "targets: cold <= 1.1x a direct pull; warm <= 1.0x distribution's; $CONCURRENCY concurrent <= 0.8x distribution's wall time; upstream bytes = 1 image for $CONCURRENCY concurrent pulls; RSS < 100 MiB"
