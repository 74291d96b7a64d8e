"""End-to-end refresh runs against the real responder, real files and a real HAProxy."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from ocsptool.refresh import run_refresh
from ocsptool.settings import Settings
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.pki import key_pem
from ocsptool.testing.responder import Responder, wait_until
from tests.conftest import CertDir, run_subprocess

NOW = dt.datetime.now(dt.UTC)


def staple_status(der: bytes) -> str:
    return ocsp.load_der_ocsp_response(der).certificate_status.name.lower()


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file's inode, mtime and bytes: proves a run rewrote nothing."""
    out = {}
    for path in sorted(directory.iterdir()):
        st = path.stat()
        out[path.name] = (st.st_ino, st.st_mtime_ns, path.read_bytes())
    return out


def settings(cert_dir: CertDir, state_file: Path, **kwargs: object) -> Settings:
    return Settings(paths=(str(cert_dir.path),), state_path=state_file, **kwargs)  # type: ignore[arg-type]


def test_staples_both_cas_quietly(
    cert_dir: CertDir, run_cli: Callable[..., object], responder: Responder
) -> None:
    cert_dir.add("direct")
    cert_dir.add("delegated", ca=cert_dir.pki.delegated)
    cert_dir.add("no-ocsp", ocsp=False)

    result = run_cli("refresh", cert_dir.path)

    assert (result.exit_code, result.output) == (0, "")
    assert staple_status(cert_dir.staple("direct").read_bytes()) == "good"
    assert staple_status(cert_dir.staple("delegated").read_bytes()) == "good"
    assert not cert_dir.staple("no-ocsp").exists()
    assert responder.requests == 2
    assert responder.methods == ["GET", "GET"]  # short URLs: RFC 5019 GET


def test_second_run_sends_nothing_and_rewrites_nothing(
    cert_dir: CertDir, state_file: Path, responder: Responder
) -> None:
    for i in range(5):
        cert_dir.add(f"site{i}", ca=cert_dir.pki.delegated if i % 2 else None)
    first = run_subprocess("refresh", "--state", state_file, cert_dir.path)
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    before, state_before = snapshot(cert_dir.path), state_file.stat().st_mtime_ns
    requests = responder.requests

    started = time.monotonic()
    second = run_subprocess("refresh", "--state", state_file, cert_dir.path)
    elapsed = time.monotonic() - started

    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert responder.requests == requests
    assert snapshot(cert_dir.path) == before
    assert state_file.stat().st_mtime_ns == state_before  # nothing changed, nothing written
    assert elapsed < 5  # generous: a sanity bound, the real figure is in benchmarks/


def test_revoked_is_written_and_reported(
    cert_dir: CertDir, run_cli: Callable[..., object], responder: Responder
) -> None:
    path = cert_dir.add("revoked")
    responder.revoked.add(cert_dir.leaves["revoked"].cert.serial_number)

    result = run_cli("refresh", cert_dir.path)

    assert result.exit_code == 1
    assert staple_status(cert_dir.staple("revoked").read_bytes()) == "revoked"
    assert result.stderr.startswith(f"ocsptool: {path}: REVOKED since ")
    assert result.stderr.endswith("; the staple tells clients so; replace this certificate\n")
    assert result.stderr.count("\n") == 1


def test_responder_down_names_each_cert_and_writes_nothing(
    cert_dir: CertDir, state_file: Path, responder: Responder
) -> None:
    dead = Responder()
    with dead.serving() as url:
        pass  # the port is closed again: connection refused
    a = cert_dir.path / "a.pem"
    b = cert_dir.path / "b.pem"
    cert_dir.pki.direct.leaf("a.test", ocsp_url=url).write_bundle(a)
    cert_dir.pki.delegated.leaf("b.test", ocsp_url=url).write_bundle(b)
    host = url.split("/")[2]

    down = run_subprocess("refresh", "--state", state_file, cert_dir.path)

    assert down.returncode == 1
    assert down.stderr.splitlines() == [
        f"ocsptool: {a}: {url}: connection refused by {host}",
        f"ocsptool: {b}: {url}: connection refused by {host}",
    ]
    assert sorted(p.name for p in cert_dir.path.iterdir()) == ["a.pem", "b.pem"]


def test_recovery_after_outage(cert_dir: CertDir, state_file: Path, responder: Responder) -> None:
    cert_dir.add("a")
    responder.mode = "tryLater"
    report = run_refresh(settings(cert_dir, state_file), now=NOW)
    assert report.problems == [
        f"{cert_dir.path / 'a.pem'}: {responder.url}: responder said tryLater"
    ]
    assert not cert_dir.staple("a").exists()

    responder.mode = "good"
    # Within the backoff nothing is retried ...
    assert (
        run_refresh(settings(cert_dir, state_file), now=NOW + dt.timedelta(minutes=1)).fetched == 0
    )
    # ... after it, the staple comes back.
    report = run_refresh(settings(cert_dir, state_file), now=NOW + dt.timedelta(minutes=6))
    assert (report.ok, report.fetched) == (True, 1)
    assert staple_status(cert_dir.staple("a").read_bytes()) == "good"


@pytest.mark.parametrize(
    "mode",
    ["tryLater", "garbage", "stranger", "bad_signature", "unknown", "expired", "sha256"],
)
def test_bad_response_never_replaces_a_good_staple(
    cert_dir: CertDir, state_file: Path, responder: Responder, mode: str
) -> None:
    cert_dir.add("a")
    assert run_refresh(settings(cert_dir, state_file), now=NOW).ok
    good = cert_dir.staple("a").read_bytes()

    responder.mode = mode
    later = NOW + dt.timedelta(days=3)  # past the midpoint: due
    report = run_refresh(settings(cert_dir, state_file), now=later)

    assert not report.ok and report.fetched == 0
    assert cert_dir.staple("a").read_bytes() == good


def test_renewed_certificate_is_due_at_once(
    cert_dir: CertDir, state_file: Path, responder: Responder
) -> None:
    cert_dir.add("a")
    run_refresh(settings(cert_dir, state_file), now=NOW)
    old = cert_dir.staple("a").read_bytes()

    cert_dir.add("a")  # a renewed certificate: new serial, same file name
    report = run_refresh(settings(cert_dir, state_file), now=NOW)

    assert report.fetched == 1
    new = ocsp.load_der_ocsp_response(cert_dir.staple("a").read_bytes())
    assert new.serial_number == cert_dir.leaves["a"].cert.serial_number
    assert cert_dir.staple("a").read_bytes() != old


def test_lost_state_is_rebuilt_from_disk_without_refetching(
    cert_dir: CertDir, state_file: Path, responder: Responder
) -> None:
    cert_dir.add("a")
    cert_dir.add("b", ca=cert_dir.pki.delegated)
    run_refresh(settings(cert_dir, state_file), now=NOW)
    state_file.unlink()

    report = run_refresh(settings(cert_dir, state_file), now=NOW)

    assert (report.ok, report.fetched, report.notes) == (True, 0, [])
    assert responder.requests == 2
    assert state_file.exists()


def test_corrupt_state_is_moved_aside_in_one_line(
    cert_dir: CertDir, state_file: Path, run_cli: Callable[..., object], responder: Responder
) -> None:
    cert_dir.add("a")
    run_cli("refresh", cert_dir.path)
    state_file.write_text("{not json")

    result = run_cli("refresh", cert_dir.path)

    assert result.exit_code == 0
    (aside,) = state_file.parent.glob("state.json.corrupt-*")
    assert result.stderr == (
        f"ocsptool: {state_file}: is not valid JSON; moved it to {aside.name} "
        "and rebuilt from the staples on disk\n"
    )
    assert responder.requests == 1  # the valid staple on disk was reused
    assert json.loads(state_file.read_text())["version"] == 1


def test_second_concurrent_run_exits_75(
    cert_dir: CertDir, state_file: Path, run_cli: Callable[..., object]
) -> None:
    import fcntl

    cert_dir.add("a")
    state_file.parent.mkdir(parents=True)
    lock = state_file.with_name("state.json.lock")
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = run_subprocess("refresh", "--state", state_file, cert_dir.path)
    assert result.returncode == 75
    assert result.stderr == f"ocsptool: another ocsptool run holds {lock}; exiting\n"
    assert not cert_dir.staple("a").exists()


def test_json_report(cert_dir: CertDir, run_cli: Callable[..., object]) -> None:
    cert_dir.add("a")
    cert_dir.add("plain", ocsp=False)
    result = run_cli("refresh", "--json", cert_dir.path)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["fetched"] == 1 and report["exit_code"] == 0
    by_name = {Path(c["path"]).name: c for c in report["certificates"]}
    assert by_name["a.pem"]["action"] == "fetched"
    assert by_name["a.pem"]["status"] == "good"
    assert by_name["a.pem"]["next_update"].endswith("Z")
    assert by_name["plain.pem"]["action"] == "no-ocsp"


def test_usage_error_exit_2(run_cli: Callable[..., object]) -> None:
    result = run_cli("refresh")
    assert result.exit_code == 2
    assert "give at least one certificate file or directory" in result.stderr


def test_missing_directory_is_one_line(tmp_path: Path, run_cli: Callable[..., object]) -> None:
    missing = tmp_path / "nope"
    result = run_cli("refresh", missing)
    assert (result.exit_code, result.stderr) == (
        1,
        f"ocsptool: {missing}: no such file or directory\n",
    )


# -- openssl ocsp as an independent responder ----------------------------------------------


@pytest.fixture
def openssl_responder(tmp_path: Path, cert_dir: CertDir) -> Iterator[str]:
    """``openssl ocsp`` serving the direct CA, signing with the CA key, 1-day validity."""
    from ocsptool.testing.haproxy import free_port

    ca = cert_dir.pki.direct
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    (tmp_path / "ca.key").write_bytes(key_pem(ca.key))
    (tmp_path / "index.txt").write_text("")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    leaf = ca.leaf("openssl.test", ocsp_url=url)
    leaf.write_bundle(cert_dir.path / "openssl.pem")
    serial = f"{leaf.cert.serial_number:X}"
    expiry = leaf.cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    subject = "/O=ocsptool test PKI/CN=openssl.test"
    (tmp_path / "index.txt").write_text(f"V\t{expiry}\t\t{serial}\tunknown\t{subject}\n")
    log = (tmp_path / "openssl.log").open("w+")
    proc = subprocess.Popen(
        ["openssl", "ocsp", "-index", tmp_path / "index.txt", "-CA", tmp_path / "ca.pem",
         "-rsigner", tmp_path / "ca.pem", "-rkey", tmp_path / "ca.key",
         "-port", str(port), "-ndays", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # Never probe the port: an idle connection wedges openssl ocsp. Wait for its line.
        wait_until(lambda: "ACCEPT" in (tmp_path / "openssl.log").read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_against_openssl_ocsp_responder(
    cert_dir: CertDir, run_cli: Callable[..., object], openssl_responder: str
) -> None:
    result = run_cli("refresh", cert_dir.path / "openssl.pem")
    assert (result.exit_code, result.output) == (0, "")
    staple = ocsp.load_der_ocsp_response(cert_dir.staple("openssl").read_bytes())
    assert staple.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert staple.next_update_utc is not None


# -- a real HAProxy ----------------------------------------------------------------------


@pytest.mark.haproxy
def test_haproxy_end_to_end(
    cert_dir: CertDir,
    state_file: Path,
    responder: Responder,
    start_haproxy: Callable[..., HAProxy],
) -> None:
    """Two CAs, one revoked cert, one with its issuer in a .issuer file, one without OCSP,
    one that had a staple when HAProxy started: after one refresh a TLS client sees every
    staple, and a second run pushes nothing."""
    pki = cert_dir.pki
    cert_dir.add("direct")
    cert_dir.add("delegated", ca=pki.delegated)
    cert_dir.add("revoked", ca=pki.delegated)
    responder.revoked.add(cert_dir.leaves["revoked"].cert.serial_number)
    cert_dir.add("issuerfile", chain=False)
    (cert_dir.path / "issuerfile.pem.issuer").write_bytes(pki.direct.pem)
    cert_dir.add("plain", ocsp=False)
    cert_dir.add("preloaded")
    assert run_refresh(
        Settings(paths=(str(cert_dir.path / "preloaded.pem"),), state_path=state_file), now=NOW
    ).ok
    proxy = start_haproxy(cert_dir.path)

    run = run_subprocess("refresh", "--state", state_file, "-s", proxy.socket, cert_dir.path)

    assert run.returncode == 1  # the revoked one
    assert run.stderr.count("\n") == 1 and "revoked.pem: REVOKED" in run.stderr
    expected = {"direct": "good", "delegated": "good", "revoked": "revoked",
                "issuerfile": "good", "preloaded": "good"}  # fmt: skip
    for name, status in expected.items():
        served = tls_staple(proxy.port, f"{name}.test")
        assert served == cert_dir.staple(name).read_bytes(), name
        assert staple_status(served) == status
    assert tls_staple(proxy.port, "plain.test") is None

    again = run_subprocess("refresh", "--state", state_file, "-s", proxy.socket, cert_dir.path)
    assert again.returncode == 1 and again.stderr == run.stderr
    record = json.loads(state_file.read_text())["certs"][str(cert_dir.path / "direct.pem")]
    assert record["pushed"] == [proxy.socket]


@pytest.mark.haproxy
def test_openssl_s_client_sees_the_staple(
    cert_dir: CertDir, state_file: Path, start_haproxy: Callable[..., HAProxy]
) -> None:
    """An independent TLS client (openssl s_client -status) sees the pushed staple."""
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path)
    run = run_subprocess("refresh", "--state", state_file, "-s", proxy.socket, cert_dir.path)
    assert (run.returncode, run.stderr) == (0, "")
    client = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{proxy.port}",
         "-servername", "site.test", "-status"],
        input="", capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert "OCSP Response Status: successful" in client.stdout
    assert "Cert Status: good" in client.stdout


@pytest.mark.haproxy
def test_failed_push_is_retried_next_run(
    cert_dir: CertDir, state_file: Path, responder: Responder, start_haproxy: Callable[..., HAProxy]
) -> None:
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path)
    missing = str(proxy.dir / "missing.sock")

    run = run_subprocess("refresh", "--state", state_file, "-s", missing, cert_dir.path)
    assert run.returncode == 1
    assert run.stderr.startswith(f"ocsptool: HAProxy socket {missing}: ")
    assert cert_dir.staple("site").exists()

    shutil.copy(cert_dir.staple("site"), proxy.dir / "keep")
    retry = run_subprocess("refresh", "--state", state_file, "-s", proxy.socket, cert_dir.path)
    assert (retry.returncode, retry.stderr) == (0, "")
    assert responder.requests == 1  # the staple on disk was fresh: pushed, not refetched
    assert tls_staple(proxy.port, "site.test") == cert_dir.staple("site").read_bytes()


@pytest.mark.haproxy
def test_haproxy_restart_loses_nothing(
    cert_dir: CertDir, state_file: Path, responder: Responder, start_haproxy: Callable[..., HAProxy]
) -> None:
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path)
    assert (
        run_subprocess(
            "refresh", "--state", state_file, "-s", proxy.socket, cert_dir.path
        ).returncode
        == 0
    )
    proxy.restart()
    assert tls_staple(proxy.port, "site.test") == cert_dir.staple("site").read_bytes()
    again = run_subprocess("refresh", "--state", state_file, "-s", proxy.socket, cert_dir.path)
    assert (again.returncode, again.stderr, responder.requests) == (0, "", 1)


def test_key_material_never_leaves_the_bundle(
    cert_dir: CertDir, state_file: Path, run_cli: Callable[..., object]
) -> None:
    cert_dir.add("a")
    (cert_dir.path / "keyonly.pem").write_bytes(key_pem(cert_dir.leaves["a"].key))
    result = run_cli("refresh", "--json", "-vv", cert_dir.path)
    key_body = key_pem(cert_dir.leaves["a"].key).splitlines()[1]
    for text in (result.stdout.encode(), result.stderr.encode(), state_file.read_bytes()):
        assert b"PRIVATE KEY" not in text
        assert key_body not in text
    assert os.stat(state_file).st_mode & 0o777 == 0o640  # group: monitoring; no key in it
    assert serialization  # the key helper above serialises with cryptography


def test_a_bug_on_one_certificate_never_stops_the_others(
    cert_dir: CertDir, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug cannot be made real on purpose, so this one is injected: verify() raising an
    exception that is not ours, for one certificate only."""
    from ocsptool import ocsp as ocsp_module

    cert_dir.add("good")
    cert_dir.add("buggy")
    real_verify = ocsp_module.verify

    def verify(der: bytes, bundle: object, now: dt.datetime) -> object:
        if bundle.path.name == "buggy.pem":  # type: ignore[attr-defined]
            raise ValueError("boom")
        return real_verify(der, bundle, now)  # type: ignore[arg-type]

    monkeypatch.setattr(ocsp_module, "verify", verify)
    report = run_refresh(settings(cert_dir, state_file), now=NOW)

    assert report.problems == [
        f"{cert_dir.path / 'buggy.pem'}: unexpected ValueError: boom (a bug; please report it)"
    ]
    assert report.fetched == 1
    assert cert_dir.staple("good").exists() and not cert_dir.staple("buggy").exists()


@pytest.mark.haproxy
def test_debug_output_shows_http_and_haproxy_exchanges(
    cert_dir: CertDir, state_file: Path, start_haproxy: Callable[..., HAProxy]
) -> None:
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path)
    run = run_subprocess("refresh", "-vv", "--state", state_file, "-s", proxy.socket, cert_dir.path)
    assert run.returncode == 0
    debug = [line for line in run.stderr.splitlines() if line.startswith("ocsptool: debug: ")]
    assert any(
        line.startswith(f"ocsptool: debug: GET {cert_dir.url}/") and " -> HTTP 200 after " in line
        for line in debug
    ), run.stderr
    assert f"ocsptool: debug: HAProxy {proxy.socket} <- prompt" in debug
    assert any(
        line.startswith(f"ocsptool: debug: HAProxy {proxy.socket} <- set ssl ") for line in debug
    )
    assert debug[-1].endswith(" Success!")  # the first staple's commit
    assert "PRIVATE KEY" not in run.stderr
