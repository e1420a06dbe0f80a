#!/usr/bin/env bash
# The dcr benchmark: dcr (memory, SQLite and PostgreSQL stores) against node-oidc-provider (the reference)
# and a fixed-response hyper server (the ceiling), each server pinned to CPU 0 and the load
# generator to CPU 1. Prints one Markdown table (and the memory figures) on stdout.
#
#   bench/run.sh                 full run: release build, 3 s warm-up + 15 s per measurement
#   bench/run.sh --smoke         CI: ~1 s per scenario, dcr only (memory, SQLite, PostgreSQL),
#                                no reference, 2,000 stored;
#                                exits non-zero if any request fails
# Options: --debug (debug build), --duration S, --warmup S, --scale N (clients stored for the
# scale runs, default 1000000; 0 skips them), --scale-only (only the scale rows and their
# paired empty-store rows), --resolve-only (only client resolution and authentication through
# the admin listener, with a read row for comparison), --register-only (only the register rows
# at concurrency 1 and 64: dcr memory and SQLite, the reference, the ceiling; no scale rows),
# --no-reference, --no-ceiling, --postgres URL (the PostgreSQL server of the postgres rows,
# default $DCR_BENCH_POSTGRES_URL, else $DCR_TEST_POSTGRES_URL, else
# postgres://postgres@127.0.0.1:5432/test; each row gets a
# fresh database on it, created and dropped with psql), --no-postgres, --postgres-only (only
# the PostgreSQL rows: one instance, then two instances on one database driven together).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=15 WARMUP=3 SCALE=1000000 REFERENCE=1 CEILING=1 SMOKE=0 PROFILE=release MATRIX=1 RESOLVE=1
REGISTER_ONLY=0 POSTGRES=1 POSTGRES_ONLY=0
PG_URL=${DCR_BENCH_POSTGRES_URL:-${DCR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 DURATION=1 WARMUP=0.3 SCALE=2000 REFERENCE=0 CEILING=0 ;;
    --debug) PROFILE=debug ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --scale) SCALE=$2; shift ;;
    --scale-only) MATRIX=0 REFERENCE=0 CEILING=0 RESOLVE=0 POSTGRES=0 ;;
    --resolve-only) MATRIX=0 REFERENCE=0 CEILING=0 SCALE=0 RESOLVE=1 POSTGRES=0 ;;
    --register-only) REGISTER_ONLY=1 SCALE=0 RESOLVE=0 POSTGRES=0 ;;
    --postgres) PG_URL=$2; shift ;;
    --no-postgres) POSTGRES=0 ;;
    --postgres-only) MATRIX=0 REFERENCE=0 CEILING=0 SCALE=0 RESOLVE=0 POSTGRES=1 ;;
    --no-reference) REFERENCE=0 ;;
    --no-ceiling) CEILING=0 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p dcr-server -p dcr-loadgen >&2
else
  cargo build --locked -p dcr-server -p dcr-loadgen >&2
fi
DCR=$TARGET/$PROFILE/dcr
LOADGEN=$TARGET/$PROFILE/loadgen

if [ "$REFERENCE" = 1 ]; then
  command -v node >/dev/null || { echo "node is missing (needed for the reference)" >&2; exit 1; }
  (cd bench/reference && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# Pin servers to CPU 0 and the load generator to CPU 1 when there are two CPUs or more.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  PIN_SERVER="taskset -c 0" PIN_LOAD="taskset -c 1"
else
  PIN_SERVER="" PIN_LOAD=""
fi

if [ "$POSTGRES" = 1 ]; then
  command -v psql >/dev/null || { echo "psql is missing (needed for the PostgreSQL rows)" >&2; exit 1; }
  psql "$PG_URL" -qAtc 'SELECT 1' >/dev/null || { echo "PostgreSQL at $PG_URL does not answer" >&2; exit 1; }
fi

WORK=$(mktemp -d)
SERVER_PID=""
SECOND_PID=""
PG_DBS=()
cleanup() {
  stop_server
  for db in "${PG_DBS[@]}"; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server LOG CMD...: starts a server, waits for "listening on http://ADDR", sets URL.
start_server() {
  local log=$1; shift
  $PIN_SERVER "$@" 2>"$log" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 1 6000); do
    URL=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n1 | sed 's/listening on //') || true
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.1
  done
  cat "$log" >&2; echo "server did not start" >&2; exit 1
}

stop_server() {
  if [ -n "$SECOND_PID" ]; then
    kill "$SECOND_PID" 2>/dev/null || true
    wait "$SECOND_PID" 2>/dev/null || true
    SECOND_PID=""
  fi
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

N=0
# dcr_config STORE ROTATE [EXTRA_TOML]: writes a fresh config file (and store) and sets CFG.
dcr_config() {
  N=$((N + 1))
  local store_url=memory:
  [ "$1" = sqlite ] && store_url="sqlite://$WORK/dcr-$N.db"
  if [ "$1" = postgres ]; then
    # A fresh database on the PostgreSQL server for every row, dropped at the end.
    local db="dcr_bench_$$_$N"
    psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
    PG_DBS+=("$db")
    store_url="${PG_URL%/*}/$db"
  fi
  cat >"$WORK/dcr-$N.toml" <<TOML
issuer = "http://127.0.0.1:8080"
listen = "127.0.0.1:0"
[storage]
url = "$store_url"
[registration]
rotate_registration_access_token = $2
[registration.prune]
# The background pruning would cut a seeded store (1,000,000 open clients) down to the default
# 100,000 on its first tick, right after seeding: off, so the scale rows measure the full store.
interval_seconds = 0
[rate_limit]
enabled = false
[log]
# Per-request info lines off (as node-oidc-provider, which logs nothing per request);
# the "listening on" line stays.
filter = "warn,dcr_server::app=info,dcr_server::admin=info"
TOML
  [ -n "${3:-}" ] && printf '%s\n' "$3" >>"$WORK/dcr-$N.toml"
  CFG="$WORK/dcr-$N.toml"
}

FAILED=0
# measure SCENARIO CONCURRENCY SERVER STORE NOTE
measure() {
  local extra=()
  [ "$SMOKE" = 1 ] && extra+=(--fail-on-error)
  $PIN_LOAD "$LOADGEN" run --url "$URL" --scenario "$1" --concurrency "$2" \
    --warmup "$WARMUP" --duration "$DURATION" --server "$3" --store "$4" --note "$5" "${extra[@]}" \
    "${MEASURE_EXTRA[@]}" || FAILED=1
}
MEASURE_EXTRA=()

ADMIN_TOKEN=bench-admin-token-0123456789abcdef-0123
# run_resolve STORE: client resolution through the admin listener at concurrency 64, of a
# registered client and of a metadata document (published over HTTPS by `loadgen origin`,
# fetched once, then served from the cache); then client authentication through it
# (client_secret_basic; private_key_jwt with the key registered in jwks, a fresh assertion each).
run_resolve() {
  "$LOADGEN" origin --ca-out "$WORK/ca.pem" 2>"$WORK/origin.log" >/dev/null &
  local origin_pid=$! doc=""
  for _ in $(seq 1 600); do
    doc=$(grep -o 'document at https://[^ ]*' "$WORK/origin.log" | sed 's/document at //') || true
    [ -n "$doc" ] && break
    sleep 0.1
  done
  [ -n "$doc" ] || { cat "$WORK/origin.log" >&2; echo "origin did not start" >&2; exit 1; }
  dcr_config "$1" true "[fetch]
allow_loopback_for_tests = true
extra_root_certificates = [\"$WORK/ca.pem\"]
[cimd]
enabled = true
[admin]
listen = \"127.0.0.1:0\"
token = \"$ADMIN_TOKEN\""
  start_server "$WORK/dcr.log" "$DCR" serve --config "$CFG"
  local admin=""
  for _ in $(seq 1 100); do
    admin=$(grep -o 'admin listener on http://[0-9.:]*' "$WORK/dcr.log" | sed 's/admin listener on //') || true
    [ -n "$admin" ] && break
    sleep 0.1
  done
  MEASURE_EXTRA=(--admin-url "$admin" --admin-token "$ADMIN_TOKEN" --document-url "$doc")
  measure resolve-registered 64 dcr "$1" "admin listener"
  measure resolve-document 64 dcr "$1" "admin listener, cached"
  measure authenticate-basic 64 dcr "$1" "admin listener"
  measure authenticate-jwt 64 dcr "$1" "admin listener, key in jwks"
  MEASURE_EXTRA=()
  stop_server
  kill "$origin_pid" 2>/dev/null || true
  wait "$origin_pid" 2>/dev/null || true
}

# run_dcr STORE ROTATE SEED SCENARIO CONCURRENCY NOTE
run_dcr() {
  dcr_config "$1" "$2"
  start_server "$WORK/dcr.log" "$DCR" serve --config "$CFG" --seed-clients "$3"
  measure "$4" "$5" dcr "$1" "$6"
  stop_server
}

# run_postgres_pair SCENARIO NOTE: two `dcr serve` instances on one PostgreSQL database, both
# pinned to the server CPU, driven together by one load generator (each worker sets its clients
# up on one instance and sends its measured requests to the other).
run_postgres_pair() {
  dcr_config postgres true
  start_server "$WORK/dcr.log" "$DCR" serve --config "$CFG"
  local first=$URL first_pid=$SERVER_PID
  start_server "$WORK/dcr2.log" "$DCR" serve --config "$CFG"
  SECOND_PID=$SERVER_PID SERVER_PID=$first_pid
  URL="$first,$URL"
  measure "$1" 64 dcr postgres "$2"
  stop_server
}

run_reference() { # ROTATE SCENARIO CONCURRENCY NOTE
  start_server "$WORK/node.log" node bench/reference/server.mjs 0 "$1"
  measure "$2" "$3" node-oidc-provider memory "$4"
  stop_server
}

run_ceiling() { # SCENARIO CONCURRENCY
  start_server "$WORK/ceiling.log" "$LOADGEN" ceiling
  measure "$1" "$2" ceiling - "fixed 201"
  stop_server
}

echo "## dcr benchmark — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), $PROFILE build"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -sr)."
echo "Server on CPU 0, load generator on CPU 1; warm-up ${WARMUP}s, measured ${DURATION}s per row."
echo
"$LOADGEN" header

if [ "$REGISTER_ONLY" = 1 ]; then
  MATRIX=0
  for store in memory sqlite; do
    for c in 1 64; do run_dcr "$store" true 0 register "$c" ""; done
  done
  if [ "$REFERENCE" = 1 ]; then
    for c in 1 64; do run_reference true register "$c" ""; done
  fi
  if [ "$CEILING" = 1 ]; then
    for c in 1 64; do run_ceiling register "$c"; done
    CEILING=0
  fi
fi

for store in memory sqlite; do
  [ "$MATRIX" = 1 ] || break
  if [ "$store" = sqlite ]; then
    # The SQLite target is a ratio to the memory store's register rate: measured next to it.
    run_dcr memory true 0 register 64 "(paired)"
    run_dcr sqlite true 0 register 64 ""
  fi
  for c in 1 64; do
    [ "$store" = sqlite ] && [ "$c" = 64 ] || run_dcr "$store" true 0 register "$c" ""
    run_dcr "$store" true 0 read "$c" ""
  done
  run_dcr "$store" false 0 update 64 "no rotation"
  run_dcr "$store" true 0 update 64 "rotation"
  run_dcr "$store" true 0 mixed 64 "rotation"
  if [ "$CEILING" = 1 ] && [ "$store" = memory ]; then
    # Right after the memory rows: the machine's speed drifts over a long run, and the
    # targets are ratios of these rows.
    for c in 1 64; do run_ceiling register "$c"; done
    run_ceiling read 64
    CEILING=0
  fi
  if [ "$REFERENCE" = 1 ] && [ "$store" = memory ]; then
    for c in 1 64; do
      run_reference true register "$c" ""
      run_reference true read "$c" ""
    done
    run_reference false update 64 "no rotation"
    run_reference true update 64 "rotation"
    run_reference true mixed 64 "rotation"
  fi
done

if [ "$POSTGRES" = 1 ]; then
  # PostgreSQL is the machine's own server: it is not pinned, so its backends share both
  # CPUs with dcr (CPU 0) and the load generator (CPU 1).
  for c in 1 64; do
    run_dcr postgres true 0 register "$c" ""
    run_dcr postgres true 0 read "$c" ""
  done
  run_dcr postgres true 0 update 64 "rotation"
  run_postgres_pair register "2 instances, 1 database"
  run_postgres_pair read "2 instances, 1 database"
  run_postgres_pair update "2 instances, 1 database, rotation"
fi

if [ "$RESOLVE" = 1 ]; then
  for store in memory sqlite; do
    run_dcr "$store" true 0 read 64 "(paired)"
    run_resolve "$store"
  done
fi

if [ "$CEILING" = 1 ]; then
  for c in 1 64; do run_ceiling register "$c"; done
  run_ceiling read 64
fi

MEMORY_NOTES=()
if [ "$SCALE" -gt 0 ]; then
  # The empty memory store's RSS, for the per-client figure.
  dcr_config memory true
  start_server "$WORK/dcr.log" "$DCR" serve --config "$CFG"
  rss_empty=$(rss_kib "$SERVER_PID")
  stop_server
  # One seeded server per store: read first (the store holds exactly SCALE clients), then
  # register (it holds SCALE and more). Each is paired with the same two rows on an empty
  # store measured just before, so that the comparison does not span the whole run.
  for store in memory sqlite; do
    run_dcr "$store" true 0 read 64 "0 stored (paired)"
    run_dcr "$store" true 0 register 64 "0 stored (paired)"
    dcr_config "$store" true
    t0=$(date +%s.%N)
    start_server "$WORK/dcr.log" "$DCR" serve --config "$CFG" --seed-clients "$SCALE"
    t1=$(date +%s.%N)
    seeded="seeded in $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}")s through the registrar"
    if [ "$store" = memory ]; then
      rss_full=$(rss_kib "$SERVER_PID")
      MEMORY_NOTES+=("memory store: RSS $rss_empty KiB empty, $rss_full KiB with $SCALE clients: $(( (rss_full - rss_empty) * 1024 / SCALE )) B per stored client ($seeded)")
    else
      bytes=$(du -cb "$WORK/dcr-$N.db"* | tail -n1 | cut -f1)
      MEMORY_NOTES+=("SQLite: $bytes bytes on disk (db + WAL) with $SCALE clients: $((bytes / SCALE)) B per stored client ($seeded)")
    fi
    measure read 64 dcr "$store" "$SCALE stored"
    measure register 64 dcr "$store" "$SCALE stored"
    stop_server
  done
fi

if [ "${#MEMORY_NOTES[@]}" -gt 0 ]; then
  echo
  for m in "${MEMORY_NOTES[@]}"; do echo "- $m"; done
fi

if [ "$FAILED" = 1 ]; then
  echo "some requests failed" >&2
  exit 1
fi
