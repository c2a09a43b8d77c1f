#!/usr/bin/env bash
# swarm's benchmark: swarm and wrk side by side against the same nginx, in one run.
#
#   bench/run.sh [all|throughput|idle|startup|client|profile|instructions|soak|stall|coordinator|grpc|ws]...
#   (default: all)
#
# nginx (one worker) is pinned to core 0; every generator is pinned to core 1 and
# measured with /usr/bin/time (wall, user+sys CPU, peak RSS). Installs nginx, wrk and
# GNU time with apt when they are missing. See docs/benchmarks.md for what the
# figures mean and the targets they are held to.
#
#   throughput  50 users, no think time, keep-alive GET + status + one JSONPath check,
#               DURATION s: requests/s and requests per generator CPU-second, wrk vs
#               swarm (lean client, and reqwest with SWARM_HTTP_CLIENT=reqwest).
#   idle        10,000 users thinking 5 s, spawned at 2,000/s, 30 s: achieved rate
#               and peak RSS (target: >= 99% of 2,000 rps in <= 64 MB).
#   startup     process start to the first request received, small plan.
#   client      the request pipeline alone (examples/client_loop.rs, no scheduler),
#               lean vs reqwest: isolates the HTTP client from the engine.
#   profile     perf record (cpu-clock) of the throughput run (DURATION s); prints the
#               top symbols.
#   instructions  user-space instructions per request, swarm vs wrk, counted by
#               valgrind (callgrind): exact where the timings above are noisy.
#   grpc        unary gRPC (shop.v1.Catalog/GetProduct) against the demo's gRPC
#               service (on core 0, port PORT+1), 50 callers, no think time, DURATION s:
#               swarm (bench/grpc.yaml) vs a Python grpcio asyncio loop
#               (bench/grpc_client.py, Debian's python3-grpcio), per CPU-second.
#   ws          WebSocket message rate: 50 users each sending a small message and
#               awaiting its echo from `swarm demo`'s /ws (pinned like nginx), DURATION s:
#               swarm (bench/ws.yaml) next to raw loops (examples/ws_loop.rs) over
#               tokio-tungstenite (the floor) and fastwebsockets; then the memory of
#               idle connections: 1,000 and 5,000 users holding a WebSocket (or TCP)
#               connection while they think, against as many holding none.
#   soak        a steady 5,000 req/s for SOAK_DURATION s (default 600; not in `all`),
#               every URL distinct under one name: swarm's RSS and CPU per request,
#               sampled every SOAK_EVERY s (default 30), must stay flat.
#   stall       the soak's plan with nginx's workers stopped (SIGSTOP) for 3 s every
#               25 s, STALLS times (default 4; not in `all`): the RSS each stall adds,
#               which must shrink towards nothing (bounded by max_users).
#   coordinator  a real coordinator (pinned to core 1) and simulated workers (core 0,
#               examples/coordinator_sim.rs: the real protocol, one real unit of 20
#               request names and 1,000 requests per worker-second) at COORD_WORKERS
#               (default "25 50 100 200") workers for COORD_SECONDS s (default 20):
#               the coordinator's CPU per worker-second and peak RSS, and the time from
#               the end of a second to its merged point on the dashboard stream; then
#               COORD_ABORT_WORKERS (default 100) workers whose requests all fail from
#               second 12, against an aborting SLO line: the time from that second's
#               end to the coordinator's stop reaching a worker (not in `all`).
#
# Environment: PORT (default 18080), DURATION (throughput, client and profile seconds,
# a whole number, default 10), ROUNDS (throughput rounds of wrk then swarm, default 3),
# CORE_TARGET / CORE_GEN (default 0 / 1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-18080}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
if [[ ! $DURATION =~ ^[1-9][0-9]*$ ]]; then
    echo "DURATION must be a whole number of seconds, not '$DURATION'" >&2
    exit 2
fi
CORE_TARGET=${CORE_TARGET:-0}
CORE_GEN=${CORE_GEN:-1}
WORK=$(mktemp -d /tmp/swarm-bench.XXXXXX)
URL="http://127.0.0.1:$PORT/json"
TARGET="http://127.0.0.1:$PORT"
NGINX_PID=

cleanup() {
    if [[ -n "$NGINX_PID" ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

need_install=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_install+=(nginx)
command -v wrk >/dev/null || need_install+=(wrk)
[[ -x /usr/bin/time ]] || need_install+=(time)
command -v taskset >/dev/null || need_install+=(util-linux)
command -v python3 >/dev/null || need_install+=(python3)
# The grpc benchmark's reference runs on Debian's python3 (where apt installs grpcio),
# which another python3 earlier on PATH (pyenv) would hide.
PY_GRPC=python3
[[ -x /usr/bin/python3 ]] && PY_GRPC=/usr/bin/python3
if [[ " $* " == *" grpc "* ]]; then
    "$PY_GRPC" -c 'import grpc' 2>/dev/null || need_install+=(python3-grpcio)
fi
if [[ " $* " == *" instructions "* ]]; then
    command -v valgrind >/dev/null || need_install+=(valgrind)
fi
if ((${#need_install[@]})); then
    echo "installing: ${need_install[*]}" >&2
    SUDO=
    [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building swarm (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin swarm --example client_loop --example run_plan \
    --example coordinator_sim --example ws_loop)
SWARM="$ROOT/target/release/swarm"
CLIENT_LOOP="$ROOT/target/release/examples/client_loop"
# The plan runner is `swarm check` without reports and console (examples/run_plan.rs):
# the profile uses it so that only the engine shows.
RUN_PLAN="$ROOT/target/release/examples/run_plan"
COORD_SIM="$ROOT/target/release/examples/coordinator_sim"
WS_LOOP="$ROOT/target/release/examples/ws_loop"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# bench/throughput.yaml with DURATION in place of its 10 s, for the plan runner (it has
# no --duration flag; swarm check is given --duration instead).
THROUGHPUT_PLAN="$WORK/throughput.yaml"
sed -e "s/^  duration: 10s\$/  duration: ${DURATION}s/" "$ROOT/bench/throughput.yaml" >"$THROUGHPUT_PLAN"
if ! grep -qx "  duration: ${DURATION}s" "$THROUGHPUT_PLAN"; then
    echo "could not set the duration in bench/throughput.yaml (expected '  duration: 10s')" >&2
    exit 3
fi

start_nginx() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "something already listens on 127.0.0.1:$PORT (another benchmark?); set PORT" >&2
        exit 3
    fi
    mkdir -p "$WORK/nginx"
    sed -e "s#@DIR@#$WORK/nginx#g" -e "s#@PORT@#$PORT#g" "$ROOT/bench/nginx.conf.in" \
        >"$WORK/nginx/nginx.conf"
    taskset -c "$CORE_TARGET" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
        -e "$WORK/nginx/error.log" &
    NGINX_PID=$!
    # Up when our nginx is still alive, has written its pid file (it does so only
    # after binding the port; a failed bind retries for seconds, then exits) and the
    # port answers. The port alone could be answered by another process.
    for _ in $(seq 100); do
        if ! kill -0 "$NGINX_PID" 2>/dev/null; then
            echo "nginx exited while starting" >&2
            break
        fi
        if [[ "$(cat "$WORK/nginx/nginx.pid" 2>/dev/null)" == "$NGINX_PID" ]] &&
            (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return
        fi
        sleep 0.05
    done
    echo "nginx did not start; see $WORK/nginx/error.log" >&2
    cat "$WORK/nginx/error.log" >&2 || true
    exit 3
}

# measure LABEL CMD...: runs CMD on the generator core under /usr/bin/time; leaves
# "wall user sys maxrss_kb" in $WORK/LABEL.time, stdout in $WORK/LABEL.out, stderr in
# $WORK/LABEL.err and the exit status in $WORK/LABEL.rc.
measure() {
    local label=$1 rc=0
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/$label.time" \
        taskset -c "$CORE_GEN" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" || rc=$?
    echo "$rc" >"$WORK/$label.rc"
}

# no_counts LABEL: a run that left no counts (it crashed, or never ran the load):
# prints its exit status and stderr, and "- - -" for the row, which the table marks.
no_counts() {
    {
        echo "!! $1: the run left no counts (exit status $(cat "$WORK/$1.rc" 2>/dev/null || echo '?')); its stderr:"
        tail -n 40 "$WORK/$1.err" 2>/dev/null || true
    } >&2
    echo "- - -"
}

# out_counts LABEL: "requests failures seconds" from the first line of the run's stdout
# (the plan runner and the client loop print them).
out_counts() {
    awk 'NR == 1 && NF >= 3 && $1 ~ /^[0-9]+$/ {print $1, $2, $3; ok = 1} END {exit !ok}' \
        "$WORK/$1.out" 2>/dev/null || no_counts "$1"
}

# wrk_requests LABEL / wrk_failures LABEL: from wrk's output in $WORK/LABEL.out. The
# failures are every socket error (connect, read, write and timeout, all summed) and
# every non-2xx/3xx response. wrk_counts LABEL: "requests failures seconds".
wrk_requests() { awk '/requests in/ {print $1}' "$WORK/$1.out"; }
wrk_failures() {
    awk '/Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i }
         /Non-2xx or 3xx responses:/ { s += $NF }
         END { print s + 0 }' "$WORK/$1.out"
}
wrk_counts() {
    local requests
    requests=$(wrk_requests "$1")
    if [[ -n "$requests" ]]; then
        echo "$requests $(wrk_failures "$1") $DURATION"
    else
        no_counts "$1"
    fi
}

# swarm_counts LABEL: "requests failures seconds" from swarm's JSON report.
swarm_counts() {
    python3 - "$WORK/$1.json" <<'EOF' || no_counts "$1"
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print(r["total"]["count"], r["total"]["failures"], r["duration_s"])
except (OSError, ValueError, KeyError):
    sys.exit(1)
EOF
}

# row LABEL REQUESTS FAILURES SECONDS: one line of the table, from the .time file (its
# last line: GNU time writes "Command exited with non-zero status N" before it).
ROWS=()
row() {
    local label=$1 requests=$2 failures=$3 seconds=$4 wall user sys rss
    read -r wall user sys rss <<<"$(tail -n 1 "$WORK/$label.time" 2>/dev/null || echo 0 0 0 0)"
    ROWS+=("$label $requests $failures $seconds ${wall:-0} ${user:-0} ${sys:-0} ${rss:-0}")
}

# Benchmarks whose table has a failed run; the script exits 1 at the end if any.
FAILED=()

print_table() {
    REF="${REF:-wrk}" python3 - "$@" <<'EOF'
import os, re, statistics, sys
rows = [r.split() for r in sys.argv[1:]]
# The reference generator: rows whose label starts with it are what the others are
# compared with (wrk, unless REF says otherwise).
REF = os.environ.get("REF", "wrk")
ref = None
ratios = {}
print(f"{'generator':<22}{'requests':>10}{'failed':>8}{'req/s':>10}{'cpu s':>8}"
      f"{'req/cpu-s':>11}{'vs ' + REF:>8}{'peak RSS':>10}")
failed = False
for label, req, fail, secs, wall, user, sys_, rss in rows:
    if req == "-":
        failed = True
        if label.startswith(REF):
            ref = None
        print(f"{label:<22}  FAILED: no counts (exit status and stderr printed above)")
        continue
    req, fail, secs = int(float(req)), int(float(fail)), float(secs) or float(wall)
    cpu = float(user) + float(sys_)
    per_cpu = req / cpu if cpu else 0.0
    if label.startswith(REF):
        ref = per_cpu
    elif ref:
        # Each generator is compared with the wrk run just before it (same round).
        ratios.setdefault(re.sub(r"#\d+$", "", label), []).append(per_cpu / ref)
    ratio = f"{per_cpu / ref:.2f}x" if ref else "-"
    print(f"{label:<22}{req:>10}{fail:>8}{req / secs:>10.0f}{cpu:>8.2f}"
          f"{per_cpu:>11.0f}{ratio:>8}{int(rss) / 1024:>8.1f}MB")
for label, rs in ratios.items():
    if len(rs) > 1:
        each = " ".join(f"{r:.2f}x" for r in rs)
        print(f"{label} vs {REF}, per round: {each}; median {statistics.median(rs):.2f}x")
sys.exit(1 if failed else 0)
EOF
}

bench_throughput() {
    echo "== throughput: 50 users, no think time, ${DURATION}s, GET $URL, $ROUNDS rounds" >&2
    ROWS=()
    # wrk and swarm take turns, so a noisy neighbour slows both in the same round;
    # each round's ratio is against that round's wrk.
    local round
    for round in $(seq "$ROUNDS"); do
        measure "wrk#$round" wrk -t1 -c50 -d"${DURATION}s" "$URL"
        # shellcheck disable=SC2046
        row "wrk#$round" $(wrk_counts "wrk#$round")
        measure "swarm-lean#$round" "$SWARM" check \
            "$ROOT/bench/throughput.yaml" --target "$TARGET" --duration "${DURATION}s" \
            --json "$WORK/swarm-lean#$round.json" --progress none --quiet
        # shellcheck disable=SC2046
        row "swarm-lean#$round" $(swarm_counts "swarm-lean#$round")
    done
    # Once each, after the last round: reqwest for the comparison, and the engine
    # without the CLI around it (what the console and the reports cost).
    measure swarm-reqwest env SWARM_HTTP_CLIENT=reqwest "$SWARM" check \
        "$ROOT/bench/throughput.yaml" --target "$TARGET" --duration "${DURATION}s" \
        --json "$WORK/swarm-reqwest.json" --progress none --quiet
    # shellcheck disable=SC2046
    row swarm-reqwest $(swarm_counts swarm-reqwest)
    measure runner-lean "$RUN_PLAN" "$THROUGHPUT_PLAN" "$TARGET"
    # shellcheck disable=SC2046
    row runner-lean $(out_counts runner-lean)
    print_table "${ROWS[@]}" || FAILED+=(throughput)
}

bench_client() {
    echo "== client: the request pipeline alone, 50 users, ${DURATION}s" >&2
    ROWS=()
    measure wrk wrk -t1 -c50 -d"${DURATION}s" "$URL"
    # shellcheck disable=SC2046
    row wrk $(wrk_counts wrk)
    for client in lean reqwest; do
        measure "loop-$client" env SWARM_HTTP_CLIENT=$client "$CLIENT_LOOP" "$URL" 50 "$DURATION"
        # shellcheck disable=SC2046
        row "loop-$client" $(out_counts "loop-$client")
    done
    print_table "${ROWS[@]}" || FAILED+=(client)
}

bench_idle() {
    echo "== idle users: 10,000 users thinking 5 s, spawned at 2,000/s, 30 s" >&2
    ROWS=()
    for client in lean reqwest; do
        measure "idle-$client" env SWARM_HTTP_CLIENT=$client "$SWARM" check \
            "$ROOT/bench/idle.yaml" --target "$TARGET" \
            --json "$WORK/idle-$client.json" --progress none --quiet
        # shellcheck disable=SC2046
        row "idle-$client" $(swarm_counts "idle-$client")
    done
    # The request pipeline alone: the same users and think time, all started at once.
    for client in lean reqwest; do
        measure "idle-loop-$client" env SWARM_HTTP_CLIENT=$client "$CLIENT_LOOP" "$URL" \
            10000 30 5000
        # shellcheck disable=SC2046
        row "idle-loop-$client" $(out_counts "idle-loop-$client")
    done
    print_table "${ROWS[@]}" || FAILED+=(idle)
    echo "target: >= 1980 req/s (99% of 2,000) in <= 64 MB peak RSS" >&2
}

bench_startup() {
    echo "== startup: process start to first request (ms: min median max)" >&2
    # One run against nginx first: if swarm check fails, the benchmark stops and says
    # why (startup.py discards the runs' output).
    if ! "$SWARM" check "$ROOT/bench/startup.yaml" --target "$TARGET" --progress none --quiet \
        >"$WORK/startup-check.out" 2>&1; then
        echo "swarm check failed on bench/startup.yaml:" >&2
        cat "$WORK/startup-check.out" >&2
        exit 3
    fi
    python3 "$ROOT/bench/startup.py" 7 "$SWARM" check "$ROOT/bench/startup.yaml" \
        --progress none --quiet --target
    echo "target: well under 100 ms" >&2
}

bench_soak() {
    local duration=${SOAK_DURATION:-600} every=${SOAK_EVERY:-30}
    if [[ ! $duration =~ ^[1-9][0-9]*$ || ! $every =~ ^[1-9][0-9]*$ ]]; then
        echo "SOAK_DURATION and SOAK_EVERY must be whole numbers of seconds" >&2
        exit 2
    fi
    echo "== soak: 5,000 req/s for ${duration}s, distinct URLs under one name" >&2
    sed -e "s/^  duration: 600s$/  duration: ${duration}s/" "$ROOT/bench/soak.yaml" >"$WORK/soak.yaml"
    taskset -c "$CORE_GEN" "$SWARM" check "$WORK/soak.yaml" --target "$TARGET" \
        --json "$WORK/soak.json" --progress none --quiet >"$WORK/soak.out" 2>&1 &
    local pid=$! tick start=$SECONDS last_cpu=0 last_t=0
    tick=$(getconf CLK_TCK)
    printf '%8s %10s %12s %16s\n' "t (s)" "RSS (MB)" "CPU (s)" "CPU us/request" >&2
    while kill -0 "$pid" 2>/dev/null; do
        sleep "$every"
        local rss cpu t
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
        [[ -n $rss ]] || break
        cpu=$(awk -v tick="$tick" '{print ($14 + $15) / tick}' "/proc/$pid/stat" 2>/dev/null) || break
        t=$((SECONDS - start))
        # CPU per request over the interval, at the planned 5,000 req/s.
        awk -v t="$t" -v rss="$rss" -v cpu="$cpu" -v lc="$last_cpu" -v lt="$last_t" \
            'BEGIN { printf "%8d %10.1f %12.2f %16.1f\n", t, rss / 1024, cpu, (cpu - lc) / ((t - lt) * 5000) * 1e6 }' >&2
        last_cpu=$cpu last_t=$t
    done
    local rc=0
    wait "$pid" || rc=$?
    python3 - "$WORK/soak.json" <<'PY' >&2 || FAILED+=(soak)
import json, sys
r = json.load(open(sys.argv[1]))
t = r["total"]
print(f"requests {t['count']} failures {t['failures']} rps {t['rps']:.0f} "
      f"dropped {r['dropped']} names {len(r['requests'])} p99 {t['latency_ms']['p99']} ms")
sys.exit(0 if t["failures"] == 0 and len(r["requests"]) == 1 else 1)
PY
    ((rc == 0)) || { echo "swarm exited $rc:" >&2; cat "$WORK/soak.out" >&2; FAILED+=(soak); }
}

# bench_stall: why a soak's RSS can step up once. A stalled target fills the pool of
# users (max_users) with requests in flight, each with its buffers; the allocator keeps
# that memory after the stall. The steps must shrink and stop: bounded by the pool,
# never growing with the number of stalls or with time.
bench_stall() {
    local stalls=${STALLS:-4}
    [[ $stalls =~ ^[1-9][0-9]*$ ]] || { echo "STALLS must be a whole number" >&2; exit 2; }
    local duration=$(((stalls + 1) * 25))
    echo "== stall: 5,000 req/s for ${duration} s, nginx stopped for 3 s every 25 s, $stalls times" >&2
    sed -e "s/^  duration: 600s$/  duration: ${duration}s/" "$ROOT/bench/soak.yaml" >"$WORK/stall.yaml"
    taskset -c "$CORE_GEN" "$SWARM" check "$WORK/stall.yaml" --target "$TARGET" \
        --json "$WORK/stall.json" --progress none --quiet >"$WORK/stall.out" 2>&1 &
    local pid=$! t rss
    printf '%8s %10s\n' "t (s)" "RSS (MB)" >&2
    for t in $(seq 5 5 $((duration - 5))); do
        sleep 5
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
        [[ -n $rss ]] || break
        awk -v t="$t" -v rss="$rss" 'BEGIN { printf "%8d %10.1f\n", t, rss / 1024 }' >&2
        if ((t % 25 == 0)); then
            pkill -STOP -P "$NGINX_PID"
            sleep 3
            pkill -CONT -P "$NGINX_PID"
            echo "  (nginx stopped for 3 s)" >&2
        fi
    done
    local rc=0
    wait "$pid" || rc=$?
    python3 - "$WORK/stall.json" <<'PY' >&2 || FAILED+=(stall)
import json, sys
r = json.load(open(sys.argv[1]))
t = r["total"]
print(f"requests {t['count']} failures {t['failures']} dropped {r['dropped']}")
PY
    # Exit 1 is the SLO (failures == 0) failing on a timed-out request: not a fault here.
    ((rc <= 1)) || { echo "swarm exited $rc:" >&2; cat "$WORK/stall.out" >&2; FAILED+=(stall); }
}

bench_profile() {
    echo "== profile: perf record (cpu-clock) of the throughput run, lean client" >&2
    command -v perf >/dev/null || { echo "perf is not installed" >&2; return; }
    taskset -c "$CORE_GEN" perf record -e cpu-clock -F 2000 -g -o "${PERF_DATA:-$WORK/perf.data}" \
        "$RUN_PLAN" "$THROUGHPUT_PLAN" "$TARGET" >/dev/null 2>"$WORK/perf.err"
    local report=(perf report -i "${PERF_DATA:-$WORK/perf.data}" --no-children --stdio -g none)
    echo "-- by binary" >&2
    "${report[@]}" --sort dso 2>/dev/null | grep '%' | head -8
    echo "-- swarm's own code and libc, by symbol" >&2
    "${report[@]}" --sort symbol --dsos run_plan,libc.so.6 --percent-limit 0.25 2>/dev/null |
        grep '%' | sed -E 's/ +- +- *$//' | cut -c1-150 | head -45
}

# instructions_per_request LABEL CMD...: CMD runs for @S@ seconds (substituted) under
# callgrind, once for 2 s and once for 6 s; what the longer run adds, divided by the
# requests it adds, is the cost of a request without start-up and shut-down. Counts
# come from the command's output via the function named by $COUNT.
instructions_per_request() {
    local label=$1
    shift
    local d ir n runs=()
    for d in 2 6; do
        local cmd=("${@//@S@/$d}")
        taskset -c "$CORE_GEN" valgrind --tool=callgrind \
            --callgrind-out-file="$WORK/$label.$d.cg" "${cmd[@]}" \
            >"$WORK/$label.$d.out" 2>"$WORK/$label.$d.err" || true
        ir=$(awk '/Collected :/ {print $4}' "$WORK/$label.$d.err")
        n=$("$COUNT" "$label" "$d")
        runs+=("${ir:-0}" "${n:-0}")
    done
    python3 - "$label" "${runs[@]}" <<'EOF'
import sys
label, ir2, n2, ir6, n6 = sys.argv[1], *map(int, sys.argv[2:])
per = (ir6 - ir2) / (n6 - n2) if n6 > n2 else 0
print(f"{label:<14}{n2:>10}{n6:>10}{per:>14,.0f}")
EOF
}

count_wrk() { awk '/requests in/ {print $1}' "$WORK/$1.$2.out"; }
count_swarm() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["total"]["count"])' \
        "$WORK/$1.$2.json" 2>/dev/null || echo 0
}

bench_grpc() {
    local port=$((PORT + 1))
    echo "== grpc: 50 callers, no think time, ${DURATION}s, unary GetProduct on the demo (127.0.0.1:$port), $ROUNDS rounds" >&2
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "something already listens on 127.0.0.1:$port; set PORT" >&2
        exit 3
    fi
    taskset -c "$CORE_TARGET" "$SWARM" demo --port "$port" >"$WORK/demo.log" 2>&1 &
    local demo=$!
    local up=
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            up=1
            break
        fi
        sleep 0.05
    done
    if [[ -z $up ]]; then
        echo "the demo did not start:" >&2
        cat "$WORK/demo.log" >&2
        kill "$demo" 2>/dev/null || true
        exit 3
    fi
    ROWS=()
    local round
    for round in $(seq "$ROUNDS"); do
        measure "grpcio#$round" "$PY_GRPC" "$ROOT/bench/grpc_client.py" "127.0.0.1:$port" 50 "$DURATION"
        # shellcheck disable=SC2046
        row "grpcio#$round" $(out_counts "grpcio#$round")
        measure "swarm-grpc#$round" "$SWARM" check "$ROOT/bench/grpc.yaml" \
            --target "http://127.0.0.1:$port" --duration "${DURATION}s" \
            --json "$WORK/swarm-grpc#$round.json" --progress none --quiet
        # shellcheck disable=SC2046
        row "swarm-grpc#$round" $(swarm_counts "swarm-grpc#$round")
    done
    REF=grpcio print_table "${ROWS[@]}" || FAILED+=(grpc)
    kill "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
}

bench_instructions() {
    echo "== instructions: user-space instructions per request under callgrind (50 users)" >&2
    printf '%-14s%10s%10s%14s\n' generator "req (2s)" "req (6s)" "instr/req"
    COUNT=count_wrk instructions_per_request wrk wrk -t1 -c50 -d@S@s "$URL"
    sed -e 's/duration: 10s/duration: @S@s/' "$ROOT/bench/throughput.yaml" >"$WORK/tp.yaml.in"
    for d in 2 6; do
        sed -e "s/@S@/$d/" "$WORK/tp.yaml.in" >"$WORK/tp$d.yaml"
    done
    COUNT=count_swarm instructions_per_request swarm "$SWARM" check "$WORK/tp@S@.yaml" \
        --target "$TARGET" --json "$WORK/swarm.@S@.json" --progress none --quiet
}

bench_coordinator() {
    local secs=${COORD_SECONDS:-20} cport=$((PORT + 1)) uport=$((PORT + 2))
    echo "== coordinator: simulated workers, 20 request names, ${secs} s each" >&2
    {
        printf 'name: coordinator bench\ntarget: http://127.0.0.1:9\n'
        printf 'load: { users: 1, duration: %ss }\nflows:\n  - name: f\n    steps:\n' "$secs"
        for i in $(seq -w 0 19); do
            printf '      - { get: /r%s, name: r%s }\n' "$i" "$i"
        done
    } >"$WORK/coord.yaml"
    for n in ${COORD_WORKERS:-25 50 100 200}; do
        taskset -c "$CORE_GEN" "$SWARM" check "$WORK/coord.yaml" \
            --coordinator "127.0.0.1:$cport" --workers "$n" --workers-timeout 60s \
            --ui "127.0.0.1:$uport" --ui-exit --progress none --quiet \
            >"$WORK/coord.$n.out" 2>&1 &
        local pid=$!
        sleep 1
        taskset -c "$CORE_TARGET" "$COORD_SIM" "http://127.0.0.1:$cport" "127.0.0.1:$uport" \
            "$pid" "$n" "$secs" || FAILED+=("coordinator-$n")
        wait "$pid" || FAILED+=("coordinator-$n")
    done
    # From an SLO breach to the abort: every request fails from second 12 on (aborting
    # lines are judged from second 11), against a line with `abort: true`; the run
    # must end with exit 1 (the breach_to_abort_ms figure of the simulator's line).
    local n=${COORD_ABORT_WORKERS:-100} code=0
    echo "== coordinator: ${n} workers, failing from second 12, an aborting SLO line" >&2
    {
        cat "$WORK/coord.yaml"
        printf 'slo:\n  - { line: "failures == 0", abort: true }\n'
    } >"$WORK/coord-abort.yaml"
    taskset -c "$CORE_GEN" "$SWARM" check "$WORK/coord-abort.yaml" \
        --coordinator "127.0.0.1:$cport" --workers "$n" --workers-timeout 60s \
        --ui "127.0.0.1:$uport" --ui-exit --progress none --quiet \
        >"$WORK/coord-abort.out" 2>&1 &
    local pid=$!
    sleep 1
    taskset -c "$CORE_TARGET" "$COORD_SIM" "http://127.0.0.1:$cport" "127.0.0.1:$uport" \
        "$pid" "$n" "$secs" 12 || FAILED+=(coordinator-abort)
    wait "$pid" || code=$?
    [[ $code == 1 ]] || FAILED+=("coordinator-abort (exit $code, not 1)")
}

bench_ws() {
    local port=$((PORT + 1)) demo
    echo "== ws: 50 users, a small message and its echo, ${DURATION}s, swarm demo's /ws" >&2
    taskset -c "$CORE_TARGET" "$SWARM" demo --port "$port" --tcp-port $((PORT + 2)) \
        >"$WORK/demo.out" 2>&1 &
    demo=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    ROWS=()
    for crate in tungstenite fastwebsockets; do
        measure "loop-$crate" "$WS_LOOP" "ws://127.0.0.1:$port/ws" 50 "$DURATION" "$crate"
        # shellcheck disable=SC2046  # the counts are three words
        row "loop-$crate" $(out_counts "loop-$crate")
    done
    measure swarm-ws "$SWARM" check "$ROOT/bench/ws.yaml" --target "http://127.0.0.1:$port" \
        --duration "${DURATION}s" --json "$WORK/swarm-ws.json" --progress none --quiet
    # shellcheck disable=SC2046
    row swarm-ws $(swarm_counts swarm-ws)
    REF=loop-tungstenite print_table "${ROWS[@]}" || FAILED+=(ws)

    echo "== ws idle: users holding a connection while they think, 20 s (peak RSS)" >&2
    printf '%-10s%8s%12s\n' holding users "peak RSS" >&2
    local kind users setup
    for kind in none ws tcp; do
        for users in 1000 5000; do
            case $kind in
                none) setup="setup: []" ;;
                ws) setup="setup: [ { ws: /ws, name: connect } ]" ;;
                tcp) setup="setup: [ { tcp: \"127.0.0.1:$((PORT + 2))\", name: connect } ]" ;;
            esac
            sed -e "s/@USERS@/$users/" -e "s|@SETUP@|$setup|" \
                "$ROOT/bench/ws-idle.yaml" >"$WORK/idle-$kind.yaml"
            measure "idle-$kind-$users" "$SWARM" check "$WORK/idle-$kind.yaml" \
                --target "http://127.0.0.1:$port" --progress none --quiet
            # The last line: GNU time writes "Command exited with ..." before it
            # when swarm exits non-zero (a plan that sends nothing fails its SLO).
            tail -n 1 "$WORK/idle-$kind-$users.time" |
                awk -v k="$kind" -v u="$users" '{printf "%-10s%8d%10.1fMB\n", k, u, $4 / 1024}' >&2
        done
    done
    kill "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
}

start_nginx
what=("$@")
((${#what[@]})) || what=(all)
for w in "${what[@]}"; do
    case $w in
        all) bench_throughput; bench_idle; bench_startup ;;
        throughput) bench_throughput ;;
        idle) bench_idle ;;
        startup) bench_startup ;;
        client) bench_client ;;
        profile) bench_profile ;;
        instructions) bench_instructions ;;
        soak) bench_soak ;;
        stall) bench_stall ;;
        coordinator) bench_coordinator ;;
        grpc) bench_grpc ;;
        ws) bench_ws ;;
        *) echo "unknown benchmark: $w (all|throughput|idle|startup|client|profile|instructions|soak|stall|coordinator|grpc|ws)" >&2; exit 2 ;;
    esac
done
if ((${#FAILED[@]})); then
    echo "failed runs in: ${FAILED[*]} (marked FAILED in the tables above)" >&2
    exit 1
fi
