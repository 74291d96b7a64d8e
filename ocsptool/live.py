"""``status --live`` and ``check --live``: what each server serves, compared with the
staple on disk. A HAProxy is asked over its runtime API (``show ssl cert``, ``show ssl
ocsp-response``, ``show ssl ocsp-updates``); an nginx by a TLS handshake per server name
(``ocsptool.nginx.live``). A server that cannot be read is a problem of its own, and
nothing is said about what it serves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.errors import CertificateError
from ocsptool.times import iso
from ocsptool.view import (
    CertStatus,
    LiveCheck,
    LiveFact,
    Served,
    Stapler,
    assess,
    live_fact,
    urgency,
)

if TYPE_CHECKING:
    from ocsptool.status import StatusReport


def compare_live(
    report: StatusReport, sockets: Sequence[str], *, now: dt.datetime, timeout: float = 10.0
) -> None:
    """Ask each HAProxy what it staples and who staples it; note every certificate it
    serves differently from the disk.

    A HAProxy that cannot be read (down, a socket level too low, an answer that is not
    the data asked for) is a problem of its own (in ``scan_problems``), and nothing is
    said about what it serves.
    """
    keys = {
        c.path: c.certid or _certid_key(c.path)  # records before 0.2 have no certid
        for c in report.certs
        if c.ocsp_url and not c.cert_error
    }
    from ocsptool.sinks.nginx import config_of, is_nginx

    answered = set()
    for address in sockets:
        if is_nginx(address):
            from ocsptool.nginx.live import check_nginx

            check = check_nginx(report, address, now, timeout)
            where, server = config_of(address), "nginx"
        else:
            check = _check_one(report, keys, address, now, timeout)
            where, server = address, "HAProxy"
        report.live_checks.append(check)
        if check.error is not None:
            report.scan_problems.append(
                (where, f"could not check what {server} serves: {check.error}")
            )
        else:
            answered.add(address)
    for cert in report.certs:
        # What a server was just read to serve replaces what the last run could not push
        # to it: one fact, said once (in ``live``), and gone when it serves the disk's.
        stale = answered.intersection(cert.push_errors)
        if stale:
            cert.push_errors = {c: w for c, w in cert.push_errors.items() if c not in stale}
            cert.push_error = "; ".join(cert.push_errors.values()) or None
        if cert.live or stale:
            assess(cert, now)
    report.certs.sort(key=lambda c: urgency(c, now))


def _check_one(
    report: StatusReport,
    keys: dict[str, str | None],
    address: str,
    now: dt.datetime,
    timeout: float,
) -> LiveCheck:
    from ocsptool.errors import HAProxyError
    from ocsptool.haproxy import loaded_certs, ocsp_updated_paths, show_ocsp_responses

    try:
        held = dict(loaded_certs(address, timeout=timeout))
        served = show_ocsp_responses(address, timeout=timeout)
        updated = ocsp_updated_paths(address, timeout=timeout)
    except HAProxyError as e:
        return LiveCheck(address, error=str(e))
    held_real = {os.path.realpath(p): serial for p, serial in held.items()}
    updated_real = {os.path.realpath(p) for p in updated}
    certificates = matched = self_stapled = not_loaded = 0
    for cert in report.certs:
        key = keys.get(cert.path)
        if key is None:
            continue
        real = os.path.realpath(cert.path)
        if cert.path not in held and real not in held_real:
            not_loaded += 1  # this HAProxy does not serve the certificate at all
            continue
        serial = held.get(cert.path, held_real.get(real))
        stapler = Stapler.HAPROXY if real in updated_real else Stapler.OCSPTOOL
        fact = live_fact(address, stapler, cert, served.get(key), now)
        if serial is not None:
            fact = dataclasses.replace(fact, serial=f"{serial:x}")
            if cert.serial is not None and f"{serial:x}" != cert.serial:
                fact = dataclasses.replace(fact, served=Served.OTHER_CERTIFICATE)
        cert.served_by.append(fact)
        certificates += 1
        matched += fact.served is Served.SAME
        self_stapled += stapler is Stapler.HAPROXY
        issue = _live_issue(cert, fact)
        if issue:
            cert.live.append(f"HAProxy {address} {issue}")
    return LiveCheck(address, None, certificates, matched, self_stapled, not_loaded)


def _live_issue(cert: CertStatus, fact: LiveFact) -> str | None:
    """What is wrong with what a HAProxy serves, or None."""
    itself = fact.stapler is Stapler.HAPROXY
    if fact.served is Served.OTHER_CERTIFICATE:
        assert fact.serial is not None and cert.serial is not None
        return (
            f"holds the certificate with serial {int(fact.serial, 16):X}, but the file has "
            f"serial {int(cert.serial, 16):X} (renewed): reload HAProxy, or load it with "
            "`ocsptool refresh --update-certs -s ADDR`"
        )
    if fact.served is Served.NONE:
        if itself:
            return "staples it itself (ocsp-update) but serves no staple"
        if cert.status in ("good", "revoked"):
            return "serves no staple; run `ocsptool refresh -s ADDR` to push it"
        return "serves no staple"
    if fact.served is Served.EXPIRED:
        assert fact.next_update is not None
        return f"serves an expired staple (nextUpdate {iso(fact.next_update)})"
    if cert.status not in ("good", "revoked"):
        return None
    if fact.served is Served.OLDER and not itself:  # ocsp-update: HAProxy's own schedule
        assert fact.this_update is not None and cert.this_update is not None
        return (
            f"serves an older staple (thisUpdate {iso(fact.this_update)}) than the "
            f"one on disk ({iso(cert.this_update)}); push it with `ocsptool refresh -s`"
        )
    if fact.status != cert.status:
        return f"serves status {fact.status}, but the staple on disk says {cert.status}"
    return None


def _certid_key(path: str) -> str | None:
    from cryptography.x509 import ocsp

    from ocsptool.certs import parse_bundle
    from ocsptool.haproxy import certid_key
    from ocsptool.ocsp import build_request

    try:
        request = ocsp.load_der_ocsp_request(build_request(parse_bundle(Path(path))))
    except CertificateError:
        return None
    return certid_key(request.issuer_name_hash, request.issuer_key_hash, request.serial_number)
