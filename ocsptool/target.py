"""One certificate to staple, built once by a source (see ``ocsptool.sources``).

A ``Target`` carries everything the later stages need, so none of them re-reads or
re-parses a file: the leaf and its issuer (and where the issuer came from), the CertID
HAProxy keys its staples by, the staple path, every OCSP URL in order, and the
consumers that serve it. Only certificates that must be looked at become targets; a
fresh certificate on the no-op path stays a cheap ``scan.Found`` tuple.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ocsptool.limits import Timeouts
from ocsptool.scan import Found

if TYPE_CHECKING:
    import requests
    from cryptography import x509

    from ocsptool.certs import Bundle
    from ocsptool.responders import Overrides


#: What ocsptool says of a certificate without an OCSP URL (normal since 2025).
NO_OCSP = "no OCSP URL: CRL only"


def no_ocsp(crl: bool | None) -> str:
    """``NO_OCSP`` when the certificate names a CRL; plain "no OCSP URL" when it names
    none, or when that is not known."""
    return NO_OCSP if crl else "no OCSP URL"


def has_crl(leaf: x509.Certificate) -> bool:
    """Whether the certificate has a CRL distribution point."""
    from cryptography import x509

    try:
        leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return False
    return True


class IssuerOrigin(StrEnum):
    """Where the issuer certificate came from."""

    CHAIN = "chain"  # the bundle itself
    ISSUER_FILE = "issuer-file"  # <cert>.issuer
    AIA = "aia"  # fetched from the leaf's caIssuers URL


@dataclass(frozen=True)
class Consumer:
    """One server that serves the certificate: which instance, under which name."""

    #: The runtime API addresses of the instance (several when it listens on several).
    sockets: tuple[str, ...]
    #: The name the instance loaded the certificate under (its ``crt`` path).
    name: str
    #: The instance refreshes this staple itself (``ocsp-update on``).
    ocsp_update: bool = False


@dataclass(frozen=True)
class Target:
    """One certificate to staple."""

    #: What identifies the staple; the state keys its records by it (the certificate path).
    key: str
    cert_path: Path
    leaf: x509.Certificate
    issuer: x509.Certificate
    issuer_origin: IssuerOrigin
    #: The ``.issuer`` file, when the issuer came from one.
    issuer_file: Path | None
    #: HAProxy's "Certificate ID key": hex of the DER of the SHA-1 CertID.
    certid: str
    #: Where the staple lives for HAProxy: normally ``<cert>.ocsp``.
    staple_path: Path
    #: Every OCSP URL of the leaf, in order (empty: CRL only).
    ocsp_urls: tuple[str, ...]
    #: Who serves it; empty when the source does not know (the directory scan).
    consumers: tuple[Consumer, ...] = ()
    #: The issuer as PEM, when HAProxy needs it in a first-staple transaction
    #: (it has it from the bundle otherwise).
    issuer_pem: bytes | None = None

    @property
    def ocsp_url(self) -> str | None:
        """The URL asked first."""
        return self.ocsp_urls[0] if self.ocsp_urls else None

    @property
    def bundle(self) -> Bundle:
        from ocsptool.certs import Bundle

        return Bundle(self.cert_path, self.leaf, self.issuer, self.issuer_file)


def target_of(bundle: Bundle, key: str | None = None, staple_path: Path | None = None) -> Target:
    """The target for a parsed bundle (its CertID computed once, here)."""
    from cryptography.x509 import ocsp as x509_ocsp

    from ocsptool.certs import ocsp_urls
    from ocsptool.haproxy import certid_key
    from ocsptool.ocsp import build_request

    request = x509_ocsp.load_der_ocsp_request(build_request(bundle))
    return Target(
        key=key or str(bundle.path),
        cert_path=bundle.path,
        leaf=bundle.leaf,
        issuer=bundle.issuer,
        issuer_origin=IssuerOrigin.ISSUER_FILE if bundle.issuer_file else IssuerOrigin.CHAIN,
        issuer_file=bundle.issuer_file,
        certid=certid_key(request.issuer_name_hash, request.issuer_key_hash, request.serial_number),
        staple_path=staple_path or Path(str(bundle.path) + ".ocsp"),
        ocsp_urls=tuple(ocsp_urls(bundle.leaf)),
        issuer_pem=bundle.issuer_pem(),
    )


# -- preparing a target: its issuer (AIA) and the URLs to ask ------------------------------


@dataclass(frozen=True)
class Asking:
    """How a run asks responders: the HTTP session (made on first use), the clock, the
    limits, and the URLs that replace a certificate's own (``responder_overrides``,
    ``renew --responder``)."""

    session: Callable[[], requests.Session]
    now: dt.datetime
    timeouts: Timeouts
    max_bytes: int
    responder: str | None = None
    overrides: Overrides | None = None


def prepare(
    parse: Callable[[Found], Target],
    found: Found,
    asking: Asking,
    issuer_file: Path | None = None,
) -> Prepared:
    """``parse(found)``, with the OCSP URLs to ask (an override, ``--responder``); a
    leaf-only bundle gets its issuer from the leaf's caIssuers URL first, written to
    ``<cert>.issuer``, or to ``issuer_file`` when its server reads the issuer there (the
    cache: the next run parses it like any other), with a note that the bundle lacks its
    chain. A failed caIssuers fetch raises ``FetchError``."""
    import dataclasses

    from ocsptool.errors import CertificateError

    note = None
    try:
        target = parse(found)
    except CertificateError:
        from ocsptool.issuers import ca_issuers_urls, leaf_without_issuer

        leaf = leaf_without_issuer(Path(found.path), issuer_file)
        if leaf is None or not ca_issuers_urls(leaf):
            raise  # parse_bundle's line says what to do
        found, note = _fetch_issuer(found, leaf, asking, issuer_file)
        target = dataclasses.replace(parse(found), issuer_origin=IssuerOrigin.AIA)
    urls = target.ocsp_urls
    if asking.responder is not None:
        urls = (asking.responder,)
    elif urls and asking.overrides:
        from ocsptool.responders import urls_for

        urls = tuple(urls_for(target.leaf, target.issuer, asking.overrides))
    if urls != target.ocsp_urls:
        target = dataclasses.replace(target, ocsp_urls=urls)
    return Prepared(target, found, note)


class Prepared(NamedTuple):
    target: Target
    #: The scanned file, with the ``.issuer`` written by an AIA fetch.
    found: Found
    #: Said once: the bundle lacks its chain (its issuer was fetched).
    note: str | None


def _fetch_issuer(
    found: Found, leaf: x509.Certificate, asking: Asking, to: Path | None
) -> tuple[Found, str]:
    import os

    from ocsptool.issuers import ca_issuers_urls, chain_warning, fetch_issuer, write_issuer
    from ocsptool.scan import stat_key

    path = Path(found.path)
    issuer = fetch_issuer(
        asking.session(),
        leaf,
        now=asking.now,
        timeouts=asking.timeouts,
        max_bytes=asking.max_bytes,
    )
    written = write_issuer(path, issuer, to)
    urls = ca_issuers_urls(leaf)
    note = chain_warning(path, issuer, urls[0] if len(urls) == 1 else None, to)
    return found._replace(issuer_stat=stat_key(os.stat(written))), note
