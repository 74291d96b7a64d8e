"""Real HAProxy configurations of every shape, for the configuration reader's tests.

- ``write_cert(path, name, key_type)``: a self-signed certificate (RSA or ECDSA) for
  ``name`` written as a HAProxy bundle (certificate and key in one file, or the key in a
  separate file); returns the certificate's DER.
- ``served_certificate(port, servername, key_type)``: the DER of the certificate HAProxy
  serves for that SNI name, with TLS 1.2 cipher suites of one key type only.
- the binaries of the matrix: ``ocsptool.testing.matrix``.
- ``check_config(binary, config)``: ``haproxy -c -f`` (its exit code and output).
- ``Running(binary, config, port, stats=sock)``: ``haproxy -db -f config`` (optionally in
  master-worker mode with ``-S``), started and stopped like ``HAProxy``.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from ocsptool.testing.haproxy import HAProxy
from ocsptool.testing.pki import Authority, Leaf
from ocsptool.testing.responder import Responder


class KeyType(StrEnum):
    RSA = "rsa"
    ECDSA = "ecdsa"


_CIPHERS = {
    KeyType.RSA: "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256",
    KeyType.ECDSA: "ECDHE-ECDSA-AES128-GCM-SHA256",
}


def write_cert(
    path: Path,
    name: str,
    key_type: KeyType = KeyType.ECDSA,
    *,
    key_path: Path | None = None,
) -> bytes:
    """Write a self-signed certificate for ``name`` (and its key) to ``path``; return its DER.

    With ``key_path`` the key goes there instead of into ``path``.
    """
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type is KeyType.RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    if key_path is None:
        path.write_bytes(cert_pem + key_pem)
    else:
        path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
    return cert.public_bytes(serialization.Encoding.DER)


def served_certificate(
    port: int, servername: str, key_type: KeyType = KeyType.ECDSA, *, host: str = "127.0.0.1"
) -> bytes:
    """The DER certificate a TLS 1.2 server sends for ``servername`` to a ``key_type`` client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_CIPHERS[key_type])
    with (
        socket.create_connection((host, port), timeout=5.0) as raw,
        context.wrap_socket(raw, server_hostname=servername) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def check_config(binary: str, config: Path) -> subprocess.CompletedProcess[str]:
    """``haproxy -c -f config``: returncode 0 when HAProxy accepts it."""
    return subprocess.run(
        [binary, "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class Running(HAProxy):
    """``haproxy -db -f config`` on a test's own configuration (``-W -S master`` with
    ``master``), ready once ``stats`` answers ``show info`` and ``master`` reaches worker 1.

    The lifecycle is ``HAProxy``'s; the configuration and its directory stay the test's.
    """

    def __init__(
        self,
        binary: str,
        config: Path,
        port: int,
        *,
        stats: str,
        master: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        # not HAProxy.__init__: that one writes a configuration of its own
        self.binary = binary
        self.crt = config
        self.dir = config.parent
        self.socket = stats
        self.port = port
        self.tcp_address = None
        self.config = config
        self.log = config.with_suffix(".log")
        self._process = None
        self.master = master
        self.master_socket = master  # HAProxy's own -W -S handling, stop() and reload()
        self.levels = ()
        self.global_lines = ()
        self.env = env

    def _answers(self) -> bool:
        if not super()._answers():
            return False
        try:
            return self.master is None or "# filename" in self.ask(self.master, "@1 show ssl cert")
        except OSError:
            return False

    def ask(self, address: str, line: str) -> str:
        """One command on any Unix socket of this instance (stats or master)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            sock.connect(address)
            sock.sendall(line.encode() + b"\n")
            # the master CLI answers, then waits for more until the client half-closes
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def close(self) -> None:
        """Stop haproxy; the directory is the test's."""
        self.stop()


def issue(authority: Authority, path: Path, name: str, key_type: KeyType = KeyType.ECDSA) -> Leaf:
    """A leaf for ``name`` from ``authority`` (with an OCSP URL) written as a bundle at ``path``."""
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key_type is KeyType.RSA
        else None
    )
    leaf = authority.leaf(name, ocsp_url="http://127.0.0.1:9/", key=key)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    leaf.write_bundle(path)
    return leaf


def good_staple(leaf: Leaf, authority: Authority) -> bytes:
    """A ``good`` OCSP response for ``leaf`` (SHA-1 CertID), from the test responder, as DER."""
    responder = Responder()
    responder.add_issuer(authority)
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, authority.cert, hashes.SHA1())
    status, _headers, body = responder.answer(
        request.build().public_bytes(serialization.Encoding.DER)
    )
    assert status == 200
    return body
