"""Attack 10: symlinks that lead a root run into root-only directories.

The attacker may add entries to a certificate directory (world-writable here, as a
shared one can be). It links a subdirectory, a certificate name, the PATH itself and a
directory on the way to a staple file into a root-only directory holding a bundle.
ocsptool (root) must not parse what is in there through the attacker's link, nor write
beside it: one line per refused symlink, naming it, its owner, where it points and the
fix; the rest goes on, and the certificates HAProxy serves are still stapled.

The rule (``ocsptool.trust.link_problem``, like the kernel's ``protected_symlinks``): a
symlink is followed only when root, this run's user or the owner of its target made it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, run_subprocess
from tests.security.conftest import Attacker, world_writable

pytestmark = pytest.mark.haproxy

LINKS = """
import os, sys
for target, link in zip(sys.argv[1::2], sys.argv[2::2]):
    os.symlink(target, link)
"""

#: The attacker moves a directory of root's aside (its parent is world-writable, not
#: sticky) and puts a symlink of its own in its place.
SWAP = """
import os, sys
directory, target = sys.argv[1], sys.argv[2]
os.rename(directory, directory + ".old")
os.symlink(target, directory)
"""

OWN_DIRECTORY = """
import os, shutil, sys
directory, bundle, link = sys.argv[1:]
os.mkdir(directory)
shutil.copyfile(bundle, os.path.join(directory, "own.pem"))
os.symlink(directory, link)
"""


def refused(link: Path, target: Path, attacker: Attacker) -> str:
    """The line for a symlink of the attacker's to ``target``, a root-only one."""
    return (
        f"{link}: symlink not followed: it belongs to {attacker.name} and points to {target}, "
        "which belongs to root (a symlink is followed only when root or the owner of its "
        f"target made it): remove it, or if it is right: sudo chown -h root: {link}"
    )


def root_only(arena: Path, pki: PKI, url: str) -> tuple[Path, Path]:
    """A directory only root may enter, with a bundle of root's in it."""
    private = arena / "private"
    private.mkdir(mode=0o700)
    secret = pki.direct.leaf("secret.test", ocsp_url=url).write_bundle(private / "site.pem")
    return private, secret


def test_a_scan_follows_no_symlink_of_the_attacker_into_a_root_only_directory(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    certs = world_writable(arena / "certs")
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    private, secret = root_only(arena, pki, responder.url)
    lair = world_writable(arena / "lair", sticky=False)
    attacker.run(LINKS, private, certs / "sub", secret, certs / "evil.pem", private, lair / "certs")
    state = arena / "state" / "state.json"
    with HAProxy(site, binary=haproxy_bin) as proxy:
        done = run_subprocess("refresh", "--state", state, "-s", proxy.socket, certs)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (
            f"ocsptool: {refused(certs / 'evil.pem', secret, attacker)}\n"
            f"ocsptool: {refused(certs / 'sub', private, attacker)}\n"
        )
        # the PATH itself: a symlink of the attacker's
        as_path = run_subprocess("refresh", "--state", state, lair / "certs")
        assert (as_path.returncode, as_path.stderr) == (
            1,
            f"ocsptool: {refused(lair / 'certs', private, attacker)}\n",
        )
        assert sorted(p.name for p in private.iterdir()) == ["site.pem"]  # nothing beside it
        assert not (certs / "evil.pem.ocsp").exists()
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()


def test_a_symlink_into_its_owners_own_directory_is_followed(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder
) -> None:
    """The rule, not a blanket refusal: the link's owner owns where it leads, so it leads
    nowhere its owner could not write anyway. The staple is written there (the
    directory's owner gets it, as every new file)."""
    certs = world_writable(arena / "certs")
    bundle = arena / "bundle.pem"
    pki.direct.leaf("own.test", ocsp_url=responder.url).write_bundle(bundle)
    bundle.chmod(0o644)
    own = world_writable(arena / "lair") / "own"
    attacker.run(OWN_DIRECTORY, own, bundle, certs / "own")
    done = run_subprocess("refresh", "--state", arena / "state" / "state.json", certs)
    assert (done.returncode, done.stderr) == (0, "")
    staple = own / "own.pem.ocsp"
    assert staple.stat().st_size > 0
    assert staple.stat().st_uid == attacker.uid


def test_a_staple_is_never_written_through_a_directory_the_attacker_swapped(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    """HAProxy's configuration (root's) loads ``shared/live/site.pem``; ``shared`` is
    world-writable. Once HAProxy runs, the attacker moves ``live`` aside and links it to a
    root-only directory that holds a ``site.pem`` of root's: the staple for it is fetched,
    but never written there."""
    url = responder.url
    shared = world_writable(arena / "shared", sticky=False)
    live = shared / "live"
    live.mkdir()
    pki.direct.leaf("shared.test", ocsp_url=url).write_bundle(live / "site.pem")
    certs = arena / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
    private, _ = root_only(arena, pki, url)
    proxy = HAProxy(certs, binary=haproxy_bin)
    config = proxy.config
    config.write_text(config.read_text().replace(f"crt {certs}", f"crt {certs} crt {live}"))
    try:
        proxy.start()
        attacker.run(SWAP, live, private)
        state = arena / "state" / "state.json"
        done = run_subprocess("refresh", "--state", state, "--haproxy-config", config)
        staple = live / "site.pem.ocsp"
        assert (done.returncode, done.stderr) == (
            1,
            f"ocsptool: {live}/site.pem: cannot write {staple}: "
            f"{refused(live, private, attacker)}\n",
        )
        assert sorted(p.name for p in private.iterdir()) == ["site.pem"]
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
    finally:
        proxy.close()
