"""Certificate files: HAProxy bundles (leaf, chain, key), plain PEM and DER.

``parse_bundle`` finds the leaf and its issuer and returns a ``Bundle``. Private keys
are recognised only to be skipped: their bytes are never decoded, logged or kept.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ocsptool import files
from ocsptool.errors import CertificateError

# read_file lives in files (no cryptography: a push-only run reads staples with it).
MAX_FILE_BYTES = files.MAX_FILE_BYTES
read_file = files.read_file

#: One pass over the markers keeps parsing linear: a backreferencing regex over the whole
#: file was quadratic, and a 1 MiB file of BEGIN lines took minutes.
_PEM_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 ]{1,64})-----")


@dataclass(frozen=True)
class Bundle:
    """The leaf certificate of one file, its issuer and where the issuer came from."""

    path: Path
    leaf: x509.Certificate
    issuer: x509.Certificate
    issuer_file: Path | None  # <certfile>.issuer, when the chain lacked the issuer

    @property
    def ocsp_url(self) -> str | None:
        return ocsp_url(self.leaf)

    @property
    def fingerprint(self) -> str:
        return self.leaf.fingerprint(hashes.SHA256()).hex()

    @property
    def must_staple(self) -> bool:
        try:
            features = self.leaf.extensions.get_extension_for_class(x509.TLSFeature).value
        except x509.ExtensionNotFound:
            return False
        return x509.TLSFeatureType.status_request in features

    @property
    def name(self) -> str:
        """The main DNS name, or else the subject."""
        try:
            san = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            pass
        else:
            names = san.value.get_values_for_type(x509.DNSName)
            if names:
                return names[0]
        return describe_name(self.leaf.subject)

    def issuer_pem(self) -> bytes | None:
        """The issuer as PEM when it came from a ``.issuer`` file (HAProxy needs it then)."""
        if self.issuer_file is None:
            return None
        return self.issuer.public_bytes(serialization.Encoding.PEM)


def describe_name(name: x509.Name) -> str:
    """``CN=...`` when there is a common name, else the RFC 4514 string."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        return f"CN={cns[0].value!s}"
    return name.rfc4514_string() or "(empty name)"


def ocsp_url(cert: x509.Certificate) -> str | None:
    """The first OCSP URL in the AIA extension, or None (normal since 2025)."""
    urls = ocsp_urls(cert)
    return urls[0] if urls else None


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """Every OCSP URL in the AIA extension, in the certificate's order, without repeats."""
    return aia_urls(cert, AuthorityInformationAccessOID.OCSP)


def aia_urls(cert: x509.Certificate, method: x509.ObjectIdentifier) -> list[str]:
    """The URLs of one AIA access method (OCSP, caIssuers), in order, without repeats."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    urls = [
        desc.access_location.value
        for desc in aia
        if desc.access_method == method
        and isinstance(desc.access_location, x509.UniformResourceIdentifier)
    ]
    return list(dict.fromkeys(urls))


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM (any number of blocks) or DER ``data``; keys are skipped."""
    if b"-----BEGIN" not in data:
        if not data.strip():
            raise CertificateError("empty file; expected a PEM bundle or a DER certificate")
        try:
            return [load_der(data)]
        except _Unsupported as e:
            raise CertificateError(f"the certificate {e}") from None
        except ValueError:
            raise CertificateError("not a certificate (neither PEM nor DER)") from None
    certs: list[x509.Certificate] = []
    for label, body in _pem_blocks(data):
        if label not in (b"CERTIFICATE", b"TRUSTED CERTIFICATE"):
            continue  # private keys, parameters: never decoded
        try:
            der = base64.b64decode(body, validate=False)
            certs.append(load_der(der))
        except _Unsupported as e:
            raise CertificateError(f"certificate block {len(certs) + 1} {e}") from None
        except (ValueError, binascii.Error):
            raise CertificateError(f"certificate block {len(certs) + 1} is corrupt") from None
    return certs


def _pem_blocks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(label, base64 body) of each PEM block, in one linear pass over the markers."""
    label: bytes | None = None
    start = 0
    for marker in _PEM_MARKER.finditer(data):
        kind, name = marker.group(1), marker.group(2)
        if kind == b"BEGIN":
            if label is not None:
                break  # a BEGIN inside an open block: the first block has no END
            label, start = name, marker.end()
        elif label is not None:
            if name != label:
                raise CertificateError(
                    f"malformed PEM (BEGIN {label.decode()} ended by END {name.decode()})"
                )
            yield label, data[start : marker.start()]
            label = None
    if label is not None:
        raise CertificateError("truncated PEM (a BEGIN line without its END)")


class _Unsupported(ValueError):
    """A well-formed certificate using an algorithm cryptography does not support."""


def load_der(der: bytes) -> x509.Certificate:
    """Load a DER certificate; raise ``ValueError`` now for anything that would fail later.

    cryptography parses names, extensions and times lazily: a corrupt extension would
    otherwise surface as a ``ValueError`` deep inside a run instead of here.
    """
    import warnings

    from cryptography.utils import CryptographyDeprecationWarning

    try:
        with warnings.catch_warnings():
            # A serial that is not positive (old CAs issued some) is accepted, as HAProxy
            # and OpenSSL accept it: no warning line of cryptography's on the run's stderr.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(der)
            _ = (cert.subject, cert.issuer, cert.extensions, cert.serial_number)
            _ = (cert.not_valid_before_utc, cert.not_valid_after_utc)
            cert.public_key()
    except UnsupportedAlgorithm as e:
        raise _Unsupported(f"uses an unsupported algorithm ({e})") from None
    except (x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        raise _Unsupported(f"is malformed ({e})") from None  # what RFC 5280 forbids
    except (KeyError, x509.InvalidVersion):  # an unknown string type in a name, version 11
        raise ValueError("corrupt certificate") from None
    return cert


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(candidate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def parse_bundle(
    path: Path, issuer_files: Sequence[Path] = (), chains: Sequence[Path] = ()
) -> Bundle:
    """Find the leaf and its issuer: the chain in the file first, then ``<path>.issuer``,
    then ``issuer_files`` (where a server configuration names the issuer: a crt-store or
    crt-list ``issuer``, ``<base>.issuer`` with ``ssl-load-extra-del-ext``), then the
    first certificate of each of ``chains`` (HAProxy's ``issuers-chain-path`` files)."""
    certs = read_certificates(read_file(path))
    if not certs:
        raise CertificateError("no certificate in the file (only keys or other PEM blocks)")
    leaves = [c for c in certs if not is_ca(c)]
    if not leaves:
        raise CertificateError("only CA certificates; no leaf certificate found")
    if len(leaves) > 1:
        names = ", ".join(describe_name(c.subject) for c in leaves[:3])
        raise CertificateError(
            f"{len(leaves)} leaf certificates in one file ({names}); keep one per file"
        )
    leaf = leaves[0]
    for candidate in certs:
        if candidate is not leaf and _issued_by(leaf, candidate):
            return Bundle(path, leaf, candidate, None)
    issuer_path = path.with_name(path.name + ".issuer")
    wanted = describe_name(leaf.issuer)
    first: CertificateError | None = None
    for file in dict.fromkeys((issuer_path, *issuer_files)):
        if not file.exists():
            continue
        try:
            candidates = read_certificates(read_file(file))
        except CertificateError as e:
            first = first or CertificateError(f"{file.name}: {e}")
            continue
        for candidate in candidates:
            if _issued_by(leaf, candidate):
                return Bundle(path, leaf, candidate, file)
        first = first or CertificateError(
            f"{file.name} does not hold the issuer ({wanted}); "
            "replace it with the right intermediate certificate"
        )
    for file in chains:
        try:
            head = read_certificates(read_file(file))[:1]
        except CertificateError:
            continue
        if head and _issued_by(leaf, head[0]):
            return Bundle(path, leaf, head[0], file)
    if first is not None:
        raise first
    raise CertificateError(
        f"issuer {wanted} not found in the bundle; append the intermediate "
        f"certificate or put it in {issuer_path.name}"
    )


def validity_problem(leaf: x509.Certificate, now: dt.datetime) -> str | None:
    """Why a certificate is outside its validity period, or None."""
    from ocsptool.freshness import cert_expired

    if cert_expired(leaf.not_valid_after_utc, now):
        return f"certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; renew it"
    if now < leaf.not_valid_before_utc:
        return f"certificate not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return None
