#!/usr/bin/env bash
# Items/s of single calls versus batch calls: 64-byte items, batches of 100,
# 64 calls in flight, one server with the audit log on, measured alternately
# (single, batch, single, batch ...) so machine drift cancels out. The load
# driver is examples/bench_batch.rs (the SDK over one mTLS connection).
# Usage: scripts/bench-batch.sh [SECONDS] [ROUNDS] [CONCURRENCY] [BATCH] [PAYLOAD]
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
CONCURRENCY=${3:-64}
BATCH=${4:-100}
PAYLOAD=${5:-64}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
cargo build --release --locked --quiet --example bench_batch
DRIVER=$PWD/target/release/examples/bench_batch

$B serve --listen 127.0.0.1:17521 --data-dir "$T/data" "${COMMON[@]}" & PIDS+=($!)
wait_up 17521
as_admin --addr https://localhost:17521 key create bench/k --owner spiffe://bench/billing >/dev/null
run() { # MODE BATCH
    TRESOR_ADDR=https://localhost:17521 TRESOR_CERT=$T/billing/cert.pem TRESOR_KEY=$T/billing/key.pem \
        "$DRIVER" bench/k "$1" "$2" "$SECONDS_PER_RUN" "$CONCURRENCY" "$PAYLOAD"
}
for mode in encrypt decrypt; do
    SINGLE=(); BATCHED=()
    for round in $(seq "$ROUNDS"); do
        SINGLE+=("$(run "$mode" 0)")
        BATCHED+=("$(run "$mode" "$BATCH")")
        echo "$mode round $round: single ${SINGLE[-1]}"
        echo "$mode round $round: batch  ${BATCHED[-1]}"
    done
    python3 - "$mode" "$(printf '%s\n' "${SINGLE[@]}")" "$(printf '%s\n' "${BATCHED[@]}")" <<'PY'
import json, statistics, sys
mode = sys.argv[1]
single = [json.loads(l) for l in sys.argv[2].splitlines()]
batched = [json.loads(l) for l in sys.argv[3].splitlines()]
errors = sum(r["errors"] for r in single + batched)
s = statistics.median(r["items_per_second"] for r in single)
b = statistics.median(r["items_per_second"] for r in batched)
ratios = [y["items_per_second"] / x["items_per_second"] for x, y in zip(single, batched)]
print(f"{mode}: median single {s:.0f} items/s, batch {b:.0f} items/s, ratio {b / s:.1f}x "
      f"(per round: {', '.join(f'{r:.1f}' for r in ratios)}); item errors: {errors}")
PY
done
echo "audit records written: $(cat "$T"/data/audit/audit.jsonl* | wc -l)"
