#!/usr/bin/env python3
"""Benchmarks of the Python SDK against a real server (not timed tests).

1. Streaming: `Client.seal_stream` of N GiB (default 1) from a generated source
   into a file, then `Client.open_stream` of that file into a sink that
   discards, each in its own process so that each reports its own peak RSS.
   Targets: at least 400 MB/s each way, peak RSS below 64 MiB.
2. `tresor.aio.Client.encrypt` of 1 KiB payloads with 64 calls in flight on one
   client, for S seconds (default 10): requests per second; beside it, in the
   same run against the same server, the Rust SDK's figure from
   `tresor bench --mix encrypt --payload 1024 --concurrency 64 --connections 1`.

The server is `tresor serve` (audit log on) from $TRESOR_BIN, else
target/release/tresor, else target/debug/tresor; certificates and keys are
made in a temporary directory (tests/tresor_server.py, which needs pytest).

Usage: python scripts/bench.py [--gib N] [--seconds S] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import tresor  # noqa: E402
import tresor.aio  # noqa: E402

MIB = 1 << 20


class Generated:
    """A source of `total` bytes (a random MiB, repeated), without disk I/O."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.block = os.urandom(MIB)

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        if size <= len(self.block):
            return self.block[:size]
        return (self.block * (size // len(self.block) + 1))[:size]


class Sink:
    """A destination that counts and discards."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB: VmHWM, which starts afresh at
    exec (ru_maxrss does not: a child inherits its parent's peak on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(direction: str, key_id: str, path: str, total: int) -> None:
    """One streaming direction, in this (child) process; prints a JSON result."""
    with tresor.Client.from_env() as client:
        started = time.perf_counter()
        if direction == "seal":
            with open(path, "wb") as out:
                summary = client.seal_stream(key_id, Generated(total), out, {"bench": "stream"})
            moved = summary.bytes_in
        else:
            sink = Sink()
            with open(path, "rb") as src:
                summary = client.open_stream(key_id, src, sink, {"bench": "stream"})
            moved = sink.count
        seconds = time.perf_counter() - started
    assert moved == total, (moved, total)
    print(
        json.dumps(
            {"seconds": seconds, "mb_per_s": total / seconds / 1e6, "rss_mib": peak_rss_mib()}
        )
    )


async def encrypt_rate(
    args: dict[str, str], key_id: str, seconds: float, concurrency: int
) -> float:
    """Requests per second of aio encrypt of 1 KiB with `concurrency` in flight."""
    payload = os.urandom(1024)
    async with tresor.aio.Client(**args) as client:  # type: ignore[arg-type]
        done = 0
        deadline = 0.0

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await client.encrypt(key_id, payload, {"bench": "encrypt"})
                done += 1

        deadline = time.perf_counter() + 1.0  # warm-up
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        done = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        direction, key_id, path, total = options.child
        child(direction, key_id, path, int(total))
        return

    repo = HERE.parents[2]
    release = repo / "target" / "release" / "tresor"
    if "TRESOR_BIN" not in os.environ and release.is_file():
        os.environ["TRESOR_BIN"] = str(release)
    from tresor_server import BILLING, TresorServer

    server = TresorServer()
    try:
        print(f"server: {server.bin} (audit log on), Python {sys.version.split()[0]}")
        with tresor.Client(**server.client_args("admin")) as admin:
            admin.create_key("bench/stream", BILLING)
            admin.create_key("bench/encrypt", BILLING)
        env = dict(os.environ, **server.env("billing"))
        total = int(options.gib * (1 << 30))
        with tempfile.TemporaryDirectory(prefix="tresor-bench-") as tmp:
            path = os.path.join(tmp, "stream.tre")
            for direction in ("seal", "open"):
                command = [sys.executable, __file__, "--child", direction, "bench/stream", path]
                done = subprocess.run(
                    [*command, str(total)], env=env, capture_output=True, text=True, check=True
                )
                result = json.loads(done.stdout)
                print(
                    f"{direction}_stream {options.gib:g} GiB: {result['mb_per_s']:.0f} MB/s "
                    f"({result['seconds']:.2f} s), peak RSS {result['rss_mib']:.1f} MiB"
                )
        rate = asyncio.run(
            encrypt_rate(server.client_args("billing"), "bench/encrypt", options.seconds,
                         options.concurrency)
        )  # fmt: skip
        print(f"python aio encrypt 1 KiB, {options.concurrency} in flight: {rate:.0f} req/s")
        rust = subprocess.run(
            [str(server.bin), "bench", "--key-id", "bench/encrypt", "--mix", "encrypt",
             "--payload", "1024", "--concurrency", str(options.concurrency), "--connections", "1",
             "--duration", f"{options.seconds:g}s", "--warmup", "1s", "--json"],
            env=dict(env, TRESOR_LOG="warn"), capture_output=True, text=True, check=True,
        )  # fmt: skip
        report = json.loads(rust.stdout)
        rust_rate = float(report["requests_per_second"])
        print(f"rust sdk encrypt 1 KiB, {options.concurrency} in flight: {rust_rate:.0f} req/s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
