#!/usr/bin/env bash
# CPU per request of the server and of the bench client, tresor beside the
# bare echo, in one `tresor bench --compare-echo --rounds 1` run (64 in
# flight, 1 KiB Encrypt): `perf stat -e task-clock` on each process during
# the middle 4 s of each side. When the 2 vCPUs are saturated, the req/s
# ratio is the ratio of total CPU per request.
# Usage: crates/tresor-bench/scripts/bench-cpu.sh            (audit on)
#        EXTRA=--no-audit crates/tresor-bench/scripts/bench-cpu.sh
#        C=1 MIX="--mix decrypt" crates/tresor-bench/scripts/bench-cpu.sh
# Needs perf.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
$B serve --listen 127.0.0.1:17811 --data-dir "$T/d" "${COMMON[@]}" ${EXTRA:-} & SPID=$!; PIDS+=($SPID)
wait_up 17811
as_admin --addr https://localhost:17811 key create bench/k --owner spiffe://bench/billing >/dev/null
as_billing --addr https://localhost:17811 bench --key-id bench/k --compare-echo \
        --echo-tls-cert "$T/server/cert.pem" --echo-tls-key "$T/server/key.pem" \
        --echo-client-ca "$T/ca/ca.pem" --payload 1024 --connections 1 \
        --duration 7s --warmup 1s --rounds 1 --concurrency ${C:-64} --json ${MIX:-} > $T/b.json 2>/dev/null &
BPID=$!
sleep 0.7
EPID=$(pgrep -f "echo-serve" | head -1)
CPID=$(pgrep -f -- "--compare-echo" | head -1); echo "server $SPID echo $EPID client $CPID" >&2
sleep 1.5
perf stat -e task-clock -p $SPID -x, -o $T/s-t.txt -- sleep 4 & P1=$!
perf stat -e task-clock -p $CPID -x, -o $T/c-t.txt -- sleep 4 & P2=$!
wait $P1 $P2
sleep 3.2
EPID=$(pgrep -f "echo-serve" | head -1)
perf stat -e task-clock -p $EPID -x, -o $T/s-e.txt -- sleep 4 & P1=$!
perf stat -e task-clock -p $CPID -x, -o $T/c-e.txt -- sleep 4 & P2=$!
wait $P1 $P2
wait $BPID
python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(f"{d}/b.json"))
def ms(path):
    for line in open(path):
        if "task-clock" in line: return float(line.split(",")[0])
t, e = r["tresor"]["requests_per_second"], r["echo"]["requests_per_second"]
for name, rps, s, c in (("tresor", t, "s-t", "c-t"), ("echo", e, "s-e", "c-e")):
    sv, cv = ms(f"{d}/{s}.txt")/4, ms(f"{d}/{c}.txt")/4
    print(f"{name:6} {rps:7.0f} req/s  server {sv/rps*1000:5.1f} us/req  client {cv/rps*1000:5.1f} us/req  total CPU {(sv+cv)/10:.0f}%")
print(f"ratio {t/e:.3f}")
PY
