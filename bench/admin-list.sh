#!/usr/bin/env bash
# Listing a project with many repositories through the admin API: what does one
# call cost, and does memory grow with repeated calls?
#   1. start each binary to compare (BIN, and BIN_BEFORE if given, e.g. a
#      build of an older commit) on a free loopback port with its own data
#      directory, and create BENCH_REPOS repositories in project `default`;
#   2. RSS: VmRSS, then BENCH_CALLS calls of `GET /v1/projects/default/repositories`
#      (no parameters), then VmRSS again;
#   3. BENCH_ROUNDS rounds, the binaries interleaved in each round: the same
#      call without parameters, with pageSize=1000, a walk of every page at the
#      default size (following nextPageToken), and the last full page of that
#      walk asked for again on its own; time and bytes of each;
#   4. print medians per binary and, with two binaries, the ratio after/before.
# The first call of a round also opens the connection; the first page is asked
# for again at the end of the round to compare with the deep page.
# A binary without pagination answers every call with the whole listing: its
# walk is one call.
# Needs: curl, python3, and the release binary (built if missing:
#   cargo build --release --locked -p entrepot).
# Usage: BIN_BEFORE=/path/to/old/entrepot bench/admin-list.sh
#   (BENCH_REPOS=10000 BENCH_ROUNDS=5 BENCH_CALLS=5 to change)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPOS=${BENCH_REPOS:-10000}
ROUNDS=${BENCH_ROUNDS:-5}
CALLS=${BENCH_CALLS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT

require_tools curl python3

AFTER=${BIN:-"$ROOT/target/release/entrepot"}
build_release_if_missing "$AFTER"
NAMES=(after)
BINS=("$AFTER")
if [ -n "${BIN_BEFORE:-}" ]; then
    NAMES=(before after)
    BINS=("$BIN_BEFORE" "$AFTER")
fi

# The measuring client: one keep-alive connection, timings around the HTTP
# exchange only (JSON is parsed outside the timer).
cat >"$WORK/client.py" <<'EOF'
import http.client, json, sys, time
from urllib.parse import quote

addr, token, what = sys.argv[1], sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection(addr, timeout=120)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
LIST = "/v1/projects/default/repositories"

def get(path):
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        sys.exit(f"GET {path}: {response.status} {body[:200]!r}")
    return elapsed, body

if what == "create":
    n = int(sys.argv[4])
    for i in range(n):
        conn.request("POST", f"/v1/projects/default/repositories?repositoryId=bulk-{i:05d}",
                     body=json.dumps({"format": "docker", "description": f"repository {i}"}),
                     headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"create bulk-{i:05d}: {response.status} {body[:200]!r}")
elif what == "calls":
    for _ in range(int(sys.argv[4])):
        get(LIST)
elif what == "round":
    t, body = get(LIST)
    print(f"plain {t:.6f} {len(body)}")
    t, body = get(LIST + "?pageSize=1000")
    print(f"size1000 {t:.6f} {len(body)}")
    total, size, pages, items, token, tokens = 0.0, 0, 0, 0, None, []
    while True:
        t, body = get(LIST + (f"?pageToken={quote(token)}" if token else ""))
        total += t
        size += len(body)
        pages += 1
        page = json.loads(body)
        items += len(page["repositories"])
        if "nextPageToken" not in page:
            break
        token = page["nextPageToken"]
        tokens.append(token)
    print(f"walk {total:.6f} {size} {pages} {items}")
    # The last full page (the one before the last), asked for on its own: it
    # costs what the first page costs if a page is read by seeking.
    if len(tokens) >= 2:
        t, body = get(LIST)
        print(f"firstpage {t:.6f} {len(body)}")
        t, body = get(LIST + f"?pageToken={quote(tokens[-2])}")
        print(f"deeppage {t:.6f} {len(body)} {len(tokens)}")
EOF

ADDRS=()
TOKENS=()
SERVER_PIDS=()
for i in "${!NAMES[@]}"; do
    BIN=${BINS[$i]}
    echo "== ${NAMES[$i]}: starting $BIN, creating $REPOS repositories" >&2
    launch_entrepot "$WORK/${NAMES[$i]}-data"
    ADDRS+=("$E_ADDR")
    TOKENS+=("$E_TOKEN")
    SERVER_PIDS+=("$E_PID")
    python3 "$WORK/client.py" "$E_ADDR" "$E_TOKEN" create "$REPOS"
done

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
: >"$WORK/results"
for i in "${!NAMES[@]}"; do
    before=$(rss_kib "${SERVER_PIDS[$i]}")
    python3 "$WORK/client.py" "${ADDRS[$i]}" "${TOKENS[$i]}" calls "$CALLS"
    after=$(rss_kib "${SERVER_PIDS[$i]}")
    echo "${NAMES[$i]} rss $before $after" >>"$WORK/results"
done
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS" >&2
    for i in "${!NAMES[@]}"; do
        python3 "$WORK/client.py" "${ADDRS[$i]}" "${TOKENS[$i]}" round |
            sed "s/^/${NAMES[$i]} /" >>"$WORK/results"
    done
done

python3 - "$WORK/results" "$REPOS" "$CALLS" "$ROUNDS" <<'EOF'
import statistics, sys
path, repos, calls, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [l.split() for l in open(path) if l.strip()]
names = list(dict.fromkeys(r[0] for r in rows))
def med(name, kind, col):
    xs = [float(r[col]) for r in rows if r[0] == name and r[1] == kind]
    return statistics.median(xs) if xs else None
print(f"{repos} repositories, {rounds} interleaved rounds, medians")
print(f"| measure | " + " | ".join(names) + (" | after/before |" if len(names) == 2 else " |"))
print("|---|" + "---|" * (len(names) + (1 if len(names) == 2 else 0)))
def line(label, values, fmt):
    cells = [fmt(v) if v is not None else "-" for v in values]
    ratio = ""
    if len(values) == 2:
        ratio = f" {values[1] / values[0]:.3f} |" if values[0] and values[1] is not None else " - |"
    print(f"| {label} | " + " | ".join(cells) + " |" + ratio)
ms = lambda v: f"{v * 1000:.1f}"
kb = lambda v: f"{v / 1000:.1f}"
n = lambda v: f"{v:.0f}"
line("no parameters: ms", [med(x, "plain", 2) for x in names], ms)
line("no parameters: kB", [med(x, "plain", 3) for x in names], kb)
line("pageSize=1000: ms", [med(x, "size1000", 2) for x in names], ms)
line("pageSize=1000: kB", [med(x, "size1000", 3) for x in names], kb)
line("every page at the default size: ms in all", [med(x, "walk", 2) for x in names], ms)
line("every page at the default size: kB in all", [med(x, "walk", 3) for x in names], kb)
line("every page at the default size: requests", [med(x, "walk", 4) for x in names], n)
line("every page at the default size: repositories", [med(x, "walk", 5) for x in names], n)
line("first page again, same connection: ms", [med(x, "firstpage", 2) for x in names], ms)
line("last full page on its own (page N-1 of N): ms", [med(x, "deeppage", 2) for x in names], ms)
line("last full page on its own: kB", [med(x, "deeppage", 3) for x in names], kb)
for x in names:
    r = [row for row in rows if row[0] == x and row[1] == "rss"][0]
    b, a = int(r[2]), int(r[3])
    print(f"{x}: VmRSS {b / 1024:.1f} MiB before {calls} calls without parameters, {a / 1024:.1f} MiB after (+{(a - b) / 1024:.1f} MiB)")
EOF
