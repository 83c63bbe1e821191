"""Shared fixtures: one real tresor server for the session, and clients of it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Callable

import pytest

import tresor
from tresor_server import BILLING, LIMITED, TresorServer

_ids = itertools.count()


@pytest.fixture(scope="session")
def server() -> Iterator[TresorServer]:
    """A tresor server; `limited` may make 3 data-plane calls a second."""
    srv = TresorServer("--rate-limit", f"{LIMITED}=3/s")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def admin(server: TresorServer) -> Iterator[tresor.Client]:
    """The admin's client."""
    with tresor.Client(**server.client_args("admin")) as client:
        yield client


@pytest.fixture(scope="session")
def billing(server: TresorServer) -> Iterator[tresor.Client]:
    """The client of billing, which owns the keys the tests make."""
    with tresor.Client(**server.client_args("billing")) as client:
        yield client


@pytest.fixture
def new_key(admin: tresor.Client) -> Callable[..., str]:
    """Makes a fresh key owned by billing; returns its id."""

    def make(prefix: str = "py/test", owner: str = BILLING, **options: object) -> str:
        key_id = f"{prefix}-{next(_ids)}"
        admin.create_key(key_id, owner, "made by the Python SDK tests", **options)  # type: ignore[arg-type]
        return key_id

    return make
