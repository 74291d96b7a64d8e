"""Output: one-line problems on stderr, JSON on stdout, and rich only on a terminal.

Nothing here decides anything; it renders the plain dataclasses the core returns.
rich is imported only when a terminal will see its output.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ocsptool.outcome import Outcome, RunReport
from ocsptool.plural import plural
from ocsptool.times import as_json_fields, iso


def stderr_line(text: str, *, error: bool = False, info: bool = False) -> None:
    """One ``ocsptool: ...`` line on stderr, through the console handler: a warning, an
    ``error`` (a failure: journald priority err) or ``info`` (what was done)."""
    from ocsptool.console import line

    line(text, error=error, info=info)


def emit(report: RunReport, *, verbosity: int) -> None:
    """Problems always; notes unless -q; per-certificate actions with -v."""
    if verbosity >= 0:
        for note in report.notes:
            stderr_line(note)
    if verbosity >= 1:
        for out in report.outcomes:
            if out.action not in ("failed", "skipped"):  # those are in the problems
                stderr_line(describe_outcome(out), info=True)
    if report.store_problem is not None:  # exit 69: said even with -q
        stderr_line(report.store_problem, error=True)
    for problem in report.problems:
        stderr_line(problem, error=True)


def describe_outcome(out: Outcome) -> str:
    if out.action == "no-ocsp":
        return f"{out.path}: no OCSP URL; nothing to staple"
    if out.action in ("failed", "skipped"):
        return f"{out.path}: {out.error}"
    until = f", valid until {iso(out.next_update)}" if out.next_update else ""
    verb = "fetched" if out.action == "fetched" else "fresh"
    due = f", next refresh {iso(out.next_due)}" if out.next_due else ""
    return f"{out.path}: {verb}: {out.status}{until}{due}{haproxy_facts(out)}"


def haproxy_facts(out: Outcome) -> str:
    """Where the staple went: ``, pushed to SOCK``, ``, renewed certificate loaded into
    HAProxy SOCK with its staple (...)`` (``--update-certs``), ``, HAProxy SOCK staples it
    itself (ocsp-update)``; nothing for a HAProxy that has not loaded it (a note says so)."""
    staple_only = [a for a in out.pushed if a not in out.certificate_loaded]
    parts = [f"pushed to {', '.join(staple_only)}"] if staple_only else []
    parts += [
        f"renewed certificate loaded into HAProxy {address} with its staple (it replaced the "
        "certificate HAProxy held)"
        for address in out.certificate_loaded
    ]
    parts += [f"HAProxy {address} staples it itself (ocsp-update)" for address in out.self_stapled]
    return "".join(f", {part}" for part in parts)


def outcome_dict(out: Outcome) -> dict[str, Any]:
    return as_json_fields(out)


def refresh_json(report: RunReport, now: dt.datetime, exit_code: int) -> str:
    return json.dumps(
        {
            "time": iso(now),
            "ok": report.ok,
            "exit_code": exit_code,
            "fetched": report.fetched,
            "problems": report.problems,
            "notes": report.notes,
            "store_problem": report.store_problem,
            "certificates": [outcome_dict(o) for o in report.outcomes],
        },
        indent=2,
    )


def is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr while fetching, only on a terminal. It appears with
    the first update that has something to fetch: a run that fetches nothing shows none
    (never ``fetching staples 0/?``)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    progress = Progress(
        TextColumn("fetching staples"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task: TaskID | None = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            if total <= 0:
                return
            progress.start()
            task = progress.add_task("fetch", total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            progress.stop()


def summary(report: RunReport) -> None:
    """A short human summary on a terminal."""
    from rich.console import Console

    counts: dict[str, int] = {}
    for out in report.outcomes:
        counts[out.action] = counts.get(out.action, 0) + 1
    revoked = sum(1 for o in report.outcomes if o.status == "revoked")
    parts = [
        f"{counts.get('fetched', 0)} fetched",
        f"{counts.get('fresh', 0)} fresh",
        f"{counts.get('no-ocsp', 0)} without OCSP URL",
    ]
    failed = counts.get("failed", 0) + counts.get("skipped", 0)
    console = Console(stderr=True, highlight=False)
    style = "green" if report.ok else "red"
    if failed:
        parts.append(f"[red]{failed} failed[/red]")
    if revoked:
        parts.append(f"[bold red]{revoked} REVOKED[/bold red]")
    total = plural(len(report.outcomes), "certificate")
    console.print(f"[{style}]●[/{style}] {total}: " + ", ".join(parts))
