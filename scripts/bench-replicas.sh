#!/usr/bin/env bash
# Encrypt throughput: one tresor on sled versus two replicas on PostgreSQL,
# same load tool (tresor bench), same machine, one run. Needs the Debian
# postgresql package. Usage: scripts/bench-replicas.sh [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${1:-10s}
cargo build --release --locked --quiet
T=$(mktemp -d /tmp/tresor-bench.XXXXXX)
chmod 755 "$T"
B=$PWD/target/release/tresor
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -d "$T/pg" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg" -m immediate stop >/dev/null 2>&1 || true
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

# One node on sled.
$B serve --listen 127.0.0.1:17501 --data-dir "$T/sled" "${COMMON[@]}" & PIDS+=($!)
wait_up 17501
as_admin --addr https://localhost:17501 key create bench/k --owner spiffe://bench/billing >/dev/null
echo "== one replica, sled"
as_billing --addr https://localhost:17501 --output json bench --key-id bench/k --duration "$DURATION"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()

# Two replicas on one PostgreSQL.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
mkdir "$T/pg" && chown postgres "$T/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg" -U tresor -A trust --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg" -w -l "$T/pg/log" \
    -o "-p 55433 -k $T/pg -c listen_addresses=127.0.0.1" start >/dev/null
URL=postgres://tresor@127.0.0.1:55433/postgres
$B serve --listen 127.0.0.1:17502 --store "$URL" --replica-name a "${COMMON[@]}" & PIDS+=($!)
$B serve --listen 127.0.0.1:17503 --store "$URL" --replica-name b "${COMMON[@]}" & PIDS+=($!)
wait_up 17502; wait_up 17503
as_admin --addr https://localhost:17502 key create bench/k --owner spiffe://bench/billing >/dev/null
echo "== one of the two replicas, PostgreSQL (the other idle)"
as_billing --addr https://localhost:17502 --output json bench --key-id bench/k --duration "$DURATION"
echo "== two replicas, PostgreSQL"
as_billing --addr https://localhost:17502 --output json bench --key-id bench/k --target https://localhost:17503 --duration "$DURATION"
