"""`ocsptool show CERT`: the certificate and its staple, decoded and verified; no state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from conftest import CertDir


def fields(result: Result) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in result.stdout.splitlines():
        label, _, value = line.partition(":")
        out.setdefault(label.strip(), value.strip())
    return out


def test_show_good(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    cert = cert_dir.add("a", must_staple=True)
    assert run_cli("renew", cert).exit_code == 0
    result = run_cli("show", cert)
    assert result.exit_code == 0
    got = fields(result)
    leaf = cert_dir.leaves["a"].cert
    assert got["subject"] == "CN=a.test,O=ocsptool test PKI"
    assert got["names"] == "a.test"
    assert got["issuer"] == "CN=Direct Intermediate"
    assert got["serial"] == f"{leaf.serial_number:x}"
    assert got["OCSP URL"] == cert_dir.url
    assert got["Must-Staple"] == "yes"
    assert got["staple"] == "good"
    assert got["signer"] == "the issuer"
    assert got["expires"].startswith("in 3d 23h")


def test_show_invalid_staple_says_why(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    a, b = cert_dir.add("a"), cert_dir.add("b", ca=cert_dir.pki.delegated)
    assert run_cli("renew", a, b).exit_code == 0
    Path(f"{a}.ocsp").write_bytes(Path(f"{b}.ocsp").read_bytes())
    result = run_cli("show", a)
    assert result.exit_code == 1
    got = fields(result)
    assert got["staple"] == "invalid"
    b_serial = cert_dir.leaves["b"].cert.serial_number
    a_serial = cert_dir.leaves["a"].cert.serial_number
    assert got["why"] == f"CertID serial {b_serial:#x} does not match {a_serial:#x}"
    assert got["status"] == "good"  # what the file says, decoded though not trusted


def test_show_without_staple_or_ocsp(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    result = run_cli("show", cert_dir.add("a"))
    assert (result.exit_code, fields(result)["staple"], fields(result)["why"]) == (
        1, "none", "no staple file",
    )  # fmt: skip
    result = run_cli("show", cert_dir.add("crl", ocsp=False))
    assert result.exit_code == 0
    assert fields(result)["OCSP URL"] == "no OCSP URL"  # and no CRL either: see test_trust.py


def test_show_unusable_certificate(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    bad = cert_dir.path / "bad.pem"
    bad.write_text("hello\n")
    result = run_cli("show", bad)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"ocsptool: {bad}: not a certificate (neither PEM nor DER)\n"


def test_show_and_status_refuse_a_fifo_staple_instead_of_hanging(cert_dir: CertDir) -> None:
    """Run as processes with a timeout: a hang fails the test instead of stalling it."""
    import os

    from conftest import run_subprocess

    cert = cert_dir.add("a")
    os.mkfifo(cert_dir.staple("a"))
    shown = run_subprocess("show", cert, timeout=30)
    assert shown.returncode == 1
    assert "why: cannot read a.pem.ocsp: not a regular file" in " ".join(shown.stdout.split())
    status = run_subprocess(
        "status", "--state", cert_dir.path / "none.json", "--json", cert, timeout=30
    )
    assert status.returncode == 1
    import json

    (row,) = json.loads(status.stdout)["certificates"]
    assert (row["status"], row["reason"]) == (
        "invalid",
        "cannot read a.pem.ocsp: not a regular file",
    )
