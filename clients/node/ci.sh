#!/usr/bin/env bash
# CI for the TypeScript SDK (clients/node): install from the lockfile, type
# check, lint, build (ESM + CommonJS + declarations), then the tests, the live
# ones against target/debug/tresor (or $TRESOR_BIN) and the conformance
# driver. With CI set, a missing Node or tresor binary fails instead of
# skipping. Run from anywhere: bash clients/node/ci.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

unavailable() {
  if [[ -n "${CI:-}" ]]; then
    echo "clients/node/ci.sh: $1 (CI is set: failing, not skipping)" >&2
    exit 1
  fi
  echo "clients/node/ci.sh: $1: skipping the Node SDK's checks" >&2
  exit 0
}

command -v node >/dev/null 2>&1 || unavailable "node is not installed (Node 20+ is needed)"
command -v npm >/dev/null 2>&1 || unavailable "npm is not installed"
major="$(node -p 'process.versions.node.split(".")[0]')"
(( major >= 20 )) || unavailable "node $(node --version) is too old (Node 20+ is needed)"

export TRESOR_BIN="${TRESOR_BIN:-$repo/target/debug/tresor}"
if [[ ! -x "$TRESOR_BIN" ]]; then
  if [[ -n "${CI:-}" ]]; then
    echo "clients/node/ci.sh: the tresor binary is not at $TRESOR_BIN (cargo build; CI is set: failing)" >&2
    exit 1
  fi
  echo "clients/node/ci.sh: no tresor binary at $TRESOR_BIN: the live tests will skip" >&2
fi

npm ci --no-audit --no-fund
npx tsc --noEmit -p .
npx biome ci .
npx tsup
node --import tsx --test --test-concurrency=1 test/*.test.ts
