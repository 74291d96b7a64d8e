"""``status`` and ``check``: the health of every certificate of the inventory, and
what each server serves (``--live``), with no network otherwise.

``gather`` builds the inventory every command builds (``refresh.inventory_of``) and
reads the state; ``report`` turns them into one ``CertStatus`` per certificate
(``ocsptool.view``), most urgent first.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool import state as statefile
from ocsptool.inventory import Inventory
from ocsptool.plural import plural
from ocsptool.state import Record
from ocsptool.state.lock import last_run
from ocsptool.view import (
    CertStatus,
    LiveCheck,
    assess,
    from_record,
    from_source,
    recorded,
    stapled_itself,
    urgency,
)

if TYPE_CHECKING:
    from ocsptool.settings import Settings


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
    from ocsptool.gcpause import paused
    from ocsptool.sources import inventory_of

    inventory = inventory_of(settings, cache=False)
    with paused():  # the records and a row per certificate: long-lived, never garbage
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
    if not servers:  # a PATH's certificate: 10,000 rows of a status report
        cert.haproxy, cert.nginx = [], []
        return
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
    if not errors:
        cert.push_errors, cert.push_error = {}, None
        return
    cert.push_errors = {c: why for c, why in errors.items() if c in consumers}
    cert.push_error = "; ".join(cert.push_errors.values()) or None


def _read_state(path: Path | None, now: dt.datetime) -> statefile.State:
    """The state, read-only: a corrupt file is only noted here (``refresh`` moves it aside)."""
    if path is None:
        return statefile.State()
    return statefile.load(path, now, read_only=True)


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
