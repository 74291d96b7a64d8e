"""The total deadline of one HTTP exchange: a watchdog shuts the socket of one that outlives it.

Connect and read timeouts bound each socket operation, not the whole exchange: a tarpit
that drips a header byte every few seconds would hold a run forever. The sessions of
``fetch.new_session`` use urllib3 pools whose connections register their socket with this
thread's guard, and one watchdog thread per process shuts it when the deadline passes.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


class Guard:
    """Shuts the socket of an exchange that outlives its deadline.

    Connect and read timeouts bound each socket operation, not the whole exchange: a
    tarpit that drips a header byte every few seconds would hold a run forever. The
    connections of ``new_session`` register their socket here, and a timer shuts it.
    """

    def __init__(self) -> None:
        self.expired = False
        self.done = False  # the exchange is over: expiring it now would be harmless, and late
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shut()

    def expire(self) -> None:
        with self._lock:
            if self.done:  # the socket may already serve another exchange: hands off
                return
            self.expired = True
            self._shut()

    def finish(self) -> None:
        with self._lock:
            self.done = True

    def _shut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


_active = threading.local()


@functools.cache
def guarded_pools() -> dict[str, Any]:
    """urllib3 pool classes whose connections register their socket with this thread's guard."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Guarded:
        sock: socket.socket | None

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            guard: Guard | None = getattr(_active, "guard", None)
            if guard is not None and self.sock is not None:
                guard.watch(self.sock)
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class GuardedHTTP(Guarded, HTTPConnection):
        pass

    class GuardedHTTPS(Guarded, HTTPSConnection):
        pass

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPS

    return {"http": HTTPPool, "https": HTTPSPool}


class _Watchdog:
    """One thread for the whole process that expires guards whose deadline has passed.

    (A ``threading.Timer`` per request started an OS thread per request: a third of the
    CPU time of a cold refresh.)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, guard: Guard) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline, id(guard), guard))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog")
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, guard = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                guard.expire()


_watchdog = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Guard]:
    guard = Guard()
    _active.guard = guard
    _watchdog.watch(time.monotonic() + seconds, guard)
    try:
        yield guard
    finally:
        guard.finish()
        _active.guard = None
