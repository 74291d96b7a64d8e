"""A caIssuers server on loopback: the issuer certificate as CAs publish it, and worse.

``CaIssuers(issuer, stranger).serving()`` answers, under its base URL:

- ``/ca.der``, ``/ca.pem``, ``/ca.p7c`` (PKCS#7 certs-only, DER, with the root too),
  ``/ca.p7c.pem`` (the same in PEM), ``/redirect`` (302 to ``/ca.der``)
- ``/garbage`` (an HTML page), ``/other.der`` (an unrelated CA), ``/loop`` (302 to
  itself), ``/huge`` (20 MB), ``/empty.p7c`` (PKCS#7 without certificates),
  anything else 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from ocsptool.testing.serving import QuietHandler, serve

_DER = serialization.Encoding.DER
_PEM = serialization.Encoding.PEM
_EMPTY_P7C = bytes.fromhex(  # SignedData with no certificates (cryptography refuses to make one)
    "302306092a864886f70d010702a0163014020101310030 0b06092a864886f70d0107013100".replace(" ", "")
)


@dataclass
class CaIssuers:
    issuer: x509.Certificate
    stranger: x509.Certificate  # a CA that did not issue the leaves
    root: x509.Certificate | None = None
    #: Paths asked for, in order.
    requests: list[str] = field(default_factory=list)
    base: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def routes(self) -> dict[str, tuple[int, dict[str, str], bytes]]:
        bundle = [self.issuer, *([self.root] if self.root is not None else [])]
        cert = {"Content-Type": "application/pkix-cert"}
        p7 = {"Content-Type": "application/pkcs7-mime"}
        return {
            "/ca.der": (200, cert, self.issuer.public_bytes(_DER)),
            "/ca.pem": (
                200,
                {"Content-Type": "application/x-pem-file"},
                self.issuer.public_bytes(_PEM),
            ),
            "/ca.p7c": (200, p7, pkcs7.serialize_certificates(bundle, _DER)),
            "/ca.p7c.pem": (200, p7, pkcs7.serialize_certificates(bundle, _PEM)),
            "/redirect": (302, {"Location": "/ca.der"}, b""),
            "/garbage": (200, {"Content-Type": "text/html"}, b"<html><body>Welcome!</body></html>"),
            "/other.der": (200, cert, self.stranger.public_bytes(_DER)),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/huge": (200, cert, b"\x30" * (20 * 1024 * 1024)),
            "/empty.p7c": (200, p7, _EMPTY_P7C),
        }

    @contextmanager
    def serving(self, host: str = "127.0.0.1") -> Iterator[str]:
        server = _Server((host, 0), _Handler)
        server.issuers = self
        server.table = self.routes()
        with serve(server) as port:
            self.base = f"http://{host}:{port}"
            yield self.base


class _Server(ThreadingHTTPServer):
    issuers: CaIssuers
    table: dict[str, tuple[int, dict[str, str], bytes]]


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:
        with self.server.issuers._lock:
            self.server.issuers.requests.append(self.path)
        status, headers, body = self.server.table.get(
            self.path, (404, {"Content-Type": "text/plain"}, b"not found\n")
        )
        self.send_body(status, headers, body)
