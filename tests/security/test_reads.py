"""Attack 5: every read is bounded and cannot block.

The attacker owns a directory HAProxy loads (a tenant's certificates). While a run is
fetching (so after it parsed the tenant's certificate, holding the lock), it swaps that
certificate for a FIFO, or for a symlink to /dev/zero. The run must not block on it nor
read it without end: the re-reads (the bundle for ``--update-certs``, the check of a first
staple against the certificate) are bounded regular-file reads like the first one. A FIFO
planted as the state file, as a crt-list, or given as PATH must not block either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocsptool.files import MAX_READ_BYTES
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, run_subprocess
from tests.security.conftest import Attacker, elapsed, start_cli

SWAP = """
import os, sys
path, kind = sys.argv[1], sys.argv[2]
spare = path + ".swap"
if kind == "fifo":
    os.mkfifo(spare)
else:
    os.symlink("/dev/zero", spare)
os.replace(spare, path)
"""

FIFO = "import os, sys\nos.mkfifo(sys.argv[1])\n"


def wait_for(predicate: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.haproxy
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_certificate_swapped_after_its_parse_never_blocks_the_run(  # noqa: PLR0917 - fixtures
    kind: str,
    attacker: Attacker,
    arena: Path,
    pki: PKI,
    responder: Responder,
    haproxy_bin: str,
    tmp_path: Path,
) -> None:
    ours, tenant = arena / "ours", arena / "tenant"
    ours.mkdir()
    tenant.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(ours / "site.pem")
    site.chmod(0o600)
    evil = pki.direct.leaf("evil.test", ocsp_url=responder.url).write_bundle(tenant / "evil.pem")
    for path in (tenant, evil):
        os.chown(path, attacker.uid, attacker.gid)
    crt_list = arena / "crt-list.txt"
    crt_list.write_text(f"{site}\n{evil}\n")
    with HAProxy(crt_list, crt_list=True, binary=haproxy_bin) as proxy:
        responder.delay_ms = 1500  # the run is fetching when the swap happens
        state = tmp_path / "state.json"
        started = time.monotonic()
        run = start_cli(
            "refresh", "--state", state, "--update-certs", "-s", proxy.socket, ours, evil
        )
        wait_for(lambda: responder.peak_total > 0, "the run to fetch")
        attacker.run(SWAP, evil, kind)
        try:
            _, stderr = run.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
            raise AssertionError(f"the run blocked on the swapped {kind}") from None
        assert elapsed(started) < 15
        assert run.returncode == 1
        why = "not a regular file (a FIFO, socket or device); skipped"  # /dev/zero: a device
        assert stderr.splitlines() == [
            f"ocsptool: {evil}: HAProxy {proxy.socket}: HAProxy answered: OCSP single "
            "response: Certificate ID does not match any certificate or issuer. (cannot read "
            f"the certificate to check the response against it: {why})"
        ]
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
        assert tls_staple(proxy.port, "evil.test") is None


def test_a_fifo_as_the_state_file(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder
) -> None:
    """A state directory the attacker may write (here: its own): it plants a FIFO as the
    state. ``refresh`` says so and exits 1; ``status`` notes it; neither blocks."""
    lair = arena / "lair"
    lair.mkdir()
    os.chown(lair, attacker.uid, attacker.gid)
    state = lair / "state.json"
    attacker.run(FIFO, state)
    certs = arena / "certs"
    certs.mkdir()
    pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    result = run_subprocess("refresh", "--state", state, certs, timeout=30)
    assert (result.returncode, result.stderr) == (
        1,
        f"ocsptool: {state}: cannot read the state file: not a regular file\n",
    )
    status = run_subprocess("status", "--state", state, certs, timeout=30)
    assert (
        f"note: {state}: cannot be read (not a regular file); using the files on disk only"
        in status.stdout + status.stderr
    )


def test_a_fifo_as_the_state_file_does_not_block_check(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder
) -> None:
    lair = arena / "lair"
    lair.mkdir()
    os.chown(lair, attacker.uid, attacker.gid)
    state = lair / "state.json"
    attacker.run(FIFO, state)
    certs = arena / "certs"
    certs.mkdir()
    pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    result = run_subprocess("check", "--state", state, certs, timeout=5)
    assert (result.returncode, result.stdout) == (
        3,
        f"OCSP UNKNOWN - cannot read the state file {state}: not a regular file\n",
    )


def test_a_fifo_given_as_path_does_not_block(attacker: Attacker, arena: Path) -> None:
    os.chmod(arena, 0o777)
    fifo = arena / "certs.pem"
    attacker.run(FIFO, fifo)
    result = run_subprocess("refresh", "--state", arena / "s.json", fifo, timeout=5)
    assert result.stderr.endswith("not a regular file (a FIFO, socket or device); skipped\n")


def test_a_fifo_as_a_crt_list_in_the_haproxy_configuration(
    attacker: Attacker, arena: Path, tmp_path: Path
) -> None:
    lair = arena / "lair"
    lair.mkdir()
    os.chown(lair, attacker.uid, attacker.gid)
    fifo = lair / "list.txt"
    attacker.run(FIFO, fifo)
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "global\n    stats socket /nonexistent/admin.sock level admin\n\n"
        f"frontend tls\n    bind 127.0.0.1:8443 ssl crt-list {fifo}\n"
    )
    started = time.monotonic()
    result = run_subprocess(
        "refresh", "--state", tmp_path / "s.json", "--haproxy-config", config, timeout=30
    )
    assert elapsed(started) < 15
    assert f"{config}:5: cannot open crt-list '{fifo}': not a regular file" in result.stderr


def test_a_huge_state_file_is_set_aside_unread(
    tmp_path: Path, pki: PKI, responder: Responder
) -> None:
    """A state file (the run's own) grown past MAX_READ_BYTES: moved aside without being
    read, the run rebuilds from the staples on disk, in bounded memory."""
    certs = tmp_path / "certs"
    certs.mkdir()
    pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    state = tmp_path / "state.json"
    with state.open("wb") as f:
        f.truncate(MAX_READ_BYTES + 1)  # sparse: no disk used
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen(
        [sys.executable, "-m", "ocsptool", "refresh", "--state", state, certs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None and process.stdout is not None
    lines = process.stderr.read().decode().splitlines()
    process.stderr.close()
    process.stdout.close()
    assert usage.ru_maxrss < 150 * 1024, usage.ru_maxrss  # KiB: it was never read
    assert process.returncode == 0  # the note is a warning: the staple was fetched
    aside = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1
    assert lines == [
        f"ocsptool: {state}: is larger than 256 MiB; moved it to {aside[0]} and rebuilt from "
        "the staples on disk"
    ]
