"""Unit tests of the parts that need no server: typed errors from statuses,
the retry policy (the Rust SDK's tests, case for case), the data-key cache's
limits, the address and environment rules, and secrets kept out of repr."""

from __future__ import annotations

import time
from typing import Optional

import grpc
import pytest

import tresor
from tresor import errors
from tresor._connection import parse_address, settings_from_env
from tresor.data_key_cache import CachedDataKey, DataKeyCache, DataKeyCacheLimits
from tresor.retry import Idempotency, RetryPolicy

CODES = grpc.StatusCode


@pytest.mark.parametrize(
    ("reason", "code", "typed"),
    [
        ("KEY_DISABLED", CODES.FAILED_PRECONDITION, tresor.KeyDisabled),
        ("KEY_PENDING_DELETION", CODES.FAILED_PRECONDITION, tresor.KeyPendingDeletion),
        ("KEY_VERSION_BELOW_MINIMUM", CODES.FAILED_PRECONDITION, tresor.KeyVersionBelowMinimum),
        ("KEY_VERSION_DESTROYED", CODES.FAILED_PRECONDITION, tresor.KeyVersionDestroyed),
        ("WRONG_KEY_PURPOSE", CODES.FAILED_PRECONDITION, tresor.WrongKeyPurpose),
        ("INVALID_CIPHERTEXT", CODES.INVALID_ARGUMENT, tresor.InvalidCiphertext),
        ("WRAPPED_DATA_KEY", CODES.INVALID_ARGUMENT, tresor.WrappedDataKey),
        ("KEY_RECORD_TAMPERED", CODES.DATA_LOSS, tresor.KeyRecordTampered),
        ("SEALED", CODES.UNAVAILABLE, tresor.Sealed),
        ("KEYSTORE_UNAVAILABLE", CODES.UNAVAILABLE, tresor.Unavailable),
        ("AUDIT_UNAVAILABLE", CODES.UNAVAILABLE, tresor.Unavailable),
        ("RATE_LIMITED", CODES.RESOURCE_EXHAUSTED, tresor.RateLimited),
    ],
)
def test_every_reason_has_its_typed_error(
    reason: str, code: grpc.StatusCode, typed: type[tresor.TresorError]
) -> None:
    trailers = [("x-tresor-reason", reason), ("x-request-id", "req-1")]
    error = errors.from_status(code, "some message", trailers=trailers)
    assert type(error) is typed
    assert (error.code, error.reason, error.request_id) == (code, reason, "req-1")
    assert "req-1" in str(error)


def test_the_known_reasons_are_the_servers() -> None:
    assert len(errors.KNOWN_REASONS) == 12


def test_without_a_reason_the_code_decides_and_the_message_is_not_parsed() -> None:
    # A message that would read as a reason is ignored when metadata names one
    # this SDK does not know: only the code speaks then.
    unknown = errors.from_status(
        CODES.FAILED_PRECONDITION, "key is disabled", trailers=[("x-tresor-reason", "NEW")]
    )
    assert type(unknown) is tresor.KeyDisabled  # the Rust SDK falls back to the fixed message
    plain = errors.from_status(CODES.FAILED_PRECONDITION, "something else")
    assert type(plain) is tresor.FailedPrecondition
    for code, typed in [
        (CODES.PERMISSION_DENIED, tresor.PermissionDenied),
        (CODES.NOT_FOUND, tresor.NotFound),
        (CODES.ALREADY_EXISTS, tresor.AlreadyExists),
        (CODES.INVALID_ARGUMENT, tresor.InvalidArgument),
        (CODES.UNAUTHENTICATED, tresor.Unauthenticated),
        (CODES.RESOURCE_EXHAUSTED, tresor.ResourceExhausted),
        (CODES.INTERNAL, tresor.Internal),
        (CODES.ABORTED, tresor.OtherError),
        (CODES.UNAVAILABLE, tresor.ConnectError),
    ]:
        assert type(errors.from_status(code, "x")) is typed


def test_batch_items_are_typed_from_their_fixed_messages() -> None:
    error = errors.from_item_status(9, "key is disabled", "req-2")
    assert isinstance(error, tresor.KeyDisabled) and error.request_id == "req-2"
    assert isinstance(
        errors.from_item_status(3, "invalid ciphertext", None), tresor.InvalidCiphertext
    )
    assert isinstance(errors.from_item_status(14, "service is sealed", None), tresor.Sealed)


@pytest.mark.parametrize(
    ("detail", "hint"),
    [
        ("failed to connect to all addresses; Connection refused", "SERVER_NOT_RUNNING"),
        ("Ssl handshake failed: CERTIFICATE_VERIFY_FAILED", "WRONG_CA"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "MISSING_CLIENT_CERT"),
        ("TLSV1_ALERT_UNKNOWN_CA", "CLIENT_CERT_REJECTED"),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "CERTIFICATE_EXPIRED"),
        ("DNS resolution failed for nowhere.invalid", "BAD_ADDRESS"),
    ],
)
def test_transport_failures_get_a_hint(detail: str, hint: str) -> None:
    assert errors.ConnectHint.classify(detail, True).name == hint


def _refused() -> tresor.ConnectError:
    return tresor.ConnectError(
        "connection refused", endpoint="x", hint=errors.ConnectHint.SERVER_NOT_RUNNING
    )


def _quick(attempts: int) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, initial_backoff=0.001, max_backoff=0.004)


def _attempts(
    policy: RetryPolicy, idempotency: Idempotency, failures: list[tresor.TresorError]
) -> tuple[int, Optional[tresor.TresorError]]:
    calls = 0
    pending = iter(failures)

    def attempt() -> str:
        nonlocal calls
        calls += 1
        failure = next(pending, None)
        if failure is not None:
            raise failure
        return "ok"

    try:
        policy.run(idempotency, attempt)
    except tresor.TresorError as e:
        return calls, e
    return calls, None


def test_safe_calls_retry_transient_failures_until_they_pass() -> None:
    failures = [tresor.Sealed("sealed"), tresor.Unavailable("keystore unavailable"), _refused()]
    assert _attempts(_quick(4), Idempotency.SAFE, failures) == (4, None)


def test_attempts_are_bounded_and_none_disables_retries() -> None:
    calls, error = _attempts(_quick(3), Idempotency.SAFE, [tresor.Sealed("s")] * 10)
    assert calls == 3 and isinstance(error, tresor.Sealed)
    assert _attempts(RetryPolicy.none(), Idempotency.SAFE, [tresor.Sealed("s")])[0] == 1


def test_unsafe_calls_retry_only_when_nothing_was_done() -> None:
    assert _attempts(_quick(4), Idempotency.UNSAFE, [tresor.Sealed("s"), _refused()]) == (3, None)
    calls, error = _attempts(
        _quick(4), Idempotency.UNSAFE, [tresor.Unavailable("audit log unavailable")]
    )
    assert calls == 1 and isinstance(error, tresor.Unavailable)


def test_refusals_are_never_retried() -> None:
    for failure in [
        tresor.PermissionDenied("no"),
        tresor.KeyDisabled("disabled"),
        tresor.InvalidCiphertext("bad"),
        tresor.RateLimited("slow down"),
    ]:
        assert _attempts(_quick(4), Idempotency.SAFE, [failure])[0] == 1


def test_backoff_caps_double_up_to_the_maximum() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.05, max_backoff=0.3)
    assert [round(policy.cap(n), 3) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert all(0 <= policy.wait(3) <= 0.2 for _ in range(100))


def _key(version: int = 1) -> CachedDataKey:
    return CachedDataKey(bytes(32), bytes([version]) * 8, version)


def test_a_cached_key_serves_max_messages_then_a_new_one_is_needed() -> None:
    cache = DataKeyCache(DataKeyCacheLimits(max_messages=3))
    ctx = {"tenant": "a"}
    assert cache.take_sealing("k", ctx, 10) is None
    first = _key()
    cache.put_sealing("k", ctx, 10, first)
    assert cache.take_sealing("k", dict(reversed(list(ctx.items()))), 10) is first
    assert cache.take_sealing("k", ctx, 10) is first
    assert cache.take_sealing("k", ctx, 10) is None, "3 messages used"


def test_bytes_age_and_scope_bound_reuse() -> None:
    cache = DataKeyCache(DataKeyCacheLimits(max_bytes=100))
    ctx = {"tenant": "a"}
    cache.put_sealing("k", ctx, 60, _key())
    assert cache.take_sealing("k", {"tenant": "b"}, 1) is None, "other context"
    assert cache.take_sealing("other", ctx, 1) is None, "other key id"
    assert cache.take_sealing("k", ctx, 41) is None, "101 bytes in all"
    cache.put_sealing("k", ctx, 101, _key(2))
    assert cache.take_sealing("k", ctx, 1) is None, "over max_bytes alone: never cached"
    short = DataKeyCache(DataKeyCacheLimits(max_age=0.02))
    short.put_sealing("k", ctx, 1, _key())
    assert short.take_sealing("k", ctx, 1) is not None
    time.sleep(0.03)
    assert short.take_sealing("k", ctx, 1) is None, "expired"


def test_entries_are_bounded_least_recently_used_first_out() -> None:
    cache = DataKeyCache(DataKeyCacheLimits(max_entries=2))
    for tenant in "abc":
        cache.put_sealing("k", {"t": tenant}, 1, _key())
        cache.put_opening("k", {"t": tenant}, b"w", _key())
    assert cache.sizes() == (2, 2)
    assert cache.take_sealing("k", {"t": "a"}, 1) is None, "evicted"
    assert cache.take_sealing("k", {"t": "c"}, 1) is not None
    assert cache.get_opening("k", {"t": "a"}, b"w") is None
    assert cache.get_opening("k", {"t": "c"}, b"w") is not None
    assert cache.get_opening("k", {"t": "c"}, b"other") is None


def test_secrets_stay_out_of_repr() -> None:
    secret = b"\x13\x37" * 16
    values: list[object] = [
        tresor.DataKey(secret, b"wrapped", 1, "k"),
        tresor.DecryptedDataKey(secret, 1, "k"),
        tresor.DecryptResult(secret, 1, "k"),
        tresor.EncryptItem("k", secret),
        tresor.MacItem("k", secret),
        CachedDataKey(secret, b"wrapped", 1),
    ]
    for value in values:
        assert repr(secret) not in repr(value) and secret.hex() not in repr(value)


def test_addresses_are_read_as_the_cli_reads_them() -> None:
    assert parse_address("https://localhost:7443") == ("localhost:7443", "localhost")
    assert parse_address("tresor.internal:7443") == ("tresor.internal:7443", "tresor.internal")
    assert parse_address("https://[::1]:7443/") == ("[::1]:7443", "::1")
    for bad in ["http://localhost:7443", "localhost", "https://host:port", ""]:
        with pytest.raises(tresor.ConfigError):
            parse_address(bad)


def test_the_environment_is_read_as_the_cli_reads_it() -> None:
    env = {
        "TRESOR_ADDR": "https://h:1",
        "TRESOR_CA": "ca.pem",
        "TRESOR_CERT": "c",
        "TRESOR_KEY": "k",
    }
    assert settings_from_env(env) == {
        "addr": "https://h:1",
        "ca": "ca.pem",
        "cert": "c",
        "key": "k",
    }
    with pytest.raises(tresor.ConfigError, match="TRESOR_ADDR"):
        settings_from_env({"TRESOR_CA": "ca.pem"})
    with pytest.raises(tresor.ConfigError, match="TRESOR_CA"):
        settings_from_env({"TRESOR_ADDR": "h:1"})
    with pytest.raises(tresor.ConfigError, match=r"ca\.pem"):
        tresor.Client.from_env({"TRESOR_ADDR": "h:1", "TRESOR_CA": "/nonexistent/ca.pem"})
