"""A small, real PKI: roots, intermediates, delegated OCSP signers and HAProxy bundles.

Everything is made with cryptography's builders and EC P-256 keys, so thousands of
certificates take seconds. Used by the tests, ``ocsptool demo`` and the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey

_DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ocsptool test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _urls(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Leaf:
    """A server certificate with its key and the chain up to (not including) the root."""

    cert: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate]

    def bundle_pem(self, *, chain: bool = True, key: bool = True, leaf_last: bool = False) -> bytes:
        """A HAProxy bundle: leaf, chain, key (or the leaf after the chain)."""
        parts = [_pem(c) for c in self.chain] if chain else []
        parts = [*parts, _pem(self.cert)] if leaf_last else [_pem(self.cert), *parts]
        if key:
            parts.append(key_pem(self.key))
        return b"".join(parts)

    def write_bundle(self, path: Path, **kwargs: bool) -> Path:
        path.write_bytes(self.bundle_pem(**kwargs))
        return path

    def write_tls(self, directory: Path) -> tuple[Path, Path]:
        """The certificate chain and the key as two PEM files, for a TLS server."""
        cert_file = directory / f"{self.cert.serial_number:x}.crt"
        key_file = directory / f"{self.cert.serial_number:x}.key"
        cert_file.write_bytes(self.bundle_pem(key=False))
        key_file.write_bytes(key_pem(self.key))
        return cert_file, key_file


@dataclass
class Authority:
    """A CA that can issue intermediates, leaves and delegated OCSP signers."""

    cert: x509.Certificate
    key: PrivateKey
    parents: list[x509.Certificate] = field(default_factory=list)

    @property
    def name(self) -> x509.Name:
        return self.cert.subject

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    @classmethod
    def root(cls, common_name: str = "ocsptool Test Root") -> Authority:
        key = _key()
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 3650 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def _builder(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        not_before: dt.datetime | None,
        not_after: dt.datetime | None,
    ) -> x509.CertificateBuilder:
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - _DAY)
            .not_valid_after(not_after or now + 90 * _DAY)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def intermediate(self, common_name: str) -> Authority:
        key = _key()
        cert = (
            self._builder(_name(common_name), key.public_key(), None, _now() + 1825 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return Authority(cert, key, [self.cert, *self.parents])

    def leaf(
        self,
        dns_name: str,
        *,
        ocsp_url: str | Sequence[str] | None,
        must_staple: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: PrivateKey | None = None,
        ca_issuers: str | Sequence[str] | None = None,
        ip_addresses: Sequence[str] = (),
        crl_url: str | None = None,
    ) -> Leaf:
        """A server certificate; ``ocsp_url=None`` leaves out the AIA OCSP entry;
        ``crl_url`` adds a CRL distribution point.

        ``ocsp_url`` may list several responders and ``ca_issuers`` the URLs of the issuer
        certificate (AIA caIssuers), in order; ``ip_addresses`` go into the SAN too.
        """
        key = key or _key()
        sans: list[x509.GeneralName] = [x509.DNSName(dns_name)]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = (
            self._builder(_name(dns_name), key.public_key(), not_before, not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        access = [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
            )
            for url in _urls(ocsp_url)
        ]
        access += [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
            )
            for url in _urls(ca_issuers)
        ]
        if access:
            builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if crl_url is not None:
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(crl_url)], None, None, None
            )
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        if must_staple:
            builder = builder.add_extension(
                x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        chain = [self.cert, *self.parents[:-1]] if self.parents else [self.cert]
        return Leaf(cert, key, chain)

    def ocsp_signer(
        self,
        common_name: str = "OCSP Responder",
        *,
        eku: bool = True,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Authority:
        """A delegated OCSP responder certificate issued by this CA."""
        key = _key()
        builder = self._builder(_name(common_name), key.public_key(), not_before, not_after)
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        if eku:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
            )
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Authority(cert, key, [self.cert, *self.parents])


# -- a malformed certificate: what no builder makes --------------------------------------------


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, where the contents start, where the element ends) of the DER element at
    ``offset``."""
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, offset + 2 + first
    size = first & 0x7F
    length = int.from_bytes(data[offset + 2 : offset + 2 + size], "big")
    start = offset + 2 + size
    return tag, start, start + length


def _der(tag: int, contents: bytes) -> bytes:
    length = len(contents)
    if length < 0x80:
        return bytes([tag, length]) + contents
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + contents


def with_duplicate_extension(leaf: Leaf, issuer: Authority) -> x509.Certificate:
    """``leaf``'s certificate with its first extension twice, signed again by ``issuer``:
    valid DER and a good signature, but RFC 5280 forbids it, and cryptography raises when
    its extensions are read (what a hostile or broken CA can hand out)."""
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    _, body, _ = _tlv(der, 0)
    _, tbs_body, tbs_end = _tlv(der, body)
    sig_alg = der[tbs_end : _tlv(der, tbs_end)[2]]
    elements, offset = [], tbs_body
    while offset < tbs_end:
        end = _tlv(der, offset)[2]
        elements.append(der[offset:end])
        offset = end
    extensions = elements[-1]  # [3] { SEQUENCE OF Extension }
    _, seq_at, _ = _tlv(extensions, 0)
    _, first_at, seq_end = _tlv(extensions, seq_at)
    first = extensions[first_at : _tlv(extensions, first_at)[2]]
    sequence = _der(0x30, extensions[first_at:seq_end] + first)
    elements[-1] = _der(0xA3, sequence)
    tbs = _der(0x30, b"".join(elements))
    signature = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    certificate = _der(0x30, tbs + sig_alg + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(certificate)
