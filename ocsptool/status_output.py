"""Rendering for people: the ``status`` table, ``show`` and relative times.

rich is imported inside the functions that draw, so importing this module stays cheap.
Off a terminal rich prints the same table without colour.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from ocsptool.plural import plural
from ocsptool.status import CRITICAL, WARNING, CertStatus, StatusReport
from ocsptool.target import no_ocsp
from ocsptool.times import as_json_fields, iso

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {CRITICAL: "bold red", WARNING: "yellow"}
_STATUS_STYLE = {
    "good": "green",
    "revoked": "bold red",
    "invalid": "red",
    "unknown": "red",
    "none": "yellow",
}


def span(delta: dt.timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``45s``: the two largest units."""
    seconds = int(abs(delta.total_seconds()))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size}{name}")
            seconds %= size
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0"):
        parts.pop()
    return " ".join(parts)


def relative(moment: dt.datetime | None, now: dt.datetime, *, expiry: bool = False) -> str:
    """``in 3d 4h`` or ``2h ago`` (``expired 2h ago`` for an expiry)."""
    if moment is None:
        return "-"
    delta = moment - now
    if delta.total_seconds() >= 0:
        return f"in {span(delta)}"
    return f"{'expired ' if expiry else ''}{span(delta)} ago"


def _console() -> Console:
    from rich.console import Console

    # Off a terminal (a pipe, a file, a mail from cron) nothing should fold or be cut: give
    # rich a wide page unless COLUMNS says otherwise.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 250
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


# -- status ------------------------------------------------------------------------------


def status_table(report: StatusReport, now: dt.datetime, *, provenance: bool = False) -> None:
    """A headline naming what needs a person, then one row per certificate.

    Below WIDE columns the issuer and thisUpdate columns are left out, so the problem
    column keeps room to be read. The "from" column (the responder, or the store and the
    node that fetched it) is shown with ``provenance`` or when a staple came from a store.
    """
    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(_headline(report))
    for note in report.notes:  # e.g. a corrupt state file: past failures are not known
        console.print(f"[yellow]note[/yellow]: {_escape(note)}")
    if not report.certs:
        return
    provenance = provenance or any(c.origin == "store" for c in report.certs)
    if len(report.certs) > RICH_MAX_ROWS:
        sys.stdout.write(_plain_table(report, now, provenance))
        return
    wide = console.width >= WIDE
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    # Names, paths and the problem fold when the terminal is narrow; times never do.
    table.add_column("certificate", overflow="fold", min_width=16, no_wrap=wide)
    table.add_column("responder", overflow="fold", min_width=10)
    table.add_column("staple", no_wrap=True)
    if provenance:
        table.add_column("from", no_wrap=True)
    if wide:
        table.add_column("thisUpdate", no_wrap=True)
    table.add_column("nextUpdate", no_wrap=True)
    if wide:
        table.add_column("issuer", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("refresh", no_wrap=True)
    table.add_column("problem", overflow="fold", min_width=24)
    for cert in report.certs:
        style = _STYLE.get(cert.severity, "")
        name = Text(cert.name or "?", style=style or "bold")
        if cert.must_staple:
            name.append(" [must-staple]", style="magenta")
        name.append("\n" + cert.path, style="dim")
        this_update = [relative(cert.this_update, now)] if wide else []
        issuer = [_short_name(cert.issuer)] if wide else []
        source = [cert.source] if provenance else []
        if cert.ocsp_url is None and not cert.cert_error:
            blank = ["-", "-", *["-"] * len(source), *[""] * len(this_update), "", *issuer, "-"]
            table.add_row(name, *blank, Text(no_ocsp(cert.crl), style="dim"), style="dim")
            continue
        table.add_row(
            name,
            cert.responder or "",
            Text(cert.status, style=_STATUS_STYLE.get(cert.status, "")),
            *source,
            *this_update,
            relative(cert.next_update, now, expiry=True),
            *issuer,
            _refresh_due(cert, now),
            Text("; ".join(cert.problems) or cert.reason or "", style=style),
        )
    console.print(table)


#: Above this many rows the table is laid out by hand: rich takes ~1 ms a row (8 s for
#: 10,000 certificates), plain columns take microseconds.
RICH_MAX_ROWS = 500


def _plain_table(report: StatusReport, now: dt.datetime, provenance: bool = False) -> str:
    """Every column, aligned, nothing folded or cut; the path on a line of its own."""
    header = [
        "certificate", "responder", "staple", *["from"] * provenance, "thisUpdate",
        "nextUpdate", "issuer", "refresh", "problem",
    ]  # fmt: skip
    rows = []
    for cert in report.certs:
        name = (cert.name or "?") + (" [must-staple]" if cert.must_staple else "")
        source = [cert.source] if provenance else []
        if cert.ocsp_url is None and not cert.cert_error:
            blank = ["-"] * len(source)
            cells = [
                name,
                "-",
                "-",
                *blank,
                "",
                "",
                _short_name(cert.issuer),
                "-",
                no_ocsp(cert.crl),
            ]
        else:
            cells = [
                name,
                cert.responder or "",
                cert.status,
                *source,
                relative(cert.this_update, now),
                relative(cert.next_update, now, expiry=True),
                _short_name(cert.issuer),
                _refresh_due(cert, now),
                "; ".join(cert.problems) or cert.reason or "",
            ]
        rows.append((cells, cert.path))
    widths = [max(len(h), *(len(c[i]) for c, _ in rows)) for i, h in enumerate(header)]
    widths[-1] = 0  # the last column is not padded

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(header)]
    for cells, path in rows:
        out += [line(cells), path]
    return "\n".join(out) + "\n"


#: From this terminal width on, the table also shows thisUpdate and the issuer.
WIDE = 130
#: The headline names at most this many certificates; the table has them all.
HEADLINE_ROWS = 10


def _short_name(name: str | None) -> str:
    """``CN=Example CA`` reads as ``Example CA`` in a narrow column."""
    return (name or "").removeprefix("CN=")


def _refresh_due(cert: CertStatus, now: dt.datetime) -> str:
    if cert.next_due is None:
        return "-"
    if cert.next_due <= now:
        return "due now"
    return relative(cert.next_due, now)


def _headline(report: StatusReport) -> str:
    bad = [c for c in report.certs if c.severity >= WARNING]
    total = len(report.certs)
    scan = len(report.scan_problems)
    if not bad and not scan:
        stapled = sum(1 for c in report.certs if c.ocsp_url)
        certificates = plural(total, "certificate")
        return f"[green]● all good[/green]: {certificates}, {stapled} with OCSP stapling"
    worst = max((c.severity for c in bad), default=WARNING)
    colour = _STYLE[worst]
    n = len(bad) + scan
    lines = [f"[{colour}]● {plural(n, 'needs', 'need')} attention[/{colour}] (of {total}):"]
    for path, why in report.scan_problems:
        lines.append(f"  [{colour}]{_escape(path)}[/{colour}]: {_escape(why)}")
    for cert in bad[:HEADLINE_ROWS]:
        style = _STYLE[cert.severity]
        lines.append(
            f"  [{style}]{_escape(cert.name or cert.path)}[/{style}]: {_escape(cert.problems[0])}"
        )
    if len(bad) > HEADLINE_ROWS:
        lines.append(f"  ... and {len(bad) - HEADLINE_ROWS} more in the table below")
    return "\n".join(lines)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def status_json(report: StatusReport, now: dt.datetime, exit_code: int) -> str:
    return json.dumps(
        {
            "time": iso(now),
            "ok": report.ok,
            "exit_code": exit_code,
            "problems": report.problems,
            "notes": report.notes,
            "certificates": [cert_dict(c) for c in report.certs],
        },
        indent=2,
    )


def cert_dict(cert: CertStatus) -> dict[str, Any]:
    """One certificate as JSON-ready data: times in ISO 8601 UTC, ``error`` the worst problem."""
    data = as_json_fields(cert)
    data["responder"] = cert.responder
    del data["certid"]  # not part of the documented JSON
    data["severity"] = cert.severity.name.lower()
    data["error"] = cert.problems[0] if cert.problems else None
    return data


# -- show --------------------------------------------------------------------------------


def show_text(fields: list[tuple[str, str]]) -> str:
    """``label: value`` lines, labels aligned."""
    width = max((len(label) for label, _ in fields), default=0)
    return "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in fields)
