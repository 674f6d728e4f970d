#!/usr/bin/env bash
# Compare entrepot with distribution (Debian's docker-registry) on loopback,
# serving the same content pushed with skopeo:
#   1. warm GET of a 200 MiB blob with curl (MB/s, best of 3);
#   2. manifest GET by tag under load, wrk -c 32 -d 10s (requests/s);
#   3. skopeo pull of a 200 MiB image into an OCI directory (wall time, best of 3).
# Needs: cargo, skopeo, docker-registry, wrk, curl, python3; hyperfine if present.
# Usage: bench/oci-hosted.sh   (BENCH_BLOB_MIB=200 BENCH_WRK_SECS=10 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOB_MIB=${BENCH_BLOB_MIB:-200}
WRK_SECS=${BENCH_WRK_SECS:-10}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools cargo skopeo wrk curl python3 docker-registry

# BENCH_BIN=PATH measures that binary instead of building release.
entrepot_bin

echo "== starting entrepot and distribution on loopback" >&2
# Both quiet: entrepot logs warnings only, distribution errors only, no access log.
launch_entrepot "$WORK/entrepot-data"
# Pulls are anonymous on both servers: allUsers may read the bench repository.
ecli repositories create bench --repository-format=docker >/dev/null
ecli repositories add-iam-policy-binding bench \
    --member=allUsers --role=roles/artifactregistry.reader >/dev/null

launch_distribution registry "$WORK/registry-data"

echo "== building a ${BLOB_MIB} MiB image" >&2
python3 - "$WORK/layout" "$BLOB_MIB" <<'PY'
import hashlib, io, json, os, sys, tarfile
root, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    payload = os.urandom(mib * 1024 * 1024)
    info = tarfile.TarInfo("payload.bin"); info.size = len(payload); info.mtime = 0
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
        "digest": md, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, f)
with open(f"{root}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(f"{root}/layer-digest", "w") as f:
    f.write(layer_digest)
PY
LAYER=$(cat "$WORK/layout/layer-digest")

E_IMAGE="$E_ADDR/default/bench/big"
D_IMAGE="$D_ADDR/bench/big"
echo "== pushing with skopeo" >&2
skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
    --dest-creds="admin:$E_TOKEN" "oci:$WORK/layout:big" "docker://$E_IMAGE:big"
skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
    "oci:$WORK/layout:big" "docker://$D_IMAGE:big"

# CPU time a process has used, in milliseconds (user + system).
cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

# 1. Blob throughput: one warm-up GET from each, then three rounds that GET
# from entrepot then from distribution, so both see the same background load;
# the best of three for each. Also the servers' CPU time per GiB served over
# the three GETs, which other load on the machine does not skew.
E_BLOB=0 D_BLOB=0
measure_blobs() {
    local e_url="http://$E_ADDR/v2/default/bench/big/blobs/$LAYER"
    local d_url="http://$D_ADDR/v2/bench/big/blobs/$LAYER"
    local e_cpu0 d_cpu0 speed
    curl -fs -o /dev/null "$e_url"
    curl -fs -o /dev/null "$d_url"
    e_cpu0=$(cpu_ms "$E_PID") d_cpu0=$(cpu_ms "$D_PID")
    for _ in 1 2 3; do
        speed=$(curl -fs -o /dev/null -w '%{speed_download}' "$e_url")
        E_BLOB=$(python3 -c "print('%.0f' % max($E_BLOB, $speed / 1e6))")
        speed=$(curl -fs -o /dev/null -w '%{speed_download}' "$d_url")
        D_BLOB=$(python3 -c "print('%.0f' % max($D_BLOB, $speed / 1e6))")
    done
    # Each server is idle while the other serves, so its CPU delta is its own GETs.
    E_BLOB_CPU=$(python3 -c "print('%.0f' % (($(cpu_ms "$E_PID") - $e_cpu0) / (3 * $BLOB_MIB / 1024)))")
    D_BLOB_CPU=$(python3 -c "print('%.0f' % (($(cpu_ms "$D_PID") - $d_cpu0) / (3 * $BLOB_MIB / 1024)))")
}

# 2. Manifest GET by tag under load.
manifest_rps() {
    local url="http://$1/v2/$2/manifests/big"
    curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url"
    wrk -t 2 -c 32 -d "${WRK_SECS}s" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url" >"$WORK/wrk.txt"
    # Only successful answers count.
    if grep -q 'Non-2xx' "$WORK/wrk.txt"; then
        echo "bench: $url answered errors under load:" >&2
        cat "$WORK/wrk.txt" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/wrk.txt"
}

# 3. skopeo pull into a fresh OCI directory: wall time in seconds, best of three.
pull_secs() {
    local src="docker://$1:big" dest="$WORK/pull"
    local cmd="skopeo --insecure-policy copy --quiet --preserve-digests --src-tls-verify=false $src oci:$dest:big"
    if command -v hyperfine >/dev/null; then
        hyperfine --runs 3 --warmup 1 --style none --prepare "rm -rf $dest" \
            --export-json "$WORK/pull.json" "$cmd" >/dev/null 2>&1
        python3 -c "import json; print('%.2f' % min(json.load(open('$WORK/pull.json'))['results'][0]['times']))"
    else
        local best=999999 start end
        for _ in 1 2 3; do
            rm -rf "$dest"
            start=$(date +%s.%N); $cmd; end=$(date +%s.%N)
            best=$(python3 -c "print(min($best, $end - $start))")
        done
        printf '%.2f\n' "$best"
    fi
}

echo "== measuring" >&2
measure_blobs
E_RPS=$(manifest_rps "$E_ADDR" default/bench/big); D_RPS=$(manifest_rps "$D_ADDR" bench/big)
E_PULL=$(pull_secs "$E_IMAGE"); D_PULL=$(pull_secs "$D_IMAGE")

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD) vs distribution $(/usr/bin/docker-registry --version | awk '{print $3}'), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-42s | %10s | %12s | %22s |\n' "measure" "entrepot" "distribution" "entrepot/distribution"
printf '|%s|%s|%s|%s|\n' "--------------------------------------------" "------------" "--------------" "------------------------"
printf '| %-42s | %10s | %12s | %22s |\n' "GET ${BLOB_MIB} MiB blob, warm (MB/s, best of 3)" "$E_BLOB" "$D_BLOB" "$(ratio "$E_BLOB" "$D_BLOB")"
printf '| %-42s | %10s | %12s | %22s |\n' "  server CPU per GiB of blob served (ms)" "$E_BLOB_CPU" "$D_BLOB_CPU" "$(ratio "$E_BLOB_CPU" "$D_BLOB_CPU")"
printf '| %-42s | %10s | %12s | %22s |\n' "manifest GET by tag, wrk -c32 (req/s)" "$E_RPS" "$D_RPS" "$(ratio "$E_RPS" "$D_RPS")"
printf '| %-42s | %10s | %12s | %22s |\n' "skopeo pull ${BLOB_MIB} MiB image (s, best of 3)" "$E_PULL" "$D_PULL" "$(ratio "$E_PULL" "$D_PULL")"
echo
echo "targets: blob >= 1.5x, manifest req/s >= 3x; for CPU and pull time, a ratio < 1 means entrepot does better"
