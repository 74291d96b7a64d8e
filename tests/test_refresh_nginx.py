"""refresh with nginx as a target, against a real nginx started by each test with its own
configuration, pid file, error log and ports: every staple file its server blocks name
written before nginx starts, one reload per run that changed one, every name proved by a
real TLS handshake, and the refusals and traps said with nginx's own reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PKI, NginxHost
from cryptography.x509 import ocsp

from ocsptool.nginx.control import nginx_binary
from ocsptool.sources import nginx as nginx_source
from ocsptool.testing.haproxy import tls_staple
from ocsptool.testing.nginx import Nginx, free_port
from ocsptool.testing.responder import Responder

pytestmark = pytest.mark.nginx

Run = Callable[..., Any]


@pytest.fixture
def host(nginx_host: NginxHost) -> NginxHost:
    return nginx_host


def status_of(der: bytes | None) -> str:
    assert der is not None, "nginx stapled nothing"
    return ocsp.load_der_ocsp_response(der).certificate_status.name.lower()


def started(host: NginxHost, run_cli: Run) -> None:
    """The zero run, then nginx started on the files it wrote."""
    result = run_cli("refresh", "--nginx-config", host.nginx.config)
    assert result.exit_code == 0, result.output
    host.nginx.start()


# -- before nginx starts ----------------------------------------------------------------------


def test_bootstrap_writes_every_staple_file_so_nginx_can_start(
    host: NginxHost, run_cli: Run
) -> None:
    nginx = host.nginx
    refused = nginx.check()
    assert refused.returncode != 0 and "staples/" in refused.stderr  # no file: no start
    result = run_cli("refresh", "--nginx-config", nginx.config)
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        f"ocsptool: nginx {nginx.config}: {nginx.pid_file}: no such file; nginx is not "
        "running; 2 staple files written, which nginx reads when it starts\n"
    )
    for site in host.sites.values():
        assert status_of(site.staple.read_bytes()) == "good"
    nginx.start()
    for site in host.sites.values():
        for name in (site.name, f"www.{site.name}"):
            assert host.served(name) == site.staple.read_bytes()
            assert tls_staple(host.port, name) == site.staple.read_bytes()  # TLS 1.2 too
    again = run_cli("refresh", "--nginx-config", nginx.config)
    assert (again.exit_code, again.output) == (0, "")  # nginx read them at its start
    assert host.reloads == 0


# -- one reload, only when needed ------------------------------------------------------------


def test_a_revocation_reloads_once_and_is_served(
    host: NginxHost, run_cli: Run, responder: Responder
) -> None:
    started(host, run_cli)
    rsa_site, ec_site = host.sites["rsa.test"], host.sites["ec.test"]
    old_ec = ec_site.staple.read_bytes()
    responder.revoked.add(rsa_site.leaf.cert.serial_number)
    result = run_cli("refresh", "--force", "--nginx-config", host.nginx.config)
    assert result.exit_code == 1
    assert f"{rsa_site.cert}: REVOKED" in result.stderr
    assert host.reloads == 1
    for name in ("rsa.test", "www.rsa.test"):
        assert host.served(name) == rsa_site.staple.read_bytes()
        assert status_of(host.served(name)) == "revoked"
    assert ec_site.staple.read_bytes() != old_ec
    assert host.served("ec.test") == ec_site.staple.read_bytes()
    again = run_cli("refresh", "--nginx-config", host.nginx.config)
    assert again.exit_code == 1  # still revoked, said on every run
    assert host.reloads == 1  # nothing changed: nginx left alone


def test_the_same_bytes_again_reload_nothing(
    host: NginxHost, run_cli: Run, responder: Responder
) -> None:
    """A forced run whose responder answers with the bytes nginx serves already (a
    responder's cache does that) changes nothing nginx serves: no reload."""
    responder.presign = True  # one signed answer per certificate, served again
    started(host, run_cli)
    before = {s.name: s.staple.read_bytes() for s in host.sites.values()}
    result = run_cli("refresh", "--force", "--nginx-config", host.nginx.config)
    assert (result.exit_code, result.output) == (0, "")
    assert {s.name: s.staple.read_bytes() for s in host.sites.values()} == before
    assert host.reloads == 0


def test_a_refused_reload_says_why_keeps_serving_and_is_retried(
    host: NginxHost, run_cli: Run
) -> None:
    started(host, run_cli)
    site = host.sites["ec.test"]
    old = site.staple.read_bytes()
    broken = host.nginx.write("conf.d/zz-broken.conf", "bogus on;\n")
    result = run_cli("refresh", "--force", "--nginx-config", host.nginx.config)
    assert result.exit_code == 1
    reason = f'unknown directive "bogus" in {broken}:1'
    lines = result.stderr.splitlines()
    assert lines == [
        f"ocsptool: nginx {host.nginx.config}: {nginx_binary()} -t -q -c {host.nginx.config} "
        "failed, so "
        f"nginx was not reloaded: {reason}; nginx keeps serving the previous staples"
    ]
    new = site.staple.read_bytes()
    assert new != old and status_of(new) == "good"  # written, verified, nothing lost
    assert host.served("ec.test") == old  # nginx serves the previous one, unharmed
    assert host.reloads == 0  # nginx -t refused it: nothing was signalled
    status = run_cli("status", "--json", "--nginx-config", host.nginx.config)
    errors = {c["path"]: c["push_error"] for c in json.loads(status.stdout)["certificates"]}
    assert reason in str(errors[str(site.cert)])
    retried = run_cli("refresh", "--nginx-config", host.nginx.config)  # nothing due
    assert retried.exit_code == 1 and reason in retried.stderr
    broken.unlink()  # the operator fixes it
    fixed = run_cli("refresh", "--nginx-config", host.nginx.config)
    assert (fixed.exit_code, fixed.output) == (0, "")
    assert host.reloads == 1
    assert host.served("ec.test") == new
    assert run_cli("refresh", "--nginx-config", host.nginx.config).output == ""
    assert host.reloads == 1


def test_the_reload_command_of_the_operator(host: NginxHost, run_cli: Run) -> None:
    """``--nginx-reload`` (systemd: ``systemctl reload nginx``); here what Debian's unit
    runs, ``nginx -s reload``. No ``nginx -t`` of ocsptool's own."""
    started(host, run_cli)
    reload = " ".join([*host.nginx.argv("-s", "reload")])
    result = run_cli(
        "refresh", "--force", "--nginx-config", host.nginx.config, "--nginx-reload", reload
    )
    assert (result.exit_code, result.output) == (0, "")
    assert host.reloads == 1
    for site in host.sites.values():
        assert host.served(site.name) == site.staple.read_bytes()


def test_served_means_served(host: NginxHost, run_cli: Run, pki: PKI) -> None:
    """A name another block claims first (nginx warns "conflicting server name" and
    keeps the first): nginx does not staple what was written for it there, and that is
    the certificate's problem, with what nginx does serve."""
    site = host.sites["ec.test"]
    other = host.add("aa.test", pki.direct)  # conf.d/aa.test.conf: read first
    conf = host.nginx.dir / "conf.d/aa.test.conf"
    conf.write_text(conf.read_text().replace("www.aa.test", "www.aa.test www.ec.test"))
    started(host, run_cli)
    result = run_cli("refresh", "--force", "--nginx-config", host.nginx.config)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"ocsptool: {site.cert}: nginx {host.nginx.config}: www.ec.test on "
        f"127.0.0.1:{host.port}: nginx staples a different OCSP response than the one written"
    ]
    assert host.reloads == 1
    assert host.served("ec.test") == site.staple.read_bytes()
    assert host.served("www.ec.test") == other.staple.read_bytes()


# -- the traps -------------------------------------------------------------------------------


def test_a_block_of_rsa_and_ecdsa_sharing_one_file_is_refused_and_nothing_written(
    host: NginxHost, run_cli: Run, pki: PKI
) -> None:
    nginx = host.nginx
    dual = host.add("dual.test", pki.direct, rsa_key=True)
    ec_leaf = pki.direct.leaf("dual.test", ocsp_url=host.url)
    ec_cert, ec_key = ec_leaf.write_tls(nginx.dir / "tls")
    conf = nginx.dir / "conf.d/dual.test.conf"
    conf.write_text(
        conf.read_text().replace(
            "    ssl_stapling_file",
            f"    ssl_certificate {ec_cert};\n    ssl_certificate_key {ec_key};\n"
            "    ssl_stapling_file",
        )
    )
    result = run_cli("refresh", "--nginx-config", nginx.config)
    assert result.exit_code == 1
    (line,) = [ln for ln in result.stderr.splitlines() if "share one ssl_stapling_file" in ln]
    assert line == (
        f"ocsptool: {conf}:1: 2 certificates share one ssl_stapling_file "
        f"{nginx.dir}/staples/dual.test.ocsp ({conf}:8): {dual.cert} ({conf}:4), "
        f"{ec_cert} ({conf}:6); nginx staples that one response for each of them, so all "
        "but one get a response for another certificate; split the block into one server "
        "block per certificate, each with its own ssl_stapling_file, or remove "
        "ssl_stapling_file there and let nginx staple them itself"
    )
    assert not dual.staple.exists()
    assert not Path(f"{dual.cert}.ocsp").exists() and not Path(f"{ec_cert}.ocsp").exists()
    for name in ("rsa.test", "ec.test"):  # the other blocks are kept all the same
        assert status_of(host.sites[name].staple.read_bytes()) == "good"


def test_a_file_without_stapling_on_is_a_warning(host: NginxHost, run_cli: Run, pki: PKI) -> None:
    nginx = host.nginx
    off = host.add("off.test", pki.direct)
    conf = nginx.dir / "conf.d/off.test.conf"
    conf.write_text(conf.read_text().replace("}", "    ssl_stapling off;\n}"))
    result = run_cli("refresh", "--nginx-config", nginx.config)
    assert (result.exit_code, result.stderr.splitlines()) == (  # a warning, not a failure
        0,
        [
            f"ocsptool: {conf}:6: ssl_stapling_file {nginx.dir}/staples/off.test.ocsp has "
            f'no effect in the block at {conf}:1: without "ssl_stapling on;" nginx ignores '
            "the file; add it to the block",
            f"ocsptool: nginx {nginx.config}: {nginx.pid_file}: no such file; nginx is not "
            "running; 2 staple files written, which nginx reads when it starts",
        ],
    )
    assert not off.staple.exists()
    for name in ("rsa.test", "ec.test"):
        assert host.sites[name].staple.exists()


def test_a_configuration_with_nothing_to_keep_says_why(
    start_nginx: Callable[..., Nginx], pki: PKI, responder: Responder, run_cli: Run
) -> None:
    nginx = start_nginx(start=False)  # no ssl_stapling on anywhere
    site = NginxHost(nginx, free_port(), responder.url).add("site.test", pki.direct)
    conf = nginx.dir / "conf.d/site.test.conf"
    result = run_cli("refresh", "--nginx-config", nginx.config)
    assert (result.exit_code, result.stderr.splitlines()) == (
        1,
        [
            f"ocsptool: {nginx.config}: no certificate with an ssl_stapling_file to keep (a "
            'server block needs ssl_certificate, "ssl_stapling on;" and ssl_stapling_file)',
            f"ocsptool: {conf}:6: ssl_stapling_file {nginx.dir}/staples/site.test.ocsp has "
            f'no effect in the block at {conf}:1: without "ssl_stapling on;" nginx ignores '
            "the file; add it to the block",
        ],
    )
    assert not site.staple.exists()


# -- both servers on one host ----------------------------------------------------------------


def test_one_zero_argument_run_staples_haproxy_and_nginx(
    host: NginxHost,
    run_cli: Run,
    cert_dir: Any,
    start_haproxy: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ocsptool.sources import haproxy_config

    bundle = cert_dir.add("hap")
    proxy = start_haproxy(bundle)
    monkeypatch.setattr(haproxy_config, "DEFAULT_CONFIG", proxy.config)
    monkeypatch.setattr(nginx_source, "DEFAULT_CONFIG", host.nginx.config)
    result = run_cli("refresh")
    assert result.exit_code == 0, result.output
    assert "nginx is not running" in result.stderr  # the nginx was not started yet
    assert tls_staple(proxy.port, "hap.test") == cert_dir.staple("hap").read_bytes()
    host.nginx.start()
    for site in host.sites.values():
        assert host.served(site.name) == site.staple.read_bytes()
    forced = run_cli("refresh", "--force")
    assert (forced.exit_code, forced.output) == (0, "")
    assert host.reloads == 1
    assert tls_staple(proxy.port, "hap.test") == cert_dir.staple("hap").read_bytes()
    for site in host.sites.values():
        assert host.served(site.name) == site.staple.read_bytes()


def test_neither_default_is_a_usage_error_naming_both(run_cli: Run) -> None:
    from ocsptool.sources import haproxy_config

    result = run_cli("refresh")
    assert result.exit_code == 2
    assert (
        f"{haproxy_config.DEFAULT_CONFIG} does not exist and "
        f"{nginx_source.DEFAULT_CONFIG} does not exist"
    ) in result.stderr


def test_renew_one_certificate_reloads_once(host: NginxHost, run_cli: Run) -> None:
    started(host, run_cli)
    site, other = host.sites["ec.test"], host.sites["rsa.test"]
    before = other.staple.read_bytes()
    result = run_cli("renew", site.cert, "--nginx-config", host.nginx.config)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{site.cert}: fetched: good, ")
    assert f"pushed to {host.address}" in result.stdout
    assert host.reloads == 1
    assert host.served("ec.test") == site.staple.read_bytes()
    assert other.staple.read_bytes() == before  # nothing else touched


def test_a_reload_command_that_cannot_be_split_is_a_usage_error(run_cli: Run) -> None:
    result = run_cli("refresh", "--nginx-reload", "systemctl 'reload nginx")
    assert result.exit_code == 2
    assert result.stderr == (
        'ocsptool: --nginx-reload: cannot split "systemctl \'reload nginx" into words: '
        "No closing quotation\n"
    )


def test_the_issuer_from_ssl_trusted_certificate(host: NginxHost, run_cli: Run, pki: PKI) -> None:
    """A block whose ssl_certificate holds the leaf alone, its issuer in the file
    ssl_trusted_certificate names (with other CAs): ocsptool takes the issuer from there,
    as nginx does, and the staple is served."""
    site = host.sites["ec.test"]
    leaf_only = site.cert.with_name("ec-leaf.crt")
    leaf_only.write_bytes(site.leaf.bundle_pem(chain=False, key=False))
    trusted = host.nginx.dir / "tls" / "trusted.pem"
    trusted.write_bytes(pki.root.pem + pki.direct.pem + pki.delegated.pem)
    conf = host.nginx.dir / "conf.d/ec.test.conf"
    conf.write_text(
        conf.read_text()
        .replace(str(site.cert), str(leaf_only))
        .replace(
            "    ssl_stapling_file",
            f"    ssl_trusted_certificate {trusted};\n    ssl_stapling_file",
        )
    )
    started(host, run_cli)
    assert status_of(site.staple.read_bytes()) == "good"
    assert host.served("ec.test") == site.staple.read_bytes()
    shown = run_cli("show", "--nginx-config", host.nginx.config, leaf_only)
    assert f"issuer from: {trusted}" in " ".join(shown.stdout.split())
