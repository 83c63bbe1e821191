#!/usr/bin/env bash
# Encrypt throughput: one tresor on sled versus two replicas on PostgreSQL,
# same load tool (tresor bench), same machine, one run. Needs the Debian
# postgresql package. Usage: crates/tresor-bench/scripts/bench-replicas.sh [DURATION]
set -euo pipefail
DURATION=${1:-10s}
extra_cleanup() {
    if [ -d "$T/pg" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

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
$B serve --listen 127.0.0.1:17502 --store "$URL" --replica-name a --audit-file "$T/audit-a/audit.jsonl" "${COMMON[@]}" & PIDS+=($!)
$B serve --listen 127.0.0.1:17503 --store "$URL" --replica-name b --audit-file "$T/audit-b/audit.jsonl" "${COMMON[@]}" & PIDS+=($!)
wait_up 17502; wait_up 17503
as_admin --addr https://localhost:17502 key create bench/k --owner spiffe://bench/billing >/dev/null
echo "== one of the two replicas, PostgreSQL (the other idle)"
as_billing --addr https://localhost:17502 --output json bench --key-id bench/k --duration "$DURATION"
echo "== two replicas, PostgreSQL"
as_billing --addr https://localhost:17502 --output json bench --key-id bench/k --target https://localhost:17503 --duration "$DURATION"
