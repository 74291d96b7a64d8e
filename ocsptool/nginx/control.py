"""The running nginx: its master process, ``nginx -t``, one reload, its workers.

nginx reads ``ssl_stapling_file`` only when it loads its configuration, so a new staple
is served only after a reload. ``reload_nginx`` does one:

1. finds the master from the pid file (a live process named nginx whose title is
   ``nginx: master process ...``);
2. runs ``nginx -t`` (or the operator's test command): when it fails nginx would refuse
   the reload, so nothing is signalled and ``ReloadRefused`` carries nginx's reason;
3. sends SIGHUP to the master (or runs the operator's command, such as
   ``systemctl reload nginx``);
4. waits until every serving worker is a new one. A master that refuses the reload
   keeps its old workers and logs ``[emerg]`` (a port taken since ``nginx -t`` does
   that): then ``ReloadRefused`` carries the line from the error log.

Facts checked on nginx 1.22.1: a refused SIGHUP reload logs ``[emerg] <pid>#<pid>: ...``
from the master and keeps the old workers serving; old workers retitle themselves
``nginx: worker process is shutting down`` and stop accepting; ``nginx -t`` leaves an
empty pid file when there was none. Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocsptool.files import read_regular
from ocsptool.nginx.errors import NginxError, NginxNotRunning, ReloadFailed, ReloadRefused

_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
_MASTER_TITLE = "nginx: master process"
_WORKER_TITLE = "nginx: worker process"
_SHUTTING_DOWN = "is shutting down"
# "2026/12/04 16:42:27 [emerg] 13994#13994: unknown directive ..." (the error log, and
# nginx -t on stderr) or "nginx: [emerg] open() ... failed" (before a log is opened).
_LOG_LINE = re.compile(r"\[(emerg|alert|crit)\] (?:(\d+)#\d+: )?(?:\*\d+ )?(.*)")
#: How long a master that logged [emerg] gets to show new workers anyway.
_REFUSAL_GRACE = 1.0
#: The most of an error log read after a reload.
_LOG_READ_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class ConfigCheck:
    """The outcome of ``nginx -t``: ``reason`` is nginx's first ``[emerg]`` (or the last
    line it printed) when it failed."""

    ok: bool
    reason: str
    output: str


@dataclass(frozen=True, slots=True)
class Reloaded:
    """A reload nginx took: the master, the workers before and the new ones, how long it
    took. ``master`` is None when an operator command reloaded an nginx whose pid file
    was not given (nothing could be waited for)."""

    master: int | None
    old_workers: frozenset[int]
    new_workers: frozenset[int]
    seconds: float


def nginx_binary() -> str | None:
    """The nginx executable: ``PATH``, then the usual sbin directories."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


# -- the master and its workers -------------------------------------------------------


def master_pid(pid_path: Path | str) -> int:
    """The pid of the live nginx master named by ``pid_path``; ``NginxNotRunning`` (or
    ``NginxError`` for an nginx that runs without a master) with the reason."""
    name = os.fspath(pid_path)
    try:
        text = read_regular(name, 64).decode("ascii", "replace").strip()
    except FileNotFoundError:
        raise NginxNotRunning(f"{name}: no such file; nginx is not running") from None
    except OSError as exc:
        raise NginxNotRunning(f"{name}: cannot read the pid file: {_cause(exc)}") from None
    if not text.isdigit() or int(text) <= 0:
        raise NginxNotRunning(f"{name}: holds no pid; nginx is not running")
    pid = int(text)
    state = _stat(pid)
    if state is None and _hidden(pid):
        raise NginxError(
            f"{name}: process {pid} runs, but this user cannot see it in /proc (mounted "
            "with hidepid, or systemd's ProtectProc=invisible), so neither whether it is "
            "nginx nor its workers: let ocsptool see it (ProtectProc=default in its unit)"
        )
    if state is None or state[0] == "Z":
        raise NginxNotRunning(f"{name}: no process {pid}; nginx is not running (a stale pid file)")
    comm = _read_proc(pid, "comm").strip()
    if comm != "nginx":
        raise NginxNotRunning(
            f"{name}: process {pid} is {comm or 'gone'}, not nginx; nginx is not running "
            "(a stale pid file)"
        )
    if not _title(pid).startswith(_MASTER_TITLE):
        raise NginxError(
            f"{name}: process {pid} is nginx without a master process "
            '("master_process off"); it cannot be reloaded'
        )
    return pid


def _hidden(pid: int) -> bool:
    """A live process of another user that /proc does not show to this one."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def worker_pids(master: int) -> frozenset[int]:
    """The master's workers that serve: not those shutting down after a reload."""
    return frozenset(
        pid
        for pid in _children(master)
        if (title := _title(pid)).startswith(_WORKER_TITLE) and _SHUTTING_DOWN not in title
    )


def _children(pid: int) -> list[int]:
    try:
        text = _read_proc(pid, f"task/{pid}/children", missing_ok=False)
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: scan every process
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir("/proc"):
                state = _stat(int(entry.name)) if entry.name.isdigit() else None
                if state is not None and state[1] == pid:
                    found.append(int(entry.name))
        return found
    return [int(word) for word in text.split()]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process, or None."""
    text = _read_proc(pid, "stat")
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return fields[0], int(fields[1])


def _title(pid: int) -> str:
    """The process title nginx sets (``nginx: worker process``), from its cmdline."""
    return _read_proc(pid, "cmdline").replace("\0", " ").strip()


def _read_proc(pid: int, entry: str, *, missing_ok: bool = True) -> str:
    try:
        return Path(f"/proc/{pid}/{entry}").read_bytes().decode("utf-8", "replace")
    except OSError:
        if missing_ok:
            return ""
        raise


# -- nginx -t and the reload ----------------------------------------------------------


def check_command(binary: str, config: Path | str, prefix: str | None = None) -> list[str]:
    """``nginx -t -q -c CONFIG [-p PREFIX]``: the default test before a reload."""
    argv = [binary, "-t", "-q", "-c", os.fspath(config)]
    return [*argv, "-p", prefix] if prefix else argv


def check_config(command: Sequence[str], *, timeout: float = 60.0) -> ConfigCheck:
    """Run ``command`` (``nginx -t ...``); ``ok`` when it exits 0."""
    done = _run(command, timeout)
    output = done.stderr + done.stdout
    if done.returncode == 0:
        return ConfigCheck(True, "", output)
    return ConfigCheck(False, _reason(output) or f"exited with {done.returncode}", output)


def reload_nginx(
    pid_path: Path | str | None,
    *,
    check: Sequence[str] | None,
    command: Sequence[str] | None = None,
    error_logs: Sequence[str] = (),
    timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Reloaded:
    """Reload nginx once and wait until only new workers serve.

    ``check`` is run first (``check_command(...)``; None skips it); ``command`` replaces
    the SIGHUP (``["systemctl", "reload", "nginx"]``). ``error_logs`` are the files of
    the master's ``error_log`` (``NginxConfig.error_logs``), read from their end before
    the reload for a refusal's reason. Raises ``NginxNotRunning``, ``ReloadRefused``
    (nginx's reason) or ``ReloadFailed``; never returns unless new workers serve (or,
    with ``command`` and no ``pid_path``, the command succeeded).
    """
    started = clock()
    master = master_pid(pid_path) if pid_path is not None else None
    if check is not None:
        tested = check_config(check)
        if not tested.ok:
            raise ReloadRefused(
                f"{shlex.join(check)} failed, so nginx was not reloaded: {tested.reason}; "
                "nginx keeps serving the previous staples",
                reason=tested.reason,
            )
    old = worker_pids(master) if master is not None else frozenset()
    offsets = {log: _size(log) for log in error_logs}
    if command is not None:
        done = _run(command, timeout)
        if done.returncode != 0:
            last = _last_line(done.stderr + done.stdout)
            raise ReloadFailed(
                f"{shlex.join(command)}: exited with {done.returncode}"
                + (f": {last}" if last else "")
            )
    elif master is not None:
        _hangup(master)
    if master is None:
        return Reloaded(None, frozenset(), frozenset(), clock() - started)
    new = _wait(pid_path, master, old, offsets, timeout=timeout, clock=clock, sleep=sleep)
    return Reloaded(master, old, new, clock() - started)


def _wait(
    pid_path: Path | str | None,
    master: int,
    old: frozenset[int],
    offsets: dict[str, int],
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> frozenset[int]:
    """The new workers, once they alone serve; raises when the master refused or died."""
    deadline = clock() + timeout
    refused_since: float | None = None
    while True:
        if _stat(master) is None:
            raise NginxNotRunning(f"{pid_path}: nginx (pid {master}) exited during the reload")
        workers = worker_pids(master)
        if workers and workers.isdisjoint(old):
            return workers
        reason = _logged_refusal(offsets, master)
        now = clock()
        if reason and refused_since is None:
            refused_since = now
        if reason and (now - (refused_since or now) >= _REFUSAL_GRACE or now >= deadline):
            raise ReloadRefused(
                f"nginx (pid {master}) refused the reload: {reason}; it keeps serving "
                "the previous configuration and staples",
                reason=reason,
            )
        if now >= deadline:
            raise ReloadFailed(
                f"nginx (pid {master}) started no new workers within {timeout:g}s of the "
                "reload; its error log may say why"
            )
        sleep(0.02)


def _hangup(master: int) -> None:
    try:
        os.kill(master, signal.SIGHUP)
    except PermissionError:
        raise ReloadFailed(
            f"not allowed to signal nginx's master (pid {master}): run ocsptool as "
            "nginx's user, or give a reload command such as 'systemctl reload nginx'"
        ) from None
    except ProcessLookupError:
        raise NginxNotRunning(f"nginx (pid {master}) exited before the reload") from None


def _logged_refusal(offsets: dict[str, int], master: int) -> str:
    """The first ``[emerg]`` the master logged since ``offsets`` (its reason), or ""."""
    for log, offset in offsets.items():
        try:
            with open(log, "rb") as handle:
                handle.seek(offset)
                text = handle.read(_LOG_READ_LIMIT).decode("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = _LOG_LINE.search(line)
            if match and match.group(1) == "emerg" and match.group(2) == str(master):
                return match.group(3).strip()
    return ""


def _reason(output: str) -> str:
    """nginx's first ``[emerg]`` (or ``[alert]``/``[crit]``) message, else its last line."""
    for line in output.splitlines():
        match = _LOG_LINE.search(line)
        if match:
            return match.group(3).strip()
    return _last_line(output)


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _run(command: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - the operator's command, no shell
            list(command),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ReloadFailed(f"{shlex.join(command)}: still running after {timeout:g}s") from None
    except OSError as exc:
        raise ReloadFailed(f"{shlex.join(command)}: cannot run it: {_cause(exc)}") from None


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
