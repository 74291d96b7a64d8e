"""HAProxy's "Certificate ID key": the hex of the DER of a SHA-1 OCSP CertID."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

_SHA1_ALGORITHM = bytes.fromhex("300906052b0e03021a0500")  # AlgorithmIdentifier sha1, NULL


def certid_key(issuer_name_hash: bytes, issuer_key_hash: bytes, serial: int) -> str:
    """The "Certificate ID key" HAProxy prints: the hex of the DER of the SHA-1 CertID."""
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=False)
    body = (
        _SHA1_ALGORITHM
        + _der(0x04, issuer_name_hash)
        + _der(0x04, issuer_key_hash)
        + _der(0x02, serial_bytes)
    )
    return _der(0x30, body).hex()


def response_certid_key(der: bytes) -> str:
    """The certificate-ID key of a (single, SHA-1) OCSP response, as HAProxy prints it."""
    response = ocsp.load_der_ocsp_response(der)
    if not isinstance(response.hash_algorithm, hashes.SHA1):
        raise ValueError("the OCSP response's CertID is not SHA-1")
    return certid_key(response.issuer_name_hash, response.issuer_key_hash, response.serial_number)


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        size = (length.bit_length() + 7) // 8
        header = bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")
    return header + content
