#!/usr/bin/env bash
# Items/s of single calls versus batch calls: 64-byte items, batches of 100,
# 64 calls in flight over one mTLS connection, one server with the audit
# log on. The load driver is `tresor bench` (--mix encrypt against --mix
# encrypt-batch --batch-size N, then decrypt against decrypt-batch), run in
# alternating rounds (single first in odd rounds, batch first in even ones)
# so machine drift cancels out; the headline is the median per-round ratio
# of items/s, batch / single.
# Usage: crates/tresor-bench/scripts/bench-batch.sh [SECONDS] [ROUNDS] [CONCURRENCY] [BATCH] [PAYLOAD]
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
CONCURRENCY=${3:-64}
BATCH=${4:-100}
PAYLOAD=${5:-64}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

$B serve --listen 127.0.0.1:17521 --data-dir "$T/data" "${COMMON[@]}" & PIDS+=($!)
wait_up 17521
as_admin --addr https://localhost:17521 key create bench/k --owner spiffe://bench/billing >/dev/null

run() { # MIX OUT: one `tresor bench` run, its JSON report in OUT.
    as_billing --addr https://localhost:17521 bench --key-id bench/k --mix "$1" \
        --batch-size "$BATCH" --payload "$PAYLOAD" --concurrency "$CONCURRENCY" --connections 1 \
        --duration "${SECONDS_PER_RUN}s" --warmup 1s --json >"$2"
}
for mode in encrypt decrypt; do
    for round in $(seq "$ROUNDS"); do
        if (( round % 2 == 1 )); then
            run "$mode" "$T/$mode-single-$round.json"
            run "$mode-batch" "$T/$mode-batch-$round.json"
        else
            run "$mode-batch" "$T/$mode-batch-$round.json"
            run "$mode" "$T/$mode-single-$round.json"
        fi
    done
    python3 - "$mode" "$ROUNDS" "$T" <<'PY'
import json, statistics, sys
mode, rounds, dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
load = lambda kind, r: json.load(open(f"{dir}/{mode}-{kind}-{r}.json"))
single = [load("single", r) for r in range(1, rounds + 1)]
batched = [load("batch", r) for r in range(1, rounds + 1)]
for r, (x, y) in enumerate(zip(single, batched), 1):
    first = "single" if r % 2 == 1 else "batch"
    print(f"{mode} round {r} ({first} first): single {x['items_per_second']:.0f} items/s, "
          f"batch of {y['batch_size']} {y['items_per_second']:.0f} items/s "
          f"({y['requests_per_second']:.0f} req/s)")
errors = sum(r["errors"] for r in single + batched)
s = statistics.median(r["items_per_second"] for r in single)
b = statistics.median(r["items_per_second"] for r in batched)
ratios = [y["items_per_second"] / x["items_per_second"] for x, y in zip(single, batched)]
print(f"{mode}: median single {s:.0f} items/s, batch {b:.0f} items/s; "
      f"median per-round ratio {statistics.median(ratios):.1f}x "
      f"(per round: {', '.join(f'{r:.1f}' for r in ratios)}); failed calls: {errors}")
PY
done
echo "audit records written: $(cat "$T"/data/audit/audit.jsonl* | wc -l)"
