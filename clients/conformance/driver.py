#!/usr/bin/env python3
r"""Cross-language conformance of the stream envelope (docs/FORMAT.md section 10):
every SDK's sealer against every SDK's opener, for each payload size, against
a running tresor server. Standard library only.

Each SDK is given as NAME=COMMAND, a command prefix that understands the
flags of `tresor envelope`:

    COMMAND seal KEY_ID [--context K=V ...] [--chunk-size BYTES] --in FILE --out FILE
    COMMAND open --key-id KEY_ID [--context K=V ...] --in FILE --out FILE

exiting 0 on success and non-zero (a message on stderr) otherwise; the
connection comes from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT and TRESOR_KEY, which
the driver passes through. For example, from the repository root:

    python3 clients/conformance/driver.py --key-id billing/exports \\
        --sdk rust="target/debug/tresor envelope" \\
        --sdk python="python3 -m tresor.envelope_tool"

For every size (default: 0, 1, chunk-1, chunk, chunk+1 and 5 MiB), every
sealer seals a random payload once; every opener must open each stream to
exactly that payload, and must refuse (exit non-zero) the same stream with
one byte of its last chunk flipped, and the stream under another context.
The driver prints one line per check and a closing `N passed, M failed`; it
exits 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def parse_sdk(raw: str) -> tuple[str, list[str]]:
    """NAME=COMMAND into the name and the command's words."""
    name, sep, command = raw.partition("=")
    if not sep or not name or not command.strip():
        raise argparse.ArgumentTypeError(f"{raw!r} is not NAME=COMMAND")
    return name, shlex.split(command)


def run(command: list[str]) -> tuple[bool, str]:
    """Runs one SDK command; whether it exited 0, and its stderr's last line."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    return done.returncode == 0, lines[-1] if lines else ""


def context_flags(context: list[str]) -> list[str]:
    """--context flags for K=V pairs."""
    return [word for pair in context for word in ("--context", pair)]


def main(argv: list[str]) -> int:
    """Runs every check; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sdk",
        action="append",
        type=parse_sdk,
        required=True,
        metavar="NAME=COMMAND",
        help="an SDK's envelope command (repeatable)",
    )
    parser.add_argument("--key-id", required=True, help="the key to seal under")
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="K=V",
        help="the encryption context (repeatable; default tenant=conformance)",
    )
    parser.add_argument("--chunk-size", type=int, default=65536, metavar="BYTES")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        help="payload sizes, comma-separated (default: 0,1,C-1,C,C+1,5 MiB)",
    )
    args = parser.parse_args(argv)
    chunk = args.chunk_size
    sizes = args.sizes or [0, 1, chunk - 1, chunk, chunk + 1, 5 * MIB]
    context = args.context or ["tenant=conformance"]
    sdks = dict(args.sdk)
    passed = failed = 0

    def report(ok: bool, what: str, detail: str = "") -> None:
        nonlocal passed, failed
        passed, failed = passed + ok, failed + (not ok)
        tail = f": {detail}" if detail and not ok else ""
        print(f"{'ok  ' if ok else 'FAIL'} {what}{tail}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tresor-conformance-") as tmp:
        work = Path(tmp)
        for size in sizes:
            plain = work / f"plain-{size}"
            plain.write_bytes(os.urandom(size))
            digest = hashlib.sha256(plain.read_bytes()).digest()
            for sealer, seal_cmd in sdks.items():
                sealed = work / f"{sealer}-{size}.tre"
                started = time.monotonic()
                ok, err = run(
                    [
                        *seal_cmd,
                        "seal",
                        args.key_id,
                        *context_flags(context),
                        "--chunk-size",
                        str(chunk),
                        "--in",
                        str(plain),
                        "--out",
                        str(sealed),
                    ]
                )
                report(ok, f"{sealer} seals {size} bytes ({time.monotonic() - started:.2f}s)", err)
                if not ok:
                    continue
                tampered = work / f"{sealer}-{size}.tampered"
                data = bytearray(sealed.read_bytes())
                data[-1] ^= 1
                tampered.write_bytes(bytes(data))
                for opener, open_cmd in sdks.items():
                    out = work / f"{sealer}-{opener}-{size}.out"
                    base = [*open_cmd, "open", "--key-id", args.key_id]
                    ok, err = run(
                        [*base, *context_flags(context), "--in", str(sealed), "--out", str(out)]
                    )
                    same = ok and hashlib.sha256(out.read_bytes()).digest() == digest
                    report(
                        same,
                        f"{opener} opens {sealer}'s {size} bytes",
                        err or "the plaintext differs",
                    )
                    ok, _ = run(
                        [
                            *base,
                            *context_flags(context),
                            "--in",
                            str(tampered),
                            "--out",
                            str(out) + ".t",
                        ]
                    )
                    report(
                        not ok,
                        f"{opener} refuses {sealer}'s tampered {size} bytes",
                        "opened a tampered stream",
                    )
                    ok, _ = run(
                        [
                            *base,
                            "--context",
                            "tenant=another",
                            "--in",
                            str(sealed),
                            "--out",
                            str(out) + ".c",
                        ]
                    )
                    report(
                        not ok,
                        f"{opener} refuses {sealer}'s {size} bytes under another context",
                        "opened under the wrong context",
                    )
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
