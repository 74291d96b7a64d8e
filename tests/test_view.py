"""The per-certificate view: refresh's report (``refresh --json``) and ``status --json``
read one view; their JSON keys and values are pinned here on a real run."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from conftest import CertDir

from ocsptool.testing.responder import Responder

_TIME = re.compile(r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _shape(value: Any) -> Any:
    """The value with recent times as ``<time>`` (the epoch and nulls stay as they are)."""
    if isinstance(value, str) and _TIME.match(value):
        return "<time>"
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return value


def _rows(result: Result, root: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(result.stdout.replace(str(root) + "/", ""))
    return {row["path"]: _shape(row) for row in data["certificates"]}


def _mixed(cert_dir: CertDir, responder: Responder) -> None:
    now = dt.datetime.now(dt.UTC)
    cert_dir.add("a")
    cert_dir.add("plain", ocsp=False)
    cert_dir.add("revoked")
    responder.revoked.add(cert_dir.leaves["revoked"].cert.serial_number)
    cert_dir.add("old", not_before=now - dt.timedelta(days=9), not_after=now - dt.timedelta(days=1))
    cert_dir.add("down")
    responder.modes[cert_dir.leaves["down"].cert.serial_number] = "http500"


OUTCOME_KEYS = [
    "path", "action", "name", "ocsp_url", "status", "this_update", "next_update", "next_due",
    "error", "pushed", "push_errors", "origin", "fetched_by", "self_stapled", "not_loaded",
    "certificate_loaded",
]  # fmt: skip


def test_refresh_json_rows_are_pinned(
    cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    _mixed(cert_dir, responder)
    first = run_cli("refresh", "--json", cert_dir.path)
    assert first.exit_code == 1
    rows = _rows(first, cert_dir.path)
    assert all(list(row) == OUTCOME_KEYS for row in rows.values())
    url = cert_dir.url
    common = {
        "pushed": [], "push_errors": [], "self_stapled": [], "not_loaded": [],
        "certificate_loaded": [],
    }  # fmt: skip
    fetched = {"origin": "responder", "fetched_by": None, **common}  # no shared store
    assert rows == {
        "a.pem": {
            "path": "a.pem", "action": "fetched", "name": "a.test", "ocsp_url": url,
            "status": "good", "this_update": "<time>", "next_update": "<time>",
            "next_due": "<time>", "error": None, **fetched,
        },
        "down.pem": {
            "path": "down.pem", "action": "failed", "name": "down.test", "ocsp_url": url,
            "status": None, "this_update": None, "next_update": None, "next_due": "<time>",
            "error": rows["down.pem"]["error"], "origin": None, "fetched_by": None, **common,
        },
        "old.pem": {
            "path": "old.pem", "action": "skipped", "name": "old.test", "ocsp_url": url,
            "status": None, "this_update": None, "next_update": None,
            "next_due": "1970-01-01T00:00:00Z", "error": rows["old.pem"]["error"],
            "origin": None, "fetched_by": None, **common,
        },
        "plain.pem": {
            "path": "plain.pem", "action": "no-ocsp", "name": "plain.test", "ocsp_url": None,
            "status": None, "this_update": None, "next_update": None, "next_due": None,
            "error": None, "origin": None, "fetched_by": None, **common,
        },
        "revoked.pem": {
            "path": "revoked.pem", "action": "fetched", "name": "revoked.test",
            "ocsp_url": url, "status": "revoked", "this_update": "<time>",
            "next_update": "<time>", "next_due": "<time>", "error": None, **fetched,
        },
    }  # fmt: skip
    assert "500" in rows["down.pem"]["error"]
    assert rows["old.pem"]["error"].startswith("certificate expired on ")
    assert rows["old.pem"]["error"].endswith("; not fetching")

    second = _rows(run_cli("refresh", "--json", cert_dir.path), cert_dir.path)
    assert second["a.pem"] == {**rows["a.pem"], "action": "fresh"}
    assert second["revoked.pem"] == {**rows["revoked.pem"], "action": "fresh"}
    assert second["plain.pem"] == rows["plain.pem"]
    assert second["old.pem"] == rows["old.pem"]
    assert second["down.pem"]["action"] == "skipped"
    assert second["down.pem"]["error"].startswith(f"no staple yet: {rows['down.pem']['error']}")


STATUS_KEYS = [
    "path", "name", "issuer", "ocsp_url", "must_staple", "crl", "not_after", "status",
    "reason", "this_update", "next_update", "produced_at", "signer", "revocation_time",
    "revocation_reason", "next_due", "failures", "last_error", "push_error", "cert_error",
    "live", "served_by", "self_stapled", "origin", "fetched_by", "fetched_at",
    "haproxy", "nginx", "itself", "serial", "from_state", "severity", "problems", "responder",
    "error",
]  # fmt: skip


def test_status_json_rows_are_pinned(
    cert_dir: CertDir, responder: Responder, run_cli: Callable[..., Result]
) -> None:
    _mixed(cert_dir, responder)
    run_cli("refresh", cert_dir.path)
    result = run_cli("status", "--json", cert_dir.path)
    assert result.exit_code == 1
    rows = _rows(result, cert_dir.path)
    keys = {path: list(row) for path, row in rows.items()}
    assert keys == dict.fromkeys(rows, STATUS_KEYS)
    picked = {
        path: {k: row[k] for k in ("status", "severity", "next_due", "failures", "origin")}
        for path, row in rows.items()
    }
    assert picked == {
        "a.pem": {"status": "good", "severity": "ok", "next_due": "<time>", "failures": 0,
                  "origin": "responder"},
        "down.pem": {"status": "none", "severity": "warning", "next_due": "<time>",
                     "failures": 1, "origin": None},
        "old.pem": {"status": "none", "severity": "critical", "next_due": None, "failures": 0,
                    "origin": None},
        "plain.pem": {"status": "none", "severity": "ok", "next_due": None, "failures": 0,
                      "origin": None},
        "revoked.pem": {"status": "revoked", "severity": "critical", "next_due": "<time>",
                        "failures": 0, "origin": "responder"},
    }  # fmt: skip
