"""Who listens on a runtime-API socket, and whether it may be sent a private key.

``--update-certs`` sends a renewed certificate WITH its private key over the socket. A
local user who binds the socket's address while HAProxy is down (a TCP port, or a Unix
path in a directory they can write) would receive it. So the key goes only to a listener
that could read the key file itself: nobody learns a key they could not already read.

The rule (``key_refusal``), checked on the connection the key would travel on:

- Unix socket: the listener's credentials from ``SO_PEERCRED`` (the uid and gid of the
  process that called ``listen()``; HAProxy binds its sockets before it drops root, so a
  packaged HAProxy shows uid 0). Allowed: uid 0; or a uid/gid that the bundle file's
  owner, group and mode let read it (the owner bits for its owner, the group bits for its
  group, else the other bits). A non-root listener must also own the socket file.
- TCP: the kernel's socket table (``/proc/net/tcp``, ``tcp6``) names the uid of the
  socket at the other end of OUR connection, when that end is on this host (an accepted
  socket keeps its listener's uid). Allowed as above, by uid alone (no gid is known).
  A listener on another host cannot be verified: the key is never sent there.

The process's name is not checked: anyone can run the real ``haproxy`` binary (or name a
program so) under their own uid; what they can read is what matters.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import struct
from dataclasses import dataclass

from ocsptool.owner import user_name

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Listener:
    """The other end of a runtime-API connection, as far as the kernel tells."""

    uid: int | None  # None: unknown (``why`` says why)
    gid: int | None = None  # Unix sockets only
    pid: int | None = None
    why: str | None = None


def listener_of(sock: socket.socket, path: str | None) -> Listener:
    """The listener behind the connected ``sock`` (``path``: the Unix socket's file)."""
    if sock.family == socket.AF_UNIX:
        return _unix_listener(sock, path)
    return _tcp_listener(sock)


def _unix_listener(sock: socket.socket, path: str | None) -> Listener:
    try:
        pid, uid, gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
    except (OSError, AttributeError, struct.error):
        return Listener(None, why="the system does not name a Unix socket's listener")
    if uid != 0 and path is not None:
        try:
            owner = os.stat(path).st_uid
        except OSError as e:
            return Listener(None, why=f"cannot check the socket file ({e.strerror})")
        if owner not in (0, uid):
            return Listener(
                None,
                why=f"the socket file belongs to {_who(owner)}, but {_who(uid)} listens on it",
            )
    return Listener(uid, gid, pid)


def _tcp_listener(sock: socket.socket) -> Listener:
    try:
        ours = sock.getsockname()
        theirs = sock.getpeername()
    except OSError as e:
        return Listener(None, why=f"cannot name the connection's ends ({e.strerror})")
    table = "/proc/net/tcp6" if sock.family == socket.AF_INET6 else "/proc/net/tcp"
    wanted = (_proc_address(theirs[0], theirs[1]), _proc_address(ours[0], ours[1]))
    try:
        with open(table, encoding="ascii") as rows:
            for row in rows:
                fields = row.split()
                if len(fields) > 7 and (fields[1], fields[2]) == wanted:
                    return Listener(int(fields[7]))
    except (OSError, ValueError):
        pass
    return Listener(None, why="it is not a socket of this host")


def _proc_address(host: str, port: int) -> str:
    """``host:port`` as ``/proc/net/tcp`` prints it: each 32-bit word of the address in
    host byte order, in hex, then the port."""
    packed = ipaddress.ip_address(host.split("%", 1)[0]).packed
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"


def key_refusal(address: str, listener: Listener, bundle_path: str) -> str | None:
    """Why the private key in ``bundle_path`` must not be sent to ``listener``, or None."""
    head = f"the private key was not sent to {address}"
    if listener.uid is None:
        return f"{head}: cannot tell who listens on it ({listener.why})"
    if listener.uid == 0:
        return None
    try:
        bundle = os.stat(bundle_path)
    except OSError as e:
        return f"{head}: cannot check who may read the file ({e.strerror})"
    if could_read(listener.uid, listener.gid, bundle):
        return None
    return f"{head}: it listens as {_who(listener.uid)}, who cannot read the file"


def could_read(uid: int, gid: int | None, st: os.stat_result) -> bool:
    """Whether ``uid`` (with primary group ``gid``) may read a file of this owner and mode."""
    mode = stat.S_IMODE(st.st_mode)
    if uid == 0:
        return True
    if uid == st.st_uid:
        return bool(mode & stat.S_IRUSR)
    if gid is not None and gid == st.st_gid:
        return bool(mode & stat.S_IRGRP)
    return bool(mode & stat.S_IROTH)


def _who(uid: int) -> str:
    name = user_name(uid)
    return f"uid {uid}" if name == str(uid) else f"{name} (uid {uid})"
