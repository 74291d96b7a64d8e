"""Attack 6: whoever listens on a runtime-API address is not trusted to be HAProxy.

The attacker binds the address ocsptool is told to use (a Unix socket in a directory it
may write, or a TCP port while HAProxy is down) and misbehaves: it trickles bytes (one
deadline per exchange must end the wait), floods without a prompt (the reply is cut off
at 16 MiB, in linear time), or plays HAProxy to be handed a renewed certificate WITH its
private key (``--update-certs``). Beside it, a real HAProxy must get its staples.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsptool.haproxy import dialect_for, loaded_certs
from ocsptool.haproxy.peer import could_read
from ocsptool.testing.haproxy import HAProxy, free_port, tls_staple
from ocsptool.testing.pki import Leaf
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, run_subprocess
from tests.security.conftest import Attacker, Peer, elapsed
from tests.security.peers import FLOOD, IMPOSTOR, TRICKLE

pytestmark = pytest.mark.haproxy

TIMEOUT = 3  # --timeout of the runs below; the bounds are 3x it


class Site:
    """A certificate directory only root may read (keys 0600), served by a real HAProxy."""

    def __init__(self, arena: Path, pki: PKI, url: str) -> None:
        self.dir = arena / "certs"
        self.dir.mkdir(mode=0o755)
        self.pki, self.url = pki, url
        self.leaf: Leaf | None = None
        self.path = self.issue()

    def issue(self) -> Path:
        self.leaf = self.pki.direct.leaf("site.test", ocsp_url=self.url)
        path = self.leaf.write_bundle(self.dir / "site.pem")
        path.chmod(0o600)
        return path

    @property
    def staple(self) -> bytes:
        return Path(f"{self.path}.ocsp").read_bytes()


@pytest.fixture
def site(arena: Path, pki: PKI, responder: Responder) -> Site:
    return Site(arena, pki, responder.url)


@pytest.fixture
def proxy(site: Site, haproxy_bin: str) -> Iterator[HAProxy]:
    with HAProxy(site.dir, binary=haproxy_bin, tcp_socket=True) as running:
        yield running


@pytest.fixture
def lair(arena: Path, attacker: Attacker) -> Path:
    """A directory of the attacker's own (where it binds a Unix socket)."""
    path = arena / "lair"
    path.mkdir(mode=0o755)
    os.chown(path, attacker.uid, attacker.gid)
    return path


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


def refresh(state: Path, *args: object) -> tuple[int, list[str], float]:
    started = time.monotonic()
    done = run_subprocess("refresh", "--state", state, "--timeout", TIMEOUT, *args, timeout=120)
    return done.returncode, done.stderr.splitlines(), elapsed(started)


# -- one deadline per exchange, bounded replies ---------------------------------------------


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_a_peer_that_trickles_bytes_is_given_up_after_the_timeout(  # noqa: PLR0917 - fixtures
    where: str,
    attacker: Attacker,
    lair: Path,
    site: Site,
    proxy: HAProxy,
    peers: list[Peer],
    tmp_path: Path,
) -> None:
    bound = str(lair / "admin.sock") if where == "unix" else f"127.0.0.1:{free_port()}"
    peers.append(attacker.start(TRICKLE, bound))
    address = bound if where == "unix" else f"ipv4@{bound}"
    state = tmp_path / "state.json"
    code, lines, took = refresh(state, "-s", address, "-s", proxy.socket, site.dir)
    assert (code, lines) == (
        1,
        [f"ocsptool: HAProxy socket {address}: timed out after {TIMEOUT}s waiting for HAProxy"],
    )
    assert took < 3 * TIMEOUT, took
    assert tls_staple(proxy.port, "site.test") == site.staple


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_a_peer_that_floods_without_a_prompt_is_cut_off(  # noqa: PLR0917 - fixtures
    where: str,
    attacker: Attacker,
    lair: Path,
    site: Site,
    proxy: HAProxy,
    peers: list[Peer],
    tmp_path: Path,
) -> None:
    bound = str(lair / "admin.sock") if where == "unix" else f"127.0.0.1:{free_port()}"
    peers.append(attacker.start(FLOOD, bound))
    address = bound if where == "unix" else f"ipv4@{bound}"
    before = os.times()
    state = tmp_path / "state.json"
    code, lines, took = refresh(state, "-s", address, "-s", proxy.socket, site.dir)
    cpu = os.times().children_user - before.children_user
    assert (code, lines) == (
        1,
        [
            f"ocsptool: HAProxy socket {address}: sent more than 16 MiB without a prompt: "
            "this is not HAProxy's runtime API"
        ],
    )
    assert took < 3 * TIMEOUT and cpu < 3 * TIMEOUT, (took, cpu)
    assert tls_staple(proxy.port, "site.test") == site.staple


# -- the private key goes only to a listener that could read it ------------------------------


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_an_impostor_is_never_sent_the_private_key(  # noqa: PLR0917 - fixtures
    where: str,
    attacker: Attacker,
    lair: Path,
    site: Site,
    proxy: HAProxy,
    peers: list[Peer],
    tmp_path: Path,
) -> None:
    """HAProxy's TCP address is free (HAProxy down, or another one): the attacker binds it
    and answers like a HAProxy holding an older serial, asking for the renewed bundle."""
    bound = str(lair / "admin.sock") if where == "unix" else f"127.0.0.1:{free_port()}"
    loot = lair / "loot"
    peers.append(attacker.start(IMPOSTOR, bound, loot, site.path))
    address = bound if where == "unix" else f"ipv4@{bound}"
    state = tmp_path / "state.json"
    code, lines, _ = refresh(state, "--update-certs", "-s", address, "-s", proxy.socket, site.dir)
    assert site.leaf is not None
    serial = f"{site.leaf.cert.serial_number:X}"
    assert (code, lines) == (
        1,
        [
            f"ocsptool: {site.path}: HAProxy {address}: HAProxy still holds the "
            f"certificate with serial 1, but the file has serial {serial} (renewed): reload "
            f"HAProxy to load it (the private key was not sent to {address}: it listens as "
            f"{attacker.name} (uid {attacker.uid}), who cannot read the file)"
        ],
    )
    stolen = loot.read_bytes()
    assert b"show ssl cert " in stolen  # it was asked, and answered
    assert b"PRIVATE KEY" not in stolen and b"set ssl cert" not in stolen
    assert tls_staple(proxy.port, "site.test") == site.staple


def test_the_real_haproxy_over_tcp_is_sent_the_renewed_certificate(
    site: Site, proxy: HAProxy, tmp_path: Path
) -> None:
    """The same rule lets the real HAProxy (root's listener) load the renewed bundle."""
    state = tmp_path / "state.json"
    assert proxy.tcp_address is not None
    assert refresh(state, "-s", proxy.tcp_address, site.dir)[:2] == (0, [])
    old = site.staple
    assert tls_staple(proxy.port, "site.test") == old
    held = site.leaf.cert.serial_number if site.leaf else None
    site.issue()  # renewed on disk: another key and serial
    code, lines, _ = refresh(state, "--update-certs", "-s", proxy.tcp_address, site.dir)
    assert site.leaf is not None
    dialect = dialect_for(proxy.command("show version"))
    if not dialect.staples_replaced_certs:  # 2.8.0: never sent, the reload fix said instead
        assert code == 1
        assert lines[-1].endswith(
            f"(HAProxy {dialect.version} does not staple a certificate replaced at runtime)"
        )
        assert (str(site.path), held) in loaded_certs(proxy.socket)
        assert tls_staple(proxy.port, "site.test") == old
        return
    assert (code, lines) == (0, [])
    assert (str(site.path), site.leaf.cert.serial_number) in loaded_certs(proxy.socket)
    assert tls_staple(proxy.port, "site.test") == site.staple != old


def test_who_may_read_a_key() -> None:
    def st(uid: int, gid: int, mode: int) -> os.stat_result:
        return os.stat_result((0o100000 | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))

    assert could_read(0, 0, st(5, 5, 0o000))  # root reads anything
    assert could_read(5, 9, st(5, 5, 0o600)) and not could_read(5, 9, st(5, 5, 0o040))
    assert could_read(7, 5, st(5, 5, 0o640)) and not could_read(7, 5, st(5, 5, 0o600))
    assert could_read(7, None, st(5, 5, 0o604)) and not could_read(7, None, st(5, 5, 0o640))
