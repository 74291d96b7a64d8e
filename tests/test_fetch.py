"""ocsptool.fetch against the real loopback responder: GET/POST, redirects, errors."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
import requests

from ocsptool import fetch
from ocsptool.certs import parse_bundle
from ocsptool.errors import FetchError, UsageError
from ocsptool.ocsp import build_request
from ocsptool.testing.pki import Authority, key_pem
from ocsptool.testing.proxy import Proxy
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, CertDir


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with fetch.new_session() as s:
        yield s


@pytest.fixture
def request_der(cert_dir: CertDir) -> bytes:
    return build_request(parse_bundle(cert_dir.add("site")))


def test_get_url_is_percent_encoded_base64() -> None:
    der = bytes(range(256))[:60] + b"\xfb\xff"
    url = fetch.request_url("http://o.test/ocsp", der)
    assert url is not None
    tail = url.removeprefix("http://o.test/ocsp/")
    assert not set("+/=") & set(tail)
    assert base64.b64decode(urllib.parse.unquote(tail)) == der


def test_long_urls_switch_to_post() -> None:
    assert fetch.request_url("http://o.test/", b"x" * 200) is None
    assert fetch.request_url("http://o.test/" + "p" * 210, b"x" * 30) is None
    assert fetch.request_url("http://o.test", b"xxx" * 10) == "http://o.test/" + "eHh4" * 10


def test_get_by_default(
    session: requests.Session, responder: Responder, request_der: bytes
) -> None:
    got = fetch.fetch(session, responder.url, request_der)
    assert responder.methods == ["GET"]
    assert got.headers["content-type"] == "application/ocsp-response"
    assert got.body.startswith(b"\x30")


def test_post_when_the_url_is_long(
    session: requests.Session, responder: Responder, request_der: bytes
) -> None:
    long_url = responder.url + "/" + "x" * 200
    got = fetch.fetch(session, long_url, request_der)
    assert responder.methods == ["POST"]
    assert got.body.startswith(b"\x30")


def test_redirect_is_followed_within_http(
    session: requests.Session, responder: Responder, request_der: bytes
) -> None:
    responder.mode = "redirect"
    got = fetch.fetch(session, responder.url, request_der)
    assert "/r/" in got.url


def test_http_error_keeps_retry_after(
    session: requests.Session, responder: Responder, request_der: bytes
) -> None:
    responder.mode = "http503"
    with pytest.raises(FetchError) as raised:
        fetch.fetch(session, responder.url, request_der)
    assert (str(raised.value), raised.value.retry_after) == ("HTTP 503 (Retry-After: 120 s)", 120)


class _Redirector(BaseHTTPRequestHandler):
    """Each path /N redirects to /N+1: an endless chain without a loop."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        step = int(self.path.split("/")[1] or 0)
        self.send_response(301)
        self.send_header("Location", f"/{step + 1}/")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_too_many_redirects(session: requests.Session) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with pytest.raises(FetchError, match=f"^more than {fetch.MAX_REDIRECTS} redirects$"):
            fetch.fetch(session, f"http://127.0.0.1:{server.server_port}/0/", b"\x30\x00")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/ocsp",
        "http://host:port/",
        "http://host:99999/",
        "http://\udcff/",
        "http://a\nb/",
    ],
)
def test_unparseable_url_is_one_line(session: requests.Session, url: str) -> None:
    with pytest.raises(FetchError) as raised:
        fetch.fetch(session, url, b"\x30\x00")
    assert "\n" not in str(raised.value)


def test_read_timeout_in_the_middle_of_the_body(
    session: requests.Session, responder: Responder, request_der: bytes
) -> None:
    """The body stalls longer than the read timeout: one line, not a urllib3 exception."""
    responder.mode = "drip"
    timeouts = fetch.Timeouts(connect=1, read=0.1, total=5)
    with pytest.raises(FetchError) as raised:
        fetch.fetch(session, responder.url, request_der, timeouts=timeouts)
    assert str(raised.value) == f"timed out waiting for {responder.url.split('/')[2]} to answer"


def test_a_plain_session_still_gets_the_body_deadline(
    responder: Responder, request_der: bytes
) -> None:
    responder.mode = "drip"
    timeouts = fetch.Timeouts(connect=1, read=1, total=0.6)
    with requests.Session() as plain, pytest.raises(FetchError, match="too slow"):
        fetch.fetch(plain, responder.url, request_der, timeouts=timeouts)


# -- HTTPS responders with a private CA, and forward proxies ----------------------------------


@dataclass
class Tls:
    """A private CA, its bundle file, and server certificates for localhost."""

    directory: Path
    root: Authority
    ca_bundle: Path
    good: tuple[Path, Path]
    expired: tuple[Path, Path]
    self_signed: tuple[Path, Path]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    directory = tmp_path_factory.mktemp("tls")
    root = Authority.root("Private TLS Root")
    now = dt.datetime.now(dt.UTC)
    expired = root.leaf(
        "localhost",
        ocsp_url=None,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    self_signed = (directory / "self.crt", directory / "self.key")
    self_signed[0].write_bytes(root.pem)
    self_signed[1].write_bytes(key_pem(root.key))
    ca_bundle = directory / "ca.pem"
    ca_bundle.write_bytes(root.pem)
    good = root.leaf("localhost", ocsp_url=None).write_tls(directory)
    return Tls(directory, root, ca_bundle, good, expired.write_tls(directory), self_signed)


@contextmanager
def https_responder(pki: PKI, identity: tuple[Path, Path]) -> Iterator[str]:
    """An https:// responder on loopback, named ``localhost`` in its URL."""
    r = Responder()
    r.add_issuer(pki.direct)
    with r.serving(tls=identity) as url:
        yield url.replace("127.0.0.1", "localhost")


def _port(url: str) -> str:
    return url.split(":")[2].split("/", maxsplit=1)[0]


UNKNOWN_CA = " (a private CA? pass its certificate with --ca-bundle or ca_bundle)"


def test_https_responder_with_a_private_ca(pki: PKI, tls: Tls, request_der: bytes) -> None:
    with https_responder(pki, tls.good) as url, fetch.new_session(ca_bundle=tls.ca_bundle) as s:
        assert fetch.fetch(s, url, request_der).body.startswith(b"\x30")


@pytest.mark.parametrize(
    ("identity", "host", "bundle", "cause"),
    [
        ("good", "localhost", False, "self-signed certificate in certificate chain" + UNKNOWN_CA),
        ("self_signed", "localhost", False, "self-signed certificate" + UNKNOWN_CA),
        (
            "good",
            "127.0.0.1",
            True,
            "IP address mismatch, certificate is not valid for '127.0.0.1'",
        ),
        ("expired", "localhost", True, "certificate has expired"),
    ],
)
def test_tls_errors_name_the_cause(  # noqa: PLR0917 - fixtures and parameters
    pki: PKI, tls: Tls, request_der: bytes, identity: str, host: str, bundle: bool, cause: str
) -> None:
    with (
        https_responder(pki, getattr(tls, identity)) as url,
        fetch.new_session(ca_bundle=tls.ca_bundle if bundle else None) as s,
    ):
        target = url.replace("localhost", host)
        with pytest.raises(FetchError) as raised:
            fetch.fetch(s, target, request_der)
    expected = f"TLS error talking to {host}:{_port(url)}: certificate verify failed: {cause}"
    assert str(raised.value) == expected


def test_tls_to_a_plain_http_responder(
    session: requests.Session, responder: Responder, request_der: bytes
) -> None:
    url = responder.url.replace("http:", "https:")
    with pytest.raises(FetchError) as raised:
        fetch.fetch(session, url, request_der)
    assert str(raised.value) == f"TLS error talking to 127.0.0.1:{_port(url)}: wrong version number"


def test_environment_ca_variables(
    pki: PKI, tls: Tls, request_der: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the README says: REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE work, SSL_CERT_FILE does
    not, and ``ca_bundle`` wins over REQUESTS_CA_BUNDLE naming another CA."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(variable, raising=False)
    other = tmp_path / "other.pem"
    other.write_bytes(Authority.root("Other Root").pem)
    with https_responder(pki, tls.good) as url:
        for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            with monkeypatch.context() as env, fetch.new_session() as s:
                env.setenv(variable, str(tls.ca_bundle))
                assert fetch.fetch(s, url, request_der).body.startswith(b"\x30")
        with monkeypatch.context() as env, fetch.new_session() as s:
            env.setenv("SSL_CERT_FILE", str(tls.ca_bundle))
            with pytest.raises(FetchError, match="certificate verify failed"):
                fetch.fetch(s, url, request_der)
        with monkeypatch.context() as env, fetch.new_session(ca_bundle=tls.ca_bundle) as s:
            env.setenv("REQUESTS_CA_BUNDLE", str(other))
            assert fetch.fetch(s, url, request_der).body.startswith(b"\x30")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.pem", "ca_bundle {path}: no such file"),
        (lambda d: d, "ca_bundle {path}: is a directory"),
        (lambda d: _write(d / "key.pem", b"-----BEGIN X-----\nAA==\n-----END X-----\n"),
         "ca_bundle {path}: no certificate in the file"),
    ],
)  # fmt: skip
def test_bad_ca_bundle_is_one_line(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(UsageError) as raised:
        fetch.new_session(ca_bundle=path)
    assert str(raised.value) == message.format(path=path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("socks5://127.0.0.1:1080", "expected http://HOST:PORT (or https://)"),
        ("http://", "no host; expected http://HOST:PORT"),
        ("http://p:port", "Port could not be cast to integer value as 'port'"),
    ],
)
def test_bad_proxy_is_one_line(proxy: str, problem: str) -> None:
    assert fetch.proxy_problem(proxy) == problem
    with pytest.raises(UsageError) as raised:
        fetch.new_session(proxy=proxy)
    assert str(raised.value) == f"proxy {proxy!r}: {problem}"
    assert fetch.proxy_problem("http://user:pw@proxy.test:3128") is None


def test_through_a_proxy_http_and_https(
    pki: PKI, tls: Tls, responder: Responder, request_der: bytes
) -> None:
    proxy = Proxy()
    with (
        proxy.serving() as proxy_url,
        https_responder(pki, tls.good) as https_url,
        fetch.new_session(ca_bundle=tls.ca_bundle, proxy=proxy_url) as s,
    ):
        assert fetch.fetch(s, responder.url, request_der).body.startswith(b"\x30")
        assert fetch.fetch(s, https_url, request_der).body.startswith(b"\x30")
    assert proxy.carried[0].startswith(f"GET {responder.url}/")
    assert proxy.carried[1] == f"CONNECT localhost:{_port(https_url)}"


def test_proxy_from_the_environment_and_no_proxy(
    responder: Responder, request_der: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Proxy()
    with proxy.serving() as proxy_url, fetch.new_session() as s:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        fetch.fetch(s, responder.url, request_der)
        assert len(proxy.carried) == 1
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        fetch.fetch(s, responder.url, request_der)
        assert len(proxy.carried) == 1


def test_a_dead_proxy_is_blamed_not_the_responder(
    responder: Responder, request_der: bytes, dead_port: int
) -> None:
    proxy_url = f"http://127.0.0.1:{dead_port}"
    with fetch.new_session(proxy=proxy_url) as s:
        for url in (responder.url, responder.url.replace("http:", "https:")):
            with pytest.raises(FetchError) as raised:
                fetch.fetch(s, url, request_der)
            assert str(raised.value) == f"proxy {proxy_url}: connection refused"
    assert responder.requests == 0


def test_proxy_credentials_are_never_printed(request_der: bytes, dead_port: int) -> None:
    with (
        fetch.new_session(proxy=f"http://user:secret@127.0.0.1:{dead_port}") as s,
        pytest.raises(FetchError) as raised,
    ):
        fetch.fetch(s, "http://o.test/ocsp", request_der)
    assert str(raised.value) == f"proxy http://user:***@127.0.0.1:{dead_port}: connection refused"


def test_a_proxy_that_cannot_reach_the_responder(request_der: bytes, dead_port: int) -> None:
    proxy = Proxy()
    with proxy.serving() as proxy_url, fetch.new_session(proxy=proxy_url) as s:
        with pytest.raises(FetchError) as raised:
            fetch.fetch(s, f"http://127.0.0.1:{dead_port}/ocsp", request_der)
        assert str(raised.value) == (
            f"proxy {proxy_url}: answered HTTP 502 (could not reach 127.0.0.1:{dead_port})"
        )
        with pytest.raises(FetchError) as raised:
            fetch.fetch(s, f"https://127.0.0.1:{dead_port}/ocsp", request_der)
        assert str(raised.value) == (
            f"proxy {proxy_url}: could not open a tunnel to 127.0.0.1:{dead_port} (502 Bad Gateway)"
        )


def test_the_deadline_holds_through_a_proxy(responder: Responder, request_der: bytes) -> None:
    """The proxy's pools are guarded too: a tarpit behind a proxy cannot hold a run."""
    responder.mode = "drip_headers"
    proxy = Proxy()
    timeouts = fetch.Timeouts(connect=1, read=5, total=0.6)
    with proxy.serving() as proxy_url, fetch.new_session(proxy=proxy_url) as s:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"^response too slow; gave up$"):
            fetch.fetch(s, responder.url, request_der, timeouts=timeouts)
        assert time.monotonic() - started < 3


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
