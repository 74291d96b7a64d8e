"""ocsptool.printable: names from files and certificates never reach a terminal raw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsptool.printable import printable, shown
from tests.conftest import CertDir, RunCli

OSC52 = "\x1b]52;c;aGVsbG8=\x07"  # writes the terminal's clipboard


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("www.pem", "www.pem"),
        ("café.pem", "café.pem"),  # printable non-ASCII stays
        (f"x{OSC52}.pem", "x\\x1b]52;c;aGVsbG8=\\x07.pem"),
        ("a\nb\r\tc", "a\\x0ab\\x0d\\x09c"),
        ("\u202egnp.exe", "\\u202egnp.exe"),  # a bidi override
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("\x9b31m", "\\x9b31m"),  # a C1 CSI
        ("\udcff\udcfe.pem", "\\xff\\xfe.pem"),  # bytes that were not UTF-8
    ],
)
def test_what_a_terminal_would_act_on_is_escaped(text: str, expected: str) -> None:
    assert printable(text) == expected


def test_shown_cuts_after_escaping() -> None:
    assert shown("\x1b" * 50, 10) == "\\x1b\\x1b\\…"  # 10 characters


def test_hostile_names_and_cns_are_escaped_in_every_output(
    cert_dir: CertDir, run_cli: RunCli, tmp_path: Path
) -> None:
    """A certificate named and issued for an OSC 52 sequence: refresh -v, status (table
    and JSON), check and show print it escaped, never raw; the run still staples it."""
    path = cert_dir.add(f"evil{OSC52}")
    refresh = run_cli("refresh", "-v", cert_dir.path)
    assert refresh.exit_code == 0
    assert (path.parent / (path.name + ".ocsp")).stat().st_size > 0
    outputs = {
        "refresh -v": refresh.stderr,
        "status": run_cli("status", cert_dir.path).stdout,
        "check": run_cli("check", cert_dir.path).stdout,
        "show": run_cli("show", path).stdout,
    }
    for name, text in outputs.items():
        assert "\x1b" not in text and "\x07" not in text, name
        assert "evil\\x1b]52;c;aGVsbG8=\\x07" in text, name
    rows = json.loads(run_cli("status", "--json", cert_dir.path).stdout)["certificates"]
    assert rows[0]["path"] == str(path)  # JSON carries the exact name, escaped by JSON itself
