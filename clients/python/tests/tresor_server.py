"""A real tresor server for the tests: the `tresor` binary makes a CA, a server
certificate, client certificates and a master key, then `tresor serve` listens
on an ephemeral port of 127.0.0.1 (its log line `addr=...` tells which).

The binary is $TRESOR_BIN, else target/debug/tresor from the repository root.
When it is missing the tests that need it skip with the reason, except under
CI (the CI environment variable set), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
TRUST_DOMAIN = "spiffe://tresor.test"
ADMIN = f"{TRUST_DOMAIN}/admin"
BILLING = f"{TRUST_DOMAIN}/billing"
SHIPPING = f"{TRUST_DOMAIN}/shipping"
LIMITED = f"{TRUST_DOMAIN}/limited"
IDENTITIES = {"admin": ADMIN, "billing": BILLING, "shipping": SHIPPING, "limited": LIMITED}
_ADDR = re.compile(r"""(?: addr=|"addr":")([0-9.]+:\d+)""")


def tresor_bin() -> Path:
    """The tresor binary, or a skip (a failure under CI) naming what is missing."""
    path = Path(os.environ.get("TRESOR_BIN") or REPO / "target" / "debug" / "tresor")
    if not path.is_file() or not os.access(path, os.X_OK):
        unavailable(
            f"the tresor binary is not at {path}: build it with `cargo build` or set TRESOR_BIN"
        )
    return path


def unavailable(reason: str) -> None:
    """Skips with `reason` on a developer machine; fails under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: not skipping)")
    pytest.skip(reason)


def run(binary: Path, *args: str, env: Optional[dict[str, str]] = None) -> str:
    """Runs the CLI; fails the test with its stderr when it exits non-zero."""
    done = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, env=env, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"tresor {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


class TresorServer:
    """`tresor serve` on 127.0.0.1:0 with certificates for IDENTITIES."""

    def __init__(self, *serve_flags: str, env: Optional[dict[str, str]] = None) -> None:
        self.bin = tresor_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="tresor-py-"))
        d = self.dir
        run(self.bin, "certs", "ca", "--out", str(d / "ca"))
        run(
            self.bin,
            "certs",
            "server",
            "--ca",
            str(d / "ca"),
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--out",
            str(d / "server"),
        )
        for name, identity in IDENTITIES.items():
            run(
                self.bin,
                "certs",
                "issue",
                "--ca",
                str(d / "ca"),
                "--identity",
                identity,
                "--out",
                str(d / name),
            )
        run(self.bin, "master-key", "generate", "--out", str(d / "master.key"))
        self.ca = str(d / "ca" / "ca.pem")
        flags = [
            "serve", "--listen", "127.0.0.1:0", "--data-dir", str(d / "data"),
            "--tls-cert", str(d / "server" / "cert.pem"),
            "--tls-key", str(d / "server" / "key.pem"),
            "--client-ca", self.ca, "--master-key-file", str(d / "master.key"),
            "--admin", ADMIN, "--audit-file", str(d / "audit.log"), *serve_flags,
        ]  # fmt: skip
        env = dict(os.environ, TRESOR_LOG="info", TRESOR_LOG_FORMAT="pretty", **(env or {}))
        self.process = subprocess.Popen(
            [str(self.bin), *flags], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            text=True, env=env,
        )  # fmt: skip
        self.log: list[str] = []
        self.port = self._wait_for_addr()
        self.addr = f"https://localhost:{self.port}"

    def _wait_for_addr(self) -> int:
        found: list[int] = []
        ready = threading.Event()

        def pump() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line.rstrip())
                match = _ADDR.search(line)
                if match and not found:
                    found.append(int(match.group(1).rsplit(":", 1)[1]))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or not found:
            self.stop()
            pytest.fail("tresor serve did not report its address:\n" + "\n".join(self.log))
        return found[0]

    def cert(self, name: str) -> tuple[str, str]:
        """The certificate and key files of a client identity."""
        return str(self.dir / name / "cert.pem"), str(self.dir / name / "key.pem")

    def env(self, name: str) -> dict[str, str]:
        """TRESOR_* variables for connecting as `name`."""
        cert, key = self.cert(name)
        return {"TRESOR_ADDR": self.addr, "TRESOR_CA": self.ca, "TRESOR_CERT": cert,
                "TRESOR_KEY": key}  # fmt: skip

    def client_args(self, name: str) -> dict[str, Any]:
        """Constructor arguments of a client connecting as `name`."""
        cert, key = self.cert(name)
        return {"addr": self.addr, "ca": self.ca, "cert": cert, "key": key}

    def stop(self) -> None:
        """Stops the server and removes its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
