"""Crash and concurrency proofs: real processes, real SIGKILLs, real locks.

* Kill ``refresh`` at random moments over dozens of certificates, many times. After each
  kill every ``.ocsp`` is a whole, valid response, the state loads, temp files do not pile
  up; and the next undisturbed run converges to all-good.
* Start several runs at once: exactly one works, the others exit 75 quickly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocsptool import state as statefile
from ocsptool.certs import parse_bundle
from ocsptool.files import is_temp_name, write_atomic
from ocsptool.ocsp import verify
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, ROOT

pytestmark = pytest.mark.slow

CERTS = 40
KILLS = 16


def start(*args: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "ocsptool", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.fixture
def many(tmp_path: Path, pki: PKI, responder: Responder) -> Path:
    """CERTS bundles from both CAs (the delegated one's responses carry a certificate)."""
    responder.presign = True
    directory = tmp_path / "certs"
    directory.mkdir()
    for i in range(CERTS):
        ca = pki.delegated if i % 3 == 0 else pki.direct
        ca.leaf(f"s{i}.test", ocsp_url=responder.url).write_bundle(directory / f"s{i:02}.pem")
    return directory


def assert_consistent(directory: Path, state: Path, now: dt.datetime) -> int:
    """Every staple whole and valid, state loadable, temp files bounded; return #staples."""
    staples = 0
    temps = [name for name in os.listdir(directory) if is_temp_name(name)]
    assert len(temps) <= 8  # at most one per fetch in flight (--jobs 8)
    for pem in sorted(directory.glob("*.pem")):
        staple = Path(f"{pem}.ocsp")
        if staple.exists():
            verify(staple.read_bytes(), parse_bundle(pem), now)  # raises if torn or bad
            staples += 1
    if state.exists():
        loaded = statefile.load(state, now)
        assert loaded.notes == [], loaded.notes  # never corrupt, never moved aside
    return staples


def staple_inodes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in directory.glob("[!.]*.ocsp")}


def make_all_due(state: Path) -> None:
    if not state.exists():
        return
    data = json.loads(state.read_text())
    for record in data["certs"].values():
        record["due"] = 0
    write_atomic(state, json.dumps(data).encode(), mode=0o600)


def test_sigkill_at_random_moments_never_tears_anything(
    many: Path, state_file: Path, responder: Responder
) -> None:
    rng = random.Random(int(os.environ.get("OCSPTOOL_CRASH_SEED", "5")))
    # Time one undisturbed run, to spread the kills over its whole length.
    started = time.monotonic()
    first = start("refresh", "--state", state_file, many)
    assert first.communicate(timeout=60) == ("", "")
    assert first.returncode == 0
    length = time.monotonic() - started
    assert assert_consistent(many, state_file, dt.datetime.now(dt.UTC)) == CERTS
    kills = mid_write = 0
    for i in range(KILLS):
        make_all_due(state_file)
        before = staple_inodes(many)
        proc = start("refresh", "--state", state_file, many)
        if i % 2:  # anywhere in the run, start-up included
            time.sleep(rng.uniform(0.05, length * 1.1))
        else:  # aimed at the writes: wait for the first new staple, then a little more
            deadline = time.monotonic() + 30
            while staple_inodes(many) == before and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        out, err = proc.communicate(timeout=30)
        assert proc.returncode in (0, -signal.SIGKILL), err
        assert "Traceback" not in err
        assert assert_consistent(many, state_file, dt.datetime.now(dt.UTC)) == CERTS
        after = staple_inodes(many)
        changed = sum(after[name] != inode for name, inode in before.items())
        mid_write += proc.returncode == -signal.SIGKILL and changed > 0
    assert kills >= KILLS // 2  # the proof is about kills, not about clean exits
    assert mid_write >= KILLS // 4  # and about kills once staples were being written
    # The next run converges: all good, nothing left behind, and the run after is a no-op.
    make_all_due(state_file)
    final = start("refresh", "--state", state_file, many)
    out, err = final.communicate(timeout=60)
    assert (final.returncode, out, err) == (0, "", "")
    assert [n for n in os.listdir(many) if is_temp_name(n)] == []
    assert [n for n in os.listdir(state_file.parent) if n.endswith(".ocsp")] == []
    assert sorted(os.listdir(state_file.parent)) == [
        "state.json",
        "state.json.index",
        "state.json.lock",
    ]
    requests = responder.requests
    noop = start("refresh", "--state", state_file, many)
    assert noop.communicate(timeout=60) == ("", "")
    assert noop.returncode == 0
    assert responder.requests == requests


def test_kill_during_the_first_run_without_any_state(
    many: Path, state_file: Path, responder: Responder
) -> None:
    """Killed before the state was ever written: the next run adopts what is on disk."""
    proc = start("refresh", "--state", state_file, many)
    deadline = time.monotonic() + 30
    pems = list(many.glob("*.pem"))
    while sum(Path(f"{p}.ocsp").exists() for p in pems) < CERTS // 4:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    on_disk = assert_consistent(many, state_file, dt.datetime.now(dt.UTC))
    assert on_disk >= CERTS // 4
    before = responder.requests
    final = start("refresh", "--state", state_file, many)
    assert final.communicate(timeout=60) == ("", "")
    assert final.returncode == 0
    assert assert_consistent(many, state_file, dt.datetime.now(dt.UTC)) == CERTS
    # Staples already on disk and valid were adopted, not refetched.
    assert responder.requests - before <= CERTS - on_disk


def test_concurrent_runs_exactly_one_works(
    many: Path, state_file: Path, responder: Responder
) -> None:
    # One certificate's responder hangs, so the working run holds the lock for ~5 s: a wide
    # margin for the other three to start and meet the lock, even on a loaded machine.
    slow = parse_bundle(many / "s01.pem").leaf.serial_number
    responder.modes[slow] = "hang"
    procs = []
    for _ in range(4):
        procs.append(
            (time.monotonic(), start("refresh", "--timeout", "5", "--state", state_file, many))
        )
    ended: dict[int, float] = {}
    deadline = time.monotonic() + 60
    while len(ended) < len(procs) and time.monotonic() < deadline:
        for i, (_, proc) in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.monotonic()
        time.sleep(0.01)
    results = []
    for i, (began, proc) in enumerate(procs):
        out, err = proc.communicate(timeout=5)
        results.append((proc.returncode, ended[i] - began, out, err))
    codes = sorted(code for code, *_ in results)
    assert codes == [1, 75, 75, 75], results
    lock = f"{state_file}.lock"
    for code, elapsed, out, err in results:
        if code == 75:
            assert out == ""
            assert err == f"ocsptool: another ocsptool run holds {lock}; exiting\n"
            assert elapsed < 2.5  # quickly: it never waited for the lock
        else:
            assert err == (
                f"ocsptool: {many}/s01.pem: {responder.url}: timed out waiting for "
                f"{responder.url.split('/')[2]} to answer\n"
            )
    assert assert_consistent(many, state_file, dt.datetime.now(dt.UTC)) == CERTS - 1
