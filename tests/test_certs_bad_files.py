"""Every bad certificate file, end to end through ``ocsptool refresh``.

Each bad file is named on stderr with its cause in one line, the run exits 1, and the good
certificate next to it is still stapled: one bad file never costs the others their staple.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from cryptography.hazmat.primitives import serialization

from ocsptool.testing.pki import key_pem
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, CertDir, RunCli, run_subprocess

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def run_without_dac(*args: object) -> subprocess.CompletedProcess[str]:
    """Run ocsptool as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH.

    The tests run as root, which bypasses file permissions, and no unprivileged user can
    reach this Python (it lives under /root). Dropping the two capabilities from the
    bounding set makes the kernel apply permissions to the real process: a real fault.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*command, sys.executable, "-m", "ocsptool", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def certs(cert_dir: CertDir) -> CertDir:
    """The cert_dir with one good certificate in it, which must always get its staple."""
    cert_dir.add("good")
    return cert_dir


def refresh(run_cli: RunCli, *paths: object) -> Result:
    return run_cli("refresh", "--timeout", "2", *paths)


def assert_fails_with(result: Result | subprocess.CompletedProcess[str], lines: list[str]) -> None:
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"ocsptool: {line}" for line in lines], result.stderr
    assert code == 1


def assert_good_stapled(certs: CertDir) -> None:
    assert certs.staple("good").stat().st_size > 0


BROKEN = {
    "empty": (b"", "empty file; expected a PEM bundle or a DER certificate"),
    "random": (os.urandom(3000).replace(b"-", b"_"), "not a certificate (neither PEM nor DER)"),
    "html": (b"<html>certificate goes here</html>\n", "not a certificate (neither PEM nor DER)"),
    "nul": (b"\0" * 100, "not a certificate (neither PEM nor DER)"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_file_that_is_no_certificate(
    kind: str, certs: CertDir, run_cli: RunCli, responder: Responder
) -> None:
    data, cause = BROKEN[kind]
    bad = certs.path / "bad.pem"
    bad.write_bytes(data)
    assert_fails_with(refresh(run_cli, certs.path), [f"{bad}: {cause}"])
    assert_good_stapled(certs)
    assert not Path(f"{bad}.ocsp").exists()


def test_truncated_pem(certs: CertDir, run_cli: RunCli) -> None:
    whole = (certs.path / "good.pem").read_bytes()
    bad = certs.path / "cut.pem"
    bad.write_bytes(whole[: len(whole) // 3])  # inside the leaf: BEGIN without END
    assert_fails_with(
        refresh(run_cli, certs.path),
        [f"{bad}: truncated PEM (a BEGIN line without its END)"],
    )
    assert_good_stapled(certs)


def test_corrupt_base64_in_a_certificate_block(certs: CertDir, run_cli: RunCli) -> None:
    pem = (certs.path / "good.pem").read_bytes()
    lines = pem.split(b"\n")
    lines[3] = b"!!!!" + lines[3][4:]
    bad = certs.path / "corrupt.pem"
    bad.write_bytes(b"\n".join(lines))
    assert_fails_with(
        refresh(run_cli, certs.path),
        [f"{bad}: certificate block 1 is corrupt"],
    )


def test_only_a_private_key(certs: CertDir, run_cli: RunCli) -> None:
    bad = certs.path / "key-only.pem"
    bad.write_bytes(key_pem(certs.leaves["good"].key))
    result = refresh(run_cli, certs.path)
    assert_fails_with(
        result, [f"{bad}: no certificate in the file (only keys or other PEM blocks)"]
    )
    assert "PRIVATE KEY" not in result.stderr + result.stdout
    assert_good_stapled(certs)


def test_der_certificate_with_issuer_file_is_stapled(
    certs: CertDir, run_cli: RunCli, pki: PKI
) -> None:
    leaf = pki.direct.leaf("der.test", ocsp_url=certs.url)
    der = certs.path / "der.crt"
    der.write_bytes(leaf.cert.public_bytes(serialization.Encoding.DER))
    Path(f"{der}.issuer").write_bytes(pki.direct.pem)
    result = refresh(run_cli, certs.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert Path(f"{der}.ocsp").stat().st_size > 0


def test_der_certificate_without_issuer(certs: CertDir, run_cli: RunCli, pki: PKI) -> None:
    leaf = pki.direct.leaf("der.test", ocsp_url=certs.url)
    der = certs.path / "der.crt"
    der.write_bytes(leaf.cert.public_bytes(serialization.Encoding.DER))
    assert_fails_with(
        refresh(run_cli, certs.path),
        [
            f"{der}: issuer CN=Direct Intermediate not found in the bundle; append the "
            "intermediate certificate or put it in der.crt.issuer"
        ],
    )
    assert_good_stapled(certs)


def test_leaf_last_is_found(certs: CertDir, run_cli: RunCli) -> None:
    path = certs.add("last", leaf_last=True)
    result = refresh(run_cli, certs.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert Path(f"{path}.ocsp").stat().st_size > 0


def test_two_leaves_in_one_file(certs: CertDir, run_cli: RunCli) -> None:
    a = certs.add("a")
    b = certs.add("b")
    both = certs.path / "both.pem"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    assert_fails_with(
        refresh(run_cli, certs.path),
        [f"{both}: 2 leaf certificates in one file (CN=a.test, CN=b.test); keep one per file"],
    )
    assert_good_stapled(certs)


def test_chain_without_issuer_and_no_issuer_file(certs: CertDir, run_cli: RunCli) -> None:
    path = certs.add("nochain", chain=False)
    assert_fails_with(
        refresh(run_cli, certs.path),
        [
            f"{path}: issuer CN=Direct Intermediate not found in the bundle; append the "
            "intermediate certificate or put it in nochain.pem.issuer"
        ],
    )
    assert_good_stapled(certs)


def test_issuer_file_is_the_wrong_ca(certs: CertDir, run_cli: RunCli, pki: PKI) -> None:
    path = certs.add("wrong", chain=False)
    Path(f"{path}.issuer").write_bytes(pki.delegated.pem)
    assert_fails_with(
        refresh(run_cli, certs.path),
        [
            f"{path}: wrong.pem.issuer does not hold the issuer (CN=Direct Intermediate); "
            "replace it with the right intermediate certificate"
        ],
    )
    assert_good_stapled(certs)


def test_issuer_file_that_is_garbage(certs: CertDir, run_cli: RunCli) -> None:
    path = certs.add("junk", chain=False)
    Path(f"{path}.issuer").write_bytes(b"junk")
    assert_fails_with(
        refresh(run_cli, certs.path),
        [f"{path}: junk.pem.issuer: not a certificate (neither PEM nor DER)"],
    )


def test_expired_certificate_is_reported_and_not_fetched(
    certs: CertDir, run_cli: RunCli, responder: Responder
) -> None:
    path = certs.add(
        "old", not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=1)
    )
    result = refresh(run_cli, certs.path)
    expiry = (NOW - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    assert_fails_with(
        result, [f"{path}: certificate expired on {expiry} UTC; renew it; not fetching"]
    )
    assert responder.requests == 1  # only for good.pem
    assert not Path(f"{path}.ocsp").exists()
    # And again on the next run, from the cache, still without a request.
    again = refresh(run_cli, certs.path)
    assert_fails_with(
        again, [f"{path}: certificate expired on {expiry} UTC; renew it; not fetching"]
    )
    assert responder.requests == 1


def test_not_yet_valid_certificate_is_stapled(certs: CertDir, run_cli: RunCli) -> None:
    """Deployed ahead of its start: the CA answers for it, so it gets its staple."""
    path = certs.add(
        "early", not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=90)
    )
    result = refresh(run_cli, certs.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert Path(f"{path}.ocsp").stat().st_size > 0


def test_file_over_the_size_limit(certs: CertDir, run_cli: RunCli) -> None:
    big = certs.path / "big.pem"
    with big.open("wb") as f:
        f.write((certs.path / "good.pem").read_bytes())
        f.truncate(5 * 1024 * 1024)
    assert_fails_with(
        refresh(run_cli, certs.path),
        [f"{big}: over 1024 KiB; not a certificate bundle, skipped"],
    )
    assert_good_stapled(certs)


def test_unreadable_file(certs: CertDir, state_file: Path) -> None:
    bad = certs.add("secret")
    bad.chmod(0)
    result = run_without_dac("refresh", "--state", state_file, "--timeout", "2", certs.path)
    assert_fails_with(result, [f"{bad}: permission denied; let ocsptool's user read it"])
    assert_good_stapled(certs)
    assert not Path(f"{bad}.ocsp").exists()


def test_unreadable_directory(certs: CertDir, state_file: Path) -> None:
    sub = certs.path / "locked"
    sub.mkdir()
    sub.chmod(0)
    try:
        result = run_without_dac("refresh", "--state", state_file, certs.path)
    finally:
        sub.chmod(0o755)
    assert_fails_with(result, [f"{sub}: permission denied; let ocsptool's user read it"])
    assert_good_stapled(certs)


def test_symlink_loop_in_the_tree(certs: CertDir, run_cli: RunCli) -> None:
    """A directory loop is walked once; a file loop is named."""
    (certs.path / "sub").mkdir()
    (certs.path / "sub" / "up").symlink_to("..")
    (certs.path / "self").symlink_to(".")
    loop = certs.path / "a.pem"
    loop.symlink_to("b.pem")
    (certs.path / "b.pem").symlink_to("a.pem")
    result = refresh(run_cli, certs.path)
    assert_fails_with(
        result,
        [
            f"{loop}: too many levels of symbolic links (a symlink loop)",
            f"{certs.path}/b.pem: too many levels of symbolic links (a symlink loop)",
        ],
    )
    assert_good_stapled(certs)


def test_missing_cert_directory(certs: CertDir, run_cli: RunCli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = refresh(run_cli, missing, certs.path)
    assert_fails_with(result, [f"{missing}: no such file or directory"])
    assert_good_stapled(certs)


def test_non_utf8_file_names(certs: CertDir, state_file: Path) -> None:
    """Real bytes on disk, a real process: the name is printed with each byte escaped."""
    directory = os.fsencode(certs.path)
    good = certs.path / "good.pem"
    os.rename(good, directory + b"/caf\xe9.pem")
    with open(directory + b"/\xff\xfe.pem", "wb") as f:
        f.write(b"not a certificate")
    result = run_subprocess("refresh", "--state", state_file, certs.path)
    assert result.returncode == 1
    assert result.stderr == (
        f"ocsptool: {certs.path}/\\xff\\xfe.pem: not a certificate (neither PEM nor DER)\n"
    )
    assert os.path.getsize(directory + b"/caf\xe9.pem.ocsp") > 0
    again = run_subprocess("refresh", "--state", state_file, certs.path)
    assert again.returncode == 1
    assert again.stderr == result.stderr


def test_keys_never_leak_from_a_key_only_file(certs: CertDir, run_cli: RunCli) -> None:
    bad = certs.path / "k.pem"
    key = key_pem(certs.leaves["good"].key)
    bad.write_bytes(key + b"-----BEGIN CERTIFICATE-----\n")
    result = refresh(run_cli, "-v", certs.path)
    body = key.split(b"\n")[1].decode()
    assert body not in result.stderr
    assert re.search("PRIVATE KEY", result.stderr + result.stdout) is None


def test_fifo_named_like_a_certificate_never_blocks(certs: CertDir, state_file: Path) -> None:
    """A FIFO would block a plain open() forever: it is refused unread."""
    fifo = certs.path / "fifo.pem"
    os.mkfifo(fifo)
    result = run_subprocess("refresh", "--state", state_file, certs.path, timeout=20)
    assert_fails_with(result, [f"{fifo}: not a regular file (a FIFO, socket or device); skipped"])
    assert_good_stapled(certs)


def test_fifo_as_issuer_file_never_blocks(certs: CertDir, state_file: Path) -> None:
    path = certs.add("nochain", chain=False)
    os.mkfifo(f"{path}.issuer")
    result = run_subprocess("refresh", "--state", state_file, certs.path, timeout=20)
    assert_fails_with(
        result,
        [f"{path}: nochain.pem.issuer: not a regular file (a FIFO, socket or device); skipped"],
    )


def test_device_given_as_a_certificate(certs: CertDir, run_cli: RunCli) -> None:
    result = refresh(run_cli, "/dev/zero", certs.path)
    assert_fails_with(result, ["/dev/zero: not a regular file (a FIFO, socket or device); skipped"])
    assert_good_stapled(certs)


def test_fifo_at_the_staple_path_never_blocks(certs: CertDir, state_file: Path) -> None:
    path = certs.add("site")
    os.mkfifo(f"{path}.ocsp")
    result = run_subprocess("refresh", "--state", state_file, certs.path, timeout=4)
    assert (result.returncode, result.stderr) == (0, "")
    assert Path(f"{path}.ocsp").is_file()  # the FIFO was replaced by a real staple


def test_malformed_ocsp_url_in_the_certificate(certs: CertDir, run_cli: RunCli, pki: PKI) -> None:
    path = pki.direct.leaf("bad-url.test", ocsp_url="http://[::1/ocsp").write_bundle(
        certs.path / "bad-url.pem"
    )
    assert_fails_with(
        refresh(run_cli, certs.path),
        [f"{path}: http://[::1/ocsp: bad URL 'http://[::1/ocsp': Invalid IPv6 URL"],
    )
    assert_good_stapled(certs)
