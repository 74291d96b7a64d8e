"""Responders in the wild, through the CLI: failover, overrides, --responder, per-host pacing,
--ca-bundle and --proxy, and short-lived certificates. Real loopback responders and proxy."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ocsptool.testing.haproxy import free_port
from ocsptool.testing.pki import Authority
from ocsptool.testing.proxy import Proxy
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, CertDir
from tests.conftest import RunCli as Run


def _dead_url() -> tuple[str, str]:
    """An OCSP URL on a loopback port nothing listens on, and its ``host:port``."""
    host = f"127.0.0.1:{free_port()}"
    return f"http://{host}/ocsp", host


def _host(url: str) -> str:
    return url.split("/")[2]


def _record(state_file: Path, path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(state_file.read_text())["certs"][str(path)]
    return record


@pytest.fixture
def make_responder(pki: PKI) -> Iterator[Callable[..., Responder]]:
    """More responders, each on its own port: ``make_responder(mode="http500")``."""
    with ExitStack() as stack:

        def make(**options: Any) -> Responder:
            r = Responder(**options)
            r.add_issuer(pki.direct)
            stack.enter_context(r.serving())
            return r

        yield make


def _leaf(pki: PKI, directory: Path, name: str, urls: list[str], **options: Any) -> Path:
    leaf = pki.direct.leaf(f"{name}.test", ocsp_url=urls, **options)
    return leaf.write_bundle(directory / f"{name}.pem")


# -- failover --------------------------------------------------------------------------------


def test_first_responder_down_is_stapled_from_the_second(
    run_cli: Run, cert_dir: CertDir, responder: Responder, state_file: Path
) -> None:
    dead, _ = _dead_url()
    path = _leaf(cert_dir.pki, cert_dir.path, "two", [dead, responder.url])

    result = run_cli("refresh", cert_dir.path)

    assert (result.exit_code, result.stderr) == (0, "")
    assert Path(f"{path}.ocsp").exists()
    assert responder.requests == 1
    assert _record(state_file, path)["responder"] == responder.url


def test_the_next_run_starts_with_the_responder_that_worked(
    run_cli: Run, cert_dir: CertDir, make_responder: Callable[..., Responder], state_file: Path
) -> None:
    first, second, third = make_responder(mode="http500"), make_responder(), make_responder()
    path = _leaf(cert_dir.pki, cert_dir.path, "three", [first.url, second.url, third.url])

    assert run_cli("refresh", cert_dir.path).exit_code == 0
    assert (first.requests, second.requests, third.requests) == (1, 1, 0)
    renewed = run_cli("renew", path)
    assert renewed.exit_code == 0, renewed.output
    assert (first.requests, second.requests, third.requests) == (1, 2, 0)
    assert _record(state_file, path)["responder"] == second.url


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("http500", "HTTP 500"),
        ("garbage", "not an OCSP response (HTML page)"),
        ("hang", "timed out waiting for {host} to answer"),
    ],
)
def test_second_of_two_after_the_first_fails(  # noqa: PLR0917 - fixtures and parameters
    run_cli: Run,
    cert_dir: CertDir,
    make_responder: Callable[..., Responder],
    state_file: Path,
    mode: str,
    cause: str,
) -> None:
    bad = make_responder(mode=mode)
    path = _leaf(cert_dir.pki, cert_dir.path, "two", [bad.url, cert_dir.url])

    result = run_cli("refresh", "--timeout", "0.5", cert_dir.path)

    assert (result.exit_code, result.stderr) == (0, "")
    assert _record(state_file, path)["responder"] == cert_dir.url


def test_when_every_responder_fails_each_cause_is_named(
    run_cli: Run, cert_dir: CertDir, make_responder: Callable[..., Responder], state_file: Path
) -> None:
    dead, dead_host = _dead_url()
    busy = make_responder(mode="http503")
    refusing = make_responder(mode="unauthorized")
    path = _leaf(cert_dir.pki, cert_dir.path, "none", [dead, busy.url, refusing.url])

    result = run_cli("refresh", cert_dir.path)

    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {path}: {dead}: connection refused by {dead_host}; "
        f"{busy.url}: HTTP 503 (Retry-After: 120 s); "
        f"{refusing.url}: responder said unauthorized\n"
    )
    assert not Path(f"{path}.ocsp").exists()
    record = _record(state_file, path)
    assert record["failures"] == 1 and "responder" not in record


# -- overrides -------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["subject", "rfc4514", "key_id"])
def test_override_in_the_config_file_to_a_responder_on_another_port(  # noqa: PLR0917
    run_cli: Run,
    cert_dir: CertDir,
    responder: Responder,
    state_file: Path,
    tmp_path: Path,
    by: str,
) -> None:
    dead, _ = _dead_url()
    path = _leaf(cert_dir.pki, cert_dir.path, "private", [dead])
    ca = cert_dir.pki.direct.cert
    issuer = {
        "subject": "CN=Direct Intermediate",
        "rfc4514": ca.subject.rfc4514_string(),
        "key_id": _ski(ca),
    }[by]
    config = tmp_path / "config.toml"
    config.write_text(f'[responder_overrides]\n"{issuer}" = "{responder.url}"\n')

    result = run_cli("--config", config, "refresh", "--state", state_file, cert_dir.path)

    assert (result.exit_code, result.stderr) == (0, "")
    assert responder.requests == 1
    record = _record(state_file, path)
    assert (record["url"], record["responder"]) == (responder.url, responder.url)
    dry = run_cli("--config", config, "renew", "--dry-run", path)
    assert dry.exit_code == 0, dry.output
    assert f"\nresponder:          {responder.url}\n" in dry.stdout
    assert responder.requests == 2


def _ski(cert: Any) -> str:
    from cryptography import x509

    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return ":".join(f"{b:02x}" for b in ski)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'responder_overrides = "http://x/"',
            "responder_overrides: must be a table of issuer = URL, "
            'e.g. [responder_overrides] "CN=Example CA" = "http://..."',
        ),
        (
            '[responder_overrides]\n"CN=X" = "ftp://x/"',
            "responder_overrides: 'CN=X': refusing ftp URL 'ftp://x/': only http and https",
        ),
        (
            '[responder_overrides]\n"zz" = "http://x/"',
            "responder_overrides: 'zz': not a key identifier in hex (e.g. 6a:3f:...) nor an "
            "issuer name (e.g. CN=Example CA)",
        ),
    ],
)
def test_a_bad_override_names_the_file_and_the_key(
    run_cli: Run, tmp_path: Path, state_file: Path, text: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text + "\n")
    result = run_cli("--config", config, "refresh", "--state", state_file, tmp_path)
    assert (result.exit_code, result.stderr) == (2, f"ocsptool: {config}: {message}\n")


def test_renew_responder_asks_that_url_instead(
    run_cli: Run, cert_dir: CertDir, responder: Responder, state_file: Path
) -> None:
    dead, dead_host = _dead_url()
    path = _leaf(cert_dir.pki, cert_dir.path, "debug", [dead])

    failed = run_cli("renew", path)
    assert failed.exit_code == 1
    assert failed.stderr == f"ocsptool: {path}: {dead}: connection refused by {dead_host}\n"

    dry = run_cli("renew", "--dry-run", "--responder", responder.url, path)
    assert dry.exit_code == 0, dry.output
    assert f"\nresponder:          {responder.url}\n" in dry.stdout
    assert not Path(f"{path}.ocsp").exists()

    result = run_cli("renew", "--responder", responder.url, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path}: fetched: good, valid until ")
    assert Path(f"{path}.ocsp").exists()
    assert responder.requests == 2


def test_renew_responder_must_be_an_http_url(run_cli: Run, cert_dir: CertDir) -> None:
    path = cert_dir.add("x")
    result = run_cli("renew", "--responder", "ftp://ocsp.test/", path)
    assert result.exit_code == 2
    assert result.stderr == (
        "ocsptool: --responder: refusing ftp URL 'ftp://ocsp.test/': only http and https\n"
    )


# -- per-host pacing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "env", "peak"),
    [
        (("--jobs", "8", "--jobs-per-host", "2"), {}, 2),
        (("--jobs", "8"), {}, 4),  # the default jobs_per_host
        (("--jobs", "3"), {}, 3),  # under the global --jobs
        (("--jobs", "8"), {"OCSPTOOL_JOBS_PER_HOST": "3"}, 3),
    ],
)
def test_jobs_per_host_bounds_the_requests_in_flight_to_one_host(  # noqa: PLR0917
    run_cli: Run,
    cert_dir: CertDir,
    responder: Responder,
    monkeypatch: pytest.MonkeyPatch,
    options: tuple[str, ...],
    env: dict[str, str],
    peak: int,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for i in range(16):
        cert_dir.add(f"c{i}")
    responder.delay_ms = 150

    result = run_cli("refresh", *options, cert_dir.path)

    assert (result.exit_code, result.stderr) == (0, "")
    assert responder.peak == {_host(responder.url): peak}


def test_jobs_per_host_in_the_config_file(
    run_cli: Run, cert_dir: CertDir, responder: Responder, state_file: Path, tmp_path: Path
) -> None:
    for i in range(12):
        cert_dir.add(f"c{i}")
    responder.delay_ms = 150
    config = tmp_path / "config.toml"
    config.write_text("jobs = 8\njobs_per_host = 2\n")

    result = run_cli("--config", config, "refresh", "--state", state_file, cert_dir.path)

    assert (result.exit_code, result.stderr) == (0, "")
    assert responder.peak == {_host(responder.url): 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'jobs_per_host = "4"',
            "must be a whole number without quotes, e.g. jobs_per_host = 4, got '4'",
        ),
        ("jobs_per_host = 0", "must be at least 1, got 0"),
    ],
)
def test_a_bad_jobs_per_host(
    run_cli: Run, tmp_path: Path, state_file: Path, text: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text + "\n")
    result = run_cli("--config", config, "refresh", "--state", state_file, tmp_path)
    assert (result.exit_code, result.stderr) == (
        2,
        f"ocsptool: {config}: jobs_per_host: {message}\n",
    )


# -- HTTPS responders with a private CA, and proxies ------------------------------------------


@pytest.fixture(scope="module")
def private_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Path, Path]]:
    """A private CA's bundle file, and a ``localhost`` server identity it issued."""
    directory = tmp_path_factory.mktemp("private-tls")
    root = Authority.root("Private TLS Root")
    bundle = directory / "ca.pem"
    bundle.write_bytes(root.pem)
    return bundle, root.leaf("localhost", ocsp_url=None).write_tls(directory)


@pytest.fixture
def https_url(pki: PKI, private_tls: tuple[Path, tuple[Path, Path]]) -> Iterator[str]:
    r = Responder()
    r.add_issuer(pki.direct)
    with r.serving(tls=private_tls[1]) as url:
        yield url.replace("127.0.0.1", "localhost")


@pytest.fixture
def no_env_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


@pytest.mark.usefixtures("no_env_tls")
def test_ca_bundle_for_an_https_responder_with_a_private_ca(  # noqa: PLR0917 - fixtures
    run_cli: Run,
    pki: PKI,
    tmp_path: Path,
    state_file: Path,
    https_url: str,
    private_tls: tuple[Path, tuple[Path, Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    path = _leaf(pki, certs, "private", [https_url])
    host = _host(https_url)

    untrusted = run_cli("refresh", certs)
    assert untrusted.exit_code == 1
    assert untrusted.stderr == (
        f"ocsptool: {path}: {https_url}: TLS error talking to {host}: "
        "certificate verify failed: self-signed certificate in certificate chain "
        "(a private CA? pass its certificate with --ca-bundle or ca_bundle)\n"
    )

    trusted = run_cli("renew", "--ca-bundle", private_tls[0], path)
    assert trusted.exit_code == 0, trusted.output

    config = tmp_path / "config.toml"
    config.write_text(f'ca_bundle = "{private_tls[0]}"\n')
    from_file = run_cli("--config", config, "renew", "--state", state_file, path)
    assert from_file.exit_code == 0, from_file.output

    monkeypatch.setenv("OCSPTOOL_CA_BUNDLE", str(private_tls[0]))
    assert run_cli("renew", path).exit_code == 0


def test_a_bad_ca_bundle_is_a_usage_error(run_cli: Run, tmp_path: Path, state_file: Path) -> None:
    missing = tmp_path / "missing.pem"
    flag = run_cli("refresh", "--ca-bundle", missing, tmp_path)
    assert flag.exit_code == 2
    assert flag.stderr == f"ocsptool: --ca-bundle: {missing}: no such file\n"

    (tmp_path / "key.pem").write_text("not a certificate\n")
    config = tmp_path / "config.toml"
    config.write_text('ca_bundle = "key.pem"\n')
    from_file = run_cli("--config", config, "refresh", "--state", state_file, tmp_path)
    assert (from_file.exit_code, from_file.stderr) == (
        2,
        f"ocsptool: {config}: ca_bundle: {tmp_path / 'key.pem'}: "
        "not a certificate (neither PEM nor DER), got 'key.pem'\n",
    )


@pytest.mark.usefixtures("no_env_tls")
def test_proxy_carries_the_requests(
    run_cli: Run, cert_dir: CertDir, responder: Responder, tmp_path: Path, state_file: Path
) -> None:
    path = cert_dir.add("proxied")
    proxy = Proxy()
    with proxy.serving() as proxy_url:
        result = run_cli("refresh", "--proxy", proxy_url, cert_dir.path)
        assert (result.exit_code, result.stderr) == (0, "")
        assert len(proxy.carried) == 1 and proxy.carried[0].startswith(f"GET {responder.url}/")

        config = tmp_path / "config.toml"
        config.write_text(f'proxy = "{proxy_url}"\n')
        renewed = run_cli("--config", config, "renew", "--state", state_file, path)
        assert renewed.exit_code == 0, renewed.output
        assert len(proxy.carried) == 2


@pytest.mark.usefixtures("no_env_tls")
def test_a_failing_proxy_is_blamed_not_the_responder(
    run_cli: Run, cert_dir: CertDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cert_dir.add("proxied")
    proxy_url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OCSPTOOL_PROXY", proxy_url)

    result = run_cli("refresh", cert_dir.path)

    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {path}: {cert_dir.url}: proxy {proxy_url}: connection refused\n"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://proxy.test:21", "expected http://HOST:PORT (or https://)"),
        ("http://", "no host; expected http://HOST:PORT"),
    ],
)
def test_a_bad_proxy_is_a_usage_error(
    run_cli: Run, tmp_path: Path, state_file: Path, value: str, problem: str
) -> None:
    flag = run_cli("refresh", "--proxy", value, tmp_path)
    assert flag.exit_code == 2
    assert flag.stderr == f"ocsptool: --proxy: {problem}\n"
    config = tmp_path / "config.toml"
    config.write_text(f'proxy = "{value}"\n')
    from_file = run_cli("--config", config, "renew", "--state", state_file, tmp_path / "x.pem")
    assert (from_file.exit_code, from_file.stderr) == (
        2,
        f"ocsptool: {config}: proxy: {problem}, got {value!r}\n",
    )


# -- short-lived certificates and short responses ---------------------------------------------


def test_a_short_lived_certificate_is_never_scheduled_after_its_expiry(
    run_cli: Run, cert_dir: CertDir, state_file: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    not_after = (now + dt.timedelta(hours=6)).replace(microsecond=0)
    path = cert_dir.add("short", not_after=not_after)  # the staple is valid for 4 days

    result = run_cli("refresh", cert_dir.path)

    assert result.exit_code == 0
    record = _record(state_file, path)
    assert record["due"] == int(not_after.timestamp())  # not the staple's midpoint, 2 days on
    next_update = dt.datetime.fromtimestamp(record["staple"]["next_update"], dt.UTC)
    assert result.stderr == (
        f"ocsptool: {path}: response nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ} lies beyond "
        f"the certificate's expiry {not_after:%Y-%m-%dT%H:%M:%SZ}; renew the certificate "
        "before then\n"
    )
    # Said once per new staple: a run with nothing to fetch is silent.
    again = run_cli("refresh", cert_dir.path)
    assert (again.exit_code, again.stderr) == (0, "")


def test_a_retry_is_never_planned_after_the_expiry(
    run_cli: Run, cert_dir: CertDir, responder: Responder, state_file: Path
) -> None:
    not_after = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).replace(microsecond=0)
    path = cert_dir.add("soon", not_after=not_after)
    responder.mode = "http500"

    assert run_cli("refresh", cert_dir.path).exit_code == 1
    assert _record(state_file, path)["due"] == int(not_after.timestamp())  # not 5 min later


def test_a_short_response_is_a_note_not_a_failure(
    run_cli: Run, cert_dir: CertDir, responder: Responder, state_file: Path
) -> None:
    path = cert_dir.add("brief")
    responder.validity = dt.timedelta(minutes=40)  # thisUpdate is a minute back: 40 min window

    result = run_cli("refresh", cert_dir.path)

    assert result.exit_code == 0
    assert result.stderr == (
        f"ocsptool: {path}: response valid for only 40 min (thisUpdate to nextUpdate); "
        "run refresh at least every 5 min to keep a staple\n"
    )
    assert Path(f"{path}.ocsp").exists()
    quiet = run_cli("renew", "-q", path)
    assert (quiet.exit_code, quiet.stderr) == (0, "")
