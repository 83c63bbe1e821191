"""Where the server is and how to prove who we are: the address, the CA and the
client certificate, from arguments or from the environment exactly as the
`tresor` CLI reads them (TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY).

Material given as file paths is followed, as the Rust SDK's `ca_file` and
`identity_files`: the files are checked again (at most once per
`reload_interval`) and, when their content changed and the new set loads, the
client opens a new channel with it, so new connections present the renewed
certificate. A changed set that does not load (the certificate written, the
key not yet) is refused with a warning and the last good set stays in use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import ConfigError

_log = logging.getLogger("tresor")

#: A PEM source: a path (str or os.PathLike), followed on disk; or the PEM bytes.
Pem = Union[str, "os.PathLike[str]", bytes]

DEFAULT_TIMEOUT = 30.0
DEFAULT_RELOAD_INTERVAL = 1.0
# gRPC's default receive limit (4 MiB) is below what the server may answer.
MAX_MESSAGE_BYTES = 64 << 20


def parse_address(addr: str) -> tuple[str, str]:
    """The gRPC target (host:port) and the host of `https://host:port` or `host:port`."""
    raw = addr.strip()
    if "://" in raw:
        scheme, _, raw = raw.partition("://")
        if scheme.lower() != "https":
            raise ConfigError(
                f"invalid address {addr!r}: tresor is served over TLS only: "
                "give https://HOST:PORT or HOST:PORT"
            )
    raw = raw.rstrip("/")
    if "/" in raw or not raw:
        raise ConfigError(f"invalid address {addr!r}: give https://HOST:PORT or HOST:PORT")
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"invalid address {addr!r}: no host, or no port (HOST:PORT)")
    return raw, host


def _read(what: str, source: Pem) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        with open(source, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{what} {os.fspath(source)}: {e.strerror or e}") from None


def _check(ca: bytes, identity: Optional[tuple[bytes, bytes]]) -> None:
    """Raises ValueError unless the CA parses and the key belongs to the certificate."""
    if not x509.load_pem_x509_certificates(ca):
        raise ValueError("no certificate in the CA file")
    if identity is None:
        return
    cert_pem, key_pem = identity
    chain = x509.load_pem_x509_certificates(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if chain[0].public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ValueError("the private key does not belong to the certificate")


@dataclass(frozen=True)
class TlsMaterial:
    """One loaded set: the CA and, when given, the client certificate and key."""

    ca: bytes
    cert: Optional[bytes]
    key: Optional[bytes] = field(repr=False)

    @property
    def digest(self) -> bytes:
        """A digest of the set, to tell whether it changed."""
        h = hashlib.sha256()
        for part in (self.ca, self.cert or b"", self.key or b""):
            h.update(len(part).to_bytes(8, "big") + part)
        return h.digest()


class Settings:
    """The connection settings of a client, and its current TLS material."""

    def __init__(
        self,
        addr: str,
        *,
        ca: Pem,
        cert: Optional[Pem] = None,
        key: Optional[Pem] = None,
        server_name: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
    ) -> None:
        self.endpoint = addr
        self.target, self.host = parse_address(addr)
        if (cert is None) != (key is None):
            raise ConfigError("give both cert= and key= (TRESOR_CERT and TRESOR_KEY), or neither")
        self.server_name = server_name
        self.timeout = timeout
        self.reload_interval = reload_interval
        self._sources: tuple[Pem, Optional[Pem], Optional[Pem]] = (ca, cert, key)
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._stamp = self._file_stamp()
        try:
            self._material = self._load()
        except ValueError as e:
            raise ConfigError(f"the TLS material does not load: {e}") from None

    @property
    def had_client_cert(self) -> bool:
        """Whether a client certificate is presented."""
        return self._sources[1] is not None

    @property
    def follows_files(self) -> bool:
        """Whether any material comes from a file that may change."""
        return any(s is not None and not isinstance(s, bytes) for s in self._sources)

    def __repr__(self) -> str:
        return f"Settings(endpoint={self.endpoint!r}, client_cert={self.had_client_cert})"

    def _load(self) -> TlsMaterial:
        ca_source, cert_source, key_source = self._sources
        ca = _read("CA", ca_source)
        identity = None
        if cert_source is not None and key_source is not None:
            identity = (_read("certificate", cert_source), _read("key", key_source))
        _check(ca, identity)
        return TlsMaterial(ca, identity[0] if identity else None, identity[1] if identity else None)

    def _file_stamp(self) -> tuple[object, ...]:
        stamp: list[object] = []
        for source in self._sources:
            if source is None or isinstance(source, bytes):
                continue
            try:
                st = os.stat(source)
                stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                stamp.append(None)
        return tuple(stamp)

    @property
    def material(self) -> TlsMaterial:
        """The current material (the last set that loaded)."""
        return self._material

    def refresh(self) -> bool:
        """Checks the files (at most once per reload_interval); True when a new set
        loaded, which new channels must use.
        """
        if not self.follows_files:
            return False
        now = time.monotonic()
        if now - self._checked < self.reload_interval:
            return False
        with self._lock:
            if now - self._checked < self.reload_interval:
                return False
            self._checked = now
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                fresh = self._load()
            except (ConfigError, ValueError) as e:
                _log.warning(
                    "tresor: the changed TLS files do not load, keeping the last set: %s", e
                )
                return False
            if fresh.digest == self._material.digest:
                return False
            self._material = fresh
            _log.info("tresor: TLS files changed; new connections use the new set")
            return True


def settings_from_env(
    environ: Optional[Mapping[str, str]] = None, **overrides: object
) -> dict[str, object]:
    """Client arguments from TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY, as the
    CLI reads them (files are paths; TRESOR_CERT and TRESOR_KEY are optional).
    """
    env = os.environ if environ is None else environ
    addr = env.get("TRESOR_ADDR")
    if not addr:
        raise ConfigError(
            "no server address: set TRESOR_ADDR to https://HOST:PORT "
            "(`tresor dev` prints the export lines)"
        )
    ca = env.get("TRESOR_CA")
    if not ca:
        raise ConfigError("no CA certificate: set TRESOR_CA to the CA's PEM file")
    args: dict[str, object] = {"addr": addr, "ca": ca}
    if env.get("TRESOR_CERT"):
        args["cert"] = env["TRESOR_CERT"]
    if env.get("TRESOR_KEY"):
        args["key"] = env["TRESOR_KEY"]
    args.update(overrides)
    return args


def channel_options(settings: Settings) -> list[tuple[str, object]]:
    """GRPC channel options for these settings."""
    options: list[tuple[str, object]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # A fresh channel after a rotation must not share the old subchannels.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    if settings.server_name:
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    return options
