#!/usr/bin/env python3
"""A tresor client in Python, with the SDK in clients/python (package tresor-client).

Walks a new key through its life over mutual TLS:

  1. create a key                       (as the admin)
  2. encrypt with an encryption context (as the service that owns the key)
  3. decrypt it
  4. decrypt with another context       -> tresor.InvalidCiphertext (INVALID_ARGUMENT)
  5. encrypt as the admin               -> tresor.PermissionDenied (no data-plane use)
  6. rotate the key                     (as the admin)
  7. encrypt again                      -> key version 2
  8. decrypt the version-1 ciphertext   -> still opens

Every step prints one line; the script exits 0 when all pass, 1 on the first
failure (2 for a usage error). Plaintexts and key material are never printed.

    python3 -m pip install ./clients/python
    python3 examples/python/client.py --help

Run from a checkout without installing, it uses clients/python/src (which then
needs grpcio, protobuf and cryptography installed).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Callable

try:
    import tresor
except ImportError:  # not installed: the SDK of this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
    import tresor

TOTAL_STEPS = 8


class StepFailed(Exception):
    """A step did not get what the contract promises."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StepFailed(what)


class Steps:
    """Runs numbered steps, one line each."""

    def __init__(self) -> None:
        self.number = 0

    def run(self, title: str, action: Callable[[], str]) -> None:
        self.number += 1
        prefix = f"step {self.number}/{TOTAL_STEPS}: {title}"
        try:
            outcome = action()
        except tresor.TresorError as err:
            code = err.code.name if err.code else type(err).__name__
            print(f"{prefix} ... FAILED: {code}: {err}", flush=True)
            raise StepFailed(title) from None
        except StepFailed as err:
            print(f"{prefix} ... FAILED: {err}", flush=True)
            raise StepFailed(title) from None
        print(f"{prefix} ... ok ({outcome})", flush=True)


def refused(action: Callable[[], object], error: type[tresor.TresorError]) -> str:
    """Runs `action`, which must raise `error`; returns its status code's name."""
    try:
        action()
    except error as err:
        return err.code.name if err.code else type(err).__name__
    raise StepFailed(f"expected {error.__name__}, but the call succeeded")


def walk_through(args: argparse.Namespace, admin: tresor.Client, service: tresor.Client) -> None:
    key_id = args.key_id
    context = {"tenant": "42", "purpose": "python-example"}
    plaintext = b"card 4111, written by the python example"
    steps = Steps()
    saved: dict[str, bytes] = {}

    def create() -> str:
        info = admin.create_key(key_id, args.owner, "created by examples/python/client.py")
        expect(info.primary_version == 1, f"primary version {info.primary_version}, expected 1")
        expect(info.owner == args.owner, f"owner {info.owner!r}, expected {args.owner!r}")
        expect(info.state == tresor.KeyState.ENABLED, f"state {info.state.name}")
        return f"version 1, owner {info.owner}"

    def encrypt(expected_version: int, name: str) -> Callable[[], str]:
        def action() -> str:
            sealed = service.encrypt(key_id, plaintext, context)
            expect(
                sealed.key_version == expected_version,
                f"key version {sealed.key_version}, expected {expected_version}",
            )
            saved[name] = sealed.ciphertext
            return f"key version {sealed.key_version}, {len(sealed.ciphertext)} bytes of ciphertext"

        return action

    def decrypt(name: str, expected_version: int) -> Callable[[], str]:
        def action() -> str:
            opened = service.decrypt(key_id, saved[name], context)
            expect(opened.plaintext == plaintext, "the plaintext differs from the one encrypted")
            expect(
                opened.key_version == expected_version,
                f"key version {opened.key_version}, expected {expected_version}",
            )
            return f"key version {opened.key_version}, plaintext matches"

        return action

    def wrong_context() -> str:
        other = dict(context, tenant="43")
        code = refused(lambda: service.decrypt(key_id, saved["v1"], other), tresor.InvalidCiphertext)
        return f"{code} as expected"

    def admin_encrypts() -> str:
        code = refused(lambda: admin.encrypt(key_id, b"x", context), tresor.PermissionDenied)
        return f"{code} as expected"

    def rotate() -> str:
        info = admin.rotate_key(key_id)
        versions = [v.version for v in info.versions]
        expect(info.primary_version == 2, f"primary version {info.primary_version}, expected 2")
        expect(versions == [1, 2], f"versions {versions}, expected [1, 2]")
        return "primary version 2, versions [1, 2]"

    steps.run(f"create key {key_id} as the admin", create)
    steps.run("encrypt with a context as the owning service", encrypt(1, "v1"))
    steps.run("decrypt with the same context", decrypt("v1", 1))
    steps.run("decrypt with another context is refused", wrong_context)
    steps.run("encrypt as the admin is refused", admin_encrypts)
    steps.run("rotate the key as the admin", rotate)
    steps.run("encrypt again as the owning service", encrypt(2, "v2"))
    steps.run("decrypt the version-1 ciphertext", decrypt("v1", 1))


def parse_args(argv: list[str]) -> argparse.Namespace:
    dev = Path(".tresor-dev")
    parser = argparse.ArgumentParser(
        description="Walk a key through create, encrypt, decrypt and rotate on a tresor server. "
        "Defaults fit `tresor dev` run from the repository root."
    )
    parser.add_argument("--addr", default="localhost:7443",
                        help="[https://]HOST:PORT of the server; HOST must match its certificate")
    parser.add_argument("--ca", default=dev / "ca/ca.pem", help="CA that signed the server certificate")
    parser.add_argument("--admin-cert", default=dev / "admin/cert.pem", help="an admin's client certificate")
    parser.add_argument("--admin-key", default=dev / "admin/key.pem", help="its private key")
    parser.add_argument("--service-cert", default=dev / "billing/cert.pem",
                        help="the client certificate of the service that will own the key")
    parser.add_argument("--service-key", default=dev / "billing/key.pem", help="its private key")
    parser.add_argument("--owner", default="spiffe://tresor.dev/billing",
                        help="the identity in --service-cert (default %(default)s)")
    parser.add_argument("--key-id", default=None,
                        help="id of the key to create (default: example/python-RANDOM, new on every run)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds each call may take")
    args = parser.parse_args(argv)  # fmt: skip
    if args.key_id is None:
        args.key_id = f"example/python-{secrets.token_hex(4)}"
    for name in ("ca", "admin_cert", "admin_key", "service_cert", "service_key"):
        path = getattr(args, name)
        if not os.path.isfile(path):
            hint = ""
            if path == parser.get_default(name):
                hint = " (start `tresor dev` in this folder first, or pass the certificate flags)"
            parser.error(f"--{name.replace('_', '-')}: no such file: {path}{hint}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    common = {"ca": str(args.ca), "timeout": args.timeout, "retry": tresor.RetryPolicy.none()}
    try:
        with tresor.Client(
            args.addr, cert=str(args.admin_cert), key=str(args.admin_key), **common
        ) as admin, tresor.Client(
            args.addr, cert=str(args.service_cert), key=str(args.service_key), **common
        ) as service:
            walk_through(args, admin, service)
    except StepFailed as err:
        print(f"FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    except tresor.TresorError as err:
        print(f"FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    print(f"all {TOTAL_STEPS} steps passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
