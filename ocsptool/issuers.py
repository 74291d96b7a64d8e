"""The issuer of a leaf-only bundle, fetched from the certificate's AIA caIssuers URL.

HAProxy needs the issuer (in the bundle or ``<cert>.issuer``) to compute the CertID, and
so do we. When neither has it, ``fetch_issuer`` downloads it over http(s) with the
limits of an OCSP fetch (timeouts, total deadline, size cap, hand-followed redirects
with a loop check), reads DER, PEM or a PKCS#7 certs-only bundle, and keeps only a
certificate whose signature on the leaf verifies. ``write_issuer`` stores it as
``<cert>.issuer`` atomically; the next run's ``certs.parse_bundle`` finds it there, so
the file itself is the cache (its mtime and size are the stat-able key).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

from ocsptool.certs import (
    _issued_by,
    aia_urls,
    describe_name,
    is_ca,
    load_der,
    read_certificates,
    read_file,
)
from ocsptool.errors import CertificateError, FetchError, OcspToolError
from ocsptool.fetch import all_failed, get
from ocsptool.files import write_atomic
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts
from ocsptool.ocsp import _describe_bytes

if TYPE_CHECKING:
    import requests

ISSUER_SUFFIX = ".issuer"


def ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    """Every caIssuers URL in the AIA extension, in order, without repeats."""
    return aia_urls(cert, AuthorityInformationAccessOID.CA_ISSUERS)


def issuer_path(cert_path: Path) -> Path:
    """Where HAProxy and ``certs.parse_bundle`` look for a missing issuer."""
    return cert_path.with_name(cert_path.name + ISSUER_SUFFIX)


def leaf_without_issuer(
    cert_path: Path, issuer_file: Path | None = None
) -> x509.Certificate | None:
    """The leaf of a bundle that lacks its issuer and has no ``.issuer`` file (nor the
    ``issuer_file`` its server reads instead), else None.

    None also when the bundle cannot be read or has no single leaf: ``parse_bundle``
    reports those. Call it after ``parse_bundle`` failed, to know whether to fetch.
    """
    if (issuer_file or issuer_path(cert_path)).exists():
        return None
    try:
        certs = read_certificates(read_file(cert_path))
    except CertificateError:
        return None
    leaves = [c for c in certs if not is_ca(c)]
    if len(leaves) != 1:
        return None
    leaf = leaves[0]
    if any(c is not leaf and _issued_by(leaf, c) for c in certs):
        return None
    return leaf


def fetch_issuer(
    session: requests.Session,
    leaf: x509.Certificate,
    *,
    now: dt.datetime,
    timeouts: Timeouts | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> x509.Certificate:
    """The certificate that issued ``leaf``, from its caIssuers URLs (tried in order).

    Raises one line, ``issuer CN=... via caIssuers: URL: cause[; URL: cause]``: a
    ``CertificateError`` when every URL answered with something unusable (garbage,
    another CA), a ``FetchError`` when one could not be fetched (refused, a redirect
    loop, over the cap). Of several certificates that issued it, one valid ``now`` wins.
    """
    wanted = describe_name(leaf.issuer)
    urls = ca_issuers_urls(leaf)
    if not urls:
        raise CertificateError(
            f"issuer {wanted} not found in the bundle, and the certificate names no "
            "caIssuers URL; append the intermediate certificate"
        )
    causes: list[tuple[str, OcspToolError]] = []
    for url in urls:
        try:
            fetched = get(session, url, timeouts=timeouts or Timeouts(), max_bytes=max_bytes)
            return _pick(leaf, parse_certificates(fetched.body), now)
        except (FetchError, CertificateError) as e:
            causes.append((url, e))
    error = all_failed(causes)
    kind = CertificateError if isinstance(error, CertificateError) else FetchError
    raise kind(f"issuer {wanted} via caIssuers: {error}")


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """DER, PEM, or PKCS#7 certs-only (DER or PEM): every certificate in ``data``."""
    from cryptography.hazmat.primitives.serialization import pkcs7

    if b"-----BEGIN PKCS7-----" in data[:64]:
        return _pkcs7(pkcs7.load_pem_pkcs7_certificates, data)
    if b"-----BEGIN" in data[:64]:
        certs = read_certificates(data)
        if not certs:
            raise CertificateError("PEM without a certificate")
        return certs
    try:
        return [load_der(data)]
    except ValueError:
        pass
    return _pkcs7(pkcs7.load_der_pkcs7_certificates, data)


def _pkcs7(load: Callable[[bytes], list[x509.Certificate]], data: bytes) -> list[x509.Certificate]:
    try:
        certs = load(data)
    except ValueError as e:
        if "no certificate" in str(e):
            raise CertificateError("PKCS#7 bundle without certificates") from None
        raise CertificateError(f"not a certificate ({_describe_bytes(data)})") from None
    return certs


def _pick(
    leaf: x509.Certificate, certs: list[x509.Certificate], now: dt.datetime
) -> x509.Certificate:
    issuers = [c for c in certs if _issued_by(leaf, c)]
    if not issuers:
        names = ", ".join(describe_name(c.subject) for c in certs[:3])
        raise CertificateError(f"{names} did not issue this certificate")
    valid = [c for c in issuers if c.not_valid_before_utc <= now <= c.not_valid_after_utc]
    return (valid or issuers)[0]


def write_issuer(cert_path: Path, issuer: x509.Certificate, to: Path | None = None) -> Path:
    """Write ``<cert>.issuer`` (PEM), or ``to`` (where the server reads the issuer instead:
    ``site.issuer`` for ``site.crt`` with HAProxy's ``ssl-load-extra-del-ext``),
    atomically; return its path. ``WriteError`` on failure."""
    path = to or issuer_path(cert_path)
    write_atomic(path, issuer.public_bytes(serialization.Encoding.PEM))
    return path


def chain_warning(
    cert_path: Path, issuer: x509.Certificate, url: str | None = None, to: Path | None = None
) -> str:
    """The one line to say, once per certificate, that its bundle lacks the chain."""
    where = f" from {url}" if url else ""
    return (
        f"{cert_path.name}: the bundle lacks its chain; fetched the issuer "
        f"{describe_name(issuer.subject)}{where} into {(to or issuer_path(cert_path)).name} "
        "(TLS clients may fail to build the chain too: append the intermediate)"
    )
