"""Live cross-language proof: clients/conformance/driver.py against the real
server, with the Rust CLI (`tresor envelope`) and this package's envelope tool
as SDKs: a stream sealed by either opens in the other, for sizes 0, 1,
chunk-1, chunk, chunk+1 and 5 MiB, and tampered streams are refused by both."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Callable

from tresor_server import REPO, TresorServer, unavailable

DRIVER = REPO / "clients" / "conformance" / "driver.py"


def test_every_sealer_against_every_opener(
    server: TresorServer, new_key: Callable[..., str]
) -> None:
    rust = subprocess.run([str(server.bin), "envelope", "--help"], capture_output=True, text=True)
    if rust.returncode != 0:
        unavailable(f"{server.bin} has no `envelope` command: rebuild it (cargo build)")
    key = new_key("py/conformance")
    sdks = {
        "rust": f"{shlex.quote(str(server.bin))} envelope",
        "python": f"{shlex.quote(sys.executable)} -m tresor.envelope_tool",
    }
    command = [sys.executable, str(DRIVER), "--key-id", key, "--context", "run=pytest"]
    for name, prefix in sdks.items():
        command += ["--sdk", f"{name}={prefix}"]
    env = dict(os.environ, **server.env("billing"), TRESOR_LOG="error")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "84 passed, 0 failed"
    for sealer in sdks:
        for opener in sdks:
            for size in (0, 1, 65535, 65536, 65537, 5 << 20):
                assert f"ok   {opener} opens {sealer}'s {size} bytes" in lines
