"""The state file: load, save, recovery from damage, and the run's behaviour around it.

The files on disk are the truth: whatever happened to the state, a staple still valid on
disk is adopted, never refetched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsptool import state as statefile
from ocsptool.errors import StateError
from ocsptool.testing.responder import Responder
from tests.conftest import CertDir, RunCli

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
RECORD = {"stat": [1, 2, 3, 4], "pushed": [], "failures": 0, "staple": None}


# -- unit ------------------------------------------------------------------------------------


def test_missing_state_is_empty(tmp_path: Path) -> None:
    loaded = statefile.load(tmp_path / "state.json", NOW)
    assert (loaded.certs, loaded.notes, loaded.dirty) == ({}, [], False)


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    state = statefile.State(certs={"/c/a.pem": dict(RECORD)})
    statefile.save(path, state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # group-readable: monitoring
    loaded = statefile.load(path, NOW)
    assert loaded.certs == {"/c/a.pem": RECORD}
    assert (loaded.notes, loaded.dirty, state.dirty) == ([], False, False)


def test_non_utf8_paths_survive_a_round_trip(tmp_path: Path) -> None:
    name = os.fsdecode(b"/c/caf\xe9.pem")
    statefile.save(tmp_path / "s.json", statefile.State(certs={name: dict(RECORD)}))
    assert list(statefile.load(tmp_path / "s.json", NOW).certs) == [name]


CORRUPT = {
    "garbage": (b"\x00\xffnot json{", "is not valid JSON"),
    "truncated": (b'{"version": 1, "certs": {"/a": {"st', "is not valid JSON"),
    "empty": (b"", "is not valid JSON"),
    "a list": (b"[1, 2]", "has no version field"),
    "no version": (b'{"certs": {}}', "has no version field"),
    "string version": (b'{"version": "1", "certs": {}}', "has no version field"),
    "certs a list": (b'{"version": 1, "certs": []}', "has an unexpected shape"),
    "version zero": (b'{"version": 0, "certs": {}}', "has an unexpected shape"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_state_is_moved_aside(kind: str, tmp_path: Path) -> None:
    data, why = CORRUPT[kind]
    path = tmp_path / "state.json"
    path.write_bytes(data)
    loaded = statefile.load(path, NOW)
    aside = "state.json.corrupt-20260501T120000Z"
    assert loaded.notes == [
        f"{path}: {why}; moved it to {aside} and rebuilt from the staples on disk"
    ]
    assert (loaded.certs, loaded.dirty) == ({}, True)
    assert (tmp_path / aside).read_bytes() == data
    assert not path.exists()


def test_malformed_records_are_dropped_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    certs = {
        "/ok": RECORD,
        "/not-a-dict": 5,
        "/short-stat": {**RECORD, "stat": [1, 2]},
        "/pushed-str": {**RECORD, "pushed": "x"},
        "/staple-list": {**RECORD, "staple": [1]},
    }
    path.write_text(json.dumps({"version": 1, "certs": certs}))
    loaded = statefile.load(path, NOW)
    assert list(loaded.certs) == ["/ok"]
    assert loaded.notes == [f"{path}: dropped 4 malformed record(s)"]
    assert loaded.dirty


def test_future_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version": 99, "certs": {}}')
    with pytest.raises(StateError) as raised:
        statefile.load(path, NOW)
    assert str(raised.value) == (
        f"{path}: written by a newer ocsptool (state version 99, this one reads 1); "
        "upgrade ocsptool or move the file aside"
    )
    assert path.read_text() == '{"version": 99, "certs": {}}'


def test_default_path_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/ocsptool:/other")
    assert statefile.default_path() == Path("/var/lib/ocsptool/state.json")


# -- end to end ------------------------------------------------------------------------------


@pytest.fixture
def stapled(cert_dir: CertDir, run_cli: RunCli, state_file: Path) -> CertDir:
    """Three certificates with fresh staples and a good state."""
    for name in ("a", "b", "c"):
        cert_dir.add(name)
    first = run_cli("refresh", cert_dir.path)
    assert (first.exit_code, first.stderr) == (0, "")
    return cert_dir


def staples(cert_dir: CertDir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cert_dir.path.glob("*.ocsp"))}


@pytest.mark.parametrize("content", [b"garbage\xff", b"[]", b'{"version": 1, "certs": 7}'])
def test_corrupt_state_never_refetches_valid_staples(
    content: bytes,
    stapled: CertDir,
    run_cli: RunCli,
    state_file: Path,
    responder: Responder,
) -> None:
    before = staples(stapled)
    state_file.write_bytes(content)
    requests = responder.requests
    result = run_cli("refresh", stapled.path)
    assert result.exit_code == 0
    assert re.fullmatch(
        f"ocsptool: {re.escape(str(state_file))}: "
        "(is not valid JSON|has no version field|has an unexpected shape); "
        r"moved it to state\.json\.corrupt-\d{8}T\d{6}Z and rebuilt from the staples on disk\n",
        result.stderr,
    ), result.stderr
    assert responder.requests == requests  # adopted from disk, not refetched
    assert staples(stapled) == before
    assert set(statefile.load(state_file, NOW).certs) == {
        str(stapled.path / n) for n in ("a.pem", "b.pem", "c.pem")
    }
    # The run after that is silent and sends nothing.
    again = run_cli("refresh", stapled.path)
    assert (again.exit_code, again.stderr, responder.requests) == (0, "", requests)


def test_missing_state_adopts_staples_on_disk(
    stapled: CertDir, run_cli: RunCli, state_file: Path, responder: Responder
) -> None:
    before = staples(stapled)
    state_file.unlink()
    requests = responder.requests
    result = run_cli("refresh", stapled.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert responder.requests == requests
    assert staples(stapled) == before


def test_future_version_state_is_refused_and_nothing_touched(
    stapled: CertDir, run_cli: RunCli, state_file: Path, responder: Responder
) -> None:
    before = staples(stapled)
    state_file.write_text('{"version": 2, "certs": {}}')
    requests = responder.requests
    result = run_cli("refresh", stapled.path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {state_file}: written by a newer ocsptool (state version 2, this one "
        "reads 1); upgrade ocsptool or move the file aside\n"
    )
    assert state_file.read_text() == '{"version": 2, "certs": {}}'
    assert (responder.requests, staples(stapled)) == (requests, before)


def test_deleted_certificates_are_pruned(
    stapled: CertDir, run_cli: RunCli, state_file: Path
) -> None:
    (stapled.path / "b.pem").unlink()
    (stapled.path / "b.pem.ocsp").unlink()
    result = run_cli("refresh", stapled.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert set(statefile.load(state_file, NOW).certs) == {
        str(stapled.path / "a.pem"),
        str(stapled.path / "c.pem"),
    }


def test_replaced_staple_on_disk_is_checked_again(
    stapled: CertDir, run_cli: RunCli, responder: Responder
) -> None:
    """Someone wrote junk over a staple: the state's record no longer matches, so refetch."""
    junk = stapled.path / "junk"
    junk.write_bytes(b"junk")
    junk.replace(stapled.staple("a"))
    requests = responder.requests
    result = run_cli("refresh", stapled.path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert responder.requests == requests + 1
    assert stapled.staple("a").read_bytes() != b"junk"


WRONG_TYPES = [
    ("due", "soon"),
    ("due", None),
    ("not_after", "x"),
    ("failures", 1.5),
    ("url", 5),
    ("cert_error", 5),
    ("pushed", [5]),
    ("issuer_stat", "x"),
    ("staple", {"status": "good", "this_update": "x", "next_update": 1, "inode": None}),
    ("staple", {"status": "maybe", "this_update": 1, "next_update": 2}),
    ("staple", {"status": "good", "this_update": 1, "next_update": 2, "inode": "x"}),
]


@pytest.mark.parametrize("case", WRONG_TYPES, ids=[f"{k}={v!r}" for k, v in WRONG_TYPES])
def test_record_with_a_wrong_type_is_rebuilt_without_refetching(
    case: tuple[str, object],
    stapled: CertDir,
    run_cli: RunCli,
    state_file: Path,
    responder: Responder,
) -> None:
    """Valid JSON, plausible shape, one field of the wrong type: never a crash."""
    key, value = case
    before = staples(stapled)
    data = json.loads(state_file.read_text())
    data["certs"][str(stapled.path / "a.pem")][key] = value
    state_file.write_text(json.dumps(data))
    requests = responder.requests
    result = run_cli("refresh", stapled.path)
    assert (result.exit_code, result.stderr) == (
        0,
        f"ocsptool: {state_file}: dropped 1 malformed record(s)\n",
    )
    assert (responder.requests, staples(stapled)) == (requests, before)
    assert statefile.valid_record(
        statefile.load(state_file, NOW).certs[str(stapled.path / "a.pem")]
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
record_keys = st.sampled_from(
    ["stat", "due", "not_after", "url", "staple", "pushed", "failures", "cert_error", "inode"]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(record_keys, json_values, max_size=6) | json_values)
def test_valid_record_never_raises(record: object) -> None:
    assert statefile.valid_record(record) in (True, False)


def test_a_fifo_at_the_state_path_is_refused_not_waited_on(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    os.mkfifo(path)
    with pytest.raises(StateError) as raised:
        statefile.load(path, NOW)
    assert str(raised.value) == f"{path}: cannot read the state file: not a regular file"


def test_state_as_written_loads_without_checking_each_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    record = {"stat": [1, 2, 3, 4], "failures": 0, "pushed": []}
    statefile.save(path, statefile.State(certs={"/a.pem": record}))
    monkeypatch.setattr(statefile, "valid_record", lambda r: pytest.fail("checked a record"))
    assert statefile.load(path, NOW).certs == {"/a.pem": record}


def test_edited_state_fails_its_digest_and_is_checked_in_full(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    good = {"stat": [1, 2, 3, 4], "failures": 0}
    statefile.save(path, statefile.State(certs={"/a.pem": good, "/b.pem": dict(good)}))
    raw = path.read_bytes()
    edited = raw.replace(b'"failures":0}}', b'"failures":"x"}}')
    assert edited != raw
    path.write_bytes(edited)  # still valid JSON, same digest field: no longer ours
    loaded = statefile.load(path, NOW)
    assert list(loaded.certs) == ["/a.pem"]
    assert loaded.notes == [f"{path}: dropped 1 malformed record(s)"]


def test_read_only_load_notes_a_corrupt_state_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    loaded = statefile.load(path, NOW, read_only=True)
    assert loaded.notes == [f"{path}: is not valid JSON; using the files on disk only"]
    assert path.read_text() == "{not json"
    assert list(tmp_path.iterdir()) == [path]
