"""The issuer of a leaf-only bundle via AIA caIssuers, against a real caIssuers server."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from ocsptool import fetch
from ocsptool.certs import parse_bundle
from ocsptool.errors import CertificateError, FetchError
from ocsptool.issuers import (
    ca_issuers_urls,
    chain_warning,
    fetch_issuer,
    issuer_path,
    leaf_without_issuer,
    parse_certificates,
    write_issuer,
)
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.issuers import CaIssuers
from tests.conftest import PKI

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with fetch.new_session() as s:
        yield s


def _leaf(pki: PKI, *urls: str) -> x509.Certificate:
    return pki.direct.leaf("aia.test", ocsp_url="http://o.test/", ca_issuers=list(urls)).cert


@pytest.mark.parametrize("path", ["ca.der", "ca.pem", "ca.p7c", "ca.p7c.pem", "redirect"])
def test_every_format_gives_the_issuer(
    session: requests.Session, pki: PKI, server: CaIssuers, path: str
) -> None:
    leaf = _leaf(pki, server.url(path))
    assert fetch_issuer(session, leaf, now=NOW) == pki.direct.cert


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        ("garbage", "not a certificate (got HTML or XML)"),
        ("other.der", "CN=Stranger CA did not issue this certificate"),
        ("empty.p7c", "PKCS#7 bundle without certificates"),
    ],
)
def test_unusable_answers_are_one_certificate_error(
    session: requests.Session, pki: PKI, server: CaIssuers, path: str, cause: str
) -> None:
    url = server.url(path)
    with pytest.raises(CertificateError) as raised:
        fetch_issuer(session, _leaf(pki, url), now=NOW)
    assert str(raised.value) == f"issuer CN=Direct Intermediate via caIssuers: {url}: {cause}"


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        ("loop", "redirect loop at {base}/loop"),
        ("huge", "response of 20971520 bytes is over the 65536-byte cap"),
        ("missing", "HTTP 404"),
    ],
)
def test_unfetchable_answers_are_one_fetch_error(
    session: requests.Session, pki: PKI, server: CaIssuers, path: str, cause: str
) -> None:
    url = server.url(path)
    with pytest.raises(FetchError) as raised:
        fetch_issuer(session, _leaf(pki, url), now=NOW)
    expected = (
        f"issuer CN=Direct Intermediate via caIssuers: {url}: {cause.format(base=server.base)}"
    )
    assert str(raised.value) == expected


def test_only_http_and_https(session: requests.Session, pki: PKI, server: CaIssuers) -> None:
    ldap = "ldap://ldap.example.test/cn=CA?cACertificate"
    leaf = _leaf(pki, ldap, server.url("ca.der"))
    assert fetch_issuer(session, leaf, now=NOW) == pki.direct.cert
    with pytest.raises(FetchError) as raised:
        fetch_issuer(session, _leaf(pki, ldap), now=NOW)
    assert str(raised.value) == (
        f"issuer CN=Direct Intermediate via caIssuers: {ldap}: "
        f"refusing ldap URL '{ldap}': only http and https"
    )
    assert server.requests == ["/ca.der"]


def test_the_next_url_after_a_bad_one(
    session: requests.Session, pki: PKI, server: CaIssuers
) -> None:
    leaf = _leaf(pki, server.url("other.der"), server.url("garbage"), server.url("ca.p7c"))
    assert fetch_issuer(session, leaf, now=NOW) == pki.direct.cert
    assert server.requests == ["/other.der", "/garbage", "/ca.p7c"]


def test_every_cause_when_none_works(
    session: requests.Session, pki: PKI, server: CaIssuers
) -> None:
    other, loop = server.url("other.der"), server.url("loop")
    with pytest.raises(FetchError) as raised:
        fetch_issuer(session, _leaf(pki, other, loop), now=NOW)
    assert str(raised.value) == (
        f"issuer CN=Direct Intermediate via caIssuers: {other}: CN=Stranger CA did not "
        f"issue this certificate; {loop}: redirect loop at {loop}"
    )


def test_no_ca_issuers_url(session: requests.Session, pki: PKI) -> None:
    with pytest.raises(CertificateError) as raised:
        fetch_issuer(session, _leaf(pki), now=NOW)
    assert str(raised.value) == (
        "issuer CN=Direct Intermediate not found in the bundle, and the certificate names "
        "no caIssuers URL; append the intermediate certificate"
    )


def test_a_too_slow_server_hits_the_deadline(session: requests.Session, pki: PKI) -> None:
    from ocsptool.testing.responder import Responder

    tarpit = Responder(mode="drip_headers")
    with tarpit.serving() as url:
        timeouts = fetch.Timeouts(connect=1, read=1, total=0.6)
        with pytest.raises(FetchError) as raised:
            fetch_issuer(session, _leaf(pki, url), now=NOW, timeouts=timeouts)
    assert str(raised.value) == (
        f"issuer CN=Direct Intermediate via caIssuers: {url}: response too slow; gave up"
    )


def test_leaf_only_bundle_to_a_parsed_bundle(
    session: requests.Session, pki: PKI, server: CaIssuers, tmp_path: Path
) -> None:
    """The pipeline's flow: parse fails, fetch, write ``.issuer``, parse succeeds."""
    url = server.url("ca.p7c")
    leaf = pki.direct.leaf("aia.test", ocsp_url="http://o.test/", ca_issuers=url)
    path = leaf.write_bundle(tmp_path / "aia.pem", chain=False)
    with pytest.raises(CertificateError):
        parse_bundle(path)
    found = leaf_without_issuer(path)
    assert found == leaf.cert
    assert ca_issuers_urls(found) == [url]
    old_umask = os.umask(0o077)
    try:
        written = write_issuer(path, fetch_issuer(session, found, now=NOW))
    finally:
        os.umask(old_umask)
    assert written == issuer_path(path) == tmp_path / "aia.pem.issuer"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert written.read_bytes() == pki.direct.pem
    bundle = parse_bundle(path)
    assert (bundle.issuer, bundle.issuer_file) == (pki.direct.cert, written)
    assert leaf_without_issuer(path) is None  # the file is the cache: nothing to fetch
    assert not list(tmp_path.glob("*.tmp*"))
    assert chain_warning(path, bundle.issuer, url) == (
        f"aia.pem: the bundle lacks its chain; fetched the issuer CN=Direct Intermediate "
        f"from {url} into aia.pem.issuer (TLS clients may fail to build the chain too: "
        "append the intermediate)"
    )


def test_a_complete_bundle_needs_no_fetch(pki: PKI, tmp_path: Path) -> None:
    leaf = pki.direct.leaf("full.test", ocsp_url="http://o.test/")
    assert leaf_without_issuer(leaf.write_bundle(tmp_path / "full.pem")) is None
    assert leaf_without_issuer(tmp_path / "missing.pem") is None


def test_pem_without_certificates() -> None:
    with pytest.raises(CertificateError, match=r"^PEM without a certificate$"):
        parse_certificates(b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")


@pytest.mark.haproxy
def test_haproxy_staples_a_leaf_only_bundle_with_the_fetched_issuer(  # noqa: PLR0917 - fixtures
    session: requests.Session,
    pki: PKI,
    server: CaIssuers,
    responder: object,
    tmp_path: Path,
    start_haproxy: Callable[..., HAProxy],
) -> None:
    """Leaf-only bundle: issuer via caIssuers, staple via the responder, HAProxy serves it
    from ``.issuer`` and ``.ocsp`` on disk, and again after a restart."""
    from ocsptool.ocsp import build_request, verify
    from ocsptool.testing.responder import Responder

    assert isinstance(responder, Responder)
    certs = tmp_path / "certs"
    certs.mkdir()
    leaf = pki.direct.leaf("aia.test", ocsp_url=responder.url, ca_issuers=server.url("ca.der"))
    path = leaf.write_bundle(certs / "aia.pem", chain=False)
    found = leaf_without_issuer(path)
    assert found is not None
    write_issuer(path, fetch_issuer(session, found, now=NOW))
    bundle = parse_bundle(path)
    staple, _ = fetch.fetch_first(
        session,
        [responder.url],
        build_request(bundle),
        lambda der: verify(der, bundle, dt.datetime.now(dt.UTC)),
    )
    Path(f"{path}.ocsp").write_bytes(staple.der)
    proxy = start_haproxy(path)
    assert tls_staple(proxy.port, "aia.test") == staple.der
    proxy.restart()
    assert tls_staple(proxy.port, "aia.test") == staple.der
