"""Who owns the files ocsptool writes, and whether this run is the right user to write them.

The rule, for the state, the lock, the metrics and every ``.ocsp``:

- A file that is replaced keeps its owner, group and mode.
- A new file takes the group of its directory, as a setgid directory would do (so the
  state in ``StateDirectory=`` gets the unit's group, which monitoring can join), and,
  when the run is root, the owner of its directory too: a ``renew`` run once as root in
  ``/var/lib/ocsptool`` leaves files the ``ocsptool`` user can still replace.
- Root can always do that. Any other user cannot give a file away: it keeps the group and
  the mode where it may (it is a member of the group) and becomes the owner. Replacing
  another user's file is therefore refused at the start of a writing run, with
  ``wrong_user_problem``, instead of leaving a file the real owner cannot read.

Every refusal (``state_problem``) is one line: the file, whose it is, who runs, and the
command that fixes it (``chown``, ``setfacl``, ``usermod -aG``, or run as its owner).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

#: The mode of a new state file and lock: readable by the group of the state directory
#: (the unit's ``Group=``), so that monitoring in that group can run ``check``.
STATE_MODE = 0o640

#: What a job whose home is ``/nonexistent`` (the README's ``useradd``) has to do.
SET_STATE = 'set state in the config file, e.g. state = "/var/lib/ocsptool/state.json"'


@dataclass(frozen=True)
class Ownership:
    """Owner, group and permission bits for a file about to be written (-1: leave as is)."""

    uid: int
    gid: int
    mode: int


def ownership_for(path: Path, mode: int, *, directory: int | None = None) -> Ownership:
    """What a file written at ``path`` should get: see the module's rule. ``directory``:
    an open descriptor of ``path``'s directory, to look there (not through the path).

    A symlink at ``path`` is replaced, not followed, so it counts as no file.
    """
    with contextlib.suppress(OSError):
        if directory is None:
            old = os.lstat(path)
        else:
            old = os.stat(path.name, dir_fd=directory, follow_symlinks=False)
        if stat.S_ISREG(old.st_mode):
            return Ownership(old.st_uid, old.st_gid, stat.S_IMODE(old.st_mode) & 0o777)
    return ownership_of_new(path, mode, directory=directory)


def ownership_of_new(path: Path, mode: int, *, directory: int | None = None) -> Ownership:
    """A new file: the directory's group, and as root its owner too."""
    try:
        info = os.stat(path.parent) if directory is None else os.fstat(directory)
    except OSError:
        return Ownership(-1, -1, mode)
    uid = info.st_uid if os.geteuid() == 0 else -1
    return Ownership(uid, info.st_gid, mode)


def apply(fd: int, ownership: Ownership) -> None:
    """Give the open file ``fd`` its owner, group and mode, as far as this user may.

    Without root, changing the owner fails: the group alone is kept when this user is in
    it, else neither. The mode is always set (the umask must not decide it).
    """
    try:
        os.fchown(fd, ownership.uid, ownership.gid)
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.fchown(fd, -1, ownership.gid)
    os.fchmod(fd, ownership.mode)


def state_problem(state_path: Path, *, writes: bool) -> str | None:
    """Why this run cannot use the state at ``state_path``, in one line naming the file,
    whose it is, who runs, and the command that fixes it; None when it can.

    Writing commands (``refresh``, ``renew``) must own the state and be able to write its
    directory (``wrong_user_problem``); every command must be able to read it
    (``unreadable_problem``). Root is never refused.
    """
    if os.geteuid() == 0:
        return None
    if writes and (problem := wrong_user_problem(state_path)):
        return problem
    return unreadable_problem(state_path)


def wrong_user_problem(state_path: Path) -> str | None:
    """One line when this run would take the state away from its owner, or cannot write
    where it lives, else None.

    For the commands that write (``refresh``, ``renew``), before anything is done: the
    state file or its lock belonging to another user, or a state directory this user
    cannot write (another user's, or one it would have to create where it may not).
    Root is never refused: it keeps every owner. Reading commands (``status``,
    ``check``) must not call this: a monitoring user reads the state of another user by
    design.
    """
    me = os.geteuid()
    if me == 0:
        return None
    directory = state_path.parent
    theirs: list[tuple[Path, int]] = []
    try:
        if not os.access(directory, os.W_OK | os.X_OK):
            uid = os.stat(directory).st_uid
            if uid != me:
                theirs.append((directory, uid))
    except FileNotFoundError:
        return _cannot_create(directory)
    except OSError:
        pass  # a directory above it is closed: said by unreadable_problem
    for path in (state_path, lock_of(state_path)):
        with contextlib.suppress(OSError):
            uid = os.lstat(path).st_uid
            if uid != me:
                theirs.append((path, uid))
    if not theirs:
        return None
    path, uid = theirs[0]
    owner, user = user_name(uid), user_name(me)
    paths = [p for p, u in theirs if u == uid]
    recursive = directory in paths and not os.access(directory, os.R_OK | os.X_OK)
    fix = f"sudo chown {'-R ' * recursive}{user}: {' '.join(map(str, paths))}"
    if directory in paths:  # or leave it its owner, and let this user write there
        fix += f" (or: sudo setfacl -m u:{user}:rwx {directory})"
    return (
        f"{path} belongs to {owner}, this run is {user}: run ocsptool as {owner} "
        f"({run_as(owner)}), or if {user} is the right user: {fix}"
    )


def _cannot_create(directory: Path) -> str | None:
    """The state's directory is missing and this user may not create it: who may."""
    ancestor = directory
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if os.access(ancestor, os.W_OK | os.X_OK):
        return None  # created by the run
    try:
        owner = user_name(os.stat(ancestor).st_uid)
    except OSError:
        owner = "another user"
    user = user_name(os.geteuid())
    group = group_name(os.getegid())
    return (
        f"cannot create {directory}: {ancestor} belongs to {owner}, this run is {user}: "
        f"sudo install -d -o {user} -g {group} -m 0750 {directory}"
    )


def unreadable_problem(state_path: Path) -> str | None:
    """One line when this user may not read the state (a directory on its way that it may
    not enter, or the file itself), else None: what stops it, whose it is, and the fix.
    A state that does not exist is not this problem (``check`` says "no state yet")."""
    me = os.geteuid()
    if me == 0:
        return None
    blocker, need = None, "r"
    for directory in reversed(state_path.parents):
        if os.path.isdir(directory) and not os.access(directory, os.X_OK):
            blocker, need = directory, "x"
            break
    if blocker is None:
        if not os.path.lexists(state_path) or os.access(state_path, os.R_OK):
            return None
        blocker = state_path
    try:
        st = os.stat(blocker)
    except OSError as e:
        return f"{state_path}: cannot read the state: {e.strerror}"
    owner, group = user_name(st.st_uid), group_name(st.st_gid)
    user, mode = user_name(me), stat.S_IMODE(st.st_mode)
    what = "the file" if blocker == state_path else str(blocker)
    facts = f"{what} is {owner}:{group} {mode:04o}"
    bit = {"r": stat.S_IRGRP, "x": stat.S_IXGRP}[need]
    if st.st_uid == me:
        fix = f"chmod u+{need} {blocker}"
    elif blocker == state_path and _uid_of(state_path.parent) == me:  # left by another run
        fix = f"sudo chown {user}: {_with_lock(blocker, state_path)}, or run as {owner}"
        facts += f", in {user}'s directory"
    elif st.st_gid in (os.getegid(), *os.getgroups()):
        fix = f"sudo chmod g+{need} {_with_lock(blocker, state_path)}"
        facts += f", which its group {group} may not {_verb(need)}"
    elif mode & bit:
        fix = f"sudo usermod -aG {group} {user} (then log in again), or run as {owner}"
        facts += f" and {user} is not in group {group}"
    else:
        fix = f"run as {owner} ({run_as(owner)})"
        facts += f" and this run is {user}"
    return f"{state_path}: permission denied: {facts}: {fix}"


def _uid_of(path: Path) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _verb(need: str) -> str:
    return "read" if need == "r" else "enter"


def _with_lock(blocker: Path, state_path: Path) -> str:
    """The state file and its lock (``check`` reads the last run from it), or a directory."""
    if blocker != state_path:
        return str(blocker)
    return f"{state_path} {lock_of(state_path)}"


def lock_of(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def run_as(owner: str) -> str:
    """How to run ocsptool as ``owner``."""
    return "sudo ocsptool …" if owner == "root" else f"sudo -u {owner} ocsptool …"


def default_state_problem(state_path: Path) -> str | None:
    """One line when the default state path cannot be created, else None.

    For a state path that came from the default (no ``--state``, no ``state`` in the
    config file): with the README's ``useradd --home-dir /nonexistent`` the default under
    ``~/.local/state`` can never be created, and the fix is the config file.
    """
    parent = state_path.parent
    missing: Path | None = None
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing, ancestor = ancestor, ancestor.parent
    if os.access(ancestor, os.W_OK | os.X_OK):
        return None
    why = f"{missing} does not exist" if missing is not None else f"{parent} is not writable"
    return f"cannot keep the state in the default {state_path} ({why}): {SET_STATE}"


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
