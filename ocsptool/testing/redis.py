"""A real ``redis-server`` for tests and benchmarks, on a loopback port or a unix socket.

``RedisServer()`` starts Debian's ``redis-server`` in the foreground with no persistence
in a short temporary directory, and waits until it answers ``PING``::

    with RedisServer() as server:
        store = open_store(server.url, timeout=2)
        server.stop()  # the store goes down mid-run
        server.start()  # ... and comes back, empty, on the same port
        server.pause()  # SIGSTOP: connections hang (a slow store) until resume()

Nothing here imports the ``redis`` client: readiness is a raw RESP ``PING``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ocsptool.testing.haproxy import free_port
from ocsptool.testing.processes import stop_process

_CANDIDATES = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")


def redis_binary() -> str | None:
    """The redis-server executable, or None when it is not installed."""
    found = shutil.which("redis-server")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


class RedisServer:
    """A real redis-server; ``unix=True`` listens on a unix socket only (no TCP)."""

    def __init__(self, *, unix: bool = False, binary: str | None = None) -> None:
        found = binary or redis_binary()
        if found is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = found
        # Unix socket paths are limited to ~107 bytes, so stay out of deep pytest dirs.
        self.dir = Path(tempfile.mkdtemp(prefix="ocsptool-redis-"))
        self.unix_socket = str(self.dir / "redis.sock") if unix else None
        self.port = 0 if unix else free_port()
        self.log = self.dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start (or restart, on the same port or socket) and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return self
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.log),
        ]
        if self.unix_socket is not None:
            args += ["--unixsocket", self.unix_socket, "--unixsocketperm", "700"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                raise RuntimeError(f"redis-server exited {self.process.returncode}: {log[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the server (the store goes down); ``start()`` brings it back empty."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        stop_process(process, 10)

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing answers (a slow store)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _answers(self) -> bool:
        try:
            if self.unix_socket is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                address: str | tuple[str, int] = self.unix_socket
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                address = ("127.0.0.1", self.port)
            with sock:
                sock.settimeout(1.0)
                sock.connect(address)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
