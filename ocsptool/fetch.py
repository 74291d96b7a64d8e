"""HTTP to OCSP responders: GET or POST per RFC 5019, timeouts, a size cap, safe redirects."""

from __future__ import annotations

import base64
import contextlib
import functools
import heapq
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocsptool.errors import FetchError
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts

_DEFAULT_TIMEOUTS = Timeouts()

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

#: RFC 5019: use GET when the whole URL fits in 255 bytes.
MAX_GET_URL = 255
MAX_REDIRECTS = 3
USER_AGENT = "ocsptool"


@dataclass(frozen=True)
class Fetched:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def request_url(url: str, der: bytes) -> str | None:
    """The GET URL for ``der`` when it fits in 255 bytes, else None (use POST)."""
    encoded = urllib.parse.quote(base64.b64encode(der).decode("ascii"), safe="")
    full = url if url.endswith("/") else url + "/"
    full += encoded
    return full if len(full.encode()) <= MAX_GET_URL else None


def check_url(url: str) -> None:
    if not url.isascii() or not url.isprintable():
        raise FetchError(f"bad URL {url!r}: not printable ASCII")
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a non-numeric port raises here, not deep inside requests
    except ValueError as e:
        raise FetchError(f"bad URL {url!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"refusing {scheme or 'relative'} URL {url!r}: only http and https")


def new_session() -> requests.Session:
    """A session with keep-alive and no environment proxies surprises."""
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = _guarded_pools()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _Guard:
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
def _guarded_pools() -> dict[str, Any]:
    """urllib3 pool classes whose connections register their socket with this thread's guard."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Guarded:
        sock: socket.socket | None

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            guard: _Guard | None = getattr(_active, "guard", None)
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
        self._heap: list[tuple[float, int, _Guard]] = []
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, guard: _Guard) -> None:
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
def _deadline(seconds: float) -> Iterator[_Guard]:
    guard = _Guard()
    _active.guard = guard
    _watchdog.watch(time.monotonic() + seconds, guard)
    try:
        yield guard
    finally:
        guard.finish()
        _active.guard = None


def fetch(
    session: requests.Session,
    url: str,
    der: bytes,
    *,
    timeouts: Timeouts = _DEFAULT_TIMEOUTS,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Fetched:
    """Send one OCSP request; return the raw answer or raise ``FetchError`` (one line)."""
    check_url(url)
    with _deadline(timeouts.total) as guard:
        try:
            fetched = _exchange(session, url, der, timeouts, max_bytes)
        except FetchError:
            if guard.expired:
                raise FetchError("response too slow; gave up") from None
            raise
        if guard.expired:  # cut off mid-headers, the response may look complete
            raise FetchError("response too slow; gave up")
        return fetched


def _exchange(
    session: requests.Session, url: str, der: bytes, timeouts: Timeouts, max_bytes: int
) -> Fetched:
    import requests

    deadline = time.monotonic() + timeouts.total
    get_url = request_url(url, der)
    method, target = ("GET", get_url) if get_url else ("POST", url)
    seen: set[str] = set()
    for _hop in range(MAX_REDIRECTS + 1):
        seen.add(target)
        started = time.monotonic()
        try:
            response = session.request(
                method,
                target,
                data=None if method == "GET" else der,
                headers=None if method == "GET" else {"Content-Type": "application/ocsp-request"},
                timeout=(timeouts.connect, timeouts.read),
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.RequestException as e:
            raise FetchError(_describe_request_error(e, target)) from None
        with response:
            log.debug(
                "%s %s -> HTTP %d after %.0f ms",
                method,
                target if len(target) <= 80 else target[:77] + "...",
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            if response.is_redirect:
                location = response.headers.get("Location", "")
                try:
                    target = urllib.parse.urljoin(target, location)
                except ValueError:
                    raise FetchError(f"bad redirect Location {location!r}") from None
                check_url(target)
                if target in seen:
                    raise FetchError(f"redirect loop at {target}")
                continue
            body = _read_capped(response, max_bytes, deadline)
            headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code != 200:
                raise _http_error(response.status_code, headers)
            return Fetched(target, body, headers)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    import requests
    import urllib3

    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"response of {int(declared)} bytes is over the {max_bytes}-byte cap")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in _chunks(response):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"response is over the {max_bytes}-byte cap")
            if time.monotonic() > deadline:
                raise FetchError("response too slow; gave up")
            chunks.append(chunk)
    except requests.exceptions.RequestException as e:
        raise FetchError(_describe_request_error(e, response.url)) from None
    except (urllib3.exceptions.HTTPError, OSError) as e:  # raw.read1 is not wrapped by requests
        host = urllib.parse.urlsplit(response.url).netloc
        if isinstance(e, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            raise FetchError(f"timed out waiting for {host} to answer") from None
        raise FetchError(f"{host} broke off the answer ({type(e).__name__})") from None
    return b"".join(chunks)


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: a slow drip yields often, so the deadline is checked often."""
    read1 = getattr(response.raw, "read1", None)  # urllib3 >= 2
    if read1 is None:
        yield from response.iter_content(1024)
        return
    while chunk := read1(16384, decode_content=True):
        yield chunk


def _http_error(status: int, headers: dict[str, str]) -> FetchError:
    retry_after = None
    text = f"HTTP {status}"
    value = headers.get("retry-after", "")
    if value.isdigit():
        retry_after = float(value)
        text += f" (Retry-After: {value} s)"
    return FetchError(text, retry_after=retry_after)


def _describe_request_error(error: Exception, url: str) -> str:
    import requests

    host = urllib.parse.urlsplit(url).netloc
    text = str(error)
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"timed out connecting to {host}"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"timed out waiting for {host} to answer"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS error talking to {host}"
    if isinstance(error, requests.exceptions.ConnectionError):
        if (
            "Name or service not known" in text
            or "NameResolutionError" in text
            or ("getaddrinfo" in text)
        ):
            return f"DNS lookup failed for {host}"
        if "Connection refused" in text:
            return f"connection refused by {host}"
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return f"{host} closed the connection without an answer"
        return f"cannot connect to {host}"
    if isinstance(error, requests.exceptions.InvalidSchema | requests.exceptions.InvalidURL):
        return f"bad URL {url!r}"
    return f"request to {host} failed ({type(error).__name__})"
