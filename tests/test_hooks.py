"""The on-change hook: real processes through the real shell, their failures as one line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ocsptool.hooks import ENVVAR, run_hook
from ocsptool.testing.responder import wait_until

CHANGED = ["/etc/haproxy/certs/a.pem.ocsp", "/etc/haproxy/certs/b c.pem.ocsp"]


def test_a_shell_string_gets_the_changed_paths(tmp_path: Path) -> None:
    out = tmp_path / "changed.txt"
    result = run_hook(f'printf %s "${ENVVAR}" > {out}; echo reloaded', CHANGED, timeout=10)
    assert out.read_text() == "/etc/haproxy/certs/a.pem.ocsp\n/etc/haproxy/certs/b c.pem.ocsp\n"
    assert (result.ok, result.returncode, result.stdout, result.problem) == (
        True,
        0,
        "reloaded\n",
        None,
    )


def test_an_argv_list_runs_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "argv.txt"
    code = (
        "import os, sys; open(sys.argv[1], 'w').write(repr(sys.argv[2:]) + os.environ[sys.argv[2]])"
    )
    result = run_hook(
        [sys.executable, "-c", code, str(out), ENVVAR, "$HOME;x"], CHANGED, timeout=10
    )
    assert result.ok
    assert out.read_text() == f"['{ENVVAR}', '$HOME;x']" + "".join(p + "\n" for p in CHANGED)


def test_a_failing_hook_is_one_line_with_its_stderr_tail() -> None:
    script = "for n in 1 2 3 4 5; do echo line $n >&2; done; echo out; exit 3"
    result = run_hook(script, CHANGED, timeout=10)
    assert result.returncode == 3
    assert result.problem == (
        f"on-change hook {script!r} failed (exit status 3): line 3 | line 4 | line 5"
    )
    assert result.stdout == "out\n"
    assert not result.ok


def test_a_long_stderr_tail_is_capped() -> None:
    result = run_hook("printf 'x%.0s' $(seq 1000) >&2; exit 1", [], timeout=10)
    assert result.problem is not None
    tail = result.problem.split("): ", 1)[1]
    assert tail == "..." + "x" * 297
    assert "\n" not in result.problem


def test_a_hook_killed_by_a_signal() -> None:
    result = run_hook(["sh", "-c", "kill -9 $$"], CHANGED, timeout=10)
    assert result.problem == "on-change hook 'sh -c kill -9 $$' failed (killed by signal 9)"


def test_a_hook_that_cannot_start() -> None:
    result = run_hook(["/nonexistent/reload-nginx"], CHANGED, timeout=10)
    assert result.problem == (
        "on-change hook '/nonexistent/reload-nginx' cannot start: No such file or directory"
    )
    assert result.returncode is None


def test_an_empty_hook() -> None:
    assert run_hook("  ", CHANGED, timeout=10).problem == "on-change hook: empty command"
    assert run_hook([], CHANGED, timeout=10).problem == "on-change hook: empty command"


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The shell starts a child that would outlive the shell alone being killed.
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    result = run_hook(script, CHANGED, timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.problem == (
        f"on-change hook {script!r} timed out after 0.5s; killed its process group"
    )
    assert result.returncode is None
    assert elapsed < 5
    child = int(pid_file.read_text())
    wait_until(lambda: not _alive(child), timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie not yet reaped by init counts as dead.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return status != "Z"


def test_the_hook_does_not_inherit_our_stdin() -> None:
    result = run_hook(["sh", "-c", "cat; echo done"], [], timeout=5)
    assert (result.stdout, result.ok) == ("done\n", True)
