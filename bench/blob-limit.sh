#!/usr/bin/env bash
# A warm 200 MiB blob GET over plain HTTP/1.1 on loopback, against the
# physical limit: entrepot vs Debian's nginx serving the same file
# (`sendfile on`, one worker) vs distribution (Debian's docker-registry), and
# entrepot with `sendfile = false` (the same binary, bodies copied through
# memory as over TLS) to show what the zero-copy path is worth.
# Interleaved rounds; per server: min/median/max throughput (curl) and the
# server's CPU time per GiB sent (utime+stime deltas of /proc/PID/stat, every
# process of the server), and the ratios of the medians.
# Needs: cargo, curl, nginx, docker-registry, python3.
# Usage: bench/blob-limit.sh [--smoke] [--bin PATH]
#   --smoke  a 16 MiB blob, one round (checks the script; figures mean nothing)
#   --bin    the entrepot binary (default target/release/entrepot, built if missing)
#   BENCH_BLOB_MIB=200 BENCH_ROUNDS=5 to change the defaults.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOB_MIB=${BENCH_BLOB_MIB:-200}
ROUNDS=${BENCH_ROUNDS:-5}
BIN="$ROOT/target/release/entrepot"
COMMAND="bench/blob-limit.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) BLOB_MIB=16; ROUNDS=1 ;;
        --bin) BIN=$2; shift ;;
        *) echo "usage: bench/blob-limit.sh [--smoke] [--bin PATH]" >&2; exit 2 ;;
    esac
    shift
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools cargo curl nginx python3 docker-registry
build_release_if_missing "$BIN"

echo "== a ${BLOB_MIB} MiB blob" >&2
BLOB="$WORK/blob"
head -c $((BLOB_MIB * 1024 * 1024)) /dev/urandom >"$BLOB"
DIGEST="sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)"
BLOB_PATH="/v2/default/bench/blob/blobs/$DIGEST"

echo "== entrepot" >&2
launch_entrepot "$WORK/entrepot-data"
ecli repositories create bench --repository-format=docker >/dev/null
# Anonymous reads, as nginx and distribution serve them.
ecli repositories add-iam-policy-binding bench \
    --member=allUsers --role=roles/artifactregistry.reader >/dev/null
CURL_AUTH=(-u "admin:$E_TOKEN")
push_blob "http://$E_ADDR" default/bench/blob
E_COPY_ADDR=$E_ADDR E_COPY_PID=$E_PID
# The same data directory is not shared: a second server of its own.
ENTREPOT_SENDFILE=false launch_entrepot "$WORK/entrepot-copy-data"
ecli repositories create bench --repository-format=docker >/dev/null
ecli repositories add-iam-policy-binding bench \
    --member=allUsers --role=roles/artifactregistry.reader >/dev/null
CURL_AUTH=(-u "admin:$E_TOKEN")
push_blob "http://$E_ADDR" default/bench/blob
read -r E_ADDR E_PID E_COPY_ADDR E_COPY_PID <<<"$E_COPY_ADDR $E_COPY_PID $E_ADDR $E_PID"

echo "== distribution" >&2
launch_distribution registry "$WORK/registry-data"
CURL_AUTH=()
push_blob "http://$D_ADDR" default/bench/blob

echo "== nginx, sendfile on, one worker" >&2
N_PORT=$(free_port)
mkdir -p "$WORK/www$(dirname "$BLOB_PATH")" "$WORK/nginx/logs"
ln "$BLOB" "$WORK/www$BLOB_PATH"
# nginx's worker runs as an unprivileged user when started as root.
chmod 755 "$WORK"
chmod -R a+rX "$WORK/www"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $WORK/nginx/tmp;
    proxy_temp_path $WORK/nginx/tmp;
    fastcgi_temp_path $WORK/nginx/tmp;
    uwsgi_temp_path $WORK/nginx/tmp;
    scgi_temp_path $WORK/nginx/tmp;
    server {
        listen 127.0.0.1:$N_PORT;
        root $WORK/www;
    }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/stderr" &
N_PID=$!
PIDS+=("$N_PID")
N_ADDR="127.0.0.1:$N_PORT"
wait_http "http://$N_ADDR/" || { cat "$WORK/nginx/stderr" >&2; exit 1; }

declare -A URL=([entrepot]="http://$E_ADDR$BLOB_PATH" [entrepot-copy]="http://$E_COPY_ADDR$BLOB_PATH"
    [nginx]="http://$N_ADDR$BLOB_PATH" [distribution]="http://$D_ADDR$BLOB_PATH")
declare -A PID_OF=([entrepot]=$E_PID [entrepot-copy]=$E_COPY_PID [nginx]=$N_PID [distribution]=$D_PID)
SERVERS=(entrepot entrepot-copy nginx distribution)

# One GET into OUT (default /dev/null: curl's receive is the other half of
# the limit); prints "SERVER MiB/s cpu_ms_per_GiB" and checks the size.
get() { # get SERVER [OUT]
    local before after out
    before=$(cpu_ms_tree "${PID_OF[$1]}")
    out=$(curl -sS --fail -o "${2:-/dev/null}" -w '%{size_download} %{speed_download}' "${URL[$1]}")
    after=$(cpu_ms_tree "${PID_OF[$1]}")
    read -r size speed <<<"$out"
    [ "$size" = $((BLOB_MIB * 1024 * 1024)) ] || { echo "bench: $1 sent $size bytes" >&2; exit 1; }
    awk -v s="$speed" -v c=$((after - before)) -v mib="$BLOB_MIB" -v name="$1" \
        'BEGIN { printf "%s %.1f %.0f\n", name, s / 1048576, c * 1024 / mib }'
}

echo "== warm-up (page cache), and every server's bytes checked against the digest" >&2
for s in "${SERVERS[@]}"; do
    get "$s" "$WORK/got" >/dev/null
    [ "sha256:$(sha256sum "$WORK/got" | cut -d' ' -f1)" = "$DIGEST" ] ||
        { echo "bench: $s sent other bytes than the blob's" >&2; exit 1; }
done
RESULTS="$WORK/results"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS" >&2
    for s in "${SERVERS[@]}"; do
        get "$s" >>"$RESULTS"
    done
done

echo
echo "\`$COMMAND\`: entrepot $(git -C "$ROOT" rev-parse --short HEAD) ($(case $BIN in *debug*) echo debug ;; *) echo release ;; esac)), nginx $(nginx -v 2>&1 | sed 's#.*/##'), distribution $(/usr/bin/docker-registry --version | awk '{print $3}'); ${BLOB_MIB} MiB blob, plain HTTP/1.1, $ROUNDS interleaved rounds, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
data = {}
for server, mibs, cpu in rows:
    data.setdefault(server, []).append((float(mibs), float(cpu)))
servers = ("entrepot", "entrepot-copy", "nginx", "distribution")
med = {s: statistics.median(v[0] for v in data[s]) for s in servers}
cpu = {s: statistics.median(v[1] for v in data[s]) for s in servers}
print("entrepot-copy: the same binary with sendfile = false (bodies copied through memory, as over TLS)")
print()
print("| server | MiB/s min / median / max | CPU ms per GiB min / median / max | throughput vs nginx | CPU vs nginx |")
print("|---|---|---|---|---|")
for s in servers:
    speeds = [x[0] for x in data[s]]
    cpus = [x[1] for x in data[s]]
    cpu_ratio = f"{cpu[s] / cpu['nginx']:.2f}x" if cpu["nginx"] else "n/a"
    print(f"| {s} | {min(speeds):.0f} / {med[s]:.0f} / {max(speeds):.0f} "
          f"| {min(cpus):.0f} / {cpu[s]:.0f} / {max(cpus):.0f} | {med[s] / med['nginx']:.2f}x | {cpu_ratio} |")
PY
