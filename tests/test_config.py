"""The TOML config file: every key, every bad value, and flags > env > file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CertDir, run_subprocess

from ocsptool import config
from ocsptool.cli import cli
from ocsptool.errors import ConfigError

FULL = """\
paths = ["certs", "/srv/other"]
haproxy_sockets = ["/run/haproxy/admin.sock", "ipv4@127.0.0.1:9999"]
state = "state/state.json"
jobs = 4
timeout = 2.5
extensions = [".pem", "cert"]
exclude = ["old-*"]
metrics = "/var/lib/node_exporter/ocsptool.prom"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(*args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


# -- load(): the file itself --------------------------------------------------------------


def test_every_key_becomes_the_click_default(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    assert config.load(path) == {
        "paths": (str(tmp_path / "certs"), "/srv/other"),
        "sockets": ("/run/haproxy/admin.sock", "ipv4@127.0.0.1:9999"),
        "state": tmp_path / "state" / "state.json",
        "jobs": 4,
        "timeout": 2.5,
        "extensions": (".pem", "cert"),
        "excludes": ("old-*",),
        "metrics": Path("/var/lib/node_exporter/ocsptool.prom"),
    }


def test_a_single_string_is_a_list_of_one(tmp_path: Path) -> None:
    path = write(tmp_path, 'haproxy_sockets = "/run/haproxy/admin.sock"\ntimeout = 3\n')
    assert config.load(path) == {"sockets": ("/run/haproxy/admin.sock",), "timeout": 3.0}


def test_an_empty_file_sets_nothing(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, "# nothing yet\n")) == {}


KNOWN = (
    "paths, state, haproxy_sockets, haproxy_configs, nginx_configs, nginx_reload, kubernetes, "
    "namespaces, selector, secret_key, kubeconfig, jobs, jobs_per_host, timeout, ca_bundle, "
    "proxy, responder_overrides, extensions, exclude, metrics, store, on_change, update_certs"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("job = 3", "unknown key 'job' (did you mean 'jobs'?)"),
        ("socket = 'x'", f"unknown key 'socket'; known keys: {KNOWN}"),
        ("[refresh]\njobs = 3", f"unknown key 'refresh'; known keys: {KNOWN}"),
        ("jobs = 0", "jobs: expected a whole number from 1 to 256, got 0"),
        ("jobs = 'eight'", "jobs: expected a whole number from 1 to 256, got 'eight'"),
        ("jobs = true", "jobs: expected a whole number from 1 to 256, got true"),
        ("jobs = 2.5", "jobs: expected a whole number from 1 to 256, got 2.5"),
        ("timeout = 0", "timeout: expected a number of seconds from 0.1 to 300, got 0"),
        ("timeout = '10s'", "timeout: expected a number of seconds from 0.1 to 300, got '10s'"),
        ("paths = 5", "paths: expected a list of non-empty strings, got 5"),
        ("paths = ['a', 1]", "paths: expected a list of non-empty strings, got ['a', 1]"),
        ("haproxy_sockets = ['']", "haproxy_sockets: expected a list of non-empty strings, "
         "got ['']"),
        ("exclude = {a = 1}", "exclude: expected a list of non-empty strings, got a table"),
        ("state = ''", "state: expected a file path (a non-empty string), got ''"),
        ("metrics = 1", "metrics: expected a file path (a non-empty string), got 1"),
        ("jobs = ", "not valid TOML: Invalid value (at line 1, column 8)"),
        ("jobs = 1\njobs = 2", "not valid TOML: Cannot overwrite a value (at line 2, column 9)"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as error:
        config.load(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        config.load(tmp_path / "nope.toml")
    assert str(error.value) == f"{tmp_path / 'nope.toml'}: cannot read the config file: " + (
        "No such file or directory"
    )


def test_a_non_utf8_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.toml: not valid TOML: "):
        config.load(path)


def test_the_default_file_is_read_only_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "config.toml")
    assert config.find(None) is None
    write(tmp_path, "jobs = 2\n")
    assert config.find(None) == tmp_path / "config.toml"
    assert config.find(Path("/elsewhere.toml")) == Path("/elsewhere.toml")


# -- through the CLI ------------------------------------------------------------------------


def test_cli_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "jbos = 3\n")
    done = run_subprocess("--config", path, "refresh")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"ocsptool: {path}: unknown key 'jbos' (did you mean 'jobs'?)\n"


def test_cli_config_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs = 300\n")
    code, output = invoke("refresh", env={"OCSPTOOL_CONFIG": str(path)})
    assert code == 2
    assert output == f"ocsptool: {path}: jobs: expected a whole number from 1 to 256, got 300\n"


def test_cli_missing_config_given_explicitly(tmp_path: Path) -> None:
    code, output = invoke("--config", tmp_path / "nope.toml", "refresh", tmp_path)
    assert code == 2
    assert output == (
        f"ocsptool: {tmp_path / 'nope.toml'}: cannot read the config file: "
        "No such file or directory\n"
    )


def test_cli_default_file_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEFAULT_PATH", write(tmp_path, "exclude = 5\n"))
    code, output = invoke("refresh", tmp_path)
    assert code == 2
    assert output == (
        f"ocsptool: {tmp_path / 'config.toml'}: exclude: expected a list of non-empty strings, "
        "got 5\n"
    )


def test_dev_null_means_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEFAULT_PATH", write(tmp_path, "exclude = 5\n"))
    code, output = invoke("--config", "/dev/null", "refresh", "--state", tmp_path / "s.json")
    assert code == 2
    assert "give at least one certificate file or directory" in output


def test_file_values_show_as_defaults_in_help(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs = 3\n")
    code, output = invoke("--config", path, "refresh", "--help")
    assert code == 0
    assert "default: 3;" in output


def test_the_cron_line_is_just_refresh(cert_dir: CertDir, tmp_path: Path) -> None:
    """paths and state from the file, relative to it: `ocsptool refresh` does the job."""
    cert_dir.add("site")
    path = write(tmp_path, f'paths = ["{cert_dir.path.name}"]\nstate = "st/state.json"\n')
    done = run_subprocess("--config", path, "refresh")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert cert_dir.staple("site").is_file()
    assert (tmp_path / "st" / "state.json").is_file()


def test_precedence_flag_over_env_over_file(cert_dir: CertDir, tmp_path: Path) -> None:
    cert_dir.add("site")
    path = write(tmp_path, f'paths = ["{cert_dir.path}"]\nstate = "file.json"\n')
    runs = [
        ({}, [], "file.json"),
        ({"OCSPTOOL_STATE": str(tmp_path / "env.json")}, [], "env.json"),
        (
            {"OCSPTOOL_STATE": str(tmp_path / "env.json")},
            ["--state", str(tmp_path / "flag.json")],
            "flag.json",
        ),
    ]
    for env, flags, expected in runs:
        before = set(tmp_path.glob("*.json"))
        code, output = invoke("--config", path, "refresh", *flags, env=env)
        assert (code, output) == (0, "")
        assert {p.name for p in set(tmp_path.glob("*.json")) - before} == {expected}


def test_paths_on_the_command_line_replace_the_files(cert_dir: CertDir, tmp_path: Path) -> None:
    cert_dir.add("site")
    path = write(tmp_path, 'paths = ["/nonexistent/certs"]\n')
    code, output = invoke(
        "--config", path, "refresh", "--state", tmp_path / "s.json", cert_dir.path
    )
    assert (code, output) == (0, "")
    assert cert_dir.staple("site").is_file()


def test_file_paths_that_do_not_exist_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, 'paths = ["/nonexistent/certs"]\n')
    code, output = invoke("--config", path, "refresh", "--state", tmp_path / "s.json")
    assert code == 1
    assert output == "ocsptool: /nonexistent/certs: no such file or directory\n"


def test_check_reports_config_errors_as_unknown(tmp_path: Path) -> None:
    if "check" not in cli.commands:
        pytest.skip("no check command in this build")
    path = write(tmp_path, "jobs = 0\n")
    code, output = invoke("--config", path, "check")
    assert code == 3
    # The one Nagios line on stdout that check's help promises (it used to be on stderr only).
    assert output == (
        f"OCSP UNKNOWN - usage error: {path}: jobs: expected a whole number from 1 to 256, got 0\n"
    )


def test_demo_ignores_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs = 0\n")
    code, output = invoke("--config", path, "demo", "--help")
    assert code == 0
    assert "throwaway CA" in output


def test_metrics_from_the_file_are_written_by_refresh_only(
    cert_dir: CertDir, tmp_path: Path
) -> None:
    cert_dir.add("site")
    path = write(tmp_path, f'paths = ["{cert_dir.path}"]\nmetrics = "m.prom"\nstate = "s.json"\n')
    code, output = invoke("--config", path, "refresh")
    assert (code, output) == (0, "")
    assert "ocsptool_last_run_success 1" in (tmp_path / "m.prom").read_text()
    (tmp_path / "m.prom").unlink()
    invoke("--config", path, "status")
    assert not (tmp_path / "m.prom").exists()


def test_default_map_scopes_keys_to_commands() -> None:
    """Each command gets the keys of the settings it takes; metrics from the file only
    for the timer's refresh (from the settings table)."""
    values = {"paths": ("/a",), "metrics": Path("/m.prom"), "jobs": 2}
    assert config.default_map(values, ["refresh", "status", "renew"]) == {
        "refresh": values,
        "status": {"paths": ("/a",)},
        "renew": {"paths": ("/a",), "jobs": 2},
    }
