"""Decode a certificate and an OCSP response for people, and verify the response.

``decode`` reads any response without trusting it (to show what a responder sent even
when it fails verification); ``inspect`` reads a certificate (``<cert>``, a TLS Secret)
and the staple where it lives (``<cert>.ocsp``, the Secret's data key) and returns
labelled lines. Neither needs the state file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from ocsptool.status_output import relative
from ocsptool.times import iso

if TYPE_CHECKING:
    from cryptography import x509

    from ocsptool.route import Route
    from ocsptool.scan import Found
    from ocsptool.sinks import Home
    from ocsptool.target import Target

Fields = list[tuple[str, str]]


def decode(der: bytes) -> Fields:
    """What an OCSP response says, unverified: status, times, responder, serial."""
    from cryptography.x509 import ocsp

    from ocsptool.certs import describe_name

    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        return [("response", f"not an OCSP response ({len(der)} bytes)")]
    status = response.response_status
    if status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return [("response", f"unsuccessful: {status.name}")]
    singles = list(response.responses)
    fields: Fields = [("response", f"successful, {len(singles)} SingleResponse(s)")]
    if len(singles) != 1:
        return fields
    single = singles[0]
    cert_status = single.certificate_status.name.lower()
    fields.append(("status", cert_status))
    if single.revocation_time_utc is not None:
        reason = single.revocation_reason.name if single.revocation_reason else "no reason given"
        fields.append(("revoked", f"{iso(single.revocation_time_utc)} ({reason})"))
    fields.append(("serial", f"{single.serial_number:x}"))
    fields.append(("producedAt", iso(response.produced_at_utc) or "-"))
    fields.append(("thisUpdate", iso(single.this_update_utc) or "-"))
    fields.append(("nextUpdate", iso(single.next_update_utc) or "missing"))
    if response.responder_name is not None:
        responder = describe_name(response.responder_name)
    else:
        responder = f"key hash {(response.responder_key_hash or b'').hex()}"
    fields.append(("responder ID", responder))
    fields.append(("certificates", str(len(response.certificates))))
    return fields


def inspect(
    found: Found,
    now: dt.datetime,
    parse: Callable[[Found, Route], Target],
    home: Home,
    route: Route,
) -> tuple[Fields, bool]:
    """The certificate, its OCSP URL and its staple, verified; (lines, staple usable). The
    certificate is read by its source (``parse``), the staple where it lives (``home``).

    A certificate whose issuer cannot be found is still shown, then the problem."""
    from ocsptool.errors import CertificateError
    from ocsptool.target import IssuerOrigin, has_crl, no_ocsp
    from ocsptool.view import CertStatus, leaf_of, read_staple

    key = found.path
    try:
        target = parse(found, route)
    except CertificateError as e:
        leaf = leaf_of(e, key)
        if leaf is None:
            raise
        return [*_certificate(key, leaf, None, now), ("problem", str(e))], False
    bundle = target.bundle
    issuer_from = {
        IssuerOrigin.ISSUER_FILE: str(bundle.issuer_file),
        IssuerOrigin.CA_CRT: "ca.crt",
    }.get(target.issuer_origin, "the bundle")
    fields = _certificate(key, bundle.leaf, issuer_from, now)
    fields.append(("OCSP URL", bundle.ocsp_url or no_ocsp(has_crl(bundle.leaf))))
    fields.append(("Must-Staple", "yes" if bundle.must_staple else "no"))
    cert = CertStatus(path=key, ocsp_url=bundle.ocsp_url)
    der = read_staple(cert, bundle, now, home=home, key=key, route=route)
    fields.append((home.label, home.where(key, route)))
    fields.append(("staple", cert.status))
    if cert.reason:
        fields.append(("why", cert.reason))
    if der:
        fields.extend((f"  {label}", value) for label, value in decode(der))
    if cert.status in ("good", "revoked"):
        fields.append(("  signer", cert.signer or "-"))
        fields.append(("  expires", relative(cert.next_update, now, expiry=True)))
    if cert.status == "revoked":
        fields.append(("  REVOKED", "clients are told this certificate is revoked; replace it"))
    return fields, cert.status in ("good",) or (bundle.ocsp_url is None and der is None)


def _certificate(
    key: str, leaf: x509.Certificate, issuer_from: str | None, now: dt.datetime
) -> Fields:
    """What the certificate itself says: subject, names, issuer (and where it was found,
    when it was), serial, validity."""
    from cryptography import x509

    from ocsptool.certs import describe_name, validity_problem

    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = ", ".join(san.get_values_for_type(x509.DNSName)) or "-"
    except x509.ExtensionNotFound:
        names = "-"
    fields: Fields = [
        ("certificate", key),
        ("subject", leaf.subject.rfc4514_string()),
        ("names", names),
        ("issuer", describe_name(leaf.issuer)),
        *([("issuer from", issuer_from)] if issuer_from else []),
        ("serial", f"{leaf.serial_number:x}"),
        ("valid", f"{iso(leaf.not_valid_before_utc)} to {iso(leaf.not_valid_after_utc)}"),
    ]
    problem = validity_problem(leaf, now)
    if problem:
        fields.append(("certificate problem", problem))
    return fields
