"""ocsptool.run_output on a real terminal (a pty): the progress bar appears only while
staples are fetched, and a no-op run says each problem once (issue 19: a no-op refresh
showed `fetching staples 0/?`)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, CertDir

from ocsptool.testing.responder import Responder

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(*args: object) -> tuple[int, str]:
    """``python -m ocsptool ARGS`` with stdin, stdout and stderr on one pty, 100 columns:
    its exit code and what the terminal received (escapes kept)."""
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS="100")
    env.pop("NO_COLOR", None)
    with subprocess.Popen(
        [sys.executable, "-m", "ocsptool", *map(str, args)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    ) as process:
        os.close(follower)
        received = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed its side
                break
            if not chunk:
                break
            received += chunk
        code = process.wait(60)
    os.close(leader)
    return code, received.decode("utf-8", "replace")


def lines(screen: str) -> list[str]:
    """The text lines a terminal shows, escapes and carriage returns removed."""
    text = _ESCAPES.sub("", screen).replace("\r\n", "\n")
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line.strip()]


def test_no_bar_without_a_fetch_and_each_revoked_line_once(
    cert_dir: CertDir, responder: Responder, state_file: Path
) -> None:
    cert_dir.add("good")
    revoked = cert_dir.add("gone")
    responder.revoked.add(cert_dir.leaves["gone"].cert.serial_number)

    code, first = on_a_terminal("refresh", "--state", state_file, cert_dir.path)
    assert code == 1
    assert "fetching staples" in first and "2/2" in first  # the bar while fetching
    assert "0/?" not in first

    code, again = on_a_terminal("refresh", "--state", state_file, cert_dir.path)
    assert (code, responder.requests) == (1, 2)  # nothing was due
    assert "fetching staples" not in again
    shown = lines(again)
    assert [line for line in shown if "REVOKED since" in line] == [
        next(line for line in lines(first) if "REVOKED since" in line)
    ]
    assert shown[0].startswith(f"ocsptool: {revoked}: REVOKED since ")
    assert shown[1:] == ["● 2 certificates: 0 fetched, 2 fresh, 0 without OCSP URL, 1 REVOKED"]
