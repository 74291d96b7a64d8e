"""`ocsptool status --live` against a real HAProxy on every version of the matrix: which
HAProxy it checked and how many certificates matched, who staples each one, a renewed
certificate, the master CLI, and never a claim about what it could not read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import CertDir

from ocsptool.haproxy import Dialect, dialect_for
from ocsptool.testing.haproxy import HAProxy

pytestmark = pytest.mark.haproxy

StartHAProxy = Callable[..., HAProxy]


def dialect_of(proxy: HAProxy) -> Dialect:
    return dialect_for(proxy.command("show version"))


def live_json(run_cli: Callable[..., Result], address: str, path: Path) -> tuple[int, Any]:
    result = run_cli("status", "--json", "--live", "-s", address, path)
    return result.exit_code, json.loads(result.stdout)


def rows(data: Any) -> dict[str, Any]:
    return {Path(c["path"]).name: c for c in data["certificates"]}


def pushed(
    cert_dir: CertDir,
    run_cli: Callable[..., Result],
    start_haproxy: StartHAProxy,
    *names: str,
    **options: Any,
) -> HAProxy:
    """A HAProxy serving ``names`` (added to cert_dir), after a refresh pushed them all."""
    for name in names:
        cert_dir.add(name)
    proxy = start_haproxy(cert_dir.path, **options)
    assert run_cli("refresh", "-s", proxy.socket, cert_dir.path).exit_code == 0
    return proxy


def fix(address: str, level: str, needs: str) -> str:
    return (
        f"HAProxy socket {address} is at level {level}, but {needs} needs level admin: "
        f"configure it as `stats socket {address} level admin`"
    )


def test_live_names_the_haproxy_checked_and_how_many_match(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("crl", ocsp=False)
    proxy = pushed(cert_dir, run_cli, start_haproxy, "a", "b")

    table = run_cli("status", "--live", "-s", proxy.socket, cert_dir.path)

    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == "● all good: 3 certificates, 2 with OCSP stapling"
    assert lines[-1] == f"checked HAProxy {proxy.socket}: 2 of 2 serve the staple on disk"
    assert lines[1].split() == [
        "certificate", "responder", "staple", "thisUpdate", "nextUpdate", "issuer", "refresh",
        "stapler", "problem",
    ]  # fmt: skip
    column = lines[1].index("stapler")
    served = [line[column:].strip() for line in lines[2:-1] if line.startswith(("a.", "b."))]
    assert served == ["ocsptool: same", "ocsptool: same"]

    code, data = live_json(run_cli, proxy.socket, cert_dir.path)
    assert code == 0
    assert data["live_checks"] == [
        {
            "address": proxy.socket,
            "error": None,
            "certificates": 2,
            "matched": 2,
            "self_stapled": 0,
            "not_loaded": 0,
            "line": f"checked HAProxy {proxy.socket}: 2 of 2 serve the staple on disk",
        }
    ]
    fact = rows(data)["a.pem"]["served_by"][0]
    assert (fact["stapler"], fact["served"], fact["status"]) == ("ocsptool", "same", "good")
    assert fact["this_update"] == rows(data)["a.pem"]["this_update"]
    assert rows(data)["crl.pem"]["served_by"] == []


@pytest.mark.parametrize("level", ["operator", "user"])
def test_live_on_a_socket_it_cannot_read_says_so_and_is_not_green(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy, level: str
) -> None:
    proxy = pushed(cert_dir, run_cli, start_haproxy, "a", levels=(level,))
    address = proxy.level_socket(level)
    dialect = dialect_of(proxy)

    code, data = live_json(run_cli, address, cert_dir.path)

    if level == "operator" and not dialect.ocsp_needs_admin:  # it can read all it needs
        assert (code, data["problems"]) == (0, [])
        assert data["live_checks"][0]["line"] == (
            f"checked HAProxy {address}: 1 of 1 serve the staple on disk"
        )
        return
    needs = "`show ssl cert`" if level == "user" else "`show ssl ocsp-response`"
    cause = fix(address, level, needs)
    assert code == 1
    assert data["problems"] == [f"{address}: could not check what HAProxy serves: {cause}"]
    assert data["live_checks"] == [
        {
            "address": address,
            "error": cause,
            "certificates": 0,
            "matched": 0,
            "self_stapled": 0,
            "not_loaded": 0,
            "line": f"could not check HAProxy {address}: {cause}",
        }
    ]
    row = rows(data)["a.pem"]
    assert (row["served_by"], row["live"], row["status"]) == ([], [], "good")  # no claim

    table = run_cli("status", "--live", "-s", address, cert_dir.path)
    assert table.exit_code == 1
    assert table.stdout.splitlines()[:2] == [
        "● 1 needs attention (of 1):",
        f"  {address}: could not check what HAProxy serves: {cause}",
    ]
    assert "checked HAProxy" not in table.stdout and "all good" not in table.stdout


def test_live_when_haproxy_is_down_is_not_green(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy
) -> None:
    proxy = pushed(cert_dir, run_cli, start_haproxy, "a")
    proxy.stop()
    code, data = live_json(run_cli, proxy.socket, cert_dir.path)
    assert code == 1
    assert data["problems"] == [
        f"{proxy.socket}: could not check what HAProxy serves: {data['live_checks'][0]['error']}"
    ]
    assert data["live_checks"][0]["error"].startswith(f"HAProxy socket {proxy.socket}: ")
    assert rows(data)["a.pem"]["served_by"] == []


def test_live_names_a_renewed_certificate_and_the_fix(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy
) -> None:
    proxy = pushed(cert_dir, run_cli, start_haproxy, "site")
    old = cert_dir.leaves["site"].cert.serial_number
    cert_dir.add("site")
    new = cert_dir.leaves["site"].cert.serial_number
    assert run_cli("refresh", "-s", proxy.socket, cert_dir.path).exit_code == 1  # renewed

    code, data = live_json(run_cli, proxy.socket, cert_dir.path)

    assert code == 1
    row = rows(data)["site.pem"]
    assert row["live"] == [
        f"HAProxy {proxy.socket} holds the certificate with serial {old:X}, but the file has "
        f"serial {new:X} (renewed): reload HAProxy, or load it with "
        "`ocsptool refresh --update-certs -s ADDR`"
    ]
    assert row["served_by"][0]["served"] == "other-certificate"
    assert row["served_by"][0]["serial"] == f"{old:x}"
    assert data["live_checks"][0]["line"] == (
        f"checked HAProxy {proxy.socket}: 0 of 1 serve the staple on disk"
    )


def test_live_through_the_master_cli_also_after_a_reload(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("a")
    cert_dir.add("b")
    proxy = start_haproxy(cert_dir.path, master=True)
    assert proxy.master_socket is not None
    master = proxy.master_socket
    assert run_cli("refresh", "-s", master, cert_dir.path).exit_code == 0
    for _ in range(2):
        code, data = live_json(run_cli, master, cert_dir.path)
        assert (code, data["problems"]) == (0, [])
        assert data["live_checks"][0]["line"] == (
            f"checked HAProxy {master}: 2 of 2 serve the staple on disk"
        )
        proxy.reload()  # the new worker loads the .ocsp files ocsptool wrote


def test_live_in_the_plain_table_of_a_long_list(
    cert_dir: CertDir,
    run_cli: Callable[..., Result],
    start_haproxy: StartHAProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past RICH_MAX_ROWS rows the hand-laid table has the stapler column too."""
    from ocsptool import status_output

    monkeypatch.setattr(status_output, "RICH_MAX_ROWS", 1)
    proxy = pushed(cert_dir, run_cli, start_haproxy, "a", "b")

    lines = run_cli("status", "--live", "-s", proxy.socket, cert_dir.path).stdout.splitlines()

    assert lines[1].split() == [
        "certificate", "responder", "staple", "thisUpdate", "nextUpdate", "issuer", "refresh",
        "stapler", "problem",
    ]  # fmt: skip
    column = lines[1].index("stapler")
    assert [line[column:] for line in lines if line.startswith(("a.test", "b.test"))] == [
        "ocsptool: same",
        "ocsptool: same",
    ]
    assert lines[-1] == f"checked HAProxy {proxy.socket}: 2 of 2 serve the staple on disk"


@pytest.mark.parametrize("columns", ["80", "300"])
def test_live_on_a_terminal_stacked_or_in_a_table(
    cert_dir: CertDir,
    run_cli: Callable[..., Result],
    start_haproxy: StartHAProxy,
    monkeypatch: pytest.MonkeyPatch,
    columns: str,
) -> None:
    """At 80 columns each certificate is stacked, with who staples it among its facts; at
    300 (the paths of tests are long) the table has a stapler column."""
    proxy = pushed(cert_dir, run_cli, start_haproxy, "a")
    monkeypatch.setenv("COLUMNS", columns)

    lines = run_cli("status", "--live", "-s", proxy.socket, cert_dir.path).stdout.splitlines()

    assert lines[-1] == f"checked HAProxy {proxy.socket}: 1 of 1 serve the staple on disk"
    if columns == "80":
        start = next(n for n, line in enumerate(lines) if line.startswith("  staple good, "))
        facts = " ".join(line.strip() for line in lines[start:-1])  # wrapped at words
        assert facts.endswith(", stapler ocsptool: same")
    else:
        column = lines[1].index("stapler")
        row = next(line for line in lines if line.startswith("a.test"))
        assert row[column:].split("  ")[0] == "ocsptool: same"


# -- a push problem belongs to its socket and the run it happened in (issue 19) --------------


def test_a_mistyped_socket_leaves_no_problem_behind(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path)
    typo = str(proxy.dir / "admin.sok")
    missing = (
        f"HAProxy socket {typo}: no such socket (is HAProxy running with this 'stats socket'?)"
    )

    wrong = run_cli("refresh", "-s", typo, cert_dir.path)
    assert (wrong.exit_code, wrong.stdout, wrong.stderr) == (1, "", f"ocsptool: {missing}\n")
    check = run_cli("check", "-s", typo, cert_dir.path)
    assert check.exit_code == 1
    assert check.stdout.startswith(f"OCSP WARNING - site.test: {missing} | ")
    assert "HAProxy HAProxy" not in check.stdout

    # The right socket: the typo is no longer configured, so it is no longer a problem, even
    # before a run pushed through the right one...
    assert run_cli("check", "-s", proxy.socket, cert_dir.path).stdout.startswith("OCSP OK - ")
    # ...which the next run does (the staple on disk is fresh: nothing is fetched).
    right = run_cli("refresh", "-v", "-s", proxy.socket, cert_dir.path)
    assert right.exit_code == 0
    assert f"pushed to {proxy.socket}" in right.stderr
    check = run_cli("check", "-s", proxy.socket, cert_dir.path)
    assert (check.exit_code, check.stdout.partition(" | ")[0].split(" - ")[0]) == (0, "OCSP OK")
    status = run_cli("status", "-s", proxy.socket, cert_dir.path)
    assert (status.exit_code, status.stdout.splitlines()[0]) == (
        0,
        "● all good: 1 certificate, 1 with OCSP stapling",
    )
    # And when the typo's socket is fixed in place, its next run pushes and forgets it.
    Path(typo).symlink_to(proxy.socket)
    assert run_cli("refresh", "-s", typo, cert_dir.path).exit_code == 0
    assert run_cli("check", "-s", typo, cert_dir.path).stdout.startswith("OCSP OK - ")


def test_live_reads_back_what_a_recorded_push_problem_was_about(
    cert_dir: CertDir, run_cli: Callable[..., Result], start_haproxy: StartHAProxy
) -> None:
    """A renewed certificate: the run's push problem and --live's finding are the same fact
    about the same socket, said once (in --live's words); after a reload HAProxy serves the
    staple on disk, and --live, reading it back, says nothing of the old problem."""
    proxy = pushed(cert_dir, run_cli, start_haproxy, "site")
    old = cert_dir.leaves["site"].cert.serial_number
    cert_dir.add("site")
    new = cert_dir.leaves["site"].cert.serial_number
    assert run_cli("refresh", "-s", proxy.socket, cert_dir.path).exit_code == 1  # renewed
    recorded = json.loads(run_cli("status", "--json", "-s", proxy.socket, cert_dir.path).stdout)
    assert [": HAProxy still holds" in problem for problem in recorded["problems"]] == [True]

    code, data = live_json(run_cli, proxy.socket, cert_dir.path)
    assert code == 1
    assert data["problems"] == [
        f"{cert_dir.path / 'site.pem'}: HAProxy {proxy.socket} holds the certificate with "
        f"serial {old:X}, but the file has serial {new:X} (renewed): reload HAProxy, or load "
        "it with `ocsptool refresh --update-certs -s ADDR`"
    ]
    table = run_cli("status", "--live", "-s", proxy.socket, cert_dir.path)
    headline = table.stdout.splitlines()[:2]
    assert headline[0] == "● 1 needs attention (of 1):"
    assert headline[1].startswith(f"  site.test: HAProxy {proxy.socket} holds the certificate")
    assert "still holds" not in table.stdout  # the run's wording of the same fact: not twice

    proxy.restart()  # loads the renewed certificate and its .ocsp from disk
    code, data = live_json(run_cli, proxy.socket, cert_dir.path)
    assert (code, data["problems"]) == (0, [])
    assert data["live_checks"][0]["line"] == (
        f"checked HAProxy {proxy.socket}: 1 of 1 serve the staple on disk"
    )
    # Without --live nothing was read back: the recorded problem stands until a run pushes.
    assert run_cli("status", "-s", proxy.socket, cert_dir.path).exit_code == 1
    assert run_cli("refresh", "-s", proxy.socket, cert_dir.path).exit_code == 0
    assert run_cli("status", "-s", proxy.socket, cert_dir.path).exit_code == 0
