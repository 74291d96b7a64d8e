"""The on-change hook: one command at the end of a run in which a staple file changed.

A string runs through ``/bin/sh -c``; a list runs as argv. The changed ``.ocsp`` paths
are in ``OCSPTOOL_CHANGED``, one a line. The hook runs in its own process group, so a
timeout kills everything it started (``systemctl reload`` and all), not only the shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ocsptool.errors import OcspToolError

ENVVAR = "OCSPTOOL_CHANGED"
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

    @property
    def ok(self) -> bool:
        return self.problem is None


def run_hook(command: str | Sequence[str], changed: Sequence[str], *, timeout: float) -> HookResult:
    """Run the hook once with ``changed`` in ``OCSPTOOL_CHANGED``; never raises."""
    shell = isinstance(command, str)
    shown = command if isinstance(command, str) else " ".join(command)
    if not shown.strip():
        return HookResult(shown, None, "", "", "on-change hook: empty command")
    env = dict(os.environ, **{ENVVAR: "".join(f"{path}\n" for path in changed)})
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
