#!/usr/bin/env bash
# Encrypt throughput with the audit log on versus off: two servers on the
# same machine, same load tool (tresor bench), measured alternately
# (A B A B ...) in one run so machine drift cancels out.
# Usage: scripts/bench-audit.sh [DURATION] [ROUNDS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${1:-5s}
ROUNDS=${2:-4}
CONCURRENCY=${3:-64}
cargo build --release --locked --quiet
T=$(mktemp -d /tmp/tresor-bench.XXXXXX)
B=$PWD/target/release/tresor
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

$B certs ca --out "$T/ca" >/dev/null
$B certs server --ca "$T/ca" --dns localhost --ip 127.0.0.1 --out "$T/server" >/dev/null
$B certs issue --ca "$T/ca" --identity spiffe://bench/admin --out "$T/admin" >/dev/null
$B certs issue --ca "$T/ca" --identity spiffe://bench/billing --out "$T/billing" >/dev/null
$B master-key generate --out "$T/master.key" >/dev/null
COMMON=(--tls-cert "$T/server/cert.pem" --tls-key "$T/server/key.pem" --client-ca "$T/ca/ca.pem"
        --master-key-file "$T/master.key" --admin spiffe://bench/admin)
export TRESOR_CA=$T/ca/ca.pem TRESOR_LOG=warn

wait_up() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }
as_admin() { TRESOR_CERT=$T/admin/cert.pem TRESOR_KEY=$T/admin/key.pem $B "$@"; }
as_billing() { TRESOR_CERT=$T/billing/cert.pem TRESOR_KEY=$T/billing/key.pem $B "$@"; }

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
