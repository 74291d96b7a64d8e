"""The right owner on every file, with real users: the job's, a monitoring user, an outsider.

The test creates four system users (``useradd``, as root) and runs real processes as them
(``setpriv``), so the kernel decides every permission:

- ``ocsptool-t1``, the job's user (as in the unit, ``User=ocsptool``), also a member of the
  outsider's group, to show that a run keeps a group that is not its own;
- ``ocsptool-mon``, monitoring, a member of the job's group (``usermod -aG ocsptool nagios``);
- ``ocsptool-t2``, anyone else;
- ``ocsptool-hap``, HAProxy's group (Debian's ``haproxy``), which owns the bundles: the
  job's user is in it, monitoring is not (checks and status from the state, no key read).

They need root; outside CI they skip without it, under CI=true they fail.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PKI, ROOT, matrix_params

from ocsptool import files, owner
from ocsptool.state import lock as state_lock
from ocsptool.testing.responder import Responder

JOB, MONITOR, OTHER = "ocsptool-t1", "ocsptool-mon", "ocsptool-t2"
#: As the README creates the job's user.
USERADD = ["useradd", "--system", "--user-group", "--home-dir", "/nonexistent", "--no-create-home"]
USERADD += ["--shell", "/usr/sbin/nologin"]


@dataclass(frozen=True)
class Users:
    python: str  # an interpreter these users can run, with ocsptool and its dependencies
    pythonpath: str

    def run(self, user: str, *argv: object, env: dict[str, str] | None = None) -> Run:
        entry = pwd.getpwnam(user)
        command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}"]
        base = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.pythonpath,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        done = subprocess.run(
            [*command, "--init-groups", "--", *map(str, argv)],
            capture_output=True,
            text=True,
            env=base | (env or {}),
            cwd="/",
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def ocsptool(self, user: str, *args: object) -> Run:
        return self.run(user, self.python, "-m", "ocsptool", *args)

    def python_code(self, user: str, code: str, env: dict[str, str] | None = None) -> Run:
        return self.run(user, self.python, "-c", code, env=env)

    def wrong_user_problem(self, user: str, state: Path) -> str:
        """What ``owner.wrong_user_problem(state)`` says, run as ``user``."""
        code = "from pathlib import Path; from ocsptool import owner; "
        code += f"print(owner.wrong_user_problem(Path({str(state)!r})))"
        done = self.python_code(user, code)
        assert (done.code, done.stderr) == (0, "")
        return done.stdout.removesuffix("\n")


def refusal(owner_name: str, me: str, *paths: Path, acl: Path | None = None) -> str:
    """The one line for a run as ``me`` on ``paths`` that belong to ``owner_name`` (and
    ``acl``: the state's directory among them, which an ACL may open instead)."""
    run_as = "sudo ocsptool …" if owner_name == "root" else f"sudo -u {owner_name} ocsptool …"
    return (
        f"{paths[0]} belongs to {owner_name}, this run is {me}: run ocsptool as {owner_name} "
        f"({run_as}), or if {me} is the right user: "
        f"sudo chown {me}: {' '.join(map(str, paths))}"
        + (f" (or: sudo setfacl -m u:{me}:rwx {acl})" if acl else "")
    )


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the ownership tests need root (useradd, setpriv); CI=true requires them")
        pytest.skip("needs root: creates test users with useradd and runs as them with setpriv")
    for tool in ("useradd", "usermod", "setpriv"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (Debian: passwd, util-linux)")


def ensure_user(name: str) -> None:
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        return
    done = subprocess.run(
        [*USERADD, name],
        capture_output=True,
        text=True,
        check=False,
    )
    with contextlib.suppress(KeyError):  # a parallel run may have created it first
        pwd.getpwnam(name)
        return
    pytest.fail(f"useradd {name} failed: {done.stderr.strip()}")


def add_to_group(user: str, group: str) -> None:
    if user not in grp.getgrnam(group).gr_mem:
        subprocess.run(["usermod", "-aG", group, user], check=True, capture_output=True)


def reachable(path: Path) -> bool:
    """Whether other users may search every directory down to ``path``."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.is_dir())


@contextlib.contextmanager
def reachable_checkout() -> Iterator[Path]:
    """This checkout (with the venv inside it), where the test users can reach it: bound
    onto a directory in /tmp when it lives in a home they cannot enter (/root/ocsptool)."""
    if reachable(ROOT):
        yield ROOT
        return
    mount = Path(tempfile.mkdtemp(prefix="ocsptool-src-"))
    mount.chmod(0o755)
    subprocess.run(["mount", "--bind", str(ROOT), str(mount)], check=True, capture_output=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    need_root()
    for name in (JOB, MONITOR, OTHER):
        ensure_user(name)
    add_to_group(MONITOR, JOB)
    add_to_group(JOB, OTHER)
    with reachable_checkout() as root:
        paths = sysconfig.get_paths()
        found = [ROOT, Path(paths["purelib"]), Path(paths["platlib"])]
        moved = [root / p.relative_to(ROOT) if p.is_relative_to(ROOT) else p for p in found]
        pythonpath = os.pathsep.join(dict.fromkeys(map(str, moved)))
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        tried = []
        # This venv's interpreter may live where other users cannot go (/root/.pyenv):
        # the system's of the same version runs the same packages.
        for python in (sys.executable, f"/usr/bin/python{version}"):
            candidate = Users(python, pythonpath)
            probe = candidate.python_code(JOB, "import ocsptool.cli, cryptography, requests")
            if probe.code == 0:
                yield candidate
                return
            tried.append(f"{python}: {probe.stderr.strip().splitlines()[-1:]}")
        pytest.fail(f"user {JOB} cannot run ocsptool from {root}: {'; '.join(tried)}")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the test users can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="ocsptool-owner-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def ids(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def gid(group: str) -> int:
    return grp.getgrnam(group).gr_gid


def owned(path: Path, user: str, group: str, mode: int) -> Path:
    """``path`` (created empty when missing) with this owner, group and mode."""
    if not path.exists():
        path.write_bytes(b"")
    os.chown(path, pwd.getpwnam(user).pw_uid, gid(group))
    path.chmod(mode)
    return path


def who(path: Path) -> tuple[str, str, int]:
    st = path.lstat()
    return (
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
        stat.S_IMODE(st.st_mode),
    )


def directory(path: Path, user: str, group: str, mode: int) -> Path:
    path.mkdir()
    return owned(path, user, group, mode)


def job_layout(shared: Path, pki: PKI, responder: Responder) -> tuple[Path, Path]:
    """The unit's layout, the job's user owning both: the state path (in a 0750 state
    directory) and a certificate (a 0640 bundle in its cert directory)."""
    state_dir = directory(shared / "state", JOB, JOB, 0o750)
    certs = directory(shared / "certs", JOB, JOB, 0o755)
    cert = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    return state_dir / "state.json", owned(cert, JOB, JOB, 0o640)


# -- root keeps every owner ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_root_replacing_a_file_keeps_its_owner_group_and_mode(
    users: Users, shared: Path, mode: int
) -> None:
    target = shared / "state.json"
    target.write_bytes(b"old")
    owned(target, JOB, OTHER, mode)
    files.write_atomic(target, b"new", mode=0o644)
    assert (target.read_bytes(), who(target)) == (b"new", (JOB, OTHER, mode))


def test_root_creating_a_file_gives_it_to_the_directory_owner(users: Users, shared: Path) -> None:
    state_dir = directory(shared / "state", JOB, JOB, 0o750)
    state = state_dir / "state.json"
    files.write_atomic(state, b"{}", mode=owner.STATE_MODE)
    with state_lock.run_lock(state):
        pass
    assert who(state) == (JOB, JOB, 0o640)
    assert who(owner.lock_of(state)) == (JOB, JOB, 0o640)


def test_renew_as_root_then_the_timer_as_the_job_user(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    """The issue's story: one `renew` as root used to leave state.json root:root 0600, and
    every later run of the job failed. Now every file stays the job's."""
    state, cert = job_layout(shared, pki, responder)
    certs, staple = cert.parent, cert.parent / "site.pem.ocsp"
    lock = owner.lock_of(state)

    first = users.ocsptool(JOB, "refresh", "--state", state, certs)
    assert (first.code, first.stderr) == (0, "")
    expected = {state: (JOB, JOB, 0o640), lock: (JOB, JOB, 0o640), staple: (JOB, JOB, 0o644)}
    assert {path: who(path) for path in expected} == expected

    before = staple.read_bytes()
    as_root = subprocess.run(
        [sys.executable, "-m", "ocsptool", "renew", "--state", str(state), str(cert)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
        check=False,
    )
    assert (as_root.returncode, as_root.stderr) == (0, "")
    assert staple.read_bytes() != before  # root did replace it
    assert {path: who(path) for path in expected} == expected

    os.utime(cert)  # a changed file is parsed again: the job must write the state
    later = users.ocsptool(JOB, "refresh", "--state", state, certs)
    assert (later.code, later.stderr) == (0, "")
    assert {path: who(path) for path in expected} == expected


# -- a user that is not root -----------------------------------------------------------------

WRITE = (
    "from pathlib import Path; from ocsptool import files; files.write_atomic(Path({!r}), b'new')"
)


def test_the_job_user_keeps_a_group_that_is_not_its_own(users: Users, shared: Path) -> None:
    work = directory(shared / "work", JOB, OTHER, 0o775)
    assert not work.stat().st_mode & stat.S_ISGID  # no setgid bit does it
    replaced = work / "site.pem.ocsp"
    replaced.write_bytes(b"old")
    owned(replaced, JOB, OTHER, 0o640)
    done = users.python_code(JOB, WRITE.format(str(replaced)))
    assert (done.code, done.stderr) == (0, "")
    assert (replaced.read_bytes(), who(replaced)) == (b"new", (JOB, OTHER, 0o640))
    # A new file takes the directory's group, not the user's own.
    new = work / "new.pem.ocsp"
    done = users.python_code(JOB, WRITE.format(str(new)))
    assert (done.code, done.stderr) == (0, "")
    assert who(new) == (JOB, OTHER, 0o644)


def test_another_user_cannot_give_the_file_away_so_the_run_refuses(
    users: Users, shared: Path
) -> None:
    work = directory(shared / "open", JOB, JOB, 0o777)  # anyone may replace files here
    state = owned(work / "state.json", JOB, JOB, 0o640)
    assert users.wrong_user_problem(OTHER, state) == (
        f"{state} belongs to {JOB}, this run is {OTHER}: run ocsptool as {JOB} "
        f"(sudo -u {JOB} ocsptool …), or if {OTHER} is the right user: "
        f"sudo chown {OTHER}: {state}"
    )
    assert users.wrong_user_problem(JOB, state) == "None"
    assert owner.wrong_user_problem(state) is None  # root keeps every owner
    # Why it refuses: a write would take the file from its owner (the mode at least stays).
    done = users.python_code(OTHER, WRITE.format(str(state)))
    assert (done.code, done.stderr) == (0, "")
    assert who(state) == (OTHER, OTHER, 0o640)


def test_a_state_left_by_root_names_both_files_to_give_back(users: Users, shared: Path) -> None:
    state_dir = directory(shared / "state", JOB, JOB, 0o750)
    state = owned(state_dir / "state.json", "root", "root", 0o600)
    lock = owned(state_dir / "state.json.lock", "root", "root", 0o600)
    assert users.wrong_user_problem(JOB, state) == refusal("root", JOB, state, lock)


def test_a_state_directory_of_another_user(users: Users, shared: Path) -> None:
    state_dir = directory(shared / "state", OTHER, OTHER, 0o755)
    problem = users.wrong_user_problem(JOB, state_dir / "state.json")
    assert problem == refusal(OTHER, JOB, state_dir, acl=state_dir)


def test_the_default_state_of_a_user_without_a_home(users: Users) -> None:
    code = "from ocsptool import owner, state; "
    code += "print(owner.default_state_problem(state.default_path()))"
    done = users.python_code(JOB, code)
    assert (done.code, done.stderr) == (0, "")
    assert done.stdout == (
        "cannot keep the state in the default /nonexistent/.local/state/ocsptool/state.json "
        '(/nonexistent does not exist): set state in the config file, e.g. state = "/var/lib/'
        'ocsptool/state.json"\n'
    )


# -- monitoring ------------------------------------------------------------------------------


def test_monitoring_in_the_group_reads_the_state_and_others_cannot(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    """As the unit sets it up: StateDirectoryMode=0750, User= and Group=ocsptool."""
    state, cert = job_layout(shared, pki, responder)
    first = users.ocsptool(JOB, "refresh", "--state", state, cert.parent)
    assert (first.code, first.stderr) == (0, "")
    lock = owner.lock_of(state)
    for path in (state, lock):
        seen = users.run(MONITOR, "cat", path)
        assert (seen.code, seen.stdout, seen.stderr) == (0, path.read_text(), "")
        refused = users.run(OTHER, "cat", path)
        assert (refused.code, refused.stdout) == (1, "")
        assert refused.stderr == f"cat: {path}: Permission denied\n"
    state.parent.chmod(0o755)  # the file's own mode keeps the outsider out too
    refused = users.run(OTHER, "cat", state)
    assert (refused.code, refused.stderr) == (1, f"cat: {state}: Permission denied\n")


# -- metrics ---------------------------------------------------------------------------------


def test_a_metrics_failure_fails_the_run_but_not_the_staples(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    state, cert = job_layout(shared, pki, responder)
    collector = directory(shared / "node-exporter", "root", "root", 0o755)
    metrics = collector / "ocsptool.prom"
    done = users.ocsptool(JOB, "refresh", "--state", state, "--metrics", metrics, cert.parent)
    assert done.code == 1
    assert done.stderr == (
        f"ocsptool: cannot write {metrics}: permission denied; "
        f"let ocsptool's user write to {collector}; the staples were still written and pushed\n"
    )
    assert Path(f"{cert}.ocsp").stat().st_size > 0
    assert not metrics.exists()


# -- the refusals, wired into the commands ---------------------------------------------------


def test_refresh_and_renew_as_the_wrong_user_refuse_in_one_line(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    state, cert = job_layout(shared, pki, responder)
    assert users.ocsptool(JOB, "refresh", "--state", state, cert.parent).code == 0
    staple = Path(f"{cert}.ocsp")
    before = staple.read_bytes()
    lock = owner.lock_of(state)
    for argv in (("refresh", cert.parent), ("renew", cert)):
        done = users.ocsptool(MONITOR, argv[0], "--state", state, argv[1])
        assert (done.code, done.stdout) == (2, "")
        # Its directory (0750) is not the monitoring user's to write either: named first.
        line = refusal(JOB, MONITOR, state.parent, state, lock, acl=state.parent)
        assert done.stderr == f"ocsptool: {line}\n"
    assert staple.read_bytes() == before
    # Reading is not refused: monitoring in the group checks the job's state.
    done = users.ocsptool(MONITOR, "check", "--state", state, cert.parent)
    assert (done.code, done.stdout.partition(" - ")[0]) == (0, "OCSP OK")


def test_a_user_who_may_not_read_the_state_gets_one_line_and_the_fix(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    """Issue 19: an outsider used to get "internal error: PermissionError" (refresh, exit
    1) or a green status that had not read the state. Now every command says, in one
    line, what stops it, whose it is, and the fix; exit 2 (check: UNKNOWN)."""
    state, cert = job_layout(shared, pki, responder)
    assert users.ocsptool(JOB, "refresh", "--state", state, cert.parent).code == 0
    config = shared / "config.toml"
    config.write_text(f'state = "{state}"\n')
    config.chmod(0o644)
    closed = (
        f"{state}: permission denied: {state.parent} is {JOB}:{JOB} 0750 and {OTHER} is not "
        f"in group {JOB}: sudo usermod -aG {JOB} {OTHER} (then log in again), or run as {JOB}"
    )
    for via in (("--state", state), ("--config", config)):
        before, after = (via, ()) if via[0] == "--config" else ((), via)
        done = users.ocsptool(OTHER, *before, "status", *after, cert.parent)
        assert (done.code, done.stdout, done.stderr) == (2, "", f"ocsptool: {closed}\n")
        done = users.ocsptool(OTHER, *before, "check", *after, cert.parent)
        assert (done.code, done.stdout, done.stderr) == (3, f"OCSP UNKNOWN - {closed}\n", "")
    done = users.ocsptool(OTHER, "refresh", "--state", state, cert.parent)
    assert (done.code, done.stdout) == (2, "")  # not "internal error: PermissionError", 1
    assert done.stderr == (
        f"ocsptool: {state.parent} belongs to {JOB}, this run is {OTHER}: run ocsptool as "
        f"{JOB} (sudo -u {JOB} ocsptool …), or if {OTHER} is the right user: sudo chown -R "
        f"{OTHER}: {state.parent} (or: sudo setfacl -m u:{OTHER}:rwx {state.parent})\n"
    )
    # The directory lets the outsider in; the file's mode does not.
    state.parent.chmod(0o755)
    done = users.ocsptool(OTHER, "check", "--state", state, cert.parent)
    assert (done.code, done.stderr) == (3, "")
    assert done.stdout == (
        f"OCSP UNKNOWN - {state}: permission denied: the file is {JOB}:{JOB} 0640 and "
        f"{OTHER} is not in group {JOB}: sudo usermod -aG {JOB} {OTHER} (then log in again), "
        f"or run as {JOB}\n"
    )
    # The fix it names works: in the group (a new login: setpriv --init-groups), it reads.
    add_to_group(OTHER, JOB)
    try:
        done = users.ocsptool(OTHER, "check", "--state", state, cert.parent)
        assert (done.code, done.stdout.partition(" - ")[0]) == (0, "OCSP OK")
    finally:
        subprocess.run(["gpasswd", "-d", OTHER, JOB], check=True, capture_output=True)


def test_a_state_written_before_0640_names_the_chmod_for_its_group(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    state, cert = job_layout(shared, pki, responder)
    assert users.ocsptool(JOB, "refresh", "--state", state, cert.parent).code == 0
    lock = owner.lock_of(state)
    state.chmod(0o600)  # as ocsptool 0.1 wrote it
    done = users.ocsptool(MONITOR, "status", "--state", state, cert.parent)
    assert (done.code, done.stdout) == (2, "")
    assert done.stderr == (
        f"ocsptool: {state}: permission denied: the file is {JOB}:{JOB} 0600, which its "
        f"group {JOB} may not read: sudo chmod g+r {state} {lock}\n"
    )
    subprocess.run(["chmod", "g+r", state, lock], check=True)  # the fix, as named
    done = users.ocsptool(MONITOR, "check", "--state", state, cert.parent)
    assert (done.code, done.stdout.partition(" - ")[0]) == (0, "OCSP OK")


def test_trying_it_by_hand_as_root_then_the_job(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    """Issue 19, the README in order: `ocsptool refresh` by hand as root (its state directory
    created by root), then the cron recipe (`install -d -o ocsptool ...` on that directory,
    `state = ...` in the config), then the job: it used to fail with "config.toml: state:
    File '...' is not readable." Now it names the owner, the user and the command; and that
    command makes the job work."""
    certs = directory(shared / "certs", JOB, JOB, 0o755)
    cert = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    owned(cert, JOB, JOB, 0o640)
    state = shared / "lib" / "ocsptool" / "state.json"
    lock = owner.lock_of(state)
    by_hand = subprocess.run(
        [sys.executable, "-m", "ocsptool", "refresh", "--state", str(state), str(certs)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
        check=False,
    )
    assert (by_hand.returncode, by_hand.stderr) == (0, "")
    assert who(state.parent)[:2] == ("root", "root")  # created by root's run
    subprocess.run(["install", "-d", "-o", JOB, "-g", JOB, "-m", "0750", state.parent], check=True)
    config = owned(shared / "config.toml", "root", "root", 0o644)
    config.write_text(f'state = "{state}"\n')
    job = users.ocsptool(JOB, "--config", config, "refresh", certs)
    assert (job.code, job.stdout) == (2, "")
    assert job.stderr == f"ocsptool: {refusal('root', JOB, state, lock)}\n"
    # Reading as the job's user says the same owner and the same chown.
    status = users.ocsptool(JOB, "--config", config, "status", certs)
    assert (status.code, status.stdout) == (2, "")
    assert status.stderr == (
        f"ocsptool: {state}: permission denied: the file is root:root 0640, in {JOB}'s "
        f"directory: sudo chown {JOB}: {state} {lock}, or run as root\n"
    )
    subprocess.run(["chown", f"{JOB}:", state, lock], check=True)  # the fix, as named
    job = users.ocsptool(JOB, "--config", config, "refresh", certs)
    assert (job.code, job.stdout, job.stderr) == (0, "", "")


def test_a_state_directory_the_job_may_not_create(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    _, cert = job_layout(shared, pki, responder)
    state = shared / "lib" / "ocsptool" / "state.json"
    done = users.ocsptool(JOB, "refresh", "--state", state, cert.parent)
    assert (done.code, done.stdout) == (2, "")
    assert done.stderr == (
        f"ocsptool: cannot create {state.parent}: {shared} belongs to root, this run is "
        f"{JOB}: sudo install -d -o {JOB} -g {JOB} -m 0750 {state.parent}\n"
    )
    subprocess.run(["install", "-d", "-o", JOB, "-g", JOB, "-m", "0750", state.parent], check=True)
    done = users.ocsptool(JOB, "refresh", "--state", state, cert.parent)
    assert (done.code, done.stdout, done.stderr) == (0, "", "")
    assert who(state) == (JOB, JOB, 0o640)


def test_the_default_state_of_a_user_without_a_home_through_the_commands(
    users: Users, shared: Path, pki: PKI, responder: Responder
) -> None:
    _, cert = job_layout(shared, pki, responder)
    line = (
        "cannot keep the state in the default /nonexistent/.local/state/ocsptool/state.json "
        f"(/nonexistent does not exist): {owner.SET_STATE}"
    )
    for command in ("refresh", "status"):
        done = users.ocsptool(JOB, command, cert.parent)
        assert (done.code, done.stdout, done.stderr) == (2, "", f"ocsptool: {line}\n")
    done = users.ocsptool(JOB, "check", cert.parent)
    assert (done.code, done.stdout, done.stderr) == (3, f"OCSP UNKNOWN - {line}\n", "")


# -- monitoring without the keys (the README's set-up, with a real HAProxy) -------------------

from cryptography.x509 import ocsp  # noqa: E402

from ocsptool.testing.haproxy import free_port, tls_staple  # noqa: E402
from ocsptool.testing.haproxy_configs import Running, check_config  # noqa: E402
from ocsptool.testing.matrix import Binary  # noqa: E402

#: HAProxy's group (Debian's ``haproxy``): it owns the bundles; the job's user is in it,
#: the monitoring user is not.
HAPROXY = "ocsptool-hap"


@dataclass(frozen=True)
class Monitored:
    state: Path
    certs: Path
    config: Path
    socket: str
    port: int
    serials: dict[str, int]


def monitored_layout(shared: Path, pki: PKI, responder: Responder, binary: Binary) -> Monitored:
    """The job's state (0750 directory, its group), bundles root:haproxy 0640 in a 2770
    directory, and a HAProxy configuration loading that directory whose admin socket is
    ``mode 660 group <the job's group>``: the monitoring user may use it, not read a key."""
    ensure_user(HAPROXY)
    add_to_group(JOB, HAPROXY)
    assert MONITOR not in grp.getgrnam(HAPROXY).gr_mem
    state_dir = directory(shared / "state", JOB, JOB, 0o750)
    certs = directory(shared / "certs", "root", HAPROXY, 0o2770)
    serials = {}
    for name in ("a", "b"):
        leaf = pki.direct.leaf(f"{name}.test", ocsp_url=responder.url)
        owned(leaf.write_bundle(certs / f"{name}.pem"), "root", HAPROXY, 0o640)
        serials[f"{name}.pem"] = leaf.cert.serial_number
    port, sock = free_port(), f"{shared}/admin.sock"
    config = shared / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {sock} mode 660 level admin group {JOB}\n"
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n"
        f"    timeout server 5s\nfrontend tls\n    bind 127.0.0.1:{port} ssl crt {certs}/\n"
        "    http-request return status 200\n"
    )
    config.chmod(0o644)
    assert check_config(binary.path, config).returncode == 0
    return Monitored(state_dir / "state.json", certs, config, sock, port, serials)


def from_state_note(count: int) -> str:
    return (
        f"{count} certificates reported from the state: {MONITOR} may not read the "
        "certificate files (the last run's record is shown)"
    )


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_monitoring_without_the_keys_checks_from_the_state_and_sees_a_revocation(
    users: Users, shared: Path, pki: PKI, responder: Responder, binary: Binary
) -> None:
    m = monitored_layout(shared, pki, responder, binary)
    crt_list = shared / "list.txt"  # readable by all: it names files monitoring may not read
    crt_list.write_text(f"{m.certs}/a.pem\n{m.certs}/b.pem\n")
    crt_list.chmod(0o644)
    sources = {
        "--haproxy-config": ["--haproxy-config", m.config],
        "directory": [m.certs],
        "crt-list": [crt_list],
    }
    a, b = str(m.certs / "a.pem"), str(m.certs / "b.pem")
    with Running(binary.path, m.config, m.port, stats=m.socket):
        first = users.ocsptool(JOB, "refresh", "--state", m.state, "--haproxy-config", m.config)
        assert (first.code, first.stdout, first.stderr) == (0, "", "")
        assert who(m.state) == (JOB, JOB, 0o640)
        assert tls_staple(m.port, "a.test") == Path(f"{a}.ocsp").read_bytes()
        denied = users.run(MONITOR, "cat", a)  # the kernel says it: no key for monitoring
        assert (denied.code, denied.stderr) == (1, f"cat: {a}: Permission denied\n")

        for named, given in sources.items():
            check = users.ocsptool(MONITOR, "check", "--state", m.state, *given)
            assert (check.code, check.stderr) == (0, ""), (named, check.stdout)
            assert check.stdout.startswith("OCSP OK - 2 staples valid, earliest nextUpdate expires")
            assert "| certificates=2;;;0 staples_good=2;;;0 revoked=0;;1;0 problems=0;1;;0" in (
                check.stdout
            )

        for named, haproxy in (("--haproxy-config", [m.socket]), ("directory", [])):
            status = users.ocsptool(
                MONITOR, "status", "--state", m.state, "--json", *sources[named]
            )
            assert (status.code, status.stderr) == (0, ""), named
            report = json.loads(status.stdout)
            rows = {
                c["path"]: (c["status"], c["haproxy"], c["from_state"])
                for c in report["certificates"]
            }
            assert rows == {a: ("good", haproxy, True), b: ("good", haproxy, True)}, named
            assert report["notes"] == [from_state_note(2)], named
        table = users.ocsptool(MONITOR, "status", "--state", m.state, *sources["--haproxy-config"])
        assert (table.code, table.stderr) == (0, "")
        assert table.stdout.count("reported from the state") == 1
        assert f"note: {from_state_note(2)}" in table.stdout.splitlines()

        live = users.ocsptool(
            MONITOR, "status", "--state", m.state, "--live", "--json", *sources["--haproxy-config"]
        )
        assert (live.code, live.stderr) == (0, "")
        report = json.loads(live.stdout)
        served = {
            c["path"]: [(f["address"], f["served"]) for f in c["served_by"]]
            for c in report["certificates"]
        }
        assert served == {a: [(m.socket, "same")], b: [(m.socket, "same")]}
        assert report["notes"] == [from_state_note(2)]

        responder.revoked.add(m.serials["a.pem"])
        forced = users.ocsptool(
            JOB, "refresh", "--force", "--state", m.state, "--haproxy-config", m.config
        )
        assert forced.code == 1
        assert [line.partition(" since ")[0] for line in forced.stderr.splitlines()] == [
            f"ocsptool: {a}: REVOKED"
        ]
        served_staple = tls_staple(m.port, "a.test")
        assert served_staple == Path(f"{a}.ocsp").read_bytes()
        assert served_staple is not None
        revoked = ocsp.load_der_ocsp_response(served_staple).certificate_status
        assert revoked is ocsp.OCSPCertStatus.REVOKED
        for named, given in sources.items():
            check = users.ocsptool(MONITOR, "check", "--state", m.state, *given)
            assert (check.code, check.stderr) == (2, ""), named
            assert check.stdout.startswith("OCSP CRITICAL - a.test: ")
            assert " revoked=1;;1;0 " in check.stdout
        status = users.ocsptool(
            MONITOR, "status", "--state", m.state, "--json", *sources["--haproxy-config"]
        )
        assert status.code == 1
        rows = {c["path"]: c["status"] for c in json.loads(status.stdout)["certificates"]}
        assert rows == {a: "revoked", b: "good"}
