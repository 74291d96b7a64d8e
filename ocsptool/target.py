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

from ocsptool.errors import CertificateError
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
    CA_CRT = "ca.crt"  # a TLS Secret's ca.crt
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
    #: The staple file HAProxy reads: normally ``<cert>.ocsp``; None when the staple's
    #: home is not a file (a TLS Secret's data key: ``ocsptool.sinks.Home``).
    staple_path: Path | None
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


class IssuerNotFound(CertificateError):
    """A source has the leaf but not its issuer. ``prepare`` may fetch the issuer from the
    leaf's caIssuers URL and hand it to ``keep``, which keeps it where the source's next
    parse finds it (in memory for a TLS Secret) and returns the found certificate to parse
    again and a one-line note. (A certificate file is handled by ``prepare`` itself: the
    issuer is written to ``<cert>.issuer``.)"""

    def __init__(
        self,
        message: str,
        leaf: x509.Certificate,
        keep: Callable[[x509.Certificate, str | None], tuple[Found, str]],
    ) -> None:
        super().__init__(message)
        self.leaf = leaf
        self.keep = keep


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
    certificate without its issuer gets it from the leaf's caIssuers URL first, kept where
    the next parse finds it (``<cert>.issuer`` for a file, or ``issuer_file`` when its
    server reads the issuer there: the cache, so the next run parses it like any other;
    ``IssuerNotFound.keep`` for another source), with a note that the chain is missing. A
    failed caIssuers fetch raises ``FetchError``."""
    import dataclasses

    note = None
    try:
        target = parse(found)
    except CertificateError as error:
        missing = (
            error if isinstance(error, IssuerNotFound) else _file_without_issuer(found, issuer_file)
        )
        if missing is None:
            raise  # parse_bundle's line says what to do
        from ocsptool.issuers import ca_issuers_urls

        aia = ca_issuers_urls(missing.leaf)
        if not aia:
            raise
        issuer = _fetch_issuer(missing.leaf, asking)
        found, note = missing.keep(issuer, aia[0] if len(aia) == 1 else None)
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


def _file_without_issuer(found: Found, issuer_file: Path | None) -> IssuerNotFound | None:
    """A certificate file whose bundle lacks the issuer and has no issuer file: its issuer,
    once fetched, is written to ``<cert>.issuer`` (or ``issuer_file``, where its server
    reads it). None for anything else."""
    import os

    from ocsptool.issuers import leaf_without_issuer

    if not os.path.isabs(found.path):  # not a file: its source raises IssuerNotFound
        return None
    leaf = leaf_without_issuer(Path(found.path), issuer_file)
    if leaf is None:
        return None

    def keep(issuer: x509.Certificate, url: str | None) -> tuple[Found, str]:
        from ocsptool.issuers import chain_warning, write_issuer
        from ocsptool.scan import stat_key

        path = Path(found.path)
        written = write_issuer(path, issuer, issuer_file)
        note = chain_warning(path, issuer, url, issuer_file)
        return found._replace(issuer_stat=stat_key(os.stat(written))), note

    return IssuerNotFound("issuer not found", leaf, keep)


def _fetch_issuer(leaf: x509.Certificate, asking: Asking) -> x509.Certificate:
    from ocsptool.issuers import fetch_issuer

    return fetch_issuer(
        asking.session(),
        leaf,
        now=asking.now,
        timeouts=asking.timeouts,
        max_bytes=asking.max_bytes,
    )
