"""``status`` and ``check``: the health of every certificate of the inventory, and
what each server serves (``--live``), with no network otherwise.

``gather`` builds the inventory every command builds (``refresh.inventory_of``) and
reads the state; ``report`` turns them into one ``CertStatus`` per certificate
(``ocsptool.view``), most urgent first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool import state as statefile
from ocsptool.errors import CertificateError
from ocsptool.inventory import Inventory
from ocsptool.plural import plural
from ocsptool.state import Record
from ocsptool.state.lock import last_run
from ocsptool.times import iso
from ocsptool.view import (
    CertStatus,
    LiveFact,
    Served,
    Stapler,
    assess,
    from_record,
    from_source,
    recorded,
    stapled_itself,
    urgency,
)

if TYPE_CHECKING:
    from ocsptool.haproxy import ServedStaple
    from ocsptool.refresh import Settings


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


@dataclass
class StatusReport:
    certs: list[CertStatus] = field(default_factory=list)
    #: Paths that could not be scanned: (path, one-line problem).
    scan_problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The notes on the state file itself (unreadable, corrupt): ``check`` cannot see.
    state_notes: list[str] = field(default_factory=list)
    #: The last refresh run as the state file recorded it ({"time": epoch, "ok": bool}).
    last_run: dict[str, object] = field(default_factory=dict)
    #: The sockets of the sources: the -s ones and each HAProxy instance's (for --live).
    sockets: tuple[str, ...] = ()
    #: One per HAProxy asked (``--live``), in the order given.
    live_checks: list[LiveCheck] = field(default_factory=list)
    #: What it reports on.
    inventory: Inventory = field(default_factory=Inventory, repr=False)

    @property
    def problems(self) -> list[str]:
        lines = [f"{path}: {why}" for path, why in self.scan_problems]
        for cert in self.certs:
            lines.extend(f"{cert.path}: {p}" for p in cert.problems)
        return lines

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def from_state(self) -> str | None:
        """The one note on what was reported from the state, or None."""
        from ocsptool.owner import user_name

        count = sum(cert.from_state for cert in self.certs)
        if not count:
            return None
        who = user_name(os.geteuid())
        return (
            f"{plural(count, 'certificate')} reported from the state: {who} may not read "
            "the certificate files (the last run's record is shown)"
        )


def gather(settings: Settings, *, now: dt.datetime) -> StatusReport:
    """Staple health of every certificate of the run's inventory (``refresh.inventory_of``:
    the same certificates every command sees); reads, never writes."""
    from ocsptool.refresh import inventory_of

    inventory = inventory_of(settings, cache=False)
    state = _read_state(settings.state_path, now)
    return report(inventory, state, now, last_run(settings.state_path))


def report(
    inventory: Inventory,
    state: statefile.State,
    now: dt.datetime,
    last_run: dict[str, object] | None = None,
) -> StatusReport:
    """The per-certificate view of an inventory and its records (what refresh just left,
    for its metrics, or the state file): a file is read only when its record is stale.

    What this user may not read (a monitoring user need not read the keys) is reported
    from its record, as the last run left it, and said in one note."""
    unreadable, covering = _unreadable(inventory, state)
    covered = set(covering.values())
    problems = [(p, why) for p, why in inventory.problems if p not in covered]
    out = StatusReport(
        scan_problems=problems,
        notes=[*inventory.warnings, *state.notes],
        state_notes=list(state.notes),
    )
    out.last_run = last_run or {}
    out.sockets, out.inventory = inventory.sockets, inventory
    routes = inventory.routes
    certs = state.certs
    for part in inventory.parts:
        home = part.home
        for f in part.found:
            key = f.path
            rec = certs.get(key)
            try:
                cert = from_record(f, rec, now, home.missing)
                if cert is None:
                    if rec is not None and rec.get("fingerprint") and not home.readable(key):
                        unreadable[key] = rec
                        continue
                    route = inventory.route(key)
                    cert = from_source(f, rec, now, parse=part.target, home=home, route=route)
            except Exception as e:  # one certificate never blinds the others, whatever it is
                from ocsptool.retrieval import unexpected

                cert = CertStatus(path=key, cert_error=str(unexpected(e)))
            if routes:
                _served_by(cert, inventory.served_by(key))
            _consumer_problems(cert, rec, inventory.sinks_of(key))
            assess(cert, now)
            out.certs.append(cert)
    for key, rec in unreadable.items():
        cert = recorded(key, rec)
        cert.from_state = True
        # A certificate in a directory this user may not list: the directory's route.
        routed = key if key in routes else covering.get(key, key)
        _served_by(cert, inventory.served_by(routed))
        _consumer_problems(cert, rec, inventory.sinks_of(routed))
        assess(cert, now)
        out.certs.append(cert)
    if inventory.itself:
        reported = {cert.path for cert in out.certs}
        for key, address in inventory.itself.items():
            if key not in reported:  # also named as a PATH: its own row says it
                _itself(out, key, address, now)
    out.certs.sort(key=lambda c: urgency(c, now))
    if note := out.from_state:
        out.notes.append(note)
    return out


def _served_by(cert: CertStatus, servers: list[str]) -> None:
    """The servers of a certificate: HAProxy instances, and the nginx ones apart."""
    from ocsptool.sinks.nginx import is_nginx

    cert.haproxy = [s for s in servers if not is_nginx(s)]
    cert.nginx = [s for s in servers if is_nginx(s)]


def _itself(out: StatusReport, key: str, address: str, now: dt.datetime) -> None:
    """A certificate a server staples itself: its facts, never a staple problem."""
    from ocsptool.sinks.nginx import config_of, is_nginx

    who = f"nginx {config_of(address)}" if is_nginx(address) else address
    cert = stapled_itself(key, who, now)
    assess(cert, now)
    out.certs.append(cert)


def _unreadable(
    inventory: Inventory, state: statefile.State
) -> tuple[dict[str, Record], dict[str, str]]:
    """The records of what this user may not read: a certificate it cannot stat, and each
    certificate recorded under a PATH it cannot list; and, per record, that path (its
    problem is said by the records and the one note instead)."""
    found: dict[str, Record] = {}
    covering: dict[str, str] = {}
    if not inventory.unreadable:
        return found, covering
    certs = state.certs
    for path in inventory.unreadable:
        rec = certs.get(path)
        if rec is not None and rec.get("fingerprint"):
            found[path] = rec
            covering[path] = path
            continue
        prefix = path.rstrip("/") + "/"
        for key, rec in certs.items():
            if key.startswith(prefix) and rec.get("fingerprint"):
                found[key] = rec
                covering.setdefault(key, path)
    return found, covering


def _consumer_problems(cert: CertStatus, rec: Record | None, consumers: Sequence[str]) -> None:
    """The delivery problems of the consumers configured now: one that is no longer
    configured is not this certificate's problem any more."""
    errors = (rec or {}).get("push_errors") or {}
    cert.push_errors = {c: why for c, why in errors.items() if c in consumers}
    cert.push_error = "; ".join(cert.push_errors.values()) or None


def _read_state(path: Path | None, now: dt.datetime) -> statefile.State:
    """The state, read-only: a corrupt file is only noted here (``refresh`` moves it aside)."""
    if path is None:
        return statefile.State()
    return statefile.load(path, now, read_only=True)


# -- what HAProxy serves (--live) --------------------------------------------------------


def compare_live(
    report: StatusReport, sockets: Sequence[str], *, now: dt.datetime, timeout: float = 10.0
) -> None:
    """Ask each HAProxy what it staples and who staples it; note every certificate it
    serves differently from the disk.

    A HAProxy that cannot be read (down, a socket level too low, an answer that is not
    the data asked for) is a problem of its own (in ``scan_problems``), and nothing is
    said about what it serves.
    """
    keys = {
        c.path: c.certid or _certid_key(c.path)  # records before 0.2 have no certid
        for c in report.certs
        if c.ocsp_url and not c.cert_error
    }
    from ocsptool.sinks.nginx import config_of, is_nginx

    answered = set()
    for address in sockets:
        if is_nginx(address):
            from ocsptool.nginx.live import check_nginx

            check = check_nginx(report, address, now, timeout)
            where, server = config_of(address), "nginx"
        else:
            check = _check_one(report, keys, address, now, timeout)
            where, server = address, "HAProxy"
        report.live_checks.append(check)
        if check.error is not None:
            report.scan_problems.append(
                (where, f"could not check what {server} serves: {check.error}")
            )
        else:
            answered.add(address)
    for cert in report.certs:
        # What a server was just read to serve replaces what the last run could not push
        # to it: one fact, said once (in ``live``), and gone when it serves the disk's.
        stale = answered.intersection(cert.push_errors)
        if stale:
            cert.push_errors = {c: w for c, w in cert.push_errors.items() if c not in stale}
            cert.push_error = "; ".join(cert.push_errors.values()) or None
        if cert.live or stale:
            assess(cert, now)
    report.certs.sort(key=lambda c: urgency(c, now))


def _check_one(
    report: StatusReport,
    keys: dict[str, str | None],
    address: str,
    now: dt.datetime,
    timeout: float,
) -> LiveCheck:
    from ocsptool.errors import HAProxyError
    from ocsptool.haproxy import loaded_certs, ocsp_updated_paths, show_ocsp_responses

    try:
        held = dict(loaded_certs(address, timeout=timeout))
        served = show_ocsp_responses(address, timeout=timeout)
        updated = ocsp_updated_paths(address, timeout=timeout)
    except HAProxyError as e:
        return LiveCheck(address, error=str(e))
    held_real = {os.path.realpath(p): serial for p, serial in held.items()}
    updated_real = {os.path.realpath(p) for p in updated}
    certificates = matched = self_stapled = not_loaded = 0
    for cert in report.certs:
        key = keys.get(cert.path)
        if key is None:
            continue
        real = os.path.realpath(cert.path)
        if cert.path not in held and real not in held_real:
            not_loaded += 1  # this HAProxy does not serve the certificate at all
            continue
        serial = held.get(cert.path, held_real.get(real))
        stapler = Stapler.HAPROXY if real in updated_real else Stapler.OCSPTOOL
        fact = live_fact(address, stapler, cert, served.get(key), now)
        if serial is not None:
            fact = dataclasses.replace(fact, serial=f"{serial:x}")
            if cert.serial is not None and f"{serial:x}" != cert.serial:
                fact = dataclasses.replace(fact, served=Served.OTHER_CERTIFICATE)
        cert.served_by.append(fact)
        certificates += 1
        matched += fact.served is Served.SAME
        self_stapled += stapler is Stapler.HAPROXY
        issue = _live_issue(cert, fact)
        if issue:
            cert.live.append(f"HAProxy {address} {issue}")
    return LiveCheck(address, None, certificates, matched, self_stapled, not_loaded)


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


def _live_issue(cert: CertStatus, fact: LiveFact) -> str | None:
    """What is wrong with what a HAProxy serves, or None."""
    itself = fact.stapler is Stapler.HAPROXY
    if fact.served is Served.OTHER_CERTIFICATE:
        assert fact.serial is not None and cert.serial is not None
        return (
            f"holds the certificate with serial {int(fact.serial, 16):X}, but the file has "
            f"serial {int(cert.serial, 16):X} (renewed): reload HAProxy, or load it with "
            "`ocsptool refresh --update-certs -s ADDR`"
        )
    if fact.served is Served.NONE:
        if itself:
            return "staples it itself (ocsp-update) but serves no staple"
        if cert.status in ("good", "revoked"):
            return "serves no staple; run `ocsptool refresh -s ADDR` to push it"
        return "serves no staple"
    if fact.served is Served.EXPIRED:
        assert fact.next_update is not None
        return f"serves an expired staple (nextUpdate {iso(fact.next_update)})"
    if cert.status not in ("good", "revoked"):
        return None
    if fact.served is Served.OLDER and not itself:  # ocsp-update: HAProxy's own schedule
        assert fact.this_update is not None and cert.this_update is not None
        return (
            f"serves an older staple (thisUpdate {iso(fact.this_update)}) than the "
            f"one on disk ({iso(cert.this_update)}); push it with `ocsptool refresh -s`"
        )
    if fact.status != cert.status:
        return f"serves status {fact.status}, but the staple on disk says {cert.status}"
    return None


def _certid_key(path: str) -> str | None:
    from cryptography.x509 import ocsp

    from ocsptool.certs import parse_bundle
    from ocsptool.haproxy import certid_key
    from ocsptool.ocsp import build_request

    try:
        request = ocsp.load_der_ocsp_request(build_request(parse_bundle(Path(path))))
    except CertificateError:
        return None
    return certid_key(request.issuer_name_hash, request.issuer_key_hash, request.serial_number)


# -- nothing to look at ------------------------------------------------------------------


def nothing_found(inventory: Inventory) -> list[str]:
    """The lines for an inventory with no certificate at all (a typo in a path must never
    look green): each path that could not be looked at and why, then one line naming what
    was looked in and what for. A configuration names what it read and every line it did
    not understand (``file:line``), and then those lines' warnings say why."""
    inputs = inventory.inputs
    lines = [f"{path}: {why}" for path, why in inventory.problems]
    failed = {path for path, _ in inventory.problems}
    looked_in = [p for p in inputs.paths if os.path.abspath(p) not in failed]
    lines += [f"no certificate found in {where}" for where in inventory.searched]
    if looked_in or not (
        lines or inputs.haproxy_configs or inputs.nginx_configs or inputs.kubernetes
    ):
        exts = ", ".join("*" + (e if e.startswith(".") else "." + e) for e in inputs.extensions)
        lines.append(f"no certificate found in {', '.join(looked_in)} (looked for {exts})")
    configs = inputs.haproxy_configs
    explained = {w: m[1] for w in inventory.warnings if (m := _ORIGIN.match(w))}
    from ocsptool.haproxy_config.reader import UNTRUSTED_LIST

    refused = f"{UNTRUSTED_LIST[0]} not used ("
    lists_refused = any(why.startswith(refused) for _, why in inventory.problems)
    for config in configs:
        prefixes = (str(config), os.path.abspath(config))
        if any(path.startswith(prefixes) for path in failed):
            continue  # its problem says why
        if lists_refused and len(configs) == 1:
            continue  # its crt-list was not used: that line says why
        # with one configuration every crt-list line is its own; with several, its files'
        mine = [w for w in explained if len(configs) == 1 or w.startswith(prefixes)]
        where = list(dict.fromkeys(explained[w] for w in mine))
        text = (
            f"{config}: no certificate to staple (read its bind crt, default-crt and crt-list, "
            "ssl-f-use and crt-store load lines)"
        )
        if where:
            more = f" (+{len(where) - 3} more)" if len(where) > 3 else ""
            text += f"; not understood: {', '.join(where[:3])}{more}"
        lines.append(text)
    lines += _nothing_for_nginx(inventory, failed)
    why = [*explained, *(inventory.warnings if inputs.nginx_configs else ())]
    return lines + list(dict.fromkeys(w for w in why if w not in lines))


def _nothing_for_nginx(inventory: Inventory, failed: set[str]) -> list[str]:
    """One line per nginx configuration with no staple file to keep, and the warnings
    that say why (a file without ``ssl_stapling on``, a certificate with variables)."""
    from ocsptool.sinks.nginx import address_of

    configs = inventory.inputs.nginx_configs
    lines = []
    for config in configs:
        if any(path.startswith(str(config)) for path in failed):
            continue  # its problem says why
        text = (
            f"{config}: no certificate with an ssl_stapling_file to keep (a server block "
            'needs ssl_certificate, "ssl_stapling on;" and ssl_stapling_file)'
        )
        itself = sum(1 for a in inventory.itself.values() if a == address_of(config))
        if itself:
            text += f"; nginx staples {plural(itself, 'certificate')} itself (no ssl_stapling_file)"
        lines.append(text)
    return lines


#: A warning that names its line: ``file:line: why``.
_ORIGIN = re.compile(r"(.+?:\d+): ")


def state_problem(path: Path) -> str | None:
    """Why ``check`` cannot trust what the state file says of past runs, or None: a check
    that cannot see a recorded failure must not say OK."""
    import stat

    try:  # non-blocking: a FIFO planted as the state must not hang a monitoring check
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"no state yet: {path} does not exist; has ocsptool refresh run?"
    except OSError as e:
        return f"cannot read the state file {path}: {e.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return f"cannot read the state file {path}: not a regular file"
    finally:
        os.close(fd)
    return None
