"""The monitoring user of workload 1's ``check`` row (issue 17), set up as the README says.

A system user (``ocsptool-bench-mon``) in the job's group (``ocsptool-bench``): it may
read the state (its directory ``0750``, the state and its lock ``0640``, that group's)
but not the certificate directory (``0700``, root's), so ``check`` reports every
certificate from the state, as monitoring does it on a real host. It runs through
``setpriv --reuid --regid --init-groups``. Creating and becoming it needs root; the
users and groups this run created are removed afterwards.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import measure

USER = "ocsptool-bench-mon"
#: The job's group (``ocsptool`` in the README): owns the state directory.
GROUP = "ocsptool-bench"
USERADD = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
USERADD += ["--shell", "/usr/sbin/nologin"]
TOOLS = ("useradd", "groupadd", "usermod", "userdel", "groupdel", "setpriv")


def unavailable() -> str | None:
    """Why the row cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (useradd a monitoring user, run as it with setpriv)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian: passwd, util-linux)"
    return None


@dataclass(frozen=True)
class Monitor:
    uid: int
    gid: int
    #: A Python the user may run, and the environment (``PYTHONPATH``) that finds
    #: ocsptool and its dependencies with it. The reference uses the same.
    python: str
    env: Mapping[str, str]

    def argv(self, *argv: object) -> list[str]:
        who = [f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]
        return ["setpriv", *who, "--", *map(str, argv)]

    def ocsptool(self, *args: object) -> list[str]:
        return self.argv(self.python, "-m", "ocsptool", *args)

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=dict(self.env),
            cwd=measure.PACKAGE_ROOT,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )


@contextmanager
def monitoring_user() -> Iterator[Monitor]:
    """The user, in the job's group; what this created is removed on the way out.

    Raises ``RuntimeError`` naming the cause when it cannot run ocsptool (a checkout or
    an interpreter it may not reach)."""
    made_group = _ensure(["groupadd", "--system", GROUP], lambda: grp.getgrnam(GROUP))
    made_user = _ensure([*USERADD, USER], lambda: pwd.getpwnam(USER))
    try:
        if USER not in grp.getgrnam(GROUP).gr_mem:
            subprocess.run(["usermod", "-aG", GROUP, USER], check=True, capture_output=True)
        entry = pwd.getpwnam(USER)
        yield _with_python(entry.pw_uid, entry.pw_gid)
    finally:
        if made_user:
            subprocess.run(["userdel", USER], check=False, capture_output=True)
        if made_group:
            subprocess.run(["groupdel", GROUP], check=False, capture_output=True)


def _ensure(command: list[str], lookup: Callable[[], object]) -> bool:
    """Create with ``command`` unless ``lookup()`` finds it; whether this created it."""
    try:
        lookup()
        return False
    except KeyError:
        pass
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        lookup()  # a parallel run may have made it first
    except KeyError:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()}") from None
    return done.returncode == 0


def _with_python(uid: int, gid: int) -> Monitor:
    """An interpreter the user may run, that is the same one for root: this one, else the
    system's of the same version (this venv's may live under root's private home, and a
    path the user cannot resolve may run another Python) with the venv's packages."""
    paths = sysconfig.get_paths()
    base = measure.env()
    extra = os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    env = dict(base, PYTHONPATH=f"{base['PYTHONPATH']}{os.pathsep}{extra}")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    code = "import sys, ocsptool.cli, click; print(sys.version, sys.base_prefix)"
    tried = []
    for python in dict.fromkeys([sys.executable, f"/usr/bin/python{version}"]):
        candidate = Monitor(uid, gid, python, env)
        probe = candidate.run(candidate.argv(python, "-c", code))
        mine = candidate.run([python, "-c", code])
        if probe.returncode == 0 and probe.stdout == mine.stdout:
            return candidate
        lines = probe.stderr.strip().splitlines() or [f"runs {probe.stdout.strip()!r} for it"]
        tried.append(f"{python}: {lines[-1]}")
    raise RuntimeError(
        f"{USER} cannot run ocsptool from {measure.PACKAGE_ROOT}: {'; '.join(tried)}"
    )


@dataclass(frozen=True)
class Layout:
    """The certificates (hard links to a warm set's bundles and staples) in a directory the
    monitoring user may not read, and a state directory of the job's group."""

    certs: Path
    state: Path


@contextmanager
def layout(paths: Sequence[Path]) -> Iterator[Layout]:
    """A directory every user can reach (under the temporary directory), removed after."""
    base = Path(tempfile.mkdtemp(prefix="ocsptool-bench-monitor-"))
    try:
        base.chmod(0o755)
        certs = base / "certs"
        certs.mkdir(mode=0o700)
        for path in paths:
            for name in (path.name, f"{path.name}.ocsp"):
                _link(path.parent / name, certs / name)
        state_dir = base / "state"
        state_dir.mkdir()
        os.chown(state_dir, 0, grp.getgrnam(GROUP).gr_gid)
        state_dir.chmod(0o750)  # the README's: the job's directory, its group may read
        yield Layout(certs, state_dir / "state.json")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system: a copy
        shutil.copy2(source, target)


def group_of(path: Path) -> tuple[str, int]:
    """``path``'s group and mode bits, to show that monitoring reads it as the README says."""
    st = path.stat()
    return grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o777
