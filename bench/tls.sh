#!/usr/bin/env bash
# A large blob GET over TLS on loopback: entrepot (--tls-cert/--tls-key) vs
# Debian's nginx serving the same file with the same certificate (sendfile on;
# with TLS nginx still copies through OpenSSL, no kTLS) vs distribution
# (Debian's docker-registry, http.tls), each over HTTP/1.1 and HTTP/2 (curl).
# Interleaved rounds; per server and protocol: min/median/max throughput and
# the server's CPU time per GiB sent (utime+stime deltas of /proc/PID/stat,
# every process of the server).
# Needs: cargo, curl (with HTTP/2), openssl, nginx, docker-registry, python3.
# Usage: bench/tls.sh [--smoke] [--bin PATH]
#   --smoke  a 16 MiB blob, one round (checks the script; figures mean nothing)
#   --bin    the entrepot binary (default target/release/entrepot, built if missing)
#   BENCH_BLOB_MIB=200 BENCH_ROUNDS=5 to change the defaults.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOB_MIB=${BENCH_BLOB_MIB:-200}
ROUNDS=${BENCH_ROUNDS:-5}
BIN="$ROOT/target/release/entrepot"
COMMAND="bench/tls.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) BLOB_MIB=16; ROUNDS=1 ;;
        --bin) BIN=$2; shift ;;
        *) echo "usage: bench/tls.sh [--smoke] [--bin PATH]" >&2; exit 2 ;;
    esac
    shift
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools cargo curl openssl nginx python3 docker-registry
curl --version | grep -q HTTP2 || { echo "bench: this curl has no HTTP/2" >&2; exit 1; }
build_release_if_missing "$BIN"

echo "== a test CA and a certificate for 127.0.0.1" >&2
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench-ca -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial \
    -days 2 -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
    -out "$TLS/server.crt" 2>/dev/null
CURL=(curl -sS --fail --cacert "$TLS/ca.crt")

# Wait until an HTTPS URL answers at all (any status), the test CA trusted.
wait_https() {
    for _ in $(seq 1 100); do
        curl -s --cacert "$TLS/ca.crt" -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench: $1 did not answer" >&2
    return 1
}

echo "== a ${BLOB_MIB} MiB blob" >&2
BLOB="$WORK/blob"
head -c $((BLOB_MIB * 1024 * 1024)) /dev/urandom >"$BLOB"
DIGEST="sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)"
BLOB_PATH="/v2/default/bench/blob/blobs/$DIGEST"

echo "== entrepot" >&2
mkdir -p "$WORK/entrepot-data"
ENTREPOT_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/entrepot-data" \
    --tls-cert "$TLS/server.crt" --tls-key "$TLS/server.key" \
    >"$WORK/entrepot.out" 2>"$WORK/entrepot.log" &
E_PID=$!
PIDS+=("$E_PID")
for _ in $(seq 1 300); do
    grep -q '^entrepot listening' "$WORK/entrepot.out" 2>/dev/null && break
    sleep 0.1
done
E_ADDR=$(head -1 "$WORK/entrepot.out" | sed -n 's#^entrepot listening on https://##p')
[ -n "$E_ADDR" ] || { echo "bench: entrepot did not start with TLS:" >&2; cat "$WORK/entrepot.out" "$WORK/entrepot.log" >&2; exit 1; }
E_TOKEN=$(cat "$WORK/entrepot-data/bootstrap-admin-token")
"${CURL[@]}" -o /dev/null -X POST -H "Authorization: Bearer $E_TOKEN" -H 'Content-Type: application/json' \
    -d '{"format": "docker"}' "https://$E_ADDR/v1/projects/default/repositories?repositoryId=bench"
# Reads as the admin, with Basic: one password check per request, nothing
# next to a 200 MiB body.
CURL_AUTH=(-u "admin:$E_TOKEN")
push_blob "https://$E_ADDR" default/bench/blob

echo "== distribution with TLS" >&2
D_PORT=$(free_port)
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $WORK/registry-data
http:
  addr: 127.0.0.1:$D_PORT
  tls:
    certificate: $TLS/server.crt
    key: $TLS/server.key
YAML
/usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
D_PID=$!
PIDS+=("$D_PID")
D_ADDR="127.0.0.1:$D_PORT"
wait_https "https://$D_ADDR/v2/" || { cat "$WORK/registry.log" >&2; exit 1; }
CURL_AUTH=()
push_blob "https://$D_ADDR" default/bench/blob

echo "== nginx with the same certificate, sendfile on" >&2
N_PORT=$(free_port)
mkdir -p "$WORK/www$(dirname "$BLOB_PATH")" "$WORK/nginx/logs"
ln "$BLOB" "$WORK/www$BLOB_PATH"
# nginx's workers run as an unprivileged user when started as root.
chmod 755 "$WORK"
chmod -R a+rX "$WORK/www"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
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
        listen 127.0.0.1:$N_PORT ssl http2;
        ssl_certificate $TLS/server.crt;
        ssl_certificate_key $TLS/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $WORK/www;
    }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/stderr" &
N_PID=$!
PIDS+=("$N_PID")
N_ADDR="127.0.0.1:$N_PORT"
wait_https "https://$N_ADDR/" || { cat "$WORK/nginx/stderr" >&2; exit 1; }

declare -A URL=([entrepot]="https://$E_ADDR$BLOB_PATH" [nginx]="https://$N_ADDR$BLOB_PATH" [distribution]="https://$D_ADDR$BLOB_PATH")
declare -A PID_OF=([entrepot]=$E_PID [nginx]=$N_PID [distribution]=$D_PID)
declare -A AUTH=([entrepot]="admin:$E_TOKEN" [nginx]="" [distribution]="")
SERVERS=(entrepot nginx distribution)
PROTOS=(http1.1 http2)

# One GET; prints "SERVER PROTO MiB/s cpu_ms_per_GiB" and checks the protocol and size.
get() { # get SERVER PROTO
    local before after out auth=()
    [ -n "${AUTH[$1]}" ] && auth=(-u "${AUTH[$1]}")
    before=$(cpu_ms_tree "${PID_OF[$1]}")
    out=$("${CURL[@]}" "${auth[@]}" "--$2" -o /dev/null -w '%{http_version} %{size_download} %{speed_download}' "${URL[$1]}")
    after=$(cpu_ms_tree "${PID_OF[$1]}")
    read -r version size speed <<<"$out"
    local want=${2#http}
    [ "$version" = "$want" ] || { echo "bench: $1 answered HTTP/$version to --$2" >&2; exit 1; }
    [ "$size" = $((BLOB_MIB * 1024 * 1024)) ] || { echo "bench: $1 sent $size bytes" >&2; exit 1; }
    awk -v s="$speed" -v c=$((after - before)) -v mib="$BLOB_MIB" -v name="$1 $2" \
        'BEGIN { printf "%s %.1f %.0f\n", name, s / 1048576, c * 1024 / mib }'
}

echo "== warm-up (page cache; every GET below is a new curl, so a new TLS connection)" >&2
for s in "${SERVERS[@]}"; do for p in "${PROTOS[@]}"; do get "$s" "$p" >/dev/null; done; done

RESULTS="$WORK/results"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS" >&2
    for p in "${PROTOS[@]}"; do
        for s in "${SERVERS[@]}"; do
            get "$s" "$p" >>"$RESULTS"
        done
    done
done

echo
echo "\`$COMMAND\`: entrepot $(git -C "$ROOT" rev-parse --short HEAD) ($(case $BIN in *debug*) echo debug ;; *) echo release ;; esac)), nginx $(nginx -v 2>&1 | sed 's#.*/##'), distribution $(/usr/bin/docker-registry --version | awk '{print $3}'); ${BLOB_MIB} MiB blob, $ROUNDS interleaved rounds, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
data = {}
for server, proto, mibs, cpu in rows:
    data.setdefault((server, proto), []).append((float(mibs), float(cpu)))
print("| protocol | server | MiB/s min / median / max | server CPU ms per GiB (median) | vs nginx | vs distribution |")
print("|---|---|---|---|---|---|")
for proto in ("http1.1", "http2"):
    med = {s: statistics.median(v[0] for v in data[(s, proto)]) for s in ("entrepot", "nginx", "distribution")}
    for server in ("entrepot", "nginx", "distribution"):
        v = data[(server, proto)]
        speeds = [x[0] for x in v]
        cpu = statistics.median(x[1] for x in v)
        print(f"| {proto} | {server} | {min(speeds):.0f} / {med[server]:.0f} / {max(speeds):.0f} | {cpu:.0f} "
              f"| {med[server] / med['nginx']:.2f}x | {med[server] / med['distribution']:.2f}x |")
PY
