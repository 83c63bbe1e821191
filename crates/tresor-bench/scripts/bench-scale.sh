#!/usr/bin/env bash
# Scale: start-up time with KEYS keys versus 10 keys in the sled store
# (alternating, ROUNDS times each), server RSS while `tresor bench` keeps 64
# Encrypts in flight over all KEYS keys (mostly cold: every request may miss
# the DEK cache), and the latency of Encrypt on cold keys versus one hot key
# at 1 in flight.
# Usage: crates/tresor-bench/scripts/bench-scale.sh [KEYS] [ROUNDS] [CACHE_DIR]
# The populated keystores are kept in CACHE_DIR (default /tmp/tresor-scale)
# because creating 1,000,000 keys durably takes several minutes.
set -euo pipefail
KEYS=${1:-1000000}
ROUNDS=${2:-3}
CACHE=${3:-/tmp/tresor-scale}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
cargo build --release --locked --quiet --example populate_keystore

mkdir -p "$CACHE"
[ -f "$CACHE/master.key" ] || $B master-key generate --out "$CACHE/master.key" >/dev/null
SCALE=(--tls-cert "$T/server/cert.pem" --tls-key "$T/server/key.pem" --client-ca "$T/ca/ca.pem"
       --master-key-file "$CACHE/master.key" --admin spiffe://bench/admin)
populate() { # DIR COUNT
    if [ ! -f "$1.populated-$2" ]; then
        echo "populating $1 with $2 keys (once; kept in $CACHE)"
        target/release/examples/populate_keystore "$1" "$CACHE/master.key" "$2" spiffe://bench/billing scale
        touch "$1.populated-$2"
    fi
}
populate "$CACHE/big-$KEYS" "$KEYS"
populate "$CACHE/small" 10
echo "keystore sizes: $(du -sh "$CACHE/big-$KEYS" | cut -f1) ($KEYS keys), $(du -sh "$CACHE/small" | cut -f1) (10 keys)"

# Seconds from spawning `tresor serve` until its gRPC port accepts (it binds
# only after opening the keystore and unwrapping the root key), polled every
# 2 ms; then the server is stopped.
startup() { # DATA_DIR PORT
    python3 - "$B" "$1" "$2" "${SCALE[@]}" <<'PY'
import socket, subprocess, sys, time
b, data, port, flags = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
start = time.monotonic()
p = subprocess.Popen([b, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, *flags],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=0.1).close()
        break
    except OSError:
        if p.poll() is not None:
            sys.exit("server exited during start-up")
        time.sleep(0.002)
print(f"{time.monotonic() - start:.3f}")
p.terminate(); p.wait()
PY
}
BIG=(); SMALL=()
for round in $(seq "$ROUNDS"); do
    BIG+=("$(startup "$CACHE/big-$KEYS" 17711)")
    SMALL+=("$(startup "$CACHE/small" 17712)")
    echo "round $round: start-up with $KEYS keys ${BIG[-1]} s, with 10 keys ${SMALL[-1]} s"
done
python3 - "${BIG[*]}" "${SMALL[*]}" <<'PY'
import sys, statistics
big = [float(x) for x in sys.argv[1].split()]
small = [float(x) for x in sys.argv[2].split()]
print(f"start-up median: {statistics.median(big):.3f} s with many keys, {statistics.median(small):.3f} s with 10; ratio {statistics.median(big) / statistics.median(small):.2f}")
PY

# RSS under load over every key, then cold versus hot latency at 1 in flight.
$B serve --listen 127.0.0.1:17713 --data-dir "$CACHE/big-$KEYS" "${SCALE[@]}" & SERVER=$!; PIDS+=($SERVER)
wait_up 17713
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
echo "server RSS after start-up: $(( $(rss) / 1024 )) MiB"
( while kill -0 $SERVER 2>/dev/null; do rss; sleep 0.5; done ) > "$T/rss.txt" &
as_billing --addr https://localhost:17713 bench --key-prefix scale --keys "$KEYS" \
    --concurrency 64 --payload 1024 --duration 20s --warmup 2s
echo "server RSS under 64 in flight over $KEYS keys: max $(( $(sort -n "$T/rss.txt" | tail -1) / 1024 )) MiB; peak (VmHWM) $(( $(awk '/^VmHWM/ {print $2}' "/proc/$SERVER/status") / 1024 )) MiB"
echo "cold keys (each request a key not used for a while), 1 in flight:"
as_billing --addr https://localhost:17713 bench --key-prefix scale --keys "$KEYS" \
    --concurrency 1 --payload 1024 --duration 10s --warmup 1s
echo "one hot key, 1 in flight:"
as_billing --addr https://localhost:17713 bench --key-id scale-0 \
    --concurrency 1 --payload 1024 --duration 10s --warmup 1s
