"""What a running nginx staples, beside the staple files on disk (``status --live``).

For each certificate an nginx staples from a file ocsptool keeps, one TLS handshake per
server name of the blocks that read the file (``served.probes``) returns what nginx
serves, compared with the file as ``status --live`` compares HAProxy's answers: the
same bytes, older (nginx has not been reloaded since the file was written), expired,
another status, or nothing at all.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocsptool.haproxy import ServedStaple
    from ocsptool.nginx.served import Probe
    from ocsptool.status import StatusReport
    from ocsptool.view import CertStatus, LiveCheck, LiveFact


def check_nginx(
    report: StatusReport, address: str, now: dt.datetime, timeout: float = 10.0
) -> LiveCheck:
    """Ask the nginx behind ``address`` (``nginx:<configuration>``) what it staples for
    each certificate of ``report`` it serves from a file; note every difference on the
    certificate (``CertStatus.live``, ``served_by``)."""
    from ocsptool.errors import OcspToolError
    from ocsptool.nginx import read_nginx_config
    from ocsptool.nginx.control import master_pid
    from ocsptool.sinks.nginx import config_of, probes_of
    from ocsptool.view import LiveCheck

    config = config_of(address)
    label = f"nginx {config}"
    try:
        conf = read_nginx_config(Path(config))
        master_pid(conf.pid_path)
    except OcspToolError as e:
        return LiveCheck(address, error=str(e), label=label)
    probes = probes_of(conf)
    certificates = matched = not_loaded = 0
    for cert in report.certs:
        if address not in cert.nginx or not cert.ocsp_url or cert.cert_error:
            continue
        staple_path = report.inventory.staple_path(cert.path)
        asked = probes.get((cert.path, os.path.abspath(staple_path)), ())
        if not asked:
            not_loaded += 1  # no name a handshake can ask for
            continue
        try:
            facts = _facts(
                cert, address, label, asked, staple_path=staple_path, now=now, timeout=timeout
            )
        except OcspToolError as e:  # no TLS client: nothing can be asked
            return LiveCheck(address, error=str(e), label=label)
        cert.served_by.append(facts)
        certificates += 1
        matched += facts.served == "same"
    return LiveCheck(address, None, certificates, matched, 0, not_loaded, label)


def _facts(
    cert: CertStatus,
    address: str,
    label: str,
    asked: tuple[Probe, ...],
    *,
    staple_path: Path,
    now: dt.datetime,
    timeout: float,
) -> LiveFact:
    """What nginx serves for each name of ``cert``: the first name served differently
    from the file (else the first name) is its fact; each difference is a line."""
    from ocsptool.files import read_regular
    from ocsptool.nginx.errors import HandshakeFailed
    from ocsptool.nginx.served import served_staple
    from ocsptool.view import LiveFact, Served, Stapler

    try:
        disk: bytes | None = read_regular(staple_path)
    except OSError:
        disk = None
    facts: list[LiveFact] = []
    for probe in asked:
        name = f"{probe.servername} on {probe.host}:{probe.port}"
        try:
            served = served_staple(probe.host, probe.port, probe.servername, timeout=timeout)
        except HandshakeFailed as e:
            cert.live.append(f"{label}: {e}")
            facts.append(LiveFact(address, Stapler.NGINX, Served.NONE))
            continue
        fact = _compared(address, cert, served, disk, now)
        facts.append(fact)
        issue = _issue(cert, fact, staple_path)
        if issue:
            cert.live.append(f"{label} {issue} for {name}")
    different = [f for f in facts if f.served is not Served.SAME]
    return (different or facts)[0]


def _compared(
    address: str, cert: CertStatus, served: bytes | None, disk: bytes | None, now: dt.datetime
) -> LiveFact:
    from ocsptool.view import LiveFact, Served, Stapler, live_fact

    if served is not None and served == disk:
        return LiveFact(
            address, Stapler.NGINX, Served.SAME, cert.status, cert.this_update, cert.next_update
        )
    decoded = _decoded(served) if served is not None else None
    return (
        live_fact(address, Stapler.NGINX, cert, decoded, now)
        if decoded
        else LiveFact(address, Stapler.NGINX, Served.NONE)
    )


def _decoded(der: bytes) -> ServedStaple | None:
    """The status and times of a stapled response (not verified: it is only compared)."""
    from cryptography.x509 import ocsp

    from ocsptool.haproxy import ServedStaple

    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        status = response.certificate_status.name.lower()
        return ServedStaple("", "", status, response.this_update_utc, response.next_update_utc)
    except ValueError:
        return None


def _issue(cert: CertStatus, fact: LiveFact, staple_path: Path) -> str | None:
    """What is wrong with what nginx serves for one name, or None."""
    from ocsptool.times import iso
    from ocsptool.view import Served

    stapled = cert.status in ("good", "revoked")
    if fact.served is Served.NONE:
        return "staples nothing" + (
            "; run `ocsptool refresh` (it reloads nginx)" if stapled else ""
        )
    if fact.served is Served.EXPIRED:
        return f"serves an expired staple (nextUpdate {iso(fact.next_update)})"
    if not stapled or fact.served is Served.SAME:
        return None
    if fact.served is Served.OLDER:
        return (
            f"serves an older staple (thisUpdate {iso(fact.this_update)}) than its file "
            f"{staple_path} ({iso(cert.this_update)}): nginx was not reloaded since; run "
            "`ocsptool refresh` (it reloads nginx)"
        )
    if fact.status != cert.status:
        return f"serves status {fact.status}, but its file {staple_path} says {cert.status}"
    if fact.served is Served.DIFFERENT or fact.served is Served.NEWER:
        return f"serves another staple than its file {staple_path}"
    return None
