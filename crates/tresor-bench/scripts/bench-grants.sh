#!/usr/bin/env bash
# Conditional grants (issue 22): Encrypt of 64 bytes at 64 in flight by a
# caller allowed through a SPIFFE-ID pattern grant with a context
# constraint, the last of GRANTS conditional grants on the key (so the
# check walks all of them), against the key's owner in the same run.
# `tresor bench` in alternating rounds; the headline is the median
# per-round ratio of req/s, pattern caller / owner.
# Usage: crates/tresor-bench/scripts/bench-grants.sh [SECONDS] [ROUNDS] [GRANTS]
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
GRANTS=${3:-1000}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

$B certs issue --ca "$T/ca" --identity spiffe://bench/ns/prod/sa/reports --out "$T/pod" >/dev/null
$B serve --listen 127.0.0.1:17525 --data-dir "$T/data" "${COMMON[@]}" & PIDS+=($!)
wait_up 17525
A=(--addr https://localhost:17525)
as_admin "${A[@]}" key create bench/k --owner spiffe://bench/billing >/dev/null
for i in $(seq 1 $((GRANTS - 1))); do
    as_admin "${A[@]}" grant create bench/k --grantee "spiffe://bench/svc-$i" --ops encrypt \
        --context-subset "tenant=$i" >/dev/null
done
as_admin "${A[@]}" grant create bench/k --grantee 'spiffe://bench/ns/prod/*' --ops encrypt \
    --context-subset tenant=42 >/dev/null
echo "conditional grants on bench/k: $(as_admin "${A[@]}" --output json key show bench/k \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["grants"]))')"

as_pod() { TRESOR_CERT=$T/pod/cert.pem TRESOR_KEY=$T/pod/key.pem $B "$@"; }
run() { # WHO OUT: one `tresor bench` run, its JSON report in OUT.
    "$1" "${A[@]}" bench --key-id bench/k --mix encrypt --payload 64 --concurrency 64 \
        --connections 1 --context tenant=42 --duration "${SECONDS_PER_RUN}s" --warmup 1s \
        --json >"$2"
}
for round in $(seq "$ROUNDS"); do
    if (( round % 2 == 1 )); then
        run as_billing "$T/owner-$round.json"; run as_pod "$T/pattern-$round.json"
    else
        run as_pod "$T/pattern-$round.json"; run as_billing "$T/owner-$round.json"
    fi
done
python3 - "$ROUNDS" "$T" <<'PY'
import json, statistics, sys
rounds, dir = int(sys.argv[1]), sys.argv[2]
load = lambda kind, r: json.load(open(f"{dir}/{kind}-{r}.json"))
owner = [load("owner", r) for r in range(1, rounds + 1)]
pattern = [load("pattern", r) for r in range(1, rounds + 1)]
for r, (o, p) in enumerate(zip(owner, pattern), 1):
    print(f"round {r}: owner {o['requests_per_second']:.0f} req/s (p50 {o['latency_us']['p50']} us), "
          f"pattern grant {p['requests_per_second']:.0f} req/s (p50 {p['latency_us']['p50']} us)")
ratios = [p["requests_per_second"] / o["requests_per_second"] for o, p in zip(owner, pattern)]
errors = sum(x["errors"] for x in owner + pattern)
print(f"pattern / owner req/s: median {statistics.median(ratios):.3f} "
      f"(per round: {', '.join(f'{x:.3f}' for x in ratios)}); failed calls: {errors}")
PY
