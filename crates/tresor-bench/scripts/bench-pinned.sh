#!/usr/bin/env bash
# tresor beside the bare echo (as crates/tresor-bench/scripts/bench-echo.sh), but with a core
# each: the servers (tresor serve and the echo) on CPU 1, the load tool on
# CPU 0. The server alone on its core is the bottleneck, so the ratio
# shows the server's own cost per request, with a much smaller spread from
# round to round than when all share both cores. Encrypt, 1 KiB, 64 in
# flight, one connection.
# Usage: crates/tresor-bench/scripts/bench-pinned.sh [DURATION] [ROUNDS] [WARMUP]
#        EXTRA=--no-audit crates/tresor-bench/scripts/bench-pinned.sh ...   (extra flags for tresor serve)
# Needs taskset (util-linux) and 2 CPUs.
set -euo pipefail
DURATION=${1:-4s}
ROUNDS=${2:-4}
WARMUP=${3:-1s}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

taskset -c 1 "$B" serve --listen 127.0.0.1:17531 --data-dir "$T/data" "${COMMON[@]}" ${EXTRA:-} & PIDS+=($!)
wait_up 17531
as_admin --addr https://localhost:17531 key create bench/k --owner spiffe://bench/billing >/dev/null
TRESOR_CERT=$T/billing/cert.pem TRESOR_KEY=$T/billing/key.pem taskset -c 0 "$B" \
    --addr https://localhost:17531 bench --key-id bench/k --compare-echo \
    --echo-tls-cert "$T/server/cert.pem" --echo-tls-key "$T/server/key.pem" \
    --echo-client-ca "$T/ca/ca.pem" --payload 1024 --connections 1 --mix encrypt \
    --duration "$DURATION" --warmup "$WARMUP" --rounds "$ROUNDS" --concurrency 64 \
    --json > "$T/result.json" &
BENCH=$!
# The load tool starts the echo as its child, on CPU 0 like itself: move
# every thread of it to CPU 1, beside tresor, before the first round.
ECHO=""
for _ in $(seq 100); do
    ECHO=$(pgrep -f "echo-serve.*$T" | head -1 || true)
    [ -n "$ECHO" ] && break
    sleep 0.05
done
[ -n "$ECHO" ] || { echo "the echo did not start" >&2; exit 1; }
taskset -a -p -c 1 "$ECHO" >/dev/null
wait "$BENCH"
python3 - "$T/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rounds = ", ".join(f"{x['requests_per_second_ratio']:.3f}" for x in r["rounds"])
print(f"tresor {r['tresor']['requests_per_second']:.0f} req/s, echo {r['echo']['requests_per_second']:.0f} req/s")
print(f"req/s ratio per round: {rounds}; median {r['ratio']['requests_per_second']:.3f}")
PY
