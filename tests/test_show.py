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
    assert fields(result)["OCSP URL"] == "no OCSP URL"  # and no CRL either: see test_check_trust.py


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


def test_show_a_bundles_base_name_shows_each_certificate(
    cert_dir: CertDir, run_cli: Callable[..., Result]
) -> None:
    """`show bundles/www.pem` for a multi-cert bundle (www.pem.rsa, www.pem.ecdsa, no
    www.pem), the name `refresh` takes and HAProxy's `crt` line uses (issue 19: it said
    `no such file`)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    pki = cert_dir.pki
    rsa_leaf = pki.direct.leaf(
        "www.test",
        ocsp_url=cert_dir.url,
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),  # type: ignore[arg-type]
    )
    ec_leaf = pki.direct.leaf("www.test", ocsp_url=cert_dir.url)
    parts = {
        "rsa": rsa_leaf.write_bundle(cert_dir.path / "www.pem.rsa"),
        "ecdsa": ec_leaf.write_bundle(cert_dir.path / "www.pem.ecdsa"),
    }
    base = cert_dir.path / "www.pem"
    assert not base.exists()
    assert run_cli("refresh", base).exit_code == 0
    result = run_cli("show", base)
    assert (result.exit_code, result.stderr) == (0, "")
    shown = result.stdout.split("\n\n")
    assert [block.splitlines()[0] for block in shown] == [
        f"certificate:    {parts['ecdsa']}",
        f"certificate:    {parts['rsa']}",
    ]
    serials = [dict(fields_of(block))["serial"] for block in shown]
    assert serials == [f"{ec_leaf.cert.serial_number:x}", f"{rsa_leaf.cert.serial_number:x}"]
    for block, part in zip(shown, ("ecdsa", "rsa"), strict=True):
        got = dict(fields_of(block))
        assert (got["staple file"], got["staple"]) == (f"{parts[part]}.ocsp", "good")
    # A name that is neither a file nor a bundle's base is still one line, exit 1.
    missing = run_cli("show", cert_dir.path / "nope.pem")
    assert (missing.exit_code, missing.stdout) == (1, "")
    assert missing.stderr == f"ocsptool: {cert_dir.path / 'nope.pem'}: no such file or directory\n"


def fields_of(block: str) -> list[tuple[str, str]]:
    found = []
    for line in block.splitlines():
        label, _, value = line.partition(":")
        if not line.startswith(" "):
            found.append((label.strip(), value.strip()))
    return found
