"""HAProxy's runtime API (the stats socket): push staples and read what HAProxy serves.

Everything for one socket goes over ONE connection in interactive mode (``prompt``):
every reply then ends with ``"\\n> "``, so the one-line ``set ssl ocsp-response <base64>``
commands can be written all at once and their replies read back in order.

A certificate that had no ``.ocsp`` file when HAProxy started has no staple slot, and
HAProxy answers ``Certificate ID does not match any certificate or issuer.`` It is then
stapled with a certificate transaction (``set ssl cert <cert>.ocsp``, ``commit ssl
cert``), without a reload. The replies and traps relied on here were checked against
HAProxy 2.6.12; ``tests/test_haproxy.py`` proves them against the real binary.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import re
import selectors
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from ocsptool.errors import HAProxyError, UsageError

UPDATED = "OCSP Response updated!"
NO_SLOT = "OCSP single response: Certificate ID does not match any certificate or issuer."
NOT_LOADED = "HAProxy has not loaded this certificate (not in 'show ssl cert')"

#: A one-line command longer than this goes in the payload form, after all the others.
#: HAProxy resets the connection when a line or a payload does not fit in tune.bufsize
#: (16384): on 2.6.12 a one-line command of 16383 bytes passed and the payload form took at
#: most ~16356 bytes of base64, so the payload form buys no room. Sending the large ones
#: last, smallest first, keeps a too-large staple from costing any other.
MAX_LINE = 16000

log = logging.getLogger(__name__)

_PROMPT = b"\n> "
_CHUNK = 65536


@dataclass(frozen=True)
class PushItem:
    """One staple to push."""

    cert_path: str  # absolute path of the certificate file as ocsptool found it
    der: bytes  # the verified OCSP response (DER)
    issuer_pem: bytes | None  # from <cert>.issuer: needed in a first-staple transaction


@dataclass(frozen=True)
class PushResult:
    """What happened to one ``PushItem``.

    ``method`` is ``"update"`` (``set ssl ocsp-response``), ``"transaction"`` (``set ssl
    cert <cert>.ocsp`` + ``commit ssl cert``) or ``"not-loaded"`` (HAProxy does not serve
    this certificate, so there is nothing to push; ``ok`` is False).
    """

    cert_path: str
    ok: bool
    method: str
    error: str | None


@dataclass(frozen=True)
class ServedStaple:
    """One entry of ``show ssl ocsp-response``."""

    cert_id: str  # the "Certificate ID key" hex, lowercase
    serial: str  # the certificate serial as printed, lowercase hex
    status: str  # "good", "revoked", "unknown"; "" when the slot holds no response
    this_update: dt.datetime | None
    next_update: dt.datetime | None


class AddressError(UsageError, ValueError):
    """A socket address that cannot be parsed."""


# -- addresses --------------------------------------------------------------------------


SockAddr = str | tuple[str, int]


def parse_address(address: str) -> tuple[int, SockAddr]:
    """The socket family and sockaddr of a ``stats socket`` address.

    Accepts HAProxy's spellings: ``/path/to/socket`` (or ``unix@/path``),
    ``ipv4@127.0.0.1:9999`` and ``ipv6@[::1]:9999``.
    """
    prefix, sep, rest = address.partition("@")
    if not sep and address and not re.fullmatch(r"[\w.-]+:\d+", address):
        return socket.AF_UNIX, address
    if prefix == "unix" and rest:
        return socket.AF_UNIX, rest
    if prefix == "ipv4" and (match := re.fullmatch(r"([^:\[\]]+):(\d+)", rest)):
        return socket.AF_INET, (match[1], _port(address, match[2]))
    if prefix == "ipv6" and (match := re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)", rest)):
        return socket.AF_INET6, (match[1], _port(address, match[2]))
    raise AddressError(
        f"bad HAProxy socket address {address!r}: use /path/to/socket, "
        "ipv4@127.0.0.1:9999 or ipv6@[::1]:9999"
    )


def _port(address: str, digits: str) -> int:
    port = int(digits)
    if not 0 < port < 65536:
        raise AddressError(f"bad HAProxy socket address {address!r}: port {port} out of range")
    return port


# -- the connection ---------------------------------------------------------------------


class _Connection:
    """One interactive-mode connection to the runtime API, with a timeout on every wait."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        family, sockaddr = parse_address(address)
        self.broken: HAProxyError | None = None
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(sockaddr)
            self.sock.setblocking(False)
            self.exchange([b"prompt\n"])
        except OSError as e:
            self.close()
            raise self.error(e) from None
        except HAProxyError:
            self.close()
            raise

    def error(self, cause: OSError | str) -> HAProxyError:
        """A one-line HAProxyError naming the address and the cause."""
        if isinstance(cause, str):
            why = cause
        elif isinstance(cause, FileNotFoundError):
            why = "no such socket (is HAProxy running with this 'stats socket'?)"
        elif isinstance(cause, PermissionError):
            why = "permission denied (run as a user that may use the socket)"
        elif isinstance(cause, ConnectionRefusedError):
            why = "connection refused (nothing is listening)"
        elif isinstance(cause, TimeoutError):
            why = f"timed out after {self.timeout:g}s waiting for HAProxy"
        elif isinstance(cause, ConnectionResetError | BrokenPipeError):
            why = "HAProxy closed the connection unexpectedly"
        else:
            why = cause.strerror or str(cause)
        return HAProxyError(f"HAProxy socket {self.address}: {why}")

    def close(self) -> None:
        self.sock.close()

    def command(self, command: str) -> str:
        """Send one command (with its newline or payload) and return its reply."""
        return self.exchange([command.encode()])[0]

    def exchange(self, commands: Sequence[bytes]) -> list[str]:
        """Write all ``commands`` while reading their replies, so neither side blocks.

        Raises HAProxyError (and marks the connection broken) on timeout or close.
        """
        if self.broken is not None:
            raise self.broken
        if log.isEnabledFor(logging.DEBUG):
            for command in commands:
                line = command.split(b"\n", 1)[0].decode("ascii", "replace")
                log.debug("HAProxy %s <- %s", self.address, line[:100])
        try:
            replies = self._exchange(b"".join(commands), len(commands))
        except OSError as e:
            self.broken = self.error(e)
            raise self.broken from None
        except HAProxyError as e:
            self.broken = e
            raise
        for reply in replies:
            log.debug("HAProxy %s -> %s", self.address, _one_line(reply)[:100] or "(empty)")
        return replies

    def _exchange(self, data: bytes, count: int) -> list[str]:
        outgoing = memoryview(data)
        incoming = bytearray()
        found = 0
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while found < count:
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if outgoing else 0)
                selector.modify(self.sock, events)
                ready = selector.select(self.timeout)
                if not ready:
                    raise TimeoutError
                mask = ready[0][1]
                if mask & selectors.EVENT_WRITE and outgoing:
                    outgoing = outgoing[self._send(outgoing[:_CHUNK]) :]
                if mask & selectors.EVENT_READ:
                    # Count prompts in the new bytes only (a prompt may straddle two reads).
                    start = max(len(incoming) - len(_PROMPT) + 1, 0)
                    incoming += self._receive()
                    found += incoming.count(_PROMPT, start)
        try:
            return _split_replies(bytes(incoming), count)
        except ValueError as e:
            raise self.error(str(e)) from None

    def _send(self, data: memoryview) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    def _receive(self) -> bytes:
        try:
            chunk = self.sock.recv(_CHUNK)
        except BlockingIOError:
            return b""
        if not chunk:
            raise self.error("HAProxy closed the connection unexpectedly")
        return chunk


def _split_replies(data: bytes, count: int) -> list[str]:
    """The replies in ``data``: each ends with the prompt; nothing may follow the last."""
    parts = data.split(_PROMPT)
    if len(parts) != count + 1 or parts[-1]:
        text = _one_line(data.decode("utf-8", "replace"))
        raise ValueError(f"unexpected output from HAProxy: {text[:100]!r}")
    return [_clean(part.decode("utf-8", "replace")) for part in parts[:-1]]


def _clean(reply: str) -> str:
    """Drop the ``+ `` prompts HAProxy prints while it reads a payload."""
    while reply.startswith("+ "):
        reply = reply[2:]
    return reply.strip()


def _one_line(reply: str) -> str:
    return " ".join(line.strip() for line in reply.splitlines() if line.strip())


# -- pushing ----------------------------------------------------------------------------


def push_staples(
    address: str, items: Sequence[PushItem], *, timeout: float = 10.0
) -> list[PushResult]:
    """Push each staple over one connection; one result per item, in order.

    Raises HAProxyError only when the socket cannot be used at all. Once connected, a
    failure is recorded on the items it affects, and never stops the others.
    """
    if not items:
        return []
    connection = _Connection(address, timeout)
    try:
        return _Push(connection, items).run()
    finally:
        connection.close()


class _Push:
    """One batch on one connection: updates, then first-staple transactions."""

    def __init__(self, connection: _Connection, items: Sequence[PushItem]) -> None:
        self.connection = connection
        self.items = items
        self.results: dict[int, PushResult] = {}
        self._certs: tuple[_Loaded, list[str]] | None = None

    def run(self) -> list[PushResult]:
        lines = [_update_line(item) for item in self.items]
        sizes = [len(line) for line in lines]
        small = [i for i, size in enumerate(sizes) if size <= MAX_LINE]
        # Large ones go last, smallest first: one too big for HAProxy's buffer makes it
        # drop the connection, which must cost no other item that could have gone in.
        large = sorted(
            (i for i, size in enumerate(sizes) if size > MAX_LINE), key=sizes.__getitem__
        )
        without_slot = self._update_pipelined(small, lines)
        self._first_staples(without_slot)
        for index in large:
            if self._update_one(index):
                self._first_staples([index])
        return [self.results[i] for i in range(len(self.items))]

    def _fail(self, index: int, method: str, error: str) -> None:
        item = self.items[index]
        self.results[index] = PushResult(item.cert_path, False, method, error)

    def _update_pipelined(self, indexes: list[int], lines: list[str]) -> list[int]:
        """Send every one-line update at once; return the items that have no slot."""
        if not indexes:
            return []
        commands = [lines[i].encode() for i in indexes]
        try:
            replies = self.connection.exchange(commands)
        except HAProxyError as e:
            for index in indexes:
                self._fail(index, "update", str(e))
            return []
        return [i for i, reply in zip(indexes, replies, strict=True) if self._updated(i, reply)]

    def _update_one(self, index: int) -> bool:
        """Send one large update in the payload form; True if the item has no slot."""
        item = self.items[index]
        size = len(base64.b64encode(item.der))
        try:
            reply = self.connection.command(_payload("set ssl ocsp-response", [_b64(item.der)]))
        except HAProxyError as e:
            self._fail(
                index,
                "update",
                f"{e} (while sending a {size}-byte base64 OCSP "
                "response; it must fit in HAProxy's tune.bufsize)",
            )
            return False
        return self._updated(index, reply)

    def _updated(self, index: int, reply: str) -> bool:
        """Record an update's reply; True if the item needs a transaction instead."""
        if reply == NO_SLOT:
            return True
        item = self.items[index]
        ok = reply == UPDATED
        error = None if ok else f"HAProxy answered: {_one_line(reply)}"
        self.results[index] = PushResult(item.cert_path, ok, "update", error)
        return False

    # -- first staples ----------------------------------------------------------------

    def _first_staples(self, indexes: list[int]) -> None:
        """Staple certificates that have no slot yet, one transaction after another."""
        if not indexes:
            return
        try:
            loaded, open_transactions = self._show_certs()
            blocker = self._clear_leftovers(loaded, open_transactions)
        except HAProxyError as e:
            for index in indexes:
                self._fail(index, "transaction", str(e))
            return
        for index in indexes:
            path = loaded.find(self.items[index].cert_path)
            if path is None:
                self._fail(index, "not-loaded", NOT_LOADED)
            elif blocker is not None:
                self._fail(
                    index,
                    "transaction",
                    f"another certificate transaction is open in HAProxy on {blocker}; "
                    "try again later",
                )
            else:
                self._transaction(index, path)

    def _show_certs(self) -> tuple[_Loaded, list[str]]:
        """``show ssl cert``, asked once per batch."""
        if self._certs is None:
            paths, open_transactions = _parse_show_ssl_cert(
                self.connection.command("show ssl cert\n")
            )
            self._certs = _Loaded(paths), open_transactions
        return self._certs

    def _clear_leftovers(self, loaded: _Loaded, open_transactions: list[str]) -> str | None:
        """Abort transactions a killed run left on this batch's certificates.

        Returns the path of a transaction on another file (not ours to touch), if any.
        """
        if not open_transactions:
            return None
        ours = {loaded.find(item.cert_path) for item in self.items}
        for path in [p for p in open_transactions if p in ours]:
            self.connection.command(f"abort ssl cert {path}\n")
            open_transactions.remove(path)
        return open_transactions[0] if open_transactions else None

    def _transaction(self, index: int, path: str) -> None:
        item = self.items[index]
        problem = _response_mismatch(item)
        if problem is not None:
            self._fail(index, "transaction", f"HAProxy answered: {NO_SLOT} ({problem})")
            return
        try:
            error = self._run_transaction(item, path)
        except HAProxyError as e:
            error = str(e)
        ok = error is None
        self.results[index] = PushResult(item.cert_path, ok, "transaction", error)

    def _run_transaction(self, item: PushItem, path: str) -> str | None:
        """``set ssl cert`` the issuer (if any) and the staple, then commit; abort on error."""
        steps = []
        if item.issuer_pem is not None:
            issuer_lines = item.issuer_pem.decode("ascii", "replace").splitlines()
            steps.append(_payload(f"set ssl cert {path}.issuer", issuer_lines))
        steps.append(_payload(f"set ssl cert {path}.ocsp", [_b64(item.der)]))
        for number, step in enumerate(steps):
            reply = self.connection.command(step)
            expected = "created" if number == 0 else "updated"
            if reply != f"Transaction {expected} for certificate {path}!":
                self._abort(path)
                return f"HAProxy answered: {_one_line(reply)}"
        reply = self.connection.command(f"commit ssl cert {path}\n")
        if "Success!" not in reply.splitlines():
            self._abort(path)
            return f"HAProxy answered: {_one_line(reply)}"
        return None

    def _abort(self, path: str) -> None:
        """Abort our transaction; "No ongoing transaction!" (a failed commit) is fine."""
        self.connection.command(f"abort ssl cert {path}\n")


def _update_line(item: PushItem) -> str:
    return f"set ssl ocsp-response {_b64(item.der)}\n"


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _payload(command: str, lines: Iterable[str]) -> str:
    """``command <<``, the payload lines and exactly one empty line to end it.

    Blank lines would end the payload early (a PEM's trailing newline would even become
    an empty command), so they are dropped.
    """
    body = [line.strip() for line in lines if line.strip()]
    return "\n".join([f"{command} <<", *body]) + "\n\n"


class _Loaded:
    """The certificate paths HAProxy loaded, matched to ours as spelled or via symlinks."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = set(paths)
        self._real: dict[str, str] | None = None

    def find(self, cert_path: str) -> str | None:
        """The path HAProxy loaded ``cert_path`` under, or None."""
        if cert_path in self.paths:
            return cert_path
        if self._real is None:
            self._real = {os.path.realpath(p): p for p in self.paths if os.path.isabs(p)}
        return self._real.get(os.path.realpath(cert_path))


def _response_mismatch(item: PushItem) -> str | None:
    """Why the response cannot be this certificate's, or None.

    HAProxy commits a transaction even when the staple's CertID does not match the
    certificate (it then serves nothing), so check it here first.
    """
    try:
        response = ocsp.load_der_ocsp_response(item.der)
    except ValueError:
        return "not an OCSP response (DER)"
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"OCSP response status is {response.response_status.name}"
    singles = list(response.responses)
    if len(singles) != 1:
        return f"the OCSP response has {len(singles)} single responses; HAProxy needs one"
    single = singles[0]
    if not isinstance(single.hash_algorithm, hashes.SHA1):
        return (
            f"the OCSP response's CertID uses {single.hash_algorithm.name.upper()}; "
            "HAProxy only matches SHA-1 CertIDs"
        )
    try:
        certs = x509.load_pem_x509_certificates(Path(item.cert_path).read_bytes())
    except (OSError, ValueError) as e:
        return f"cannot read the certificate to check the response against it: {e}"
    for cert in certs:
        if cert.serial_number == single.serial_number and _name_hash(cert) == (
            single.issuer_name_hash
        ):
            return None
    return f"the OCSP response is for serial {single.serial_number:x}, not for this certificate"


def _name_hash(cert: x509.Certificate) -> bytes:
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - OCSP CertIDs are SHA-1 (RFC 5019)
    digest.update(cert.issuer.public_bytes())
    return digest.finalize()


# -- reading ----------------------------------------------------------------------------


def show_ssl_certs(address: str, *, timeout: float = 10.0) -> tuple[list[str], list[str]]:
    """(loaded certificate paths, paths with an open transaction) from ``show ssl cert``."""
    connection = _Connection(address, timeout)
    try:
        return _parse_show_ssl_cert(connection.command("show ssl cert\n"))
    finally:
        connection.close()


def _parse_show_ssl_cert(reply: str) -> tuple[list[str], list[str]]:
    loaded: list[str] = []
    transactions: list[str] = []
    section = loaded
    for line in reply.splitlines():
        if line == "# transaction":
            section = transactions
        elif line == "# filename":
            section = loaded
        elif line:
            section.append(line.removeprefix("*"))
    return loaded, transactions


def show_ocsp_responses(address: str, *, timeout: float = 10.0) -> dict[str, ServedStaple]:
    """What HAProxy staples, keyed by the certificate-ID key hex it prints."""
    connection = _Connection(address, timeout)
    try:
        serials = _parse_ocsp_list(connection.command("show ssl ocsp-response\n"))
        keys = list(serials)
        details = connection.exchange([f"show ssl ocsp-response {key}\n".encode() for key in keys])
    finally:
        connection.close()
    return {
        key: _served_staple(key, serials[key], detail)
        for key, detail in zip(keys, details, strict=True)
    }


_KEY_LINE = re.compile(r"Certificate ID key : ([0-9a-fA-F]+)")
_SERIAL_LINE = re.compile(r"Serial Number: ([0-9a-fA-F]+)")


def _parse_ocsp_list(reply: str) -> dict[str, str]:
    """{certificate-ID key: serial} from ``show ssl ocsp-response``."""
    serials: dict[str, str] = {}
    key = None
    for line in reply.splitlines():
        if match := _KEY_LINE.search(line):
            key = match[1].lower()
            serials[key] = ""
        elif key and (match := _SERIAL_LINE.search(line)):
            serials[key] = match[1].lower()
    return serials


def _served_staple(key: str, serial: str, detail: str) -> ServedStaple:
    fields = {}
    for line in detail.splitlines():
        name, sep, value = line.strip().partition(": ")
        if sep and name in ("Cert Status", "This Update", "Next Update"):
            fields[name] = value.strip()
    return ServedStaple(
        cert_id=key,
        serial=serial,
        status=fields.get("Cert Status", ""),
        this_update=_openssl_time(fields.get("This Update")),
        next_update=_openssl_time(fields.get("Next Update")),
    )


def _openssl_time(text: str | None) -> dt.datetime | None:
    """Parse OpenSSL's ``Nov 28 20:33:27 2026 GMT``."""
    if not text:
        return None
    try:
        moment = dt.datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y GMT")
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC)


# -- certificate IDs --------------------------------------------------------------------

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
