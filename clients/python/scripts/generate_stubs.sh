#!/usr/bin/env bash
# Regenerates the committed protobuf stubs of the Python SDK from the
# contract, crates/tresor-proto/proto/tresor/v1/tresor.proto:
#   src/tresor/_generated/tresor_pb2.py   (messages)
#   src/tresor/_generated/tresor_pb2.pyi  (their types, for mypy)
# with the protoc bundled in grpcio-tools at exactly GRPCIO_TOOLS_VERSION, so
# the output is byte-for-byte reproducible (tests/test_stubs.py regenerates
# into a temporary folder and fails when the committed files differ).
#
# Usage: scripts/generate_stubs.sh [OUT_DIR]   (default: src/tresor/_generated)
# Needs: python3 with grpcio-tools==$GRPCIO_TOOLS_VERSION
#   (pip install -r requirements-dev.txt). Installing the package never runs
#   this: the stubs are committed, so `pip install` needs no protoc.
#
# The service stubs (_pb2_grpc.py) are not generated: the client calls each
# method by its path (src/tresor/_methods.py), which keeps typing and avoids
# a hard floor on the grpcio version.
set -euo pipefail

GRPCIO_TOOLS_VERSION=1.72.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
proto_dir="$repo/crates/tresor-proto/proto"
out="${1:-$here/src/tresor/_generated}"
python="${PYTHON:-python3}"

have="$("$python" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' 2>/dev/null || true)"
if [ "$have" != "$GRPCIO_TOOLS_VERSION" ]; then
    echo "generate_stubs.sh: needs grpcio-tools==$GRPCIO_TOOLS_VERSION for $python (found: ${have:-none});" >&2
    echo "  $python -m pip install grpcio-tools==$GRPCIO_TOOLS_VERSION" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m grpc_tools.protoc -I"$proto_dir" --python_out="$tmp" --pyi_out="$tmp" \
    "$proto_dir/tresor/v1/tresor.proto"
mkdir -p "$out"
cp "$tmp/tresor/v1/tresor_pb2.py" "$tmp/tresor/v1/tresor_pb2.pyi" "$out/"
