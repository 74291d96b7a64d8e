"""ocsptool.console: the one handler; plain lines off a terminal, rich on one."""

from __future__ import annotations

import io
import logging

import pytest

from ocsptool import console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_one_plain_line(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    console.line("/c/caf\udce9.pem: two\nlines")
    logging.getLogger("ocsptool.fetch").debug("not shown without -vv")
    with console.debug(True):
        logging.getLogger("ocsptool.fetch").debug("POST %s", "http://ocsp.test/")
    logging.getLogger("ocsptool.fetch").debug("not shown after it either")
    # A file name is not trusted: its undecodable byte and its newline are shown escaped,
    # so one line stays one line and nothing reaches the terminal raw.
    assert err.getvalue() == (
        "ocsptool: /c/caf\\xe9.pem: two\\x0alines\nocsptool: debug: POST http://ocsp.test/\n"
    )


def test_on_a_terminal_rich_styles_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    console.line("a.pem: REVOKED", error=True)
    out = err.getvalue()
    assert "\x1b[" in out  # coloured
    assert "ocsptool: a.pem: REVOKED" in out and out.endswith("\n")
    assert out.count("\n") == 1
