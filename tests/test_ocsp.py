"""ocsptool.ocsp: the request, and every rule of ``verify`` at its exact boundaries.

Responses are built here with cryptography's builder so each field is under the test's
control, and ``now`` is passed in, so no clock is frozen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsptool.certs import Bundle
from ocsptool.errors import ResponseRejected
from ocsptool.ocsp import build_request, verify
from ocsptool.testing.pki import Authority
from tests.conftest import PKI

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
MIN = dt.timedelta(minutes=1)


@pytest.fixture(scope="module")
def site(pki: PKI) -> Bundle:
    leaf = pki.direct.leaf("site.test", ocsp_url="http://ocsp.test/")
    return Bundle(Path("site.pem"), leaf.cert, pki.direct.cert, None)


def respond(
    bundle: Bundle,
    signer: Authority,
    *,
    this_update: dt.datetime = NOW - MIN,
    next_update: dt.datetime | None = NOW + dt.timedelta(days=4),
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    by_name: bool = False,
    include: list[x509.Certificate] | None = None,
) -> bytes:
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=bundle.leaf,
        issuer=bundle.issuer,
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=NOW - dt.timedelta(days=1) if revoked else None,
        revocation_reason=x509.ReasonFlags.superseded if revoked else None,
    )
    encoding = ocsp.OCSPResponderEncoding.NAME if by_name else ocsp.OCSPResponderEncoding.HASH
    builder = builder.responder_id(encoding, signer.cert)
    if include:
        builder = builder.certificates(include)
    response = builder.sign(signer.key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def rejected(der: bytes, bundle: Bundle, now: dt.datetime = NOW) -> str:
    with pytest.raises(ResponseRejected) as raised:
        verify(der, bundle, now)
    return str(raised.value)


def test_request_is_sha1_for_the_leaf(site: Bundle) -> None:
    request = ocsp.load_der_ocsp_request(build_request(site))
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    assert request.serial_number == site.leaf.serial_number
    assert list(request.extensions) == []  # no nonce: pre-produced responses stay usable


def test_good_signed_by_the_issuer(site: Bundle, pki: PKI) -> None:
    staple = verify(respond(site, pki.direct), site, NOW)
    assert (staple.status, staple.signer) == ("good", "the issuer")
    assert staple.this_update == NOW - MIN
    assert staple.revocation_time is None


def test_responder_by_name(site: Bundle, pki: PKI) -> None:
    assert verify(respond(site, pki.direct, by_name=True), site, NOW).status == "good"


def test_revoked_carries_time_and_reason(site: Bundle, pki: PKI) -> None:
    staple = verify(respond(site, pki.direct, status=ocsp.OCSPCertStatus.REVOKED), site, NOW)
    assert staple.status == "revoked"
    assert staple.revocation_time == NOW - dt.timedelta(days=1)
    assert staple.revocation_reason == "superseded"


def test_unknown_is_rejected(site: Bundle, pki: PKI) -> None:
    der = respond(site, pki.direct, status=ocsp.OCSPCertStatus.UNKNOWN)
    assert rejected(der, site) == "responder does not know this certificate (status unknown)"


def test_delegated_signer(pki: PKI) -> None:
    leaf = pki.delegated.leaf("d.test", ocsp_url="http://ocsp.test/")
    bundle = Bundle(Path("d.pem"), leaf.cert, pki.delegated.cert, None)
    der = respond(bundle, pki.signer, include=[pki.signer.cert])
    assert verify(der, bundle, NOW).signer == "delegate CN=OCSP Responder"
    # The delegate's certificate must be in the response to be trusted.
    assert rejected(respond(bundle, pki.signer), bundle) == (
        f"signed by key hash {_key_hash(pki.signer)}, which is not authorised for this issuer"
    )


def test_delegate_of_a_sibling_ca_is_refused(site: Bundle, pki: PKI) -> None:
    """The delegated CA's responder may not answer for the direct CA's certificates."""
    der = respond(site, pki.signer, include=[pki.signer.cert])
    assert rejected(der, site) == (
        "signed by CN=OCSP Responder, which is not authorised for this issuer"
    )


def test_delegate_validity_is_checked_at_now(pki: PKI) -> None:
    leaf = pki.delegated.leaf("d.test", ocsp_url="http://ocsp.test/")
    bundle = Bundle(Path("d.pem"), leaf.cert, pki.delegated.cert, None)
    der = respond(bundle, pki.signer, include=[pki.signer.cert])
    later = pki.signer.cert.not_valid_after_utc + MIN
    message = rejected(der, bundle, later)
    assert message.startswith("signed by CN=OCSP Responder, whose certificate is not valid now")


@pytest.mark.parametrize(
    ("this_offset", "ok"),
    [(dt.timedelta(minutes=4), True), (dt.timedelta(minutes=5, seconds=1), False)],
)
def test_this_update_skew_boundary(
    site: Bundle, pki: PKI, this_offset: dt.timedelta, ok: bool
) -> None:
    der = respond(site, pki.direct, this_update=NOW + this_offset)
    if ok:
        verify(der, site, NOW)
    else:
        assert rejected(der, site).endswith("is in the future")


@pytest.mark.parametrize(
    ("seconds_left", "message"),
    [
        (301, None),
        (300, "is less than 5 minutes away; HAProxy would not serve it"),
        (0, "has already passed"),
        (-3600, "has already passed"),
    ],
)
def test_next_update_boundaries(
    site: Bundle, pki: PKI, seconds_left: int, message: str | None
) -> None:
    next_update = NOW + dt.timedelta(seconds=seconds_left)
    der = respond(site, pki.direct, this_update=NOW - dt.timedelta(days=1), next_update=next_update)
    if message is None:
        assert verify(der, site, NOW).next_update == next_update
    else:
        assert rejected(der, site).endswith(message)


def test_next_update_missing(site: Bundle, pki: PKI) -> None:
    der = respond(site, pki.direct, next_update=None)
    assert rejected(der, site) == "nextUpdate missing; the response cannot be scheduled or served"


def test_response_for_another_issuer_with_the_same_serial(site: Bundle, pki: PKI) -> None:
    other = Bundle(site.path, site.leaf, pki.delegated.cert, None)
    der = respond(other, pki.delegated)
    assert rejected(der, site) == "CertID names another issuer"


def test_error_messages_are_one_line(site: Bundle) -> None:
    for der in (b"", b"<html>", b"\x30\x03\x0a\x01\x03", b"\x30" * 40):
        assert "\n" not in rejected(der, site)


def _key_hash(authority: Authority) -> str:
    return x509.SubjectKeyIdentifier.from_public_key(authority.cert.public_key()).digest.hex()


def test_impostor_with_the_issuers_name_is_refused(site: Bundle) -> None:
    """Responder ID by name matches the issuer, but another key signed: bad signature."""
    impostor = Authority.root("Direct Intermediate")
    impostor.cert = _with_subject(impostor, site.issuer.subject)
    der = respond(site, impostor, by_name=True)
    assert rejected(der, site) == "bad signature (signer CN=Direct Intermediate)"


def test_forged_delegate_naming_the_issuer_is_refused(site: Bundle) -> None:
    """A delegate whose issuer *name* is right but which the issuer never signed."""
    forger = Authority.root("Forger")
    forger.cert = _with_subject(forger, site.issuer.subject)
    fake = forger.ocsp_signer("Fake OCSP")
    der = respond(site, fake, include=[fake.cert])
    assert rejected(der, site) == "signed by CN=Fake OCSP, which is not authorised for this issuer"


def _with_subject(authority: Authority, subject: x509.Name) -> x509.Certificate:
    """``authority``'s certificate re-issued (self-signed) under another subject name."""
    cert = authority.cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(authority.key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(authority.key, hashes.SHA256())
