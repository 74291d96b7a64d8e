"""Issue 12: never green when wrong, and output an operator can read.

Real certificates from the test PKI, the real responder on loopback, the CLI in-process
(CliRunner) or as a process; exact lines and exit codes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, CertDir, run_subprocess

from ocsptool import check as nagios
from ocsptool import exitcodes, view
from ocsptool import status as health
from ocsptool.cli import cli
from ocsptool.plural import plural
from ocsptool.settings import Settings
from ocsptool.testing.responder import Responder

NOW = dt.datetime.now(dt.UTC)
LOOKED_FOR = "(looked for *.pem, *.crt)"


def summary_of(result: Result) -> str:
    """The check's line without its perfdata."""
    assert result.stdout.count("\n") == 1, result.stdout
    return result.stdout.partition(" | ")[0].rstrip("\n")


def refreshed(state: Path) -> Path:
    """A state as a first refresh over nothing leaves it."""
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text('{"version": 1, "certs": {}}')
    return state


# -- 1. finding no certificate at all --------------------------------------------------------


@pytest.mark.parametrize("command", ["refresh", "status"])
def test_an_empty_directory_is_a_failure_naming_where_and_what(
    tmp_path: Path, run_cli: Callable[..., Result], command: str
) -> None:
    empty = tmp_path / "certs"
    empty.mkdir()
    (empty / "README.txt").write_text("not a certificate")  # a file it does not recognise
    result = run_cli(command, empty)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"ocsptool: no certificate found in {empty} {LOOKED_FOR}\n"


def test_the_extensions_looked_for_are_the_ones_given(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("refresh", "--ext", "cert", "--ext", ".cer", tmp_path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"ocsptool: no certificate found in {tmp_path} (looked for *.cert, *.cer)\n",
    )


def test_renew_of_a_missing_file_is_one_line(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    missing = tmp_path / "gone.pem"
    result = run_cli("renew", missing)
    assert (result.exit_code, result.stderr) == (
        1,
        f"ocsptool: {missing}: no such file or directory\n",
    )


def test_check_of_an_empty_directory_and_of_a_typo_is_unknown(
    tmp_path: Path, run_cli: Callable[..., Result], state_file: Path
) -> None:
    refreshed(state_file)
    empty = tmp_path / "certs"
    empty.mkdir()
    result = run_cli("check", empty)
    assert (result.exit_code, summary_of(result)) == (
        exitcodes.CHECK_UNKNOWN,
        f"OCSP UNKNOWN - no certificate found in {empty} {LOOKED_FOR}",
    )
    result = run_cli("check", "/nonexistent")
    assert (result.exit_code, summary_of(result)) == (
        3,
        "OCSP UNKNOWN - /nonexistent: no such file or directory",
    )


def test_a_found_certificate_beside_a_typo_is_still_checked(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    cert_dir.add("a")
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    result = run_cli("check", cert_dir.path, "/nonexistent")
    assert (result.exit_code, summary_of(result)) == (
        1,
        "OCSP WARNING - /nonexistent: no such file or directory",
    )


# -- 2. check cannot see the state ------------------------------------------------------------


def test_check_before_any_refresh_is_unknown(
    cert_dir: CertDir, run_cli: Callable[..., Result], state_file: Path
) -> None:
    cert_dir.add("a")
    result = run_cli("check", cert_dir.path)
    assert (result.exit_code, summary_of(result)) == (
        3,
        f"OCSP UNKNOWN - no state yet: {state_file} does not exist; has ocsptool refresh run?",
    )
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    assert run_cli("check", cert_dir.path).exit_code == 0


def test_a_corrupt_state_is_unknown_in_check_and_noted_by_status(
    cert_dir: CertDir, run_cli: Callable[..., Result], state_file: Path
) -> None:
    cert_dir.add("a")
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    state_file.write_text("{not json")
    note = f"{state_file}: is not valid JSON; using the files on disk only"
    result = run_cli("check", cert_dir.path)
    assert (result.exit_code, summary_of(result)) == (3, f"OCSP UNKNOWN - {note}")
    result = run_cli("status", cert_dir.path)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [
        "● all good: 1 certificate, 1 with OCSP stapling",
        f"note: {note}",
    ]
    assert json.loads(run_cli("status", "--json", cert_dir.path).stdout)["notes"] == [note]
    assert state_file.read_text() == "{not json"  # status and check never write


# -- 3. expired certificates ------------------------------------------------------------------


def test_an_expired_certificate_without_staple_is_critical(
    cert_dir: CertDir, run_cli: Callable[..., Result], state_file: Path
) -> None:
    ended = NOW - dt.timedelta(days=1)
    cert_dir.add("old", not_before=NOW - dt.timedelta(days=90), not_after=ended)
    refreshed(state_file)
    expiry = f"certificate expired on {ended:%Y-%m-%d %H:%M} UTC; renew it"
    result = run_cli("check", cert_dir.path)
    assert (result.exit_code, summary_of(result)) == (2, f"OCSP CRITICAL - old.test: {expiry}")
    result = run_cli("status", "--json", cert_dir.path)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [f"{cert_dir.path / 'old.pem'}: {expiry}"]


def test_a_certificate_that_expired_with_a_good_staple_is_critical(
    cert_dir: CertDir, run_cli: Callable[..., Result], state_file: Path
) -> None:
    """The record from the last refresh says all is well; the certificate ended since."""
    ends = NOW + dt.timedelta(hours=1)
    cert_dir.add("soon", not_after=ends)
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    later = NOW + dt.timedelta(hours=2)
    expiry = f"certificate expired on {ends:%Y-%m-%d %H:%M} UTC; renew it"
    for state in (state_file, state_file.with_name("none.json")):  # record, then disk alone
        settings = Settings(paths=(str(cert_dir.path),), state_path=state)
        report = health.gather(settings, now=later)
        (cert,) = report.certs
        assert (cert.status, cert.severity, cert.problems) == ("good", view.CRITICAL, [expiry])
        verdict = nagios.evaluate(
            report, now=later, warn=dt.timedelta(hours=12), crit=dt.timedelta(hours=3)
        )
        assert verdict.code == 2
        assert verdict.line.startswith(f"OCSP CRITICAL - soon.test: {expiry} | ")


# -- 4. Must-Staple ---------------------------------------------------------------------------


def test_must_staple_with_an_invalid_staple_is_critical_and_says_why(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    cert_dir.add("must", must_staple=True)
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    replaced = cert_dir.path / "new"
    replaced.write_bytes(b"garbage")
    replaced.rename(cert_dir.staple("must"))  # a new inode: status reads it again
    result = run_cli("check", cert_dir.path)
    assert result.exit_code == 2
    assert summary_of(result) == (
        "OCSP CRITICAL - must.test: invalid staple: not an OCSP response (7 bytes starting "
        "67617262616765) "
        "on a Must-Staple certificate; clients will refuse the site"
    )


def test_must_staple_without_an_issuer_is_critical(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    """No staple can be fetched at all: clients of a Must-Staple site fail hard."""
    leaf = cert_dir.pki.direct.leaf("lone.test", ocsp_url=cert_dir.url, must_staple=True)
    leaf.write_bundle(cert_dir.path / "lone.pem", chain=False)
    why = (
        "issuer CN=Direct Intermediate not found in the bundle; append the intermediate "
        "certificate or put it in lone.pem.issuer on a Must-Staple certificate; clients "
        "will refuse the site"
    )
    for refreshed_first in (False, True):  # from the disk, and past refresh's record
        if refreshed_first:
            assert run_cli("refresh", cert_dir.path).exit_code == 1
        else:
            refreshed(cert_dir.path.parent / "state" / "state.json")
        result = run_cli("check", cert_dir.path)
        assert (result.exit_code, summary_of(result)) == (2, f"OCSP CRITICAL - lone.test: {why}")


# -- 5. where a wrong value came from ---------------------------------------------------------


def test_a_bad_state_from_the_config_file_names_the_file_and_key(
    tmp_path: Path, cert_dir: CertDir
) -> None:
    cert_dir.add("a")
    directory = tmp_path / "state-dir"
    directory.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'state = "{directory}"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "refresh", str(cert_dir.path)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"ocsptool: {config}: state: File '{directory}' is a directory.\n",
    )
    result = runner.invoke(cli, ["--config", str(config), "check", str(cert_dir.path)])
    assert (result.exit_code, result.stdout) == (
        3,
        f"OCSP UNKNOWN - usage error: {config}: state: File '{directory}' is a directory.\n",
    )
    result = runner.invoke(
        cli, ["refresh", str(cert_dir.path)], env={"OCSPTOOL_STATE": str(directory)}
    )
    assert (result.exit_code, result.stderr) == (
        2,
        f"ocsptool: $OCSPTOOL_STATE: File '{directory}' is a directory.\n",
    )
    result = runner.invoke(cli, ["refresh", "--state", str(directory), str(cert_dir.path)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"ocsptool: --state: File '{directory}' is a directory.\n",
    )


def test_a_quoted_number_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('jobs = "8"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "status", str(tmp_path)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"ocsptool: {config}: jobs: a number is written without quotes (jobs = 8), got '8'\n",
    )


# -- 8. wording -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (1, "certificate", "1 certificate"),
        (2, "certificate", "2 certificates"),
        (0, "certificate", "0 certificates"),
        (1, "failed refresh", "1 failed refresh"),
        (2, "failed refresh", "2 failed refreshes"),
        (1, "staple valid", "1 staple valid"),
        (3, "staple valid", "3 staples valid"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_two_failed_refreshes(
    cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    cert_dir.add("a")
    responder.mode = "tryLater"
    run_cli("refresh", cert_dir.path)
    run_cli("renew", cert_dir.path / "a.pem")
    rows = json.loads(run_cli("status", "--json", cert_dir.path).stdout)["certificates"]
    assert (
        rows[0]["problems"][-1] == f"2 failed refreshes: {responder.url}: responder said tryLater"
    )


def test_crl_only_is_said_only_of_a_certificate_with_a_crl(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    crl = cert_dir.pki.direct.leaf("crl.test", ocsp_url=None, crl_url="http://crl.test/ca.crl")
    crl.write_bundle(cert_dir.path / "crl.pem")
    cert_dir.add("none", ocsp=False)

    def shown(name: str) -> str:
        out = run_cli("show", cert_dir.path / name).stdout.splitlines()
        return next(line for line in out if line.startswith("OCSP URL:")).split(":", 1)[1]

    assert shown("crl.pem").strip() == "no OCSP URL: CRL only"
    assert shown("none.pem").strip() == "no OCSP URL"
    for state in ("fresh", "recorded"):  # from the disk, then from refresh's records
        if state == "recorded":
            assert run_cli("refresh", cert_dir.path).exit_code == 0
        result = run_cli("status", cert_dir.path)
        lines = result.stdout.splitlines()
        assert lines[-4].startswith("crl.test ") and lines[-4].endswith(" no OCSP URL: CRL only")
        assert lines[-2].startswith("none.test ") and lines[-2].endswith(" no OCSP URL"), state


def test_show_without_issuer_prints_the_certificate_then_the_problem(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    leaf = cert_dir.pki.direct.leaf("lone.test", ocsp_url=cert_dir.url)
    cert = leaf.write_bundle(cert_dir.path / "lone.pem", chain=False)
    result = run_cli("show", cert)
    assert (result.exit_code, result.stderr) == (1, "")
    labels = [line.partition(":")[0].strip() for line in result.stdout.splitlines()]
    assert labels == ["certificate", "subject", "names", "issuer", "serial", "valid", "problem"]
    assert result.stdout.splitlines()[-1] == (
        "problem:     issuer CN=Direct Intermediate not found in the bundle; append the "
        "intermediate certificate or put it in lone.pem.issuer"
    )


def test_show_of_a_staple_asks_for_the_certificate(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    cert = cert_dir.add("a")
    assert run_cli("renew", cert).exit_code == 0
    result = run_cli("show", f"{cert}.ocsp")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"ocsptool: {cert}.ocsp is a staple; pass its certificate instead: ocsptool show {cert}\n"
    )


def test_help_shows_each_command_its_own_exit_codes(run_cli: Callable[..., Result]) -> None:
    top = run_cli("--help").stdout
    assert "or was not due" not in top
    assert "`ocsptool check` uses the Nagios codes instead" in top
    renew = run_cli("renew", "--help").stdout
    assert "or was not due" not in renew
    assert "0   every CERT got a fresh, verified staple" in renew
    assert "or was not due" in run_cli("refresh", "--help").stdout


# -- 9. refresh --force -----------------------------------------------------------------------


def test_force_fetches_everything_and_still_refuses_a_good_after_revoked(
    cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    cert_dir.add("a")
    cert_dir.add("b")
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    asked = responder.requests
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    assert responder.requests == asked  # nothing was due
    result = run_cli("refresh", "--force", "--json", cert_dir.path)
    assert (result.exit_code, json.loads(result.stdout)["fetched"]) == (0, 2)
    assert responder.requests == asked + 2
    responder.mode = "revoked"
    assert run_cli("refresh", "--force", cert_dir.path).exit_code == 1  # revoked: exit 1
    revoked = cert_dir.staple("a").read_bytes()
    responder.mode = "good"
    result = run_cli("refresh", "--force", cert_dir.path)
    assert result.exit_code == 1
    refused = [
        f"ocsptool: {cert_dir.path / name}: {responder.url}: responder now says good, but the "
        "staple we hold says REVOKED; kept the revocation"
        for name in ("a.pem", "b.pem")
    ]
    lines = result.stderr.splitlines()
    assert [line for line in lines if "REVOKED since" not in line] == refused
    assert len(lines) == 4  # and each still says it is revoked
    assert cert_dir.staple("a").read_bytes() == revoked


# -- 10. metrics ------------------------------------------------------------------------------


def test_a_metrics_failure_fails_the_run_after_the_staples(
    cert_dir: CertDir, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    cert_dir.add("a")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    metrics = not_a_dir / "ocsptool.prom"
    result = run_cli("refresh", "--metrics", metrics, cert_dir.path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"ocsptool: cannot write {metrics}: Not a directory; "
        "the staples were still written and pushed\n",
    )
    assert cert_dir.staple("a").stat().st_size > 0


# -- 6. readable output -----------------------------------------------------------------------


@pytest.fixture
def revoked_site(cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result]) -> Path:
    """A revoked certificate (a long problem) beside a good one, in a long directory."""
    cert_dir.add("www")
    cert_dir.add("shop")
    responder.revoked.add(cert_dir.leaves["shop"].cert.serial_number)
    run_cli("refresh", cert_dir.path)
    return cert_dir.path


TRAILING = re.compile(r" +$", re.MULTILINE)


@pytest.mark.parametrize("columns", [80, 120])
def test_status_at_a_terminal_width(
    revoked_site: Path, state_file: Path, columns: int, tmp_path: Path
) -> None:
    runner = CliRunner(env={"TERM": "dumb", "COLUMNS": str(columns)})
    result = runner.invoke(cli, ["status", "--state", str(state_file), str(revoked_site)])
    out = result.stdout
    assert result.exit_code == 1
    assert not TRAILING.search(out)
    lines = out.splitlines()
    assert max(map(len, lines)) <= columns
    shop = str(revoked_site / "shop.pem")
    assert any(line.strip() == shop for line in lines)  # the path whole, on one line
    # The problem's words all there, in order, none cut or folded inside a word.
    words = " ".join(lines).split()
    tail = ["(key_compromise);", "replace", "this", "certificate"]
    assert any(words[i : i + 4] == tail for i in range(len(words)))


def test_status_stacks_rows_when_the_table_does_not_fit(
    revoked_site: Path, state_file: Path
) -> None:
    runner = CliRunner(env={"TERM": "dumb", "COLUMNS": "80"})
    result = runner.invoke(cli, ["status", "--state", str(state_file), str(revoked_site)])
    lines = result.stdout.splitlines()
    start = lines.index("shop.test")
    assert lines[start + 1] == "  " + str(revoked_site / "shop.pem")
    assert lines[start + 2].startswith("  staple revoked, nextUpdate in 3d 23h, refresh in ")
    problem = next(n for n in range(start, len(lines)) if lines[n].startswith("  problem: "))
    assert lines[problem].startswith("  problem: REVOKED since ")
    assert lines[problem + 1] == "    certificate"  # wrapped at a word, indented


def test_status_in_a_wide_enough_terminal_is_a_table(cert_dir: CertDir, state_file: Path) -> None:
    """Short paths leave room for the table at 120 columns."""
    import shutil
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    try:
        cert_dir.pki.direct.leaf("www.test", ocsp_url=cert_dir.url).write_bundle(short / "www.pem")
        runner = CliRunner(env={"TERM": "dumb", "COLUMNS": "120"})
        result = runner.invoke(cli, ["status", "--state", str(state_file), str(short)])
    finally:
        shutil.rmtree(short)
    lines = result.stdout.splitlines()
    assert lines[2].split() == [
        "certificate", "responder", "staple", "nextUpdate", "refresh", "problem"
    ]  # fmt: skip
    responder = cert_dir.url.removeprefix("http://").removesuffix("/ocsp")
    assert lines[3].split() == ["www.test", responder, "none", "-", "-", "no", "staple:", "no",
                                "staple", "file"]  # fmt: skip
    assert lines[4] == str(short / "www.pem")
    assert not TRAILING.search(result.stdout)


def test_status_through_a_pipe_folds_nothing(revoked_site: Path, state_file: Path) -> None:
    """A real process with stdout a pipe and no COLUMNS: every row on one line."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "ocsptool", "status", "--state", str(state_file), str(revoked_site)],
        capture_output=True,
        text=True,
        env=env | {"PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert not TRAILING.search(done.stdout)
    lines = done.stdout.splitlines()
    row = next(line for line in lines if line.startswith("shop.test "))
    assert row.endswith("(key_compromise); replace this certificate")
    assert lines[lines.index(row) + 1] == str(revoked_site / "shop.pem")
    assert len(row) > 120  # not folded at any width


# -- 7. journald ------------------------------------------------------------------------------


def journal_run(tmp_path: Path, matching: bool, *args: object) -> str:
    """Run ocsptool with stderr a file and $JOURNAL_STREAM naming that file (as systemd
    names its stream), or another file; return what it wrote to stderr."""
    err = tmp_path / "stderr"
    other = tmp_path / "other"
    other.write_text("")
    with err.open("w") as stream:
        st = os.fstat(stream.fileno()) if matching else other.stat()
        subprocess.run(
            [sys.executable, "-m", "ocsptool", *map(str, args)],
            stdout=subprocess.DEVNULL,
            stderr=stream,
            env=dict(os.environ, PYTHONPATH=str(ROOT), JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"),
            timeout=60,
            check=False,
        )
    return err.read_text()


def test_journald_gets_priorities_on_its_own_stream(
    cert_dir: CertDir, responder: Responder, state_file: Path, tmp_path: Path
) -> None:
    cert_dir.add("a")
    cert_dir.add("bad")
    responder.modes[cert_dir.leaves["bad"].cert.serial_number] = "tryLater"
    refresh = ("refresh", "-v", "--state", state_file, cert_dir.path)
    text = journal_run(tmp_path, True, *refresh)
    bad, good = cert_dir.path / "bad.pem", cert_dir.path / "a.pem"
    lines = text.splitlines()
    assert lines[0].startswith(f"<6>ocsptool: {good}: fetched: good, valid until ")
    assert lines[1:] == [f"<3>ocsptool: {bad}: {responder.url}: responder said tryLater"]
    state_file.write_text("{broken")
    lines = journal_run(tmp_path, True, *refresh).splitlines()
    assert lines[0].startswith(f"<4>ocsptool: {state_file}: is not valid JSON; moved it to ")
    assert journal_run(tmp_path, True, "status", "--state", state_file, tmp_path / "x") == (
        f"<3>ocsptool: {tmp_path / 'x'}: no such file or directory\n"
    )


def test_a_stderr_that_is_not_the_journal_gets_no_prefix(
    cert_dir: CertDir, state_file: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "x"
    assert journal_run(tmp_path, False, "status", "--state", state_file, missing) == (
        f"ocsptool: {missing}: no such file or directory\n"
    )
    done = run_subprocess("status", "--state", state_file, missing)
    assert done.stderr == f"ocsptool: {missing}: no such file or directory\n"
