"""The committed protobuf stubs are what scripts/generate_stubs.sh makes from the
proto today, and the clients' method table covers the proto's every RPC."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tresor
import tresor.aio
from tresor import _methods
from tresor._generated import tresor_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
PINNED = "1.72.1"


def test_the_committed_stubs_are_fresh(tmp_path: Path) -> None:
    try:
        have = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        have = None
    if have != PINNED:
        reason = f"needs grpcio-tools=={PINNED} (found {have}): pip install -r requirements-dev.txt"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    env = dict(os.environ, PYTHON=os.environ.get("PYTHON", sys.executable))
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "generate_stubs.sh"), str(tmp_path)], check=True, env=env
    )
    for name in ("tresor_pb2.py", "tresor_pb2.pyi"):
        fresh = (tmp_path / name).read_bytes()
        committed = (ROOT / "src" / "tresor" / "_generated" / name).read_bytes()
        assert fresh == committed, f"{name} is stale: run scripts/generate_stubs.sh"


def test_every_rpc_of_the_proto_has_its_method() -> None:
    ours = {m.path: m for m in _methods.ALL}
    theirs = {}
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            theirs[f"/{service.full_name}/{method.name}"] = method
    assert sorted(ours) == sorted(theirs)
    for path, method in theirs.items():
        mine = ours[path]
        assert mine.request_type.DESCRIPTOR.full_name == method.input_type.full_name, path
        assert mine.response_type.DESCRIPTOR.full_name == method.output_type.full_name, path
        assert mine.server_streaming == method.server_streaming, path


def test_the_sync_and_asyncio_clients_have_the_same_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    sync, aio = public(tresor.Client), public(tresor.aio.Client)
    assert sorted(sync) == sorted(aio)
    for name, signature in sync.items():
        assert list(signature.parameters) == list(aio[name].parameters), name
        assert inspect.iscoroutinefunction(getattr(tresor.aio.Client, name)) != (
            name in {"with_retry_policy", "accepting_legacy_streams", "from_env"}
        ), name
