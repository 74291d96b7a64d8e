"""Reading configuration files safely: regular files only, never blocking, size-bounded."""

from __future__ import annotations

from ocsptool.files import FileReadError, read_text
from ocsptool.printable import shown

__all__ = ["MAX_FILE_BYTES", "MAX_LINE_CHARS", "FileReadError", "read_text", "shown"]

#: A haproxy.cfg or a crt-list past this is a mistake or an attack (10,000 lines ~ 1 MiB).
MAX_FILE_BYTES = 32 * 1024 * 1024
#: HAProxy's own line buffers are 64 KiB at most; past that a line is skipped.
MAX_LINE_CHARS = 65536
