"""Attacks 9 and 12: the files ocsptool keeps beside its state.

The state directory is one the attacker may add files to (a shared, world-writable one,
like /tmp): it plants a hard-linked or foreign lock, a crafted ``<state>.index``, a state
file of its own. ocsptool (root) must never write through the link, never believe what
the attacker wrote, never stall decoding it, and say so in one line; the certificates
stay stapled.
"""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path

import pytest

from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, run_subprocess
from tests.security.conftest import Attacker, elapsed, world_writable

pytestmark = pytest.mark.haproxy

#: A marshal list declaring 2^31 - 1 items, nested three deep: 12 s of a stalled run with
#: the old marshal index, however small the file.
MARSHAL_BOMB = (b"[" + (2**31 - 1).to_bytes(4, "little")) * 3
#: JSON nested past the recursion limit.
JSON_BOMB = b"[" * 200_000

PLANT = """
import os, sys
path = sys.argv[1]
with open(sys.argv[2], "rb") as source, open(path, "wb") as f:
    f.write(source.read())
os.chmod(path, 0o600)
"""


def plant(attacker: Attacker, path: Path, data: bytes) -> None:
    """The attacker writes ``data`` at ``path`` (a file of its own, mode 0600)."""
    source = path.parent.parent / f"{path.name}.source"
    source.write_bytes(data)
    source.chmod(0o644)
    attacker.run(PLANT, path, source)


HARD_LINK = """
import os, sys
precious, lock = sys.argv[1], sys.argv[2]
with open(precious, "w") as f:
    f.write("the attacker's own data")
if os.path.lexists(lock):
    os.unlink(lock)  # the directory is not sticky: anyone may replace anyone's file
os.link(precious, lock)
"""

SYMLINK = "import os, sys\nos.symlink(sys.argv[1], sys.argv[2])\n"


class Shared:
    """A certificate served by a real HAProxy, and a state directory the attacker may
    write (``sticky``: like /tmp; else anyone may also replace anyone's files)."""

    def __init__(self, arena: Path, pki: PKI, url: str, *, sticky: bool) -> None:
        certs = arena / "certs"
        certs.mkdir()
        self.cert = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
        self.state = world_writable(arena / "state", sticky=sticky) / "state.json"
        self.lock = Path(f"{self.state}.lock")
        self.index = Path(f"{self.state}.index")

    def refresh(self, proxy: HAProxy, *args: object) -> tuple[int, str, float]:
        started = time.monotonic()
        done = run_subprocess(
            "refresh", "--state", self.state, "-s", proxy.socket, *args, self.cert.parent
        )
        return done.returncode, done.stderr, elapsed(started)

    def stapled(self, proxy: HAProxy) -> bool:
        return tls_staple(proxy.port, "site.test") == Path(f"{self.cert}.ocsp").read_bytes()


def start(
    arena: Path, pki: PKI, responder: Responder, haproxy_bin: str, *, sticky: bool = True
) -> tuple[Shared, HAProxy]:
    shared = Shared(arena, pki, responder.url, sticky=sticky)
    proxy = HAProxy(shared.cert.parent, binary=haproxy_bin).start()
    return shared, proxy


# -- 9: the lock -------------------------------------------------------------------------------


def test_a_hard_linked_lock_is_never_written_through(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    shared, proxy = start(arena, pki, responder, haproxy_bin, sticky=False)
    try:
        assert shared.refresh(proxy)[:2] == (0, "")
        assert shared.stapled(proxy)
        precious = world_writable(arena / "lair") / "precious"
        attacker.run(HARD_LINK, precious, shared.lock)
        assert shared.lock.stat().st_nlink == 2
        code, stderr, _ = shared.refresh(proxy, "--force")
        assert (code, stderr) == (
            1,
            f"ocsptool: refusing the lock file {shared.lock}: it has 2 hard links (writing it "
            "would write the other files); remove it\n",
        )
        assert precious.read_text() == "the attacker's own data"
        assert shared.stapled(proxy)  # what HAProxy staples is untouched
    finally:
        proxy.close()


def test_a_lock_planted_by_another_user_is_refused(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    shared, proxy = start(arena, pki, responder, haproxy_bin)
    try:
        plant(attacker, shared.lock, b'{"time": 4102444800, "ok": true}')
        code, stderr, _ = shared.refresh(proxy)
        assert (code, stderr) == (
            1,
            f"ocsptool: refusing the lock file {shared.lock}: it belongs to {attacker.name} "
            f"(uid {attacker.uid}), not to root; remove it\n",
        )
        assert tls_staple(proxy.port, "site.test") is None  # nothing was done
        shared.lock.unlink()  # the fix it names
        assert shared.refresh(proxy)[:2] == (0, "")
        assert shared.stapled(proxy)
    finally:
        proxy.close()


def test_a_symlinked_lock_is_refused(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    shared, proxy = start(arena, pki, responder, haproxy_bin)
    try:
        target = arena / "target"
        target.write_text("root's file")
        attacker.run(SYMLINK, target, shared.lock)
        code, stderr, _ = shared.refresh(proxy)
        assert (code, stderr) == (
            1,
            f"ocsptool: cannot create the lock file {shared.lock}: Too many levels of "
            "symbolic links\n",
        )
        assert target.read_text() == "root's file"
    finally:
        proxy.close()


# -- 12: the fresh index and the state -------------------------------------------------------


@pytest.mark.parametrize("bomb", [MARSHAL_BOMB, JSON_BOMB], ids=["marshal", "json"])
def test_a_crafted_index_from_another_user_is_ignored_with_one_warning(  # noqa: PLR0917 - fixtures
    bomb: bytes,
    attacker: Attacker,
    arena: Path,
    pki: PKI,
    responder: Responder,
    haproxy_bin: str,
) -> None:
    shared, proxy = start(arena, pki, responder, haproxy_bin)
    try:
        assert shared.refresh(proxy)[:2] == (0, "")
        assert shared.index.stat().st_uid == 0
        shared.index.unlink()  # as a run killed before it wrote the index leaves it
        plant(attacker, shared.index, bomb)
        code, stderr, took = shared.refresh(proxy)
        assert (code, stderr) == (
            0,
            f"ocsptool: {shared.index}: not used: it belongs to {attacker.name} (uid "
            f"{attacker.uid}), not to root (the state file is read instead)\n",
        )
        assert took < 10
        assert shared.index.stat().st_uid == 0  # replaced by ours, not written through
        again = shared.refresh(proxy)
        assert again[:2] == (0, "")
        assert shared.stapled(proxy)
    finally:
        proxy.close()


@pytest.mark.parametrize(
    "bomb",
    [MARSHAL_BOMB, JSON_BOMB, marshal.dumps((1, [0, 0, 0], {}))],
    ids=["marshal", "json", "old-format"],
)
def test_a_damaged_index_of_our_own_costs_one_full_run(
    bomb: bytes, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    """Decoding is bounded whoever wrote the file: no stall, no warning, one slower run."""
    shared, proxy = start(arena, pki, responder, haproxy_bin)
    try:
        assert shared.refresh(proxy)[:2] == (0, "")
        shared.index.write_bytes(bomb)
        code, stderr, took = shared.refresh(proxy)
        assert (code, stderr) == (0, "")
        assert took < 10
        assert shared.index.read_bytes().startswith(b"[4,")
        assert shared.stapled(proxy)
    finally:
        proxy.close()


def test_a_state_file_planted_by_another_user_is_set_aside(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    """A state whose records say every certificate is fresh until 2100: never believed."""
    shared, proxy = start(arena, pki, responder, haproxy_bin)
    try:
        forged = b'{"version":1,"certs":{}}'
        plant(attacker, shared.state, forged)
        code, stderr, _ = shared.refresh(proxy)
        aside = [p.name for p in shared.state.parent.iterdir() if ".corrupt-" in p.name]
        assert (code, stderr) == (
            0,
            f"ocsptool: {shared.state}: is not to be trusted: it belongs to {attacker.name} "
            f"(uid {attacker.uid}), not to root; moved it to {aside[0]} and rebuilt from the "
            "staples on disk\n",
        )
        assert shared.state.stat().st_uid == 0
        assert shared.stapled(proxy)
    finally:
        proxy.close()


def test_a_crafted_discovery_cache_from_another_user_does_not_stall_the_run(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder
) -> None:
    certs = arena / "certs"
    certs.mkdir()
    pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    state = world_writable(arena / "state") / "state.json"
    config = arena / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {arena}/admin.sock level admin\n\n"
        f"frontend tls\n    bind 127.0.0.1:8443 ssl crt {certs}\n"
    )
    cache = Path(f"{state}.discovery")
    plant(attacker, cache, MARSHAL_BOMB[:5])  # one list of 2^31 - 1
    started = time.monotonic()
    done = run_subprocess("refresh", "--state", state, "--haproxy-config", config, timeout=120)
    assert elapsed(started) < 3
    assert done.stderr.startswith(
        f"ocsptool: {cache}: not used: it belongs to {attacker.name} (uid {attacker.uid}), "
        "not to root (the configurations are read instead)\n"
    )
    assert cache.stat().st_uid == 0  # replaced by the run's own reading


FORGE = """
import json, sys
path, victim, socket = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path) as f:
    version, question, depends, answer = json.load(f)
tables, shapes, keys, shape_of, origins, named, paths, sockets, warnings, socketless = answer
tables.append([socket])
for shape in shapes:
    shape[0] = len(tables) - 1  # every staple to the attacker's socket...
paths = [[n, victim, None, None] for n in range(len(keys))]  # ...and written over the victim
answer = [tables, shapes, keys, shape_of, origins, named, paths, [socket], warnings, socketless]
with open(path, "w") as f:
    json.dump([version, question, depends, answer], f)
"""


def test_a_forged_discovery_cache_never_steers_a_root_run(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder
) -> None:
    """Attack 2: the job user owns the state directory and so the cache a root run left
    there (new files take the directory's owner). It rewrites the routes, keeping every
    stat key valid: each staple to a root-only file, to a socket of its own. A root run
    takes nothing from it: it reads the configuration itself, writes the staple where
    HAProxy reads it, and the victim and the attacker's socket are never touched."""
    certs = arena / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    private = arena / "root-only"
    private.mkdir(mode=0o700)
    victim = private / "victim"
    victim.write_text("root's own file\n")
    state_dir = arena / "state"
    state_dir.mkdir()
    os.chown(state_dir, attacker.uid, attacker.gid)
    state = state_dir / "state.json"
    proxy = HAProxy(certs).start()
    try:
        config = arena / "haproxy.cfg"
        config.write_text(proxy.config.read_text())
        for _ in range(2):  # the second reading is kept (the first wrote into the directory)
            first = run_subprocess("refresh", "--state", state, "--haproxy-config", config)
            assert first.returncode == 0, first.stderr
        cache = Path(f"{state}.discovery")
        assert cache.stat().st_uid == attacker.uid  # the directory's owner's, as promised
        trap = f"{arena}/attacker.sock"
        attacker.run(FORGE, cache, victim, trap)
        again = run_subprocess("refresh", "--force", "--state", state, "--haproxy-config", config)
        assert (again.returncode, again.stderr) == (0, "")
        assert victim.read_text() == "root's own file\n"
        assert not Path(trap).exists()
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
    finally:
        proxy.close()
