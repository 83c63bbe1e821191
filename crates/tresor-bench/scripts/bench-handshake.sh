#!/usr/bin/env bash
# What a new connection costs (TCP, mutual-TLS handshake, HTTP/2 set-up,
# one Encrypt), 1 in flight, with `tresor bench --new-connections`, in
# alternating rounds against servers running side by side:
#   files       tresor serve with files (webpki client verifier as is)
#   allowlist   the same with --trust-domain bench (the SPIFFE verifier
#               wrapping webpki: the certificate's SPIFFE id is read)
#   crl         the same with --client-crl (a list of the CA revoking
#               another certificate)
#   old         OLD_TRESOR, a build from before tresor terminated TLS in
#               its own accept loop (tonic's TLS, session resumption on);
#               skipped when OLD_TRESOR is not set
# Usage: [OLD_TRESOR=/path/to/old/tresor] crates/tresor-bench/scripts/bench-handshake.sh [DURATION] [ROUNDS]
set -euo pipefail
DURATION=${1:-5s}
ROUNDS=${2:-3}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

# A revocation list of the bench CA listing one other certificate: the
# CRL path of the verifier runs, the billing client is not refused.
$B certs issue --ca "$T/ca" --identity spiffe://bench/revoked --out "$T/revoked" >/dev/null
$B certs crl --ca "$T/ca" --revoke "$T/revoked/cert.pem" --out "$T/clients.crl" >/dev/null

declare -A PORT=([files]=17531 [allowlist]=17532 [crl]=17533 [old]=17534)
serve() {
    local name=$1 binary=$2
    shift 2
    mkdir -p "$T/$name"
    $binary serve --listen 127.0.0.1:"${PORT[$name]}" --data-dir "$T/$name/data" "${COMMON[@]}" "$@" \
        2>"$T/$name/log" & PIDS+=($!)
    wait_up "${PORT[$name]}"
    as_admin --addr https://localhost:"${PORT[$name]}" key create bench/k --owner spiffe://bench/billing >/dev/null
}
SIDES=(files allowlist crl)
serve files "$B"
serve allowlist "$B" --trust-domain bench
serve crl "$B" --client-crl "$T/clients.crl"
if [ -n "${OLD_TRESOR:-}" ]; then
    serve old "$OLD_TRESOR"
    SIDES+=(old)
fi

for round in $(seq "$ROUNDS"); do
    # Rotate the order every round so drift does not favour one side.
    for i in "${!SIDES[@]}"; do
        name=${SIDES[$(( (i + round) % ${#SIDES[@]} ))]}
        as_billing --addr https://localhost:"${PORT[$name]}" bench --key-id bench/k \
            --new-connections --concurrency 1 --payload 1024 \
            --duration "$DURATION" --warmup 1s --json >"$T/$name-$round.json"
    done
done

python3 - "$T" "$ROUNDS" "${SIDES[@]}" <<'PY'
import json, statistics, sys
t, rounds, sides = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"new connection per request, 1 in flight, Encrypt 1 KiB, {rounds} rounds (median of rounds)")
print(f"{'server':<10} {'conn/s':>8} {'p50 us':>8} {'p99 us':>8} {'errors':>7}")
for side in sides:
    runs = [json.load(open(f"{t}/{side}-{r}.json")) for r in range(1, rounds + 1)]
    med = lambda f: statistics.median(f(x) for x in runs)
    print(f"{side:<10} {med(lambda x: x['requests_per_second']):>8.0f} "
          f"{med(lambda x: x['latency_us']['p50']):>8.0f} {med(lambda x: x['latency_us']['p99']):>8.0f} "
          f"{sum(x['errors'] for x in runs):>7}")
PY
