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
from ocsptool.printable import printable
from ocsptool.status import StatusReport
from ocsptool.target import no_ocsp
from ocsptool.times import as_json_fields, iso, span
from ocsptool.view import CRITICAL, WARNING, CertStatus, LiveCheck, Stapler

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


def relative(moment: dt.datetime | None, now: dt.datetime, *, expiry: bool = False) -> str:
    """``in 3d 4h`` or ``2h ago`` (``expired 2h ago`` for an expiry)."""
    if moment is None:
        return "-"
    delta = moment - now
    if delta.total_seconds() >= 0:
        return f"in {span(delta)}"
    return f"{'expired ' if expiry else ''}{span(delta)} ago"


def _page_width() -> int | None:
    """The width to lay out for: the terminal's (or COLUMNS), or None off a terminal,
    where nothing is folded (a pipe, a file, a mail from cron)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        import shutil

        return shutil.get_terminal_size().columns
    return None


def _console(width: int | None) -> Console:
    from rich.console import Console

    # soft_wrap off a terminal: rich never folds a line it was not given a width for.
    return Console(file=sys.stdout, highlight=False, soft_wrap=width is None, width=width or 10_000)


# -- status ------------------------------------------------------------------------------


def status_table(report: StatusReport, now: dt.datetime, *, provenance: bool = False) -> None:
    """A headline naming what needs a person, then one row per certificate.

    Off a terminal: every column, aligned by hand, nothing folded. On one, a table whose
    names and paths are never folded (each path on the line under its name) and whose
    problem column wraps at word boundaries; when that does not fit the width (80
    columns), each certificate is stacked instead, its path and problem on lines of their
    own. Below WIDE columns, or when they do not fit, the issuer and thisUpdate columns
    are left out. No line ends in spaces. The "from" column (the
    responder, or the store and the node that fetched it) is shown with ``provenance`` or
    when a staple came from a store.
    """
    report = _printable(report)
    width = _page_width()
    console = _console(width)
    with console.capture() as capture:
        console.print(_headline(report))
        for note in report.notes:  # e.g. a corrupt state file: past failures are not known
            console.print(f"[yellow]note[/yellow]: {_escape(note)}")
    sys.stdout.write(_no_trailing_spaces(capture.get()))
    if report.certs:
        _certificates(console, report, now, width, provenance)
    for check in report.live_checks:  # --live: what was checked (a failure is above)
        if check.error is None:
            sys.stdout.write(check.line + "\n")


def _certificates(
    console: Console, report: StatusReport, now: dt.datetime, width: int | None, provenance: bool
) -> None:
    """The rows: a plain table, a rich one, or stacked (see ``status_table``)."""
    provenance = provenance or any(c.origin == "store" for c in report.certs)
    if width is None or len(report.certs) > RICH_MAX_ROWS:
        sys.stdout.write(_plain_table(report, now, provenance))
        return
    haproxy = _has_haproxy_facts(report)
    for wide in (True, False) if width >= WIDE else (False,):  # the issuer column goes first
        header = _header(wide, provenance, haproxy)
        rows = [
            _cells(cert, now, wide, provenance, report=report, haproxy=haproxy)
            for cert in report.certs
        ]
        _with_haproxy(report, header, rows)
        names = max(len(header[0]), *(len(_label(cert)) for cert in report.certs))
        if _fits(header, rows, names, width):
            _terminal_table(console, report, header, rows, names=names, width=width)
            return
    _stacked(console, report, now, width, provenance)


def _with_haproxy(report: StatusReport, header: list[str], rows: list[list[str]]) -> None:
    """The ``haproxy`` column (before the problem), when a configuration named any
    certificate: the instances that serve each one."""
    if not any(cert.haproxy for cert in report.certs):
        return
    header.insert(-1, "haproxy")
    for cert, cells in zip(report.certs, rows, strict=True):
        cells.insert(-1, " ".join(cert.haproxy) or "-")


def _cells(
    cert: CertStatus,
    now: dt.datetime,
    wide: bool,
    provenance: bool,
    *,
    report: StatusReport,
    haproxy: bool,
) -> list[str]:
    """responder, staple, [from], [thisUpdate], nextUpdate, [issuer], refresh, [stapler],
    problem."""
    this_update = [relative(cert.this_update, now)] if wide else []
    issuer = [_short_name(cert.issuer)[:24]] if wide else []
    source = [cert.source] if provenance else []
    served = [haproxy_cell(report, cert)] if haproxy else []
    if cert.ocsp_url is None and not cert.cert_error:
        blank = ["-", "-", *["-"] * len(source), *[""] * len(this_update), "", *issuer, "-"]
        return [*blank, *[""] * len(served), no_ocsp(cert.crl)]
    return [
        cert.responder or "",
        _staple(cert),
        *source,
        *this_update,
        relative(cert.next_update, now, expiry=True),
        *issuer,
        _refresh_due(cert, now),
        *served,
        "; ".join(cert.problems) or cert.reason or "",
    ]


def _has_haproxy_facts(report: StatusReport) -> bool:
    """Whether the table gets a stapler column (``--live``, ``ocsp-update`` known, or a
    certificate nginx staples)."""
    return any(c.served_by or c.self_stapled or c.nginx or c.itself for c in report.certs)


_WHO = {Stapler.HAPROXY: "ocsp-update", Stapler.OCSPTOOL: "ocsptool", Stapler.NGINX: "nginx"}


def haproxy_cell(report: StatusReport, cert: CertStatus) -> str:
    """Who staples it in each server and what that serves, e.g. ``ocsptool: same``,
    ``ocsp-update: newer`` or ``nginx: same`` (``--live``); else ``ocsp-update`` as the
    last refresh found, ``nginx`` (it serves the file ocsptool keeps), ``nginx itself``
    (``ssl_stapling on`` without a file)."""
    several = len(report.live_checks) > 1
    parts = []
    for fact in cert.served_by:
        parts.append(f"{fact.address} " * several + f"{_WHO[fact.stapler]}: {fact.served}")
    if not parts:
        if cert.self_stapled:
            parts.append("ocsp-update")
        if cert.nginx:
            parts.append("nginx")
        if cert.itself:
            parts.append(f"{cert.itself.split()[0]} itself")
    return "; ".join(parts)


def _staple(cert: CertStatus) -> str:
    """The staple column: its status, or ``-`` when the server staples it itself."""
    return "-" if cert.itself else cert.status


def _label(cert: CertStatus) -> str:
    return (cert.name or "?") + (" [must-staple]" if cert.must_staple else "")


#: The problem column is never narrower than this (nor than its longest word).
PROBLEM_MIN = 30


def _fits(header: list[str], rows: list[list[str]], names: int, width: int) -> bool:
    """Whether the table fits ``width`` with the names whole and the problem column at
    least PROBLEM_MIN wide (and as wide as its longest word). A path needs no column of its
    own: it has the line under its name (``_terminal_table``)."""
    fixed = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[1:-1])]
    longest_word = max((len(w) for r in rows for w in r[-1].split()), default=0)
    needed = names + sum(fixed) + max(PROBLEM_MIN, longest_word) + 2 * (len(header) - 1)
    return needed <= width


def _header(wide: bool, provenance: bool, haproxy: bool = False) -> list[str]:
    middle = ["thisUpdate", "nextUpdate", "issuer"] if wide else ["nextUpdate"]
    source = ["from"] if provenance else []
    served = ["stapler"] if haproxy else []
    return [
        "certificate", "responder", "staple", *source, *middle, "refresh", *served, "problem"
    ]  # fmt: skip


def _terminal_table(
    console: Console,
    report: StatusReport,
    header: list[str],
    rows: list[list[str]],
    *,
    names: int,
    width: int,
) -> None:
    """The table on a terminal: each certificate's name on its row, its path on the line
    below, from the first column on and as long as it is (the cells beside it are empty,
    so a path under 60 characters never makes the table too wide for 120 columns), and the
    problem wrapped at words in the last column. A path too long to share its line with
    the problem's next line gets a line of its own. Names and paths are never folded."""
    import textwrap

    from rich.text import Text

    middle = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[1:-1])]
    widths = [names, *middle]
    start = sum(widths) + 2 * len(widths)  # where the problem column starts
    problem_width = width - start

    def add_cells(line: Text, cells: list[tuple[str, str]], columns: list[int]) -> None:
        """Each (text, style) cell, padded to its column, and the two spaces after it."""
        for (text, style), column in zip(cells, columns, strict=True):
            line.append(text, style=style)
            line.append(" " * (column - len(text) + 2))

    lines = [Text()]
    add_cells(lines[0], [(h, "bold") for h in header[:-1]], widths)
    lines[0].append(header[-1], style="bold")
    for cert, cells in zip(report.certs, rows, strict=True):
        style = _STYLE.get(cert.severity, "")
        quiet = cert.ocsp_url is None and not cert.cert_error
        first = Text(style="dim" if quiet else "")
        first.append(cert.name or "?", style=style or "bold")
        if cert.must_staple:
            first.append(" [must-staple]", style="magenta")
        first.append(" " * (names - len(first.plain) + 2))
        middle_cells = [(c, "") for c in cells[:-1]]
        if not quiet and not cert.itself:  # a server that staples it itself: no status
            middle_cells[1] = (cells[1], _STATUS_STYLE.get(cert.status, ""))
        add_cells(first, middle_cells, middle)
        problem = textwrap.wrap(
            cells[-1], problem_width, break_long_words=False, break_on_hyphens=False
        ) or [""]
        problem_style = "dim" if quiet else style
        first.append(problem[0], style=problem_style)
        lines.append(first)
        path = Text(cert.path, style="dim")
        rest = problem[1:]
        if rest and len(cert.path) + 2 <= start:
            path.append(" " * (start - len(cert.path)))
            path.append(rest.pop(0), style=problem_style)
        lines.append(path)
        lines += [Text(" " * start + text, style=problem_style) for text in rest]
    with console.capture() as capture:
        for line in lines:
            console.print(line, soft_wrap=True)
    sys.stdout.write(_no_trailing_spaces(capture.get()))
    sys.stdout.flush()


def _no_trailing_spaces(text: str) -> str:
    """Each line without the spaces rich pads it with (its colour codes kept)."""
    import re

    def strip(match: re.Match[str]) -> str:
        return "".join(re.findall(r"\x1b\[[0-9;]*m", match[0]))

    return re.sub(r"(?: |\x1b\[[0-9;]*m)+$", strip, text, flags=re.MULTILINE)


def _stacked(
    console: Console, report: StatusReport, now: dt.datetime, width: int, provenance: bool
) -> None:
    """Each certificate on lines of its own: name, path, facts, problem (wrapped at
    words, never inside a path or a URL)."""
    import textwrap

    from rich.text import Text

    def wrapped(text: str, first: str, rest: str) -> list[str]:
        return textwrap.wrap(
            text,
            width,
            initial_indent=first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )

    for cert in report.certs:
        style = _STYLE.get(cert.severity, "")
        console.print(Text(_label(cert), style=style or "bold"), soft_wrap=True)
        console.print(Text("  " + cert.path, style="dim"), soft_wrap=True)
        if cert.ocsp_url is None and not cert.cert_error:
            console.print(Text("  " + no_ocsp(cert.crl), style="dim"), soft_wrap=True)
            continue
        facts = (
            f"staple {_staple(cert)}, nextUpdate {relative(cert.next_update, now, expiry=True)}, "
            f"refresh {_refresh_due(cert, now)}"
        )
        facts += f", responder {cert.responder}" if cert.responder else ""
        facts += f", from {cert.source}" if provenance else ""
        facts += f", haproxy {' '.join(cert.haproxy)}" if cert.haproxy else ""
        served = haproxy_cell(report, cert)
        facts += f", stapler {served}" if served else ""
        for line in wrapped(facts, "  ", "    "):
            console.print(Text(line), soft_wrap=True)
        problem = "; ".join(cert.problems) or cert.reason or ""
        if problem:
            for line in wrapped(problem, "  problem: ", "    "):
                console.print(Text(line, style=style), soft_wrap=True)


#: Above this many rows the table is laid out by hand: rich takes ~1 ms a row (8 s for
#: 10,000 certificates), plain columns take microseconds.
RICH_MAX_ROWS = 500


def _plain_table(report: StatusReport, now: dt.datetime, provenance: bool = False) -> str:
    """Every column, aligned, nothing folded or cut; the path on a line of its own."""
    header = [
        "certificate", "responder", "staple", *["from"] * provenance, "thisUpdate",
        "nextUpdate", "issuer", "refresh", "problem",
    ]  # fmt: skip
    haproxy = _has_haproxy_facts(report)
    if haproxy:
        header.insert(-1, "stapler")
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
            if haproxy:
                cells.insert(-1, "")
        else:
            cells = [
                name,
                cert.responder or "",
                _staple(cert),
                *source,
                relative(cert.this_update, now),
                relative(cert.next_update, now, expiry=True),
                _short_name(cert.issuer),
                _refresh_due(cert, now),
                "; ".join(cert.problems) or cert.reason or "",
            ]
            if haproxy:
                cells.insert(-1, haproxy_cell(report, cert))
        rows.append((cells, cert.path))
    _with_haproxy(report, header, [cells for cells, _ in rows])
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
            "live_checks": [_live_check(check) for check in report.live_checks],
        },
        indent=2,
    )


def _live_check(check: LiveCheck) -> dict[str, Any]:
    """One server asked by ``--live``; ``label`` only for a server that is not a HAProxy
    (``nginx /etc/nginx/nginx.conf``)."""
    data = {**as_json_fields(check), "line": check.line}
    if not check.label:
        del data["label"]
    return data


def cert_dict(cert: CertStatus) -> dict[str, Any]:
    """One certificate as JSON-ready data: times in ISO 8601 UTC, ``error`` the worst problem."""
    data = as_json_fields(cert)
    data["responder"] = cert.responder
    del data["certid"]  # not part of the documented JSON
    del data["push_errors"]  # ``push_error`` has them, in one line
    data["severity"] = cert.severity.name.lower()
    data["served_by"] = [as_json_fields(fact) for fact in cert.served_by]
    data["error"] = cert.problems[0] if cert.problems else None
    return data


# -- show --------------------------------------------------------------------------------


def show_text(fields: list[tuple[str, str]]) -> str:
    """``label: value`` lines, labels aligned; values printable (names are not trusted)."""
    width = max((len(label) for label, _ in fields), default=0)
    return "\n".join(f"{label + ':':<{width + 1}} {printable(value)}" for label, value in fields)


def _printable(report: StatusReport) -> StatusReport:
    """The report as people see it: every name, path, CN and message printable (file
    names and certificates are not trusted; ``--json`` escapes them itself)."""
    import dataclasses

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return printable(value)
        if isinstance(value, list) and value and isinstance(value[0], str):
            return [printable(v) for v in value]
        return value

    names = [f.name for f in dataclasses.fields(CertStatus)]

    def cert(c: CertStatus) -> CertStatus:
        changes = {}
        for name in names:
            value = getattr(c, name)
            if (clean_value := clean(value)) != value:
                changes[name] = clean_value
        return dataclasses.replace(c, **changes) if changes else c  # most rows: no copy

    return dataclasses.replace(
        report,
        certs=[cert(c) for c in report.certs],
        scan_problems=[(printable(p), printable(w)) for p, w in report.scan_problems],
        notes=clean(report.notes),
    )
