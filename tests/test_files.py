"""Atomic writes, the run lock, and real write faults: a full disk, a read-only directory.

The faults are real: a 64 KiB tmpfs filled to the brim, a tmpfs remounted read-only, and
a directory without write permission for a process that lacks CAP_DAC_OVERRIDE. Only
where mounting is impossible does the full-disk test fall back to an injected ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsptool import files, trust
from ocsptool.errors import LockHeld, WriteError
from ocsptool.state import lock as state_lock
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, CertDir, RunCli
from tests.test_certs_bad_files import run_without_dac

# -- write_atomic ----------------------------------------------------------------------------


def test_write_atomic_replaces_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a.pem.ocsp"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)
    try:
        files.write_atomic(target, b"new", mode=0o644)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["a.pem.ocsp"]


def test_write_atomic_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "a.pem.ocsp"
    link.symlink_to(victim)
    files.write_atomic(link, b"staple")
    assert not link.is_symlink()
    assert link.read_bytes() == b"staple"
    assert victim.read_bytes() == b"precious"


def test_write_atomic_is_not_fooled_by_a_symlink_at_the_temp_path(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "a.pem.ocsp"
    files.temp_path(target).symlink_to(victim)
    files.write_atomic(target, b"staple")
    assert victim.read_bytes() == b"precious"
    assert target.read_bytes() == b"staple"
    assert sorted(os.listdir(tmp_path)) == ["a.pem.ocsp", "victim"]


def test_temp_names_are_hidden_and_end_in_ocsp(tmp_path: Path) -> None:
    tmp = files.temp_path(tmp_path / "site.pem.ocsp")
    assert tmp.name.startswith(".") and tmp.name.endswith(".ocsp")
    assert files.is_temp_name(tmp.name)
    assert not files.is_temp_name("site.pem.ocsp")


def test_remove_leftovers_only_removes_temp_files(tmp_path: Path) -> None:
    names = [".a.pem.ocsp.ocsptool-tmp.ocsp", "a.pem.ocsp", "a.pem"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    files.remove_leftovers(str(tmp_path / name) for name in names)
    assert sorted(os.listdir(tmp_path)) == ["a.pem", "a.pem.ocsp"]


def test_write_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"^cannot write .*/nowhere/x\.ocsp: No such file"):
        files.write_atomic(tmp_path / "nowhere" / "x.ocsp", b"x")


# -- the lock --------------------------------------------------------------------------------


def test_run_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    state = tmp_path / "state" / "state.json"
    held = pytest.raises(LockHeld, match=r"another ocsptool run holds .*state\.json\.lock")
    with state_lock.run_lock(state), held, state_lock.run_lock(state):
        pass
    with state_lock.run_lock(state):  # released when the first run ended
        pass
    assert stat.S_IMODE(Path(f"{state}.lock").stat().st_mode) == 0o640  # the group reads it


# -- real faults -----------------------------------------------------------------------------


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path | None]:
    """A 64 KiB tmpfs, or None where mounting is not allowed."""
    mount = tmp_path / "fs"
    if not mount_tmpfs(mount, "64k"):
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def staple_site(directory: Path, pki: PKI, responder: Responder, run_cli: RunCli) -> Path:
    path = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(directory / "site.pem")
    first = run_cli("refresh", directory)
    assert (first.exit_code, first.stderr) == (0, "")
    return path


def make_due(state: Path) -> None:
    data = json.loads(state.read_text())
    for record in data["certs"].values():
        record["due"] = 0
    state.write_text(json.dumps(data))


def fill(directory: Path) -> None:
    """Fill the file system holding ``directory`` to the last byte."""
    with (directory / "filler").open("wb", buffering=0) as f:
        while True:
            try:
                f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
        while True:  # the last partial block
            try:
                f.write(b"\0")
            except OSError:
                break


def test_full_disk_keeps_the_old_staple_and_says_what_to_fix(  # noqa: PLR0917 - fixtures
    small_fs: Path | None,
    tmp_path: Path,
    pki: PKI,
    responder: Responder,
    run_cli: RunCli,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = small_fs or (tmp_path / "certs")
    directory.mkdir(exist_ok=True)
    path = staple_site(directory, pki, responder, run_cli)
    staple = Path(f"{path}.ocsp")
    before = staple.read_bytes()
    make_due(state_file)
    if small_fs is not None:
        fill(directory)
    else:  # no mount allowed here: inject the fault where the disk would report it
        real_write = os.write

        def full_write(fd: int, data: bytes) -> int:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", full_write)
    result = run_cli("refresh", directory)
    assert result.exit_code == 1
    assert result.stderr == (
        f"ocsptool: {path}: cannot write {staple}: no space left on the "
        f"device holding {directory}; free some space\n"
    )
    assert staple.read_bytes() == before
    assert [n for n in os.listdir(directory) if files.is_temp_name(n)] == []


def test_full_disk_under_the_state_file(
    tmp_path: Path, pki: PKI, responder: Responder, run_cli: RunCli
) -> None:
    state_dir = tmp_path / "statefs"
    if not mount_tmpfs(state_dir, "16k"):
        pytest.fail("cannot mount a tmpfs (needs root); this proof needs a real full disk")
    try:
        state = state_dir / "state.json"
        directory = tmp_path / "certs"
        directory.mkdir()
        path = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(
            directory / "site.pem"
        )
        first = run_cli("refresh", directory, state=state)  # creates the lock and the state
        assert (first.exit_code, first.stderr) == (0, "")
        fill(state_dir)
        os.utime(path, (1, 1))  # a changed file is parsed again, so the state must be written
        result = run_cli("refresh", directory, state=state)
        assert result.exit_code == 1
        assert result.stderr == (
            f"ocsptool: cannot write {state}: no space left on the device holding "
            f"{state_dir}; free some space\n"
        )
        assert json.loads(state.read_text())  # the old state is whole
        assert Path(f"{path}.ocsp").stat().st_size > 0
    finally:
        subprocess.run(["umount", "-l", str(state_dir)], check=False)


def test_read_only_file_system(
    tmp_path: Path, pki: PKI, responder: Responder, run_cli: RunCli, state_file: Path
) -> None:
    directory = tmp_path / "rofs"
    if not mount_tmpfs(directory, "1m"):
        pytest.fail("cannot mount a tmpfs (needs root)")
    try:
        path = staple_site(directory, pki, responder, run_cli)
        staple = Path(f"{path}.ocsp")
        before = staple.read_bytes()
        make_due(state_file)
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        result = run_cli("refresh", directory)
        assert result.exit_code == 1
        assert result.stderr == (
            f"ocsptool: {path}: cannot write {staple}: {directory} is on a read-only file system\n"
        )
        assert staple.read_bytes() == before
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def test_read_only_cert_directory(cert_dir: CertDir, state_file: Path) -> None:
    path = cert_dir.add("site")
    first = run_without_dac("refresh", "--state", state_file, cert_dir.path)
    assert (first.returncode, first.stderr) == (0, "")
    staple = cert_dir.staple("site")
    before = staple.read_bytes()
    make_due(state_file)
    cert_dir.path.chmod(0o555)
    try:
        result = run_without_dac("refresh", "--state", state_file, cert_dir.path)
    finally:
        cert_dir.path.chmod(0o755)
    assert result.returncode == 1
    assert result.stderr == (
        f"ocsptool: {path}: cannot write {staple}: permission denied; "
        f"let ocsptool's user write to {cert_dir.path}\n"
    )
    assert staple.read_bytes() == before


def test_unwritable_state_directory(cert_dir: CertDir, tmp_path: Path) -> None:
    cert_dir.add("site")
    state_dir = tmp_path / "locked-state"
    state_dir.mkdir(mode=0o555)
    result = run_without_dac("refresh", "--state", state_dir / "state.json", cert_dir.path)
    assert result.returncode == 1
    assert result.stderr == (
        f"ocsptool: cannot create the lock file {state_dir}/state.json.lock: permission "
        f"denied; let ocsptool's user write to {state_dir}\n"
    )
    assert not cert_dir.staple("site").exists()  # nothing done without the lock


def test_a_planted_symlink_at_the_lock_path_is_not_followed(tmp_path: Path) -> None:
    """Through a dangling link, O_CREAT would create the target (say, in /etc/cron.d)."""
    state = tmp_path / "state.json"
    target = tmp_path / "elsewhere" / "created-by-root"
    target.parent.mkdir()
    Path(f"{state}.lock").symlink_to(target)
    with pytest.raises(WriteError) as raised, state_lock.run_lock(state):
        pass
    assert str(raised.value).startswith(f"cannot create the lock file {state}.lock: ")
    assert not target.exists()


def test_the_lock_file_records_the_last_run(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert state_lock.last_run(state) == {}
    with state_lock.run_lock(state) as lock:
        lock.record_run(1_700_000_000, False)
    with state_lock.run_lock(state) as lock:
        lock.record_run(1_700_000_900, True)  # shorter data over longer: no leftovers
    assert state_lock.last_run(state) == {"time": 1_700_000_900, "ok": True}
    (tmp_path / "state.json.lock").write_text("garbage")
    assert state_lock.last_run(state) == {}


# -- bounded reads, trusted files, a lock that is not written through -------------------------


def test_a_read_without_its_own_limit_stops_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_READ_BYTES", 1000)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(files.TooLarge) as raised:
        files.read_regular(big)
    assert (raised.value.errno, raised.value.strerror) == (errno.EFBIG, "larger than 1000 bytes")
    assert files.read_regular(big, 10) == b"x" * 11  # a limit of its own: limit + 1 bytes
    big.write_bytes(b"x" * 1000)
    assert len(files.read_regular(big)) == 1000


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(OSError) as raised:
            files.read_regular(path)
        assert (raised.value.errno, raised.value.strerror) == (errno.EINVAL, "not a regular file")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "fifo")
    with pytest.raises(OSError) as raised:
        files.read_regular(link, nofollow=True)
    assert raised.value.errno == errno.ELOOP


def test_read_own_trusts_only_files_no_one_else_could_have_written(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.write_bytes(b"data")
    own.chmod(0o600)
    assert files.read_own(own, 100) == b"data"
    own.chmod(0o620)
    with pytest.raises(trust.Untrusted) as raised:
        files.read_own(own, 100)
    assert str(raised.value) == "is writable by other users (mode 0620)"
    own.chmod(0o600)
    with pytest.raises(files.TooLarge):
        files.read_own(own, 3)
    link = tmp_path / "link"
    link.symlink_to(own)
    with pytest.raises(OSError, match="symbolic links"):
        files.read_own(link, 100)
    assert files.read_own(link, 100, follow=True) == b"data"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_file_of_another_user_is_trusted_only_if_they_may_write_its_directory(
    tmp_path: Path,
) -> None:
    nobody = 65534
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o755)
    planted = directory / "file"
    planted.write_bytes(b"data")
    os.chown(planted, nobody, nobody)
    me = "root"
    with pytest.raises(trust.Untrusted) as raised:
        files.read_own(planted, 100)
    name = files.owner.user_name(nobody)
    assert str(raised.value) == f"belongs to {name} (uid {nobody}), not to {me}"
    os.chown(directory, 0, nobody)  # nobody's group may write the directory: theirs to write
    directory.chmod(0o775)
    assert files.read_own(planted, 100) == b"data"
    directory.chmod(0o777)  # through the "other" bits (like /tmp): anyone could have
    os.chown(directory, 0, 0)
    with pytest.raises(trust.Untrusted):
        files.read_own(planted, 100)


def test_a_hard_linked_lock_is_refused_and_never_written(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    other = tmp_path / "other"
    other.write_text("not a lock")
    other.chmod(0o600)
    os.link(other, f"{state}.lock")
    with pytest.raises(WriteError) as raised, state_lock.run_lock(state):
        pass
    assert str(raised.value) == (
        f"refusing the lock file {state}.lock: it has 2 hard links (writing it would write "
        "the other files); remove it"
    )
    assert other.read_text() == "not a lock"


@pytest.mark.parametrize("kind", ["writable", "fifo"])
def test_a_lock_others_may_write_or_no_file_is_refused(kind: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    lock = Path(f"{state}.lock")
    if kind == "fifo":
        os.mkfifo(lock)
        why = "not a regular file"
    else:
        lock.write_text("")
        lock.chmod(0o666)
        why = "it is writable by other users (mode 0666)"
    with pytest.raises(WriteError) as raised, state_lock.run_lock(state):
        pass
    assert str(raised.value) == f"refusing the lock file {lock}: {why}; remove it"
    assert state_lock.last_run(state) == {}  # never blocks on the FIFO either
