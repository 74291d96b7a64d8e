"""refresh and renew through a real HAProxy on every version of the matrix: renewed
certificates (reported, then loaded with --update-certs), socket levels, the master CLI,
``ocsp-update on`` and certificates HAProxy has not loaded. Exact lines, exit codes, and
real TLS handshakes for what HAProxy serves."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CertDir, run_subprocess

from ocsptool.haproxy import Dialect, dialect_for, loaded_certs
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.pki import key_pem
from ocsptool.testing.responder import Responder
from ocsptool.times import from_epoch, iso

pytestmark = pytest.mark.haproxy

StartHAProxy = Callable[..., HAProxy]


def dialect_of(proxy: HAProxy) -> Dialect:
    return dialect_for(proxy.command("show version"))


def run(state: Path, command: str, *args: object) -> subprocess.CompletedProcess[str]:
    """``ocsptool COMMAND --state STATE ARGS...`` as a real process, as cron runs it."""
    return run_subprocess(command, "--state", state, *args)


def record(state: Path, path: Path) -> dict[str, Any]:
    rec: dict[str, Any] = json.loads(state.read_text())["certs"][str(path)]
    return rec


def fetched_line(state: Path, path: Path, status: str = "good") -> str:
    """The line ``renew`` and ``refresh -v`` print for ``path``, from its record."""
    rec = record(state, path)
    until = iso(from_epoch(rec["staple"]["next_update"]))
    due = iso(from_epoch(rec["due"]))
    return f"{path}: fetched: {status}, valid until {until}, next refresh {due}"


def fix(address: str, level: str, needs: str) -> str:
    return (
        f"HAProxy socket {address} is at level {level}, but {needs} needs level admin: "
        f"configure it as `stats socket {address} level admin`"
    )


# -- renewed certificates -------------------------------------------------------------------


def test_renewed_certificate_reported_then_loaded_with_update_certs(
    cert_dir: CertDir, state_file: Path, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    path = cert_dir.add("site")
    assert run(state_file, "refresh", cert_dir.path).returncode == 0
    proxy = start_haproxy(cert_dir.path)  # serves the old certificate and its staple
    old_serial = cert_dir.leaves["site"].cert.serial_number
    old_staple = cert_dir.staple("site").read_bytes()
    assert tls_staple(proxy.port, "site.test") == old_staple
    cert_dir.add("site")  # renewed on disk: a new key and serial
    new_serial = cert_dir.leaves["site"].cert.serial_number
    renewed = (
        f"ocsptool: {path}: HAProxy {proxy.socket}: HAProxy still holds the certificate with "
        f"serial {old_serial:X}, but the file has serial {new_serial:X} (renewed): "
    )

    first = run(state_file, "refresh", "-s", proxy.socket, cert_dir.path)
    assert (first.returncode, first.stdout) == (1, "")
    assert first.stderr == renewed + "reload HAProxy to load it, or use --update-certs\n"
    new_staple = cert_dir.staple("site").read_bytes()
    assert new_staple != old_staple  # the file is the new certificate's staple
    assert tls_staple(proxy.port, "site.test") == old_staple  # never "pushed"
    assert record(state_file, path)["pushed"] == []
    # Retried on the next run, and reported again: exit 1 until it is served.
    again = run(state_file, "refresh", "-s", proxy.socket, cert_dir.path)
    assert (again.returncode, again.stderr, responder.requests) == (1, first.stderr, 2)

    dialect = dialect_of(proxy)
    loaded = run(state_file, "refresh", "-vv", "--update-certs", "-s", proxy.socket, cert_dir.path)
    key = key_pem(cert_dir.leaves["site"].key).decode().splitlines()[1:-1]
    for line in key:  # the key went to HAProxy only
        assert line not in loaded.stderr and line not in state_file.read_text()
    if not dialect.staples_replaced_certs:  # 2.8.0 would serve the new certificate unstapled
        assert loaded.returncode == 1
        assert loaded.stderr.splitlines()[-1] == renewed.removesuffix("\n") + (
            f"reload HAProxy to load it (HAProxy {dialect.version} does not staple a "
            "certificate replaced at runtime)"
        )
        assert (str(path), old_serial) in loaded_certs(proxy.socket)
        proxy.restart()  # the fix it names: HAProxy reads the files again
        assert run(state_file, "refresh", "-s", proxy.socket, cert_dir.path).returncode == 0
    else:
        assert loaded.returncode == 0, loaded.stderr
        fresh = fetched_line(state_file, path).replace(": fetched: ", ": fresh: ")
        assert [line for line in loaded.stderr.splitlines() if "debug" not in line] == [
            f"ocsptool: {fresh}, renewed certificate loaded into HAProxy {proxy.socket} with "
            "its staple (it replaced the certificate HAProxy held)"  # -v: what HAProxy got
        ]
        assert (str(path), new_serial) in loaded_certs(proxy.socket)
    assert tls_staple(proxy.port, "site.test") == new_staple
    assert record(state_file, path)["pushed"] == [proxy.socket]

    quiet = run(state_file, "refresh", "--update-certs", "-s", proxy.socket, cert_dir.path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr, responder.requests) == (0, "", "", 2)


# -- socket levels ---------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["operator", "user"])
def test_operator_and_user_sockets_are_reported_with_the_fix(
    cert_dir: CertDir, state_file: Path, start_haproxy: StartHAProxy, level: str
) -> None:
    slot = cert_dir.add("slot")
    cert_dir.staple("slot").write_bytes(b"")  # a stapling slot from the start
    first = cert_dir.add("first")
    proxy = start_haproxy(cert_dir.path, levels=(level,))
    dialect = dialect_of(proxy)
    address = proxy.level_socket(level)

    result = run(state_file, "refresh", "-s", address, cert_dir.path)

    assert (result.returncode, result.stdout) == (1, "")
    if dialect.ocsp_needs_admin:  # 3.4: every OCSP command
        needs = f"setting OCSP responses on HAProxy {dialect.version}"
        assert result.stderr == f"ocsptool: {fix(address, level, needs)}\n"
        assert tls_staple(proxy.port, "slot.test") is None
    else:  # an update works; a first staple needs `set ssl cert`, admin only
        needs = "a first staple (`set ssl cert`)"
        assert (
            result.stderr == f"ocsptool: {first}: HAProxy {address}: {fix(address, level, needs)}\n"
        )
        assert tls_staple(proxy.port, "slot.test") == cert_dir.staple("slot").read_bytes()
        assert record(state_file, slot)["pushed"] == [address]
    assert tls_staple(proxy.port, "first.test") is None
    assert record(state_file, first)["pushed"] == []

    # The fix: the admin socket. Everything is pushed from disk, nothing fetched again.
    fixed = run(state_file, "refresh", "-s", proxy.socket, cert_dir.path)
    assert (fixed.returncode, fixed.stderr) == (0, "")
    for name in ("slot", "first"):
        assert tls_staple(proxy.port, f"{name}.test") == cert_dir.staple(name).read_bytes()


# -- the master CLI --------------------------------------------------------------------------


def test_master_cli_through_refresh_renew_and_a_reload(
    cert_dir: CertDir, state_file: Path, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    site = cert_dir.add("site")
    cert_dir.add("other")
    proxy = start_haproxy(cert_dir.path, master=True)
    assert proxy.master_socket is not None
    master = proxy.master_socket

    result = run(state_file, "refresh", "-s", master, cert_dir.path)
    assert (result.returncode, result.stderr) == (0, "")
    for name in ("site", "other"):
        assert tls_staple(proxy.port, f"{name}.test") == cert_dir.staple(name).read_bytes()

    proxy.reload()  # a new worker, which loaded the .ocsp files
    renewed = run(state_file, "renew", "-s", master, site)
    assert (renewed.returncode, renewed.stderr) == (0, "")
    assert renewed.stdout == fetched_line(state_file, site) + f", pushed to {master}\n"
    assert tls_staple(proxy.port, "site.test") == cert_dir.staple("site").read_bytes()
    quiet = run(state_file, "refresh", "-s", master, cert_dir.path)
    assert (quiet.returncode, quiet.stderr, responder.requests) == (0, "", 3)


# -- ocsp-update on --------------------------------------------------------------------------


def test_ocsp_update_on_is_left_to_haproxy_and_its_file_kept_fresh(
    cert_dir: CertDir, state_file: Path, start_haproxy: StartHAProxy
) -> None:
    mine, theirs = cert_dir.add("mine"), cert_dir.add("theirs")
    probe = start_haproxy(mine)
    dialect = dialect_of(probe)
    probe.close()
    if not dialect.ocsp_updates:
        pytest.skip(f"HAProxy {dialect.version} has no ocsp-update (2.8+)")
    assert run(state_file, "refresh", cert_dir.path).returncode == 0
    crt_list = cert_dir.path.parent / "certs.list"
    crt_list.write_text(f"{mine}\n{theirs} [ocsp-update on]\n")
    proxy = start_haproxy(crt_list, crt_list=True)
    sock = proxy.socket
    before = cert_dir.staple("theirs").read_bytes()

    renewed = run(state_file, "renew", "-s", sock, mine, theirs)

    assert (renewed.returncode, renewed.stderr) == (0, "")
    assert renewed.stdout.splitlines() == [
        fetched_line(state_file, mine) + f", pushed to {sock}",
        fetched_line(state_file, theirs) + f", HAProxy {sock} staples it itself (ocsp-update)",
    ]
    assert cert_dir.staple("theirs").read_bytes() != before  # its file is kept fresh
    assert tls_staple(proxy.port, "mine.test") == cert_dir.staple("mine").read_bytes()
    assert record(state_file, theirs)["self_stapled"] == [sock]

    # Nothing more to do: quiet, and -v says who staples what.
    quiet = run(state_file, "refresh", "-s", sock, cert_dir.path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    verbose = run(state_file, "refresh", "-v", "-s", sock, cert_dir.path)
    fresh = fetched_line(state_file, theirs).replace(": fetched: ", ": fresh: ")
    assert f"ocsptool: {fresh}, HAProxy {sock} staples it itself (ocsp-update)" in (
        verbose.stderr.splitlines()
    )

    status = run(state_file, "status", "--json", "--live", "-s", sock, cert_dir.path)
    assert status.returncode == 0, status.stdout
    data = json.loads(status.stdout)
    rows = {Path(c["path"]).name: c for c in data["certificates"]}
    assert [(f["address"], f["stapler"]) for f in rows["theirs.pem"]["served_by"]] == [
        (sock, "haproxy")
    ]
    assert rows["theirs.pem"]["served_by"][0]["served"] in ("same", "older", "newer")
    assert rows["theirs.pem"]["self_stapled"] == [sock]
    assert rows["mine.pem"]["served_by"][0] | {"this_update": None, "next_update": None} == {
        "address": sock,
        "stapler": "ocsptool",
        "served": "same",
        "status": "good",
        "this_update": None,
        "next_update": None,
        "serial": f"{cert_dir.leaves['mine'].cert.serial_number:x}",
    }
    assert (
        data["live_checks"][0]["self_stapled"] == 1 and data["live_checks"][0]["certificates"] == 2
    )
    table = run(state_file, "status", "--live", "-s", sock, cert_dir.path).stdout.splitlines()
    assert table[-1].startswith(f"checked HAProxy {sock}: ")
    assert table[-1].endswith(
        " of 2 serve the staple on disk; HAProxy staples 1 itself (ocsp-update)"
    )
    # Without --live, from what the last refresh found.
    offline = run(state_file, "status", cert_dir.path).stdout.splitlines()
    column = offline[1].index("stapler")
    cells = {
        line.split()[0]: line[column:].strip() or "-"
        for line in offline[2:]
        if line.startswith(("mine.test", "theirs.test"))
    }
    assert cells == {"mine.test": "-", "theirs.test": "ocsp-update"}


# -- a certificate HAProxy has not loaded ---------------------------------------------------


def test_renew_of_a_certificate_haproxy_has_not_loaded_says_so_once(
    cert_dir: CertDir, state_file: Path, start_haproxy: StartHAProxy
) -> None:
    served = cert_dir.add("served")
    other = cert_dir.add("other")
    proxy = start_haproxy(served)  # HAProxy serves served.pem only

    result = run(state_file, "renew", "-s", proxy.socket, other)

    assert result.returncode == 0
    assert result.stdout == fetched_line(state_file, other) + "\n"  # not "pushed to"
    assert result.stderr == (
        f"ocsptool: {other}: not pushed: HAProxy {proxy.socket} has not loaded this "
        "certificate (not in 'show ssl cert')\n"
    )
    # Said once per staple: the timer's runs stay quiet about it.
    again = run(state_file, "refresh", "-s", proxy.socket, cert_dir.path)
    assert (again.returncode, again.stderr) == (0, "")
    quiet = run(state_file, "refresh", "-s", proxy.socket, cert_dir.path)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert tls_staple(proxy.port, "served.test") == cert_dir.staple("served").read_bytes()
    status = run(state_file, "status", "--json", "--live", "-s", proxy.socket, cert_dir.path)
    assert status.returncode == 0
    assert json.loads(status.stdout)["live_checks"][0]["line"] == (
        f"checked HAProxy {proxy.socket}: 1 of 1 serve the staple on disk; "
        "1 certificate not loaded there"
    )
