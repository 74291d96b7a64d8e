"""OCSP requests and responses: build a SHA-1 request, verify a response by every rule.

HAProxy 2.6 checks no signature, so ``verify`` is the only gate between a responder
and the clients: a response that fails any check raises ``ResponseRejected``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocsptool.certs import describe_name
from ocsptool.errors import ResponseRejected, StatusUnknown
from ocsptool.freshness import lapsing
from ocsptool.times import iso

#: How far thisUpdate may lie in the future (clock skew between us and the CA).
CLOCK_SKEW = dt.timedelta(minutes=5)

_STATUS_NAMES = {
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    ocsp.OCSPResponseStatus.TRY_LATER: "tryLater",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}


class CertPair(Protocol):
    """A leaf and its issuer: a ``certs.Bundle`` or a ``target.Target``."""

    @property
    def leaf(self) -> x509.Certificate: ...

    @property
    def issuer(self) -> x509.Certificate: ...


@dataclass(frozen=True)
class Staple:
    """A verified OCSP response for one certificate."""

    der: bytes
    status: str  # "good" or "revoked"
    this_update: dt.datetime
    next_update: dt.datetime
    produced_at: dt.datetime
    signer: str  # "the issuer" or "delegate CN=..."
    revocation_time: dt.datetime | None = None
    revocation_reason: str | None = None


def build_request(bundle: CertPair) -> bytes:
    """A DER OCSP request with a SHA-1 CertID (the only kind HAProxy matches)."""
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(bundle.leaf, bundle.issuer, hashes.SHA1())  # noqa: S303 - RFC 5019 CertID
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


def verify(der: bytes, bundle: CertPair, now: dt.datetime) -> Staple:
    """Check ``der`` against ``bundle`` by every rule of RFC 6960 a stapler needs."""
    try:
        return _verify(der, bundle, now)
    except UnsupportedAlgorithm as e:
        raise ResponseRejected(f"malformed OCSP response ({e})") from None
    except (ValueError, KeyError, x509.InvalidVersion):
        # cryptography parses lazily: a corrupt field surfaces when it is first read.
        raise ResponseRejected("malformed OCSP response (a field cannot be parsed)") from None


def _verify(der: bytes, bundle: CertPair, now: dt.datetime) -> Staple:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise ResponseRejected(f"not an OCSP response ({_describe_bytes(der)})") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        name = _STATUS_NAMES.get(response.response_status, str(response.response_status))
        raise ResponseRejected(f"responder said {name}")
    singles = list(response.responses)
    if len(singles) != 1:
        raise ResponseRejected(
            f"{len(singles)} SingleResponses in one response; expected exactly one"
        )
    _check_cert_id(singles[0], bundle)
    signer = _check_signature(response, bundle, now)
    this_update = response.this_update_utc
    next_update = response.next_update_utc
    if this_update > now + CLOCK_SKEW:
        raise ResponseRejected(f"thisUpdate {iso(this_update)} is in the future")
    if next_update is None:
        raise ResponseRejected("nextUpdate missing; the response cannot be scheduled or served")
    if next_update <= now:
        raise ResponseRejected(f"nextUpdate {iso(next_update)} has already passed")
    if lapsing(next_update, now):
        raise ResponseRejected(
            f"nextUpdate {iso(next_update)} is less than 5 minutes away; HAProxy would not serve it"
        )
    status = response.certificate_status
    if status == ocsp.OCSPCertStatus.UNKNOWN:
        raise StatusUnknown("responder does not know this certificate (status unknown)")
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    reason = response.revocation_reason if revoked else None
    return Staple(
        der=der,
        status="revoked" if revoked else "good",
        this_update=this_update,
        next_update=next_update,
        produced_at=response.produced_at_utc,
        signer=signer,
        revocation_time=response.revocation_time_utc if revoked else None,
        revocation_reason=reason.name if reason is not None else None,
    )


def _check_cert_id(single: ocsp.OCSPSingleResponse, bundle: CertPair) -> None:
    if not isinstance(single.hash_algorithm, hashes.SHA1):
        raise ResponseRejected(
            f"CertID uses {single.hash_algorithm.name.upper()}, but SHA-1 was asked "
            "(HAProxy matches only SHA-1 CertIDs)"
        )
    expected = ocsp.load_der_ocsp_request(build_request(bundle))
    if single.serial_number != expected.serial_number:
        raise ResponseRejected(
            f"CertID serial {single.serial_number:#x} does not match {expected.serial_number:#x}"
        )
    if (
        single.issuer_name_hash != expected.issuer_name_hash
        or single.issuer_key_hash != expected.issuer_key_hash
    ):
        raise ResponseRejected("CertID names another issuer")


def _check_signature(response: ocsp.OCSPResponse, bundle: CertPair, now: dt.datetime) -> str:
    """Verify the signature; return who signed. The signer is the issuer or its delegate."""
    issuer = bundle.issuer
    if _responder_is(response, issuer):
        _verify_signature(response, issuer)
        return "the issuer"
    for cert in response.certificates:
        if not _responder_is(response, cert):
            continue
        who = describe_name(cert.subject)
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise ResponseRejected(
                f"signed by {who}, which is not authorised for this issuer"
            ) from None
        if not _has_ocsp_signing(cert):
            raise ResponseRejected(
                f"signed by {who}, which lacks the OCSPSigning extended key usage"
            )
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ResponseRejected(
                f"signed by {who}, whose certificate is not valid now "
                f"(valid {iso(cert.not_valid_before_utc)} to {iso(cert.not_valid_after_utc)})"
            )
        _verify_signature(response, cert)
        return f"delegate {who}"
    responder = (
        describe_name(response.responder_name)
        if response.responder_name is not None
        else f"key hash {(response.responder_key_hash or b'').hex()}"
    )
    raise ResponseRejected(f"signed by {responder}, which is not authorised for this issuer")


def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return response.responder_key_hash == key_hash


def _has_ocsp_signing(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def _verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    data, signature = response.tbs_response_bytes, response.signature
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert algorithm is not None
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert algorithm is not None
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        elif isinstance(key, dsa.DSAPublicKey):
            assert algorithm is not None
            key.verify(signature, data, algorithm)
        else:
            raise ResponseRejected(f"unsupported signer key type {type(key).__name__}")
    except (InvalidSignature, AssertionError, ValueError):
        raise ResponseRejected(f"bad signature (signer {describe_name(signer.subject)})") from None


def _describe_bytes(data: bytes) -> str:
    if not data:
        return "empty body"
    head = data[:16]
    if head.lstrip().startswith(b"<"):
        return "got HTML or XML"
    return f"{len(data)} bytes starting {head[:8].hex()}"
