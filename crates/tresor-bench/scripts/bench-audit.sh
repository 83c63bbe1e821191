#!/usr/bin/env bash
# Encrypt throughput with the audit log on versus off: two servers on the
# same machine, same load tool (tresor bench), measured alternately
# (A B A B ...) in one run so machine drift cancels out.
# Usage: crates/tresor-bench/scripts/bench-audit.sh [DURATION] [ROUNDS] [CONCURRENCY]
set -euo pipefail
DURATION=${1:-5s}
ROUNDS=${2:-4}
CONCURRENCY=${3:-64}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

$B serve --listen 127.0.0.1:17511 --data-dir "$T/on" "${COMMON[@]}" & PIDS+=($!)
$B serve --listen 127.0.0.1:17512 --data-dir "$T/off" --no-audit "${COMMON[@]}" & PIDS+=($!)
wait_up 17511; wait_up 17512
for port in 17511 17512; do
    as_admin --addr https://localhost:$port key create bench/k --owner spiffe://bench/billing >/dev/null
done
bench() {
    as_billing --addr "https://localhost:$1" --output json bench --key-id bench/k \
        --duration "$DURATION" --warmup 1s --concurrency "$CONCURRENCY" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_per_second"])'
}
ON=(); OFF=()
for round in $(seq "$ROUNDS"); do
    ON+=("$(bench 17511)")
    OFF+=("$(bench 17512)")
    echo "round $round: audit on ${ON[-1]} req/s, audit off ${OFF[-1]} req/s"
done
python3 - "${ON[*]}" "${OFF[*]}" <<'PY'
import sys, statistics
on = [float(x) for x in sys.argv[1].split()]
off = [float(x) for x in sys.argv[2].split()]
ratios = [a / b for a, b in zip(on, off)]
print(f"median audit on {statistics.median(on):.0f} req/s, off {statistics.median(off):.0f} req/s")
print(f"ratio on/off per round: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
PY
echo "audit records written: $(cat "$T"/on/audit/audit.jsonl* | wc -l)"
