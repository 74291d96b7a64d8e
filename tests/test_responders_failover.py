"""Failover across every OCSP URL, and responder_overrides, against real loopback responders."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from ocsptool import fetch
from ocsptool.certs import Bundle, ocsp_url, ocsp_urls, parse_bundle
from ocsptool.errors import ConfigError, FetchError, ResponseRejected
from ocsptool.ocsp import Staple, build_request, verify
from ocsptool.responders import parse_overrides, urls_for
from ocsptool.testing.responder import Responder
from tests.conftest import PKI

FAST = fetch.Timeouts(connect=1, read=0.3, total=2)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with fetch.new_session() as s:
        yield s


@pytest.fixture
def dead_url() -> str:
    """A loopback port nothing listens on: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ocsp"


@pytest.fixture
def make_responder(pki: PKI) -> Iterator[Callable[[str], Responder]]:
    """More responders, each on its own port: ``make_responder("hang")``."""
    stack: list[Iterator[str]] = []

    def make(mode: str = "good") -> Responder:
        r = Responder(mode=mode)
        r.add_issuer(pki.direct)
        serving = r.serving()
        serving.__enter__()
        stack.append(serving)  # type: ignore[arg-type]
        return r

    yield make
    for serving in reversed(stack):
        serving.__exit__(None, None, None)  # type: ignore[attr-defined]


def _bundle(pki: PKI, tmp_path: Path, urls: list[str]) -> Bundle:
    leaf = pki.direct.leaf("multi.test", ocsp_url=urls)
    return parse_bundle(leaf.write_bundle(tmp_path / "multi.pem"))


def _verifier(bundle: Bundle) -> Callable[[bytes], Staple]:
    now = dt.datetime.now(dt.UTC)
    return lambda der: verify(der, bundle, now)


def _host(url: str) -> str:
    return url.split("/")[2]


def _first_ok(session: requests.Session, bundle: Bundle) -> tuple[Staple, str]:
    return fetch.fetch_first(
        session, ocsp_urls(bundle.leaf), build_request(bundle), _verifier(bundle), timeouts=FAST
    )


def test_every_ocsp_url_is_read_in_order(pki: PKI, tmp_path: Path) -> None:
    urls = ["http://a.test/ocsp", "http://b.test/ocsp", "http://a.test/ocsp", "http://c.test/"]
    leaf = pki.direct.leaf("x.test", ocsp_url=urls).cert
    assert ocsp_urls(leaf) == ["http://a.test/ocsp", "http://b.test/ocsp", "http://c.test/"]
    assert ocsp_url(leaf) == "http://a.test/ocsp"
    assert ocsp_urls(pki.direct.leaf("y.test", ocsp_url=None).cert) == []


@pytest.mark.parametrize("first", ["refused", "hang", "garbage"])
def test_two_urls_the_first_failing(  # noqa: PLR0917 - fixtures
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    dead_url: str,
    make_responder: Callable[[str], Responder],
    first: str,
) -> None:
    good = make_responder("good")
    first_url = dead_url if first == "refused" else make_responder(first).url
    bundle = _bundle(pki, tmp_path, [first_url, good.url])
    staple, url = _first_ok(session, bundle)
    assert (staple.status, url) == ("good", good.url)
    assert good.requests == 1


def test_three_urls_the_third_answers(
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    dead_url: str,
    make_responder: Callable[[str], Responder],
) -> None:
    hang, good = make_responder("hang"), make_responder("good")
    bundle = _bundle(pki, tmp_path, [dead_url, hang.url, good.url])
    staple, url = _first_ok(session, bundle)
    assert (staple.status, url) == ("good", good.url)


def test_three_urls_none_answers_reports_every_cause(
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    dead_url: str,
    make_responder: Callable[[str], Responder],
) -> None:
    hang, garbage = make_responder("hang"), make_responder("garbage")
    bundle = _bundle(pki, tmp_path, [dead_url, hang.url, garbage.url])
    with pytest.raises(FetchError) as raised:
        _first_ok(session, bundle)
    assert type(raised.value) is FetchError
    assert str(raised.value) == (
        f"{dead_url}: connection refused by {_host(dead_url)}; "
        f"{hang.url}: timed out waiting for {_host(hang.url)} to answer; "
        f"{garbage.url}: not an OCSP response (got HTML or XML)"
    )
    assert raised.value.retry_after is None


def test_all_rejected_is_a_rejection(
    session: requests.Session, pki: PKI, tmp_path: Path, make_responder: Callable[[str], Responder]
) -> None:
    a, b = make_responder("garbage"), make_responder("tryLater")
    bundle = _bundle(pki, tmp_path, [a.url, b.url])
    with pytest.raises(ResponseRejected) as raised:
        _first_ok(session, bundle)
    assert str(raised.value) == (
        f"{a.url}: not an OCSP response (got HTML or XML); {b.url}: responder said tryLater"
    )


def test_retry_after_is_kept(
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    dead_url: str,
    make_responder: Callable[[str], Responder],
) -> None:
    busy = make_responder("http503")
    bundle = _bundle(pki, tmp_path, [busy.url, dead_url])
    with pytest.raises(FetchError) as raised:
        _first_ok(session, bundle)
    assert raised.value.retry_after == 120
    assert str(raised.value) == (
        f"{busy.url}: HTTP 503 (Retry-After: 120 s); "
        f"{dead_url}: connection refused by {_host(dead_url)}"
    )


def test_no_url_at_all(session: requests.Session) -> None:
    with pytest.raises(FetchError, match=r"^no OCSP URL to ask$"):
        fetch.fetch_first(session, [], b"", lambda der: der)


def test_the_url_that_worked_goes_first() -> None:
    urls = ["http://a/", "http://b/", "http://c/"]
    assert fetch.order_urls(urls, "http://c/") == ["http://c/", "http://a/", "http://b/"]
    assert fetch.order_urls(urls, None) == urls
    assert fetch.order_urls(urls, "http://gone/") == urls


def test_remembered_url_is_asked_first(
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    make_responder: Callable[[str], Responder],
) -> None:
    one, two = make_responder("good"), make_responder("good")
    bundle = _bundle(pki, tmp_path, [one.url, two.url])
    urls = fetch.order_urls(ocsp_urls(bundle.leaf), two.url)
    _, url = fetch.fetch_first(session, urls, build_request(bundle), _verifier(bundle))
    assert (url, one.requests, two.requests) == (two.url, 0, 1)


# -- responder_overrides ----------------------------------------------------------------------


def _key_id(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


@pytest.mark.parametrize("form", ["short name", "full name", "hex", "hex with colons"])
def test_override_to_a_responder_on_another_port(  # noqa: PLR0917 - fixtures
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    dead_url: str,
    make_responder: Callable[[str], Responder],
    form: str,
) -> None:
    private = make_responder("good")
    key_id = _key_id(pki.direct.cert)
    key = {
        "short name": "CN=Direct Intermediate",
        "full name": pki.direct.cert.subject.rfc4514_string(),
        "hex": key_id.hex().upper(),
        "hex with colons": ":".join(f"{b:02x}" for b in key_id),
    }[form]
    overrides = parse_overrides({key: private.url})
    bundle = _bundle(pki, tmp_path, [dead_url])
    urls = urls_for(bundle.leaf, bundle.issuer, overrides)
    assert urls == [private.url]
    staple, url = fetch.fetch_first(session, urls, build_request(bundle), _verifier(bundle))
    assert (staple.status, url, private.requests) == ("good", private.url, 1)


def test_override_of_another_issuer_leaves_the_certificate_urls(pki: PKI, tmp_path: Path) -> None:
    overrides = parse_overrides({"CN=Delegating Intermediate": "http://other.test/"})
    bundle = _bundle(pki, tmp_path, ["http://a.test/", "http://b.test/"])
    assert urls_for(bundle.leaf, bundle.issuer, overrides) == ["http://a.test/", "http://b.test/"]
    assert urls_for(bundle.leaf, bundle.issuer) == ["http://a.test/", "http://b.test/"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            ["http://x/"],
            "responder_overrides: must be a table of issuer = URL, e.g. [responder_overrides] "
            '"CN=Example CA" = "http://..."',
        ),
        (
            {"CN=Example CA": 3},
            "responder_overrides: 'CN=Example CA': the value must be a URL in quotes",
        ),
        (
            {"CN=Example CA": "ftp://x/"},
            "responder_overrides: 'CN=Example CA': refusing ftp URL 'ftp://x/': "
            "only http and https",
        ),
        (
            {"Example CA": "http://x/"},
            "responder_overrides: 'Example CA': not a key identifier in hex (e.g. 6a:3f:...) "
            "nor an issuer name (e.g. CN=Example CA)",
        ),
        (
            {"abc": "http://x/"},
            "responder_overrides: 'abc': a key identifier is 4 to 64 bytes of hex (3 digits)",
        ),
        (
            {"ab:cd:ef:": "http://x/"},
            "responder_overrides: 'ab:cd:ef:': not a key identifier in hex (e.g. 6a:3f:...) "
            "nor an issuer name (e.g. CN=Example CA)",
        ),
        (
            {"CN=a,==b": "http://x/"},
            "responder_overrides: 'CN=a,==b': not an issuer name (RFC 4514, e.g. "
            "CN=Example CA,O=Example) nor a key identifier in hex",
        ),
    ],
)
def test_bad_overrides_are_one_line_naming_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_overrides(value)
    assert str(raised.value) == message
