"""The output layer's one logging handler: ``ocsptool: ...`` lines on stderr.

Off a terminal each record is one plain line (what cron mails and journald keeps); on a
terminal rich colours it by level. Under systemd, when stderr is the stream
``$JOURNAL_STREAM`` names, each line starts with its sd-daemon priority (``<3>`` error,
``<4>`` warning, ``<6>`` info: see ``ocsptool.journal``), so ``journalctl -p err`` shows
the failures. The core logs to the ``ocsptool`` logger (debug lines
from ``fetch`` and ``haproxy``); the CLI says what it has to say through ``line``.
Import it only when a line is to be written (a quiet no-op run never does), and rich
only on a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ocsptool.printable import printable

PREFIX = "ocsptool: "
_STYLES = {"DEBUG": "dim", "INFO": "", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


def logger() -> logging.Logger:
    """The ``ocsptool`` logger, with the console handler attached (once)."""
    log = logging.getLogger("ocsptool")
    if not any(isinstance(h, _ConsoleHandler) for h in log.handlers):
        log.addHandler(_ConsoleHandler())
        log.propagate = False
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)
    return log


def line(text: str, *, error: bool = False, info: bool = False) -> None:
    """One line on stderr, safe for non-UTF-8 file names: a warning, unless it is an
    ``error`` (a failure) or ``info`` (what was done, for -v)."""
    level = logging.ERROR if error else logging.INFO if info else logging.WARNING
    logger().log(level, "%s", text)


@contextmanager
def debug(enabled: bool) -> Iterator[None]:
    """-vv: the core's debug lines (HTTP exchanges, HAProxy commands) too."""
    if not enabled:
        yield
        return
    log = logger()
    level = log.level
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.setLevel(level)


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.levelname == "DEBUG":  # a HAProxy reply or an HTTP exchange
                text = "debug: " + text.replace("\n", " ")
            text = printable(text)  # names and CNs are not trusted: no escape reaches a tty
            stream = sys.stderr  # whatever it is now (click's test runner swaps it)
            if stream.isatty():
                from rich.console import Console
                from rich.text import Text

                console = Console(file=stream, highlight=False, soft_wrap=True)
                # A styled Text, not print(style=): rich 13 styled the newline after it too.
                console.print(Text(PREFIX + text, style=_STYLES.get(record.levelname, "")))
            else:
                from ocsptool.journal import journal_stream_active, prefix_lines

                out = PREFIX + text
                if journal_stream_active(stream):
                    out = prefix_lines(out, record.levelno)
                stream.write(out + "\n")
                stream.flush()
        except Exception:  # a broken pipe on stderr must not become a traceback
            self.handleError(record)
