"""The asyncio client: `tresor.aio.Client`, on grpc.aio, with the same methods as
`tresor.Client` as coroutines.

    import tresor.aio

    async with tresor.aio.Client.from_env() as client:
        sealed = await client.encrypt("billing/records", b"hello", {"tenant": "42"})
"""

from __future__ import annotations

from ._client import Client

__all__ = ["Client"]
