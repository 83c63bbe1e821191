#!/usr/bin/env bash
# OpenTelemetry export (issue 26): Encrypt of 64 bytes at 64 in flight
# against three servers in the same run: export off; export on with every
# trace sampled (OTEL_TRACES_SAMPLER=always_on); export on sampling 1%
# (traceidratio 0.01). Spans go to examples/otlp_sink.rs, which counts and
# drops them. `tresor bench` in rotating rounds; the headlines are the
# median per-round ratios of req/s against export off, and each server's
# CPU time per request (its utime+stime over the run, warm-up included,
# divided by the requests of the measured part: a figure the machine's
# noise moves less than throughput).
# Usage: crates/tresor-bench/scripts/bench-otlp.sh [SECONDS] [ROUNDS]
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
cargo build --release --locked --quiet --example otlp_sink

target/release/examples/otlp_sink 127.0.0.1:17540 & SINK=$!
extra_cleanup() { sleep 1; kill "$SINK" 2>/dev/null || true; } # after the servers flushed
declare -A SERVER
start() { # PORT NAME [ENV...]: a server with its own keystore
    local port=$1 name=$2; shift 2
    env "$@" $B serve --listen 127.0.0.1:"$port" --data-dir "$T/data-$name" "${COMMON[@]}" \
        ${OTLP:+--otlp-endpoint "$OTLP"} & PIDS+=($!)
    SERVER[$port]=$!
    wait_up "$port"
    as_admin --addr https://localhost:"$port" key create bench/k --owner spiffe://bench/billing >/dev/null
}
OTLP= start 17541 off
OTLP=http://127.0.0.1:17540 start 17542 all OTEL_TRACES_SAMPLER=always_on
OTLP=http://127.0.0.1:17540 start 17543 one OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.01

ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
run() { # PORT OUT: the bench's JSON, and the server's CPU ticks in OUT.ticks
    local before; before=$(ticks "${SERVER[$1]}")
    as_billing --addr https://localhost:"$1" bench --key-id bench/k --mix encrypt --payload 64 \
        --concurrency 64 --connections 1 --duration "${SECONDS_PER_RUN}s" --warmup 1s --json >"$2"
    echo $(( $(ticks "${SERVER[$1]}") - before )) >"$2.ticks"
}
for round in $(seq "$ROUNDS"); do
    order=(17541 17542 17543)
    (( round % 3 == 2 )) && order=(17542 17543 17541)
    (( round % 3 == 0 )) && order=(17543 17541 17542)
    for port in "${order[@]}"; do run "$port" "$T/$port-$round.json"; done
done
python3 - "$ROUNDS" "$T" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
rounds, dir, hz = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
load = lambda port, r: json.load(open(f"{dir}/{port}-{r}.json"))
def cpu_us(port):
    per = [int(open(f"{dir}/{port}-{r}.json.ticks").read()) / hz * 1e6 / load(port, r)["requests"]
           for r in range(1, rounds + 1)]
    return statistics.median(per)
off = [load(17541, r) for r in range(1, rounds + 1)]
for port, label in ((17542, "export on, 100% sampled"), (17543, "export on, 1% sampled")):
    runs = [load(port, r) for r in range(1, rounds + 1)]
    ratios = [x["requests_per_second"] / o["requests_per_second"] for o, x in zip(off, runs)]
    print(f"{label}: median {statistics.median(x['requests_per_second'] for x in runs):.0f} req/s; "
          f"ratio to export off: median {statistics.median(ratios):.3f} "
          f"(per round: {', '.join(f'{r:.3f}' for r in ratios)})")
print(f"export off: median {statistics.median(o['requests_per_second'] for o in off):.0f} req/s")
for port, label in ((17541, "export off"), (17542, "100% sampled"), (17543, "1% sampled")):
    print(f"server CPU per request, {label}: median {cpu_us(port):.1f} us")
PY
