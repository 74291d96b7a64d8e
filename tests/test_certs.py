"""ocsptool.certs: reading bundles, finding the leaf and its issuer."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ocsptool import certs
from ocsptool.errors import CertificateError
from ocsptool.testing.pki import Authority, key_pem
from tests.conftest import PKI

URL = "http://ocsp.test/"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bundle_with_chain_and_key(tmp_path: Path, pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL, must_staple=True)
    bundle = certs.parse_bundle(write(tmp_path, "a.pem", leaf.bundle_pem()))
    assert bundle.leaf == leaf.cert
    assert bundle.issuer == pki.direct.cert
    assert bundle.issuer_file is None
    assert bundle.issuer_pem() is None
    assert (bundle.ocsp_url, bundle.name, bundle.must_staple) == (URL, "site.test", True)
    assert len(bundle.fingerprint) == 64


def test_issuer_file_is_used_and_exposed_for_haproxy(tmp_path: Path, pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    path = write(tmp_path, "a.pem", leaf.bundle_pem(chain=False))
    write(tmp_path, "a.pem.issuer", pki.root.pem + pki.direct.pem)
    bundle = certs.parse_bundle(path)
    assert bundle.issuer == pki.direct.cert
    assert bundle.issuer_file == tmp_path / "a.pem.issuer"
    assert bundle.issuer_pem() == pki.direct.pem


def test_the_issuer_where_a_server_configuration_says(tmp_path: Path, pki: PKI) -> None:
    """A crt-store/crt-list ``issuer``, ``x.issuer`` with del-ext, issuers-chain-path."""
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    path = write(tmp_path, "a.crt", leaf.bundle_pem(chain=False))
    named = write(tmp_path, "a.issuer", pki.direct.pem)
    bundle = certs.parse_bundle(path, [named])
    assert (bundle.issuer, bundle.issuer_file) == (pki.direct.cert, named)
    chains = tmp_path / "chains"
    chains.mkdir()
    files = [
        write(chains, "0-bad", b"not a certificate"),
        write(chains, "1-other", pki.delegated.pem + pki.direct.pem),  # only the first counts
        write(chains, "2-direct", pki.direct.pem + pki.root.pem),
    ]
    bundle = certs.parse_bundle(path, (), files)
    assert (bundle.issuer, bundle.issuer_file) == (pki.direct.cert, files[2])
    wrong = write(tmp_path, "wrong.pem", pki.delegated.pem)
    with pytest.raises(CertificateError) as named_wrong:  # a named file says what is wrong
        certs.parse_bundle(path, [wrong], files[:2])
    assert str(named_wrong.value) == (
        "wrong.pem does not hold the issuer (CN=Direct Intermediate); "
        "replace it with the right intermediate certificate"
    )
    with pytest.raises(CertificateError) as none:
        certs.parse_bundle(path, [tmp_path / "missing.pem"], files[:2])
    assert str(none.value).startswith("issuer CN=Direct Intermediate")
    assert str(none.value).endswith("put it in a.crt.issuer")


def test_chain_in_any_order(tmp_path: Path, pki: PKI) -> None:
    leaf = pki.delegated.leaf("site.test", ocsp_url=URL)
    pem = b"".join(
        c.public_bytes(serialization.Encoding.PEM)
        for c in (pki.root.cert, pki.delegated.cert, leaf.cert)
    )
    assert certs.parse_bundle(write(tmp_path, "a.pem", pem)).issuer == pki.delegated.cert


def test_der_file(tmp_path: Path, pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert certs.read_certificates(der) == [leaf.cert]


def test_crlf_pem_and_trusted_certificate_blocks(pki: PKI) -> None:
    pem = pki.direct.pem.replace(b"\n", b"\r\n")
    trusted = pki.root.pem.replace(b"CERTIFICATE", b"TRUSTED CERTIFICATE")
    assert certs.read_certificates(pem + trusted) == [pki.direct.cert, pki.root.cert]


def test_keys_are_skipped_never_decoded(pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    broken_key = b"-----BEGIN PRIVATE KEY-----\n!!!not base64!!!\n-----END PRIVATE KEY-----\n"
    assert certs.read_certificates(broken_key + leaf.bundle_pem()) == [
        leaf.cert,
        pki.direct.cert,
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file; expected a PEM bundle or a DER certificate"),
        (b"  \n\t", "empty file; expected a PEM bundle or a DER certificate"),
        (b"hello", "not a certificate (neither PEM nor DER)"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "truncated PEM (a BEGIN line without its END)"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "certificate block 1 is corrupt",
        ),
    ],
)
def test_read_certificates_errors(data: bytes, message: str) -> None:
    with pytest.raises(CertificateError) as raised:
        certs.read_certificates(data)
    assert str(raised.value) == message


def test_parse_errors(tmp_path: Path, pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    cases = {
        "key.pem": (
            key_pem(leaf.key),
            "no certificate in the file (only keys or other PEM blocks)",
        ),
        "ca.pem": (pki.direct.pem, "only CA certificates; no leaf certificate found"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(CertificateError) as raised:
            certs.parse_bundle(write(tmp_path, name, data))
        assert str(raised.value) == message


def test_read_file_limits_and_errors(tmp_path: Path) -> None:
    big = write(tmp_path, "big.pem", b"x" * 101)
    with pytest.raises(CertificateError, match=r"^over 0 KiB"):
        certs.read_file(big, limit=100)
    assert certs.read_file(big, limit=101) == b"x" * 101
    with pytest.raises(CertificateError, match=r"^no such file$"):
        certs.read_file(tmp_path / "missing")
    with pytest.raises(CertificateError, match=r"^is a directory$"):
        certs.read_file(tmp_path)


def test_is_ca_and_describe_name(pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=None)
    assert certs.is_ca(pki.direct.cert)
    assert not certs.is_ca(leaf.cert)
    assert certs.describe_name(pki.direct.cert.subject) == "CN=Direct Intermediate"
    assert certs.ocsp_url(leaf.cert) is None


def test_validity_problem(pki: PKI) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    expired = pki.direct.leaf(
        "old.test",
        ocsp_url=URL,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    early = pki.direct.leaf(
        "new.test",
        ocsp_url=URL,
        not_before=now + dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=10),
    )
    assert certs.validity_problem(expired.cert, now) == (
        "certificate expired on 2029-12-31 00:00 UTC; renew it"
    )
    assert certs.validity_problem(early.cert, now) == (
        "certificate not valid before 2030-01-02 00:00 UTC"
    )
    assert certs.validity_problem(expired.cert, now - dt.timedelta(days=5)) is None


def test_a_leaf_whose_issuer_has_the_same_name_but_another_key(tmp_path: Path) -> None:
    """Name matching is not enough: the issuer must have signed the leaf."""
    real = Authority.root("Same Name CA")
    impostor = Authority.root("Same Name CA")
    leaf = real.leaf("site.test", ocsp_url=URL)
    path = write(tmp_path, "a.pem", leaf.bundle_pem(chain=False) + impostor.pem)
    with pytest.raises(CertificateError, match="issuer CN=Same Name CA not found in the bundle"):
        certs.parse_bundle(path)


@pytest.mark.parametrize(
    "data",
    [
        b"-----BEGIN CERTIFICATE-----\n" * 37000,
        b"-----BEGIN CERTIFICATE-----\n" + b"A" * 1_000_000,
        b"-----BEGIN X-----\n-----END X-----\n" * 30000,
    ],
    ids=["begins", "endless-body", "many-blocks"],
)
def test_pem_parsing_is_linear(data: bytes) -> None:
    """A 1 MiB file of markers once took minutes (a backtracking regex); now milliseconds."""
    started = time.monotonic()
    with contextlib.suppress(CertificateError):
        certs.read_certificates(data)
    assert time.monotonic() - started < 0.5


def test_mismatched_pem_markers() -> None:
    data = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(CertificateError) as raised:
        certs.read_certificates(data)
    assert str(raised.value) == "malformed PEM (BEGIN CERTIFICATE ended by END PRIVATE KEY)"
