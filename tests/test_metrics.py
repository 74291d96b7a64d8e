"""`--metrics`: the node_exporter textfile format, parsed strictly, from status and refresh."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import CertDir

from ocsptool.metrics import escape
from ocsptool.testing.responder import Responder

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = rf'({_NAME[:-1]}*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(
    rf"({_NAME})(?:\{{((?:{_LABEL},?)*)\}})? (?P<value>-?\d+(?:\.\d+)?|NaN|[+-]Inf)"
)
Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """A strict reader of the Prometheus text exposition format (what node_exporter reads)."""
    assert text.endswith("\n")
    samples: Samples = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert re.fullmatch(rf"# HELP {_NAME} .+", line), line
            continue
        if line.startswith("# TYPE "):
            match = re.fullmatch(rf"# TYPE ({_NAME}) (gauge|counter|untyped)", line)
            assert match and match[1] not in typed, line
            typed.add(match[1])
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name = match[1]
        assert name in typed, f"{name} has no TYPE line before it"
        labels = {
            m[1]: re.sub(r"\\(.)", lambda e: "\n" if e[1] == "n" else e[1], m[2])
            for m in re.finditer(_LABEL, match[2] or "")
        }
        samples.setdefault(name, []).append((labels, float(match["value"])))
    return samples


def by_path(samples: Samples, name: str) -> dict[str, float]:
    return {Path(labels["path"]).name: value for labels, value in samples[name]}


def test_status_metrics(
    cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    cert_dir.add("a")
    cert_dir.add("b")
    cert_dir.add("crl", ocsp=False)
    out = tmp_path / "ocsptool.prom"
    before = int(time.time())
    assert run_cli("refresh", cert_dir.path, "--metrics", out).exit_code == 0
    samples = parse(out.read_text())
    assert samples["ocsptool_last_run_success"] == [({}, 1.0)]
    assert samples["ocsptool_last_run_timestamp_seconds"][0][1] >= before
    next_update = by_path(samples, "ocsptool_staple_next_update_timestamp_seconds")
    assert set(next_update) == {"a.pem", "b.pem"}
    assert next_update["a.pem"] > before + 3 * 86400
    good = {
        Path(labels["path"]).name: value
        for labels, value in samples["ocsptool_staple_status"]
        if labels["status"] == "good"
    }
    assert good == {"a.pem": 1.0, "b.pem": 1.0}
    assert by_path(samples, "ocsptool_certificate_consecutive_failures") == {"a.pem": 0, "b.pem": 0}
    info = {Path(labels["path"]).name: labels for labels, _ in samples["ocsptool_certificate_info"]}
    assert info["crl.pem"]["responder"] == ""

    # A failing run: the failure counts and the run's success show.
    responder.modes[cert_dir.leaves["b"].cert.serial_number] = "http500"
    assert run_cli("renew", cert_dir.path / "b.pem").exit_code == 1
    result = run_cli("status", "--metrics", out, cert_dir.path)
    assert result.exit_code == 1
    samples = parse(out.read_text())
    assert by_path(samples, "ocsptool_certificate_consecutive_failures")["b.pem"] == 1
    assert by_path(samples, "ocsptool_certificate_problem") == {
        "a.pem": 0,
        "b.pem": 1,
        "crl.pem": 0,
    }
    # status reads the last run (the failed renew) from what refresh records.
    assert samples["ocsptool_last_run_success"] == [({}, 0.0)]
    assert samples["ocsptool_last_run_timestamp_seconds"][0][1] >= before
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_label_values_are_escaped(cert_dir: CertDir, run_cli: Callable[..., Result]) -> None:
    odd = cert_dir.path / 'we"ird\\name\nx.pem'
    cert_dir.add("plain").rename(odd)
    out = cert_dir.path.parent / "m.prom"
    run_cli("status", "--metrics", out, cert_dir.path)
    samples = parse(out.read_text())
    assert [labels["path"] for labels, _ in samples["ocsptool_certificate_info"]] == [str(odd)]


def test_escape() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert escape("caf\udce9") == "caf\\\\xe9"  # undecodable file-name bytes stay visible


def test_refresh_metrics_come_from_the_run_itself(
    cert_dir: CertDir,
    run_cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One scan per run, and no bundle parsed again for the metrics: the view reads the
    records the run just left (a fetched staple's new inode included)."""
    from ocsptool import certs, scan

    cert_dir.add("a")
    cert_dir.add("crl", ocsp=False)
    calls = {"scan": 0, "parse": 0}
    real_scan, real_parse = scan.scan, certs.parse_bundle

    def counting_scan(*args: Any, **kwargs: Any) -> scan.ScanResult:
        calls["scan"] += 1
        return real_scan(*args, **kwargs)

    def counting_parse(*args: Any, **kwargs: Any) -> certs.Bundle:
        calls["parse"] += 1
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(scan, "scan", counting_scan)
    monkeypatch.setattr(certs, "parse_bundle", counting_parse)
    out = tmp_path / "ocsptool.prom"
    assert run_cli("refresh", cert_dir.path, "--metrics", out).exit_code == 0
    assert calls == {"scan": 1, "parse": 2}  # each bundle parsed once, by the run
    status = by_path(parse(out.read_text()), "ocsptool_certificate_problem")
    assert status == {"a.pem": 0.0, "crl.pem": 0.0}
    good = [
        Path(labels["path"]).name
        for labels, value in parse(out.read_text())["ocsptool_staple_status"]
        if labels["status"] == "good" and value == 1.0
    ]
    assert good == ["a.pem"]


def test_refresh_metrics_after_a_no_op_run(
    cert_dir: CertDir, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    """A run with nothing due reads no records (the store's index), yet its metrics are
    the full per-certificate view, the same as after the run that fetched."""
    cert_dir.add("a")
    cert_dir.add("crl", ocsp=False)
    first, second = tmp_path / "first.prom", tmp_path / "second.prom"
    assert run_cli("refresh", cert_dir.path, "--metrics", first).exit_code == 0
    assert run_cli("refresh", cert_dir.path, "--metrics", second).exit_code == 0

    def certificate_lines(path: Path) -> list[str]:
        lines = path.read_text().splitlines()
        return [line for line in lines if "a.pem" in line or "crl.pem" in line]

    assert certificate_lines(second) == certificate_lines(first)
    assert certificate_lines(second)
