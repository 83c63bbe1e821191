#!/usr/bin/env bash
# tresor exec (issue 23): what opening an env file of VARS secrets costs a
# process start. Times RUNS starts of `tresor exec --env-file F -- true`
# against RUNS starts of `tresor exec -- true` with
# an empty env file (connect + TLS + process, no DecryptBatch) and of a
# bare `true`, in the same run; prints the median wall time of each.
# Usage: crates/tresor-bench/scripts/bench-exec.sh [VARS] [RUNS]
set -euo pipefail
VARS=${1:-50}
RUNS=${2:-50}
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

$B serve --listen 127.0.0.1:17526 --data-dir "$T/data" "${COMMON[@]}" & PIDS+=($!)
wait_up 17526
export TRESOR_ADDR=https://localhost:17526
as_admin key create bench/env --owner spiffe://bench/billing >/dev/null
for i in $(seq 1 "$VARS"); do echo "SECRET_$i='value-$i-$RANDOM$RANDOM'"; done >"$T/full.env"
: >"$T/empty.env"
as_billing env encrypt bench/env --context env=bench --in "$T/full.env" --out "$T/full.env.tresor" >/dev/null
as_billing env encrypt bench/env --context env=bench --in "$T/empty.env" --out "$T/empty.env.tresor" >/dev/null
export TRESOR_CERT=$T/billing/cert.pem TRESOR_KEY=$T/billing/key.pem
python3 - "$B" "$T" "$RUNS" "$VARS" <<'PY'
import statistics, subprocess, sys, time
b, t, runs, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cases = {
    f"tresor exec, {n} secrets": [b, "exec", "--env-file", f"{t}/full.env.tresor", "--", "true"],
    "tresor exec, no secret": [b, "exec", "--env-file", f"{t}/empty.env.tresor", "--", "true"],
    "true alone": ["true"],
}
times = {name: [] for name in cases}
for _ in range(runs):
    for name, argv in cases.items():  # interleaved, so noise hits all alike
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        times[name].append((time.perf_counter() - start) * 1000)
for name, samples in times.items():
    print(f"{name}: median {statistics.median(samples):.1f} ms, p90 {sorted(samples)[int(len(samples) * 0.9)]:.1f} ms")
PY
