"""The per-certificate view: what ``status``, ``check``, ``show``, ``--metrics`` and
refresh's report say of one certificate and its staple, and how serious it is.

A ``CertStatus`` is built from the state record when the record describes the files as
they are (``recorded``), else from where the certificate and its staple live
(``from_source``: the certificate parsed by its source, the staple its home holds, e.g.
``from_disk`` for files): a staple whose identity differs from the record, or whose
recorded staple has lapsed, is verified again, so the answer is right with a stale state
file or none at all. ``assess`` judges it.

Staple status is one of ``good``, ``revoked``, ``unknown``, ``none`` or ``invalid``.
Certificates without an OCSP URL have status ``none``, ``ocsp_url`` None, and are never a
problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.errors import CertificateError, OcspToolError, StatusUnknown
from ocsptool.freshness import cert_expired, lapsing, overdue
from ocsptool.plural import plural
from ocsptool.scan import Found
from ocsptool.state import Record, StapleRecord
from ocsptool.state.events import cache_valid
from ocsptool.times import from_epoch

if TYPE_CHECKING:
    from cryptography import x509

    from ocsptool.certs import Bundle
    from ocsptool.haproxy import ServedStaple
    from ocsptool.route import Route
    from ocsptool.sinks import Home
    from ocsptool.target import Target


class Severity(IntEnum):
    """How much a row needs a person (``check`` maps it to its exit code)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


OK, WARNING, CRITICAL = Severity.OK, Severity.WARNING, Severity.CRITICAL
STATUSES = ("good", "revoked", "unknown", "none", "invalid")


@dataclass
class CertStatus:
    """The facts about one certificate and its staple, and what (if anything) is wrong."""

    path: str
    name: str | None = None
    issuer: str | None = None
    ocsp_url: str | None = None
    must_staple: bool = False
    #: The certificate has a CRL distribution point (None: not known, an older record).
    crl: bool | None = None
    not_after: dt.datetime | None = None
    status: str = "none"
    #: Why the status is what it is, when it is not plainly good.
    reason: str | None = None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    produced_at: dt.datetime | None = None
    signer: str | None = None
    revocation_time: dt.datetime | None = None
    revocation_reason: str | None = None
    next_due: dt.datetime | None = None
    failures: int = 0
    last_error: str | None = None
    #: The delivery problems of the consumers configured now, by consumer (its address),
    #: and all of them in one line (what ``assess`` reports).
    push_errors: dict[str, str] = field(default_factory=dict)
    push_error: str | None = None
    #: The certificate file itself cannot be used (unreadable, no issuer, expired).
    cert_error: str | None = None
    #: One line per HAProxy that serves something other than the disk (``--live``).
    live: list[str] = field(default_factory=list)
    #: What each HAProxy asked (``--live``) serves for it, and who staples it there.
    served_by: list[LiveFact] = field(default_factory=list)
    #: The HAProxy addresses that staple it themselves (``ocsp-update on``), as the last
    #: refresh found.
    self_stapled: list[str] = field(default_factory=list)
    #: HAProxy's Certificate ID key (from the record, or computed when the bundle is read).
    certid: str | None = None
    #: Where the staple on disk came from: "responder" or "store" (None: not recorded).
    origin: str | None = None
    #: The node that fetched it from the responder (another one, for "store"), and when.
    fetched_by: str | None = None
    fetched_at: dt.datetime | None = None
    #: The HAProxy instances that serve it (their socket, else their configuration),
    #: when a HAProxy configuration names it; empty for PATHs.
    haproxy: list[str] = field(default_factory=list)
    #: The nginx instances (``nginx:<configuration>``) that staple it from the file
    #: ocsptool keeps (its ``ssl_stapling_file``); they serve the file as it is.
    nginx: list[str] = field(default_factory=list)
    #: The server that staples it itself, with no file of ocsptool's (nginx's
    #: ``ssl_stapling on`` without ``ssl_stapling_file``): its staple is not judged here.
    itself: str | None = None
    #: The leaf's serial (lowercase hex), to tell a renewed certificate HAProxy lacks.
    serial: str | None = None
    #: This user may not read the certificate: reported as the last run recorded it.
    from_state: bool = False
    severity: Severity = OK
    #: One-line descriptions of everything wrong, most serious first.
    problems: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """Where the staple came from, for people: ``responder``, ``store (edge-2)``."""
        if self.origin == "store":
            return f"store ({self.fetched_by or '?'})"
        return self.origin or "-"

    @property
    def responder(self) -> str | None:
        if self.ocsp_url is None:
            return None
        import urllib.parse

        return urllib.parse.urlsplit(self.ocsp_url).netloc or self.ocsp_url


class Stapler(StrEnum):
    """Who puts the staple into a server."""

    OCSPTOOL = "ocsptool"  # pushed over the runtime API
    HAPROXY = "haproxy"  # HAProxy fetches it itself (``ocsp-update on``)
    NGINX = "nginx"  # nginx serves the file ocsptool keeps (``ssl_stapling_file``)


class Served(StrEnum):
    """What a server serves, compared with the staple on disk."""

    SAME = "same"  # the staple on disk (same status, thisUpdate and nextUpdate)
    OLDER = "older"
    NEWER = "newer"
    DIFFERENT = "different"  # same thisUpdate, other status or nextUpdate
    NONE = "none"  # no staple
    EXPIRED = "expired"
    #: HAProxy holds another certificate (serial) for this file: renewed since its start.
    OTHER_CERTIFICATE = "other-certificate"


@dataclass(frozen=True)
class LiveFact:
    """One HAProxy's answer for one certificate (``status --live``)."""

    address: str
    stapler: Stapler
    served: Served
    status: str | None = None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    #: The serial of the certificate HAProxy holds (lowercase hex; None for a bundle).
    serial: str | None = None


# -- from the state record (fast path) ---------------------------------------------------


def recorded(path: str, rec: Record) -> CertStatus:
    """The facts a record holds, as the last run left them: not judged (``assess`` does
    that) and without reading the disk. Refresh's per-certificate report is built from
    it, and so is ``status``'s row when the record is up to date (``from_record``)."""
    cert = CertStatus(path=path, certid=rec.get("certid"))
    _copy_record(cert, rec)
    staple = rec.get("staple")
    if staple is not None:  # state.valid_record: its status is good or revoked
        cert.status = str(staple.get("status"))
        cert.this_update = from_epoch(staple.get("this_update"))
        cert.next_update = from_epoch(staple.get("next_update"))
        cert.produced_at = from_epoch(staple.get("produced_at"))
        cert.signer = staple.get("signer")
        cert.revocation_time = from_epoch(staple.get("revocation_time"))
        cert.revocation_reason = staple.get("revocation_reason")
        _copy_provenance(cert, staple)
    return cert


def from_record(
    f: Found, rec: Record | None, now: dt.datetime, missing: str = "no staple file"
) -> CertStatus | None:
    """The row from an up-to-date record, or None when the disk must be read (``missing``:
    what the certificate's home calls no staple)."""
    if rec is None or not cache_valid(rec, f):
        return None
    if rec.get("cert_error"):
        return None  # read it again: what the leaf says (Must-Staple, expiry) matters
    cert = recorded(f.path, rec)
    if not cert.ocsp_url:
        return cert
    staple = rec.get("staple")
    if staple is None:
        if f.ocsp_inode is not None:
            return None  # a staple file the run could not use: find out why
        cert.status, cert.reason = "none", missing
        return cert
    if staple.get("inode") != f.ocsp_inode:
        return None  # replaced, removed or re-created since the run: read it
    if cert.next_update is None or lapsing(cert.next_update, now):
        return None  # lapsed (or about to): let verify() say exactly how
    return cert


def _copy_provenance(cert: CertStatus, staple: StapleRecord) -> None:
    cert.origin = staple.get("origin")
    cert.fetched_by = staple.get("fetched_by")
    cert.fetched_at = from_epoch(staple.get("fetched_at"))


def _copy_record(cert: CertStatus, rec: Record) -> None:
    cert.name = rec.get("name")
    cert.issuer = rec.get("issuer")
    cert.ocsp_url = rec.get("url")
    cert.must_staple = bool(rec.get("must_staple"))
    cert.crl = rec.get("crl")
    cert.not_after = from_epoch(rec.get("not_after"))
    cert.serial = rec.get("serial")
    _copy_history(cert, rec)


def _copy_history(cert: CertStatus, rec: Record) -> None:
    """What the last runs recorded: schedule, failures, errors."""
    cert.next_due = from_epoch(rec.get("due")) if rec.get("due") else None
    cert.failures = int(rec.get("failures") or 0)
    cert.last_error = rec.get("last_error")
    cert.self_stapled = list(rec.get("self_stapled", ()))


# -- from the disk, or wherever the certificate and its staple live -----------------------


def from_disk(
    f: Found,
    rec: Record | None,
    now: dt.datetime,
    staple_path: Path | None = None,
    *,
    staple: bool = True,
) -> CertStatus:
    """The row of a certificate file: its bundle parsed, its staple file (``staple_path``,
    else ``<cert>.ocsp``) verified (not with ``staple=False``: a server staples it itself)."""
    from ocsptool.route import Route
    from ocsptool.sinks.file import FILE_HOME
    from ocsptool.sources.types import file_target

    route = Route((), str(staple_path) if staple_path else None, ())
    return from_source(f, rec, now, parse=file_target, home=FILE_HOME, route=route, staple=staple)


def from_source(
    f: Found,
    rec: Record | None,
    now: dt.datetime,
    *,
    parse: Callable[[Found, Route], Target],
    home: Home,
    route: Route,
    staple: bool = True,
) -> CertStatus:
    """The row from where the certificate and its staple live: the certificate parsed by
    its source (``parse``), the staple its ``home`` holds verified (not with
    ``staple=False``: a server staples it itself); the history of a record of the same leaf
    kept."""
    from ocsptool.certs import describe_name, validity_problem
    from ocsptool.target import has_crl

    cert = CertStatus(path=f.path)
    try:
        target = parse(f, route)
    except CertificateError as e:
        cert.cert_error = str(e)
        leaf = leaf_of(e, f.path)
        if leaf is not None:  # no issuer: the leaf still says what is at stake
            from ocsptool.certs import Bundle

            facts = Bundle(Path(f.path), leaf, leaf, None)  # the leaf's own facts only
            cert.name, cert.ocsp_url = facts.name, facts.ocsp_url
            cert.must_staple, cert.not_after = facts.must_staple, leaf.not_valid_after_utc
        return cert
    bundle = target.bundle
    cert.name = bundle.name
    cert.issuer = describe_name(bundle.leaf.issuer)
    cert.ocsp_url = bundle.ocsp_url
    cert.must_staple = bundle.must_staple
    cert.crl = has_crl(bundle.leaf)
    cert.not_after = bundle.leaf.not_valid_after_utc
    cert.serial = f"{bundle.leaf.serial_number:x}"
    if cert.ocsp_url is not None:
        cert.certid = target.certid
    if rec is not None and rec.get("fingerprint") == bundle.fingerprint:
        _copy_history(cert, rec)
    problem = validity_problem(bundle.leaf, now)
    if problem and cert_expired(bundle.leaf.not_valid_after_utc, now):
        cert.cert_error = problem
    if cert.ocsp_url is None or not staple:
        return cert
    der = read_staple(cert, bundle, now, home=home, key=f.path, route=route)
    held = (rec or {}).get("staple")
    if der and held and held.get("sha256") == hashlib.sha256(der).hexdigest():
        _copy_provenance(cert, held)  # the very staple the record describes
    if cert.next_due is None and cert.this_update and cert.next_update:
        from ocsptool.schedule import next_due

        cert.next_due = next_due(cert.this_update, cert.next_update, f.path)
    return cert


def read_staple(
    cert: CertStatus, bundle: Bundle, now: dt.datetime, *, home: Home, key: str, route: Route
) -> bytes | None:
    """Verify the staple ``home`` holds for ``key`` into ``cert``; return its bytes (None
    if there is none)."""
    from ocsptool.ocsp import verify

    name = os.path.basename(home.where(key, route))
    try:
        der = home.read(key, route)  # a FIFO must not hang status or show
    except OSError as e:
        cert.status, cert.reason = "invalid", f"cannot read {name}: {e.strerror}"
        return None
    if der is None:
        cert.status, cert.reason = "none", home.missing
        return None
    if not der:
        cert.status, cert.reason = "none", f"{name} is empty"
        return der
    decoded = decode_times(der)
    if decoded is not None:
        cert.this_update, cert.next_update, cert.produced_at = decoded
    try:
        staple = verify(der, bundle, now)
    except OcspToolError as e:
        cert.reason = str(e)
        cert.status = "unknown" if isinstance(e, StatusUnknown) else "invalid"
        return der
    cert.status = staple.status
    cert.reason = None
    cert.this_update, cert.next_update = staple.this_update, staple.next_update
    cert.produced_at, cert.signer = staple.produced_at, staple.signer
    cert.revocation_time = staple.revocation_time
    cert.revocation_reason = staple.revocation_reason
    return der


def decode_times(der: bytes) -> tuple[dt.datetime, dt.datetime | None, dt.datetime] | None:
    """(thisUpdate, nextUpdate, producedAt) of an unverified response, when it has them."""
    from cryptography.x509 import ocsp

    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        return response.this_update_utc, response.next_update_utc, response.produced_at_utc
    except ValueError:
        return None


# -- judging -----------------------------------------------------------------------------


def assess(cert: CertStatus, now: dt.datetime) -> None:
    """Fill ``severity`` and ``problems`` from the facts (and ``live``)."""
    found: list[tuple[Severity, str]] = []
    must = " on a Must-Staple certificate; clients will refuse the site" * cert.must_staple
    expired = cert_expired(cert.not_after, now)
    if cert.cert_error:
        hard_error = expired or (cert.must_staple and cert.ocsp_url is not None)
        found.append((CRITICAL if hard_error else WARNING, cert.cert_error + must * hard_error))
    elif expired and cert.not_after is not None:  # expired since the record was written
        expiry = f"{cert.not_after:%Y-%m-%d %H:%M} UTC"
        found.append((CRITICAL, f"certificate expired on {expiry}; renew it{must}"))
    if cert.ocsp_url is not None and cert.itself is None:
        hard = CRITICAL if cert.must_staple else WARNING
        alarm = nginx_alarm(cert, now, must) if cert.nginx else None
        if alarm is not None:
            found.append(alarm)
        if cert.status == "revoked":
            since = f" since {cert.revocation_time:%Y-%m-%d %H:%M} UTC" * bool(cert.revocation_time)
            why = f" ({cert.revocation_reason})" if cert.revocation_reason else ""
            found.append((CRITICAL, f"REVOKED{since}{why}; replace this certificate"))
        elif cert.status in ("none", "invalid", "unknown") and not cert.cert_error:
            if alarm is None or alarm[0] is not CRITICAL:  # else: it says why, louder
                what = {"none": "no staple", "invalid": "invalid staple", "unknown": "staple"}
                found.append((hard, f"{what[cert.status]}: {cert.reason}{must}"))
        elif (
            alarm is None
            and cert.this_update
            and cert.next_update
            and overdue(cert.this_update, cert.next_update, now)
        ):
            found.append((WARNING, "refresh overdue; is `ocsptool refresh` running?"))
        if cert.failures and cert.last_error:
            found.append((WARNING, f"{plural(cert.failures, 'failed refresh')}: {cert.last_error}"))
        if cert.push_error:
            found.append((WARNING, cert.push_error))
    for line in cert.live:
        found.append(
            (CRITICAL if cert.must_staple and "serves no staple" in line else WARNING, line)
        )
    if not found:  # most rows: nothing wrong
        cert.severity, cert.problems = OK, []
        return
    found.sort(key=lambda item: -item[0])
    cert.severity = max((s for s, _ in found), default=OK)
    cert.problems = [text for _, text in found]


#: nginx serves a staple file as it is, even expired, until a reload reads a new one: the
#: schedule refreshes at the middle of the staple's window, so past this fraction of it
#: (a day and a half before nextUpdate for a week's window) something is wrong.
NGINX_ALARM = 0.75
#: How the alarm's lines begin (``check`` leads with it).
NGINX_SERVES = "nginx serves this staple file"


def stapled_itself(path: str, who: str, now: dt.datetime) -> CertStatus:
    """The row of a certificate a server staples itself, with no file of ocsptool's: the
    certificate's facts (its expiry is still judged), its staple left to the server."""
    cert = from_disk(Found(path, [], None, None), None, now, staple=False)
    cert.itself = who
    if cert.ocsp_url is not None:
        cert.reason = f"{who} staples it itself"
    return cert


def nginx_alarm(cert: CertStatus, now: dt.datetime, must: str = "") -> tuple[Severity, str] | None:
    """The alarm on a staple file nginx serves: CRITICAL past its nextUpdate (nginx keeps
    serving it), WARNING from ``NGINX_ALARM`` of its window on; else None."""
    from ocsptool.times import iso

    next_update = cert.next_update
    if next_update is None or cert.status == "none":
        return None
    if now >= next_update:
        return (
            CRITICAL,
            f"{NGINX_SERVES} as it is, expired since {iso(next_update)}: "
            f"clients that check it see an expired OCSP response{must}; run `ocsptool "
            "refresh` (it reloads nginx once the new staple is written)",
        )
    this_update = cert.this_update
    if this_update is None or now < this_update + (next_update - this_update) * NGINX_ALARM:
        return None
    hours = (next_update - now).total_seconds() / 3600
    left = f"{hours:.0f} h" if hours >= 2 else f"{hours * 60:.0f} min"
    return (
        WARNING,
        f"{NGINX_SERVES} until it is replaced, and it expires in {left} "
        f"(nextUpdate {iso(next_update)}); it should have been refreshed long ago: is "
        "`ocsptool refresh` running?",
    )


def urgency(cert: CertStatus, now: dt.datetime) -> tuple[int, float, str]:
    """Sort key: critical, then warnings, then healthy by nextUpdate, then no-OCSP rows."""
    rank = {CRITICAL: 0, WARNING: 1}.get(cert.severity, 2 if cert.ocsp_url else 3)
    left = (cert.next_update - now).total_seconds() if cert.next_update else float("-inf")
    return rank, left, cert.path


def leaf_of(error: CertificateError, key: str) -> x509.Certificate | None:
    """The leaf a certificate that cannot be used still shows: the one a missing issuer's
    error carries, else the one leaf in its file, when there is exactly one (another key
    is never a path)."""
    from ocsptool.certs import is_ca, read_certificates, read_file
    from ocsptool.target import IssuerNotFound

    if isinstance(error, IssuerNotFound):
        return error.leaf
    if not os.path.isabs(key):
        return None
    try:
        leaves = [c for c in read_certificates(read_file(Path(key))) if not is_ca(c)]
    except CertificateError:
        return None
    return leaves[0] if len(leaves) == 1 else None


# -- what a server serves (status --live) -------------------------------------------


@dataclass(frozen=True)
class LiveCheck:
    """What ``status --live`` learnt from one HAProxy, or why it could not ask it."""

    address: str
    #: Why it could not be read; then nothing is claimed about what it serves.
    error: str | None = None
    #: Certificates with an OCSP URL that this HAProxy loaded.
    certificates: int = 0
    #: Of those, how many it serves the staple on disk for.
    matched: int = 0
    #: Of those, how many it staples itself (``ocsp-update on``).
    self_stapled: int = 0
    #: Certificates with an OCSP URL that this HAProxy has not loaded (not counted above).
    not_loaded: int = 0
    #: How people name the server (default: ``HAProxy <address>``).
    label: str = ""

    @property
    def server(self) -> str:
        return self.label or f"HAProxy {self.address}"

    @property
    def line(self) -> str:
        if self.error is not None:
            return f"could not check {self.server}: {self.error}"
        text = (
            f"checked {self.server}: {self.matched} of {self.certificates} serve the staple on disk"
        )
        if self.self_stapled:
            text += f"; HAProxy staples {self.self_stapled} itself (ocsp-update)"
        if self.not_loaded:
            s = "s" if self.not_loaded > 1 else ""
            text += f"; {self.not_loaded} certificate{s} not loaded there"
        return text


def live_fact(
    address: str,
    stapler: Stapler,
    cert: CertStatus,
    served: ServedStaple | None,
    now: dt.datetime,
) -> LiveFact:
    if served is None or not served.status:
        return LiveFact(address, stapler, Served.NONE)
    if served.next_update is not None and served.next_update <= now:
        verdict = Served.EXPIRED
    elif cert.status not in ("good", "revoked") or cert.this_update is None:
        verdict = Served.NEWER  # anything beats no usable staple on disk
    elif served.this_update is not None and served.this_update < cert.this_update:
        verdict = Served.OLDER
    elif served.this_update is not None and served.this_update > cert.this_update:
        verdict = Served.NEWER
    elif served.status == cert.status and served.next_update == cert.next_update:
        verdict = Served.SAME
    else:
        verdict = Served.DIFFERENT
    return LiveFact(
        address, stapler, verdict, served.status, served.this_update, served.next_update
    )
