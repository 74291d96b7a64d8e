"""A TLS Secret as ocsptool sees it: a small frozen ``TlsSecret``, and its leaf and issuer.

Read like a TLS server reads the Secret: ``tls.crt`` holds the leaf (first) and its
chain; the issuer is the chain's certificate that signed the leaf, else one from
``ca.crt``, else unknown here (the caller may fetch it from the leaf's AIA caIssuers URL
with ``ocsptool.issuers``). Only ``tls.crt``, ``ca.crt`` and the staple key are decoded;
``tls.key`` is never decoded or kept. A Secret of any other type is refused unread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocsptool.errors import CertificateError
from ocsptool.kubernetes import DEFAULT_SECRET_KEY, TLS_TYPE
from ocsptool.kubernetes.errors import NotTlsSecret
from ocsptool.target import IssuerOrigin

if TYPE_CHECKING:
    from cryptography import x509

    from ocsptool.kubernetes.client import KubeClient


@dataclass(frozen=True)
class TlsSecret:
    """The parts of one ``kubernetes.io/tls`` Secret that ocsptool uses."""

    namespace: str
    name: str
    uid: str
    #: The version read: a write is conditional on it.
    resource_version: str
    #: The leaf and its chain, as stored (PEM).
    tls_crt: bytes
    #: ``ca.crt``, when the Secret has one (cert-manager writes the issuing CA there).
    ca_crt: bytes | None
    #: The data key the staple lives under, and the staple found there (DER), if any.
    staple_key: str
    staple: bytes | None

    @property
    def ref(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"kubernetes secret {self.ref}"


@dataclass(frozen=True)
class Unreadable:
    """A TLS Secret that could not be decoded; the others go on."""

    namespace: str
    name: str
    reason: str

    def __str__(self) -> str:
        return f"kubernetes secret {self.namespace}/{self.name}: {self.reason}"


@dataclass(frozen=True)
class SecretCertificates:
    """The leaf a server would present from this Secret, and its issuer if the Secret has it."""

    leaf: x509.Certificate
    #: None: neither tls.crt nor ca.crt holds it (fetch it from AIA caIssuers).
    issuer: x509.Certificate | None
    issuer_origin: IssuerOrigin | None


def decode_secret(item: Mapping[str, Any], staple_key: str = DEFAULT_SECRET_KEY) -> TlsSecret:
    """The ``TlsSecret`` of one API object; ``NotTlsSecret`` for any other type (its data
    unread), ``CertificateError`` for a TLS Secret whose data cannot be decoded."""
    metadata = item.get("metadata")
    if not isinstance(metadata, Mapping):
        raise CertificateError("kubernetes: a Secret without metadata")
    namespace = _text(metadata, "namespace")
    name = _text(metadata, "name")
    where = f"kubernetes secret {namespace}/{name}"
    if item.get("type") != TLS_TYPE:
        raise NotTlsSecret(f"{where}: type {item.get('type')!r} is not {TLS_TYPE}; not read")
    data = item.get("data") or {}
    if not isinstance(data, Mapping):
        raise CertificateError(f"{where}: data is not a mapping")
    tls_crt = _decode(data, "tls.crt", where)
    if not tls_crt:
        raise CertificateError(f"{where}: tls.crt is empty")
    staple = _decode(data, staple_key, where)
    return TlsSecret(
        namespace=namespace,
        name=name,
        uid=_text(metadata, "uid"),
        resource_version=_text(metadata, "resourceVersion"),
        tls_crt=tls_crt,
        ca_crt=_decode(data, "ca.crt", where),
        staple_key=staple_key,
        staple=staple or None,
    )


def read_tls_secrets(
    client: KubeClient,
    namespace: str,
    *,
    selector: str | None = None,
    staple_key: str = DEFAULT_SECRET_KEY,
) -> Iterator[TlsSecret | Unreadable]:
    """Every TLS Secret of ``namespace`` (paged), decoded; a bad one is an ``Unreadable``."""
    for item in client.list_tls_secrets(namespace, selector=selector):
        try:
            yield decode_secret(item, staple_key)
        except (CertificateError, NotTlsSecret) as e:
            metadata = item.get("metadata") or {}
            prefix = f"kubernetes secret {metadata.get('namespace')}/{metadata.get('name')}: "
            yield Unreadable(
                str(metadata.get("namespace", namespace)),
                str(metadata.get("name", "?")),
                str(e).removeprefix(prefix),
            )


def get_tls_secret(
    client: KubeClient, namespace: str, name: str, staple_key: str = DEFAULT_SECRET_KEY
) -> TlsSecret:
    """One TLS Secret, read again (``SecretGone`` when deleted, ``NotTlsSecret`` when it
    was replaced by a Secret of another type)."""
    return decode_secret(client.get_secret(namespace, name), staple_key)


def certificates(secret: TlsSecret) -> SecretCertificates:
    """The leaf (the first certificate of tls.crt, as a server presents it) and its issuer:
    the chain's certificate that signed it, else one of ca.crt's, else None."""
    from ocsptool.certs import _issued_by, describe_name, is_ca, read_certificates

    try:
        chain = read_certificates(secret.tls_crt)
    except CertificateError as e:
        raise CertificateError(f"{secret}: tls.crt: {e}") from None
    if not chain:
        raise CertificateError(f"{secret}: tls.crt holds no certificate")
    leaf = chain[0]
    if is_ca(leaf):
        raise CertificateError(
            f"{secret}: tls.crt starts with a CA certificate ({describe_name(leaf.subject)}); "
            "put the server certificate first"
        )
    for candidate in chain[1:]:
        if _issued_by(leaf, candidate):
            return SecretCertificates(leaf, candidate, IssuerOrigin.CHAIN)
    if secret.ca_crt:
        try:
            authorities = read_certificates(secret.ca_crt)
        except CertificateError as e:
            raise CertificateError(f"{secret}: ca.crt: {e}") from None
        for candidate in authorities:
            if _issued_by(leaf, candidate):
                return SecretCertificates(leaf, candidate, IssuerOrigin.CA_CRT)
    return SecretCertificates(leaf, None, None)


def same_leaf(a: bytes, b: bytes) -> bool:
    """Whether two tls.crt values present the same leaf (the chain may differ)."""
    if a == b:
        return True
    from ocsptool.certs import read_certificates

    try:
        first, second = read_certificates(a), read_certificates(b)
    except CertificateError:
        return False
    return bool(first and second) and first[0] == second[0]  # DER equality


def _text(metadata: Mapping[str, Any], key: str) -> str:
    value = metadata.get(key)
    if not isinstance(value, str) or not value:
        raise CertificateError(f"kubernetes: a Secret without metadata.{key}")
    return value


def _decode(data: Mapping[str, Any], key: str, where: str) -> bytes | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CertificateError(f"{where}: {key} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError(f"{where}: {key} is not base64") from None


def digest(data: bytes) -> int:
    """A 56-bit digest: an int as the state and the fresh index store stat keys."""
    return int.from_bytes(hashlib.sha256(data).digest()[:7], "big")


def staple_id(staple: bytes | None) -> int | None:
    """The staple a Secret holds, as ``Found.ocsp_inode`` (None: none)."""
    return digest(staple) if staple else None
