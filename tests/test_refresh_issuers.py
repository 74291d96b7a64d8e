"""A leaf-only bundle through the CLI: the issuer via AIA caIssuers on refresh and renew,
written as ``<cert>.issuer``, sent to a real HAProxy with the first staple."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.issuers import CaIssuers
from ocsptool.testing.responder import Responder
from tests.conftest import PKI
from tests.conftest import RunCli as Run

CHAIN_NOTE = (
    "ocsptool: aia.pem: the bundle lacks its chain; fetched the issuer CN=Direct Intermediate "
    "from {url} into aia.pem.issuer (TLS clients may fail to build the chain too: append the "
    "intermediate)\n"
)


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    path = tmp_path / "certs"
    path.mkdir()
    return path


def _leaf_only(pki: PKI, certs: Path, ocsp_url: str, ca_issuers: str) -> Path:
    leaf = pki.direct.leaf("aia.test", ocsp_url=ocsp_url, ca_issuers=ca_issuers)
    return leaf.write_bundle(certs / "aia.pem", chain=False)


def _issuer_pem(pki: PKI) -> bytes:
    return pki.direct.cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("command", ["refresh", "renew"])
def test_a_leaf_only_bundle_gets_its_issuer_and_a_staple_on_the_first_run(  # noqa: PLR0917
    run_cli: Run,
    pki: PKI,
    server: CaIssuers,
    responder: Responder,
    certs: Path,
    command: str,
) -> None:
    url = server.url("ca.p7c")
    path = _leaf_only(pki, certs, responder.url, url)

    result = run_cli(command, certs if command == "refresh" else path)

    assert result.exit_code == 0, result.output
    assert result.stderr == CHAIN_NOTE.format(url=url)
    assert Path(f"{path}.issuer").read_bytes() == _issuer_pem(pki)
    assert Path(f"{path}.issuer").stat().st_mode & 0o777 == 0o644
    assert Path(f"{path}.ocsp").exists()
    assert server.requests == ["/ca.p7c"]

    # The file is the cache: no fetch, no note again, on refresh and renew alike.
    again = run_cli("renew", path)
    assert (again.exit_code, again.stderr) == (0, "")
    quiet = run_cli("refresh", certs)
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    assert server.requests == ["/ca.p7c"]
    assert responder.requests == 2


def test_status_check_and_show_fetch_nothing(
    run_cli: Run, pki: PKI, server: CaIssuers, responder: Responder, certs: Path
) -> None:
    path = _leaf_only(pki, certs, responder.url, server.url("ca.der"))
    assert run_cli("status", certs).exit_code == 1
    assert run_cli("check", certs).exit_code == 3  # UNKNOWN: no state yet
    assert run_cli("show", path).exit_code == 1
    assert (server.requests, responder.requests) == ([], 0)
    assert not Path(f"{path}.issuer").exists()


@pytest.mark.parametrize(
    ("route", "cause"),
    [
        ("garbage", "not a certificate (got HTML or XML)"),
        ("other.der", "CN=Stranger CA did not issue this certificate"),
        ("loop", "redirect loop at {url}"),
        ("huge", "response of 20971520 bytes is over the 65536-byte cap"),
        ("missing", "HTTP 404"),
    ],
)
def test_an_unusable_answer_is_one_line_and_writes_nothing(  # noqa: PLR0917
    run_cli: Run,
    pki: PKI,
    server: CaIssuers,
    responder: Responder,
    certs: Path,
    route: str,
    cause: str,
) -> None:
    url = server.url(route)
    path = _leaf_only(pki, certs, responder.url, url)

    result = run_cli("refresh", certs)

    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {path}: issuer CN=Direct Intermediate via caIssuers: "
        f"{url}: {cause.format(url=url)}\n"
    )
    assert sorted(p.name for p in certs.iterdir()) == ["aia.pem"]
    assert responder.requests == 0


@pytest.mark.parametrize(("route", "retried"), [("missing", True), ("other.der", False)])
def test_a_fetch_that_failed_is_retried_when_due_garbage_is_not(  # noqa: PLR0917
    run_cli: Run,
    pki: PKI,
    server: CaIssuers,
    responder: Responder,
    certs: Path,
    state_file: Path,
    route: str,
    retried: bool,
) -> None:
    path = _leaf_only(pki, certs, responder.url, server.url(route))
    first = run_cli("refresh", certs)
    assert first.exit_code == 1
    again = run_cli("refresh", certs)
    assert (again.exit_code, again.stderr) == (1, first.stderr)  # not due yet: not asked
    assert server.requests == [f"/{route}"]

    state = json.loads(state_file.read_text())
    record = state["certs"][str(path)]
    assert ("due" in record, record.get("failures")) == ((True, 1) if retried else (False, None))
    if retried:
        record["due"] = 0  # five minutes later
    state_file.write_text(json.dumps(state))
    Path(str(state_file) + ".index").unlink(missing_ok=True)

    later = run_cli("refresh", certs)
    assert (later.exit_code, later.stderr) == (1, first.stderr)
    assert server.requests == [f"/{route}"] * (2 if retried else 1)
    if retried:
        assert json.loads(state_file.read_text())["certs"][str(path)]["failures"] == 2


def test_a_leaf_without_caissuers_says_what_to_do(
    run_cli: Run, pki: PKI, responder: Responder, certs: Path
) -> None:
    leaf = pki.direct.leaf("aia.test", ocsp_url=responder.url)
    path = leaf.write_bundle(certs / "aia.pem", chain=False)
    result = run_cli("refresh", certs)
    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {path}: issuer CN=Direct Intermediate not found in the bundle; append the "
        "intermediate certificate or put it in aia.pem.issuer\n"
    )


@pytest.mark.haproxy
def test_haproxy_serves_the_staple_of_a_leaf_only_bundle_after_the_first_run(  # noqa: PLR0917
    run_cli: Run,
    pki: PKI,
    server: CaIssuers,
    responder: Responder,
    certs: Path,
    start_haproxy: Callable[..., HAProxy],
) -> None:
    path = _leaf_only(pki, certs, responder.url, server.url("ca.der"))
    proxy = start_haproxy(path)
    assert tls_staple(proxy.port, "aia.test") is None

    result = run_cli("refresh", "-s", proxy.socket, certs)

    assert result.exit_code == 0, result.output
    assert result.stderr == CHAIN_NOTE.format(url=server.url("ca.der"))
    staple = Path(f"{path}.ocsp").read_bytes()
    assert tls_staple(proxy.port, "aia.test") == staple
    proxy.restart()  # from <cert>, <cert>.issuer and <cert>.ocsp on disk
    assert tls_staple(proxy.port, "aia.test") == staple
    again = run_cli("refresh", "-s", proxy.socket, certs)
    assert (again.exit_code, again.stderr) == (0, "")
    assert server.requests == ["/ca.der"]
