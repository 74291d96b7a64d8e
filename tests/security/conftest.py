"""The attacker: a real unprivileged user, and what it can reach.

``attacker`` is the user ``ocsptool-attacker`` (created with ``useradd`` for the session
when missing, removed afterwards), acting through ``setpriv --reuid --regid
--clear-groups``. Creating and becoming it needs root: without root the suite skips,
except under CI=true, where it fails (an attack suite that quietly skips proves nothing).

``arena`` is a directory under /tmp that the attacker can reach (pytest's own temporary
directories are private to root); the tests make the places the attacker may write in it.
The operator (ocsptool, HAProxy) runs as root, as the issue's reproductions did.

``job`` is the README's job user (``ocsptool-job``, made the same way), a member of a group
that stands for ``haproxy`` (``ocsptool-haproxy``): for the README's own layouts, run as
that user. The attacker can act as a member of that group too (``groups=``).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NAME = "ocsptool-attacker"
USERADD = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
USERADD += ["--shell", "/usr/sbin/nologin"]


@dataclass(frozen=True)
class Attacker:
    name: str
    uid: int
    gid: int
    #: A Python the attacker may run (this venv's may live under root's private home).
    executable: str

    def argv(self, *argv: str | os.PathLike[str], groups: tuple[int, ...] = ()) -> list[str]:
        """``argv`` run as the attacker: its uid and gid, and only the supplementary
        ``groups`` given (none by default)."""
        who = [f"--reuid={self.uid}", f"--regid={self.gid}"]
        who.append(f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups")
        return ["setpriv", *who, "--", *map(os.fspath, argv)]

    def python(
        self, code: str, *args: str | os.PathLike[str], groups: tuple[int, ...] = ()
    ) -> list[str]:
        """The argv of a stdlib-only Python program run as the attacker."""
        return self.argv(self.executable, "-I", "-S", "-c", code, *args, groups=groups)

    def run(self, code: str, *args: str | os.PathLike[str], groups: tuple[int, ...] = ()) -> str:
        """Run ``code`` as the attacker to its end; its stdout (fails the test on error)."""
        done = subprocess.run(
            self.python(code, *args, groups=groups),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, code: str, *args: str | os.PathLike[str]) -> Peer:
        """Start ``code`` as the attacker in the background; it prints ``ready`` once set."""
        process = subprocess.Popen(
            self.python(code, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.kill()
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"the attacker's program did not start: {line!r} {err}")
        return Peer(process)


@dataclass
class Peer:
    """A program of the attacker's, running."""

    process: subprocess.Popen[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)


def _need_root() -> None:
    if os.geteuid() != 0:
        message = (
            "the attack suite acts as a second, unprivileged user: creating it (useradd) "
            "and becoming it (setpriv) needs root"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)


@pytest.fixture(scope="session")
def attacker() -> Iterator[Attacker]:
    _need_root()
    created = False
    try:
        entry = pwd.getpwnam(NAME)
    except KeyError:
        subprocess.run(
            [*USERADD, NAME],
            check=True,
            capture_output=True,
        )
        created = True
        entry = pwd.getpwnam(NAME)
    user = Attacker(NAME, entry.pw_uid, entry.pw_gid, _python_for(entry.pw_uid, entry.pw_gid))
    yield user
    if created:
        subprocess.run(["userdel", NAME], check=False, capture_output=True)


JOB = "ocsptool-job"
#: Stands for Debian's ``haproxy`` group: the job's user is a member, as the README says.
GROUP = "ocsptool-haproxy"


@dataclass(frozen=True)
class Job:
    """The README's job user: its own user and group, and a member of ``group``."""

    name: str
    uid: int
    gid: int
    group: str
    group_gid: int

    def argv(self, *argv: str | os.PathLike[str]) -> list[str]:
        who = [f"--reuid={self.uid}", f"--regid={self.gid}", f"--groups={self.group_gid}"]
        return ["setpriv", *who, "--", *map(os.fspath, argv)]

    def ocsptool(self, *args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``python -m ocsptool ARGS`` as the job's user, as its timer runs it."""
        from tests.conftest import ROOT

        return subprocess.run(
            self.argv(sys.executable, "-m", "ocsptool", *map(str, args)),
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            cwd="/",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session")
def job() -> Iterator[Job]:
    _need_root()
    made: list[list[str]] = []
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True, capture_output=True)
        made.append(["groupdel", GROUP])
    try:
        pwd.getpwnam(JOB)
    except KeyError:
        subprocess.run([*USERADD, JOB], check=True, capture_output=True)
        made.insert(0, ["userdel", JOB])
    entry, group = pwd.getpwnam(JOB), grp.getgrnam(GROUP)
    yield Job(JOB, entry.pw_uid, entry.pw_gid, GROUP, group.gr_gid)
    for command in made:
        subprocess.run(command, check=False, capture_output=True)


def _python_for(uid: int, gid: int) -> str:
    """The first Python the user can run: the system's, else this one."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        probe = Attacker(NAME, uid, gid, candidate).python("print('ok')")
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
        if done.stdout.strip() == "ok":
            return candidate
    pytest.fail(f"no Python that {NAME} may run")


@pytest.fixture
def arena() -> Iterator[Path]:
    """A directory under /tmp that every user can reach (mode 0755, root's)."""
    path = Path(tempfile.mkdtemp(prefix="ocsptool-attack-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def world_writable(path: Path, *, sticky: bool = True) -> Path:
    """``path`` made as a directory any user may add files to (like /tmp when ``sticky``:
    then each user can replace only their own files)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o1777 if sticky else 0o777)
    return path


def elapsed(since: float) -> float:
    return time.monotonic() - since


def start_cli(*args: object) -> subprocess.Popen[str]:
    """``python -m ocsptool ARGS`` as a real process in the background (as the operator),
    like ``tests.conftest.run_subprocess``: for attacks made while it runs."""
    from tests.conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "ocsptool", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
