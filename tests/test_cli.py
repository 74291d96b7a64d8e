"""The CLI's one exit path: every error becomes one line and its exit code, in one place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ocsptool import refresh
from ocsptool.cli import cli
from ocsptool.errors import LockHeld


def invoke(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (RuntimeError("boom"), 1, "internal error: RuntimeError: boom (run with -vv for details)"),
        (LockHeld("another run holds it"), 75, "another run holds it"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_errors_become_one_line_and_their_exit_code(
    raised: BaseException, code: int, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_refresh(*args: Any, **kwargs: Any) -> None:
        raise raised

    monkeypatch.setattr(refresh, "run_refresh", run_refresh)
    assert invoke("refresh", "--state", tmp_path / "s.json", tmp_path) == (
        code,
        "",
        f"ocsptool: {line}\n",
    )


def test_vv_shows_the_traceback_of_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run_refresh(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(refresh, "run_refresh", run_refresh)
    with pytest.raises(RuntimeError, match="boom"):
        invoke("refresh", "-vv", "--state", tmp_path / "s.json", tmp_path)


def test_demo_does_not_import_the_cli() -> None:
    code = "import sys, ocsptool.demo; print('ocsptool.cli' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"


def test_options_become_the_core_settings() -> None:
    from ocsptool.cli import Options
    from ocsptool.limits import Timeouts

    options = Options(
        paths=("/c",),
        state=Path("/s.json"),
        sockets=("/run/a.sock ipv4@127.0.0.1:9999", "/run/b.sock"),
        timeout=2.0,
        extensions=("pem", ".cer"),
        verbose=2,
        quiet=1,
    )
    settings = options.run_settings()
    assert settings.sockets == ("/run/a.sock", "ipv4@127.0.0.1:9999", "/run/b.sock")
    assert settings.extensions == (".pem", ".cer")
    assert settings.timeouts == Timeouts(connect=2.0, read=2.0, total=6.0)
    assert (settings.state_path, settings.haproxy_timeout, options.verbosity) == (
        Path("/s.json"),
        2.0,
        1,
    )
    assert options.run_settings(jobs=1).jobs == 1
