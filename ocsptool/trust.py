"""Who may steer a run: the files that decide where ocsptool writes and what it sends
with a key, and the symlinks it follows (the README's Security section is the threat
model; these are two of its rules).

**Steering files** (sshd's StrictModes). A HAProxy configuration, Debian's
``/etc/default/haproxy``, a crt-list (read from a configuration, or given as a PATH), an
nginx configuration and each file it includes is used only when it, and every directory
on its way from ``/`` (symlinks followed, each checked in turn), is owned by root or by
this run's user, and nobody else may write it:

- writable by others: never, except a directory with the sticky bit (``/tmp``): there only
  an entry's owner may replace it, and that owner is checked in turn;
- writable by its group: only when the group is trusted. A root run trusts root's group
  only: a member of ``haproxy`` must not decide where root writes. A run as another user
  also trusts its own groups (the README's job user in group ``haproxy``, with
  ``/etc/haproxy/certs`` ``root:haproxy 2770``): their members are the job's peers, who
  may already write every bundle and staple there; steering the job's user gives them
  nothing they cannot do themselves.

``Steering.problem`` is the check: one line naming the file (or the directory that fails),
its owner and mode, and the fix; each directory is checked once per ``Steering``.

**Symlinks** (like the kernel's ``protected_symlinks``). A symlink met while scanning a
certificate directory, on a PATH, or on the way to the directory a file is written into
is followed only when root or this run's user owns it, or its owner also owns what it
points to: a user who may add a symlink to a shared directory cannot lead ocsptool into
a directory of root's (or anyone else's). ``link_problem`` is the rule;
``open_directory`` walks a path to the directory a write goes into, one component at a
time, applying it without a race (the write then happens relative to that directory).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from ocsptool.owner import group_name, user_name
from ocsptool.printable import shown

#: The most symlinks one path may go through (the kernel's limit).
MAX_LINKS = 40


@dataclass(frozen=True)
class Who:
    """Whose files a run trusts: its own user and root; root's group, and its own
    groups when it is not root."""

    uid: int
    users: frozenset[int]
    groups: frozenset[int]

    @property
    def name(self) -> str:
        return user_name(self.uid)

    @property
    def writers(self) -> str:
        """Who may write a steering file, for messages: ``root``, ``root or ocsptool``."""
        return "root" if self.uid == 0 else f"root or {self.name}"

    @property
    def owners(self) -> str:
        """``root's``, ``root's or ocsptool's``."""
        return "root's" if self.uid == 0 else f"root's or {self.name}'s"


def running() -> Who:
    """This process's trust: root's, or its user's and groups'."""
    uid = os.geteuid()
    groups = {0} if uid == 0 else {0, os.getegid(), *os.getgroups()}
    return Who(uid, frozenset({0, uid}), frozenset(groups))


class Untrusted(OSError):
    """A path ocsptool refuses to follow or use, or a file it keeps for itself that another
    user could have written (errno EPERM); ``str`` is the one-line cause (and fix), to
    follow the path it concerns (``belongs to mallory (uid 1001), not to root``)."""

    def __str__(self) -> str:
        return self.strerror or ""


# -- steering files ------------------------------------------------------------------------


@dataclass
class Steering:
    """Checks steering files for one reading, each directory on their way once."""

    who: Who = field(default_factory=running)
    _directories: dict[str, str | None] = field(default_factory=dict)

    def problem(self, path: str, kind: str, effect: str) -> str | None:
        """One line when ``path`` (a ``kind``: ``crt-list``) may not steer this run, else
        None: ``PATH: KIND not used (EFFECT): WHO is OWNER:GROUP MODE, WHY: FIX``."""
        why = self._file(os.path.abspath(path))
        if why is None:
            return None
        return f"{shown(path, 4000)}: {kind} not used ({effect}): {why}"

    def _file(self, path: str) -> str | None:
        """Why the file at ``path`` (or a directory on its way) may be written by a user
        this run does not trust, or None."""
        directory, _, name = path.rpartition("/")
        problem, real = self._walk(directory or "/")
        if problem is not None:
            return problem
        try:
            info = os.lstat(f"{real}/{name}" if real != "/" else f"/{name}")
        except OSError:
            return None  # the read says why
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(path)
            why = self._entry(path, info, is_dir=False)
            if why is not None:
                return why
            return self._file(target) if target != path else None
        return self._entry(path, info, is_dir=False)

    def _walk(self, directory: str) -> tuple[str | None, str]:
        """The directory chain of ``directory``: the first problem (or None) and the
        real path it leads to. Each directory is checked once."""
        if directory in self._directories:
            return self._directories[directory], os.path.realpath(directory)
        problem: str | None = None
        current = "/"
        parts = [p for p in reversed(directory.split("/")) if p]
        links = 0
        try:
            problem = self._entry("/", os.stat("/"), is_dir=True)
            while parts and problem is None:
                name = parts.pop()
                if name == ".":
                    continue
                if name == "..":
                    current = os.path.dirname(current) or "/"
                    continue
                here = f"{current.rstrip('/')}/{name}"
                info = os.lstat(here)
                problem = self._entry(here, info, is_dir=not stat.S_ISLNK(info.st_mode))
                if stat.S_ISLNK(info.st_mode):
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links")
                    target = os.readlink(here)
                    if target.startswith("/"):
                        current = "/"
                    parts.extend(p for p in reversed(target.split("/")) if p)
                else:
                    current = here
        except OSError:
            problem = None  # a missing or closed directory: the read says why
        self._directories[directory] = problem
        return problem, current

    def _entry(self, path: str, info: os.stat_result, *, is_dir: bool) -> str | None:
        """Why ``path`` (``info``: its lstat; the file itself unless ``is_dir`` or a
        symlink) may be changed by someone this run does not trust, or None."""
        who = self.who
        mode = stat.S_IMODE(info.st_mode)
        link = stat.S_ISLNK(info.st_mode)
        sticky = is_dir and bool(mode & stat.S_ISVTX)
        if info.st_uid in who.users and (
            link
            or not mode & 0o022
            or sticky
            or (not mode & stat.S_IWOTH and info.st_gid in who.groups)
        ):
            return None  # the usual case: no name looked up
        owner, group = user_name(info.st_uid), group_name(info.st_gid)
        named = shown(path, 4000)
        if link:
            facts = f"{named} is a symlink of {owner}'s"
        else:
            facts = f"{named if is_dir else 'it'} is {owner}:{group} {mode:04o}"
        if info.st_uid not in who.users:
            return f"{facts}, not {who.owners}: sudo chown {'-h ' if link else ''}root: {named}"
        if mode & stat.S_IWOTH:
            return f"{facts}, writable by other users: sudo chmod go-w {named}"
        why = f"{facts}, writable by group {group}, which may not steer {who.name}"
        if is_dir:
            return (
                f"{why}: move the file to a directory only {who.writers} may write, "
                f"or run ocsptool as a member of {group} (or: sudo chmod g-w {named})"
            )
        return f"{why}: sudo chmod g-w {named}"


# -- symlinks ----------------------------------------------------------------------------


def link_problem(
    link: str, points: str, uid: int, target_uid: int, who: Who | None = None
) -> str | None:
    """Why the symlink ``link`` (owned by ``uid``, pointing to ``points``) may not be
    followed into what it leads to (owned by ``target_uid``), or None: its owner must be
    root, this run's user, or the owner of the target."""
    who = who or running()
    if uid in who.users or uid == target_uid:
        return None
    return (
        f"symlink not followed: it belongs to {user_name(uid)} and points to "
        f"{shown(points, 4000)}, "
        f"which belongs to {user_name(target_uid)} (a symlink is followed only when "
        f"{who.writers} or the owner of its target made it): remove it, or if it is right: "
        f"sudo chown -h {user_name(target_uid)}: {shown(link, 4000)}"
    )


def path_problem(path: str, who: Who | None = None) -> tuple[str, str] | None:
    """The first symlink on ``path`` (any component, the last included) that the rule
    refuses, as (the link, why), or None. A missing component ends the walk: what is
    missing is said by whoever opens it."""
    who = who or running()
    current = "/"
    parts = [p for p in reversed(os.path.abspath(path).split("/")) if p]
    links = 0
    while parts:
        name = parts.pop()
        if name == "..":
            current = os.path.dirname(current) or "/"
            continue
        here = f"{current.rstrip('/')}/{name}"
        try:
            info = os.lstat(here)
        except OSError:
            return None
        if not stat.S_ISLNK(info.st_mode):
            current = here
            continue
        links += 1
        if links > MAX_LINKS:
            return None  # the open says "too many levels of symbolic links"
        target = os.readlink(here)
        if info.st_uid not in who.users:
            try:
                target_uid = os.stat(here).st_uid
            except OSError:
                return None
            if (why := link_problem(here, target, info.st_uid, target_uid, who)) is not None:
                return here, why
        if target.startswith("/"):
            current = "/"
        parts.extend(p for p in reversed(target.split("/")) if p)
    return None


def open_directory(path: str, who: Who | None = None) -> int:
    """An open descriptor of the directory ``path``, reached one component at a time
    (``O_NOFOLLOW``), following a symlink only when ``link_problem`` allows it: its
    owner is checked against the directory it actually led to, so nothing can be swapped
    between the check and the use. ``O_RDONLY`` when this user may read the directory
    (fsync needs it), else ``O_PATH``. Raises ``Untrusted`` (with the link and why) or
    the ``OSError`` of the component that failed."""
    who = who or running()
    walk = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    #: Components still to walk, last first; a tuple is a check due once a symlink's
    #: target is reached: (the link, what it points to, its owner).
    todo: list[str | tuple[str, str, int]] = [
        p for p in reversed(os.path.abspath(path).split("/")) if p
    ]
    shown_path = "/"
    links = 0
    try:
        while todo:
            item = todo.pop()
            if isinstance(item, tuple):
                link, points, uid = item
                target_uid = os.fstat(fd).st_uid
                if (why := link_problem(link, points, uid, target_uid, who)) is not None:
                    raise Untrusted(errno.EPERM, f"{shown(link, 4000)}: {why}")
                continue
            if item == ".":
                continue
            here = f"{shown_path.rstrip('/')}/{item}"
            try:
                step = os.open(item, walk, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                info = os.stat(item, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(info.st_mode):
                    raise
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP)) from None
                target = os.readlink(item, dir_fd=fd)
                if info.st_uid not in who.users:
                    todo.append((here, target, info.st_uid))
                todo.extend(p for p in reversed(target.split("/")) if p)
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                shown_path = here
                continue
            os.close(fd)
            fd, shown_path = step, here
        try:
            opened = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        except PermissionError:
            return fd  # this user may write and enter it, not list it: no fsync then
        os.close(fd)
        return opened
    except BaseException:
        os.close(fd)
        raise
