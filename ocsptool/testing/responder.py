"""A real OCSP responder over HTTP on loopback, built on cryptography's OCSPResponseBuilder.

It answers GET and POST as RFC 5019 describes, signs as the issuer or as a delegated
responder, and can be told to misbehave in every way a real CA's responder has been
seen to (``Responder.mode`` for all requests, ``Responder.modes[serial]`` for one).
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsptool.testing.pki import Authority
from ocsptool.testing.serving import QuietHandler, serve

#: Behaviours the responder can be switched to.
MODES = (
    "good",  # the truth: good, or revoked for serials in ``revoked``
    "revoked",
    "unknown",
    "malformedRequest",
    "internalError",
    "tryLater",
    "sigRequired",
    "unauthorized",
    "garbage",  # an HTML page with status 200
    "empty",  # an empty 200 body
    "truncated",  # the DER cut in half
    "bad_signature",  # a valid response whose signature bytes are flipped
    "stranger",  # signed by an unrelated key
    "delegate_no_eku",  # signed by a delegate without id-kp-OCSPSigning
    "delegate_other_ca",  # signed by a delegate issued by another CA
    "delegate_expired",  # signed by an expired delegate
    "future",  # thisUpdate a day ahead
    "no_next_update",
    "expired",  # nextUpdate already past
    "short",  # nextUpdate 2 minutes ahead
    "stale",  # valid, but older: thisUpdate 3/4 of the validity ago (a CDN or a replay)
    "sha256",  # a SHA-256 CertID although SHA-1 was asked
    "other_cert",  # a response for another serial
    "multi",  # two SingleResponses
    "http404",
    "http500",
    "http503",  # with Retry-After: 120
    "redirect",  # 302 to the same responder's /r/ path, which answers normally
    "redirect_loop",
    "redirect_ftp",  # 302 to an ftp:// URL
    "huge",  # a 20 MB body
    "huge_stream",  # a 20 MB body without Content-Length (read until the server closes)
    "drip",  # a valid answer, one byte every 0.2 s (beats a read timeout, not a total one)
    "drip_headers",  # a tarpit: endless headers, one byte every 0.2 s (for up to 60 s)
    "hang",  # accept, then never answer (until the server stops)
)

_UNSUCCESSFUL = {
    "malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
    "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
    "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
    "sigRequired": ocsp.OCSPResponseStatus.SIG_REQUIRED,
    "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
}


@dataclass
class _Issuer:
    ca: Authority
    signer: Authority | None  # a delegated responder, or None to sign as the CA


@dataclass
class Responder:
    """Configure, then ``with responder.serving() as url:``."""

    validity: dt.timedelta = dt.timedelta(days=4)
    mode: str = "good"
    modes: dict[int, str] = field(default_factory=dict)
    revoked: set[int] = field(default_factory=set)
    #: Cache signed answers per (serial, mode) so the responder is never the bottleneck.
    presign: bool = False
    requests: int = 0
    methods: list[str] = field(default_factory=list)
    _issuers: dict[bytes, _Issuer] = field(default_factory=dict)
    _cache: dict[tuple[int, str], bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _stranger: Authority | None = None
    _extra: dict[str, Authority] = field(default_factory=dict)
    url: str = ""
    #: Milliseconds to wait before each answer, as a responder across the internet does.
    delay_ms: int = 0
    #: Requests in flight now, and the most seen at once, per ``Host`` header and overall.
    in_flight: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0
    _total: int = 0
    #: Per serial, something to do once, before the first answer for it (in the server's
    #: thread): what another actor does while a run waits for its answer (a Secret
    #: changed between the run reading it and writing it).
    before_answer: dict[int, Callable[[], object]] = field(default_factory=dict)

    def add_issuer(self, ca: Authority, signer: Authority | None = None) -> None:
        """Answer for certificates issued by ``ca``, signing with ``signer`` if given."""
        key_hash = x509.SubjectKeyIdentifier.from_public_key(ca.cert.public_key()).digest
        self._issuers[key_hash] = _Issuer(ca, signer)

    # -- HTTP -------------------------------------------------------------------------------

    @contextmanager
    def serving(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: tuple[Path, Path] | None = None
    ) -> Iterator[str]:
        """Serve on ``host``; ``tls=(chain file, key file)`` makes it an https:// responder."""
        server = _Server((host, port), _Handler)
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        server.responder = self
        self._stop.clear()
        with serve(server, before_stop=self._stop.set) as bound:
            self.url = f"{scheme}://{host}:{bound}/ocsp"
            yield self.url

    @contextmanager
    def counting(self, host: str) -> Iterator[None]:
        """Count one request in flight for ``host`` while the block runs."""
        with self._lock:
            now = self.in_flight[host] = self.in_flight.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), now)
            self._total += 1
            self.peak_total = max(self.peak_total, self._total)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight[host] -= 1
                self._total -= 1

    # -- answers ----------------------------------------------------------------------------

    def answer(self, request_der: bytes) -> tuple[int, dict[str, str], bytes]:
        """The HTTP status, headers and body for one DER request."""
        with self._lock:
            self.requests += 1
        try:
            req = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return 200, _OCSP_HEADERS, _unsuccessful("malformedRequest")
        with self._lock:
            meanwhile = self.before_answer.pop(req.serial_number, None)
        if meanwhile is not None:
            meanwhile()
        mode = self.modes.get(req.serial_number, self.mode)
        if mode in _UNSUCCESSFUL:
            return 200, _OCSP_HEADERS, _unsuccessful(mode)
        if mode == "http404":
            return 404, {"Content-Type": "text/plain"}, b"not found\n"
        if mode == "http500":
            return 500, {"Content-Type": "text/plain"}, b"server error\n"
        if mode == "http503":
            return 503, {"Content-Type": "text/plain", "Retry-After": "120"}, b"busy\n"
        if mode == "garbage":
            return 200, {"Content-Type": "text/html"}, b"<html><body>Welcome!</body></html>"
        if mode == "empty":
            return 200, _OCSP_HEADERS, b""
        if mode == "huge":
            return 200, _OCSP_HEADERS, b"\x30" * (20 * 1024 * 1024)
        key = (req.serial_number, mode)
        if self.presign and key in self._cache:
            body = self._cache[key]
        else:
            body = self._sign(req, mode)
            if self.presign:
                self._cache[key] = body
        if mode == "truncated":
            body = body[: len(body) // 2]
        headers = dict(_OCSP_HEADERS)
        headers["Cache-Control"] = f"max-age={int(self.validity.total_seconds() // 2)}, public"
        return 200, headers, body

    def _sign(self, req: ocsp.OCSPRequest, mode: str) -> bytes:
        issuer = self._issuers.get(req.issuer_key_hash)
        if issuer is None:
            return _unsuccessful("unauthorized")
        ca = issuer.ca
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        this_update = now - dt.timedelta(minutes=1)
        next_update: dt.datetime | None = this_update + self.validity
        if mode == "future":
            this_update = now + dt.timedelta(days=1)
            next_update = this_update + self.validity
        elif mode == "no_next_update":
            next_update = None
        elif mode == "expired":
            this_update = now - 2 * self.validity
            next_update = now - dt.timedelta(hours=1)
        elif mode == "short":
            next_update = now + dt.timedelta(minutes=2)
        elif mode == "stale":
            this_update = now - self.validity * 3 / 4
            next_update = this_update + self.validity
        status = ocsp.OCSPCertStatus.GOOD
        rev_time = None
        if mode == "revoked" or req.serial_number in self.revoked:
            status = ocsp.OCSPCertStatus.REVOKED
            rev_time = now - dt.timedelta(days=1)
        elif mode == "unknown":
            status = ocsp.OCSPCertStatus.UNKNOWN
        signer = issuer.signer
        if mode == "stranger":
            signer = self._extra_authority("stranger", lambda: Authority.root("Stranger CA"))
        elif mode == "delegate_no_eku":
            signer = self._extra_authority("no_eku", lambda: ca.ocsp_signer("No EKU", eku=False))
        elif mode == "delegate_other_ca":
            signer = self._extra_authority(
                "other_ca", lambda: Authority.root("Other CA").ocsp_signer("Other CA OCSP")
            )
        elif mode == "delegate_expired":
            signer = self._extra_authority(
                "expired",
                lambda: ca.ocsp_signer(
                    "Expired OCSP",
                    not_before=now - dt.timedelta(days=30),
                    not_after=now - dt.timedelta(days=1),
                ),
            )
        sign_as = signer or ca
        serial = req.serial_number + 1 if mode == "other_cert" else req.serial_number
        algorithm: hashes.HashAlgorithm = hashes.SHA256() if mode == "sha256" else hashes.SHA1()

        def build(serial_number: int) -> bytes:
            builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
                issuer_name_hash=_name_hash(ca, algorithm),
                issuer_key_hash=_key_hash(ca, algorithm),
                serial_number=serial_number,
                algorithm=algorithm,
                cert_status=status,
                this_update=this_update,
                next_update=next_update,
                revocation_time=rev_time,
                revocation_reason=x509.ReasonFlags.key_compromise if rev_time else None,
            )
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, sign_as.cert)
            if signer is not None:
                builder = builder.certificates([signer.cert])
            response = builder.sign(sign_as.key, hashes.SHA256())
            return response.public_bytes(serialization.Encoding.DER)

        der = build(serial)
        if mode == "multi":
            # cryptography's builder refuses a second SingleResponse: graft one in and re-sign.
            der = _add_single_response(der, build(serial + 7), sign_as.key)
        if mode == "bad_signature":
            der = der[:-4] + bytes(b ^ 0xFF for b in der[-4:])
        return der

    def _extra_authority(self, name: str, make: Any) -> Authority:
        with self._lock:
            if name not in self._extra:
                self._extra[name] = make()
            return self._extra[name]


_OCSP_HEADERS = {"Content-Type": "application/ocsp-response"}


def _unsuccessful(name: str) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(_UNSUCCESSFUL[name]).public_bytes(
        serialization.Encoding.DER
    )


def _name_hash(ca: Authority, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(ca.cert.subject.public_bytes())
    return digest.finalize()


def _key_hash(ca: Authority, algorithm: hashes.HashAlgorithm) -> bytes:
    public = ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The key hash covers the subjectPublicKey BIT STRING contents, not the whole SPKI.
    digest = hashes.Hash(algorithm)
    digest.update(_spki_bit_string(public))
    return digest.finalize()


def _spki_bit_string(spki: bytes) -> bytes:
    """The contents (less the unused-bits byte) of the BIT STRING at the end of an SPKI."""
    # SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }
    pos = _skip_header(spki, 0)[0]  # into the outer SEQUENCE
    pos = sum(_skip_header(spki, pos))  # past the AlgorithmIdentifier
    start, length = _skip_header(spki, pos)
    return spki[start + 1 : start + length]


def _skip_header(der: bytes, pos: int) -> tuple[int, int]:
    """Return (content start, content length) of the TLV at ``pos``."""
    length = der[pos + 1]
    if length < 0x80:
        return pos + 2, length
    count = length & 0x7F
    return pos + 2 + count, int.from_bytes(der[pos + 2 : pos + 2 + count], "big")


def _tlv(der: bytes, pos: int) -> tuple[int, int]:
    """Return (content start, end) of the TLV at ``pos``."""
    start, length = _skip_header(der, pos)
    return start, start + length


def _children(der: bytes) -> list[bytes]:
    """The encoded elements inside the constructed TLV ``der``."""
    pos, end = _tlv(der, 0)
    out = []
    while pos < end:
        _, child_end = _tlv(der, pos)
        out.append(der[pos:child_end])
        pos = child_end
    return out


def _encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _basic(der: bytes) -> list[bytes]:
    """The elements of the BasicOCSPResponse inside an OCSPResponse."""
    response_bytes = _children(der)[1]  # [0] EXPLICIT ResponseBytes
    octets = _children(_children(response_bytes)[0])[1]  # SEQUENCE { type, OCTET STRING }
    start, end = _tlv(octets, 0)
    return _children(octets[start:end])


def _responses_index(fields: list[bytes]) -> int:
    """ResponseData is [0] version (optional), responderID, producedAt, responses, ..."""
    return 3 if fields[0][0] == 0xA0 else 2


def _add_single_response(der: bytes, other: bytes, key: Any) -> bytes:
    """``der`` with the SingleResponse of ``other`` appended, re-signed with ``key``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    tbs, algorithm, _signature, *certs = _basic(der)
    fields = _children(tbs)
    other_fields = _children(_basic(other)[0])
    other_single = _children(other_fields[_responses_index(other_fields)])[0]
    index = _responses_index(fields)
    fields[index] = _encode(0x30, b"".join(_children(fields[index])) + other_single)
    new_tbs = _encode(0x30, b"".join(fields))
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    basic = _encode(
        0x30, new_tbs + algorithm + _encode(0x03, b"\x00" + signature) + b"".join(certs)
    )
    octets = _encode(0x04, basic)
    oid = _children(_children(_children(der)[1])[0])[0]
    response_bytes = _encode(0xA0, _encode(0x30, oid + octets))
    return _encode(0x30, _children(der)[0] + response_bytes)


class _Server(ThreadingHTTPServer):
    responder: Responder
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed by a test) is normal; anything else is loud."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path
        if path.startswith("/r/"):
            path = path[2:]
        tail = path.split("/", 2)[-1] if path.count("/") >= 2 else ""
        try:
            der = base64.b64decode(urllib.parse.unquote(tail), validate=True)
        except ValueError:
            der = b""
        self._respond(der, "GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._respond(self.rfile.read(length), "POST")

    def _respond(self, der: bytes, method: str) -> None:
        responder = self.server.responder
        with responder.counting(self.headers.get("Host", "")):
            if responder.delay_ms:
                responder._stop.wait(responder.delay_ms / 1000)
            self._answer(responder, der, method)

    def _answer(self, responder: Responder, der: bytes, method: str) -> None:
        responder.methods.append(method)
        mode = responder.mode
        if mode == "hang" or _serial_mode(responder, der) == "hang":
            responder._stop.wait(60)
            return
        if mode == "drip_headers":
            self._drip_headers(responder)
            return
        if mode in ("huge_stream", "drip"):
            self._stream(responder, der, mode)
            return
        redirected = self.path.startswith("/r/")
        if mode in ("redirect", "redirect_loop", "redirect_ftp") and not (
            redirected and mode == "redirect"
        ):
            target = {
                "redirect": "/r" + self.path,
                "redirect_loop": self.path,
                "redirect_ftp": "ftp://127.0.0.1/ocsp",
            }[mode]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if redirected:
            saved, responder.mode = responder.mode, "good"
            try:
                status, headers, body = responder.answer(der)
            finally:
                responder.mode = saved
        else:
            status, headers, body = responder.answer(der)
        self.send_body(status, headers, body)

    def _drip_headers(self, responder: Responder) -> None:
        self.close_connection = True
        with suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Tarpit: ")
            self.wfile.flush()
            for _ in range(300):
                if responder._stop.wait(0.2):
                    return
                self.wfile.write(b"a")
                self.wfile.flush()

    def _stream(self, responder: Responder, der: bytes, mode: str) -> None:
        """Answer without Content-Length, closing the connection at the end."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Connection", "close")
        self.end_headers()
        with suppress(BrokenPipeError, ConnectionResetError):
            if mode == "huge_stream":
                chunk = b"\x30" * 65536
                for _ in range(320):
                    self.wfile.write(chunk)
                return
            saved, responder.mode = responder.mode, "good"
            try:
                body = responder.answer(der)[2]
            finally:
                responder.mode = saved
            for i in range(len(body)):
                if responder._stop.wait(0.2):
                    return
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()


def _serial_mode(responder: Responder, der: bytes) -> str | None:
    try:
        return responder.modes.get(ocsp.load_der_ocsp_request(der).serial_number)
    except ValueError:
        return None


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it is true (used by tests around subprocesses)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.02)
