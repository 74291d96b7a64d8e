"""Benchmark fixtures, made at any scale: a CA, N HAProxy bundles, a pre-signed responder.

One leaf key is shared by every leaf (the certificates still differ: serial, name), so
10,000 bundles take seconds. Every answer is signed before any timing (``warm``, with
``ocsptool.testing.responder``); the HTTP server then only looks the bytes up.

The server is not the test responder's: that one writes the headers and the body in
two sends without TCP_NODELAY, so on a keep-alive connection every answer waits ~40 ms
for a delayed ACK (Nagle), and 1,000 answers took 5.6 s on 8 connections. This one
answers in one send.
"""

from __future__ import annotations

import base64
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsptool.testing.pki import Authority, _key, key_pem
from ocsptool.testing.responder import Responder


@dataclass
class Pki:
    root: Authority
    ca: Authority  # the intermediate that issues the leaves and signs its own OCSP answers
    leaf_key_pem: bytes = b""
    root_file: Path | None = None
    ca_file: Path | None = None


def make_pki(workdir: Path) -> Pki:
    root = Authority.root("ocsptool Bench Root")
    ca = root.intermediate("ocsptool Bench CA")
    pki = Pki(root, ca)
    pki.root_file = workdir / "root.pem"
    pki.root_file.write_bytes(root.pem)
    pki.ca_file = workdir / "ca.pem"
    pki.ca_file.write_bytes(ca.pem)
    return pki


@dataclass
class CertSet:
    """N bundles in one directory, and the OCSP request each one needs."""

    directory: Path
    state: Path
    paths: list[Path] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.paths)

    def staples(self) -> list[Path]:
        return [Path(f"{p}.ocsp") for p in self.paths]

    def reset(self) -> None:
        """Back to a cold start: no staples, no state."""
        for staple in self.staples():
            staple.unlink(missing_ok=True)
        self.state.unlink(missing_ok=True)


def make_certs(pki: Pki, directory: Path, count: int, ocsp_url: str) -> CertSet:
    """``count`` bundles (leaf, intermediate, key) named ``site-00000.pem``... in ``directory``."""
    directory.mkdir(parents=True)
    key = _key()
    key_bytes = key_pem(key)
    chain = pki.ca.pem
    certs = CertSet(directory, directory.parent / f"{directory.name}.state.json")
    issuer = pki.ca.cert
    sha1 = hashes.SHA1()  # OCSP CertIDs are SHA-1 (HAProxy matches only those)
    for n in range(count):
        leaf = pki.ca.leaf(f"site-{n:05d}.bench.test", ocsp_url=ocsp_url, key=key).cert
        path = directory / f"site-{n:05d}.pem"
        path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + chain + key_bytes)
        certs.paths.append(path)
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, sha1).build()
        certs.requests.append(request.public_bytes(serialization.Encoding.DER))
    return certs


@dataclass
class Server:
    """A fast loopback OCSP server: request DER → pre-signed answer, one send per answer."""

    signer: Responder
    answers: dict[bytes, bytes] = field(default_factory=dict)
    url: str = ""
    requests: int = 0
    #: Requests that were not pre-built (so had to be signed while timed): should stay 0.
    misses: int = 0
    #: Seconds to wait before each answer, to play a real responder across the internet.
    latency: float = 0.0
    #: Requests in flight now, and the most seen at once since the last ``reset_peak``.
    in_flight: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.in_flight

    def answer(self, request: bytes) -> bytes:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            return self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, request: bytes) -> bytes:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self.requests += 1
        body = self.answers.get(request)
        if body is None:  # a request we did not pre-build: sign it (slow, but correct)
            with self._lock:
                self.misses += 1
            body = self.signer.answer(request)[2]
        return body


def warm(server: Server, certs: CertSet) -> list[bytes]:
    """Sign every answer now; return the DER staples."""
    staples = []
    for request in certs.requests:
        status, _headers, body = server.signer.answer(request)
        assert status == 200, status
        server.answers[request] = body
        staples.append(body)
    return staples


def write_staples(certs: CertSet, staples: list[bytes]) -> None:
    for path, der in zip(certs.staples(), staples, strict=True):
        path.write_bytes(der)


def write_requests(certs: CertSet, path: Path) -> Path:
    """The pre-built requests, length-prefixed, for the raw HTTP floor process."""
    with path.open("wb") as out:
        for der in certs.requests:
            out.write(len(der).to_bytes(4, "big") + der)
    return path


@contextmanager
def serving(pki: Pki) -> Iterator[Server]:
    signer = Responder(presign=True)
    signer.add_issuer(pki.ca)
    server = Server(signer)
    http = _HTTPServer(("127.0.0.1", 0), _Handler)
    http.ocsp = server
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{http.server_address[1]}/ocsp"
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()


class _HTTPServer(ThreadingHTTPServer):
    ocsp: Server
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        tail = self.path.rsplit("/", 1)[-1]
        self._answer(base64.b64decode(urllib.parse.unquote(tail)))

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _answer(self, request: bytes) -> None:
        body = self.server.ocsp.answer(request)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
