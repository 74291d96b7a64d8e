"""Reading configuration files safely: regular files only, never blocking, size-bounded."""

from __future__ import annotations

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

    Through ``ocsptool.files.read_regular``: opened with O_NONBLOCK, so a FIFO or a device
    is refused at once instead of blocking, and never read past ``MAX_FILE_BYTES``.
    """
    from ocsptool.files import read_regular

    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except IsADirectoryError:
        raise FileReadError("is a directory") from None
    except OSError as exc:
        raise FileReadError(exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise FileReadError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return data.decode("utf-8", "surrogateescape")
