"""status, status --live, check and show for certificates a real nginx staples from the files
ocsptool keeps: nginx as the stapler, what it serves beside the disk, and the alarm on a
staple file nginx would serve past its nextUpdate."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PKI, NginxHost
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsptool.testing.responder import Responder

pytestmark = pytest.mark.nginx

Run = Callable[..., Any]
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def host(nginx_host: NginxHost, run_cli: Run) -> NginxHost:
    """Both sites stapled (the zero run), then nginx started on the files."""
    result = run_cli("refresh", "--nginx-config", nginx_host.nginx.config)
    assert result.exit_code == 0, result.output
    nginx_host.nginx.start()
    return nginx_host


def rows(run_cli: Run, *args: object) -> tuple[int, dict[str, dict[str, Any]]]:
    result = run_cli("status", "--json", *args)
    data = json.loads(result.stdout)
    return result.exit_code, {Path(c["path"]).name: c for c in data["certificates"]}


def column(stdout: str, name: str) -> dict[str, str]:
    """A column of the plain table (off a terminal), per certificate name."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("certificate"))
    start = lines[header].index(name)
    return {
        line.split()[0]: line[start:].split("  ")[0].strip()
        for line in lines[header + 1 :]
        if line.strip() and not line.startswith(("/", "checked "))
    }


def staple(ca: Any, leaf: x509.Certificate, this: Any, next_: Any) -> bytes:
    """A good response for ``leaf`` with these times, signed by ``ca``."""
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf,
        issuer=ca.cert,
        algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=this,
        next_update=next_,
        revocation_time=None,
        revocation_reason=None,
    )
    response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert).sign(
        ca.key, hashes.SHA256()
    )
    return response.public_bytes(serialization.Encoding.DER)


# -- status ----------------------------------------------------------------------------------


def test_status_shows_nginx_as_the_stapler(host: NginxHost, run_cli: Run) -> None:
    config = host.nginx.config
    result = run_cli("status", "--nginx-config", config)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("● all good: 2 certificates, 2 with OCSP stapling\n")
    assert column(result.stdout, "stapler") == {"ec.test": "nginx", "rsa.test": "nginx"}
    code, found = rows(run_cli, "--nginx-config", config)
    assert code == 0
    assert {name: (row["nginx"], row["haproxy"]) for name, row in found.items()} == {
        "ec.test.crt": ([host.address], []),
        "rsa.test.crt": ([host.address], []),
    }


def test_status_live_compares_what_nginx_serves_with_the_files(
    host: NginxHost, run_cli: Run
) -> None:
    config = host.nginx.config
    result = run_cli("status", "--live", "--nginx-config", config)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"checked nginx {config}: 2 of 2 serve the staple on disk"
    )
    assert column(result.stdout, "stapler") == {"ec.test": "nginx: same", "rsa.test": "nginx: same"}
    # a reload nginx refuses: the new files wait on disk, nginx serves the older staples
    time.sleep(1.1)  # a new thisUpdate (the responder's times are whole seconds)
    broken = host.nginx.write("conf.d/zz-broken.conf", "bogus on;\n")
    assert run_cli("refresh", "--force", "--nginx-config", config).exit_code == 1
    code, found = rows(run_cli, "--live", "--nginx-config", config)
    assert code == 1
    ec = found["ec.test.crt"]
    assert [(f["stapler"], f["served"]) for f in ec["served_by"]] == [("nginx", "older")]
    file = host.sites["ec.test"].staple
    older = [line for line in ec["live"] if "serves an older staple" in line]
    assert len(older) == 2  # both names
    assert re.fullmatch(
        rf"nginx {config} serves an older staple \(thisUpdate \S+\) than its file {file} "
        rf"\(\S+\): nginx was not reloaded since; run `ocsptool refresh` \(it reloads nginx\) "
        rf"for ec.test on 127.0.0.1:{host.port}",
        older[0],
    )
    broken.unlink()
    assert run_cli("refresh", "--nginx-config", config).exit_code == 0  # the pending reload
    result = run_cli("status", "--live", "--nginx-config", config)
    assert result.exit_code == 0, result.output


def test_status_live_of_an_nginx_that_is_down(nginx_host: NginxHost, run_cli: Run) -> None:
    config = nginx_host.nginx.config
    assert run_cli("refresh", "--nginx-config", config).exit_code == 0
    result = run_cli("status", "--live", "--nginx-config", config)
    assert result.exit_code == 1
    assert (
        f"{config}: could not check what nginx serves: {nginx_host.nginx.pid_file}: no such "
        "file; nginx is not running"
    ) in result.stdout


def test_a_block_nginx_staples_itself_is_shown_never_fetched(
    host: NginxHost, run_cli: Run, pki: PKI, responder: Responder
) -> None:
    config = host.nginx.config
    own = host.add("own.test", pki.direct)
    conf = host.nginx.dir / "conf.d/own.test.conf"
    conf.write_text(conf.read_text().replace("    ssl_stapling_file staples/own.test.ocsp;\n", ""))
    asked = responder.requests
    result = run_cli("refresh", "--nginx-config", config)
    assert (result.exit_code, result.output) == (0, "")
    assert responder.requests == asked  # nginx asks for it itself: nothing fetched, or written
    assert not own.staple.exists() and not Path(f"{own.cert}.ocsp").exists()
    result = run_cli("status", "--nginx-config", config)
    assert result.exit_code == 0, result.output
    assert column(result.stdout, "stapler")["own.test"] == "nginx itself"
    code, found = rows(run_cli, "--nginx-config", config)
    assert code == 0
    row = found["own.test.crt"]
    assert (row["itself"], row["severity"], row["problems"], row["reason"]) == (
        f"nginx {config}",
        "ok",
        [],
        f"nginx {config} staples it itself",
    )
    shown = run_cli("show", own.cert, "--nginx-config", config)
    assert shown.exit_code == 0, shown.output
    assert re.search(
        rf"^nginx:\s+{re.escape(str(config))}: ssl_stapling on, no ssl_stapling_file: nginx "
        "staples it itself$",
        shown.stdout,
        flags=re.MULTILINE,
    )


# -- check: the expiry alarm -------------------------------------------------------------------


def test_check_warns_well_before_the_file_expires(
    nginx_host: NginxHost, run_cli: Run, responder: Responder
) -> None:
    """A staple three quarters through its window: nginx would serve it as it is until
    it expires, so check says so long before its nextUpdate (a day here, for 4 days)."""
    config = nginx_host.nginx.config
    responder.mode = "stale"  # thisUpdate 3 days ago, nextUpdate in a day
    assert run_cli("refresh", "--nginx-config", config).exit_code == 0
    result = run_cli("check", "--nginx-config", config)
    assert result.exit_code == 1, result.output
    assert re.match(
        r"OCSP WARNING - (ec|rsa)\.test: nginx serves this staple file until it is replaced, "
        r"and it expires in 24 h \(nextUpdate \S+\); it should have been refreshed long ago: "
        r"is `ocsptool refresh` running\? \(\+1 more\) \|",
        result.stdout,
    ), result.stdout


def test_check_is_critical_once_nginx_serves_an_expired_file(
    host: NginxHost, run_cli: Run, pki: PKI
) -> None:
    config = host.nginx.config
    site = host.sites["rsa.test"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expired = staple(pki.direct, site.leaf.cert, now - dt.timedelta(days=4), now - HOUR)
    site.staple.with_suffix(".new").write_bytes(expired)  # replaced, as every writer does
    site.staple.with_suffix(".new").replace(site.staple)
    result = run_cli("check", "--nginx-config", config)
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith(
        f"OCSP CRITICAL - rsa.test: nginx serves this staple file as it is, expired since "
        f"{now - HOUR:%Y-%m-%dT%H:%M:%SZ}: clients that check it see an expired OCSP "
        "response; run `ocsptool refresh` (it reloads nginx once the new staple is written) |"
    ), result.stdout


# -- show ------------------------------------------------------------------------------------


def test_show_names_the_nginx_and_its_staple_file(host: NginxHost, run_cli: Run) -> None:
    config = host.nginx.config
    site = host.sites["ec.test"]
    conf = host.nginx.dir / "conf.d/ec.test.conf"
    result = run_cli("show", site.cert, "--nginx-config", config)
    assert result.exit_code == 0, result.output
    fields = dict(re.findall(r"^([\w ]+):\s+(.*)$", result.stdout, flags=re.MULTILINE))
    assert fields["nginx"] == f"{config}: ssl_stapling_file {site.staple} ({conf}:6)"
    assert (fields["staple file"], fields["staple"]) == (str(site.staple), "good")
