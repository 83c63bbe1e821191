#!/usr/bin/env python3
"""A tresor client in Python, written from crates/tresor-proto/proto/tresor/v1/tresor.proto alone.

It generates the gRPC stubs from the proto with grpcio-tools into a
temporary folder (nothing generated is kept), then walks through the life of
a key over mutual TLS:

  1. create a key                       (as the admin)
  2. encrypt with an encryption context (as the service that owns the key)
  3. decrypt it
  4. decrypt with another context       -> INVALID_ARGUMENT
  5. encrypt as the admin               -> PERMISSION_DENIED (no data-plane use)
  6. rotate the key                     (as the admin)
  7. encrypt again                      -> key version 2
  8. decrypt the version-1 ciphertext   -> still opens

Every step prints one line; the script exits 0 when all pass, 1 on the first
failure (2 for a usage error). Plaintexts and key material are never printed.

    python3 -m pip install grpcio grpcio-tools
    python3 examples/python/client.py --help
"""

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc

# The proto crate's proto folder in this repository.
DEFAULT_PROTO_DIR = Path(__file__).resolve().parents[2] / "crates" / "tresor-proto" / "proto"
PROTO_FILE = "tresor/v1/tresor.proto"
TOTAL_STEPS = 8


class StepFailed(Exception):
    """A step did not get what the contract promises."""


def generate_stubs(proto_dir, out_dir):
    """Runs protoc from grpcio-tools; returns the tresor_pb2 and _grpc modules."""
    command = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(Path(proto_dir) / PROTO_FILE),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise StepFailed(f"grpc_tools.protoc failed on {proto_dir}/{PROTO_FILE}:\n{result.stderr}")
    sys.path.insert(0, str(out_dir))
    from tresor.v1 import tresor_pb2, tresor_pb2_grpc  # generated just now

    return tresor_pb2, tresor_pb2_grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def channel(args, cert, key):
    """An mTLS channel presenting the client certificate `cert`."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(key),
        certificate_chain=read(cert),
    )
    ch = grpc.secure_channel(args.addr, credentials)
    try:
        grpc.channel_ready_future(ch).result(timeout=args.timeout)
    except grpc.FutureTimeoutError:
        raise StepFailed(
            f"cannot connect to {args.addr} within {args.timeout}s: is the server running, "
            f"and does {args.ca} sign its certificate?"
        ) from None
    return ch


class Steps:
    """Runs numbered steps, each sending its own x-request-id."""

    def __init__(self):
        self.number = 0

    def call(self, method, request):
        """Calls `method` with a request id; checks the server echoes it back."""
        request_id = f"python-example-{self.number}-{secrets.token_hex(4)}"
        response, call = method.with_call(
            request, metadata=(("x-request-id", request_id),)
        )
        echoed = dict(call.initial_metadata()).get("x-request-id")
        if echoed != request_id:
            raise StepFailed(f"the server answered x-request-id {echoed!r}, sent {request_id!r}")
        return response

    def refused(self, method, request, code):
        """Calls `method` and expects it to fail with `code`; returns the message."""
        try:
            method(request)
        except grpc.RpcError as err:
            if err.code() != code:
                raise StepFailed(f"expected {code.name}, got {err.code().name}: {err.details()}")
            return err.details()
        raise StepFailed(f"expected {code.name}, but the call succeeded")

    def run(self, title, action):
        self.number += 1
        prefix = f"step {self.number}/{TOTAL_STEPS}: {title}"
        try:
            outcome = action()
        except grpc.RpcError as err:
            print(f"{prefix} ... FAILED: {err.code().name}: {err.details()}", flush=True)
            raise StepFailed(title) from None
        except StepFailed as err:
            print(f"{prefix} ... FAILED: {err}", flush=True)
            raise StepFailed(title) from None
        print(f"{prefix} ... ok ({outcome})", flush=True)


def expect(condition, what):
    if not condition:
        raise StepFailed(what)


def walk_through(args, pb, pb_grpc):
    admin_ch = channel(args, args.admin_cert, args.admin_key)
    service_ch = channel(args, args.service_cert, args.service_key)
    admin = pb_grpc.AdminStub(admin_ch)
    admin_crypto = pb_grpc.CryptoStub(admin_ch)
    crypto = pb_grpc.CryptoStub(service_ch)
    key_id = args.key_id
    context = {"tenant": "42", "purpose": "python-example"}
    plaintext = b"card 4111, written by the python example"
    steps = Steps()
    saved = {}

    def create():
        info = steps.call(admin.CreateKey, pb.CreateKeyRequest(
            key_id=key_id, owner=args.owner, description="created by examples/python/client.py"))
        expect(info.primary_version == 1, f"primary version {info.primary_version}, expected 1")
        expect(info.owner == args.owner, f"owner {info.owner!r}, expected {args.owner!r}")
        expect(info.state == pb.KEY_STATE_ENABLED, f"state {pb.KeyState.Name(info.state)}")
        return f"version 1, owner {info.owner}"

    def encrypt(expected_version, name):
        def action():
            resp = steps.call(crypto.Encrypt, pb.EncryptRequest(
                key_id=key_id, plaintext=plaintext, context=context))
            expect(resp.key_version == expected_version,
                   f"key version {resp.key_version}, expected {expected_version}")
            saved[name] = resp.ciphertext
            return f"key version {resp.key_version}, {len(resp.ciphertext)} bytes of ciphertext"
        return action

    def decrypt(name, expected_version):
        def action():
            resp = steps.call(crypto.Decrypt, pb.DecryptRequest(
                key_id=key_id, ciphertext=saved[name], context=context))
            expect(resp.plaintext == plaintext, "the plaintext differs from the one encrypted")
            expect(resp.key_version == expected_version,
                   f"key version {resp.key_version}, expected {expected_version}")
            return f"key version {resp.key_version}, plaintext matches"
        return action

    def wrong_context():
        other = dict(context, tenant="43")
        steps.refused(crypto.Decrypt, pb.DecryptRequest(
            key_id=key_id, ciphertext=saved["v1"], context=other), grpc.StatusCode.INVALID_ARGUMENT)
        return "INVALID_ARGUMENT as expected"

    def admin_encrypts():
        steps.refused(admin_crypto.Encrypt, pb.EncryptRequest(
            key_id=key_id, plaintext=b"x", context=context), grpc.StatusCode.PERMISSION_DENIED)
        return "PERMISSION_DENIED as expected"

    def rotate():
        info = steps.call(admin.RotateKey, pb.KeyRequest(key_id=key_id))
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
    admin_ch.close()
    service_ch.close()


def parse_args(argv):
    dev = Path(".tresor-dev")
    parser = argparse.ArgumentParser(
        description="Walk a key through create, encrypt, decrypt and rotate on a tresor server. "
                    "Defaults fit `tresor dev` run from the repository root.")
    parser.add_argument("--addr", default="localhost:7443",
                        help="HOST:PORT of the server; HOST must match its certificate (default %(default)s)")
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
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR,
                        help="folder holding tresor/v1/tresor.proto (default: this repository's crates/tresor-proto/proto/)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a connection")
    args = parser.parse_args(argv)
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


def main(argv):
    args = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="tresor-stubs-") as out_dir:
            pb, pb_grpc = generate_stubs(args.proto_dir, out_dir)
            print(f"generated stubs from {Path(args.proto_dir) / PROTO_FILE}", flush=True)
            walk_through(args, pb, pb_grpc)
    except StepFailed as err:
        print(f"FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    print(f"all {TOTAL_STEPS} steps passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
