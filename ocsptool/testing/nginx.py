"""A real nginx for tests: the test's own configuration, ports and files.

``Nginx()`` writes a main configuration into a short temporary directory (pid file,
error log, every ``*_temp_path`` and ``access_log off`` there, one worker) whose
``http`` block includes ``conf.d/*.conf``, a path relative to the configuration's
directory as nginx resolves it. A test writes its server blocks there and starts the
real binary, ``nginx -c DIR/nginx.conf -p DIR/ -g 'daemon off;'``, as a child process
(master plus worker)::

    with Nginx() as nginx:
        nginx.write("conf.d/site.conf", f"server {{ listen 127.0.0.1:{port} ssl; ... }}")
        nginx.start()
        ...
        nginx.reload()  # SIGHUP; returns once only new workers serve

This harness drives nginx on its own (signals, ``/proc``), never through
``ocsptool.nginx.control``, so it can test that module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric import rsa

from ocsptool.testing.haproxy import free_port
from ocsptool.testing.pki import Authority, Leaf
from ocsptool.testing.processes import stop_process

__all__ = ["Nginx", "Site", "free_port", "issue", "nginx_binary"]

_START_TIMEOUT = 10.0
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str | None:
    """The nginx executable: ``$OCSPTOOL_NGINX``, then ``PATH``, then the usual sbin dirs."""
    configured = os.environ.get("OCSPTOOL_NGINX")
    if configured:
        return os.path.abspath(configured) if os.access(configured, os.X_OK) else None
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


@dataclass(frozen=True)
class Site:
    """A leaf for nginx: ``cert`` holds the leaf then its chain, ``key`` its key."""

    leaf: Leaf
    cert: Path
    key: Path


def issue(authority: Authority, directory: Path, name: str, *, rsa_key: bool = False) -> Site:
    """A leaf for ``name`` from ``authority`` (EC P-256, or RSA 2048 with ``rsa_key``)
    written as ``<name>.crt`` and ``<name>.key`` in ``directory``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else None
    leaf = authority.leaf(name, ocsp_url="http://127.0.0.1:9/", key=key)  # type: ignore[arg-type]
    directory.mkdir(parents=True, exist_ok=True)
    cert, key_file = leaf.write_tls(directory)
    return Site(
        leaf, cert.rename(directory / f"{name}.crt"), key_file.rename(directory / f"{name}.key")
    )


class Nginx:
    """A real nginx (master and one worker) in its own directory.

    ``main_lines`` go into the main context, ``http_lines`` into ``http`` before the
    ``include``. ``dir`` is both the configuration's directory and the prefix (``-p``).
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        main_lines: tuple[str, ...] = (),
        http_lines: tuple[str, ...] = (),
    ) -> None:
        found = binary or nginx_binary()
        if found is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.binary = found
        self.dir = Path(tempfile.mkdtemp(prefix="ocsptool-nginx-"))
        self.dir.chmod(0o755)  # as root the worker runs as nobody
        self.prefix = f"{self.dir}/"
        self.config = self.dir / "nginx.conf"
        self.pid_file = self.dir / "nginx.pid"
        self.error_log = self.dir / "error.log"
        self.stderr_log = self.dir / "stderr.log"
        (self.dir / "conf.d").mkdir()
        (self.dir / "temp").mkdir()  # nginx makes only the last part of a *_temp_path
        self.config.write_text(self._config_text(main_lines, http_lines))
        self._process: subprocess.Popen[bytes] | None = None

    def _config_text(self, main_lines: tuple[str, ...], http_lines: tuple[str, ...]) -> str:
        temp = self.dir / "temp"
        lines = [
            "# written by ocsptool.testing.nginx",
            f"pid {self.pid_file};",
            f"error_log {self.error_log} notice;",
            "worker_processes 1;",
            *main_lines,
            "events { worker_connections 64; }",
            "http {",
            "    access_log off;",
            *(f"    {name}_temp_path {temp}/{name};" for name in _TEMP_PATHS),
            *(f"    {line}" for line in http_lines),
            "    include conf.d/*.conf;",
            "}",
            "",
        ]
        return "\n".join(lines)

    def write(self, name: str, text: str | bytes) -> Path:
        """Write ``name`` (relative to ``dir``) and return its path."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    # -- lifecycle ----------------------------------------------------------------------

    def argv(self, *extra: str) -> list[str]:
        return [self.binary, "-c", str(self.config), "-p", self.prefix, *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on this configuration (returncode 0: nginx accepts it)."""
        return subprocess.run(
            self.argv("-t"),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> Nginx:
        """Start nginx in the foreground and wait until its worker runs."""
        if self._process is not None:
            raise RuntimeError("nginx is already running")
        with self.stderr_log.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv("-g", "daemon off;"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait(lambda: self._pid_file() == self.master_pid and bool(self.workers()))
        except BaseException:
            self.stop()
            raise
        return self

    def reload(self) -> Nginx:
        """SIGHUP to the master; returns once only new workers serve and the old ones
        have exited. A refused reload raises (with nginx's output)."""
        old = self.workers()
        self.hangup()
        self._wait(lambda: bool(self.workers()) and not self.workers() & old)
        self._wait(lambda: not set(self.children()) & old)
        return self

    def hangup(self) -> None:
        """SIGHUP to the master, without waiting for anything."""
        os.kill(self.master_pid, signal.SIGHUP)

    def stop(self) -> None:
        """Stop nginx (SIGTERM, then SIGKILL); the directory stays."""
        process, self._process = self._process, None
        stop_process(process, 5)

    def close(self) -> None:
        """Stop nginx and delete its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Nginx:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- what runs --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def master_pid(self) -> int:
        if self._process is None:
            raise RuntimeError("nginx is not running")
        return self._process.pid

    def children(self) -> dict[int, str]:
        """The master's child processes and their titles."""
        pid = self.master_pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return {}
        found = {}
        for word in text.split():
            try:
                title = Path(f"/proc/{word}/cmdline").read_bytes()
            except OSError:
                continue
            found[int(word)] = title.replace(b"\0", b" ").decode(errors="replace").strip()
        return found

    def workers(self) -> set[int]:
        """The workers that serve (not those shutting down after a reload)."""
        return {
            pid
            for pid, title in self.children().items()
            if title.startswith("nginx: worker process") and "shutting down" not in title
        }

    @property
    def output(self) -> str:
        """What nginx printed and logged so far (startup errors, [emerg] lines)."""
        parts = []
        for path in (self.stderr_log, self.error_log):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def _pid_file(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _wait(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while not ready():
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise RuntimeError(f"nginx exited with {code}:\n{self.output}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx was not ready within {_START_TIMEOUT}s:\n{self.output}")
            time.sleep(0.01)
