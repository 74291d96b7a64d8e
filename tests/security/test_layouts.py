"""The README's own set-up keeps working under the trust rules, and where a rule refuses
it, the line names the fix.

"As an unprivileged user": the job's user (``ocsptool-job``) is a member of HAProxy's
group (``ocsptool-haproxy`` stands for ``haproxy``), the certificate directory is
``root:haproxy 2770`` with ``0640`` bundles, the configuration and its crt-list are
root's in a root-owned directory (``/etc/haproxy``), the socket is ``mode 660 group
haproxy``, the state directory the job's. The job and root both staple it.

A crt-list kept inside the group-writable certificate directory steers the job's user
(members of its own group are its peers: they may already write every bundle and staple
there), but not root: a member of ``haproxy`` must not decide where root writes. And
whoever wrote a crt-list, an option its HAProxy does not have is never honoured: a member
of the group who adds ``[ocsp FILE]`` on HAProxy 2.6 makes the job write nothing there.
"""

from __future__ import annotations

import grp
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.matrix import Binary
from ocsptool.testing.responder import Responder
from tests.conftest import CANDIDATES, PKI, run_subprocess
from tests.security.conftest import Attacker, Job

pytestmark = pytest.mark.haproxy

#: The binaries without crt-list ``[ocsp FILE]`` (it came with 3.0).
BEFORE_3_0: list[Any] = [
    pytest.param(b, id=f"haproxy-{b.version}") for b in CANDIDATES if b.release < (3, 0)
] or [pytest.param("2.6", id="no-haproxy-before-3.0")]

APPEND = """
import sys
with open(sys.argv[1], "a") as f:  # group-writable: the same file, root's still
    f.write(sys.argv[2])
"""


class Layout:
    """The README's layout under ``arena``: ``etc`` (root's, 0755) with the configuration,
    ``etc/certs`` (root:haproxy 2770) with the bundles, ``run`` with the group's socket,
    ``state`` (the job's, 0750)."""

    def __init__(self, arena: Path, job: Job, pki: PKI, url: str) -> None:
        self.job = job
        self.etc = arena / "etc"
        self.etc.mkdir(mode=0o755)
        self.certs = self.etc / "certs"
        self.certs.mkdir()
        os.chown(self.certs, 0, job.group_gid)
        self.certs.chmod(0o2770)
        self.site = self.bundle(pki, url, "site")
        self.other = self.bundle(pki, url, "other")
        self.run = arena / "run"
        self.run.mkdir(mode=0o755)
        self.socket = self.run / "admin.sock"
        state_dir = arena / "state"
        state_dir.mkdir(mode=0o750)
        os.chown(state_dir, job.uid, job.gid)
        self.state = state_dir / "state.json"
        self.config = self.etc / "haproxy.cfg"

    def bundle(self, pki: PKI, url: str, name: str) -> Path:
        path = pki.direct.leaf(f"{name}.test", ocsp_url=url).write_bundle(
            self.certs / f"{name}.pem"
        )
        os.chown(path, 0, self.job.group_gid)
        path.chmod(0o640)
        return path

    def crt_list(self, path: Path, mode: int) -> Path:
        path.write_text(f"{self.site} site.test\n{self.other} other.test\n")
        os.chown(path, 0, self.job.group_gid)
        path.chmod(mode)
        return path

    def haproxy(self, crt_list: Path, binary: str) -> HAProxy:
        """HAProxy serving ``crt_list``, with the README's socket; the operator's
        configuration is its configuration with that socket alone (the harness's own,
        root's 0600 one, is left out of the copy)."""
        proxy = HAProxy(
            crt_list,
            crt_list=True,
            binary=binary,
            global_lines=(
                f"stats socket {self.socket} mode 660 level admin group {self.job.group}",
            ),
        )
        text = proxy.config.read_text()
        self.config.write_text(
            "".join(
                line
                for line in text.splitlines(keepends=True)
                if not line.strip().startswith(f"stats socket {proxy.socket}")
            )
        )
        return proxy

    def refresh_as_job(self) -> tuple[int, str]:
        done = self.job.ocsptool("refresh", "--state", self.state, "--haproxy-config", self.config)
        return done.returncode, done.stderr

    def refresh_as_root(self) -> tuple[int, str]:
        done = run_subprocess("refresh", "--state", self.state, "--haproxy-config", self.config)
        return done.returncode, done.stderr


def stapled(proxy: HAProxy, name: str, bundle: Path) -> bool:
    return tls_staple(proxy.port, name) == Path(f"{bundle}.ocsp").read_bytes()


@pytest.mark.parametrize("who", ["job", "root"])
def test_the_readme_layout_is_stapled_by_the_job_and_by_root(  # noqa: PLR0917 - fixtures
    who: str, job: Job, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    layout = Layout(arena, job, pki, responder.url)
    crt_list = layout.crt_list(layout.etc / "crt-list.txt", 0o644)  # root's /etc/haproxy
    with layout.haproxy(crt_list, haproxy_bin) as proxy:
        refresh = layout.refresh_as_job if who == "job" else layout.refresh_as_root
        assert refresh() == (0, "")
        assert stapled(proxy, "site.test", layout.site)
        assert stapled(proxy, "other.test", layout.other)
        staple = Path(f"{layout.site}.ocsp").stat()
        owner = job.uid if who == "job" else 0  # a new file: the job's, or the directory's
        assert (staple.st_uid, staple.st_gid) == (owner, job.group_gid)


def test_a_crt_list_in_the_group_writable_directory_steers_the_job_but_not_root(
    job: Job, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    layout = Layout(arena, job, pki, responder.url)
    crt_list = layout.crt_list(layout.certs / "crt-list.txt", 0o640)
    with layout.haproxy(crt_list, haproxy_bin) as proxy:
        certs, group = layout.certs, job.group
        assert layout.refresh_as_root() == (
            1,
            f"ocsptool: {crt_list}: crt-list not used (its certificates are not stapled): "
            f"{certs} is root:{group} 2770, writable by group {group}, which may not steer "
            "root: move the file to a directory only root may write, or run ocsptool as a "
            f"member of {group} (or: sudo chmod g-w {certs})\n",
        )
        assert tls_staple(proxy.port, "site.test") is None
        assert layout.refresh_as_job() == (0, "")  # the job's own group: its peers
        assert stapled(proxy, "site.test", layout.site)
        assert stapled(proxy, "other.test", layout.other)


@pytest.mark.parametrize("binary", BEFORE_3_0, indirect=True)
def test_a_group_member_cannot_name_a_staple_file_haproxy_has_no_option_for(  # noqa: PLR0917 - fixtures
    binary: Binary,
    job: Job,
    attacker: Attacker,
    arena: Path,
    pki: PKI,
    responder: Responder,
) -> None:
    """HAProxy 2.6 runs with a group-writable crt-list (the job trusts its group). A
    member of the group adds ``[ocsp FILE]`` (3.0+) naming the job's own state: the job
    asks its HAProxy's version, writes nothing there and says why; the rest is stapled."""
    layout = Layout(arena, job, pki, responder.url)
    crt_list = layout.crt_list(layout.certs / "crt-list.txt", 0o660)
    with layout.haproxy(crt_list, binary.path) as proxy:
        assert layout.refresh_as_job() == (0, "")
        before = layout.state.read_bytes()
        group = (grp.getgrnam(job.group).gr_gid,)
        third = layout.bundle(pki, responder.url, "third")
        attacker.run(APPEND, crt_list, f"{third} [ocsp {layout.state}] third.test\n", groups=group)
        code, stderr = layout.refresh_as_job()
        version = proxy.command("show version").strip()
        assert (code, stderr) == (
            1,
            f"ocsptool: {crt_list}:3: 'crt-list ocsp' is an option of HAProxy 3.0+, and this "
            f"HAProxy is {version} ({layout.socket}): the staple file it names is not "
            f"written, and ocsptool does not staple '{third}': upgrade HAProxy, or remove the "
            f"option (HAProxy {version} refuses it)\n",
        )
        assert (
            json.loads(layout.state.read_bytes())["certs"].keys()
            == json.loads(before)["certs"].keys()
        )
        assert stapled(proxy, "site.test", layout.site)
        assert stapled(proxy, "other.test", layout.other)
