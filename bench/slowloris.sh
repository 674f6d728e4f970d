#!/usr/bin/env bash
# Slowloris on loopback against the release binary, bounded in count and time:
#   1. N connections sit on the server (half silent, half trickling a request
#      head a byte at a time), max_connections above N, while fresh clients
#      time GET /healthz: they must all be served;
#   2. the server closes the N once the header deadline passes (count, and
#      when the last one was closed);
#   3. with max_connections lowered below N, connections over the limit are
#      answered 503 and closed at once, while a client connected before the
#      flood keeps being served.
# Needs: cargo, python3, curl.
# Usage: bench/slowloris.sh   (SLOWLORIS_CONNS=3000 SLOWLORIS_HEADER_SECS=5
#        SLOWLORIS_LIMIT=1000 to change; at most 15000 connections)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNS=${SLOWLORIS_CONNS:-3000}
HEADER_SECS=${SLOWLORIS_HEADER_SECS:-5}
LIMIT=${SLOWLORIS_LIMIT:-1000}
[ "$CONNS" -le 15000 ] || { echo "bench: SLOWLORIS_CONNS is capped at 15000" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools cargo python3 curl

echo "== building entrepot (release)" >&2
(cd "$ROOT" && cargo build --release --locked --quiet)
BIN="$ROOT/target/release/entrepot"

cat >"$WORK/flood.py" <<'PY'
"""Open idle and slow-header connections, time fresh clients meanwhile, and
watch the server close the flood. Bounded: every loop has a deadline."""
import resource, socket, statistics, sys, time

addr, mode, conns, header_secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = addr.rsplit(":", 1)
port = int(port)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def request(sock):
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data.split(b" ", 2)[1].decode()

def fresh_request():
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as s:
        status = request(s)
    return status, (time.monotonic() - start) * 1000

# A client connected (and served once) before the flood.
veteran = socket.create_connection((host, port), timeout=10)
assert request(veteran) == "200"

flood, refused = [], 0
opened_at = time.monotonic()
for i in range(conns):
    s = socket.socket()
    s.settimeout(10)
    s.connect((host, port))
    s.setblocking(False)
    if i % 2 == 1:
        s.send(b"GET /healthz HT")  # half a request line
    flood.append(s)
opened_by = time.monotonic()
print(f"opened {len(flood)} connections in {opened_by - opened_at:.2f} s")

if mode == "limit":
    time.sleep(1)
    # Over the limit: the server answers 503 at once and closes.
    still_open = 0
    for s in flood:
        try:
            data = s.recv(256)
            if data.startswith(b"HTTP/1.1 503"):
                refused += 1
            elif not data:
                refused += 1
        except BlockingIOError:
            still_open += 1
        except OSError:
            refused += 1
    print(f"refused with 503/closed: {refused}; held by the server: {still_open}")
    print(f"veteran client (connected before the flood): {request(veteran)}")
    sys.exit(0)

# New clients while the flood sits there (fewer than max_connections).
latencies, failures = [], 0
for _ in range(200):
    try:
        status, ms = fresh_request()
        if status == "200":
            latencies.append(ms)
        else:
            failures += 1
    except OSError:
        failures += 1
    # Keep the slow ones trickling: one byte each, every ~second.
    if len(latencies) % 50 == 0:
        for s in flood[1::2]:
            try:
                s.send(b"T")
            except OSError:
                pass
lat = sorted(latencies)
print(f"fresh clients during the flood: {len(lat)} served, {failures} failed; "
      f"latency ms min {lat[0]:.2f} median {statistics.median(lat):.2f} "
      f"p99 {lat[int(len(lat) * 0.99) - 1]:.2f} max {lat[-1]:.2f}")

# Watch the server close the flood (bounded wait: header deadline + 10 s
# after the last connection was opened).
deadline = opened_by + header_secs + 10
open_set, last_close = set(range(len(flood))), None
while open_set and time.monotonic() < deadline:
    for i in list(open_set):
        s = flood[i]
        try:
            if i % 2 == 1:
                s.send(b"T")  # still trickling
            if s.recv(256) == b"":
                raise ConnectionError
        except BlockingIOError:
            continue
        except OSError:
            open_set.discard(i)
            last_close = time.monotonic() - opened_by
    time.sleep(0.5)
closed = len(flood) - len(open_set)
print(f"closed by the server: {closed} of {len(flood)}; last closed "
      f"{last_close if last_close is None else round(last_close, 1)} s after the last one was opened "
      f"(header_read_timeout_secs={header_secs})")
print(f"veteran client after the flood: "
      f"{'closed by the idle timeout' if veteran.recv(1) == b'' else 'open'}")
PY

echo "== flood of $CONNS idle/slow-header connections, header deadline ${HEADER_SECS}s" >&2
# Room for the whole flood: this phase measures the timeouts, not the limit.
ENTREPOT_MAX_CONNECTIONS=$((CONNS + 1000)) \
    ENTREPOT_HEADER_READ_TIMEOUT_SECS=$HEADER_SECS ENTREPOT_IDLE_TIMEOUT_SECS=$HEADER_SECS \
    launch_entrepot "$WORK/data-flood"
timeout 120 python3 "$WORK/flood.py" "$E_ADDR" flood "$CONNS" "$HEADER_SECS"
kill "$E_PID"

echo "== the same flood against max_connections=$LIMIT" >&2
ENTREPOT_MAX_CONNECTIONS=$LIMIT launch_entrepot "$WORK/data-limit"
timeout 120 python3 "$WORK/flood.py" "$E_ADDR" limit "$CONNS" 30
grep -c "connection limit reached" "$WORK/data-limit.log" | sed 's/^/limit warnings in the log: /'
