"""ocsptool.state.file: the JSON state file and its fresh index, through real runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ocsptool import state as statefile
from ocsptool.refresh import run_refresh
from ocsptool.settings import Settings
from ocsptool.state.file import JsonStateFile
from ocsptool.testing.responder import Responder
from tests.conftest import CertDir

NOW = dt.datetime.now(dt.UTC)


def settings(cert_dir: CertDir, state_file: Path) -> Settings:
    return Settings(paths=(str(cert_dir.path),), state_path=state_file)


def test_a_no_op_run_reads_the_index_not_the_records(
    cert_dir: CertDir, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_dir.add("a")
    cert_dir.add("b")
    cert_dir.add("crl", ocsp=False)
    assert run_refresh(settings(cert_dir, state_file), now=NOW).fetched == 2
    assert JsonStateFile(state_file).index() is not None

    def no_load(*args: object, **kwargs: object) -> statefile.State:
        raise AssertionError("loaded the records")

    monkeypatch.setattr(statefile, "load", no_load)
    report = run_refresh(settings(cert_dir, state_file), now=NOW)
    assert (report.ok, report.fetched, report.problems) == (True, 0, [])
    monkeypatch.undo()
    # Asked for, the outcomes come from the records, read then.
    assert [(Path(o.path).name, o.action) for o in report.outcomes] == [
        ("a.pem", "fresh"),
        ("b.pem", "fresh"),
        ("crl.pem", "no-ocsp"),
    ]


def test_an_edited_state_makes_the_index_stale(
    cert_dir: CertDir, state_file: Path, responder: Responder
) -> None:
    cert_dir.add("a")
    assert run_refresh(settings(cert_dir, state_file), now=NOW).fetched == 1
    data = json.loads(state_file.read_text())
    data["certs"][str(cert_dir.path / "a.pem")]["due"] = 0  # due now: must be refetched
    state_file.write_text(json.dumps(data))
    assert JsonStateFile(state_file).index() is None
    asked = responder.requests
    assert run_refresh(settings(cert_dir, state_file), now=NOW).fetched == 1
    assert responder.requests == asked + 1
    assert JsonStateFile(state_file).index() is not None  # written again with the state


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", b"\xe9\x03\x00\x00"])
def test_a_damaged_index_only_costs_a_full_run(
    damage: bytes, cert_dir: CertDir, state_file: Path, responder: Responder
) -> None:
    cert_dir.add("a")
    run_refresh(settings(cert_dir, state_file), now=NOW)
    index = state_file.with_name("state.json.index")
    index.write_bytes(damage)
    asked = responder.requests
    report = run_refresh(settings(cert_dir, state_file), now=NOW)
    assert (report.ok, report.fetched, responder.requests) == (True, 0, asked)
    assert JsonStateFile(state_file).index() is not None  # rewritten by the full run


def test_a_state_without_index_gets_one_on_the_next_no_op_run(
    cert_dir: CertDir, state_file: Path
) -> None:
    cert_dir.add("a")
    run_refresh(settings(cert_dir, state_file), now=NOW)
    index = state_file.with_name("state.json.index")
    index.unlink()  # as after an upgrade from 0.1.0
    before = state_file.stat().st_mtime_ns
    assert run_refresh(settings(cert_dir, state_file), now=NOW).fetched == 0
    assert index.exists() and state_file.stat().st_mtime_ns == before


def test_an_index_another_user_could_have_written_is_not_used(
    cert_dir: CertDir, state_file: Path, responder: Responder, capsys: pytest.CaptureFixture[str]
) -> None:
    """One warning naming the file; the records decide; the next save replaces it (never
    keeping its owner or mode)."""
    cert_dir.add("a")
    run_refresh(settings(cert_dir, state_file), now=NOW)
    index = state_file.with_name("state.json.index")
    index.chmod(0o666)
    capsys.readouterr()
    assert JsonStateFile(state_file).index() is None
    assert capsys.readouterr().err == (
        f"ocsptool: {index}: not used: it is writable by other users (mode 0666) (the state "
        "file is read instead)\n"
    )
    asked = responder.requests
    report = run_refresh(settings(cert_dir, state_file), now=NOW)
    assert (report.ok, report.fetched, responder.requests) == (True, 0, asked)
    assert oct(index.stat().st_mode & 0o777) == "0o600"
    assert JsonStateFile(state_file).index() is not None


def test_the_index_is_json_and_bounded_by_the_state(cert_dir: CertDir, state_file: Path) -> None:
    cert_dir.add("a")
    run_refresh(settings(cert_dir, state_file), now=NOW)
    index = state_file.with_name("state.json.index")
    version, key, folders, names, _consumers, _columns, others = json.loads(index.read_bytes())
    assert (version, folders, names, others) == (4, [f"{cert_dir.path}/"], ["a.pem"], {})
    assert key[1] == state_file.stat().st_size
    index.write_bytes(index.read_bytes() + b" " * (2 * state_file.stat().st_size + 65536))
    assert JsonStateFile(state_file).index() is None  # past twice the state: not even read
