#!/usr/bin/env bash
# Blind indexes (issue 21): Mac of 64 bytes against Encrypt of 64 bytes,
# and MacBatch of 100 items against single Mac calls, 64 calls in flight
# over one mTLS connection, one server with the audit log on. `tresor
# bench` runs in alternating rounds (which goes first swaps every round)
# so machine drift cancels out; the headlines are the median per-round
# ratios: Mac req/s over Encrypt req/s, and MacBatch items/s over Mac
# items/s.
# Usage: crates/tresor-bench/scripts/bench-mac.sh [SECONDS] [ROUNDS] [CONCURRENCY] [BATCH] [PAYLOAD]
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
CONCURRENCY=${3:-64}
BATCH=${4:-100}
PAYLOAD=${5:-64}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

$B serve --listen 127.0.0.1:17523 --data-dir "$T/data" "${COMMON[@]}" & PIDS+=($!)
wait_up 17523
as_admin --addr https://localhost:17523 key create bench/enc --owner spiffe://bench/billing >/dev/null
as_admin --addr https://localhost:17523 key create bench/mac --owner spiffe://bench/billing \
    --purpose mac >/dev/null

run() { # KEY MIX OUT: one `tresor bench` run, its JSON report in OUT.
    as_billing --addr https://localhost:17523 bench --key-id "$1" --mix "$2" \
        --batch-size "$BATCH" --payload "$PAYLOAD" --concurrency "$CONCURRENCY" --connections 1 \
        --duration "${SECONDS_PER_RUN}s" --warmup 1s --json >"$3"
}
for round in $(seq "$ROUNDS"); do
    if (( round % 2 == 1 )); then
        run bench/enc encrypt "$T/encrypt-$round.json"
        run bench/mac mac "$T/mac-$round.json"
        run bench/mac mac-batch "$T/mac-batch-$round.json"
    else
        run bench/mac mac-batch "$T/mac-batch-$round.json"
        run bench/mac mac "$T/mac-$round.json"
        run bench/enc encrypt "$T/encrypt-$round.json"
    fi
done
python3 - "$ROUNDS" "$T" <<'PY'
import json, statistics, sys
rounds, dir = int(sys.argv[1]), sys.argv[2]
load = lambda kind, r: json.load(open(f"{dir}/{kind}-{r}.json"))
enc = [load("encrypt", r) for r in range(1, rounds + 1)]
mac = [load("mac", r) for r in range(1, rounds + 1)]
batch = [load("mac-batch", r) for r in range(1, rounds + 1)]
for r, (e, m, b) in enumerate(zip(enc, mac, batch), 1):
    print(f"round {r}: encrypt {e['requests_per_second']:.0f} req/s (p50 {e['latency_us']['p50']} us), "
          f"mac {m['requests_per_second']:.0f} req/s (p50 {m['latency_us']['p50']} us), "
          f"mac-batch of {b['batch_size']} {b['items_per_second']:.0f} items/s")
errors = sum(x["errors"] for x in enc + mac + batch)
mac_vs_enc = [m["requests_per_second"] / e["requests_per_second"] for e, m in zip(enc, mac)]
batch_vs_mac = [b["items_per_second"] / m["items_per_second"] for m, b in zip(mac, batch)]
print(f"mac / encrypt req/s: median {statistics.median(mac_vs_enc):.2f} "
      f"(per round: {', '.join(f'{x:.2f}' for x in mac_vs_enc)})")
print(f"mac-batch / mac items/s: median {statistics.median(batch_vs_mac):.1f}x "
      f"(per round: {', '.join(f'{x:.1f}' for x in batch_vs_mac)}); failed calls: {errors}")
PY
