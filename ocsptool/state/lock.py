"""The run lock beside the state file (``<state>.lock``), and the last run it records.

One ``flock`` per run: a second run exits 75 (``LockHeld``) at once. The lock file also
keeps the last run (its time and success) for ``--metrics`` and ``check``: a few bytes
written in place, never through a hard link, a symlink or a file another user may write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ocsptool import owner
from ocsptool.errors import LockHeld, WriteError
from ocsptool.files import explain, read_regular, trust_problem

_MAX_LOCK_BYTES = 4096


@contextlib.contextmanager
def run_lock(state_path: Path) -> Iterator[RunLock]:
    """Hold ``<state>.lock`` for the run; raise ``LockHeld`` at once if another run has it."""
    lock_path = owner.lock_of(state_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(lock_path)
    except OSError as e:
        raise WriteError(
            f"cannot create the lock file {lock_path}: {explain(e, lock_path.parent)}"
        ) from None
    try:
        problem = _lock_problem(fd, lock_path)
        if problem is not None:
            raise WriteError(f"refusing the lock file {lock_path}: {problem}; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another ocsptool run holds {lock_path}; exiting") from None
        yield RunLock(fd)
    finally:
        os.close(fd)


def _lock_problem(fd: int, lock_path: Path) -> str | None:
    """Why the open lock file must not be written in place, or None.

    ``RunLock.record_run`` truncates and writes it: through a hard link that would write
    another file (say one the run's user may write and the link's maker may not), and a
    file another user owns or may write is theirs to fake the last run in. Checked on the
    open file, so swapping the name afterwards changes nothing.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_nlink > 1:
        return f"it has {info.st_nlink} hard links (writing it would write the other files)"
    problem = trust_problem(info, lock_path.parent)
    return None if problem is None else f"it {problem}"


def _open_lock(lock_path: Path) -> int:
    """The lock file, opened in place (so it keeps its owner); a new one is given the owner
    and group a new file gets (see ``ocsptool.owner``), mode ``STATE_MODE``: monitoring in
    the group reads the last run from it. Never through a symlink, never blocking (a FIFO
    or a device there is refused by ``_lock_problem``)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(lock_path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(lock_path, flags)
    try:
        owner.apply(fd, owner.ownership_of_new(lock_path, owner.STATE_MODE))
    except OSError:
        os.close(fd)
        raise
    return fd


class RunLock:
    """The held lock file. It also records the last run: a few bytes written in place,
    with no fsync and no rename, so that recording costs a no-op run next to nothing
    (the state file itself is written only when something changed)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def record_run(self, when: int, ok: bool) -> None:
        data = json.dumps({"time": when, "ok": ok}).encode()
        with contextlib.suppress(OSError):  # a missed record must never fail the run
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)


def last_run(state_path: Path) -> dict[str, Any]:
    """What ``RunLock.record_run`` last wrote next to ``state_path``, or {}."""
    try:
        data = json.loads(read_regular(owner.lock_of(state_path), _MAX_LOCK_BYTES, nofollow=True))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
