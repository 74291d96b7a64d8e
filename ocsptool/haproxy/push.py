"""Pushing staples: windowed updates, first-staple and renewed-certificate transactions,
then a read-back. A certificate counts as pushed only when HAProxy serves those bytes.

Per batch, on one connection (see ``transport``):

1. ``show ssl ocsp-updates`` (2.8+): certificates HAProxy updates itself are left to it.
2. ``set ssl ocsp-response`` for every staple, windowed; one whose command is larger than
   the window goes alone in the payload form, one too large for the version fails alone.
3. Certificates with no staple slot (``Certificate ID does not match``): ``show ssl cert``
   once; the serial HAProxy holds (``show ssl cert <path>``) when the caller gave the
   file's; then a transaction each (``.issuer``, ``.ocsp``; with ``update_certs`` and a
   renewed certificate the bundle first), committed, or aborted on any error.
4. ``show ssl ocsp-response`` of each staple accepted, compared with the bytes pushed.

A staple accepted by ``set ssl ocsp-response`` matched the CertID of the certificate
HAProxy holds, so only the certificates without a slot can be renewed ones: those are the
ones whose serial is asked.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from ocsptool.errors import HAProxyError, OcspToolError
from ocsptool.files import read_file
from ocsptool.haproxy.certid import response_certid_key
from ocsptool.haproxy.errors import SocketLevelError, level_fix
from ocsptool.haproxy.names import cli_word, name_problem, refusal
from ocsptool.haproxy.readers import (
    PERMISSION_DENIED,
    parse_cert_serial,
    parse_show_ssl_cert,
    read_ocsp_updates,
    serves,
    text_serves,
)
from ocsptool.haproxy.transport import Connection, log, one_line

UPDATED = "OCSP Response updated!"
NO_SLOT = "OCSP single response: Certificate ID does not match any certificate or issuer."
NOT_LOADED = "HAProxy has not loaded this certificate (not in 'show ssl cert')"
IGNORED = "Content will be ignored"


class Method(StrEnum):
    """How a PushResult came about (compares equal to its string value)."""

    UPDATE = "update"  # set ssl ocsp-response
    TRANSACTION = "transaction"  # set ssl cert <cert>.ocsp + commit (first staple)
    CERT_LOADED = "cert-loaded"  # update_certs: the renewed certificate and its staple
    NOT_LOADED = "not-loaded"  # HAProxy does not serve this certificate (ok is False)
    RENEWED = "renewed"  # HAProxy holds another serial: reload it (ok is False)
    HAPROXY_UPDATES = "haproxy-updates"  # ocsp-update on: left to HAProxy (ok, not pushed)
    TOO_LARGE = "too-large"  # the staple does not fit this version's CLI (ok is False)
    UNSAFE_NAME = "unsafe-name"  # its name cannot go into a command safely (ok is False)


@dataclass(frozen=True)
class PushItem:
    """One staple to push."""

    cert_path: str  # absolute path of the certificate file as ocsptool found it
    der: bytes  # the verified OCSP response (DER)
    issuer_pem: bytes | None  # from <cert>.issuer: needed in a first-staple transaction
    serial: int | None = None  # the file's leaf serial: a different one in HAProxy = renewed
    # The certificate file with its private key, for update_certs. Never printed.
    bundle_pem: bytes | None = field(default=None, repr=False)
    #: The name HAProxy loaded it under, when its configuration says (``@store/alias``).
    name: str | None = None

    @property
    def loaded_as(self) -> str:
        """What to look for in ``show ssl cert``: the name, else the file."""
        return self.name or self.cert_path


@dataclass(frozen=True)
class PushResult:
    """What happened to one ``PushItem``; ``ok`` only when HAProxy serves the staple
    (or, for ``haproxy-updates``, staples the certificate itself)."""

    cert_path: str
    ok: bool
    method: Method
    error: str | None
    note: str | None = None  # e.g. who staples it


def push_staples(
    address: str,
    items: Sequence[PushItem],
    *,
    timeout: float = 10.0,
    update_certs: bool = False,
    now: dt.datetime | None = None,
) -> list[PushResult]:
    """Push each staple over one connection; one result per item, in order.

    Raises HAProxyError only when the socket cannot be used at all (SocketLevelError
    when its level allows no push). Once connected, a failure is recorded on the items
    it affects, and never stops the others. ``update_certs``: a renewed certificate
    (``serial`` differs from HAProxy's) with a ``bundle_pem`` is loaded with its staple.
    ``now`` (default: the clock) decides which staples are too close to expiry to push.
    """
    if not items:
        return []
    connection = Connection(address, timeout)
    try:
        moment = now or dt.datetime.now(dt.UTC)
        return _Push(connection, items, update_certs, moment).run()
    finally:
        connection.close()


class _Push:
    """One batch on one connection."""

    def __init__(
        self,
        connection: Connection,
        items: Sequence[PushItem],
        update_certs: bool,
        now: dt.datetime,
    ) -> None:
        self.now = now
        self.connection = connection
        self.dialect = connection.dialect
        self.items = items
        self.update_certs = update_certs
        self.results: dict[int, PushResult] = {}
        self._certs: tuple[_Loaded, list[str]] | None = None
        self._keys: dict[int, str] = {}
        self._read: dict[int, str] = {}  # read-back replies that came with the push

    def run(self) -> list[PushResult]:
        connection = self.connection
        if self.dialect.ocsp_needs_admin and connection.level not in (None, "admin"):
            raise SocketLevelError(
                level_fix(
                    connection.address,
                    connection.level,
                    f"setting OCSP responses on HAProxy {self.dialect.version}",
                )
            )
        todo = self._left_to_haproxy(range(len(self.items)))
        without_slot = self._update(todo)
        self._first_staples(without_slot)
        self._read_back()
        return [self.results[i] for i in range(len(self.items))]

    def _set(self, index: int, method: Method, error: str | None, note: str | None = None) -> None:
        item = self.items[index]
        self.results[index] = PushResult(item.cert_path, error is None, method, error, note)

    def _fail_all(self, indexes: Iterable[int], method: Method, error: str) -> None:
        for index in indexes:
            self._set(index, method, error)

    # -- 1. ocsp-update on ----------------------------------------------------------------

    def _left_to_haproxy(self, indexes: Iterable[int]) -> list[int]:
        """Record the certificates HAProxy updates itself; return the others."""
        rows = read_ocsp_updates(self.connection)
        if not rows:
            return list(indexes)
        updated = _Loaded(row.path for row in rows)
        todo = []
        for index in indexes:
            if updated.find(self.items[index].loaded_as) is None:
                todo.append(index)
            else:
                self.results[index] = PushResult(
                    self.items[index].cert_path,
                    True,
                    Method.HAPROXY_UPDATES,
                    None,
                    "HAProxy staples it itself (ocsp-update on); not pushed",
                )
        return todo

    # -- 2. updates -------------------------------------------------------------------------

    def _update(self, indexes: list[int]) -> list[int]:
        """``set ssl ocsp-response`` for each; return the items that have no slot."""
        commands: dict[int, str] = {}
        for index in indexes:
            command = _update_command(self.items[index].der, self.dialect.window)
            expiring = _expiring(self.items[index].der, self.now)
            if expiring is not None:
                self._set(index, Method.UPDATE, expiring)
            elif len(command) > self.dialect.max_command:
                self._set(index, Method.TOO_LARGE, self.dialect.too_large(len(command)))
            else:
                commands[index] = command
        # Payload-form ones last, smallest first: if HAProxy drops the connection on one,
        # no other that could have gone in is lost.
        order = sorted(commands, key=lambda i: (len(commands[i]) > self.dialect.window, i))
        # Each push is followed by its read-back, in the same stream: no second round.
        pairs = []
        for index in order:
            pairs += [commands[index], self.dialect.served_command(self._key(index))]
        try:
            replies = self.connection.exchange(pairs)
        except HAProxyError as e:
            self._fail_all(order, Method.UPDATE, str(e))
            return []
        without_slot = []
        for number, index in enumerate(order):
            reply = replies[2 * number]
            if reply == NO_SLOT:
                without_slot.append(index)
            elif reply == UPDATED:
                self._set(index, Method.UPDATE, None)
                self._read[index] = replies[2 * number + 1]
            else:
                self._set(index, Method.UPDATE, self._answered(reply, "`set ssl ocsp-response`"))
        return without_slot

    def _key(self, index: int) -> str:
        """The CertID key of the item's staple, as HAProxy prints it."""
        if index not in self._keys:
            try:
                self._keys[index] = response_certid_key(self.items[index].der)
            except ValueError:  # not a (SHA-1) response: HAProxy refuses the push anyway
                self._keys[index] = "00"
        return self._keys[index]

    def _answered(self, reply: str, command: str) -> str:
        if reply == PERMISSION_DENIED:
            return level_fix(self.connection.address, self.connection.level, command)
        return f"HAProxy answered: {one_line(reply)}"

    # -- 3. first staples and renewed certificates ------------------------------------------

    def _first_staples(self, indexes: list[int]) -> None:
        if not indexes:
            return
        connection = self.connection
        if connection.level not in (None, "admin"):
            message = level_fix(
                connection.address, connection.level, "a first staple (`set ssl cert`)"
            )
            self._fail_all(indexes, Method.TRANSACTION, message)
            return
        try:
            loaded, open_transactions = self._show_certs()
            blocker = self._clear_leftovers(loaded, open_transactions)
            paths = {i: loaded.find(self.items[i].loaded_as) for i in indexes}
            unsafe = {i: name_problem(p) for i, p in paths.items() if p is not None}
            held = self._serials({i: p for i, p in paths.items() if p and not unsafe[i]})
        except HAProxyError as e:
            self._fail_all(indexes, Method.TRANSACTION, str(e))
            return
        for index in indexes:
            path = paths[index]
            item = self.items[index]
            wanted = self._serial(index)
            renewed = wanted is not None and held.get(index) not in (None, wanted)
            loads = renewed and self._may_load(item)
            key_refused = self._key_refusal(item) if loads and path is not None else None
            if path is None:
                self._set(index, Method.NOT_LOADED, NOT_LOADED)
            elif problem := unsafe[index]:
                self._set(index, Method.UNSAFE_NAME, refusal(path, problem))
            elif renewed and (key_refused is not None or not loads):
                why = self._renewed(path, held[index], index, key_refused)
                self._set(index, Method.RENEWED, why)
            elif blocker is not None:
                self._set(
                    index,
                    Method.TRANSACTION,
                    f"another certificate transaction is open in HAProxy on {blocker}; "
                    "try again later",
                )
            else:
                self._transaction(index, path, with_cert=renewed)

    def _may_load(self, item: PushItem) -> bool:
        """Whether to load a renewed certificate with its staple (``update_certs``)."""
        return self.update_certs and bool(item.bundle_pem) and self.dialect.staples_replaced_certs

    def _key_refusal(self, item: PushItem) -> str | None:
        """Why this connection's listener may not be sent the bundle's private key."""
        return self.connection.key_refusal(item.cert_path)

    def _renewed(
        self, path: str, held: int | None, index: int, key_refused: str | None = None
    ) -> str:
        item = self.items[index]
        wanted = self._serial(index)
        if key_refused is not None:
            fix = f"reload HAProxy to load it ({key_refused})"
        elif not self.update_certs:
            fix = "reload HAProxy to load it, or use --update-certs"
        elif not item.bundle_pem:
            fix = "reload HAProxy to load it (no bundle to load at runtime)"
        else:
            fix = (
                f"reload HAProxy to load it (HAProxy {self.dialect.version} does not staple "
                "a certificate replaced at runtime)"
            )
        return (
            f"{path}: HAProxy still holds the certificate with serial {held or 0:X}, but "
            f"the file has serial {wanted or 0:X} (renewed): {fix}"
        )

    def _show_certs(self) -> tuple[_Loaded, list[str]]:
        """``show ssl cert``, asked once per batch."""
        if self._certs is None:
            reply = self.connection.command("show ssl cert\n")
            paths, open_transactions = parse_show_ssl_cert(self.connection, reply)
            self._certs = _Loaded(paths), open_transactions
        return self._certs

    def _serial(self, index: int) -> int | None:
        """The serial the staple is for: the item's, else the response's own when the
        response is for a certificate in the file."""
        item = self.items[index]
        if item.serial is not None:
            return item.serial
        if _response_mismatch(item, None) is not None:
            return None  # not the file's staple at all: the transaction step says why
        try:
            return ocsp.load_der_ocsp_response(item.der).serial_number
        except ValueError:
            return None

    def _serials(self, paths: dict[int, str]) -> dict[int, int | None]:
        """The serial HAProxy holds for each item (without a slot) with a serial."""
        asked = [i for i in paths if self._serial(i) is not None]
        replies = self.connection.exchange([f"show ssl cert {cli_word(paths[i])}\n" for i in asked])
        return {
            i: parse_cert_serial(self.connection, reply)
            for i, reply in zip(asked, replies, strict=True)
        }

    def _clear_leftovers(self, loaded: _Loaded, open_transactions: list[str]) -> str | None:
        """Abort transactions a killed run left on this batch's certificates.

        Returns the path of a transaction on another file (not ours to touch), if any.
        """
        if not open_transactions:
            return None
        ours = {loaded.find(item.loaded_as) for item in self.items}
        for path in [p for p in open_transactions if p in ours and name_problem(p) is None]:
            self.connection.command(f"abort ssl cert {cli_word(path)}\n")
            open_transactions.remove(path)
        return open_transactions[0] if open_transactions else None

    def _transaction(self, index: int, path: str, *, with_cert: bool) -> None:
        item = self.items[index]
        method = Method.CERT_LOADED if with_cert else Method.TRANSACTION
        pem = item.bundle_pem if with_cert else None
        problem = _response_mismatch(item, pem)
        if problem is not None:
            self._set(index, method, f"HAProxy answered: {NO_SLOT} ({problem})")
            return
        try:
            error = self._run_transaction(item, path, pem)
        except HAProxyError as e:
            error = str(e)
        self._set(index, method, error)

    def _run_transaction(self, item: PushItem, path: str, bundle: bytes | None) -> str | None:
        """``set ssl cert`` the bundle and issuer (if any) and the staple, then commit.

        Aborts on any error. ``bundle`` (with its key) goes only into the payload.
        """
        word = cli_word(path)
        steps = []
        if bundle is not None:
            steps.append(_payload(f"set ssl cert {word}", _pem_lines(bundle)))
        if item.issuer_pem is not None:
            steps.append(
                _payload(f"set ssl cert {cli_word(path + '.issuer')}", _pem_lines(item.issuer_pem))
            )
        steps.append(_payload(f"set ssl cert {cli_word(path + '.ocsp')}", [_b64(item.der)]))
        for number, step in enumerate(steps):
            if len(step) > self.dialect.max_command:
                if number:
                    self._abort(path)
                return self.dialect.too_large(len(step))
            reply = self.connection.command(step)
            expected = "created" if number == 0 else "updated"
            if reply != f"Transaction {expected} for certificate {path}!":
                self._abort(path)
                return self._answered(reply, "`set ssl cert`")
        reply = self.connection.command(f"commit ssl cert {word}\n")
        if "Success!" not in reply.splitlines() or IGNORED in reply:
            self._abort(path)
            return f"HAProxy answered: {one_line(reply)}"
        return None

    def _abort(self, path: str) -> None:
        """Abort our transaction; "No ongoing transaction!" (a failed commit) is fine."""
        self.connection.command(f"abort ssl cert {cli_word(path)}\n")

    # -- 4. read-back -------------------------------------------------------------------

    def _read_back(self) -> None:
        """Ask what HAProxy serves for every staple it accepted; ok only if those bytes."""
        done = [
            i
            for i, result in self.results.items()
            if result.ok and result.method != Method.HAPROXY_UPDATES
        ]
        done.sort()
        keys = {i: self._key(i) for i in done}
        later = [i for i in done if i not in self._read]
        commands = [self.dialect.served_command(keys[i]) for i in later]
        try:
            asked = self.connection.exchange(commands, quiet=True)
            self._read.update(zip(later, asked, strict=True))
            replies = [self._read[i] for i in done]
            served = [
                serves(self.connection, self.dialect, reply, self.items[i].der)
                for i, reply in zip(done, replies, strict=True)
            ]
            # Too large to show in base64: the text view, cut before its end, has to do.
            unshown = [i for i, ok in zip(done, served, strict=True) if ok is None]
            texts = self.connection.exchange(
                [f"show ssl ocsp-response {keys[i]}\n" for i in unshown], quiet=True
            )
            by_text = {
                i: text_serves(reply, self.items[i].der)
                for i, reply in zip(unshown, texts, strict=True)
            }
            served = [by_text.get(i, ok) for i, ok in zip(done, served, strict=True)]
        except HAProxyError as e:
            for index in done:
                method = self.results[index].method
                self._set(
                    index, method, f"accepted, but could not read back what HAProxy serves: {e}"
                )
            return
        for index, ok in zip(done, served, strict=True):
            if not ok:
                log.debug(
                    "HAProxy %s: does not serve the staple of %s",
                    self.connection.address,
                    self.items[index].cert_path,
                )
                self._set(
                    index,
                    self.results[index].method,
                    "HAProxy accepted the staple but does not serve it (read back with "
                    "`show ssl ocsp-response`)",
                )


#: HAProxy stops stapling a response once ``nextUpdate - 300 s`` has passed (2.6/2.8
#: accept it and never serve it; 3.2+ refuse it).
SERVE_MARGIN = dt.timedelta(seconds=300)


def _expiring(der: bytes, now: dt.datetime) -> str | None:
    """Why HAProxy would not serve the response: too close to its nextUpdate; or None."""
    try:
        next_update = ocsp.load_der_ocsp_response(der).next_update_utc
    except ValueError:
        return None  # not a response: HAProxy's own reply says so
    if next_update is None or next_update - now >= SERVE_MARGIN:
        return None
    when = f"{next_update:%Y-%m-%d %H:%M:%S} UTC"
    if next_update <= now:
        return f"the OCSP response expired at {when} (its nextUpdate): HAProxy would not serve it"
    return (
        f"the OCSP response's nextUpdate ({when}) is less than 300 s away: "
        "HAProxy would not serve it"
    )


def _update_command(der: bytes, window: int) -> str:
    """The one-line form, or the payload form when the line is larger than the window."""
    line = f"set ssl ocsp-response {_b64(der)}\n"
    if len(line) <= window:
        return line
    return _payload("set ssl ocsp-response", [_b64(der)])


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _pem_lines(pem: bytes) -> list[str]:
    return pem.decode("ascii", "replace").splitlines()


def _payload(command: str, lines: Iterable[str]) -> str:
    """``command <<``, the payload lines and exactly one empty line to end it.

    Blank lines would end the payload early (a PEM's trailing newline would even become
    an empty command), so they are dropped.
    """
    body = [line.strip() for line in lines if line.strip()]
    return "\n".join([f"{command} <<", *body]) + "\n\n"


class _Loaded:
    """Certificate paths HAProxy knows, matched to ours as spelled or via symlinks."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = set(paths)
        self._real: dict[str, str] | None = None

    def find(self, cert_path: str) -> str | None:
        """The path HAProxy knows ``cert_path`` under, or None."""
        if cert_path in self.paths:
            return cert_path
        if self._real is None:
            self._real = {os.path.realpath(p): p for p in self.paths if os.path.isabs(p)}
        return self._real.get(os.path.realpath(cert_path))


def _response_mismatch(item: PushItem, pem: bytes | None) -> str | None:
    """Why the response cannot be the certificate's (``pem``, else the file), or None.

    HAProxy 2.6 commits a transaction even when the staple's CertID does not match the
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
    try:  # read again (bounded, regular files only): it may have changed since the parse
        data = pem if pem is not None else read_file(Path(item.cert_path))
        certs = x509.load_pem_x509_certificates(data)
    except (OcspToolError, ValueError) as e:
        name = "the bundle" if pem is not None else "the certificate"
        why = str(e) if isinstance(e, OcspToolError) else type(e).__name__
        return f"cannot read {name} to check the response against it: {why}"
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
