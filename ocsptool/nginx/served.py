"""What nginx staples: a real TLS handshake that asks for the OCSP response.

``served_staple(host, port, servername)`` connects, sends SNI and ``status_request``,
and returns the stapled OCSP response exactly as nginx sent it (DER), or None when it
sent none. It uses pyOpenSSL (the ``nginx`` extra: ``pip install 'ocsptool[nginx]'``),
imported only here and only when called: OpenSSL does the handshake, so TLS 1.3 (where
the staple travels encrypted, inside the Certificate message) works like TLS 1.2, with
whatever versions, ciphers and key types nginx offers.

nginx serves a new ``ssl_stapling_file`` only from the workers a reload starts, and a
worker that is still starting or shutting down may answer the first handshakes, so
``wait_until_served`` retries until the bytes match or a deadline passes.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocsptool.nginx.errors import HandshakeFailed, TLSClientMissing

if TYPE_CHECKING:
    from OpenSSL import SSL

    from ocsptool.nginx.model import StapleFile

EXTRA = "pip install 'ocsptool[nginx]'"


@dataclass(frozen=True, slots=True)
class Handshake:
    """One handshake: the staple (None: none sent), the leaf certificate nginx served
    (DER) and the protocol (``TLSv1.3``)."""

    staple: bytes | None
    certificate: bytes | None
    protocol: str


@dataclass(frozen=True, slots=True)
class Probe:
    """One handshake that proves a staple file is served: ``servername`` at
    ``host:port``, for the block at ``origin``."""

    host: str
    port: int
    servername: str
    origin: str


def probes(staple: StapleFile) -> tuple[Probe, ...]:
    """One probe per server name of each block serving ``staple``, on the block's first
    TLS listen. A block without an exact name (only ``_``, wildcards, regular
    expressions) or without a TLS listen gets none."""
    found: dict[tuple[str, int, str], Probe] = {}
    for block in staple.servers:
        listens = [(lst.host, lst.port) for lst in block.tls_listens if lst.host and lst.port]
        if not listens:
            continue
        host, port = listens[0]
        for name in block.handshake_names:
            found.setdefault((host, port, name), Probe(host, port, name, block.origin))
    return tuple(found.values())


@dataclass(frozen=True, slots=True)
class ServedCheck:
    """Whether nginx staples ``expected`` for ``servername`` at ``host:port``: the last
    bytes it served (or the last handshake error) after ``attempts`` handshakes."""

    host: str
    port: int
    servername: str
    expected: bytes
    served: bytes | None
    error: str | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None and self.served == self.expected

    @property
    def problem(self) -> str | None:
        """One line saying what is wrong, or None when nginx staples the expected bytes."""
        where = f"{self.servername} on {self.host}:{self.port}"
        if self.ok:
            return None
        if self.error is not None:
            return f"{where}: {self.error}"
        if self.served is None:
            return f"{where}: nginx staples no OCSP response"
        return f"{where}: nginx staples a different OCSP response than the one written"


def handshake(host: str, port: int, servername: str, *, timeout: float = 5.0) -> Handshake:
    """A TLS handshake with ``host:port`` sending SNI ``servername`` and asking for a
    staple. Certificates are not verified: this looks at what nginx serves.

    Raises ``HandshakeFailed`` (refused, timed out, a TLS alert) or ``TLSClientMissing``.
    """
    try:
        from OpenSSL import SSL
    except ImportError:
        raise TLSClientMissing(
            f"the nginx handshake check needs pyOpenSSL, which is not installed: {EXTRA}"
        ) from None
    from cryptography.hazmat.primitives.serialization import Encoding

    deadline = time.monotonic() + timeout
    where = f"TLS handshake with {host}:{port} ({servername})"
    stapled: list[bytes] = []

    def keep(_connection: SSL.Connection, data: bytes, _data: object) -> bool:
        stapled.append(data)
        return True  # judge nothing here: the caller compares the bytes

    try:
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_ocsp_client_callback(keep)
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.setblocking(False)
            connection = SSL.Connection(context, sock)
            connection.set_tlsext_host_name(servername.encode("idna"))
            connection.request_ocsp()
            connection.set_connect_state()
            _complete(connection, sock, deadline)
            certificate = connection.get_peer_certificate(as_cryptography=True)
            protocol = connection.get_protocol_version_name()
    except (OSError, UnicodeError) as exc:
        raise HandshakeFailed(f"{where} failed: {_cause(exc)}") from None
    except SSL.Error as exc:
        raise HandshakeFailed(f"{where} failed: {_openssl_cause(exc)}") from None
    der = certificate.public_bytes(Encoding.DER) if certificate is not None else None
    staple = stapled[0] if stapled and stapled[0] else None
    return Handshake(staple, der, protocol)


def _complete(connection: SSL.Connection, sock: socket.socket, deadline: float) -> None:
    """Drive the handshake of a non-blocking socket until done or ``deadline``."""
    from OpenSSL import SSL

    while True:
        try:
            connection.do_handshake()
            return
        except SSL.WantReadError:
            readable, writable = [sock], []
        except SSL.WantWriteError:
            readable, writable = [], [sock]
        left = deadline - time.monotonic()
        if left <= 0 or not any(select.select(readable, writable, [], left)[:2]):
            raise TimeoutError("timed out")


def served_staple(host: str, port: int, servername: str, *, timeout: float = 5.0) -> bytes | None:
    """The OCSP response (DER) nginx staples for ``servername``, or None."""
    return handshake(host, port, servername, timeout=timeout).staple


def wait_until_served(
    host: str,
    port: int,
    servername: str,
    expected: bytes,
    *,
    timeout: float = 10.0,
    interval: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ServedCheck:
    """Handshake until nginx staples exactly ``expected`` or ``timeout`` passes; the
    last attempt says what it served (``ServedCheck.ok``, ``.problem``).
    ``TLSClientMissing`` is raised at once."""
    deadline = clock() + timeout
    attempts = 0
    while True:
        attempts += 1
        served: bytes | None = None
        error: str | None = None
        try:
            served = served_staple(
                host, port, servername, timeout=max(0.1, min(5.0, deadline - clock()))
            )
        except HandshakeFailed as exc:
            error = str(exc)
        check = ServedCheck(host, port, servername, expected, served, error, attempts)
        if check.ok or clock() + interval > deadline:
            return check
        sleep(interval)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _openssl_cause(exc: BaseException) -> str:
    """pyOpenSSL's error as one short line (its args are lists of OpenSSL tuples)."""
    args = exc.args[0] if exc.args else None
    if isinstance(args, list) and args and isinstance(args[-1], tuple):
        return str(args[-1][-1])
    text = str(exc) or type(exc).__name__
    return "the connection closed during the handshake" if "Unexpected EOF" in text else text
