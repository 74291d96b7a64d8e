"""What every loopback test server shares: a quiet HTTP/1.1 handler and a serving thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, no request log on stderr, and TCP_NODELAY.

    Headers and body go out in two writes: without TCP_NODELAY each keep-alive answer
    would wait ~40 ms for the client's delayed ACK.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_body(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """One whole answer with its Content-Length; a client that left is not an error."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


@contextmanager
def serve(
    server: ThreadingHTTPServer, before_stop: Callable[[], None] | None = None
) -> Iterator[int]:
    """Serve ``server`` on a daemon thread; yield its port; stop and close it after."""
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        if before_stop is not None:
            before_stop()
        server.shutdown()
        server.server_close()
