#!/usr/bin/env bash
# Pull-through cache benchmark: entrepot (remote repository) against distribution
# (Debian's docker-registry in proxy mode), both in front of the same upstream
# docker-registry on loopback, pulling the same image with the same client:
#   1. cold pull (empty cache) and warm pull, wall time, against a direct pull
#      from the upstream;
#   2. N concurrent cold pulls: wall time and bytes the upstream sent;
#   3. peak RSS of each proxy over the whole run.
# Needs: cargo, skopeo, docker-registry, curl, python3.
# Usage: bench/oci-remote.sh   (BENCH_IMAGE_MIB=200 BENCH_CONCURRENCY=20 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE_MIB=${BENCH_IMAGE_MIB:-200}
CONCURRENCY=${BENCH_CONCURRENCY:-20}
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

concurrent_pulls() { # concurrent_pulls SOURCE: wall seconds for $CONCURRENCY pulls at once
    local start end pids=()
    start=$(date +%s.%N)
    for i in $(seq 1 "$CONCURRENCY"); do
        skopeo --insecure-policy copy --quiet --src-tls-verify=false ${CREDS:+--src-creds="$CREDS"} \
            "docker://$1" "oci:$WORK/c$i:big" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    end=$(date +%s.%N)
    rm -rf "$WORK"/c*
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

echo "== direct pull from the upstream" >&2
pull "$UP/bench/big:big" "$WORK/direct" >/dev/null  # warm the page cache
DIRECT=$(pull "$UP/bench/big:big" "$WORK/direct")

echo "== entrepot" >&2
start_entrepot "$WORK/e1"
E_COLD=$(CREDS=$E_CREDS pull "$E_ADDR/default/up/bench/big:big" "$WORK/pull")
E_WARM=$(CREDS=$E_CREDS pull "$E_ADDR/default/up/bench/big:big" "$WORK/pull")
E_RSS1=$(peak_rss_mib "$E_PID")
start_entrepot "$WORK/e2"
lines=$(wc -l <"$WORK/upstream.log")
E_CONC=$(CREDS=$E_CREDS concurrent_pulls "$E_ADDR/default/up/bench/big:big")
E_UP_BYTES=$(upstream_bytes_since "$lines")
E_RSS=$(python3 -c "print(max($E_RSS1, $(peak_rss_mib "$E_PID")))")

echo "== distribution (proxy mode)" >&2
start_proxy() { # start_proxy NAME: sets D_ADDR, D_PID
    local port
    port=$(free_port)
    registry "$1" "$port" "proxy:
  remoteurl: http://$UP"
    D_ADDR="127.0.0.1:$port"
    D_PID=$LAST_PID
}
start_proxy proxy1
D_COLD=$(pull "$D_ADDR/bench/big:big" "$WORK/pull")
D_WARM=$(pull "$D_ADDR/bench/big:big" "$WORK/pull")
D_RSS1=$(peak_rss_mib "$D_PID")
start_proxy proxy2
lines=$(wc -l <"$WORK/upstream.log")
D_CONC=$(concurrent_pulls "$D_ADDR/bench/big:big")
D_UP_BYTES=$(upstream_bytes_since "$lines")
D_RSS=$(python3 -c "print(max($D_RSS1, $(peak_rss_mib "$D_PID")))")

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
images() { python3 -c "print('%.2f' % ($1 / $IMAGE_BYTES))"; }
echo
echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD) vs distribution $(/usr/bin/docker-registry --version | awk '{print $3}') proxy, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), ${IMAGE_MIB} MiB image, direct pull from the upstream ${DIRECT}s"
printf '| %-44s | %10s | %12s | %22s |\n' "measure" "entrepot" "distribution" "entrepot/distribution"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "------------" "--------------" "------------------------"
printf '| %-44s | %10s | %12s | %22s |\n' "cold pull (s)" "$E_COLD" "$D_COLD" "$(ratio "$E_COLD" "$D_COLD")"
printf '| %-44s | %10s | %12s | %22s |\n' "cold pull / direct pull from upstream" "$(ratio "$E_COLD" "$DIRECT")" "$(ratio "$D_COLD" "$DIRECT")" ""
printf '| %-44s | %10s | %12s | %22s |\n' "warm pull (s)" "$E_WARM" "$D_WARM" "$(ratio "$E_WARM" "$D_WARM")"
printf '| %-44s | %10s | %12s | %22s |\n' "$CONCURRENCY concurrent cold pulls, wall (s)" "$E_CONC" "$D_CONC" "$(ratio "$E_CONC" "$D_CONC")"
printf '| %-44s | %10s | %12s | %22s |\n' "  upstream bytes (images' worth)" "$(images "$E_UP_BYTES")" "$(images "$D_UP_BYTES")" ""
printf '| %-44s | %10s | %12s | %22s |\n' "peak RSS (MiB)" "$E_RSS" "$D_RSS" "$(ratio "$E_RSS" "$D_RSS")"
echo
echo "targets: cold <= 1.1x a direct pull; upstream bytes = 1 image for $CONCURRENCY concurrent pulls; RSS < 100 MiB"
