"""The monitoring verdict, Nagios/Icinga plugin style: one state, one line, perfdata.

CRITICAL: a revoked staple; a missing, invalid or lapsed staple on a Must-Staple
certificate; an expired certificate; a staple file nginx serves past its nextUpdate; or
the earliest nextUpdate within ``crit``.
WARNING: any other problem ``status`` reports (a staple file nginx serves three quarters
through its window, ``view.nginx_alarm``), or the earliest nextUpdate within ``warn``.
Certificates without an OCSP URL never raise the state.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ocsptool import exitcodes
from ocsptool.plural import plural
from ocsptool.status import StatusReport
from ocsptool.view import CRITICAL, NGINX_SERVES, OK, WARNING

NAMES = {
    exitcodes.CHECK_OK: "OK",
    exitcodes.CHECK_WARNING: "WARNING",
    exitcodes.CHECK_CRITICAL: "CRITICAL",
    exitcodes.CHECK_UNKNOWN: "UNKNOWN",
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


@dataclass(frozen=True)
class Verdict:
    code: int
    line: str


def parse_duration(text: str) -> dt.timedelta:
    """``2d``, ``12h``, ``1d12h``, ``90m``, ``30s`` (a bare number is seconds)."""
    value = text.strip().lower()
    if value.isdigit():
        return dt.timedelta(seconds=int(value))
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        seconds += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"{text!r} is not a duration; use e.g. 2d, 12h, 1d12h, 90m or 30s")
    return dt.timedelta(seconds=seconds)


def evaluate(
    report: StatusReport, *, now: dt.datetime, warn: dt.timedelta, crit: dt.timedelta
) -> Verdict:
    """The plugin state and its one output line (summary | perfdata)."""
    worst = OK
    lines: list[str] = [f"{path}: {why}" for path, why in report.scan_problems]
    if lines:
        worst = WARNING
    for cert in report.certs:
        if cert.severity > OK:
            worst = max(worst, cert.severity)
            label = cert.name or cert.path
            lines.append(f"{label}: {cert.problems[0]}")
    stapled = [c for c in report.certs if c.ocsp_url and c.next_update and not c.cert_error]
    earliest = min(stapled, key=lambda c: c.next_update or now, default=None)
    left: dt.timedelta | None = None
    if earliest is not None and earliest.next_update is not None:
        left = earliest.next_update - now
        label = earliest.name or earliest.path
        lead = None
        if left <= crit:
            worst = CRITICAL
            lead = f"{label}: staple {_expires(left)} (crit {_span(crit)})"
        elif left <= warn:
            worst = max(worst, WARNING)
            lead = f"{label}: staple {_expires(left)} (warn {_span(warn)})"
        if lead is not None:
            own = f"{label}: {earliest.problems[0]}" if earliest.problems else ""
            if earliest.nginx and NGINX_SERVES in own:  # nginx serves it as it is: say so
                lines.remove(own)
                lead = own
            lines.insert(0, lead)
    code = {OK: exitcodes.CHECK_OK, WARNING: exitcodes.CHECK_WARNING}.get(
        worst, exitcodes.CHECK_CRITICAL
    )
    with_ocsp = sum(1 for c in report.certs if c.ocsp_url)
    problems = sum(1 for c in report.certs if c.severity > OK) + len(report.scan_problems)
    if lines:
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        summary = lines[0] + more
    elif earliest is not None and left is not None:
        summary = (
            f"{plural(with_ocsp, 'staple valid')}, earliest nextUpdate {_expires(left)} "
            f"({earliest.name or earliest.path})"
        )
    else:
        summary = f"{plural(len(report.certs), 'certificate')}, none with an OCSP URL"
    perf = perfdata(report, left, warn, crit, problems)
    return Verdict(code, f"OCSP {NAMES[code]} - {_one_line(summary)} | {perf}")


def perfdata(
    report: StatusReport,
    left: dt.timedelta | None,
    warn: dt.timedelta,
    crit: dt.timedelta,
    problems: int,
) -> str:
    count = {s: sum(1 for c in report.certs if c.ocsp_url and c.status == s) for s in ("good",)}
    parts = [
        f"certificates={len(report.certs)};;;0",
        f"staples_good={count['good']};;;0",
        f"revoked={sum(1 for c in report.certs if c.status == 'revoked')};;1;0",
        f"problems={problems};1;;0",
    ]
    if left is not None:
        w, c = int(warn.total_seconds()), int(crit.total_seconds())
        parts.append(f"earliest_next_update={int(left.total_seconds())}s;{w}:;{c}:;")
    return " ".join(parts)


def unknown(message: str) -> Verdict:
    return Verdict(exitcodes.CHECK_UNKNOWN, f"OCSP UNKNOWN - {_one_line(message)}")


def _one_line(text: str) -> str:
    return " ".join(text.replace("|", "/").split())


def _expires(left: dt.timedelta) -> str:
    if left.total_seconds() <= 0:
        return f"expired {_span(-left)} ago"
    return f"expires in {_span(left)}"


def _span(delta: dt.timedelta) -> str:
    from ocsptool.times import span

    return span(delta)
