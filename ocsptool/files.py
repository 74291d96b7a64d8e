"""Atomic file writes and the run lock.

A write goes to a temp file in the same directory, is fsynced, then renamed over the
target, so a killed run leaves the old file or the new one, never a torn one. The temp
name is fixed per target and ends in ``.ocsp`` (HAProxy skips those when it loads a
certificate directory), so a killed run leaves at most one leftover, which the next
write of that file replaces and ``remove_leftovers`` clears.

Every write keeps the owner, group and mode of the file it replaces; a new file takes its
directory's group (and, as root, its owner): the rule is in ``ocsptool.owner``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ocsptool import owner
from ocsptool.errors import CertificateError, LockHeld, WriteError

TEMP_SUFFIX = ".ocsptool-tmp.ocsp"
#: The permission messages, one definition each.
READ_DENIED = "permission denied; let ocsptool's user read it"


#: Certificate files larger than this are refused unread.
MAX_FILE_BYTES = 1024 * 1024


def write_denied(directory: Path) -> str:
    return f"permission denied; let ocsptool's user write to {directory}"


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of a regular file (at most ``limit + 1`` of them when ``limit`` is given).

    A FIFO, socket or device is refused without reading (``OSError`` EINVAL, "not a
    regular file"), a directory with ``IsADirectoryError``: a FIFO would otherwise block
    the caller forever. The one file read that everything in ocsptool uses.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return _read_fd(fd, info.st_size, limit)
    finally:
        os.close(fd)


def _read_fd(fd: int, size_hint: int, limit: int | None) -> bytes:
    """Read to the end (or ``limit + 1`` bytes) with ``os.read``, no file object: one
    read of the size ``fstat`` gave (plus one byte, to see the end), more if it grew."""
    want = None if limit is None else limit + 1
    chunks: list[bytes] = []
    got = 0
    ask = size_hint + 1
    while want is None or got < want:
        chunk = os.read(fd, ask if want is None else min(ask, want - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        ask = 1 << 16
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a small regular file, refusing anything over ``limit`` bytes, with one-line errors.

    A FIFO, socket or device is refused without reading: a FIFO would block the run forever.
    """
    try:
        data = read_regular(path, limit)
    except PermissionError:
        raise CertificateError(READ_DENIED) from None
    except FileNotFoundError:
        raise CertificateError("no such file") from None
    except IsADirectoryError:
        raise CertificateError("is a directory") from None
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise CertificateError(
                "not a regular file (a FIFO, socket or device); skipped"
            ) from None
        raise CertificateError(f"cannot read: {e.strerror}") from None
    if len(data) > limit:
        raise CertificateError(f"over {limit // 1024} KiB; not a certificate bundle, skipped")
    return data


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_atomic(
    path: Path, data: bytes, mode: int = 0o644, *, sync_dir: bool = True, keep_owner: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically.

    The file keeps the owner, group and mode of the one it replaces (``mode`` is for a
    new file); ``keep_owner=False`` gives it ``mode`` and this process's owner and group.
    A symlink at ``path`` is replaced, not followed.
    """
    tmp = temp_path(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        wanted = owner.ownership_for(path, mode) if keep_owner else owner.Ownership(-1, -1, mode)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            owner.apply(fd, wanted)  # before the rename: never visible with the wrong owner
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteError(f"cannot write {path}: {_explain(e, path.parent)}") from None
    if sync_dir:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _explain(error: OSError, directory: Path) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return write_denied(directory)
    if error.errno == errno.EROFS:
        return f"{directory} is on a read-only file system"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device holding {directory}; free some space"
    return error.strerror or str(error)


def metrics_failure(error: WriteError) -> str:
    """The line for a refresh whose metrics could not be written: the run exits 1, but
    the staples were written and pushed first (a metrics fault never costs a staple)."""
    return f"{error}; the staples were still written and pushed"


def remove_leftovers(paths: Iterable[str]) -> None:
    """Delete temp files a killed run left behind (only under the run lock)."""
    for path in paths:
        if is_temp_name(os.path.basename(path)):
            with contextlib.suppress(OSError):
                os.unlink(path)


@contextlib.contextmanager
def run_lock(state_path: Path) -> Iterator[RunLock]:
    """Hold ``<state>.lock`` for the run; raise ``LockHeld`` at once if another run has it."""
    lock_path = lock_path_of(state_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(lock_path)
    except OSError as e:
        raise WriteError(
            f"cannot create the lock file {lock_path}: {_explain(e, lock_path.parent)}"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another ocsptool run holds {lock_path}; exiting") from None
        yield RunLock(fd)
    finally:
        os.close(fd)


def _open_lock(lock_path: Path) -> int:
    """The lock file, opened in place (so it keeps its owner); a new one is given the owner
    and group a new file gets (see ``ocsptool.owner``), mode ``STATE_MODE``: monitoring in
    the group reads the last run from it."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
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


def lock_path_of(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


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
        data = json.loads(lock_path_of(state_path).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
