"""ocsptool.nginx.control against a real nginx: the master, nginx -t, one reload, refusals.

The staple nginx serves is read with the hand-written TLS 1.2 client of the HAProxy
harness (``tls_staple``), independent of ``ocsptool.nginx.served``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PKI

from ocsptool.nginx import NginxNotRunning, ReloadFailed, ReloadRefused, read_nginx_config
from ocsptool.nginx.config import DEFAULT_CONFIG, DEFAULT_PID, DEFAULT_PREFIX
from ocsptool.nginx.control import (
    NginxError,
    Reloaded,
    check_command,
    check_config,
    master_pid,
    reload_nginx,
    worker_pids,
)
from ocsptool.testing.haproxy import tls_staple
from ocsptool.testing.haproxy_configs import good_staple
from ocsptool.testing.nginx import Nginx, Site, free_port, issue

pytestmark = pytest.mark.nginx


@dataclass
class Served:
    nginx: Nginx
    site: Site
    port: int
    staple: Path

    def check(self) -> list[str]:
        return check_command(self.nginx.binary, self.nginx.config, self.nginx.prefix)

    def reload(self, **options: Any) -> Reloaded:
        """``reload_nginx`` with the pid file and error log the configuration names."""
        conf = read_nginx_config(self.nginx.config, prefix=self.nginx.prefix)
        return reload_nginx(conf.pid_path, error_logs=conf.error_logs, **options)


@pytest.fixture
def served(start_nginx: Callable[..., Nginx], pki: PKI) -> Iterator[Served]:
    """A running nginx that staples ``site.test``'s response from its own file."""
    nginx = start_nginx(start=False)
    site = issue(pki.direct, nginx.dir / "tls", "site.test")
    staple = nginx.write("tls/site.ocsp", good_staple(site.leaf, pki.direct))
    port = free_port()
    nginx.write(
        "conf.d/site.conf",
        f"server {{ listen 127.0.0.1:{port} ssl; server_name site.test;\n"
        f"  ssl_certificate {site.cert}; ssl_certificate_key {site.key};\n"
        "  ssl_stapling on; ssl_stapling_file tls/site.ocsp; }\n",
    )
    nginx.start()
    assert tls_staple(port, "site.test") == staple.read_bytes()
    yield Served(nginx, site, port, staple)


# -- the master and its workers ------------------------------------------------------------


def test_master_and_workers(served: Served) -> None:
    nginx = served.nginx
    assert master_pid(nginx.pid_file) == nginx.master_pid
    workers = worker_pids(nginx.master_pid)
    assert workers == nginx.workers() and len(workers) == 1


def test_not_running(served: Served, tmp_path: Path) -> None:
    nginx = served.nginx
    pid_file = nginx.pid_file
    nginx.stop()  # nginx removes its pid file on exit
    assert not pid_file.exists()
    with pytest.raises(NginxNotRunning) as gone:
        master_pid(pid_file)
    assert str(gone.value) == f"{pid_file}: no such file; nginx is not running"

    # nginx -t leaves an empty pid file behind when there is none
    assert nginx.check().returncode == 0
    assert pid_file.read_bytes() == b""
    with pytest.raises(NginxNotRunning) as empty:
        master_pid(pid_file)
    assert str(empty.value) == f"{pid_file}: holds no pid; nginx is not running"

    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file.write_text(f"{dead.pid}\n")
    with pytest.raises(NginxNotRunning) as stale:
        master_pid(pid_file)
    assert str(stale.value) == (
        f"{pid_file}: no process {dead.pid}; nginx is not running (a stale pid file)"
    )

    pid_file.write_text(f"{os.getpid()}\n")
    with pytest.raises(NginxNotRunning, match=r"process \d+ is python[\d.]*, not nginx"):
        master_pid(pid_file)

    with pytest.raises(NginxNotRunning):
        served.reload(check=served.check())


def test_nginx_without_a_master_cannot_reload(nginx_bin: str, tmp_path: Path) -> None:
    nginx = Nginx(binary=nginx_bin)
    try:
        process = subprocess.Popen(
            nginx.argv("-g", "daemon off; master_process off;"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not nginx.pid_file.exists() or nginx.pid_file.read_text() != f"{process.pid}\n":
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.01)
            with pytest.raises(NginxError) as single:
                master_pid(nginx.pid_file)
            assert str(single.value) == (
                f"{nginx.pid_file}: process {process.pid} is nginx without a master process "
                '("master_process off"); it cannot be reloaded'
            )
        finally:
            process.terminate()
            process.wait(5)
    finally:
        nginx.close()


# -- nginx -V and nginx -t -----------------------------------------------------------------


def test_the_debian_defaults_are_the_real_binarys(nginx_bin: str) -> None:
    """What ocsptool assumes when a configuration says nothing (its prefix, the pid file,
    the main configuration) is what Debian's nginx was built with."""
    built = subprocess.run([nginx_bin, "-V"], capture_output=True, text=True, check=True)
    arguments = built.stderr.split()
    assert f"--prefix={DEFAULT_PREFIX.rstrip('/')}" in arguments
    assert f"--pid-path={DEFAULT_PID}" in arguments
    assert f"--conf-path={DEFAULT_CONFIG}" in arguments


def test_check_config(served: Served) -> None:
    assert check_config(served.check()).ok
    broken = served.nginx.write("conf.d/broken.conf", "server {\n  bogus on;\n}\n")
    result = check_config(served.check())
    assert (result.ok, result.reason) == (False, f'unknown directive "bogus" in {broken}:2')


def test_check_config_cannot_run() -> None:
    with pytest.raises(ReloadFailed) as failed:
        check_config(["/nonexistent/nginx", "-t"])
    assert str(failed.value) == ("/nonexistent/nginx -t: cannot run it: No such file or directory")


# -- the reload ------------------------------------------------------------------------------


def test_reload_serves_the_new_staple(served: Served, pki: PKI) -> None:
    old_bytes = served.staple.read_bytes()
    new_bytes = good_staple(served.site.leaf, pki.direct)
    assert new_bytes != old_bytes
    served.staple.write_bytes(new_bytes)
    # written is not served: nginx reads the file only when it loads its configuration
    assert tls_staple(served.port, "site.test") == old_bytes
    old_workers = served.nginx.workers()
    reloaded = served.reload(check=served.check())
    assert reloaded.master == served.nginx.master_pid
    assert reloaded.old_workers == old_workers
    assert reloaded.new_workers and not reloaded.new_workers & old_workers
    assert tls_staple(served.port, "site.test") == new_bytes


def test_reload_with_the_operators_command(served: Served, pki: PKI) -> None:
    """What Debian's unit runs for ``systemctl reload nginx``: ``nginx -s reload``."""
    new_bytes = good_staple(served.site.leaf, pki.direct)
    served.staple.write_bytes(new_bytes)
    old_workers = served.nginx.workers()
    reloaded = served.reload(check=None, command=served.nginx.argv("-s", "reload"))
    assert not reloaded.new_workers & old_workers
    assert tls_staple(served.port, "site.test") == new_bytes


def test_refused_by_nginx_t(served: Served) -> None:
    """A broken include: nginx -t says why, nothing is signalled, nginx keeps serving."""
    broken = served.nginx.write("conf.d/broken.conf", "bogus on;\n")
    old_workers = served.nginx.workers()
    check = served.check()
    with pytest.raises(ReloadRefused) as refused:
        served.reload(check=check)
    reason = f'unknown directive "bogus" in {broken}:1'
    assert refused.value.reason == reason
    assert str(refused.value) == (
        f"{' '.join(check)} failed, so nginx was not reloaded: {reason}; "
        "nginx keeps serving the previous staples"
    )
    assert served.nginx.workers() == old_workers
    assert tls_staple(served.port, "site.test") == served.staple.read_bytes()


def test_refused_by_the_master(served: Served) -> None:
    """Without the test first, the master refuses the reload itself: the reason comes
    from its error log, and the old worker keeps serving."""
    broken = served.nginx.write("conf.d/broken.conf", "bogus on;\n")
    old_workers = served.nginx.workers()
    with pytest.raises(ReloadRefused) as refused:
        served.reload(check=None)
    reason = f'unknown directive "bogus" in {broken}:1'
    assert refused.value.reason == reason
    assert str(refused.value) == (
        f"nginx (pid {served.nginx.master_pid}) refused the reload: {reason}; "
        "it keeps serving the previous configuration and staples"
    )
    assert served.nginx.workers() == old_workers
    assert tls_staple(served.port, "site.test") == served.staple.read_bytes()


def test_refused_although_nginx_t_passed(served: Served) -> None:
    """nginx -t does not bind: a port taken since is refused only by the master."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served.nginx.write("conf.d/more.conf", f"server {{ listen 127.0.0.1:{port}; }}\n")
        check = served.check()
        assert check_config(check).ok
        with pytest.raises(ReloadRefused) as refused:
            served.reload(check=check)
    assert refused.value.reason == (
        f"bind() to 127.0.0.1:{port} failed (98: Address already in use)"
    )
    assert tls_staple(served.port, "site.test") == served.staple.read_bytes()


def test_reload_command_fails(served: Served) -> None:
    with pytest.raises(ReloadFailed) as failed:
        served.reload(check=None, command=["sh", "-c", "echo 'unit nginx not found' >&2; exit 5"])
    assert str(failed.value) == (
        "sh -c 'echo '\"'\"'unit nginx not found'\"'\"' >&2; exit 5': exited with 5: "
        "unit nginx not found"
    )
    with pytest.raises(ReloadFailed, match=r"^/nonexistent/systemctl reload nginx: cannot run it"):
        served.reload(check=None, command=["/nonexistent/systemctl", "reload", "nginx"])


def test_no_new_workers_before_the_timeout(served: Served) -> None:
    """A command that reloads nothing (and nothing logged): never reported as reloaded."""
    with pytest.raises(ReloadFailed) as failed:
        served.reload(check=None, command=["true"], timeout=0.3)
    assert re.fullmatch(
        r"nginx \(pid \d+\) started no new workers within 0\.3s of the reload; "
        r"its error log may say why",
        str(failed.value),
    )


def test_reload_without_a_pid_file_trusts_the_command(served: Served) -> None:
    reloaded = reload_nginx(None, check=None, command=served.nginx.argv("-s", "reload"))
    assert reloaded.master is None and reloaded.new_workers == frozenset()
