"""`ocsptool check`: Nagios/Icinga states, exact exit codes, one line with perfdata."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import CertDir

from ocsptool.check import parse_duration
from ocsptool.testing.responder import Responder

PERF = re.compile(r"^'?[a-z_]+'?=-?\d+s?;[\d:]*;[\d:]*;\d*;?\d*$")


def check(run_cli: Callable[..., Result], *args: object) -> tuple[int, str, str]:
    result = run_cli("check", *args)
    assert result.stdout.count("\n") == 1, result.stdout
    summary, _, perf = result.stdout.strip().partition(" | ")
    for item in perf.split():
        assert PERF.match(item), item
    return result.exit_code, summary, perf


@pytest.fixture(autouse=True)
def refreshed_once(state_file: Path) -> None:
    """A state as a first refresh leaves it (check is UNKNOWN without one: see below)."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text('{"version": 1, "certs": {}}')


@pytest.fixture
def stapled(cert_dir: CertDir, run_cli: Callable[..., Result]) -> CertDir:
    cert_dir.add("a")
    cert_dir.add("crl", ocsp=False)
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    return cert_dir


def test_ok(stapled: CertDir, run_cli: Callable[..., Result]) -> None:
    code, summary, perf = check(run_cli, stapled.path)
    assert code == 0
    assert re.fullmatch(
        r"OCSP OK - 1 staple valid, earliest nextUpdate expires in 3d 23h \(a\.test\)", summary
    )
    assert "certificates=2;;;0" in perf
    assert re.search(r"earliest_next_update=3\d{5}s;43200:;10800:;", perf)


def test_warning_and_critical_thresholds(stapled: CertDir, run_cli: Callable[..., Result]) -> None:
    code, summary, _ = check(run_cli, "--warn", "5d", stapled.path)
    assert (code, summary) == (1, "OCSP WARNING - a.test: staple expires in 3d 23h (warn 5d)")
    code, summary, _ = check(run_cli, "--warn", "6d", "--crit", "4d", stapled.path)
    assert (code, summary) == (2, "OCSP CRITICAL - a.test: staple expires in 3d 23h (crit 4d)")


def test_no_staple_is_warning_but_must_staple_critical(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    cert_dir.add("a")
    code, summary, _ = check(run_cli, cert_dir.path)
    assert (code, summary) == (1, "OCSP WARNING - a.test: no staple: no staple file")
    cert_dir.add("must", must_staple=True)
    code, summary, _ = check(run_cli, cert_dir.path)
    assert code == 2
    assert summary == (
        "OCSP CRITICAL - must.test: no staple: no staple file on a Must-Staple certificate; "
        "clients will refuse the site (+1 more)"
    )


def test_revoked_is_critical(
    cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    cert_dir.add("a")
    responder.mode = "revoked"
    run_cli("refresh", cert_dir.path)
    code, summary, perf = check(run_cli, cert_dir.path)
    assert code == 2
    assert summary.startswith("OCSP CRITICAL - a.test: REVOKED since ")
    assert "revoked=1;;1;0" in perf


def test_only_crl_certificates_are_ok(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    cert_dir.add("crl", ocsp=False)
    code, summary, _ = check(run_cli, cert_dir.path)
    assert (code, summary) == (0, "OCSP OK - 1 certificate, none with an OCSP URL")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--warn", "5x", "."), "--warn: '5x' is not a duration; "
         "use e.g. 2d, 12h, 1d12h, 90m or 30s"),
        (("--bogus", "."), "No such option"),  # click's wording varies by version
        ((), "give at least one certificate file or directory"),
        (("--warn", "1h", "--crit", "2h", "."), "--crit must not be longer than --warn"),
        (("--live", "."), "--live needs at least one -s/--haproxy-socket ADDR"),
    ],
)  # fmt: skip
def test_usage_errors_are_unknown_not_critical(
    run_cli: Callable[..., Result], args: tuple[str, ...], message: str
) -> None:
    result = run_cli("check", *args)
    assert result.exit_code == 3
    assert result.stdout.startswith(f"OCSP UNKNOWN - usage error: {message}")
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    assert result.stderr == ""


def test_unusable_state_is_unknown(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    cert_dir.add("a")
    state = cert_dir.path.parent / "new.json"
    state.write_text('{"version": 99, "certs": {}}')
    result = run_cli("check", "--state", state, cert_dir.path)
    assert result.exit_code == 3
    assert result.stdout.startswith(f"OCSP UNKNOWN - {state}: written by a newer ocsptool")


def test_help_explains_exit_codes(run_cli: Callable[..., Result]) -> None:
    result = run_cli("check", "--help")
    assert result.exit_code == 0
    assert "Exit 2 always means\n        CRITICAL here." in result.stdout


@pytest.mark.parametrize(
    ("text", "seconds"), [("2d", 172800), ("12h", 43200), ("1d12h", 129600), ("90", 90)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "d", "2x", "1h2", "-1h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_bad_config_file_is_one_unknown_line(tmp_path: Path) -> None:
    from conftest import run_subprocess

    config = tmp_path / "bad.toml"
    config.write_text("jbos = 3\n")
    done = run_subprocess("--config", config, "check", tmp_path)
    assert (done.returncode, done.stderr) == (3, "")
    assert done.stdout == (
        f"OCSP UNKNOWN - usage error: {config}: unknown key 'jbos' (did you mean 'jobs'?)\n"
    )
