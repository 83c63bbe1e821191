#!/usr/bin/env bash
# tresor beside a bare gRPC echo served with the same tonic, the same
# rustls mutual-TLS configuration and the same certificates (tresor bench
# --compare-echo), measured in alternating rounds in one run so machine
# drift cancels out. The ratio tresor/echo is the headline number.
# Targets (issue 7), 1 KiB payload over mTLS and one connection:
#   Encrypt and Decrypt at 64 in flight: req/s >= 0.90 of the echo's
#   Encrypt at 1 in flight: p50 latency <= 1.15 of the echo's
# Usage: crates/tresor-bench/scripts/bench-echo.sh [DURATION] [ROUNDS] [WARMUP]
#        EXTRA=--no-audit crates/tresor-bench/scripts/bench-echo.sh ...   (extra flags for tresor serve)
set -euo pipefail
DURATION=${1:-5s}
ROUNDS=${2:-4}
WARMUP=${3:-1s}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

$B serve --listen 127.0.0.1:17521 --data-dir "$T/data" "${COMMON[@]}" ${EXTRA:-} & PIDS+=($!)
wait_up 17521
as_admin --addr https://localhost:17521 key create bench/k --owner spiffe://bench/billing >/dev/null

# compare NAME TARGET FLAGS...: one --compare-echo run, summarised.
compare() {
    local name=$1 target=$2
    shift 2
    as_billing --addr https://localhost:17521 bench --key-id bench/k --compare-echo \
        --echo-tls-cert "$T/server/cert.pem" --echo-tls-key "$T/server/key.pem" \
        --echo-client-ca "$T/ca/ca.pem" --payload 1024 --connections 1 \
        --duration "$DURATION" --warmup "$WARMUP" --rounds "$ROUNDS" --json "$@" >"$T/$name.json"
    python3 - "$name" "$target" "$T/$name.json" <<'PY'
import json, sys
name, target, path = sys.argv[1:]
r = json.load(open(path))
t, e = r["tresor"], r["echo"]
fmt = lambda xs: ", ".join("-" if x is None else f"{x:.3f}" for x in xs)
rps = [x["requests_per_second_ratio"] for x in r["rounds"]]
p50 = [x["p50_latency_ratio"] for x in r["rounds"]]
print(f"== {name}: {r['mix']}, {r['payload_bytes']} B, {r['concurrency']} in flight, "
      f"{r['connections']} connection, {len(r['rounds'])} rounds")
for side, s in (("tresor", t), ("echo", e)):
    l = s["latency_us"]
    print(f"  {side:6} {s['requests_per_second']:9.0f} req/s  {s['bytes_per_second']/1e6:7.2f} MB/s  "
          f"p50 {l['p50']} us  p90 {l['p90']} us  p99 {l['p99']} us  max {l['max']} us  errors {s['errors']}")
ratio = r["ratio"]
print(f"  req/s ratio per round: {fmt(rps)}; median {fmt([ratio['requests_per_second']])}")
print(f"  p50 ratio per round:   {fmt(p50)}; median {fmt([ratio['p50_latency']])}")
if target.startswith("rps>="):
    goal, value = float(target[5:]), ratio["requests_per_second"]
    met = value is not None and value >= goal
    print(f"  target req/s ratio >= {goal}: {'met' if met else 'NOT met'}")
else:
    goal, value = float(target[5:]), ratio["p50_latency"]
    met = value is not None and value <= goal
    print(f"  target p50 ratio <= {goal}: {'met' if met else 'NOT met'}")
PY
}

compare encrypt-64 "rps>=0.90" --mix encrypt --concurrency 64
compare decrypt-64 "rps>=0.90" --mix decrypt --concurrency 64
compare encrypt-1 "p50<=1.15" --mix encrypt --concurrency 1
