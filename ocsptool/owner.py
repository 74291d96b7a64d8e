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
"""

from __future__ import annotations

import contextlib
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


def ownership_for(path: Path, mode: int) -> Ownership:
    """What a file written at ``path`` should get: see the module's rule.

    A symlink at ``path`` is replaced, not followed, so it counts as no file.
    """
    with contextlib.suppress(OSError):
        old = os.lstat(path)
        if stat.S_ISREG(old.st_mode):
            return Ownership(old.st_uid, old.st_gid, stat.S_IMODE(old.st_mode) & 0o777)
    return ownership_of_new(path, mode)


def ownership_of_new(path: Path, mode: int) -> Ownership:
    """A new file: the directory's group, and as root its owner too."""
    try:
        directory = os.stat(path.parent)
    except OSError:
        return Ownership(-1, -1, mode)
    uid = directory.st_uid if os.geteuid() == 0 else -1
    return Ownership(uid, directory.st_gid, mode)


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


def wrong_user_problem(state_path: Path) -> str | None:
    """One line when this run would take the state away from its owner, else None.

    For the commands that write (``refresh``, ``renew``), before anything is done: the
    state file, its lock, or (when neither exists) a state directory this user cannot
    write, belonging to another user. Root is never refused: it keeps every owner.
    Reading commands (``status``, ``check``) must not call this: a monitoring user reads
    the state of another user by design.
    """
    me = os.geteuid()
    if me == 0:
        return None
    lock = state_path.with_name(state_path.name + ".lock")
    theirs: list[tuple[Path, int]] = []
    for path in (state_path, lock):
        with contextlib.suppress(OSError):
            uid = os.lstat(path).st_uid
            if uid != me:
                theirs.append((path, uid))
    if not theirs and not state_path.exists() and not lock.exists():
        with contextlib.suppress(OSError):
            uid = os.stat(state_path.parent).st_uid
            if uid != me and not os.access(state_path.parent, os.W_OK | os.X_OK):
                theirs.append((state_path.parent, uid))
    if not theirs:
        return None
    path, uid = theirs[0]
    owner, user = user_name(uid), user_name(me)
    paths = " ".join(str(p) for p, u in theirs if u == uid)
    return (
        f"{path} belongs to {owner}, this run is {user}: run ocsptool as {owner} "
        f"(sudo -u {owner} ocsptool …), or if {user} is the right user: chown {user}: {paths}"
    )


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
