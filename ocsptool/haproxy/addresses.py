"""``stats socket`` addresses as HAProxy spells them."""

from __future__ import annotations

import re
import socket

from ocsptool.errors import UsageError

SockAddr = str | tuple[str, int]


class AddressError(UsageError, ValueError):
    """A socket address that cannot be parsed."""


def parse_address(address: str) -> tuple[int, SockAddr]:
    """The socket family and sockaddr of a ``stats socket`` address.

    Accepts HAProxy's spellings: ``/path/to/socket`` (or ``unix@/path``),
    ``ipv4@127.0.0.1:9999`` and ``ipv6@[::1]:9999``.
    """
    prefix, sep, rest = address.partition("@")
    if not sep and address and not re.fullmatch(r"[\w.-]+:\d+", address):
        return socket.AF_UNIX, address
    if prefix == "unix" and rest:
        return socket.AF_UNIX, rest
    if prefix == "ipv4" and (match := re.fullmatch(r"([^:\[\]]+):(\d+)", rest)):
        return socket.AF_INET, (match[1], _port(address, match[2]))
    if prefix == "ipv6" and (match := re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)", rest)):
        return socket.AF_INET6, (match[1], _port(address, match[2]))
    raise AddressError(
        f"bad HAProxy socket address {address!r}: use /path/to/socket, "
        "ipv4@127.0.0.1:9999 or ipv6@[::1]:9999"
    )


def _port(address: str, digits: str) -> int:
    port = int(digits)
    if not 0 < port < 65536:
        raise AddressError(f"bad HAProxy socket address {address!r}: port {port} out of range")
    return port
