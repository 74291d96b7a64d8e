"""`ocsptool renew`: fetch now, whatever the schedule; a failure never touches the staple."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import CertDir

from ocsptool.state.lock import run_lock
from ocsptool.testing.responder import Responder

FAILURES = {
    "tryLater": "responder said tryLater",
    "unauthorized": "responder said unauthorized",
    "unknown": "responder does not know this certificate (status unknown)",
    "garbage": "not an OCSP response (got HTML or XML)",
    "empty": "not an OCSP response (empty body)",
    "bad_signature": "bad signature (signer CN=Direct Intermediate)",
    "stranger": "signed by CN=Stranger CA, which is not authorised for this issuer",
    "no_next_update": "nextUpdate missing; the response cannot be scheduled or served",
    "sha256": "CertID uses SHA256, but SHA-1 was asked (HAProxy matches only SHA-1 CertIDs)",
    "multi": "2 SingleResponses in one response; expected exactly one",
    "http503": "HTTP 503 (Retry-After: 120 s)",
    "redirect_ftp": "refusing ftp URL 'ftp://127.0.0.1/ocsp': only http and https",
}


@pytest.fixture
def renewed(cert_dir: CertDir, run_cli: Callable[..., Result]) -> Path:
    cert = cert_dir.add("a")
    assert run_cli("renew", cert).exit_code == 0
    return cert


def test_renew_fetches_even_when_fresh(
    renewed: Path, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    before = responder.requests
    assert run_cli("refresh", renewed).exit_code == 0
    assert responder.requests == before  # fresh: refresh leaves it
    result = run_cli("renew", renewed)
    assert result.exit_code == 0
    assert responder.requests == before + 1
    assert re.fullmatch(
        rf"{re.escape(str(renewed))}: fetched: good, valid until \S+Z, next refresh \S+Z\n",
        result.stdout,
    )
    assert result.stderr == ""


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_failed_renewal_leaves_the_staple(
    renewed: Path, responder: Responder, run_cli: Callable[..., Result], mode: str
) -> None:
    staple = Path(f"{renewed}.ocsp")
    old = staple.read_bytes()
    inode = staple.stat().st_ino
    responder.mode = mode
    result = run_cli("renew", renewed)
    assert result.exit_code == 1
    assert result.stderr == f"ocsptool: {renewed}: {responder.url}: {FAILURES[mode]}\n"
    assert result.stdout == ""
    assert staple.read_bytes() == old and staple.stat().st_ino == inode


def test_renew_without_ocsp_url_or_file(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    crl = cert_dir.add("crl", ocsp=False)
    result = run_cli("renew", crl)
    assert (result.exit_code, result.stderr) == (
        1, f"ocsptool: {crl}: no OCSP URL; nothing to renew\n",
    )  # fmt: skip
    missing = cert_dir.path / "missing.pem"
    result = run_cli("renew", missing)
    assert (result.exit_code, result.stderr) == (
        1, f"ocsptool: {missing}: no such file or directory\n",
    )  # fmt: skip


def test_renew_locked(renewed: Path, state_file: Path, run_cli: Callable[..., Result]) -> None:
    with run_lock(state_file):
        result = run_cli("renew", renewed)
    assert result.exit_code == 75
    assert result.stderr == f"ocsptool: another ocsptool run holds {state_file}.lock; exiting\n"


def test_renew_json(renewed: Path, run_cli: Callable[..., Result]) -> None:
    result = run_cli("renew", "--json", renewed)
    data = json.loads(result.stdout)
    assert (result.exit_code, data["exit_code"], data["fetched"]) == (0, 0, 1)
    assert data["certificates"][0]["status"] == "good"


def test_dry_run_prints_and_writes_nothing(
    cert_dir: CertDir, state_file: Path, run_cli: Callable[..., Result]
) -> None:
    cert = cert_dir.add("a")
    result = run_cli("renew", "--dry-run", cert)
    assert result.exit_code == 0
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    out = {k.rstrip(":").strip(): v.strip() for k, v in fields.items()}
    assert out["status"] == "good"
    assert out["signer"] == "the issuer"
    assert out["HTTP cache-control"] == "max-age=172800, public"
    assert out["result"] == "verified; not written (--dry-run)"
    for key in ("producedAt", "thisUpdate", "nextUpdate"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out[key])
    assert not Path(f"{cert}.ocsp").exists()
    assert not state_file.exists()


def test_dry_run_rejected_shows_what_came(
    renewed: Path, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    staple = Path(f"{renewed}.ocsp")
    old = staple.read_bytes()
    responder.mode = "stranger"
    result = run_cli("renew", "--dry-run", renewed)
    assert result.exit_code == 1
    assert "status:             good\n" in result.stdout
    reason = f"{responder.url}: signed by CN=Stranger CA, which is not authorised for this issuer"
    assert f"result:             REJECTED: {reason}\n" in result.stdout
    assert result.stderr == f"ocsptool: {renewed}: {reason}\n"
    assert staple.read_bytes() == old
