#!/usr/bin/env bash
# Every side-by-side comparison of bench/, one after another on this machine,
# with the same entrepot binary:
#   blob-limit.sh    warm blob GET vs nginx (sendfile) and distribution, plain HTTP
#   tls.sh           the same over TLS, HTTP/1.1 and HTTP/2
#   oci-hosted.sh    hosted blob GET, manifest req/s, skopeo pull vs distribution
#   oci-remote.sh    pull-through cache vs distribution's proxy and a direct pull
#   python-remote.sh pip/uv through the cache vs proxpi and devpi
#   lifecycle.sh     garbage collection over a large store, GETs while it runs
#   scale.sh         manifest GET cost vs number of tags and repositories
#   cluster.sh       one node vs three behind nginx on PostgreSQL and Garage
# Each script prints its own table (min/median/max over interleaved rounds
# where it has rounds). A full run appends them, dated, to bench/RESULTS.md
# (earlier runs are kept); --smoke runs each with tiny sizes and one round, in
# a few minutes, to prove the scripts still work (CI does), and writes nothing.
# Needs what each script needs (see their headers).
# Usage: bench/all.sh [--smoke] [--bin PATH] [--only NAME[,NAME...]]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
BIN=""
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --bin) BIN=$2; shift ;;
        --only) ONLY=$2; shift ;;
        *) echo "usage: bench/all.sh [--smoke] [--bin PATH] [--only NAME[,NAME...]]" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$BIN" ]; then
    echo "== building entrepot (release)" >&2
    (cd "$ROOT" && cargo build --release --locked --quiet -p entrepot)
    BIN="$ROOT/target/release/entrepot"
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[ -x "$BIN" ] || { echo "bench: $BIN is not an executable" >&2; exit 1; }
export BENCH_BIN=$BIN

# name, then the command line (smoke sizes when --smoke).
run_list() {
    if [ "$SMOKE" = 1 ]; then
        echo "blob-limit bench/blob-limit.sh --smoke --bin $BIN"
        echo "tls bench/tls.sh --smoke --bin $BIN"
        echo "oci-hosted env BENCH_BLOB_MIB=8 BENCH_WRK_SECS=1 bench/oci-hosted.sh"
        echo "oci-remote env BENCH_IMAGE_MIB=4 BENCH_CONCURRENCY=3 bench/oci-remote.sh"
        echo "python-remote env BENCH_PACKAGES=3 BENCH_FILES=50 bench/python-remote.sh"
        echo "lifecycle bench/lifecycle.sh --smoke"
        echo "scale bench/scale.sh --smoke --bin $BIN"
        echo "cluster bench/cluster.sh --smoke --bin $BIN"
    else
        echo "blob-limit bench/blob-limit.sh --bin $BIN"
        echo "tls bench/tls.sh --bin $BIN"
        echo "oci-hosted bench/oci-hosted.sh"
        echo "oci-remote bench/oci-remote.sh"
        echo "python-remote bench/python-remote.sh"
        echo "lifecycle bench/lifecycle.sh"
        echo "scale bench/scale.sh --bin $BIN"
        echo "cluster bench/cluster.sh --bin $BIN"
    fi
}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench-all.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
FAILED=()
while read -r name command; do
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
    echo "==== $name: $command" >&2
    start=$(date +%s)
    # shellcheck disable=SC2086
    if (cd "$ROOT" && $command) >"$OUT/$name.md"; then
        echo "==== $name: done in $(($(date +%s) - start)) s" >&2
    else
        echo "==== $name: FAILED after $(($(date +%s) - start)) s" >&2
        FAILED+=("$name")
    fi
    cat "$OUT/$name.md"
done < <(run_list)

if [ "$SMOKE" = 0 ]; then
    {
        echo
        echo "## bench/all.sh, $(date -u +%Y-%m-%d), entrepot $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores"
        for f in "$OUT"/*.md; do
            echo
            echo "### $(basename "$f" .md)"
            cat "$f"
        done
    } >>"$ROOT/bench/RESULTS.md"
    echo "bench: appended to bench/RESULTS.md" >&2
fi
if ((${#FAILED[@]})); then
    echo "bench: failed: ${FAILED[*]}" >&2
    exit 1
fi
