"""The on-change hook: one command at the end of a run in which a staple file changed.

A string runs through ``/bin/sh -c``; a list runs as argv. The changed staple paths reach
it in a form in which no path can pose as two: ``OCSPTOOL_CHANGED_FILE`` names a file
(private to the run, removed afterwards) holding each path followed by a NUL byte, which
no path can contain. ``OCSPTOOL_CHANGED`` keeps the older one-a-line list for simple
hooks, without any path that holds a control character (a newline in a file name would
otherwise add a line of the attacker's choosing): such a path is only in the file, and
the run says so. The hook runs in its own process group, so a timeout kills everything
it started (``systemctl reload`` and all), not only the shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ocsptool.errors import OcspToolError
from ocsptool.printable import printable

ENVVAR = "OCSPTOOL_CHANGED"
#: The variable naming the NUL-separated list of changed paths.
FILE_ENVVAR = "OCSPTOOL_CHANGED_FILE"
#: How much of a failing hook's stderr its one line carries.
TAIL_LINES = 3
TAIL_CHARS = 300


class HookError(OcspToolError):
    """The hook failed, timed out or could not start (one line; the run exits 1)."""


@dataclass(frozen=True)
class HookResult:
    command: str  # as messages show it
    returncode: int | None  # None: it did not finish (timed out) or did not start
    stdout: str
    stderr: str
    problem: str | None = None  # the one line when it failed
    #: Notes: paths left out of OCSPTOOL_CHANGED (their names hold a control character).
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


def run_hook(command: str | Sequence[str], changed: Sequence[str], *, timeout: float) -> HookResult:
    """Run the hook once with ``changed`` in ``OCSPTOOL_CHANGED_FILE`` (NUL-separated)
    and ``OCSPTOOL_CHANGED`` (one a line, plain names only); never raises."""
    import tempfile

    shown = command if isinstance(command, str) else " ".join(command)
    if not shown.strip():
        return HookResult(shown, None, "", "", "on-change hook: empty command")
    plain = [path for path in changed if path.isprintable()]
    notes = tuple(
        f"{printable(path)}: not in {ENVVAR} (its name holds a control character); "
        f"hooks find it in {FILE_ENVVAR}, NUL-separated"
        for path in changed
        if not path.isprintable()
    )
    with tempfile.TemporaryDirectory(prefix="ocsptool-hook-") as private:  # 0700, ours
        listing = os.path.join(private, "changed")
        fd = os.open(listing, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(os.fsencode(path) + b"\0" for path in changed))
        env = dict(
            os.environ,
            **{ENVVAR: "".join(f"{path}\n" for path in plain), FILE_ENVVAR: listing},
        )
        result = _run(command, shown, env, timeout)
    return replace(result, notes=notes) if notes else result


def _run(
    command: str | Sequence[str], shown: str, env: dict[str, str], timeout: float
) -> HookResult:
    shell = isinstance(command, str)
    try:
        # The operator's own command, from their config or command line.
        process = subprocess.Popen(  # noqa: S603
            command if isinstance(command, str) else list(command),
            shell=shell,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as e:
        return HookResult(
            shown, None, "", "", f"on-change hook {shown!r} cannot start: {e.strerror or e}"
        )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        try:
            out, err = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
            process.kill()
            out, err = "", ""
        return HookResult(
            shown,
            None,
            out,
            err,
            f"on-change hook {shown!r} timed out after {timeout:g}s; killed its process group",
        )
    code = process.returncode
    if code == 0:
        return HookResult(shown, code, out, err)
    status = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    tail = _tail(err)
    detail = f": {tail}" if tail else ""
    return HookResult(shown, code, out, err, f"on-change hook {shown!r} failed ({status}){detail}")


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(text: str) -> str:
    """The last few lines of ``text`` on one line, at most TAIL_CHARS characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " | ".join(lines[-TAIL_LINES:])
    joined = "".join(c if c.isprintable() else "?" for c in joined)
    return joined if len(joined) <= TAIL_CHARS else "..." + joined[-(TAIL_CHARS - 3) :]
