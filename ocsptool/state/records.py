"""The JSON state file: per certificate, the parse cache, the staple's times and the schedule.

The files on disk are the truth; the state only saves work. A missing state is rebuilt
from the ``.ocsp`` files, a corrupt one is moved aside (with one line saying so), and a
state written by a newer ocsptool is refused rather than misread.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ocsptool.errors import StateError
from ocsptool.files import MAX_READ_BYTES, TooLarge, read_own, write_atomic
from ocsptool.owner import STATE_MODE
from ocsptool.trust import Untrusted

VERSION = 1


class StapleRecord(TypedDict, total=False):
    """What the state keeps of a verified staple (times as epoch seconds)."""

    status: str  # "good" | "revoked"
    this_update: int
    next_update: int
    produced_at: int | None
    signer: str
    revocation_time: int | None
    revocation_reason: str | None
    sha256: str
    inode: int | None  # of <cert>.ocsp when written or adopted
    #: Where it came from: "responder" (this node fetched it) or "store" (a fleet's shared
    #: store, fetched by ``fetched_by`` at ``fetched_at``); absent for an adopted file.
    origin: str
    fetched_by: str
    fetched_at: int


class Record(TypedDict, total=False):
    """One certificate's record, keyed by ``Target.key`` (the certificate's path).

    Plain dicts on disk and in memory keep loading 10,000 of them cheap; a certificate
    that cannot be used has only ``stat``, ``issuer_stat`` and ``cert_error``.
    """

    stat: list[int]
    issuer_stat: list[int] | None
    cert_error: str
    fingerprint: str
    name: str
    issuer: str
    issuer_file: str | None
    url: str | None
    #: HAProxy's Certificate ID key (``Target.certid``); absent in records before 0.2.
    certid: str
    serial: str
    not_before: int
    not_after: int
    must_staple: bool
    #: The certificate has a CRL distribution point (what a certificate without OCSP has).
    crl: bool
    staple: StapleRecord | None
    due: int
    failures: int
    last_error: str | None
    last_attempt: int
    last_success: int
    #: The HAProxy addresses that have the current staple (or need none from us: they
    #: staple it themselves, or have not loaded the certificate).
    pushed: list[str]
    #: Before 0.3: the last push problem, of any consumer (read as none now).
    push_error: str | None
    #: Per consumer (its address), the problem of its last delivery; gone when a later
    #: delivery to it works (``events.delivered``).
    push_errors: dict[str, str]
    #: The OCSP URL that gave the current staple: asked first next time.
    responder: str | None
    #: The HAProxy addresses that staple it themselves (``ocsp-update on``).
    self_stapled: list[str]


@dataclass
class State:
    """The records, and whether they changed since load (only the methods below change
    them, so a run never has to say so)."""

    certs: dict[str, Record] = field(default_factory=dict)
    #: One-line notes about the load (e.g. a corrupt file moved aside).
    notes: list[str] = field(default_factory=list)
    #: True when a record changed and the file must be written.
    dirty: bool = False

    def put(self, key: str, record: Record) -> None:
        self.certs[key] = record
        self.dirty = True

    def update(self, key: str, fields: Record) -> None:
        self.certs[key].update(fields)
        self.dirty = True

    def drop(self, key: str) -> None:
        del self.certs[key]
        self.dirty = True


def default_path() -> Path:
    """$STATE_DIRECTORY under systemd, /var/lib/ocsptool as root, else the user state dir."""
    state_dir = os.environ.get("STATE_DIRECTORY")
    if state_dir:
        return Path(state_dir.split(":")[0]) / "state.json"
    if os.geteuid() == 0:
        return Path("/var/lib/ocsptool/state.json")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "ocsptool" / "state.json"


def load(path: Path, now: dt.datetime, *, read_only: bool = False) -> State:
    """The state at ``path``. A corrupt file is moved aside (and the state rebuilt from the
    staples on disk); with ``read_only`` it is left alone and only noted.

    The state is believed (a record's ``due`` decides when a staple is fetched), so one that
    another user could have written (``files.trust_problem``: not owned by this user, root
    or the state directory's owner, or writable by group or others) is treated like a
    corrupt one; so is one over ``MAX_READ_BYTES`` (never read past it), and decoding is
    JSON's: linear in the bytes, no nesting bomb.
    """
    set_aside = _noted if read_only else _set_aside
    try:
        raw = read_own(path, MAX_READ_BYTES, follow=True)
    except FileNotFoundError:
        return State()
    except Untrusted as e:
        return set_aside(path, now, f"is not to be trusted: it {e}")
    except TooLarge as e:
        return set_aside(path, now, f"is {e.strerror}")
    except OSError as e:
        if read_only:
            return _noted(path, now, f"cannot be read ({e.strerror})")
        raise StateError(f"{path}: cannot read the state file: {e.strerror}") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return set_aside(path, now, "is not valid JSON")
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        return set_aside(path, now, "has no version field")
    if data["version"] > VERSION:
        raise StateError(
            f"{path}: written by a newer ocsptool (state version {data['version']}, "
            f"this one reads {VERSION}); upgrade ocsptool or move the file aside"
        )
    certs = data.get("certs")
    if data["version"] < 1 or not isinstance(certs, dict):
        return set_aside(path, now, "has an unexpected shape")
    if _written_by_us(raw):
        return State(certs=certs)  # the checks below: see _digest
    good = {k: v for k, v in certs.items() if valid_record(v)}
    # Checked in full: write it back with its digest, so the next run need not check again.
    state = State(certs=good, dirty=True)
    if len(good) != len(certs):
        state.notes.append(f"{path}: dropped {len(certs) - len(good)} malformed record(s)")
    return state


def _noted(path: Path, now: dt.datetime, why: str) -> State:
    del now  # the same signature as _set_aside
    return State(notes=[f"{path}: {why}; using the files on disk only"])


#: Fields a record may have, and their types when present (None is allowed for str ones).
_INT_FIELDS = ("due", "not_before", "not_after", "failures", "last_attempt", "last_success")
_STR_FIELDS = (
    "url", "fingerprint", "name", "issuer", "issuer_file", "serial",
    "cert_error", "last_error", "push_error", "certid", "responder",
)  # fmt: skip
_STAPLE_INT_FIELDS = ("this_update", "next_update")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_stat(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(n.__class__ is int or _is_int(n) for n in value)
    )


def valid_record(record: Any) -> bool:
    """True if every field a run reads has the type it expects (else the record is rebuilt)."""
    if not isinstance(record, dict) or not _is_stat(record.get("stat")):
        return False
    get = record.get
    for k in _INT_FIELDS:  # plain loops: thousands of records at each load of a foreign file
        if k in record:
            value = record[k]
            if value.__class__ is not int and not _is_int(value):  # JSON's ints: no call
                return False
    for k in _STR_FIELDS:
        value = get(k)
        if value is not None and not isinstance(value, str):
            return False
    issuer_stat = record.get("issuer_stat")
    if issuer_stat is not None and not _is_stat(issuer_stat):
        return False
    for addresses in (record.get("pushed", []), record.get("self_stapled", [])):
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            return False
    errors = record.get("push_errors")
    if errors is not None and not (
        isinstance(errors, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in errors.items())
    ):
        return False
    staple = record.get("staple")
    if staple is None:
        return True
    if record.get("cert_error") or not record.get("url"):
        return False  # a staple belongs to a usable certificate with an OCSP URL
    return (
        isinstance(staple, dict)
        and staple.get("status") in ("good", "revoked")
        and all(_is_int(staple.get(k)) for k in _STAPLE_INT_FIELDS)
        and (staple.get("inode") is None or _is_int(staple["inode"]))
    )


def _set_aside(path: Path, now: dt.datetime, why: str) -> State:
    aside = path.with_name(f"{path.name}.corrupt-{now:%Y%m%dT%H%M%SZ}")
    try:
        path.replace(aside)
    except OSError as e:
        raise StateError(f"{path}: {why}, and it cannot be moved aside: {e.strerror}") from None
    state = State(dirty=True)
    state.notes.append(
        f"{path}: {why}; moved it to {aside.name} and rebuilt from the staples on disk"
    )
    return state


def save(path: Path, state: State) -> None:
    body = json.dumps({"certs": state.certs}, separators=(",", ":")).encode()
    # The digest lets the next load skip checking every record: the bytes are ours, as
    # written. Anything edited or damaged since fails the digest and is checked in full.
    data = b'{"version":%d,"digest":"%s",' % (VERSION, _digest(body[1:]).encode()) + body[1:]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=STATE_MODE)
    state.dirty = False


_SIGNED = re.compile(rb'\{"version":(\d+),"digest":"([0-9a-f]{8})",')


def _digest(data: bytes) -> str:
    """A CRC-32: it tells our own bytes from edited or damaged ones, fast (~2 ms for 7 MB).
    It is no defence against a forger, and need not be: whoever can write the state file
    can write any state, and loading checks the types only so that a bad record cannot
    crash a run."""
    return f"{zlib.crc32(data):08x}"


def _written_by_us(raw: bytes) -> bool:
    """True when ``raw`` is byte for byte what ``save`` wrote (its digest matches)."""
    match = _SIGNED.match(raw)
    return match is not None and _digest(raw[match.end() :]).encode() == match.group(2)
