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
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ocsptool import owner
from ocsptool.errors import CertificateError, WriteError
from ocsptool.trust import Untrusted, open_directory

TEMP_SUFFIX = ".ocsptool-tmp.ocsp"
#: The permission messages, one definition each.
READ_DENIED = "permission denied; let ocsptool's user read it"


#: Certificate files larger than this are refused unread.
MAX_FILE_BYTES = 1024 * 1024
#: No file ocsptool reads is larger (the state of 100,000 certificates is ~70 MB): a read
#: without its own limit stops here (``TooLarge``) instead of filling the memory.
MAX_READ_BYTES = 256 * 1024 * 1024


def write_denied(directory: Path) -> str:
    return f"permission denied; let ocsptool's user write to {directory}"


class TooLarge(OSError):
    """A file over the size a reader takes (errno EFBIG); never read past it."""


def read_regular(path: Path | str, limit: int | None = None, *, nofollow: bool = False) -> bytes:
    """The bytes of a regular file, read without ever blocking and never past a bound.

    With ``limit``: at most ``limit + 1`` bytes (the caller tells "too large" by the
    length). Without: the whole file, or ``TooLarge`` past ``MAX_READ_BYTES`` (refused
    unread when its size says so). A FIFO, socket or device is refused without reading
    (``OSError`` EINVAL, "not a regular file"): the open is non-blocking, so a FIFO, or a
    file swapped for one (or for ``/dev/zero``) after it was parsed, never blocks the run
    nor feeds it endless bytes; a directory raises ``IsADirectoryError``. ``nofollow``: a
    symlink is refused (ELOOP), for the files ocsptool keeps for itself.

    The one file read that everything in ocsptool uses.
    """
    fd = _open(path, follow=not nofollow)
    try:
        info = _regular(fd)
        if limit is None:
            return _read_whole(fd, info, MAX_READ_BYTES)
        return _read_fd(fd, min(info.st_size, limit), limit)
    finally:
        os.close(fd)


class FileReadError(OSError):
    """Why a file could not be read, as a short cause (``not a regular file``)."""


def read_text(path: str, limit: int) -> str:
    """A configuration file's text (HAProxy's, a crt-list, nginx's), undecodable bytes kept
    as surrogates, so paths survive; ``FileReadError`` with a short cause.

    Through ``read_regular``: opened with O_NONBLOCK, so a FIFO or a device
    is refused at once instead of blocking, and never read past ``limit`` bytes (a larger
    file: "larger than N MiB").
    """
    try:
        data = read_regular(path, limit)
    except IsADirectoryError:
        raise FileReadError("is a directory") from None
    except OSError as exc:
        raise FileReadError(exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise FileReadError(f"larger than {limit // (1024 * 1024)} MiB")
    return data.decode("utf-8", "surrogateescape")


def read_own(path: Path | str, limit: int, *, follow: bool = False, strict: bool = False) -> bytes:
    """A file ocsptool wrote for itself (the state, the fresh index, a cache), or
    ``Untrusted`` when another user could have written it (see ``trust_problem``).

    Bounded: a file over ``limit`` bytes raises ``TooLarge`` (unread when its size says
    so). Non-blocking, regular files only, and a symlink is refused unless ``follow`` (the
    state file, for compatibility): what such a file says is believed, so only its writer
    may be us. ``strict``: only root's or this user's own file will do (a cache that names
    where to write and where to send a key: a root run never takes the job user's).
    """
    fd = _open(path, follow=follow)
    try:
        info = _regular(fd)
        problem = trust_problem(info, Path(path).parent, strict=strict)
        if problem is not None:
            raise Untrusted(errno.EPERM, problem)
        return _read_whole(fd, info, limit)
    finally:
        os.close(fd)


def _open(path: Path | str, *, follow: bool) -> int:
    """A read-only descriptor that never blocks (a FIFO) nor takes a terminal."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    return os.open(path, flags | (0 if follow else os.O_NOFOLLOW))


def _read_whole(fd: int, info: os.stat_result, limit: int) -> bytes:
    """The whole file, or ``TooLarge`` past ``limit`` (unread when its size says so)."""
    too_large = TooLarge(errno.EFBIG, f"larger than {_size(limit)}")
    if info.st_size > limit:
        raise too_large
    data = _read_fd(fd, info.st_size, limit)
    if len(data) > limit:
        raise too_large
    return data


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"


def _regular(fd: int) -> os.stat_result:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    return info


def trust_problem(info: os.stat_result, directory: Path, *, strict: bool = False) -> str | None:
    """Why a file that ocsptool keeps for itself (``info``: its ``fstat``) may have been
    written or planted by someone else, or None.

    Its owner must be root, this run's user, or a user the ``directory``'s owner or group
    bits let write there (who could replace any file in it anyway: root runs on the
    ``ocsptool`` user's state); write access through the "other" bits (``/tmp``) does not
    count. The file must not be writable by its group or by others (ocsptool writes them
    0600 or 0640).
    """
    me = os.geteuid()
    if info.st_uid not in (0, me) and (strict or not _may_write_dir(info.st_uid, directory)):
        trusted = "root" if me == 0 else f"{owner.user_name(me)} or root"
        return f"belongs to {owner.user_name(info.st_uid)} (uid {info.st_uid}), not to {trusted}"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        return f"is writable by other users (mode {mode:04o})"
    return None


def _may_write_dir(uid: int, directory: Path) -> bool:
    """Whether ``uid`` may write ``directory`` as its owner or through its group."""
    import grp
    import pwd

    try:
        info = os.stat(directory)
    except OSError:
        return False
    mode = info.st_mode
    if uid == info.st_uid:
        return bool(mode & stat.S_IWUSR)
    if not mode & stat.S_IWGRP:
        return False
    try:
        user = pwd.getpwuid(uid)
        return user.pw_gid == info.st_gid or user.pw_name in grp.getgrgid(info.st_gid).gr_mem
    except KeyError:
        return False


def _read_fd(fd: int, size_hint: int, limit: int) -> bytes:
    """Read to the end, or ``limit + 1`` bytes, with ``os.read``, no file object: one
    read of the size ``fstat`` gave (plus one byte, to see the end), more if it grew."""
    want = limit + 1
    chunks: list[bytes] = []
    got = 0
    ask = size_hint + 1
    while got < want:
        chunk = os.read(fd, min(ask, want - got))
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
    path: Path,
    data: bytes,
    mode: int = 0o644,
    *,
    sync_dir: bool = True,
    keep_owner: bool = True,
    directory: int | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically.

    The file keeps the owner, group and mode of the one it replaces (``mode`` is for a
    new file); ``keep_owner=False`` gives it ``mode`` and this process's owner and group.
    A symlink at ``path`` is replaced, not followed. The directory is reached by
    ``trust.open_directory`` (a symlink on the way is followed only when its owner is
    trusted or owns where it leads) and everything happens relative to it: ``directory``
    is that descriptor when the caller holds one (the file sink, one per directory).
    """
    name = path.name
    tmp = temp_path(path).name
    try:
        dir_fd = open_directory(str(path.parent)) if directory is None else directory
    except Untrusted as e:
        raise WriteError(f"cannot write {path}: {e}") from None
    except OSError as e:
        raise WriteError(f"cannot write {path}: {explain(e, path.parent)}") from None
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        if keep_owner:
            wanted = owner.ownership_for(path, mode, directory=dir_fd)
        else:
            wanted = owner.Ownership(-1, -1, mode)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            owner.apply(fd, wanted)  # before the rename: never visible with the wrong owner
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        if sync_dir:
            with contextlib.suppress(OSError):  # an O_PATH descriptor: not ours to list
                os.fsync(dir_fd)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise WriteError(f"cannot write {path}: {explain(e, path.parent)}") from None
    finally:
        if directory is None:
            os.close(dir_fd)


def explain(error: OSError, directory: Path) -> str:
    """Why a write into ``directory`` failed, with what to do."""
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
