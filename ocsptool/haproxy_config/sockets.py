"""Runtime API sockets: ``stats socket`` addresses and the master CLI from ``-S``.

Addresses become ocsptool's spelling: ``/path``, ``ipv4@127.0.0.1:9999``,
``ipv6@[::1]:9999``. A wildcard listener (``*:9999``, ``0.0.0.0``, ``::``) is reached on
loopback. The default ``level`` of a stats socket is ``operator`` (HAProxy's docs;
``show cli level`` answers ``operator`` on 2.6-3.4). The master CLI (``-S``) is
``admin`` unless its options say ``level`` (checked: ``show cli level`` and
``@1 show cli level`` answer ``admin`` on 2.6-3.4). It answers a command and then waits
for more: a client must half-close (or send ``quit``) to get EOF.

Debian's and Ubuntu's unit runs ``haproxy -Ws -f $CONFIG -p $PIDFILE $EXTRAOPTS`` with
``CONFIG=/etc/haproxy/haproxy.cfg`` and ``EXTRAOPTS=-S /run/haproxy-master.sock``,
and reads ``/etc/default/haproxy`` (shell assignments) to override both.
"""

from __future__ import annotations

import shlex

from ocsptool.haproxy_config.model import SocketLevel

DEBIAN_CONFIG = "/etc/haproxy/haproxy.cfg"
DEBIAN_EXTRAOPTS = "-S /run/haproxy-master.sock"
_LOOPBACK4 = {"", "*", "0.0.0.0"}  # noqa: S104 - wildcard listeners, reached on loopback
_LOOPBACK6 = {"", "*", "::"}


class AddressError(ValueError):
    """An address ocsptool cannot connect to (the message says why)."""


def socket_address(address: str, unix_prefix: str | None) -> str:
    """The ocsptool spelling of a HAProxy listener address."""
    family, at, rest = address.partition("@")
    if not at:
        family, rest = "", address
    family = family.lower()
    if family in ("unix", "") and (rest.startswith("/") or (family == "unix" and rest)):
        return _unix(rest, unix_prefix)
    if family in ("ipv4", "tcp4"):
        return _ipv4(rest)
    if family in ("ipv6", "tcp6"):
        return _ipv6(rest)
    if family in ("", "tcp"):
        if rest.startswith("[") or rest.count(":") > 1:
            return _ipv6(rest)
        if ":" in rest:
            return _ipv4(rest)
        if not family and rest:
            return _unix(rest, unix_prefix)
    raise AddressError(f"'{address}' is not a Unix or TCP socket ocsptool can reach")


def _unix(path: str, unix_prefix: str | None) -> str:
    if path.startswith("/"):
        return path
    if unix_prefix:
        return f"{unix_prefix}{path}"
    raise AddressError(f"'{path}' is relative to HAProxy's working directory")


def _port(port: str, address: str) -> int:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressError(f"'{address}': no single port")
    return int(port)


def _ipv4(rest: str) -> str:
    host, colon, port = rest.rpartition(":")
    if not colon:
        raise AddressError(f"'{rest}': no port")
    host = "127.0.0.1" if host in _LOOPBACK4 else host
    return f"ipv4@{host}:{_port(port, rest)}"


def _ipv6(rest: str) -> str:
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise AddressError(f"'{rest}': no port")
        port = tail[1:]
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise AddressError(f"'{rest}': no port")
    host = "::1" if host in _LOOPBACK6 else host
    return f"ipv6@[{host}]:{_port(port, rest)}"


def parse_level(value: str) -> SocketLevel:
    try:
        return SocketLevel(value)
    except ValueError:
        raise AddressError(f"unknown level '{value}'") from None


def shell_assignments(text: str) -> dict[str, str]:
    """``NAME=value`` lines of a shell defaults file (``export`` and quotes allowed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words and words[0] == "export":
            words = words[1:]
        for word in words:
            name, equals, value = word.partition("=")
            if equals and name.isidentifier():
                values[name] = value
    return values


def master_sockets(extraopts: str) -> list[tuple[str, SocketLevel]]:
    """The ``-S <address>[,<option>,<value>...]`` arguments of an ``EXTRAOPTS`` value."""
    try:
        words = shlex.split(extraopts)
    except ValueError:
        words = extraopts.split()
    found = []
    for option, value in zip(words, [*words[1:], ""], strict=False):
        if option != "-S" or not value:
            continue
        address, *options = value.split(",")
        level = SocketLevel.ADMIN
        for key, setting in zip(options[::2], options[1::2], strict=False):
            if key == "level":
                level = parse_level(setting)
        found.append((address, level))
    return found
