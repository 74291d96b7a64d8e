"""Reading what HAProxy holds: parsers of its replies, and the public readers.

Every parser first checks that the reply is the data asked for: ``Permission denied``,
``Can't allocate memory!`` (``show ssl cert`` at level user) or any other error text
raises a named HAProxyError, so that nobody reports on data that was never read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.x509 import ocsp

from ocsptool.haproxy.dialect import Dialect
from ocsptool.haproxy.errors import SocketLevelError, UnexpectedReply, level_fix
from ocsptool.haproxy.names import cli_word, name_problem, refusal
from ocsptool.haproxy.transport import Connection, one_line

PERMISSION_DENIED = "Permission denied"
NO_MEMORY = "Can't allocate memory!"  # what ``show ssl cert`` answers at level user
NO_SUCH_ID = "Certificate ID does not match any certificate."
_NO_SUCH_ID_28 = "'show ssl ocsp-response' expects a valid certid or certificate path."
_NO_SUCH_ID_28B = "Certificate ID or path does not match any certificate."
NO_SUCH_CERT = "Can't display the certificate: Not found or the certificate is a bundle!"


@dataclass(frozen=True)
class ServedStaple:
    """One entry of ``show ssl ocsp-response``."""

    cert_id: str  # the "Certificate ID key" hex, lowercase
    serial: str  # the certificate serial as printed, lowercase hex
    status: str  # "good", "revoked", "unknown"; "" when the slot holds no response
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    path: str | None = None  # the certificate's path (2.8+ list it)


@dataclass(frozen=True)
class OcspUpdate:
    """One row of ``show ssl ocsp-updates`` (2.8+): a certificate HAProxy updates itself."""

    cert_id: str
    path: str
    next_update: str
    last_update: str
    successes: int
    failures: int
    status: str  # "Last Update Status (str)", e.g. "Update successful"


def refuse_errors(connection: Connection, reply: str, what: str) -> None:
    """Raise when ``reply`` is a level refusal rather than the answer to ``what``."""
    first = reply.splitlines()[0] if reply else ""
    if first in (PERMISSION_DENIED, NO_MEMORY):
        raise SocketLevelError(level_fix(connection.address, connection.level, what))


def unexpected(connection: Connection, reply: str, what: str) -> UnexpectedReply:
    return UnexpectedReply(
        f"HAProxy socket {connection.address}: cannot read {what}: "
        f"HAProxy {connection.dialect.version} answered {one_line(reply)[:120]!r}"
    )


# -- show ssl cert ----------------------------------------------------------------------


def parse_show_ssl_cert(connection: Connection, reply: str) -> tuple[list[str], list[str]]:
    """(loaded paths, paths with an open transaction) of a ``show ssl cert`` reply."""
    refuse_errors(connection, reply, "`show ssl cert`")
    lines = reply.splitlines()
    if lines and lines[0] not in ("# filename", "# transaction"):
        raise unexpected(connection, reply, "the certificates (`show ssl cert`)")
    loaded: list[str] = []
    transactions: list[str] = []
    section = loaded
    for line in lines:
        if line == "# transaction":
            section = transactions
        elif line == "# filename":
            section = loaded
        elif line:
            section.append(line.removeprefix("*"))
    return loaded, transactions


def parse_cert_serial(connection: Connection, reply: str) -> int | None:
    """The serial in a ``show ssl cert <path>`` reply; None for a bundle or unknown path."""
    refuse_errors(connection, reply, "`show ssl cert`")
    if reply == NO_SUCH_CERT:
        return None
    match = re.search(r"^Serial: ([0-9A-Fa-f]+)$", reply, re.MULTILINE)
    if match is None:
        raise unexpected(connection, reply, "a certificate (`show ssl cert <path>`)")
    return int(match[1], 16)


# -- show ssl ocsp-response -------------------------------------------------------------

_KEY_LINE = re.compile(r"Certificate ID key : ([0-9a-fA-F]+)")
_PATH_LINE = re.compile(r"Certificate path : (\S.*)")
_SERIAL_LINE = re.compile(r"Serial Number: ([0-9a-fA-F]+)")


def parse_ocsp_list(connection: Connection, reply: str) -> dict[str, tuple[str, str | None]]:
    """{certificate-ID key: (serial, path or None)} from ``show ssl ocsp-response``."""
    refuse_errors(connection, reply, "`show ssl ocsp-response`")
    if reply and not reply.startswith("#") and "Certificate ID key" not in reply:
        raise unexpected(connection, reply, "the staples (`show ssl ocsp-response`)")
    entries: dict[str, tuple[str, str | None]] = {}
    key = None
    for line in reply.splitlines():
        if match := _KEY_LINE.search(line):
            key = match[1].lower()
            entries[key] = ("", None)
        elif key and (match := _PATH_LINE.search(line)):
            entries[key] = (entries[key][0], match[1].strip())
        elif key and (match := _SERIAL_LINE.search(line)):
            entries[key] = (match[1].lower(), entries[key][1])
    return entries


def served_staple(key: str, serial: str, path: str | None, detail: str) -> ServedStaple:
    """A ServedStaple from the text detail of ``show ssl ocsp-response <id>``."""
    fields: dict[str, str] = {}
    for line in detail.splitlines():
        name, sep, value = line.strip().partition(": ")
        if sep and name in ("Cert Status", "This Update", "Next Update"):
            fields.setdefault(name, value.strip())
    return ServedStaple(
        cert_id=key,
        serial=serial,
        status=fields.get("Cert Status", ""),
        this_update=_openssl_time(fields.get("This Update")),
        next_update=_openssl_time(fields.get("Next Update")),
        path=path,
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


def serves(connection: Connection, dialect: Dialect, reply: str, der: bytes) -> bool | None:
    """Whether the reply to ``dialect.served_command`` shows exactly the staple ``der``.

    2.8+ answer with the DER in base64, compared byte for byte; None when the reply is
    empty (a staple too large for HAProxy's output buffer: ask ``text_serves``). 2.6
    only prints the response as text: see ``text_serves``.
    """
    refuse_errors(connection, reply, "`show ssl ocsp-response`")
    if reply in (NO_SUCH_ID, _NO_SUCH_ID_28, _NO_SUCH_ID_28B):
        return False
    if not dialect.reads_der:
        return text_serves(reply, der)
    if not reply:
        return None
    try:
        return base64.b64decode("".join(reply.split()), validate=True) == der
    except (binascii.Error, ValueError):
        raise unexpected(connection, reply, "a staple") from None


def text_serves(reply: str, der: bytes) -> bool:
    """Whether the text view of ``show ssl ocsp-response <id>`` shows the staple ``der``.

    Its signature (over every field of the response) is compared; a large response's
    text is cut at HAProxy's buffer before the signature, so then the fields printed
    before it (producedAt, thisUpdate, nextUpdate, serial) are.
    """
    response = ocsp.load_der_ocsp_response(der)
    start = reply.find("Signature Algorithm:")
    if start >= 0:  # the response's signature, as OpenSSL's aa:bb:... lines
        return response.signature.hex(":") in "".join(reply[start:].split())
    printed = _printed_fields(reply)
    return "Produced At" in printed and printed == {
        "Produced At": _openssl_text(response.produced_at_utc),
        "This Update": _openssl_text(response.this_update_utc),
        "Next Update": _openssl_text(response.next_update_utc),
        "Serial Number": f"{response.serial_number:X}",
    }


_COMPARED = ("Produced At", "This Update", "Next Update", "Serial Number")


def _printed_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(": ")
        if sep and name == "Serial Number":
            fields.setdefault(name, f"{int(value, 16):X}")
        elif sep and name in _COMPARED:
            fields.setdefault(name, " ".join(value.split()))
    return fields


def _openssl_text(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return f"{moment:%b} {moment.day} {moment:%H:%M:%S %Y} GMT"


# -- show ssl ocsp-updates (2.8+) -------------------------------------------------------

_UPDATES_HEADER = "OCSP Certid | Path |"


def parse_ocsp_updates(connection: Connection, reply: str) -> list[OcspUpdate]:
    """The rows of ``show ssl ocsp-updates``."""
    refuse_errors(connection, reply, "`show ssl ocsp-updates`")
    lines = reply.splitlines()
    if not lines or not lines[0].startswith(_UPDATES_HEADER):
        raise unexpected(connection, reply, "the OCSP updates (`show ssl ocsp-updates`)")
    rows = []
    for line in lines[1:]:
        fields = [field.strip() for field in line.split(" | ")]
        if len(fields) < 8:
            raise unexpected(connection, reply, "the OCSP updates (`show ssl ocsp-updates`)")
        rows.append(
            OcspUpdate(
                cert_id=fields[0].lower(),
                path=fields[1],
                next_update=fields[2],
                last_update=fields[3],
                successes=int(fields[4]) if fields[4].isdigit() else 0,
                failures=int(fields[5]) if fields[5].isdigit() else 0,
                status=" | ".join(fields[7:]),
            )
        )
    return rows


# -- the public readers -----------------------------------------------------------------


def show_ssl_certs(address: str, *, timeout: float = 10.0) -> tuple[list[str], list[str]]:
    """(loaded certificate paths, paths with an open transaction) from ``show ssl cert``.

    Raises SocketLevelError when the socket's level cannot list them (level user).
    """
    connection = Connection(address, timeout)
    try:
        return parse_show_ssl_cert(connection, connection.command("show ssl cert\n"))
    finally:
        connection.close()


def loaded_certs(address: str, *, timeout: float = 10.0) -> list[tuple[str, int | None]]:
    """(path, serial) of every certificate HAProxy loaded; serial None for a bundle, and
    for a name that cannot be put into a command safely (one warning line each)."""
    connection = Connection(address, timeout)
    try:
        paths, _ = parse_show_ssl_cert(connection, connection.command("show ssl cert\n"))
        asked = [path for path in paths if _safe_name(address, path)]
        replies = connection.exchange([f"show ssl cert {cli_word(path)}\n" for path in asked])
        serials = {
            path: parse_cert_serial(connection, reply)
            for path, reply in zip(asked, replies, strict=True)
        }
        return [(path, serials.get(path)) for path in paths]
    finally:
        connection.close()


def _safe_name(address: str, path: str) -> bool:
    """Whether ``path`` can be asked about; if not, one warning line says so."""
    problem = name_problem(path)
    if problem is None:
        return True
    from ocsptool.console import line

    line(f"HAProxy socket {address}: {refusal(path, problem)}")
    return False


def show_ocsp_responses(address: str, *, timeout: float = 10.0) -> dict[str, ServedStaple]:
    """What HAProxy staples, keyed by the certificate-ID key hex it prints.

    Raises SocketLevelError (3.4 below level admin) or UnexpectedReply: never a guess.
    """
    connection = Connection(address, timeout)
    try:
        entries = parse_ocsp_list(connection, connection.command("show ssl ocsp-response\n"))
        keys = list(entries)
        details = connection.exchange([f"show ssl ocsp-response {key}\n" for key in keys])
    finally:
        connection.close()
    for detail in details:
        refuse_errors(connection, detail, "`show ssl ocsp-response`")
    return {
        key: served_staple(key, entries[key][0], entries[key][1], detail)
        for key, detail in zip(keys, details, strict=True)
    }


def ocsp_updates(address: str, *, timeout: float = 10.0) -> list[OcspUpdate]:
    """The certificates HAProxy updates itself (``ocsp-update on``); [] before 2.8."""
    connection = Connection(address, timeout)
    try:
        return read_ocsp_updates(connection)
    finally:
        connection.close()


def read_ocsp_updates(connection: Connection) -> list[OcspUpdate]:
    if not connection.dialect.ocsp_updates:
        return []
    return parse_ocsp_updates(connection, connection.command("show ssl ocsp-updates\n"))


def ocsp_updated_paths(address: str, *, timeout: float = 10.0) -> list[str]:
    """The paths of the certificates HAProxy staples itself (``ocsp-update on``)."""
    return [row.path for row in ocsp_updates(address, timeout=timeout)]


def learn_names(cert_paths: Sequence[str], loaded: Sequence[str]) -> dict[str, str]:
    """The names HAProxy loaded our files under, when no configuration says (``-s``
    only) and the path itself is not one of them: a symlink's target or link, or a
    relative name (HAProxy's working directory is not ours) that is the end of exactly
    one of our paths. From ``show ssl cert``."""
    real: dict[str, list[str]] = {}
    tails: dict[str, list[str]] = {}
    for name in loaded:
        if name.startswith("/"):
            real.setdefault(os.path.realpath(name), []).append(name)
        elif not name.startswith("@"):
            tails.setdefault(os.path.normpath(name), []).append(name)
    names: dict[str, str] = {}
    for path in cert_paths:
        if path in loaded:
            continue
        found = real.get(os.path.realpath(path), [])
        if not found:
            parts = path.split("/")
            found = [n for i in range(1, len(parts)) for n in tails.get("/".join(parts[i:]), [])]
        if len(found) == 1:
            names[path] = found[0]
    return names
