# Shared set-up of the benchmark scripts (sourced): builds the release
# binary, makes a temporary directory $T with a CA, a server certificate,
# an admin and a billing client and a master key, and defines:
#   $B          the tresor binary
#   COMMON      the serve flags every server here uses
#   PIDS        servers to kill on exit (append to it)
#   wait_up P   waits until 127.0.0.1:P accepts connections
#   as_admin / as_billing   run the CLI with that identity
# A script may define extra_cleanup, run on exit before $T is removed.
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
cargo build --release --locked --quiet
T=$(mktemp -d /tmp/tresor-bench.XXXXXX)
chmod 755 "$T"
B=$PWD/target/release/tresor
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
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
