"""ocsptool.fetch against the real loopback responder: GET/POST, redirects, errors."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
import requests

from ocsptool import fetch
from ocsptool.certs import parse_bundle
from ocsptool.errors import FetchError
from ocsptool.ocsp import build_request
from ocsptool.testing.responder import Responder
from tests.conftest import CertDir


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
