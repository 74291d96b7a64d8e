"""HTTP to OCSP responders: GET or POST per RFC 5019, timeouts, a size cap, safe redirects."""

from __future__ import annotations

import base64
import contextlib
import enum
import functools
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ocsptool.deadline import deadline, guarded_pools
from ocsptool.errors import FetchError, OcspToolError, ResponseRejected, UsageError
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts

if TYPE_CHECKING:
    from ocsptool.pacing import HostLimiter

T = TypeVar("T")

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


def new_session(ca_bundle: Path | None = None, proxy: str | None = None) -> requests.Session:
    """A keep-alive session whose exchanges the total deadline can cut off.

    ``ca_bundle`` (a PEM file) replaces the CAs trusted for ``https://`` responders, and
    ``proxy`` (``http://host:port``) carries every request; both win over the environment
    variables requests reads otherwise (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, HTTPS_PROXY,
    HTTP_PROXY, NO_PROXY). Bad values raise ``UsageError`` (one line).
    """
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if ca_bundle is not None:
        problem = ca_bundle_problem(ca_bundle)
        if problem is not None:
            raise UsageError(f"ca_bundle {ca_bundle}: {problem}")
        session.verify = str(ca_bundle)
    if proxy is not None:
        problem = proxy_problem(proxy)
        if problem is not None:
            raise UsageError(f"proxy {_redact(proxy)!r}: {problem}")
        session.proxies = {"http": proxy, "https": proxy}
    adapter = _adapter_class()(pool_connections=16, pool_maxsize=32, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = guarded_pools()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def proxy_problem(proxy: str) -> str | None:
    """Why ``proxy`` cannot be used as a forward proxy URL, or None (for config checks)."""
    if not proxy.isascii() or not proxy.isprintable():
        return "not printable ASCII"
    try:
        parts = urllib.parse.urlsplit(proxy)
        _ = parts.port
    except ValueError as e:
        return str(e)
    if parts.scheme.lower() not in ("http", "https"):
        return "expected http://HOST:PORT (or https://)"
    if not parts.hostname:
        return "no host; expected http://HOST:PORT"
    return None


def ca_bundle_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle, or None (for config checks)."""
    from ocsptool.certs import read_certificates, read_file
    from ocsptool.errors import CertificateError

    try:
        certs = read_certificates(read_file(path))
    except CertificateError as e:
        return str(e)
    return None if certs else "no certificate in the file"


@functools.cache
def _adapter_class() -> type[requests.adapters.HTTPAdapter]:
    """An adapter whose proxy pools are guarded by the deadline too."""
    import requests

    class Adapter(requests.adapters.HTTPAdapter):
        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            if urllib.parse.urlsplit(proxy).scheme.lower() in ("http", "https"):
                manager.pool_classes_by_scheme = guarded_pools()
            return manager

    return Adapter


def _redact(url: str) -> str:
    """``url`` without a password (proxy URLs may carry credentials)."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:***@{parts.hostname}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


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
    get_url = request_url(url, der)
    if get_url is not None:
        return _guarded(
            session,
            url,
            method="GET",
            target=get_url,
            body=None,
            timeouts=timeouts,
            max_bytes=max_bytes,
        )
    return _guarded(
        session, url, method="POST", target=url, body=der, timeouts=timeouts, max_bytes=max_bytes
    )


def get(
    session: requests.Session,
    url: str,
    *,
    timeouts: Timeouts = _DEFAULT_TIMEOUTS,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Fetched:
    """GET ``url`` (a caIssuers certificate) under the same rules as an OCSP fetch."""
    return _guarded(
        session, url, method="GET", target=url, body=None, timeouts=timeouts, max_bytes=max_bytes
    )


def fetch_first(
    session: requests.Session,
    urls: Sequence[str],
    der: bytes,
    verify: Callable[[bytes], T],
    *,
    timeouts: Timeouts = _DEFAULT_TIMEOUTS,
    max_bytes: int = MAX_RESPONSE_BYTES,
    limiter: HostLimiter | None = None,
) -> tuple[T, str]:
    """Ask each OCSP URL in turn until one answers with a response ``verify`` accepts.

    Returns ``verify``'s value and the URL that gave it. When none did, raises one error
    whose message names every cause, ``URL1: cause; URL2: cause``: the class of the causes
    when they share one (``ResponseRejected``, ``StatusUnknown``), else ``FetchError``,
    carrying the longest Retry-After any responder asked for. ``limiter`` bounds the
    requests in flight per responder host. Errors other than ``FetchError`` and
    ``ResponseRejected`` (a write fault, a bug) propagate at once.
    """
    if not urls:
        raise FetchError("no OCSP URL to ask")
    causes: list[tuple[str, FetchError | ResponseRejected]] = []
    for url in urls:
        try:
            slot = limiter.slot(url) if limiter is not None else contextlib.nullcontext()
            with slot:
                fetched = fetch(session, url, der, timeouts=timeouts, max_bytes=max_bytes)
            return verify(fetched.body), url
        except (FetchError, ResponseRejected) as e:
            causes.append((url, e))
    raise all_failed(causes)


def all_failed(causes: Sequence[tuple[str, OcspToolError]]) -> OcspToolError:
    """One error naming every cause (``URL1: cause; URL2: cause``): see ``fetch_first``."""
    message = "; ".join(f"{url}: {error}" for url, error in causes)
    retry_afters = [e.retry_after for _, e in causes if isinstance(e, FetchError) and e.retry_after]
    kinds = {type(e) for _, e in causes}
    if len(kinds) == 1 and not issubclass(kind := kinds.pop(), FetchError):
        return kind(message)
    return FetchError(message, retry_after=max(retry_afters) if retry_afters else None)


def order_urls(urls: Sequence[str], remembered: str | None) -> list[str]:
    """``urls`` with the one that worked last time first (when it is still among them)."""
    ordered = list(dict.fromkeys(urls))
    if remembered in ordered:
        ordered.remove(remembered)
        ordered.insert(0, remembered)
    return ordered


def _guarded(
    session: requests.Session,
    url: str,
    *,
    method: str,
    target: str,
    body: bytes | None,
    timeouts: Timeouts,
    max_bytes: int,
) -> Fetched:
    check_url(url)
    with deadline(timeouts.total) as guard:
        try:
            fetched = _exchange(
                session,
                method=method,
                target=target,
                der=body,
                timeouts=timeouts,
                max_bytes=max_bytes,
            )
        except FetchError:
            if guard.expired:
                raise FetchError("response too slow; gave up") from None
            raise
        if guard.expired:  # cut off mid-headers, the response may look complete
            raise FetchError("response too slow; gave up")
        return fetched


def _exchange(
    session: requests.Session,
    *,
    method: str,
    target: str,
    der: bytes | None,
    timeouts: Timeouts,
    max_bytes: int,
) -> Fetched:
    import requests

    deadline_at = time.monotonic() + timeouts.total
    seen: set[str] = set()
    for _hop in range(MAX_REDIRECTS + 1):
        seen.add(target)
        started = time.monotonic()
        try:
            response = session.request(
                method,
                target,
                data=der,
                headers=None if der is None else {"Content-Type": "application/ocsp-request"},
                timeout=(timeouts.connect, timeouts.read),
                allow_redirects=False,
                stream=True,
                # Passed per request: requests lets the environment override the session's.
                verify=session.verify,
                proxies=dict(session.proxies),
            )
        except requests.exceptions.RequestException as e:
            raise FetchError(_describe_request_error(e, target, session)) from None
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
            body = _read_capped(response, max_bytes, deadline_at, session)
            headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code != 200:
                error = _http_error(response.status_code, headers)
                if response.status_code in (502, 504) and (proxy := _proxy_for(session, target)):
                    host = urllib.parse.urlsplit(target).netloc
                    error = FetchError(
                        f"proxy {_redact(proxy)}: answered {error} (could not reach {host})",
                        retry_after=error.retry_after,
                    )
                raise error
            return Fetched(target, body, headers)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _read_capped(
    response: requests.Response, max_bytes: int, deadline: float, session: requests.Session
) -> bytes:
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
        raise FetchError(_describe_request_error(e, response.url, session)) from None
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


def _describe_request_error(error: Exception, url: str, session: requests.Session) -> str:
    import requests

    host = urllib.parse.urlsplit(url).netloc
    text = str(error)
    if isinstance(error, requests.exceptions.ProxyError):
        return _describe_proxy_error(error, url, session)
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"timed out connecting to {host}"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"timed out waiting for {host} to answer"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS error talking to {host}: {_tls_cause(error)}"
    if isinstance(error, requests.exceptions.ConnectionError):
        return {
            _Cause.DNS: f"DNS lookup failed for {host}",
            _Cause.REFUSED: f"connection refused by {host}",
            _Cause.CLOSED: f"{host} closed the connection without an answer",
            _Cause.TIMEOUT: f"cannot connect to {host}",
            None: f"cannot connect to {host}",
        }[_connection_cause(text)]
    if isinstance(error, requests.exceptions.InvalidSchema | requests.exceptions.InvalidURL):
        return f"bad URL {url!r}"
    return f"request to {host} failed ({type(error).__name__})"


def _describe_proxy_error(error: Exception, url: str, session: requests.Session) -> str:
    """Blame the proxy, not the responder: ``proxy http://p:3128: connection refused``."""

    where = f"proxy {_redact(_proxy_for(session, url) or '(from the environment)')}"
    host = urllib.parse.urlsplit(url).netloc
    text = str(error)
    tunnel = re.search(r"Tunnel connection failed: (\d{3}[^'\")]*)", text)
    if tunnel:
        return f"{where}: could not open a tunnel to {host} ({tunnel.group(1).strip()})"
    cause = {
        _Cause.DNS: "DNS lookup failed",
        _Cause.REFUSED: "connection refused",
        _Cause.CLOSED: "closed the connection without an answer",
        _Cause.TIMEOUT: "timed out",
        None: "cannot connect",
    }[_connection_cause(text)]
    return f"{where}: {cause}"


class _Cause(enum.Enum):
    DNS = enum.auto()
    REFUSED = enum.auto()
    CLOSED = enum.auto()
    TIMEOUT = enum.auto()


def _connection_cause(text: str) -> _Cause | None:
    """What a requests ConnectionError's text says went wrong."""
    if (
        "Name or service not known" in text
        or "NameResolutionError" in text
        or "getaddrinfo" in text
    ):
        return _Cause.DNS
    if "Connection refused" in text:
        return _Cause.REFUSED
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return _Cause.CLOSED
    if "timed out" in text:
        return _Cause.TIMEOUT
    return None


def _proxy_for(session: requests.Session, url: str) -> str | None:
    """The proxy requests sends ``url`` through: the session's, else the environment's."""
    import requests

    settings = session.merge_environment_settings(url, dict(session.proxies), None, None, None)
    proxy: str | None = requests.utils.select_proxy(url, settings["proxies"])
    return proxy


def _tls_cause(error: BaseException) -> str:
    """The ssl module's reason inside requests' and urllib3's wrappers, as one phrase."""
    import ssl

    found = _find_ssl_error(error, set())
    if isinstance(found, ssl.SSLCertVerificationError):
        cause = str(found.verify_message or found.reason or "").rstrip(".")
        hint = ""
        if found.verify_code in _UNKNOWN_CA_CODES:
            hint = " (a private CA? pass its certificate with --ca-bundle or ca_bundle)"
        return f"certificate verify failed: {cause}{hint}"
    if isinstance(found, ssl.SSLError):
        reason = found.reason or (found.args[1] if len(found.args) > 1 else "")
        return str(reason).replace("_", " ").lower() or "handshake failed"
    return "handshake failed"


#: X509_V_ERR_* codes meaning "the CA is not trusted here": self-signed, unknown issuer.
_UNKNOWN_CA_CODES = {2, 18, 19, 20, 21}


def _find_ssl_error(error: BaseException | None, seen: set[int]) -> BaseException | None:
    import ssl

    if error is None or id(error) in seen:
        return None
    seen.add(id(error))
    if isinstance(error, ssl.SSLError):
        return error
    nested: list[BaseException | None] = [error.__cause__, error.__context__]
    nested += [a for a in error.args if isinstance(a, BaseException)]
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        nested.append(reason)
    for inner in nested:
        found = _find_ssl_error(inner, seen)
        if found is not None:
            return found
    return None
