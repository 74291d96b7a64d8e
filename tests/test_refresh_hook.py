"""The on-change hook through the CLI: once after a run that changed a staple file."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import CertDir

from ocsptool.cli import cli
from ocsptool.testing.responder import Responder


def recorder(tmp_path: Path) -> tuple[str, Path]:
    """A shell hook that appends one ``run`` line and then OCSPTOOL_CHANGED to a log."""
    log = tmp_path / "hook.log"
    return f"printf 'run\\n%s' \"$OCSPTOOL_CHANGED\" >> {shlex.quote(str(log))}", log


def staples(cert_dir: CertDir, *names: str) -> str:
    return "".join(f"{cert_dir.staple(name)}\n" for name in sorted(names))


def test_the_hook_runs_once_with_the_changed_paths_and_not_on_a_no_op(
    cert_dir: CertDir, run_cli: Any, tmp_path: Path
) -> None:
    for name in ("www", "api"):
        cert_dir.add(name)
    cert_dir.add("crl", ocsp=False)
    hook, log = recorder(tmp_path)
    first = run_cli("refresh", "--on-change", hook, cert_dir.path)
    assert (first.exit_code, first.stderr) == (0, "")
    expected = "run\n" + staples(cert_dir, "api", "www")
    assert log.read_text() == expected
    again = run_cli("refresh", "--on-change", hook, cert_dir.path)
    assert (again.exit_code, again.stderr) == (0, "")
    assert log.read_text() == expected  # nothing changed: the hook did not run


def test_renew_runs_the_hook_with_what_it_renewed(
    cert_dir: CertDir, run_cli: Any, tmp_path: Path
) -> None:
    for name in ("www", "api"):
        cert_dir.add(name)
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    hook, log = recorder(tmp_path)
    time.sleep(1.1)  # a newer staple (thisUpdate has whole seconds)
    result = run_cli("renew", "--on-change", hook, cert_dir.path / "www.pem")
    assert result.exit_code == 0, result.output
    assert log.read_text() == "run\n" + staples(cert_dir, "www")


def test_the_same_staple_written_again_is_no_change(
    cert_dir: CertDir, run_cli: Any, tmp_path: Path, responder: Responder
) -> None:
    """A responder that answers from its cache sends the same bytes: no change, no hook."""
    responder.presign = True
    cert_dir.add("www")
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    before = cert_dir.staple("www").read_bytes()
    hook, log = recorder(tmp_path)
    result = run_cli("renew", "--on-change", hook, cert_dir.path / "www.pem")
    assert result.exit_code == 0
    assert responder.requests == 2
    assert cert_dir.staple("www").read_bytes() == before
    assert not log.exists()


def test_an_argv_list_from_the_config_file_and_the_environment_variable(
    cert_dir: CertDir, tmp_path: Path, state_file: Path
) -> None:
    cert_dir.add("www")
    out = tmp_path / "argv.json"
    script = "import json, os, sys; json.dump([sys.argv[1:], os.environ['OCSPTOOL_CHANGED']], "
    script += f"open({str(out)!r}, 'w'))"
    config = tmp_path / "config.toml"
    config.write_text(f"on_change = {json.dumps(['python3', '-c', script, 'a b', '$HOME'])}\n")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "refresh", "--state", str(state_file), str(cert_dir.path)],
        catch_exceptions=False,
    )
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(out.read_text()) == [["a b", "$HOME"], staples(cert_dir, "www")]
    # OCSPTOOL_ON_CHANGE names it too (a shell string), and a flag wins over both
    cert_dir.add("api")
    env_hook, log = recorder(tmp_path)
    result = CliRunner(env={"OCSPTOOL_ON_CHANGE": env_hook}).invoke(
        cli, ["refresh", "--state", str(state_file), str(cert_dir.path)], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert log.read_text() == "run\n" + staples(cert_dir, "api")


def test_a_bad_on_change_in_the_config_file_is_one_line(cert_dir: CertDir, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    for text, why in [
        ("on_change = []", "got []"),
        ("on_change = ['sh', 1]", "got ['sh', 1]"),
        ("on_change = '  '", "got '  '"),
        ("store = 5", None),
    ]:
        config.write_text(text + "\n")
        result = CliRunner().invoke(cli, ["--config", str(config), "refresh", str(cert_dir.path)])
        assert result.exit_code == 2
        key = text.split(" ")[0]
        if why is None:
            expected = f"ocsptool: {config}: store: expected a store URL such as "
            expected += "'redis://HOST:PORT/DB', got 5\n"
        else:
            expected = f"ocsptool: {config}: {key}: expected a command: a string for the shell "
            expected += f"or a list of strings (argv), {why}\n"
        assert result.stderr == expected


def test_a_failing_hook_is_one_line_with_the_tail_of_its_stderr_and_exit_1(
    cert_dir: CertDir, run_cli: Any
) -> None:
    cert_dir.add("www")
    hook = "echo starting; echo 'warning: old config' >&2; echo 'Job for nginx failed.' >&2; exit 3"
    result = run_cli("refresh", "--on-change", hook, cert_dir.path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: on-change hook {hook!r} failed (exit status 3): "
        "warning: old config | Job for nginx failed.\n"
    )
    assert cert_dir.staple("www").exists()  # the staples came first
    again = run_cli("refresh", "--on-change", hook, cert_dir.path)
    assert (again.exit_code, again.stderr) == (0, "")  # no change, no hook, no failure


def test_a_hook_past_the_timeout_is_killed_and_reported(
    cert_dir: CertDir, run_cli: Any, tmp_path: Path, responder: Responder
) -> None:
    cert_dir.add("www")
    pid_file = tmp_path / "child.pid"
    hook = f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; wait"
    started = time.monotonic()
    result = run_cli("refresh", "--timeout", "0.5", "--on-change", hook, cert_dir.path)
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: on-change hook {hook!r} timed out after 0.5s; killed its process group\n"
    )
    child = int(pid_file.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in _state_of(child)
    assert responder.requests == 1


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


def _readme_hook() -> str:
    """The README's example hook for any server, as printed there."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index("#!/bin/sh\n# /usr/local/libexec/ocsptool-on-change")
    return readme[start : readme.index("```", start)]


def test_the_readme_hook_is_safe_with_a_newline_in_a_file_name(
    cert_dir: CertDir, run_cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """A bundle named ``x<newline>key.pem`` would add the line ``key.pem.ocsp`` to a
    one-a-line list, and a hook copying each line would copy a private file of that name
    from its working directory. Through OCSPTOOL_CHANGED_FILE the README's hook copies the
    two real staples and nothing else; OCSPTOOL_CHANGED leaves the hostile name out, and
    the run says so."""
    private = tmp_path / "private"
    private.mkdir()
    (private / "key.pem.ocsp").write_text("a root-only secret\n")
    monkeypatch.chdir(private)
    cert_dir.add("good")
    leaf = cert_dir.pki.direct.leaf("evil.test", ocsp_url=cert_dir.url)
    evil = leaf.write_bundle(cert_dir.path / "x\nkey.pem")
    staples_dir = tmp_path / "staples"
    staples_dir.mkdir()
    script = tmp_path / "hook.sh"
    script.write_text(
        _readme_hook()
        .replace("/var/lib/myserver/staples/", f"{staples_dir}/")
        .replace(
            "systemctl reload myserver.service", f'printf %s "$OCSPTOOL_CHANGED" > {tmp_path}/plain'
        )
    )
    script.chmod(0o755)
    result = run_cli("refresh", "--on-change", shlex.quote(str(script)), cert_dir.path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in staples_dir.iterdir()) == ["good.pem.ocsp", "x\nkey.pem.ocsp"]
    assert (staples_dir / "x\nkey.pem.ocsp").read_bytes() == Path(f"{evil}.ocsp").read_bytes()
    assert (tmp_path / "plain").read_text() == f"{cert_dir.staple('good')}\n"
    assert result.stderr == (
        f"ocsptool: {cert_dir.path}/x\\x0akey.pem.ocsp: not in OCSPTOOL_CHANGED (its name holds "
        "a control character); hooks find it in OCSPTOOL_CHANGED_FILE, NUL-separated\n"
    )
