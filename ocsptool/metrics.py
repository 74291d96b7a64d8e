"""Prometheus metrics for node_exporter's textfile collector, written atomically.

Point ``--metrics`` at a ``*.prom`` file in the collector's directory. The temporary file
ocsptool writes first ends in ``.ocsp``, so the collector never reads a half-written one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ocsptool.files import write_atomic
from ocsptool.status import StatusReport
from ocsptool.view import STATUSES, CertStatus

_HELP = {
    "ocsptool_certificate_info": (
        "gauge",
        "A certificate ocsptool watches (1); labels describe it.",
    ),
    "ocsptool_certificate_problem": (
        "gauge",
        "1 when ocsptool status reports a problem for the certificate, else 0.",
    ),
    "ocsptool_staple_status": (
        "gauge",
        "1 for the staple's current status (good, revoked, unknown, none, invalid), else 0.",
    ),
    "ocsptool_staple_this_update_timestamp_seconds": (
        "gauge",
        "thisUpdate of the staple on disk, Unix time.",
    ),
    "ocsptool_staple_next_update_timestamp_seconds": (
        "gauge",
        "nextUpdate of the staple on disk, Unix time; HAProxy stops serving 300 s before.",
    ),
    "ocsptool_certificate_consecutive_failures": (
        "gauge",
        "Refresh attempts that failed in a row for the certificate.",
    ),
    "ocsptool_last_run_timestamp_seconds": ("gauge", "When ocsptool refresh last ran, Unix time."),
    "ocsptool_last_run_success": ("gauge", "1 when the last ocsptool refresh run had no problem."),
}


def escape(value: str) -> str:
    """A label value in the text format: backslash, double quote and newline escaped."""
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def render(report: StatusReport, *, last_run: dt.datetime | None, last_run_ok: bool | None) -> str:
    """The whole metrics file."""
    samples: dict[str, list[str]] = {name: [] for name in _HELP}
    for cert in report.certs:
        _cert_samples(cert, samples)
    if last_run is not None:
        samples["ocsptool_last_run_timestamp_seconds"].append(f" {int(last_run.timestamp())}")
    if last_run_ok is not None:
        samples["ocsptool_last_run_success"].append(f" {int(last_run_ok)}")
    out: list[str] = []
    for name, (kind, text) in _HELP.items():
        if not samples[name]:
            continue
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(name + sample for sample in samples[name])
    return "\n".join(out) + "\n"


def _cert_samples(cert: CertStatus, samples: dict[str, list[str]]) -> None:
    ident = _labels(path=cert.path)
    info = _labels(
        path=cert.path,
        name=cert.name or "",
        issuer=cert.issuer or "",
        responder=cert.responder or "",
        must_staple=str(cert.must_staple).lower(),
    )
    samples["ocsptool_certificate_info"].append(f"{info} 1")
    samples["ocsptool_certificate_problem"].append(f"{ident} {int(bool(cert.problems))}")
    if cert.ocsp_url is None:
        return
    for status in STATUSES:
        labels = _labels(path=cert.path, status=status)
        samples["ocsptool_staple_status"].append(f"{labels} {int(cert.status == status)}")
    if cert.this_update is not None:
        samples["ocsptool_staple_this_update_timestamp_seconds"].append(
            f"{ident} {int(cert.this_update.timestamp())}"
        )
    if cert.next_update is not None:
        samples["ocsptool_staple_next_update_timestamp_seconds"].append(
            f"{ident} {int(cert.next_update.timestamp())}"
        )
    samples["ocsptool_certificate_consecutive_failures"].append(f"{ident} {cert.failures}")


def write(
    path: Path, report: StatusReport, *, last_run: dt.datetime | None, last_run_ok: bool | None
) -> None:
    """Render and replace ``path`` atomically (raises ``WriteError`` with one line)."""
    write_atomic(path, render(report, last_run=last_run, last_run_ok=last_run_ok).encode())


def last_run_of(report: StatusReport) -> tuple[dt.datetime | None, bool | None]:
    """The last refresh run the state file recorded, if it did."""
    from ocsptool.times import from_epoch

    when = from_epoch(report.last_run.get("time"))
    ok = report.last_run.get("ok")
    return when, ok if isinstance(ok, bool) else None
