#!/usr/bin/env bash
# Cost versus store size: entrepot beside distribution (Debian's
# docker-registry, filesystem storage) holding the same content, on loopback.
#
# Tags phase, one image with 10 / 1,000 / 10,000 / 100,000 tags:
#   - manifest GET by tag, the tag picked at random over all tags for each
#     request (wrk -t2 -c32, bench/scale-tags.lua): anonymous; authenticated
#     with a Bearer registry token from entrepot's /v2/token and with Basic and
#     a personal access token, against distribution with htpasswd (bcrypt);
#     entrepot runs these with its default read cache (144 MiB, whose tag map
#     holds all of 10,000 tags) and again, restarted on the same data
#     directory, with each --read-cache-bytes of --small-cache: 1 MiB (about
#     250 tags: all of 10, a quarter of 1,000, a few % above) and 0 (no cache:
#     every lookup, IAM policies included, reads SQLite), so that the cost
#     of the miss path is measured at every size; after each restart a 1 s
#     run (not recorded) warms it up;
#   - tags/list?n=100 (first page, and the middle page entrepot's Link format
#     leads to), _catalog?n=100 (wrk -c1);
#   - at 1,000 and 100,000 tags: tag PUTs on one connection (tags/s); the
#     tags written are deleted again before the next size.
# Repositories phase, 1,000 / 10,000 repositories of one tagged image each:
#   - _catalog?n=100, first and middle page (wrk -c1);
#   - entrepot's admin list /v1/projects/default/repositories?pageSize=100:
#     the first page and the one its nextPageToken leads to, if any.
# Tags are created by PUTting the same manifest under many names over 16
# connections; each repository by mounting the image's two blobs.
# Every measure runs in several rounds, entrepot and distribution alternating;
# the tables give medians with (min-max) over the rounds, and
# entrepot/distribution ratios of the medians.
#
# Any request that fails (a non-2xx answer, a socket error) stops the run
# with a non-zero exit.
#
# Needs: wrk, curl, python3, htpasswd, docker-registry.
# Usage: bench/scale.sh [--smoke] [--manifest-only] [--small-cache BYTES] [--bin PATH]
#                       [--rounds N] [--secs S] [--results FILE] [--raw FILE]
#   --smoke     10 and 1,000 tags, 1,000 repositories, one round of 2 s runs:
#               about 2 minutes with a debug build on 2 cores (CI)
#   --manifest-only  only the manifest GETs of the tags phase (and the read
#               cache's hit rate): no lists, no writes, no repositories phase
#   --small-cache "BYTES..."  entrepot's read caches of the extra columns
#               (default "1048576 0"; 0: no cache at all; "": no such columns)
#   --bin PATH  the entrepot binary (default target/release/entrepot, built if
#               missing; BIN=PATH works too; a debug build is fine with --smoke)
#   --results FILE  also append the section (tables, date, commit, command) to FILE
#   --raw FILE  also keep every measure as JSON lines in FILE (`bench/scale.py
#               report FILE` prints the tables again)
#   BENCH_TAG_SIZES / BENCH_REPO_SIZES override the sizes ("10 1000 ...").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND="bench/scale.sh${*:+ $*}"
SMOKE=0 ROUNDS="" SECS="" RESULTS_FILE="" RAW_FILE="" MANIFEST_ONLY=0 SMALL_CACHES="1048576 0"
BIN=${BIN:-}
while (($#)); do
    case $1 in
        --smoke) SMOKE=1 ;;
        --manifest-only) MANIFEST_ONLY=1 ;;
        --small-cache) SMALL_CACHES=$2; shift ;;
        --bin) BIN=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --secs) SECS=$2; shift ;;
        --results) RESULTS_FILE=$2; shift ;;
        --raw) RAW_FILE=$2; shift ;;
        *) echo "bench: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
    shift
done
if ((SMOKE)); then
    TAG_SIZES=${BENCH_TAG_SIZES:-"10 1000"}
    REPO_SIZES=${BENCH_REPO_SIZES:-"1000"}
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-2}
else
    TAG_SIZES=${BENCH_TAG_SIZES:-"10 1000 10000 100000"}
    REPO_SIZES=${BENCH_REPO_SIZES:-"1000 10000"}
    ROUNDS=${ROUNDS:-3} SECS=${SECS:-5}
fi
WRITE_SIZES="1000 100000"
((MANIFEST_ONLY)) && WRITE_SIZES="" REPO_SIZES=""
# SMALL_BYTES[i]: a read cache of the extra columns; SMALL_NAMES[i]: their server.
SMALL_BYTES=() SMALL_NAMES=()
for bytes in $SMALL_CACHES; do
    case $bytes in
        *[!0-9]*) echo "bench: --small-cache takes numbers of bytes" >&2; exit 2 ;;
        0) SMALL_NAMES+=("entrepot no cache") ;;
        *) SMALL_NAMES+=("entrepot $(python3 -c "print(f'{$bytes / 1048576:g}')") MiB cache") ;;
    esac
    SMALL_BYTES+=("$bytes")
done
POPULATE_CONNS=16

WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
PIDS=()
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT
require_tools wrk curl python3 htpasswd docker-registry
PY="python3 $ROOT/bench/scale.py"
LUA="$ROOT/bench/scale-tags.lua"

BIN=${BIN:-"$ROOT/target/release/entrepot"}
build_release_if_missing "$BIN"
started=$SECONDS

echo "== starting entrepot and distribution on loopback" >&2
E_DIR="$WORK/entrepot-data"
launch_entrepot "$E_DIR"
E="$E_ADDR" E_RUNS=default
curl -sf -H "Authorization: Bearer $E_TOKEN" -H 'content-type: application/json' \
    -X POST "http://$E/v1/projects/default/repositories?repositoryId=bench" -d '{"format":"docker"}' >/dev/null
# Anonymous pulls of the bench repository, as on distribution.
ecli repositories add-iam-policy-binding bench \
    --member=allUsers --role=roles/artifactregistry.reader >/dev/null
PAT=$(curl -sf -H "Authorization: Bearer $E_TOKEN" -H 'content-type: application/json' \
    -X POST "http://$E/v1/tokens" -d '{"principal":"user:admin"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
E_BASIC="Basic $(printf 'admin:%s' "$PAT" | base64 -w0)"

# Two distribution processes on one storage directory: anonymous (it also
# takes the writes), and with htpasswd (bcrypt, htpasswd's default cost).
htpasswd -Bbn bench bench-password >"$WORK/htpasswd" 2>/dev/null
D_BASIC="Basic $(printf 'bench:bench-password' | base64 -w0)"
launch_distribution distribution "$WORK/registry-data"
D="$D_ADDR"
D_ANON_PID=$D_PID
launch_distribution distribution-auth "$WORK/registry-data" "auth:
  htpasswd:
    realm: bench
    path: $WORK/htpasswd"
DA="$D_ADDR"

echo "== pushing the image" >&2
SCALE_AUTH="$E_BASIC" $PY push "$E" default/bench/app "$WORK/manifest.json"
$PY push "$D" default/bench/app "$WORK/manifest.json"
APP=/v2/default/bench/app
ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json"

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
# record MEASURE SIZE SERVER JSON-FIELDS: one result line.
record() {
    printf '{"measure":"%s","size":%s,"server":"%s",%s,%s}\n' "$1" "$2" "$3" "$4" "${META[$1]}" >>"$RESULTS"
}
declare -A META=(
    [manifest-anon]='"title":"Manifest GET by a random tag, anonymous (wrk -t2 -c32); entrepot with its default read cache and with smaller ones","size_name":"tags"'
    [manifest-auth]='"title":"Manifest GET by a random tag, authenticated (wrk -t2 -c32): entrepot with a Bearer registry token and with Basic + access token, with its default read cache and with smaller ones; distribution with htpasswd (bcrypt)","size_name":"tags"'
    [tags-first]='"title":"GET tags/list?n=100, first page (wrk -c1)","size_name":"tags","note":"distribution 2.8 ignores n and returns every tag."'
    [tags-middle]='"title":"GET tags/list?n=100&last=(middle tag), the middle page (wrk -c1)","size_name":"tags","note":"distribution 2.8 ignores n and last and returns every tag."'
    [catalog-tags]='"title":"GET _catalog?n=100 with one image of many tags (wrk -c1; entrepot as the admin, distribution anonymous)","size_name":"tags"'
    [put-rate]='"title":"Tag PUT on one connection, new tags (the same manifest under new names)","size_name":"tags before","kind":"value","unit":"tags/s"'
    [populate-tags]='"title":"Populating: tag PUTs over 16 connections","size_name":"tags after","kind":"value","unit":"tags/s"'
    [tag-cache]='"title":"entrepot read cache, tags map (32 MiB at most by default, 2/9 of --read-cache-bytes, each tag naming a manifest kept once in a map of 64 MiB): hits per 100 lookups over the anonymous manifest GETs, and the estimated MiB it holds after them","size_name":"tags","kind":"value","unit":""'
    [rss-tags]='"title":"Server memory after the measures at each number of tags (VmRSS)","size_name":"tags","kind":"value","unit":"MiB"'
    [rss-repos]='"title":"Server memory after the measures at each number of repositories (VmRSS)","size_name":"repositories","kind":"value","unit":"MiB"'
    [catalog-first]='"title":"GET _catalog?n=100, first page (wrk -c1; entrepot as the admin, distribution anonymous)","size_name":"repositories"'
    [catalog-middle]='"title":"GET _catalog?n=100&last=(middle repository), the middle page (wrk -c1)","size_name":"repositories"'
    [admin-first]='"title":"entrepot admin list GET /v1/projects/default/repositories?pageSize=100, first page (wrk -c1)","size_name":"repositories"'
    [admin-next]='"title":"entrepot admin list, the page nextPageToken leads to (the first page again when there is none) (wrk -c1)","size_name":"repositories"'
    [populate-repos]='"title":"Populating: repositories (create, mount two blobs, PUT the manifest) over 16 connections","size_name":"repositories after","kind":"value","unit":"repositories/s"'
)

# run_wrk MEASURE SIZE SERVER CONNECTIONS wrk-arguments...: one wrk run, recorded.
run_wrk() {
    local measure=$1 size=$2 server=$3 conns=$4 threads=2 out="$WORK/wrk.out"
    shift 4
    ((conns > 1)) || threads=1
    wrk -t "$threads" -c "$conns" -d "${SECS}s" --timeout 60s --latency "$@" >"$out" 2>&1 || true
    local p50 p99 rps errors
    read -r p50 p99 rps errors < <($PY wrk-parse "$out")
    if [ "$errors" != 0 ]; then
        echo "bench: $measure at $size on $server: $errors failed requests:" >&2
        cat "$out" >&2
        exit 1
    fi
    echo "   $measure $size $server: p50 $p50 ms, p99 $p99 ms, $rps req/s" >&2
    record "$measure" "$size" "$server" "\"p50_ms\":$p50,\"p99_ms\":$p99,\"rps\":$rps"
}

# A fresh registry token (they live 5 minutes).
bearer() {
    curl -sf -H "Authorization: $E_BASIC" \
        "http://$E/v2/token?service=entrepot&scope=repository:default/bench/app:pull" |
        python3 -c 'import json,sys; print("Bearer " + json.load(sys.stdin)["token"])'
}

# The tag map's hits, misses and bytes in entrepot's /metrics.
tag_cache_counts() {
    curl -sf "http://$E/metrics" | awk '
        /^entrepot_read_cache_hits_total\{cache="tag"\}/ { h = $2 }
        /^entrepot_read_cache_misses_total\{cache="tag"\}/ { m = $2 }
        /^entrepot_read_cache_bytes\{cache="tag"\}/ { b = $2 }
        END { print h + 0, m + 0, b + 0 }'
}

# use_entrepot default|BYTES SIZE: entrepot with its default read cache or with
# BYTES of it, restarted on the same data directory if it runs another, then
# warmed up for 1 s with manifest GETs over SIZE tags.
use_entrepot() {
    [ "$E_RUNS" = "$1" ] && return 0
    local keep=() p
    kill "$E_PID"
    wait "$E_PID" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$E_PID" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
    rm -f "$E_DIR.out"  # launch_entrepot must not read the old address
    if [ "$1" != default ]; then
        launch_entrepot "$E_DIR" --read-cache-bytes "$1"
    else
        launch_entrepot "$E_DIR"
    fi
    E="$E_ADDR" E_RUNS=$1
    wrk -t 2 -c 32 -d 1s -s "$LUA" -H "$ACCEPT" "http://$E/" -- "$APP/manifests" "$2" >/dev/null 2>&1 || true
}

# entrepot_manifest_reads SIZE NAME: the manifest GETs on entrepot, recorded as
# server NAME (anonymous), "NAME Bearer" and "NAME Basic"; with the tag map's
# hit rate and size over the anonymous run.
entrepot_manifest_reads() {
    local size=$1 name=$2 h0 m0 h1 m1 bytes suffix=""
    local random=(-s "$LUA" -H "$ACCEPT")
    [ "$name" = entrepot ] || suffix=", ${name#entrepot }"
    read -r h0 m0 _ < <(tag_cache_counts)
    run_wrk manifest-anon "$size" "$name" 32 "${random[@]}" "http://$E/" -- "$APP/manifests" "$size"
    read -r h1 m1 bytes < <(tag_cache_counts)
    record tag-cache "$size" "hits (%)$suffix" "\"rps\":$(python3 -c "print(round(100 * ($h1 - $h0) / max($h1 - $h0 + $m1 - $m0, 1), 1))")"
    record tag-cache "$size" "held (MiB)$suffix" "\"rps\":$(python3 -c "print(round($bytes / 1048576, 1))")"
    run_wrk manifest-auth "$size" "$name Bearer" 32 "${random[@]}" -H "Authorization: $(bearer)" "http://$E/" -- "$APP/manifests" "$size"
    run_wrk manifest-auth "$size" "$name Basic" 32 "${random[@]}" -H "Authorization: $E_BASIC" "http://$E/" -- "$APP/manifests" "$size"
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
record_rss() { # record_rss MEASURE SIZE
    record "$1" "$2" entrepot "\"rps\":$(rss_mib "$E_PID")"
    record "$1" "$2" distribution "\"rps\":$(rss_mib "$D_ANON_PID")"
}

# One round of the read measures at SIZE tags; ORDER says who goes first.
tag_reads() { # tag_reads SIZE ORDER
    local size=$1 order=$2 mid=$(($1 / 2)) s
    local random=(-s "$LUA" -H "$ACCEPT")
    for s in $order; do
        if [[ $s == s* ]]; then
            use_entrepot "${SMALL_BYTES[${s#s}]}" "$size"
            entrepot_manifest_reads "$size" "${SMALL_NAMES[${s#s}]}"
        elif [ "$s" = e ]; then
            use_entrepot default "$size"
            entrepot_manifest_reads "$size" entrepot
            ((MANIFEST_ONLY)) && continue
            run_wrk tags-first "$size" entrepot 1 "http://$E$APP/tags/list?n=100"
            run_wrk tags-middle "$size" entrepot 1 "http://$E$APP/tags/list?n=100&last=$(printf 't%06d' "$mid")"
            run_wrk catalog-tags "$size" entrepot 1 -H "Authorization: $E_BASIC" "http://$E/v2/_catalog?n=100"
        else
            run_wrk manifest-anon "$size" distribution 32 "${random[@]}" "http://$D/" -- "$APP/manifests" "$size"
            run_wrk manifest-auth "$size" "distribution Basic" 32 "${random[@]}" -H "Authorization: $D_BASIC" "http://$DA/" -- "$APP/manifests" "$size"
            ((MANIFEST_ONLY)) && continue
            run_wrk tags-first "$size" distribution 1 "http://$D$APP/tags/list?n=100"
            run_wrk tags-middle "$size" distribution 1 "http://$D$APP/tags/list?n=100&last=$(printf 't%06d' "$mid")"
            run_wrk catalog-tags "$size" distribution 1 "http://$D/v2/_catalog?n=100"
        fi
    done
}

# One round of tag PUTs on one connection at SIZE tags, then the tags it
# wrote go again, so that the next size starts where it should.
tag_writes() { # tag_writes SIZE ROUND ORDER
    local size=$1 round=$2 order=$3 s rate errors prefix="w$1-$2"
    for s in $order; do
        if [ "$s" = e ]; then
            read -r rate errors < <(SCALE_AUTH="$E_BASIC" $PY put-rate "$E" default/bench/app "$WORK/manifest.json" "$prefix" "$SECS")
            [ -n "$rate" ] && [ "$errors" = 0 ] || { echo "bench: tag PUTs to entrepot failed" >&2; exit 1; }
            echo "   put-rate $size entrepot: $rate tags/s" >&2
            record put-rate "$size" entrepot "\"rps\":$rate"
            SCALE_AUTH="$E_BASIC" $PY untag "$E" default/bench/app "$prefix" "$POPULATE_CONNS"
        else
            read -r rate errors < <($PY put-rate "$D" default/bench/app "$WORK/manifest.json" "$prefix" "$SECS")
            [ -n "$rate" ] && [ "$errors" = 0 ] || { echo "bench: tag PUTs to distribution failed" >&2; exit 1; }
            echo "   put-rate $size distribution: $rate tags/s" >&2
            record put-rate "$size" distribution "\"rps\":$rate"
            # distribution 2.8 cannot delete a tag by name: its directory goes.
            rm -rf "$WORK/registry-data/docker/registry/v2/repositories/default/bench/app/_manifests/tags/$prefix"-*
        fi
    done
}

# populate KIND SIZE FROM TO: tags or repositories FROM..TO on both servers.
populate() {
    local kind=$1 size=$2 from=$3 to=$4 t0 secs
    ((from <= to)) || return 0
    for s in e d; do
        local addr=$E server=entrepot auth=$E_BASIC
        [ "$s" = e ] || { addr=$D server=distribution auth=""; }
        t0=$(date +%s.%N)
        if [ "$kind" = tags ]; then
            SCALE_AUTH="$auth" $PY tags "$addr" default/bench/app "$WORK/manifest.json" "$from" "$to" "$POPULATE_CONNS"
        else
            SCALE_AUTH="$auth" $PY repos "$addr" "$server" "$WORK/manifest.json" "$from" "$to" "$POPULATE_CONNS"
        fi
        secs=$(python3 -c "print(max($(date +%s.%N) - $t0, 1e-3))")
        record "populate-$kind" "$size" "$server" "\"rps\":$(python3 -c "print(round(($to - $from + 1) / $secs))")"
    done
}

# Who goes in round N: entrepot (default cache) and distribution alternate
# going first, entrepot with the smaller caches in between (s0, s1, ...; in
# reverse order every other round, so that each restart serves two runs).
order_of() {
    local middle="" i
    for i in "${!SMALL_BYTES[@]}"; do
        if (($1 % 2)); then middle="$middle s$i"; else middle=" s$i$middle"; fi
    done
    if (($1 % 2)); then echo "e$middle d"; else echo "d$middle e"; fi
}
# The same for measures entrepot runs with its default cache only.
order_ed() { if (($1 % 2)); then echo "e d"; else echo "d e"; fi; }

top=0
for size in $TAG_SIZES; do
    echo "== $size tags ($((SECONDS - started)) s)" >&2
    populate tags "$size" $((top + 1)) "$size"
    top=$size
    SCALE_AUTH="$E_BASIC" $PY check-tags "$E" default/bench/app "$size"
    for round in $(seq 1 "$ROUNDS"); do
        tag_reads "$size" "$(order_of "$round")"
    done
    use_entrepot default "$size"
    record_rss rss-tags "$size"
    if [[ " $WRITE_SIZES " == *" $size "* ]]; then
        for round in $(seq 1 "$ROUNDS"); do
            tag_writes "$size" "$round" "$(order_ed "$round")"
        done
    fi
done

top=0
for size in $REPO_SIZES; do
    echo "== $size repositories ($((SECONDS - started)) s)" >&2
    populate repos "$size" $((top + 1)) "$size"
    top=$size
    mid="default/$(printf 'r%06d' $((size / 2)))/app"
    mapfile -t admin < <(SCALE_AUTH="$E_BASIC" $PY admin-pages "$E" default)
    [ "${#admin[@]}" = 3 ] || { echo "bench: the admin list failed" >&2; exit 1; }
    echo "   admin list: the first page held ${admin[2]} repositories" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for s in $(order_ed "$round"); do
            if [ "$s" = e ]; then
                run_wrk catalog-first "$size" entrepot 1 -H "Authorization: $E_BASIC" "http://$E/v2/_catalog?n=100"
                run_wrk catalog-middle "$size" entrepot 1 -H "Authorization: $E_BASIC" "http://$E/v2/_catalog?n=100&last=$mid"
                run_wrk admin-first "$size" entrepot 1 -H "Authorization: $E_BASIC" "http://$E${admin[0]}"
                run_wrk admin-next "$size" entrepot 1 -H "Authorization: $E_BASIC" "http://$E${admin[1]}"
            else
                run_wrk catalog-first "$size" distribution 1 "http://$D/v2/_catalog?n=100"
                run_wrk catalog-middle "$size" distribution 1 "http://$D/v2/_catalog?n=100&last=$mid"
            fi
        done
    done
    record_rss rss-repos "$size"
done

{
    echo "## $(date -u +%Y-%m-%d): cost versus store size$( ((MANIFEST_ONLY)) && echo ', manifest GETs') (\`bench/scale.sh\`)"
    echo
    echo "\`$COMMAND\`: entrepot $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo ' (with uncommitted changes)') ($(case $BIN in *debug*) echo debug ;; *) echo release ;; esac) build) vs distribution $(/usr/bin/docker-registry --version | awk '{print $3}'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $((SECONDS - started)) s in all."
    echo
    $PY report "$RESULTS"
} >"$WORK/section.md"
cat "$WORK/section.md"
if [ -n "$RAW_FILE" ]; then
    cp "$RESULTS" "$RAW_FILE"
fi
if [ -n "$RESULTS_FILE" ]; then
    { echo; cat "$WORK/section.md"; } >>"$RESULTS_FILE"
fi
