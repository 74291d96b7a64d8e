"""A real forward HTTP proxy on loopback: absolute-URI requests and CONNECT tunnels.

Enough of RFC 9110/9112 for the tests of ``fetch.new_session(proxy=...)``: it forwards
``GET``/``POST http://host/path`` to the origin, opens ``CONNECT host:port`` tunnels
for https, answers 502 when the origin cannot be reached, and records what it carried.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from ocsptool.testing.serving import QuietHandler, serve

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass
class Proxy:
    """``with Proxy().serving() as url:``; ``carried`` lists each request line it handled."""

    carried: list[str] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def serving(self, host: str = "127.0.0.1") -> Iterator[str]:
        server = _Server((host, 0), _Handler)
        server.proxy = self
        with serve(server) as port:
            self.url = f"http://{host}:{port}"
            yield self.url

    def record(self, line: str) -> None:
        with self._lock:
            self.carried.append(line)


class _Server(ThreadingHTTPServer):
    proxy: Proxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client or an origin that went away mid-tunnel is normal here


class _Handler(QuietHandler):
    server: _Server

    def do_CONNECT(self) -> None:
        self.server.proxy.record(f"CONNECT {self.path}")
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except (OSError, ValueError):
            self._fail(502, "Bad Gateway")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            _pipe(self.connection, upstream)

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        self.server.proxy.record(f"{self.command} {self.path}")
        parts = urllib.parse.urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self._fail(400, "Bad Request")
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        origin = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        try:
            origin.request(self.command, target, body=body, headers=headers)
            answer = origin.getresponse()
            data = answer.read()
        except OSError:
            self._fail(502, "Bad Gateway")
            return
        finally:
            origin.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with suppress(OSError):
            self.wfile.write(data)

    def _fail(self, status: int, reason: str) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in selector.select(timeout=30):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
