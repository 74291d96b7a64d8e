"""Reading configuration files safely: regular files only, never blocking, size-bounded."""

from __future__ import annotations

import os
import stat

from ocsptool.printable import shown

__all__ = ["MAX_FILE_BYTES", "MAX_LINE_CHARS", "FileReadError", "read_text", "shown"]

#: A haproxy.cfg or a crt-list past this is a mistake or an attack (10,000 lines ~ 1 MiB).
MAX_FILE_BYTES = 32 * 1024 * 1024
#: HAProxy's own line buffers are 64 KiB at most; past that a line is skipped.
MAX_LINE_CHARS = 65536


class FileReadError(OSError):
    """Why a file could not be read, as a short cause (``not a regular file``)."""


def read_text(path: str) -> str:
    """The file's text (undecodable bytes kept as surrogates, so paths survive).

    Opened with O_NONBLOCK, so a FIFO or a device is refused at once instead of blocking.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise FileReadError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileReadError("is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise FileReadError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1024 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise FileReadError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    except OSError as exc:
        if isinstance(exc, FileReadError):
            raise
        raise FileReadError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")
