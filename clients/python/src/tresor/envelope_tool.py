"""`python -m tresor.envelope_tool seal|open`: the stream envelope from the command
line, with the flags of `tresor envelope seal|open` (the conformance driver,
clients/conformance/, runs both alike).

    python -m tresor.envelope_tool seal KEY_ID [--context K=V ...] [--chunk-size BYTES]
                                     [--in FILE] [--out FILE]
    python -m tresor.envelope_tool open --key-id KEY_ID [--key-id ...] [--context K=V ...]
                                     [--accept-legacy] [--in FILE] [--out FILE]

The connection comes from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT and TRESOR_KEY.
Input is stdin and output stdout unless given. Exit 0 on success; otherwise a
message on stderr and exit 1 (2 for a usage error).

Opening with --out writes the plaintext to a private temporary file beside it,
renamed over --out only once the whole stream authenticated (removed
otherwise). On stdout, a non-zero exit means: discard what was written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import BinaryIO, Optional

from ._client import Client
from ._stream import DEFAULT_CHUNK_SIZE
from .errors import TresorError


def _pair(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{raw!r} is not KEY=VALUE")
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tresor.envelope_tool",
        description="Seal and open payloads of any size as tresor stream envelopes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    seal = commands.add_parser("seal", help="seal stdin or --in under a fresh data key of KEY")
    seal.add_argument("key_id", metavar="KEY")
    seal.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="BYTES")
    opener = commands.add_parser("open", help="open a stream sealed under one of the --key-id keys")
    opener.add_argument("--key-id", action="append", required=True, dest="key_ids", metavar="KEY")
    opener.add_argument("--accept-legacy", action="store_true", help="also open version 1 streams")
    for command in (seal, opener):
        command.add_argument(
            "-c", "--context", action="append", type=_pair, default=[], metavar="K=V"
        )
        command.add_argument("--in", dest="input", metavar="FILE")
        command.add_argument("--out", metavar="FILE")
    return parser


def _open_output(out: Optional[str]) -> tuple[BinaryIO, Optional[str]]:
    """The output: stdout, or a private temporary file beside `out` (and its path)."""
    if out is None:
        return sys.stdout.buffer, None
    directory = os.path.dirname(os.path.abspath(out))
    fd, temp = tempfile.mkstemp(prefix=".tresor-envelope-", dir=directory)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb"), temp


def run(argv: Sequence[str]) -> int:
    """Runs one command; returns the exit status."""
    args = _parser().parse_args(argv)
    context = dict(args.context)
    temp: Optional[str] = None
    try:
        client = Client.from_env(accept_legacy_streams=getattr(args, "accept_legacy", False))
        src = open(args.input, "rb") if args.input else sys.stdin.buffer  # noqa: SIM115
        dst, temp = _open_output(args.out)
        with client, src, dst:
            if args.command == "seal":
                client.seal_stream(args.key_id, src, dst, context, args.chunk_size)
            else:
                client.open_stream(args.key_ids, src, dst, context)
        if temp is not None:
            os.replace(temp, args.out)
            temp = None
        return 0
    except (TresorError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if temp is not None:
            os.unlink(temp)


def main() -> None:
    """The console entry point."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
