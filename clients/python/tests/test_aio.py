"""The asyncio client against the real server: the same calls, typed errors and
envelope as the sync client, and many calls in flight on one channel."""

from __future__ import annotations

import asyncio
import io
import os
from typing import Callable

import pytest

import tresor
import tresor.aio
from tresor import DecryptItem, EncryptItem, KeyPurpose, MacItem, Operation, ReEncryptItem
from tresor_server import BILLING, SHIPPING, TresorServer

CTX = {"tenant": "42"}


def test_every_data_plane_call(server: TresorServer, new_key: Callable[..., str]) -> None:
    key, other, mac_key = new_key(), new_key(), new_key("py/aio-mac", purpose=KeyPurpose.MAC)

    async def calls() -> None:
        async with tresor.aio.Client(**server.client_args("billing")) as client:
            sealed = await client.encrypt(key, b"aio", CTX)
            assert (await client.decrypt(key, sealed.ciphertext, CTX)).plaintext == b"aio"
            again = await client.re_encrypt(key, sealed.ciphertext, CTX)
            moved = await client.re_encrypt_to(key, again.ciphertext, CTX, other, None)
            assert (await client.decrypt(other, moved.ciphertext)).plaintext == b"aio"
            dk = await client.generate_data_key(key, CTX)
            assert (await client.decrypt_data_key(key, dk.wrapped_key, CTX)).plaintext_key == (
                dk.plaintext_key
            )
            blind = await client.generate_data_key_without_plaintext(key, CTX, 16)
            assert (
                len((await client.decrypt_data_key(key, blind.wrapped_key, CTX)).plaintext_key)
                == 16
            )
            batch = await client.encrypt_batch(
                [EncryptItem(key, b"1", CTX), EncryptItem("py/x", b"")]
            )
            first = batch[0]
            assert isinstance(first, tresor.EncryptResult)
            assert isinstance(batch[1], tresor.PermissionDenied)
            opened = await client.decrypt_batch([DecryptItem(key, first.ciphertext, CTX)])
            assert isinstance(opened[0], tresor.DecryptResult) and opened[0].plaintext == b"1"
            re = await client.re_encrypt_batch([ReEncryptItem(key, first.ciphertext, CTX)])
            assert isinstance(re[0], tresor.EncryptResult)
            token = await client.mac(mac_key, b"m", CTX)
            assert (await client.verify_mac(mac_key, b"m", token.mac, CTX)).valid
            assert len(await client.mac_all_versions(mac_key, b"m", CTX)) == 1
            (item,) = await client.mac_batch([MacItem(mac_key, b"m", CTX)])
            assert isinstance(item, tresor.MacResult) and item.mac == token.mac
            with pytest.raises(tresor.InvalidCiphertext) as wrong:
                await client.decrypt(key, sealed.ciphertext, {"tenant": "43"})
            assert wrong.value.request_id

    asyncio.run(calls())


def test_the_envelope_and_admin_calls(server: TresorServer, new_key: Callable[..., str]) -> None:
    key = new_key()
    payload = os.urandom(300_000)

    async def calls() -> None:
        async with tresor.aio.Client(**server.client_args("billing")) as client:
            out = io.BytesIO()
            summary = await client.seal_stream(key, io.BytesIO(payload), out, CTX, 65536)
            assert summary.chunks == 5
            back = io.BytesIO()
            await client.open_stream([key], io.BytesIO(out.getvalue()), back, CTX)
            assert back.getvalue() == payload
            stream = await client.seal_bytes(key, b"small", CTX)
            assert await client.open_bytes(key, stream, CTX) == b"small"
            with pytest.raises(tresor.UnexpectedKey):
                await client.open_bytes("py/other", stream, CTX)
        async with tresor.aio.Client(**server.client_args("admin")) as admin:
            info = await admin.create_grant(key, SHIPPING, [Operation.DECRYPT])
            assert info.grants[0].grantee == SHIPPING
            assert key in [k.key_id for k in await admin.list_keys("py/")]
            assert len(await admin.create_backup()) > 100
            assert not (await admin.status()).sealed
            await admin.disable_key(key)
            async with tresor.aio.Client(**server.client_args("billing")) as client:
                with pytest.raises(tresor.KeyDisabled):
                    await client.encrypt(key, b"x")
            created = await admin.create_key(f"{key}-aio", BILLING)
            assert created.owner == BILLING

    asyncio.run(calls())


def test_many_calls_in_flight(server: TresorServer, new_key: Callable[..., str]) -> None:
    key = new_key()

    async def calls() -> None:
        async with tresor.aio.Client(**server.client_args("billing")) as client:
            results = await asyncio.gather(
                *(client.encrypt(key, b"%d" % i, {"i": str(i)}) for i in range(200))
            )
            opened = await asyncio.gather(
                *(client.decrypt(key, r.ciphertext, {"i": str(i)}) for i, r in enumerate(results))
            )
            assert [o.plaintext for o in opened] == [b"%d" % i for i in range(200)]

    asyncio.run(calls())
