"""Why this user may not connect to a HAProxy Unix socket, and the fix, in a few words.

A refused ``connect`` says only "permission denied". This looks at what refused it (a
directory on the way, or the socket's owner, group and mode) and at who runs, and names
the fix. HAProxy's master socket is set up on its command line (``-S path,mode,660,group,
haproxy``), not with a ``stats socket`` line, so when a running HAProxy was started with
``-S`` for this path (``/proc/<pid>/cmdline``), the fix names that option.
"""

from __future__ import annotations

import grp
import itertools
import os
import stat
from pathlib import Path

#: When nothing better is known.
FALLBACK = "permission denied (run as a user that may use the socket)"
#: The group the README gives the sockets (Debian's haproxy package creates it).
GROUP = "haproxy"


def denied(path: str) -> str:
    """The cause after ``HAProxy socket PATH: ``, for a connect refused with EACCES."""
    from ocsptool.owner import group_name, user_name

    user = user_name(os.geteuid())
    for directory in reversed(Path(path).parents):
        if os.path.isdir(directory) and not os.access(directory, os.X_OK):
            try:
                st = os.stat(directory)
            except OSError:
                return FALLBACK
            owner, group = user_name(st.st_uid), group_name(st.st_gid)
            return (
                f"permission denied: {directory} is {owner}:{group} "
                f"{stat.S_IMODE(st.st_mode):04o} and {user} may not enter it"
            )
    try:
        st = os.stat(path)
    except OSError:
        return FALLBACK
    owner, group = user_name(st.st_uid), group_name(st.st_gid)
    mode = stat.S_IMODE(st.st_mode)
    master = is_master_socket(path)
    what = "HAProxy's master socket (-S), " if master else ""
    facts = f"permission denied: it is {what}{owner}:{group} {mode:04o}"
    mine = st.st_gid in (os.getegid(), *os.getgroups())
    if st.st_gid != 0 and mode & stat.S_IWGRP and not mine:
        return f"{facts} and {user} is not in group {group}: {_join(group, user)}"
    wanted = group if st.st_gid != 0 else _group_to_give()
    if master:
        setup = (
            f"start HAProxy with -S {path},mode,660,group,{wanted} "
            "(Debian: EXTRAOPTS in /etc/default/haproxy)"
        )
    else:
        setup = f"give it mode 660 and group {wanted} (stats socket {path} mode 660 group {wanted})"
    if not (wanted == group and mine):
        setup += f" and put {user} in group {wanted} (sudo usermod -aG {wanted} {user})"
    return f"{facts}, which {user} may not write: {setup}"


def _join(group: str, user: str) -> str:
    return f"sudo usermod -aG {group} {user} (then log in again)"


def _group_to_give() -> str:
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        return "GROUP"
    return GROUP


def is_master_socket(path: str) -> bool:
    """Whether a running HAProxy has ``path`` as its master socket (``-S path[,...]``).

    Reads ``/proc/<pid>/cmdline`` of the processes named haproxy; False when /proc cannot
    be read (``hidepid``) or no HAProxy has it.
    """
    real = os.path.realpath(path)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not os.path.basename(argv[0]).startswith(b"haproxy"):
            continue
        for option, value in itertools.pairwise(argv):
            if option != b"-S" or not value:
                continue
            address = os.fsdecode(value.split(b",", 1)[0]).removeprefix("unix@")
            if os.path.realpath(address) == real:
                return True
    return False
