#!/usr/bin/env bash
# Scale-out benchmark: one entrepot node against three behind nginx
# (round robin), on the same machine, each setup on a PostgreSQL database of
# its own and one Garage bucket (a prefix each), serving the same content:
#   1. manifest GET by tag under load, wrk -c 32 (requests/s);
#   2. warm skopeo pull of a hosted IMAGE_MIB image (wall time, best of 3);
#   3. CONCURRENCY concurrent cold pulls of an IMAGE_MIB image through a
#      remote repository from one docker-registry upstream: wall time and
#      the bytes the upstream sent (1.00 = one image's worth: each blob was
#      fetched once across every node).
# All nodes share the machine's cores: on 2 cores three nodes add
# coordination, not capacity; the figures show what the cluster costs.
# Needs: skopeo, docker-registry, wrk, nginx, curl, psql, python3, garage
# (/opt/garage/bin or PATH) and a PostgreSQL server whose URL is in
# BENCH_POSTGRES_URL or ENTREPOT_TEST_POSTGRES_URL (a database is created
# per setup and dropped after). Without garage or a PostgreSQL URL it says
# so and exits 0.
# Usage: bench/cluster.sh [--smoke] [--bin PATH]
#   (BENCH_IMAGE_MIB=200 BENCH_CONCURRENCY=20 BENCH_WRK_SECS=10 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE_MIB=${BENCH_IMAGE_MIB:-200}
CONCURRENCY=${BENCH_CONCURRENCY:-20}
WRK_SECS=${BENCH_WRK_SECS:-10}
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) IMAGE_MIB=4; CONCURRENCY=3; WRK_SECS=1 ;;
        --bin) BENCH_BIN=$2; shift ;;
        *) echo "usage: bench/cluster.sh [--smoke] [--bin PATH]" >&2; exit 2 ;;
    esac
    shift
done
export PATH="/opt/garage/bin:$PATH"
PG_URL=${BENCH_POSTGRES_URL:-${ENTREPOT_TEST_POSTGRES_URL:-}}
if [ -z "$PG_URL" ] || ! command -v garage >/dev/null; then
    echo "bench/cluster.sh: skipped: needs a PostgreSQL URL (BENCH_POSTGRES_URL or ENTREPOT_TEST_POSTGRES_URL) and garage" >&2
    echo "cluster: skipped (no PostgreSQL URL or no garage)"
    exit 0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench-cluster.XXXXXX")
PIDS=()
DATABASES=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
finish() {
    for db in "${DATABASES[@]}"; do
        psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    cleanup
}
trap finish EXIT

require_tools skopeo wrk curl python3 psql docker-registry nginx garage
entrepot_bin

# A database of its own on the server of PG_URL; sets DB_URL.
new_database() { # new_database NAME
    local name="bench_cluster_$$_$1"
    psql "$PG_URL" -qc "CREATE DATABASE $name" >/dev/null
    DATABASES+=("$name")
    DB_URL=$(python3 -c "import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path='/' + sys.argv[2])))" "$PG_URL" "$name")
}

echo "== garage (single node) with one bucket" >&2
G_RPC=$(free_port); G_S3=$(free_port); G_ADMIN=$(free_port)
cat >"$WORK/garage.toml" <<EOT
metadata_dir = "$WORK/garage-meta"
data_dir = "$WORK/garage-data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$G_RPC"
rpc_public_addr = "127.0.0.1:$G_RPC"
rpc_secret = "$(python3 -c 'import os; print(os.urandom(32).hex())')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$G_S3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$G_ADMIN"
EOT
RUST_LOG=garage=warn garage -c "$WORK/garage.toml" server >"$WORK/garage.log" 2>&1 &
PIDS+=($!)
g() { garage -c "$WORK/garage.toml" "$@"; }
for _ in $(seq 1 300); do g status >/dev/null 2>&1 && break; sleep 0.1; done
g layout assign -z dc1 -c 10G "$(g node id -q | cut -d@ -f1)" >/dev/null
g layout apply --version 1 >/dev/null
for _ in $(seq 1 300); do g bucket create bench >/dev/null 2>&1 && break; sleep 0.1; done
KEY=$(g key create bench)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
AWS_ACCESS_KEY_ID=$(awk '/Key ID:/ { print $3 }' <<<"$KEY")
AWS_SECRET_ACCESS_KEY=$(awk '/Secret key:/ { print $3 }' <<<"$KEY")
g bucket allow --read --write --owner bench --key bench >/dev/null
bucket() { echo "s3://bench/$1?endpoint=http://127.0.0.1:$G_S3&region=garage"; }

# The upstream keeps its access log: it counts what the nodes fetch.
UP_PORT=$(free_port)
cat >"$WORK/upstream.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/upstream-data
http:
  addr: 127.0.0.1:$UP_PORT
YAML
/usr/bin/docker-registry serve "$WORK/upstream.yml" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
UP="127.0.0.1:$UP_PORT"
wait_http "http://$UP/v2/"

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

# Bytes of blob bodies the upstream sent since its log had $1 lines
# (docker-registry logs every request at level error too: its access log).
upstream_bytes_since() {
    tail -n +"$(($1 + 1))" "$WORK/upstream.log" |
        awk '/"GET \/v2\/[^ ]*\/blobs\/sha256:/ { for (i = 1; i <= NF; i++) if ($i ~ /^HTTP\/1\.1"$/) { s += $(i + 2) } } END { print s + 0 }'
}

# start_nodes NAME N: N nodes on a new database and bucket prefix NAME;
# node 0 creates the admin, the others get its master key and token
# signing key (docs/deploy.md). Sets NODES (host:port each) and E_TOKEN.
start_nodes() {
    local name=$1 n=$2 i dir
    new_database "$name"
    NODES=()
    for i in $(seq 0 $((n - 1))); do
        dir="$WORK/$name-node-$i"
        if [ "$i" -gt 0 ]; then
            mkdir -p "$dir"
            cp "$WORK/$name-node-0/master.key" "$WORK/$name-node-0/registry-token-key" "$dir/"
        fi
        launch_entrepot "$dir" --database-url "$DB_URL" --blob-store "$(bucket "$name")"
        NODES+=("$E_ADDR")
    done
}

# A balancer over NODES; sets B_ADDR.
start_balancer() { # start_balancer NAME
    local port servers="" n
    port=$(free_port)
    for n in "${NODES[@]}"; do servers="$servers server $n max_fails=0;"; done
    mkdir -p "$WORK/$1-nginx"
    cat >"$WORK/$1-nginx/nginx.conf" <<EOT
daemon off;
worker_processes 2;
pid $WORK/$1-nginx/nginx.pid;
error_log $WORK/$1-nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/$1-nginx/body; proxy_temp_path $WORK/$1-nginx/proxy;
  fastcgi_temp_path $WORK/$1-nginx/fastcgi; uwsgi_temp_path $WORK/$1-nginx/uwsgi; scgi_temp_path $WORK/$1-nginx/scgi;
  upstream nodes { $servers keepalive 64; }
  server {
    listen 127.0.0.1:$port;
    client_max_body_size 0;
    proxy_request_buffering off; proxy_buffering off;
    location / {
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
    }
  }
}
EOT
    nginx -e "$WORK/$1-nginx/error.log" -p "$WORK/$1-nginx" -c "$WORK/$1-nginx/nginx.conf" &
    PIDS+=($!)
    B_ADDR="127.0.0.1:$port"
    wait_http "http://$B_ADDR/v2/"
}

# The hosted image, readable by anyone, and the remote repository, through
# node 0 (every node sees them).
prepare() { # prepare: uses E_ADDR (a node) and E_TOKEN
    ecli access-policy allow "$UP" >/dev/null
    ecli repositories create hosted --repository-format=docker >/dev/null
    ecli repositories add-iam-policy-binding hosted --member=allUsers \
        --role=roles/artifactregistry.reader >/dev/null
    ecli repositories create up --repository-format=docker \
        --mode=remote-repository --remote-docker-repo="http://$UP" >/dev/null
    ecli repositories add-iam-policy-binding up --member=allUsers \
        --role=roles/artifactregistry.reader >/dev/null
    skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
        --dest-creds="admin:$E_TOKEN" "oci:$WORK/layout:big" "docker://$E_ADDR/default/hosted/bench/big:big"
}

manifest_rps() { # manifest_rps ADDR
    local url="http://$1/v2/default/hosted/bench/big/manifests/big"
    curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url"
    wrk -t 2 -c 32 -d "${WRK_SECS}s" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url" >"$WORK/wrk.txt"
    if grep -q 'Non-2xx' "$WORK/wrk.txt"; then
        echo "bench: $url answered errors under load:" >&2
        cat "$WORK/wrk.txt" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/wrk.txt"
}

pull_secs() { # pull_secs SOURCE: seconds of one pull into a fresh directory
    local start end
    rm -rf "$WORK/pull"
    start=$(date +%s.%N)
    skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$1" "oci:$WORK/pull:big"
    end=$(date +%s.%N)
    python3 -c "print('%.2f' % ($end - $start))"
}

warm_pull() { # warm_pull ADDR: best of three
    local best="" t
    pull_secs "$1/default/hosted/bench/big:big" >/dev/null
    for _ in 1 2 3; do
        t=$(pull_secs "$1/default/hosted/bench/big:big")
        best=$(python3 -c "print(min(float('$t'), float('${best:-$t}')))")
    done
    printf '%.2f' "$best"
}

cold_pulls() { # cold_pulls ADDR...: wall seconds of CONCURRENCY pulls spread over the addresses
    local start end pids=() i addrs=("$@")
    start=$(date +%s.%N)
    for i in $(seq 1 "$CONCURRENCY"); do
        skopeo --insecure-policy copy --quiet --src-tls-verify=false \
            "docker://${addrs[$((i % ${#addrs[@]}))]}/default/up/bench/big:big" "oci:$WORK/c$i:big" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    end=$(date +%s.%N)
    rm -rf "$WORK"/c*
    python3 -c "print('%.2f' % ($end - $start))"
}

images() { python3 -c "print('%.2f' % ($1 / $IMAGE_BYTES))"; }

echo "== one node" >&2
start_nodes one 1
prepare
ONE_RPS=$(manifest_rps "${NODES[0]}")
ONE_WARM=$(warm_pull "${NODES[0]}")
lines=$(wc -l <"$WORK/upstream.log")
ONE_COLD=$(cold_pulls "${NODES[0]}")
ONE_UP=$(upstream_bytes_since "$lines")
for pid in "${PIDS[@]: -1}"; do kill "$pid" 2>/dev/null || true; done

echo "== three nodes behind nginx" >&2
start_nodes three 3
prepare
start_balancer three
BALANCER=$B_ADDR
THREE_RPS=$(manifest_rps "$BALANCER")
THREE_WARM=$(warm_pull "$BALANCER")
lines=$(wc -l <"$WORK/upstream.log")
THREE_COLD=$(cold_pulls "${NODES[@]}")
THREE_UP=$(upstream_bytes_since "$lines")

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "entrepot $(git -C "$ROOT" rev-parse --short HEAD), one node vs three behind nginx, PostgreSQL + Garage, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), ${IMAGE_MIB} MiB image"
printf '| %-46s | %10s | %12s | %12s |\n' "measure" "one node" "three nodes" "three/one"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------" "------------" "--------------" "--------------"
printf '| %-46s | %10s | %12s | %12s |\n' "manifest GET by tag, wrk -c32 (req/s)" "$ONE_RPS" "$THREE_RPS" "$(ratio "$THREE_RPS" "$ONE_RPS")"
printf '| %-46s | %10s | %12s | %12s |\n' "warm pull ${IMAGE_MIB} MiB (s, best of 3)" "$ONE_WARM" "$THREE_WARM" "$(ratio "$THREE_WARM" "$ONE_WARM")"
printf '| %-46s | %10s | %12s | %12s |\n' "$CONCURRENCY concurrent cold pulls, wall (s)" "$ONE_COLD" "$THREE_COLD" "$(ratio "$THREE_COLD" "$ONE_COLD")"
printf '| %-46s | %10s | %12s | %12s |\n' "  upstream bytes (images' worth)" "$(images "$ONE_UP")" "$(images "$THREE_UP")" ""
echo
echo "three nodes: the warm pull and the manifest load go through the balancer; the cold pulls go to the nodes in turn"
