"""`ocsptool status`: facts from disk and state, urgency order, table, JSON, --live."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import CertDir

from ocsptool import certs
from ocsptool.cli import cli
from ocsptool.settings import Settings
from ocsptool.status import gather
from ocsptool.testing.haproxy import HAProxy
from ocsptool.testing.responder import Responder
from ocsptool.view import CRITICAL, OK, WARNING

KEYS = {
    "path", "name", "issuer", "ocsp_url", "responder", "must_staple", "status", "reason",
    "this_update", "next_update", "next_due", "failures", "last_error", "error", "severity",
    "problems", "live",
}  # fmt: skip


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def status_json(run_cli: Callable[..., Result], *args: object) -> tuple[int, dict[str, Any]]:
    result = run_cli("status", "--json", *args)
    data = json.loads(result.stdout)
    return result.exit_code, {Path(c["path"]).name: c for c in data["certificates"]}


@pytest.fixture
def mixed(cert_dir: CertDir) -> CertDir:
    cert_dir.add("a")
    cert_dir.add("must", must_staple=True)
    cert_dir.add("crl", ocsp=False)
    return cert_dir


def test_without_state_reads_the_disk(mixed: CertDir, run_cli: Callable[..., Result]) -> None:
    code, rows = status_json(run_cli, mixed.path)
    assert code == 1
    assert rows["must.pem"]["status"] == "none"
    assert rows["must.pem"]["severity"] == "critical"
    assert rows["must.pem"]["error"] == (
        "no staple: no staple file on a Must-Staple certificate; clients will refuse the site"
    )
    assert rows["a.pem"]["severity"] == "warning"
    assert rows["crl.pem"]["reason"] is None and rows["crl.pem"]["error"] is None
    assert rows["crl.pem"]["ocsp_url"] is None
    assert all(set(row) >= KEYS for row in rows.values())


def test_after_refresh_all_good_and_times_are_iso(
    mixed: CertDir, run_cli: Callable[..., Result]
) -> None:
    assert run_cli("refresh", mixed.path).exit_code == 0
    code, rows = status_json(run_cli, mixed.path)
    assert code == 0
    assert rows["a.pem"]["status"] == "good"
    assert rows["a.pem"]["error"] is None
    assert rows["a.pem"]["signer"] == "the issuer"
    next_update = dt.datetime.strptime(rows["a.pem"]["next_update"], "%Y-%m-%dT%H:%M:%SZ")
    assert next_update.replace(tzinfo=dt.UTC) > now() + dt.timedelta(days=3)
    assert rows["must.pem"]["must_staple"] is True
    # The same facts without the state file.
    code2, rows2 = status_json(run_cli, "--state", mixed.path.parent / "absent.json", mixed.path)
    assert code2 == 0
    for name in rows:
        for key in ("status", "this_update", "next_update", "next_due", "severity"):
            assert rows[name][key] == rows2[name][key], (name, key)


def test_state_fast_path_parses_nothing(
    mixed: CertDir, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CliRunner().invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    calls: list[Path] = []
    real = certs.parse_bundle
    monkeypatch.setattr(certs, "parse_bundle", lambda p, *a: calls.append(p) or real(p, *a))
    report = gather(Settings(paths=(str(mixed.path),), state_path=state_file), now=now())
    assert [c.status for c in report.certs] == ["good", "good", "none"]
    assert calls == []
    # A staple replaced behind the state's back is verified from disk.
    other = mixed.path / "other.ocsp"
    other.write_bytes(mixed.staple("must").read_bytes())
    other.replace(mixed.staple("a"))  # a new inode, as any atomic writer makes
    report = gather(Settings(paths=(str(mixed.path),), state_path=state_file), now=now())
    first = report.certs[0]
    assert (Path(first.path).name, first.status, first.severity) == ("a.pem", "invalid", WARNING)
    assert first.reason is not None and first.reason.startswith("CertID serial 0x")
    assert calls == [Path(first.path)]


def test_lapsed_staple_is_invalid_and_must_staple_critical(
    mixed: CertDir, state_file: Path
) -> None:
    CliRunner().invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    later = now() + dt.timedelta(days=5)
    report = gather(Settings(paths=(str(mixed.path),), state_path=state_file), now=later)
    by_name = {Path(c.path).name: c for c in report.certs}
    assert [Path(c.path).name for c in report.certs] == ["must.pem", "a.pem", "crl.pem"]
    assert by_name["must.pem"].severity == CRITICAL
    assert by_name["a.pem"].status == "invalid"
    assert by_name["a.pem"].reason is not None
    assert "has already passed" in by_name["a.pem"].reason
    assert by_name["crl.pem"].severity == OK


def test_overdue_refresh_is_a_warning(mixed: CertDir, state_file: Path) -> None:
    CliRunner().invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    settings = Settings(paths=(str(mixed.path / "a.pem"),), state_path=state_file)
    report = gather(settings, now=now() + dt.timedelta(days=3, hours=23))
    assert report.certs[0].problems == ["refresh overdue; is `ocsptool refresh` running?"]


def test_revoked_row_comes_first(
    mixed: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    responder.revoked.add(mixed.leaves["a"].cert.serial_number)
    assert run_cli("refresh", mixed.path).exit_code == 1
    result = run_cli("status", "--json", mixed.path)
    assert result.exit_code == 1
    first = json.loads(result.stdout)["certificates"][0]
    assert (Path(first["path"]).name, first["status"], first["severity"]) == (
        "a.pem", "revoked", "critical",
    )  # fmt: skip
    assert first["error"].startswith("REVOKED since ")


def test_failing_refresh_shows_last_error(
    mixed: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    responder.mode = "tryLater"
    run_cli("refresh", mixed.path)
    code, rows = status_json(run_cli, mixed.path)
    assert code == 1
    assert rows["a.pem"]["failures"] == 1
    assert rows["a.pem"]["last_error"] == f"{responder.url}: responder said tryLater"


def test_unparsable_certificate_and_missing_path(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    (cert_dir.path / "broken.pem").write_text("not a certificate\n")
    code, rows = status_json(run_cli, cert_dir.path, cert_dir.path / "nope.pem")
    assert code == 1
    assert rows["broken.pem"]["error"] == "not a certificate (neither PEM nor DER)"


def test_usage_errors_exit_2(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    assert run_cli("status").exit_code == 2
    result = run_cli("status", "--live", tmp_path)
    assert result.exit_code == 2
    assert "--live needs at least one -s/--haproxy-socket ADDR" in result.stderr


def test_table_content(mixed: CertDir, responder: Responder, state_file: Path) -> None:
    responder.revoked.add(mixed.leaves["must"].cert.serial_number)
    runner = CliRunner(env={"TERM": "dumb", "COLUMNS": "200"})
    runner.invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    (mixed.path / "a.pem.ocsp").unlink()
    result = runner.invoke(cli, ["status", "--state", str(state_file), str(mixed.path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "\x1b[" not in result.stdout
    assert lines[0] == "● 2 need attention (of 3):"
    assert lines[1].startswith("  must.test: REVOKED since ")
    assert lines[2] == "  a.test: no staple: no staple file"
    header = lines[3].split()
    assert header == [
        "certificate", "responder", "staple", "thisUpdate", "nextUpdate", "issuer", "refresh",
        "problem",
    ]  # fmt: skip
    rows = [line.split() for line in lines[4:] if line.strip()]
    assert rows[0][:2] == ["must.test", "[must-staple]"]
    assert "revoked" in rows[0] and "in" in rows[0] and "ago" in rows[0]
    assert rows[1][0] == str(mixed.path / "must.pem")
    assert rows[2][0] == "a.test" and "none" in rows[2]
    assert " ".join(rows[4][1:]) == "- - Direct Intermediate - no OCSP URL"


def test_narrow_table_keeps_the_problem_readable(
    mixed: CertDir, responder: Responder, state_file: Path
) -> None:
    """At 100 columns the table with these long paths whole does not fit: each certificate
    is stacked, its problem wrapped at words on lines of its own."""
    responder.revoked.add(mixed.leaves["must"].cert.serial_number)
    runner = CliRunner(env={"TERM": "dumb", "COLUMNS": "100"})
    runner.invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    result = runner.invoke(cli, ["status", "--state", str(state_file), str(mixed.path)])
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    start = lines.index("must.test [must-staple]")
    assert lines[start + 1] == "  " + str(mixed.path / "must.pem")
    assert lines[start + 3].startswith("  problem: REVOKED since ")
    assert lines[start + 3].endswith(" UTC (key_compromise); replace this certificate")


def test_120_columns_is_a_table_for_paths_under_60_characters(
    pki: Any, responder: Responder, tmp_path: Path
) -> None:
    """Issue 19: at 120 columns, paths of 50-odd characters made every certificate stacked.
    A path now has the line under its name, across the empty cells beside it."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ocsptool-", dir="/tmp"))
    try:
        certs_dir = base / ("c" * (59 - len(f"{base}/") - len("/shop.pem")))
        certs_dir.mkdir()
        www = pki.direct.leaf("www.example.com", ocsp_url=responder.url)
        paths = {
            "www": www.write_bundle(certs_dir / "www.pem"),
            "api": pki.direct.leaf(
                "api.example.com", ocsp_url=responder.url, must_staple=True
            ).write_bundle(certs_dir / "api.pem"),
            "shop": pki.direct.leaf("shop.example.com", ocsp_url=responder.url).write_bundle(
                certs_dir / "shop.pem"
            ),
            "le": pki.direct.leaf("blog.example.org", ocsp_url=None).write_bundle(
                certs_dir / "le.pem"
            ),
        }
        assert max(len(str(p)) for p in paths.values()) == 59
        state = tmp_path / "state.json"
        runner = CliRunner(env={"TERM": "dumb", "COLUMNS": "120"})
        runner.invoke(cli, ["refresh", "--state", str(state), str(certs_dir)])
        responder.modes[www.cert.serial_number] = "tryLater"
        runner.invoke(cli, ["renew", "--state", str(state), str(paths["www"])])
        result = runner.invoke(cli, ["status", "--state", str(state), str(certs_dir)])
    finally:
        shutil.rmtree(base)
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert not any(line.endswith(" ") for line in lines)
    header = lines[2]
    assert header.split() == [
        "certificate", "responder", "staple", "nextUpdate", "refresh", "problem"
    ]  # fmt: skip
    column = header.index("problem")
    rows = lines[3:]
    assert rows[0].startswith("www.example.com ")
    assert rows[0][column:] == "1 failed refresh:"
    assert rows[1].startswith(f"{paths['www']} ")  # the path, and the problem goes on
    assert rows[1][column:].startswith(f"{responder.url}: responder")
    assert rows[2] == " " * column + "said tryLater"
    assert [rows[3].split()[:2], rows[4]] == [
        ["api.example.com", "[must-staple]"],
        str(paths["api"]),
    ]
    assert [rows[5].split()[0], rows[6]] == ["shop.example.com", str(paths["shop"])]
    assert rows[7].startswith("blog.example.org ") and rows[7].endswith("no OCSP URL")
    assert rows[8:] == [str(paths["le"])]


# -- --live against a real HAProxy -------------------------------------------------------


@pytest.mark.haproxy
def test_live(
    cert_dir: CertDir,
    run_cli: Callable[..., Result],
    start_haproxy: Callable[..., HAProxy],
) -> None:
    cert_dir.add("served")
    cert_dir.add("new")
    assert run_cli("refresh", cert_dir.path / "served.pem").exit_code == 0
    proxy = start_haproxy(cert_dir.path)  # served.pem has a staple at start; new.pem none
    assert run_cli("refresh", cert_dir.path).exit_code == 0  # new.pem: written, not pushed
    code, rows = status_json(run_cli, "--live", "-s", proxy.socket, cert_dir.path)
    assert code == 1
    assert rows["served.pem"]["live"] == []
    assert rows["new.pem"]["live"] == [
        f"HAProxy {proxy.socket} serves no staple; run `ocsptool refresh -s ADDR` to push it"
    ]
    # Renewed on disk but not pushed: HAProxy serves an older one.
    time.sleep(1.1)  # the responder's thisUpdate has one-second resolution
    assert run_cli("renew", cert_dir.path / "served.pem").exit_code == 0
    code, rows = status_json(run_cli, "--live", "-s", proxy.socket, cert_dir.path)
    assert code == 1
    assert rows["served.pem"]["live"][0].startswith(
        f"HAProxy {proxy.socket} serves an older staple (thisUpdate "
    )
    # Push everything: nothing left to flag.
    assert run_cli("renew", "-s", proxy.socket, *cert_dir.path.glob("*.pem")).exit_code == 0
    code, rows = status_json(run_cli, "--live", "-s", proxy.socket, cert_dir.path)
    assert (code, rows["served.pem"]["live"], rows["new.pem"]["live"]) == (0, [], [])
    # HAProxy stopped: the socket is the problem, in one line; the disk facts remain.
    proxy.stop()
    result = run_cli("status", "--json", "--live", "-s", proxy.socket, cert_dir.path)
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 1 and problems[0].startswith(f"{proxy.socket}: ")


def test_long_lists_get_a_plain_table_with_every_column(
    mixed: CertDir, responder: Responder, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past RICH_MAX_ROWS rows (10,000 took rich 8 s) the columns are laid out by hand."""
    from ocsptool import status_output

    monkeypatch.setattr(status_output, "RICH_MAX_ROWS", 2)
    responder.revoked.add(mixed.leaves["must"].cert.serial_number)
    runner = CliRunner(env={"TERM": "dumb", "COLUMNS": "80"})
    runner.invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    result = runner.invoke(cli, ["status", "--state", str(state_file), str(mixed.path)])
    assert result.exit_code == 1
    output = result.stdout.splitlines()
    start = next(n for n, line in enumerate(output) if line.startswith("certificate "))
    header, first, first_path, *_ = output[start:]
    assert header.split() == [
        "certificate", "responder", "staple", "thisUpdate", "nextUpdate", "issuer", "refresh",
        "problem",
    ]  # fmt: skip
    assert first.startswith("must.test [must-staple]  ")
    assert first[header.index("problem") :].startswith("REVOKED since ")
    assert first.endswith("; replace this certificate")  # whole, not folded at 80 columns
    assert first_path == str(mixed.path / "must.pem")
    assert output[-2].startswith("crl.test ") and output[-2].endswith("no OCSP URL")


@pytest.mark.haproxy
def test_live_reads_no_bundle_when_the_state_is_valid(
    cert_dir: CertDir,
    run_cli: Callable[..., Result],
    start_haproxy: Callable[..., HAProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CertID HAProxy keys staples by comes from the record the run wrote."""
    cert_dir.add("a")
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    proxy = start_haproxy(cert_dir.path)

    def no_parse(path: Path) -> certs.Bundle:
        raise AssertionError(f"parsed {path} again")

    monkeypatch.setattr(certs, "parse_bundle", no_parse)
    code, rows = status_json(run_cli, "--live", "-s", proxy.socket, cert_dir.path)
    assert (code, rows["a.pem"]["live"], rows["a.pem"]["status"]) == (0, [], "good")


def test_a_malformed_certificate_is_one_problem_line_not_blindness(
    cert_dir: CertDir, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    """A bundle whose leaf has an extension twice (valid DER, a good signature, forbidden
    by RFC 5280): status, check and --metrics report it on its own line and still judge
    the others."""
    from ocsptool.testing.pki import key_pem, with_duplicate_extension

    cert_dir.add("good")
    leaf = cert_dir.pki.direct.leaf("bad.test", ocsp_url=cert_dir.url)
    bad = with_duplicate_extension(leaf, cert_dir.pki.direct)
    from cryptography.hazmat.primitives.serialization import Encoding

    (cert_dir.path / "bad.pem").write_bytes(
        bad.public_bytes(Encoding.PEM) + cert_dir.pki.direct.pem + key_pem(leaf.key)
    )
    refresh = run_cli("refresh", cert_dir.path)
    why = "certificate block 1 is malformed (Duplicate 2.5.29.35 extension found)"
    assert refresh.stderr == f"ocsptool: {cert_dir.path / 'bad.pem'}: {why}\n"
    metrics = tmp_path / "m.prom"
    status = run_cli("status", "--json", "--metrics", metrics, cert_dir.path)
    rows = {Path(c["path"]).name: c for c in json.loads(status.stdout)["certificates"]}
    assert rows["bad.pem"]["problems"] == [why]
    assert rows["good.pem"]["status"] == "good"
    assert 'ocsptool_certificate_problem{path="' + str(cert_dir.path / "bad.pem") in (
        metrics.read_text()
    )
    check = run_cli("check", cert_dir.path)
    assert (check.exit_code, check.stdout.split(" | ")[0]) == (
        1,
        f"OCSP WARNING - {cert_dir.path / 'bad.pem'}: {why}",
    )


def test_whatever_one_certificate_raises_is_its_own_line(
    mixed: CertDir, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: a bug met on one certificate is that certificate's line."""
    from ocsptool import status

    CliRunner().invoke(cli, ["refresh", "--state", str(state_file), str(mixed.path)])
    real = status.from_record

    def broken(f: Any, *args: Any) -> Any:
        if f.path.endswith("/a.pem"):
            raise RuntimeError("boom")
        return real(f, *args)

    monkeypatch.setattr(status, "from_record", broken)
    report = gather(Settings(paths=(str(mixed.path),), state_path=state_file), now=now())
    by_name = {Path(c.path).name: c for c in report.certs}
    assert by_name["a.pem"].problems == ["unexpected RuntimeError: boom (a bug; please report it)"]
    assert by_name["must.pem"].status == "good"
