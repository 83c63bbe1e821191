"""Protobuf messages generated from crates/tresor-proto/proto/tresor/v1/tresor.proto.

Do not edit: scripts/generate_stubs.sh writes these files, and
tests/test_stubs.py fails when they are stale.
"""
