"""Why a socket could not answer a question: each is a one-line ``HAProxyError``."""

from __future__ import annotations

from ocsptool.errors import HAProxyError


class SocketLevelError(HAProxyError):
    """The socket's ``level`` is too low for a command (``Permission denied`` and kin)."""


class UnexpectedReply(HAProxyError):
    """HAProxy answered something that is not the data asked for (never parsed as data)."""


def level_fix(address: str, level: str | None, needs: str) -> str:
    """The one line naming what the socket needs: ``stats socket ... level admin``."""
    where = address.removeprefix("unix@")
    at = f"level {level}" if level else "a level below admin"
    return (
        f"HAProxy socket {address} is at {at}, but {needs} needs level admin: "
        f"configure it as `stats socket {where} level admin`"
    )
