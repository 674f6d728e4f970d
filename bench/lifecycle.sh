#!/usr/bin/env bash
# Garbage collection over a large store, on loopback:
#   1. GC time (the report's durationMs and wall time) and the server's peak
#      RSS growth (VmHWM) over a store of BENCH_BLOBS blobs (default 100,000),
#      10% of them unreferenced;
#   2. manifest GET by tag, wrk -c 16, idle vs while collections run back to
#      back, BENCH_ROUNDS interleaved rounds (requests/s and the ratio);
#   3. `images list` over a repository of BENCH_TAGS tags (default 10,000),
#      one manifest each, pushed over HTTP: the admin API's time per page
#      (pages of 100 and of 1000) and for the whole walk, and the CLI's
#      wall time for the full listing; each walk BENCH_ROUNDS times (min,
#      median and max), with the first and last tenth of the pages apart so
#      that a page cost growing with its position shows.
# The store is seeded straight into the data directory (the server stopped):
# blob files of 64-576 bytes, their rows, 10 blobs per manifest, one tag per
# manifest; the unreferenced 10% have rows and files but no link.
# Needs: cargo, wrk, curl, python3.
# Usage: bench/lifecycle.sh [--smoke]   (BENCH_BLOBS, BENCH_ROUNDS, BENCH_WRK_SECS, BENCH_TAGS;
#        BENCH_BIN=path to use a built binary instead of building release;
#        BENCH_ONLY=images to run part 3 alone, on an empty store)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOBS=${BENCH_BLOBS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
TAGS=${BENCH_TAGS:-10000}
WRK_SECS=${BENCH_WRK_SECS:-10}
if [ "${1:-}" = --smoke ]; then
    BLOBS=${BENCH_BLOBS:-2000}
    ROUNDS=1
    WRK_SECS=2
    TAGS=${BENCH_TAGS:-250}
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools wrk curl python3
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    require_tools cargo
    BIN="$ROOT/target/release/entrepot"
    build_release_if_missing "$BIN"
fi

DATA="$WORK/entrepot-data"
ONLY=${BENCH_ONLY:-}
if [ "$ONLY" != images ]; then
echo "== first start (creates the database), then stop to seed" >&2
launch_entrepot "$DATA" --gc-interval 0
ecli repositories create bench --repository-format=docker >/dev/null
kill "$E_PID"; wait "$E_PID" 2>/dev/null || true

echo "== seeding $BLOBS blobs (10% unreferenced)" >&2
python3 - "$DATA" "$BLOBS" <<'PY'
import hashlib, json, os, sqlite3, sys
data, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(os.path.join(data, "metadata.db"))
blobs_root = os.path.join(data, "blobs", "blobs", "sha256")
per_manifest = 10
live = n - n // 10
rows, links, manifests, tags = [], [], [], []
digests = []
for i in range(n):
    body = (b"entrepot lifecycle bench blob %d " % i) * (2 + i % 18)
    hx = hashlib.sha256(body).hexdigest()
    d = os.path.join(blobs_root, hx[:2])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hx), "wb") as f:
        f.write(body)
    rows.append(("sha256:" + hx, len(body), "2026-01-01T00:00:00Z"))
    digests.append(("sha256:" + hx, len(body)))
for m in range(live // per_manifest):
    group = digests[m * per_manifest:(m + 1) * per_manifest]
    image = "app%d" % (m % 100)
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": group[0][0], "size": group[0][1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": g[0], "size": g[1]} for g in group[1:]],
    }
    content = json.dumps(doc, separators=(",", ":")).encode()
    md = "sha256:" + hashlib.sha256(content).hexdigest()
    manifests.append(("default", "bench", image, md, doc["mediaType"], content, "2026-01-01T00:00:00Z"))
    tags.append(("default", "bench", image, "t%d" % m, md, "2026-01-01T00:00:00Z"))
    for g in group:
        links.append(("default", "bench", image, g[0], 0))
with db:
    db.executemany("INSERT INTO blobs (digest, size, create_time) VALUES (?, ?, ?)", rows)
    db.executemany("INSERT INTO blob_links (project, repository, image, digest, link_time) VALUES (?, ?, ?, ?, ?)", links)
    db.executemany("INSERT INTO manifests (project, repository, image, digest, media_type, content, create_time) VALUES (?, ?, ?, ?, ?, ?, ?)", manifests)
    db.executemany("INSERT INTO tags (project, repository, image, tag, digest, update_time) VALUES (?, ?, ?, ?, ?, ?)", tags)
print(f"seeded {n} blobs, {len(manifests)} manifests, {n - live} unreferenced", file=sys.stderr)
PY

launch_entrepot "$DATA" --gc-interval 0
hwm() { awk '/VmHWM/ {print $2}' "/proc/$E_PID/status"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$E_PID/status"; }
BASIC=$(printf 'admin:%s' "$E_TOKEN" | base64 -w0)
URL="http://$E_ADDR/v2/default/bench/app7/manifests/t7"
curl -sf -o /dev/null -H "Authorization: Basic $BASIC" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL" || { echo "bench: manifest GET fails" >&2; exit 1; }

gc_json() { ecli admin gc --format=json "$@"; }
echo "== dry run, then the collection itself" >&2
DRY=$(gc_json --dry-run)
RSS_BEFORE=$(rss); HWM_BEFORE=$(hwm)
START=$(date +%s.%N)
REPORT=$(gc_json)
END=$(date +%s.%N)
HWM_AFTER=$(hwm)
python3 - "$DRY" "$REPORT" "$START" "$END" "$RSS_BEFORE" "$HWM_BEFORE" "$HWM_AFTER" "$BLOBS" <<'PY'
import json, sys
dry, rep = json.loads(sys.argv[1]), json.loads(sys.argv[2])
wall = float(sys.argv[4]) - float(sys.argv[3])
rss, hwm0, hwm1, n = (int(x) for x in sys.argv[5:9])
print(f"store: {n} blobs; dry run counts {dry['blobsDeleted']} blobs, {dry['bytesReclaimed']} bytes in {dry['durationMs']} ms")
print(f"gc: deleted {rep['blobsDeleted']} blobs, {rep['bytesReclaimed']} bytes, dropped {rep['linksDropped']} links in {rep['durationMs']} ms (CLI wall {wall:.2f} s)")
print(f"server RSS before {rss/1024:.1f} MiB; peak RSS {hwm0/1024:.1f} -> {hwm1/1024:.1f} MiB ({(hwm1-hwm0)/1024:+.1f} MiB during gc)")
assert rep["blobsDeleted"] == n // 10, rep
PY

echo "== manifest GET: idle vs while collections run back to back ($ROUNDS interleaved rounds, ${WRK_SECS}s each)" >&2
req_s() { wrk -t 2 -c 16 -d "${WRK_SECS}s" -H "Authorization: Basic $BASIC" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL" | awk '/Requests\/sec/ {print $2}'; }
IDLE=(); BUSY=(); RUNS=()
for round in $(seq 1 "$ROUNDS"); do
    IDLE+=("$(req_s)")
    ( n=0; while :; do gc_json >/dev/null; n=$((n+1)); echo "$n" >"$WORK/gc-runs"; done ) &
    LOOP=$!
    BUSY+=("$(req_s)")
    kill "$LOOP" 2>/dev/null; wait "$LOOP" 2>/dev/null || true
    RUNS+=("$(cat "$WORK/gc-runs" 2>/dev/null || echo 0)")
done
python3 - "${IDLE[*]}" "${BUSY[*]}" "${RUNS[*]}" <<'PY'
import sys
idle = [float(x) for x in sys.argv[1].split()]
busy = [float(x) for x in sys.argv[2].split()]
runs = sys.argv[3].split()
for i, (a, b, r) in enumerate(zip(idle, busy, runs), 1):
    print(f"round {i}: idle {a:.0f} req/s, during gc {b:.0f} req/s ({r} collections), ratio {b/a:.2f}")
print(f"median ratio during/idle: {sorted(b/a for a, b in zip(idle, busy))[len(idle)//2]:.2f}")
PY
else
    launch_entrepot "$DATA" --gc-interval 0
fi

echo "== images list: a repository with $TAGS tags (one manifest per tag, pushed over HTTP)" >&2
ecli repositories create tags --repository-format=docker >/dev/null
python3 - "$E_ADDR" "$E_TOKEN" "$TAGS" <<'PY'
# One config and one layer blob, then TAGS manifests that differ by an
# annotation, each PUT under its own tag, over one keep-alive connection.
import base64, hashlib, http.client, json, sys
addr, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = {"Authorization": "Basic " + base64.b64encode(b"admin:" + token.encode()).decode()}
conn = http.client.HTTPConnection(addr)
def call(method, path, body=b"", headers=None, want=(200, 201, 202)):
    conn.request(method, path, body=body, headers={**auth, **(headers or {})})
    r = conn.getresponse(); data = r.read()
    if r.status not in want:
        sys.exit(f"bench: {method} {path}: {r.status} {data[:200]!r}")
    return r
base = "/v2/default/tags/app"
blobs = []
for body in (b'{"architecture":"amd64","os":"linux"}', b"entrepot images list bench layer"):
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    call("POST", f"{base}/blobs/uploads/?digest={d}", body, {"Content-Type": "application/octet-stream"})
    blobs.append((d, len(body)))
for i in range(n):
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0][0], "size": blobs[0][1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blobs[1][0], "size": blobs[1][1]}],
        "annotations": {"org.opencontainers.image.version": str(i)},
    }
    call("PUT", f"{base}/manifests/v{i}", json.dumps(doc).encode(),
         {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
print(f"pushed {n} tagged manifests", file=sys.stderr)
PY
python3 - "$E_ADDR" "$E_TOKEN" "$TAGS" "$ROUNDS" <<'PY'
# The admin API's pages: every one of the walk, at the default size (100)
# and at the largest (1000), ROUNDS walks each.
import base64, http.client, json, sys, time
addr, token, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
auth = {"Authorization": "Bearer " + token}
conn = http.client.HTTPConnection(addr)
path = "/v1/projects/default/repositories/tags/dockerImages"
def walk(size):
    times, items, tok = [], 0, None
    while True:
        q = f"?pageSize={size}" + (f"&pageToken={tok}" if tok else "")
        t0 = time.perf_counter()
        conn.request("GET", path + q, headers=auth)
        r = conn.getresponse(); body = json.loads(r.read())
        times.append(time.perf_counter() - t0)
        assert r.status == 200, body
        items += len(body.get("dockerImages", []))
        tok = body.get("nextPageToken")
        if not tok:
            break
    assert items == n, (items, n)
    return times
def med(xs):
    xs = sorted(xs); return xs[len(xs) // 2]
def spread(xs, fmt):
    xs = sorted(xs); return f"min {fmt(xs[0])}, median {fmt(med(xs))}, max {fmt(xs[-1])}"
ms = lambda x: f"{x * 1000:.1f} ms"
for size in (100, 1000):
    walks = [walk(size) for _ in range(rounds)]
    pages = len(walks[0])
    tenth = max(1, pages // 10)
    print(f"images list API, pageSize={size}, {pages} pages, {rounds} walks: "
          f"whole walk {spread([sum(w) for w in walks], lambda x: f'{x:.2f} s')}; "
          f"per page {spread([med(w) for w in walks], ms)} (each walk's median); "
          f"first tenth of the pages {ms(med([t for w in walks for t in w[:tenth]]))}, "
          f"last tenth {ms(med([t for w in walks for t in w[-tenth:]]))} (medians)")
PY
for round in $(seq 1 "$ROUNDS"); do
    START=$(date +%s.%N)
    COUNT=$(ecli artifacts docker images list tags --include-tags --page-size=1000 --format=json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    END=$(date +%s.%N)
    [ "$COUNT" = "$TAGS" ] || { echo "bench: images list printed $COUNT images, not $TAGS" >&2; exit 1; }
    python3 -c "import sys; print(f'images list CLI (--include-tags --page-size=1000 --format=json), round $round: {sys.argv[1]} images in {float(sys.argv[3]) - float(sys.argv[2]):.2f} s')" "$COUNT" "$START" "$END"
done
START=$(date +%s.%N)
ecli artifacts docker images list tags --include-tags >/dev/null
END=$(date +%s.%N)
python3 -c "import sys; print(f'images list CLI (table, default pages of 100): {float(sys.argv[2]) - float(sys.argv[1]):.2f} s')" "$START" "$END"
