"""ocsptool.haproxy.access: a HAProxy socket this user may not use is one line naming whose
it is and the fix, with real users (``useradd``, ``setpriv``: see test_owner) and a real
HAProxy in master-worker mode, its master socket made as Debian's unit makes it
(``-S path``: root's, 0755) and as the README says to (``-S path,mode,660,group,G``)."""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PKI, ROOT
from test_owner import JOB, MONITOR, OTHER, Users, job_layout, shared, users

from ocsptool.haproxy.access import is_master_socket
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.responder import Responder

pytestmark = pytest.mark.haproxy

__all__ = ["shared", "users"]  # test_owner's fixtures, used here by name

StartHAProxy = Callable[..., HAProxy]
README = (ROOT / "README.md").read_text()


def debians_group() -> str:
    """The group the fix names when the socket has none: Debian's haproxy package's."""
    try:
        grp.getgrnam("haproxy")
    except KeyError:
        return "GROUP"
    return "haproxy"


def reachable(proxy: HAProxy) -> None:
    """Let other users reach the sockets' directory (the sockets keep their own modes)."""
    proxy.dir.chmod(0o755)


def test_the_readme_gives_the_master_socket_a_group() -> None:
    assert "-S /run/haproxy-master.sock,mode,660,group,haproxy" in README


def test_the_master_socket_as_debian_makes_it_then_as_the_readme_says(
    users: Users,
    shared: Path,
    pki: PKI,
    responder: Responder,
    start_haproxy: StartHAProxy,
) -> None:
    state, cert = job_layout(shared, pki, responder)
    proxy = start_haproxy(cert.parent, master=True)
    reachable(proxy)
    master = proxy.master_socket
    assert master is not None
    assert is_master_socket(master) and not is_master_socket(proxy.socket)
    info = os.stat(master)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o755)

    # Debian's `-S /run/haproxy-master.sock`: root's, and the job may not use it.
    done = users.ocsptool(JOB, "refresh", "--state", state, "-s", master, cert.parent)
    group = debians_group()
    assert (done.code, done.stdout) == (1, "")
    assert done.stderr == (
        f"ocsptool: HAProxy socket {master}: permission denied: it is HAProxy's master socket "
        f"(-S), root:root 0755, which {JOB} may not write: start HAProxy with -S "
        f"{master},mode,660,group,{group} (Debian: EXTRAOPTS in /etc/default/haproxy) and "
        f"put {JOB} in group {group} (sudo usermod -aG {group} {JOB})\n"
    )
    assert Path(f"{cert}.ocsp").exists()  # the staple on disk is written all the same

    # The fix as the README writes it (a test group: the job's user is a member of it).
    proxy.close()
    proxy = start_haproxy(cert.parent, master=True, master_options=f"mode,660,group,{OTHER}")
    reachable(proxy)
    master = proxy.master_socket
    assert master is not None
    info = os.stat(master)
    assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (grp.getgrnam(OTHER).gr_gid, 0o660)
    done = users.ocsptool(JOB, "refresh", "--state", state, "-s", master, cert.parent)
    assert (done.code, done.stdout, done.stderr) == (0, "", "")
    assert tls_staple(proxy.port, "site.test") == Path(f"{cert}.ocsp").read_bytes()

    # A user outside that group is told to join it.
    live = users.ocsptool(MONITOR, "status", "--live", "--state", state, "-s", master, cert)
    assert live.code in (1, 2)
    assert (
        f"HAProxy socket {master}: permission denied: it is HAProxy's master socket (-S), "
        f"root:{OTHER} 0660 and {MONITOR} is not in group {OTHER}: sudo usermod -aG {OTHER} "
        f"{MONITOR} (then log in again)"
    ) in live.stdout + live.stderr


def test_a_stats_socket_of_root_names_its_stats_socket_line(
    users: Users,
    shared: Path,
    pki: PKI,
    responder: Responder,
    start_haproxy: StartHAProxy,
) -> None:
    state, cert = job_layout(shared, pki, responder)
    proxy = start_haproxy(cert.parent)  # `stats socket ... mode 600 level admin`
    reachable(proxy)
    assert not is_master_socket(proxy.socket)
    done = users.ocsptool(JOB, "refresh", "--state", state, "-s", proxy.socket, cert.parent)
    group = debians_group()
    assert (done.code, done.stdout) == (1, "")
    assert done.stderr == (
        f"ocsptool: HAProxy socket {proxy.socket}: permission denied: it is root:root 0600, "
        f"which {JOB} may not write: give it mode 660 and group {group} (stats socket "
        f"{proxy.socket} mode 660 group {group}) and put {JOB} in group {group} "
        f"(sudo usermod -aG {group} {JOB})\n"
    )


def test_a_directory_on_the_way_is_named(
    users: Users,
    shared: Path,
    pki: PKI,
    responder: Responder,
    start_haproxy: StartHAProxy,
) -> None:
    state, cert = job_layout(shared, pki, responder)
    proxy = start_haproxy(cert.parent)  # in its own 0700 directory
    done = users.ocsptool(JOB, "refresh", "--state", state, "-s", proxy.socket, cert.parent)
    assert (done.code, done.stdout) == (1, "")
    assert done.stderr == (
        f"ocsptool: HAProxy socket {proxy.socket}: permission denied: {proxy.dir} is "
        f"root:root 0700 and {JOB} may not enter it\n"
    )
