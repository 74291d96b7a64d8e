"""Security properties, each proven on real files, a real responder and real sockets.

* Only http and https URLs are fetched; a redirect to another scheme is refused.
* Bodies are capped and every network call has a timeout.
* Private key material never reaches any output, log, state or JSON.
* Staple and state files get sane modes; a symlink at the ``.ocsp`` path is replaced.
"""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import pytest
import requests

from ocsptool import fetch, limits
from ocsptool.certs import parse_bundle
from ocsptool.errors import FetchError
from ocsptool.ocsp import build_request
from ocsptool.testing.pki import key_pem
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, CertDir, RunCli

KEY_MARKERS = re.compile(rb"PRIVATE KEY|BEGIN EC|BEGIN RSA")


# -- URLs and schemes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ocsp.example/",
        "ldap://ocsp.example/",
        "gopher://ocsp.example/",
        "/relative/path",
        "javascript:alert(1)",
    ],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(FetchError, match=r"^refusing \S+ URL .*: only http and https$"):
        fetch.check_url(url)


def test_aia_with_another_scheme_is_refused_end_to_end(
    cert_dir: CertDir, pki: PKI, run_cli: RunCli
) -> None:
    leaf = pki.direct.leaf("file.test", ocsp_url="file:///etc/passwd")
    path = leaf.write_bundle(cert_dir.path / "file.pem")
    result = run_cli("refresh", cert_dir.path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {path}: file:///etc/passwd: refusing file URL 'file:///etc/passwd': "
        "only http and https\n"
    )
    assert not Path(f"{path}.ocsp").exists()


def test_redirect_to_another_scheme_is_refused(cert_dir: CertDir, responder: Responder) -> None:
    bundle = parse_bundle(cert_dir.add("site"))
    responder.mode = "redirect_ftp"
    with requests.Session() as session, pytest.raises(FetchError) as raised:
        fetch.fetch(session, responder.url, build_request(bundle))
    assert str(raised.value) == "refusing ftp URL 'ftp://127.0.0.1/ocsp': only http and https"
    assert responder.requests == 0  # the redirect itself is not an OCSP answer


# -- caps and timeouts -----------------------------------------------------------------------


def test_every_timeout_is_finite() -> None:
    timeouts = fetch.Timeouts()
    assert 0 < timeouts.connect <= 10
    assert 0 < timeouts.read <= 30
    assert 0 < timeouts.total <= 60
    assert limits.MAX_RESPONSE_BYTES <= 1024 * 1024


@pytest.mark.parametrize("mode", ["huge", "huge_stream"])
def test_body_is_capped(mode: str, cert_dir: CertDir, responder: Responder) -> None:
    bundle = parse_bundle(cert_dir.add("site"))
    responder.mode = mode
    with requests.Session() as session, pytest.raises(FetchError, match="over the 4096-byte cap"):
        fetch.fetch(session, responder.url, build_request(bundle), max_bytes=4096)


@pytest.mark.parametrize(("mode", "limit"), [("hang", 0.5), ("drip", 1.0), ("drip_headers", 1.0)])
def test_every_read_times_out(
    mode: str, limit: float, cert_dir: CertDir, responder: Responder
) -> None:
    """A silent server trips the read timeout; a slow drip (body or headers) the deadline."""
    bundle = parse_bundle(cert_dir.add("site"))
    responder.mode = mode
    timeouts = fetch.Timeouts(connect=0.5, read=0.5, total=1.0)
    started = time.monotonic()
    with fetch.new_session() as session, pytest.raises(FetchError):
        fetch.fetch(session, responder.url, build_request(bundle), timeouts=timeouts)
    assert time.monotonic() - started < limit + 0.7


# -- private keys ----------------------------------------------------------------------------


def all_bytes_under(*roots: Path) -> dict[Path, bytes]:
    out = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            if path.is_file() and not path.is_symlink():
                out[path] = path.read_bytes()
    return out


def test_private_keys_never_leave_their_file(
    cert_dir: CertDir,
    pki: PKI,
    run_cli: RunCli,
    state_file: Path,
    responder: Responder,
) -> None:
    """Bundles with keys, good and failing, through every command: no key byte escapes."""
    paths = [cert_dir.add(name) for name in ("a", "b", "c")]
    keys = [key_pem(leaf.key) for leaf in cert_dir.leaves.values()]
    (cert_dir.path / "key-only.pem").write_bytes(keys[0])
    (cert_dir.path / "no-issuer.pem").write_bytes(
        pki.direct.leaf("x.test", ocsp_url=cert_dir.url).bundle_pem(chain=False)
    )
    responder.modes[parse_bundle(paths[2]).leaf.serial_number] = "tryLater"
    outputs = []
    for args in (
        ("refresh", "-vv", "--json"),
        ("refresh", "-v"),
        ("status", "--json"),
        ("status",),
        ("check",),
        ("renew", "--json", *paths[:2]),
    ):
        command = [args[0], *args[1:]]
        if args[0] != "renew":
            command.append(cert_dir.path)
        result = run_cli(*command)
        outputs.append(result.stdout + result.stderr)
        assert "Traceback" not in result.stderr
    written = all_bytes_under(state_file.parent, *cert_dir.path.glob("*.ocsp"))
    assert any(p.suffix == ".json" for p in written)
    key_lines = [line for key in keys for line in key.splitlines()[1:-1]]
    for text in outputs:
        assert KEY_MARKERS.search(text.encode()) is None
        assert not any(line.decode() in text for line in key_lines)
    for path, data in written.items():
        assert KEY_MARKERS.search(data) is None, path
        assert not any(line in data for line in key_lines), path


# -- modes and symlinks ----------------------------------------------------------------------


def test_staple_and_state_modes(cert_dir: CertDir, run_cli: RunCli, state_file: Path) -> None:
    cert_dir.add("site")
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    assert stat.S_IMODE(cert_dir.staple("site").stat().st_mode) == 0o644
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o640  # group-readable: monitoring
    assert stat.S_IMODE(Path(f"{state_file}.lock").stat().st_mode) == 0o640


def test_symlink_at_the_staple_path_is_replaced_not_followed(
    cert_dir: CertDir, run_cli: RunCli, tmp_path: Path
) -> None:
    cert_dir.add("site")
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not overwrite me")
    victim.chmod(0o600)
    cert_dir.staple("site").symlink_to(victim)
    result = run_cli("refresh", cert_dir.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert victim.read_bytes() == b"do not overwrite me"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not cert_dir.staple("site").is_symlink()
    assert cert_dir.staple("site").stat().st_size > 0


def test_symlink_to_a_valid_staple_elsewhere_is_still_replaced(
    cert_dir: CertDir, run_cli: RunCli, tmp_path: Path, responder: Responder
) -> None:
    """Even a link to a good staple is not written through: the real file stays as it was."""
    path = cert_dir.add("site")
    elsewhere = tmp_path / "elsewhere.ocsp"
    elsewhere.write_bytes(responder.answer(build_request(parse_bundle(path)))[2])
    before = elsewhere.read_bytes()
    cert_dir.staple("site").symlink_to(elsewhere)
    assert run_cli("refresh", cert_dir.path).exit_code == 0
    assert run_cli("renew", path).exit_code == 0
    assert elsewhere.read_bytes() == before
    assert not cert_dir.staple("site").is_symlink()
