#!/usr/bin/env bash
# etcd itself under the load of cairn's benchmark (test/bench/suite.ts), so the two sets of figures can be
# compared on the same machine: a fresh 3-member etcd cluster on loopback (fsync on, default heartbeat and
# election settings), wrk against etcd's HTTP/JSON gateway with put.lua / get.lua beside this file.
# Usage: bash test/bench/etcd/run.sh    (BENCH_RUNS or RUNS: runs, default 3;
#                                         BENCH_SECONDS or SECONDS: seconds per case, default 10)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNS=${BENCH_RUNS:-${RUNS:-3}}
# bash's own SECONDS counts up from the value it was given, so read the environment's string instead.
CASE_SECONDS=${BENCH_SECONDS:-$(printenv SECONDS || echo 10)}
KEYS=10000
HEALTH_DEADLINE_S=30
# A stopping etcd leader first hands its leadership over, and waits up to 7 s for that when the
# followers are stopping too; nothing here needs a clean stop, so SIGKILL comes sooner.
STOP_DEADLINE_S=2

fail() { echo "etcd bench: $*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail "RUNS must be a positive integer, not '$RUNS'"
[[ $CASE_SECONDS =~ ^[1-9][0-9]*$ ]] || fail "SECONDS must be a positive integer, not '$CASE_SECONDS'"
command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
  fail "etcd and etcdctl must be on PATH; on Debian: sudo apt-get update && sudo apt-get install -y etcd-server etcd-client"
command -v wrk >/dev/null || fail "wrk must be on PATH; on Debian: sudo apt-get install -y wrk"
for tool in curl python3; do command -v "$tool" >/dev/null || fail "$tool must be on PATH (sudo apt-get install -y $tool)"; done

export ETCDCTL_API=3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/etcd-bench.XXXXXX")
ETCD_PIDS=()
WRK_PIDS=()

# Stops what this script started (by pid: SIGTERM, then SIGKILL after a deadline) and removes the data.
cleanup() {
  local status=$? pid deadline
  trap - EXIT INT TERM
  for pid in "${WRK_PIDS[@]}" "${ETCD_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + STOP_DEADLINE_S))
  for pid in "${WRK_PIDS[@]}" "${ETCD_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Six free loopback ports: bound to port 0 all at once so they differ, then released for etcd.
ports=$(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
read -r -a PORTS <<<"$ports"

CLIENT_URLS=()
PEER_URLS=()
INITIAL_CLUSTER=""
for i in 0 1 2; do
  CLIENT_URLS+=("http://127.0.0.1:${PORTS[i]}")
  PEER_URLS+=("http://127.0.0.1:${PORTS[i + 3]}")
  INITIAL_CLUSTER+="${INITIAL_CLUSTER:+,}m$i=${PEER_URLS[i]}"
done
ALL_ENDPOINTS=$(IFS=,; echo "${CLIENT_URLS[*]}")

ctl() { etcdctl --dial-timeout=2s --command-timeout=10s "$@"; }

for i in 0 1 2; do
  etcd --name "m$i" --data-dir "$WORK/m$i" \
    --listen-client-urls "${CLIENT_URLS[i]}" --advertise-client-urls "${CLIENT_URLS[i]}" \
    --listen-peer-urls "${PEER_URLS[i]}" --initial-advertise-peer-urls "${PEER_URLS[i]}" \
    --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token "etcd-bench-$$" --initial-cluster-state new \
    --logger zap --log-outputs "$WORK/m$i.log" --log-level warn >"$WORK/m$i.out" 2>&1 &
  ETCD_PIDS+=($!)
done

show_logs() { for i in 0 1 2; do echo "--- m$i" >&2; tail -n 20 "$WORK/m$i.out" "$WORK/m$i.log" >&2 2>/dev/null || true; done; }

deadline=$((SECONDS + HEALTH_DEADLINE_S))
until ctl --endpoints="$ALL_ENDPOINTS" endpoint health >/dev/null 2>&1; do
  for pid in "${ETCD_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || { show_logs; fail "an etcd member exited while starting"; }; done
  ((SECONDS < deadline)) || { show_logs; fail "the cluster was not healthy within ${HEALTH_DEADLINE_S} s"; }
  sleep 0.2
done

# The client URL of the leader: the member whose own id is the leader id it reports.
leader_url() {
  ctl --endpoints="$ALL_ENDPOINTS" endpoint status -w json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"]); break
else:
    sys.exit("no leader")'
}

# etcd 3.4 serves the gateway at /v3 (and still /v3beta), 3.3 at /v3beta, 3.5 and later only at /v3.
CHECK_KEY=$(printf 'gateway-check' | base64)
CHECK_VALUE=$(printf 'v%.0s' {1..256} | base64 -w0)
ETCD_API=""
for candidate in /v3 /v3beta /v3alpha; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"key\":\"$CHECK_KEY\",\"value\":\"$CHECK_VALUE\"}" "${CLIENT_URLS[0]}$candidate/kv/put" || true)
  if [[ $code == 200 ]]; then ETCD_API=$candidate; break; fi
done
[[ -n $ETCD_API ]] || fail "no JSON gateway answered 200 to a put at ${CLIENT_URLS[0]} (/v3, /v3beta, /v3alpha)"
[[ $(ctl --endpoints="$ALL_ENDPOINTS" get gateway-check --print-value-only) == "$(printf 'v%.0s' {1..256})" ]] ||
  fail "a put through the gateway ($ETCD_API/kv/put) did not store the value"
for url in "${CLIENT_URLS[@]}"; do
  for serializable in true false; do
    body=$(curl -s -f -X POST -H 'Content-Type: application/json' \
      -d "{\"key\":\"$CHECK_KEY\",\"serializable\":$serializable}" "$url$ETCD_API/kv/range") ||
      fail "$url$ETCD_API/kv/range (serializable $serializable) did not answer 200"
    [[ $body == *"$CHECK_VALUE"* ]] || fail "$url$ETCD_API/kv/range did not return the value: $body"
  done
done

# The keys get.lua reads (bench/ + 26 digits, as put.lua writes them), so no range comes back empty;
# 100 puts per transaction (etcd's --max-txn-ops is 128 by default).
VALUE=$(printf 'v%.0s' {1..256})
LEADER=$(leader_url)
for ((start = 0; start < KEYS; start += 100)); do
  { echo; for ((n = start; n < start + 100; n++)); do printf 'put bench/%026d %s\n' "$n" "$VALUE"; done; echo; echo; } |
    ctl --endpoints="$LEADER" txn >/dev/null
done

# "count revision" of the bench/ prefix, read linearizably. etcdctl 3.4 has no --count-only (3.5 has),
# but a range's count is the number of keys in the whole range whatever its limit.
prefix_state() {
  ctl --endpoints="$LEADER" get bench/ --prefix --limit=1 -w json |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print(r.get("count", 0), r["header"]["revision"])'
}
state=$(prefix_state)
count=${state% *}
((count == KEYS)) || fail "writing the GET keys stored $count keys under bench/, not $KEYS"

# One wrk's output → "requests seconds perSecond p50 p90 p99 p999 max errors" (latencies in ms).
# Errors: non-2xx answers plus socket errors (connect, read, write, timeout).
parse_wrk() {
  awk '
    function ms(t) { if (t ~ /us$/) return t * 0.001; if (t ~ /ms$/) return t + 0; if (t ~ /m$/) return t * 60000; return t * 1000 }
    / requests in / { requests = $1; sub(/,$/, "", $4); seconds = ms($4) / 1000 }
    /^ *Latency +[0-9]/ { max = ms($4) }
    /^ *50% / { p50 = ms($2) } /^ *90% / { p90 = ms($2) } /^ *99% / { p99 = ms($2) }
    /cairn-latency-us p999/ { p999 = $3 / 1000 }
    /Requests\/sec:/ { rate = $2 }
    /Non-2xx or 3xx responses:/ { errors += $5 }
    /Socket errors:/ { errors += $4 + $6 + $8 + $10 }
    END {
      if (requests == "" || rate == "" || p99 == "") exit 1
      printf "%d %.3f %.2f %.3f %.3f %.3f %.3f %.3f %d\n", requests, seconds, rate, p50, p90, p99, p999, max, errors
    }' "$1"
}

# wrk on each endpoint at once, the clients split between them as suite.ts does; into $WORK/case.out:
# the rates and counts summed, the latencies the worst endpoint's. It runs in this shell, not in $(...),
# so that cleanup knows the wrk pids and a failure stops the script.
wrk_over() {
  local kind=$1 clients=$2 serializable=$3; shift 3
  local endpoints=("$@") count=$# i share
  WRK_PIDS=()
  for ((i = 0; i < count; i++)); do
    share=$((clients / count + (i < clients % count ? 1 : 0)))
    ETCD_API=$ETCD_API SERIALIZABLE=$serializable wrk -t1 -c"$share" -d"${CASE_SECONDS}s" --timeout 10s --latency \
      -s "$HERE/$kind.lua" "${endpoints[i]}" >"$WORK/wrk-$i.out" 2>&1 &
    WRK_PIDS+=($!)
  done
  for ((i = 0; i < count; i++)); do
    wait "${WRK_PIDS[i]}" || { cat "$WORK/wrk-$i.out" >&2; fail "wrk failed against ${endpoints[i]}"; }
  done
  WRK_PIDS=()
  : >"$WORK/parts.out"
  for ((i = 0; i < count; i++)); do
    parse_wrk "$WORK/wrk-$i.out" >>"$WORK/parts.out" || { cat "$WORK/wrk-$i.out" >&2; fail "cannot read wrk's output"; }
  done
  awk '
    { requests += $1; rate += $3; errors += $9; for (k = 2; k <= 8; k++) if (k != 3 && $k > worst[k]) worst[k] = $k }
    END { printf "%d %.3f %.2f %.3f %.3f %.3f %.3f %.3f %d\n", requests, worst[2], rate, worst[4], worst[5], worst[6], worst[7], worst[8], errors }' \
    "$WORK/parts.out" >"$WORK/case.out"
}

# name | kind | clients | serializable | target: the cases and names of test/bench/suite.ts.
CASES=(
  "PUT 256 B, 1 client, to the leader|put|1|0|leader"
  "PUT 256 B, 1 client, to a follower|put|1|0|follower"
  "PUT 256 B, 64 clients, to the leader|put|64|0|leader"
  "PUT 256 B, 64 clients, spread over all members|put|64|0|all"
  "GET linearizable, 64 clients, spread over all members|get|64|0|all"
  "GET serializable, 64 clients, spread over all members|get|64|1|all"
)

echo "etcd $(etcd --version | awk '/^etcd Version:/ { print $3 }'), gateway $ETCD_API, load generator: wrk, $CASE_SECONDS s per case, $RUNS runs"
put_answered=0
put_revisions=0
for ((run = 1; run <= RUNS; run++)); do
  for index in "${!CASES[@]}"; do
    IFS='|' read -r name kind clients serializable target <<<"${CASES[index]}"
    LEADER=$(leader_url)
    case $target in
      leader) endpoints=("$LEADER") ;;
      follower) for url in "${CLIENT_URLS[@]}"; do [[ $url == "$LEADER" ]] || { endpoints=("$url"); break; }; done ;;
      all) endpoints=("${CLIENT_URLS[@]}") ;;
    esac
    state=$(prefix_state)
    revision_before=${state#* }
    wrk_over "$kind" "$clients" "$serializable" "${endpoints[@]}"
    read -r requests seconds rate p50 p90 p99 p999 max errors <"$WORK/case.out"
    state=$(prefix_state)
    revision_after=${state#* }
    if [[ $kind == put ]]; then
      put_answered=$((put_answered + requests - errors))
      put_revisions=$((put_revisions + revision_after - revision_before))
    fi
    printf 'run %d: %s: %d requests in %.2f s = %.0f/s, latency ms p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f, errors %d\n' \
      "$run" "$name" "$requests" "$seconds" "$rate" "$p50" "$p90" "$p99" "$p999" "$max" "$errors"
    echo "$index $rate $p50 $p99 $errors" >>"$WORK/results"
  done
done

# The median as suite.ts takes it: the middle of the sorted values (the upper one of two for an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }

echo
echo "medians of $RUNS runs (3 members on loopback, $ALL_ENDPOINTS):"
for index in "${!CASES[@]}"; do
  IFS='|' read -r name _ <<<"${CASES[index]}"
  column() { awk -v i="$index" -v k="$1" '$1 == i { print $k }' "$WORK/results" | median; }
  total_errors=$(awk -v i="$index" '$1 == i { sum += $5 } END { print sum + 0 }' "$WORK/results")
  printf '  %s: %.0f/s, p50 %.2f ms, p99 %.2f ms, errors %d\n' "$name" "$(column 2)" "$(column 3)" "$(column 4)" "$total_errors"
done

# Every PUT answered 200 must have made a revision (in-flight ones at the end may add a few more),
# and the puts must have hit the same 10,000 keys, not others.
state=$(prefix_state)
count=${state% *}
echo
echo "checks: $put_answered PUTs answered 2xx, the store's revision grew by $put_revisions; $count keys under bench/ (expected $KEYS)"
((put_revisions >= put_answered)) || fail "fewer revisions than PUTs answered 2xx: PUTs were not stored"
((count == KEYS)) || fail "the PUTs wrote keys other than the $KEYS expected ones"
