"""Every RPC and every refusal the server can be brought to give, against a real
tresor server (conftest.py starts it): the sync client."""

from __future__ import annotations

import io
import os
import time
from typing import Callable

import pytest

import tresor
from tresor import EncryptItem, KeyPurpose, KeyState, Operation, RetryPolicy, _envelope
from tresor_server import ADMIN, BILLING, LIMITED, SHIPPING, TresorServer

CTX = {"tenant": "42", "table": "orders"}
NO_RETRY = RetryPolicy.none()


def test_data_plane_round_trips(billing: tresor.Client, new_key: Callable[..., str]) -> None:
    key = new_key()
    sealed = billing.encrypt(key, b"card 4111", CTX)
    assert (sealed.key_id, sealed.key_version) == (key, 1)
    opened = billing.decrypt(key, sealed.ciphertext, dict(reversed(list(CTX.items()))))
    assert (opened.plaintext, opened.key_version) == (b"card 4111", 1)
    assert "card 4111" not in repr(opened)

    again = billing.re_encrypt(key, sealed.ciphertext, CTX)
    assert again.ciphertext != sealed.ciphertext
    assert billing.decrypt(key, again.ciphertext, CTX).plaintext == b"card 4111"

    data_key = billing.generate_data_key(key, CTX)
    assert len(data_key.plaintext_key) == 32 and data_key.plaintext_key.hex() not in repr(data_key)
    unwrapped = billing.decrypt_data_key(key, data_key.wrapped_key, CTX)
    assert unwrapped.plaintext_key == data_key.plaintext_key
    short = billing.generate_data_key(key, CTX, key_bytes=16)
    assert len(short.plaintext_key) == 16
    blind = billing.generate_data_key_without_plaintext(key, CTX)
    assert len(billing.decrypt_data_key(key, blind.wrapped_key, CTX).plaintext_key) == 32


def test_key_moves_between_keys(billing: tresor.Client, new_key: Callable[..., str]) -> None:
    source, destination = new_key(), new_key()
    sealed = billing.encrypt(source, b"moving", CTX)
    moved = billing.re_encrypt_to(source, sealed.ciphertext, CTX, destination, {"new": "ctx"})
    assert moved.key_id == destination
    assert billing.decrypt(destination, moved.ciphertext, {"new": "ctx"}).plaintext == b"moving"


def test_batches_answer_each_item(billing: tresor.Client, new_key: Callable[..., str]) -> None:
    key = new_key()
    results = billing.encrypt_batch(
        [EncryptItem(key, b"one", CTX), EncryptItem("py/missing", b"two"), EncryptItem(key, b"3")]
    )
    assert isinstance(results[1], tresor.PermissionDenied) and results[1].request_id
    first, third = results[0], results[2]
    assert isinstance(first, tresor.EncryptResult) and isinstance(third, tresor.EncryptResult)
    opened = billing.decrypt_batch(
        [
            tresor.DecryptItem(key, first.ciphertext, CTX),
            tresor.DecryptItem(key, first.ciphertext, {"tenant": "43"}),
        ]
    )
    assert isinstance(opened[0], tresor.DecryptResult) and opened[0].plaintext == b"one"
    assert isinstance(opened[1], tresor.InvalidCiphertext)
    other = new_key()
    moved = billing.re_encrypt_batch(
        [
            tresor.ReEncryptItem(key, third.ciphertext, None),
            tresor.ReEncryptItem(key, third.ciphertext, None, other, {"to": "other"}),
        ]
    )
    assert [getattr(m, "key_id", None) for m in moved] == [key, other]
    assert billing.encrypt_batch([]) == []


def test_blind_index_calls(billing: tresor.Client, new_key: Callable[..., str]) -> None:
    key = new_key("py/mac", purpose=KeyPurpose.MAC)
    token = billing.mac(key, b"a@example.com", CTX)
    assert len(token.mac) > 32 and token.key_version == 1
    assert billing.verify_mac(key, b"a@example.com", token.mac, CTX).valid
    assert not billing.verify_mac(key, b"b@example.com", token.mac, CTX).valid
    short = billing.mac(key, b"a@example.com", CTX, truncate_bytes=8)
    assert billing.verify_mac(key, b"a@example.com", short.mac, CTX, truncate_bytes=8).valid
    assert [t.mac for t in billing.mac_all_versions(key, b"a@example.com", CTX)] == [token.mac]
    batch = billing.mac_batch(
        [tresor.MacItem(key, b"a@example.com", CTX), tresor.MacItem(key, b"x")]
    )
    assert isinstance(batch[0], tresor.MacResult) and batch[0].mac == token.mac
    with pytest.raises(tresor.WrongKeyPurpose) as wrong:
        billing.encrypt(key, b"x")
    assert wrong.value.reason == "WRONG_KEY_PURPOSE"


def test_key_lifecycle_and_metadata(admin: tresor.Client, billing: tresor.Client) -> None:
    key = f"py/life-{time.monotonic_ns()}"
    info = admin.create_key(
        key, BILLING, "first", rotation_period_seconds=7200, labels={"team": "billing"}
    )
    assert (info.state, info.purpose, info.primary_version) == (
        KeyState.ENABLED,
        KeyPurpose.ENCRYPT_DECRYPT,
        1,
    )
    assert (info.rotation_period_seconds, dict(info.labels)) == (7200, {"team": "billing"})
    assert admin.rotate_key(key).primary_version == 2
    assert admin.get_key(key).versions[1].version == 2
    assert admin.set_rotation_period(key, None).rotation_period_seconds == 0
    assert admin.update_key_description(key, "second").description == "second"
    assert dict(admin.set_key_labels(key, {"team": "x", "env": "test"}).labels) == {
        "team": "x",
        "env": "test",
    }
    assert key in [k.key_id for k in admin.list_keys("py/life-", {"env": "test"})]
    assert admin.list_keys("py/life-", {"env": "nope"}) == []
    page = admin.list_keys_page("py/", page_size=1)
    assert len(page.keys) == 1 and page.next_page_token
    assert admin.disable_key(key).state == KeyState.DISABLED
    assert admin.enable_key(key).state == KeyState.ENABLED
    assert admin.set_min_decryption_version(key, 2).min_decryption_version == 2
    destroyed = admin.destroy_key_version(key, 1)
    assert destroyed.versions[0].destroyed_at_unix > 0
    assert admin.schedule_key_deletion(key, 7).state == KeyState.PENDING_DELETION
    assert admin.cancel_key_deletion(key).state == KeyState.DISABLED
    assert admin.transfer_key_ownership(key, SHIPPING).owner == SHIPPING


def test_grants_with_conditions(
    admin: tresor.Client, billing: tresor.Client, server: TresorServer, new_key: Callable[..., str]
) -> None:
    key = new_key()
    expires = int(time.time()) + 3600
    info = admin.create_grant(
        key,
        SHIPPING,
        [Operation.ENCRYPT, Operation.DECRYPT],
        context_equals={"tenant": "7"},
        expires_at_unix=expires,
    )
    (grant,) = info.grants
    assert (grant.grantee, grant.operations) == (SHIPPING, (Operation.ENCRYPT, Operation.DECRYPT))
    assert (dict(grant.context_equals), grant.expires_at_unix, grant.expired) == (
        {"tenant": "7"},
        expires,
        False,
    )
    with tresor.Client(**server.client_args("shipping"), retry=NO_RETRY) as shipping:
        sealed = shipping.encrypt(key, b"x", {"tenant": "7"})
        assert shipping.decrypt(key, sealed.ciphertext, {"tenant": "7"}).plaintext == b"x"
        with pytest.raises(tresor.PermissionDenied):
            shipping.encrypt(key, b"x", {"tenant": "8"})
        admin.create_grant(key, SHIPPING, [Operation.ENCRYPT], context_subset={"region": "eu"})
        shipping.encrypt(key, b"x", {"region": "eu", "tenant": "9"})
        assert admin.revoke_grant(key, SHIPPING).grants == ()
        with pytest.raises(tresor.PermissionDenied):
            shipping.encrypt(key, b"x", {"tenant": "7"})


def test_aliases(admin: tresor.Client, billing: tresor.Client, new_key: Callable[..., str]) -> None:
    first, second = new_key(), new_key()
    alias = f"alias/py/{first.replace('/', '-')}"
    assert admin.create_alias(alias, first).key_id == first
    assert billing.encrypt(alias, b"via alias").key_id == first
    assert admin.update_alias(alias, second).key_id == second
    assert [a.key_id for a in admin.list_aliases(alias)] == [second]
    with pytest.raises(tresor.AlreadyExists):
        admin.create_alias(alias, first)
    admin.delete_alias(alias)
    assert admin.list_aliases(alias) == []
    with pytest.raises(tresor.NotFound):
        admin.delete_alias(alias)


def test_role_bindings(admin: tresor.Client) -> None:
    identity = f"spiffe://tresor.test/auditor-{time.monotonic_ns()}"
    binding = admin.add_role_binding("auditor", identity)
    assert (binding.role, binding.identity, binding.created_by) == ("auditor", identity, ADMIN)
    assert ("auditor", identity) in [(b.role, b.identity) for b in admin.list_role_bindings()]
    admin.remove_role_binding("auditor", identity)
    assert identity not in [b.identity for b in admin.list_role_bindings()]
    with pytest.raises(tresor.NotFound):
        admin.remove_role_binding("auditor", identity)


def test_server_wide_calls(admin: tresor.Client) -> None:
    status = admin.status()
    assert not status.sealed and status.server_certificate is not None
    assert status.server_certificate.subject == "CN=localhost"
    assert admin.rotate_master_key().startswith("file:")
    assert admin.rotate_root_key().root_key_generation >= 2
    report = admin.verify_audit_log()
    assert report.intact and report.records > 0
    backup = admin.create_backup()
    assert len(backup) > 100


def test_refusals_are_typed_with_code_reason_and_request_id(
    admin: tresor.Client, billing: tresor.Client, server: TresorServer, new_key: Callable[..., str]
) -> None:
    key = new_key()
    sealed = billing.encrypt(key, b"secret", CTX)
    with pytest.raises(tresor.InvalidCiphertext) as wrong_context:
        billing.decrypt(key, sealed.ciphertext, {"tenant": "43"})
    error = wrong_context.value
    assert error.reason == "INVALID_CIPHERTEXT" and error.request_id
    assert error.code is not None and error.code.name == "INVALID_ARGUMENT"
    assert isinstance(error, tresor.InvalidArgument)

    data_key = billing.generate_data_key(key, CTX)
    with pytest.raises(tresor.WrappedDataKey):
        billing.decrypt(key, data_key.wrapped_key, CTX)
    with pytest.raises(tresor.InvalidCiphertext):
        billing.decrypt_data_key(key, sealed.ciphertext, CTX)
    with pytest.raises(tresor.NotFound):
        admin.get_key("py/does-not-exist")
    with pytest.raises(tresor.PermissionDenied):
        billing.encrypt("py/does-not-exist", b"x")
    with pytest.raises(tresor.AlreadyExists):
        admin.create_key(key, BILLING)
    with pytest.raises(tresor.InvalidArgument):
        admin.create_key("/not a key id", BILLING)
    with pytest.raises(tresor.PermissionDenied):
        admin.encrypt(key, b"admins get no data-plane use")

    admin.disable_key(key)
    with pytest.raises(tresor.KeyDisabled) as disabled:
        billing.encrypt(key, b"x")
    assert disabled.value.reason == "KEY_DISABLED"
    admin.enable_key(key)

    admin.rotate_key(key)
    admin.set_min_decryption_version(key, 2)
    with pytest.raises(tresor.KeyVersionBelowMinimum):
        billing.decrypt(key, sealed.ciphertext, CTX)
    admin.destroy_key_version(key, 1)
    with pytest.raises(tresor.KeyVersionDestroyed):
        billing.decrypt(key, sealed.ciphertext, CTX)

    admin.schedule_key_deletion(key)
    with pytest.raises(tresor.KeyPendingDeletion):
        billing.encrypt(key, b"x")


def test_a_sealed_server_refuses_with_sealed_and_retries_wait_for_it(
    admin: tresor.Client, billing: tresor.Client, new_key: Callable[..., str]
) -> None:
    key = new_key()
    assert admin.seal().sealed
    try:
        with pytest.raises(tresor.Sealed) as sealed:
            billing.with_retry_policy(NO_RETRY).encrypt(key, b"x")
        assert sealed.value.reason == "SEALED" and sealed.value.request_id
        # Four attempts with backoff, then the last error.
        started = time.monotonic()
        with pytest.raises(tresor.Sealed):
            billing.with_retry_policy(RetryPolicy(4, 0.05, 0.05)).encrypt(key, b"x")
        assert time.monotonic() - started < 2
    finally:
        assert not admin.unseal().sealed
    assert billing.encrypt(key, b"x").key_version == 1


def test_the_rate_limit_is_rate_limited(admin: tresor.Client, server: TresorServer) -> None:
    key = f"py/limited-{time.monotonic_ns()}"
    admin.create_key(key, LIMITED)
    with tresor.Client(**server.client_args("limited"), retry=NO_RETRY) as limited:
        with pytest.raises(tresor.RateLimited) as limit:
            for _ in range(50):
                limited.encrypt(key, b"x")
    assert limit.value.reason == "RATE_LIMITED" and isinstance(
        limit.value, tresor.ResourceExhausted
    )


def test_connection_failures_say_what_to_check(server: TresorServer, tmp_path: object) -> None:
    args = server.client_args("billing")
    closed = dict(args, addr="https://localhost:1")
    with tresor.Client(**closed, retry=RetryPolicy(2, 0.01, 0.01)) as client:
        with pytest.raises(tresor.ConnectError) as refused:
            client.status()
    assert refused.value.hint is tresor.ConnectHint.SERVER_NOT_RUNNING
    other_ca = os.path.join(server.dir, "billing", "cert.pem")  # a certificate, not the CA
    with tresor.Client(**dict(args, ca=other_ca), retry=NO_RETRY) as client:
        with pytest.raises(tresor.ConnectError) as wrong_ca:
            client.status()
    assert wrong_ca.value.hint is tresor.ConnectHint.WRONG_CA
    with tresor.Client(server.addr, ca=server.ca, retry=NO_RETRY) as anonymous:
        with pytest.raises(tresor.ConnectError) as no_cert:
            anonymous.status()
    assert no_cert.value.hint is tresor.ConnectHint.MISSING_CLIENT_CERT
    with pytest.raises(tresor.ConfigError, match="does not belong"):
        cert, _ = server.cert("billing")
        _, other_key = server.cert("shipping")
        tresor.Client(server.addr, ca=server.ca, cert=cert, key=other_key)


def test_from_env_reads_what_the_cli_reads(
    server: TresorServer, monkeypatch: pytest.MonkeyPatch, new_key: Callable[..., str]
) -> None:
    for name, value in server.env("billing").items():
        monkeypatch.setenv(name, value)
    with tresor.Client.from_env() as client:
        assert client.encrypt(new_key(), b"x").key_version == 1


def test_renewed_certificate_files_are_used_for_new_connections(
    server: TresorServer, new_key: Callable[..., str], tmp_path: os.PathLike[str]
) -> None:
    key = new_key()
    cert, key_file = os.path.join(tmp_path, "cert.pem"), os.path.join(tmp_path, "key.pem")

    def install(name: str) -> None:
        src_cert, src_key = server.cert(name)
        for src, dst in ((src_cert, cert), (src_key, key_file)):
            with open(src, "rb") as f, open(dst + ".new", "wb") as g:
                g.write(f.read())
            os.replace(dst + ".new", dst)

    install("billing")
    with tresor.Client(
        server.addr, ca=server.ca, cert=cert, key=key_file, retry=NO_RETRY, reload_interval=0
    ) as client:
        client.encrypt(key, b"as billing")
        install("shipping")  # the "renewal" names another identity, so the switch shows
        with pytest.raises(tresor.PermissionDenied):
            client.encrypt(key, b"as shipping")
        with open(cert, "wb") as f:
            f.write(b"half-written")  # a set that does not load is refused
        with pytest.raises(tresor.PermissionDenied):
            client.encrypt(key, b"still shipping")


def test_envelope_round_trips_and_refuses(
    billing: tresor.Client, server: TresorServer, new_key: Callable[..., str]
) -> None:
    key, other = new_key(), new_key()
    payload = os.urandom(200_000)
    stream = billing.seal_bytes(key, payload, CTX, chunk_size=4096)
    assert billing.open_bytes(key, stream, CTX) == payload
    assert billing.open_bytes([other, key], stream, CTX) == payload
    out = io.BytesIO()
    summary = billing.seal_stream(key, io.BytesIO(payload), out, CTX)
    assert (summary.bytes_in, summary.bytes_out, summary.chunks) == (
        200_000,
        len(out.getvalue()),
        4,
    )
    with pytest.raises(tresor.UnexpectedKey) as unexpected:
        billing.open_bytes(other, stream, CTX)
    assert unexpected.value.found == key
    with pytest.raises(tresor.UnauthenticStream):
        billing.open_bytes(key, stream, {"tenant": "43"})
    tampered = bytearray(stream)
    tampered[-1] ^= 1
    with pytest.raises(tresor.UnauthenticStream):
        billing.open_bytes(key, bytes(tampered), CTX)
    with pytest.raises(tresor.MalformedStream):
        billing.open_bytes(key, b"TRSX" + stream[4:], CTX)
    with tresor.Client(**server.client_args("shipping"), retry=NO_RETRY) as shipping:
        with pytest.raises(tresor.PermissionDenied):
            shipping.open_bytes(key, stream, CTX)


def test_legacy_streams_open_only_when_accepted(
    billing: tresor.Client, new_key: Callable[..., str]
) -> None:
    key = new_key()
    data_key = os.urandom(32)
    wrapped = billing.encrypt(key, data_key, CTX).ciphertext  # what version 1 wrapped keys are
    out = io.BytesIO()
    _envelope.seal(data_key, key, wrapped, 1, CTX, io.BytesIO(b"old data"), out, version=1)
    with pytest.raises(tresor.LegacyStream):
        billing.open_bytes(key, out.getvalue(), CTX)
    assert billing.accepting_legacy_streams().open_bytes(key, out.getvalue(), CTX) == b"old data"


def test_the_data_key_cache_reuses_within_its_limits(
    server: TresorServer, new_key: Callable[..., str]
) -> None:
    key = new_key()
    limits = tresor.DataKeyCacheLimits(max_messages=2)
    with tresor.Client(**server.client_args("billing"), data_key_cache=limits) as client:
        streams = [client.seal_bytes(key, b"m%d" % i, CTX) for i in range(3)]
        wrapped = [_envelope.read_header(io.BytesIO(s)).wrapped_key for s in streams]
        assert wrapped[0] == wrapped[1] != wrapped[2]
        assert client.seal_bytes(key, b"x", {"other": "ctx"}) != streams[2]
        assert [client.open_bytes(key, s, CTX) for s in streams] == [b"m0", b"m1", b"m2"]
        assert client.data_key_cache is not None and client.data_key_cache.sizes() == (2, 2)
    with tresor.Client(**server.client_args("billing")) as plain:
        first, second = (plain.seal_bytes(key, b"x", CTX) for _ in range(2))
        assert (
            _envelope.read_header(io.BytesIO(first)).wrapped_key
            != _envelope.read_header(io.BytesIO(second)).wrapped_key
        )
