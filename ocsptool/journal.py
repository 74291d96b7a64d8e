"""Priorities for journald: sd-daemon ``<N>`` prefixes on stderr lines under systemd.

journald stores every line a service writes to stderr as priority 'info', unless the line
starts with ``<N>`` (sd-daemon(3), ``SyslogLevelPrefix=yes``, the default). systemd.exec(5)
sets ``$JOURNAL_STREAM`` to ``device:inode`` (decimal) of the stream connected to the
journal; a program checks that its stderr is that stream by comparing the numbers with
``fstat()`` of the descriptor. A stderr redirected elsewhere by the unit or by hand (the
variable is inherited) does not match, and gets no prefix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import logging

# Python's logging levels, without importing logging (the CLI's start-up stays small).
CRITICAL, ERROR, WARNING, INFO, DEBUG = 50, 40, 30, 20, 10

#: sd-daemon(3) priorities, by Python logging level (the first at or below the level).
_PRIORITIES = (
    (CRITICAL, 2),  # SD_CRIT
    (ERROR, 3),  # SD_ERR
    (WARNING, 4),  # SD_WARNING
    (INFO, 6),  # SD_INFO
)
_DEBUG = 7  # SD_DEBUG


def priority_prefix(levelno: int) -> str:
    """``<3>`` for an error, ``<4>`` for a warning, ``<6>`` for info (``<2>``, ``<7>``
    for critical and debug)."""
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return f"<{priority}>"
    return f"<{_DEBUG}>"


def journal_stream_active(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``stream`` is the journal stream systemd named in ``$JOURNAL_STREAM``."""
    device, sep, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not a file (StringIO, pytest)
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def prefix_lines(text: str, levelno: int) -> str:
    """Every line of ``text`` with the priority of ``levelno`` (journald reads a prefix
    only at the start of a line; it splits lines at newlines alone). A final newline
    stays as it is."""
    prefix = priority_prefix(levelno)
    body, newline, _ = text.rpartition("\n") if text.endswith("\n") else (text, "", "")
    return "\n".join(prefix + line for line in body.split("\n")) + newline


def journal_formatter(fmt: str) -> logging.Formatter:
    """A ``logging.Formatter(fmt)`` that prefixes each line of a record with its priority:
    install it on the stderr handler when ``journal_stream_active(sys.stderr)``."""
    import logging

    class JournalFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return prefix_lines(super().format(record), record.levelno)

    return JournalFormatter(fmt)
