"""What a HAProxy configuration says it loads: certificates, sockets, warnings, problems."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ocsptool.errors import ConfigError

#: The warning for a configuration that loads no certificate (``file: ...``).
NOTHING_LOADED = "no bind line loads a certificate"


class HAProxyConfigError(ConfigError):
    """A HAProxy configuration file that cannot be read at all (exit 2)."""


class SocketLevel(StrEnum):
    """A stats socket's ``level``; HAProxy's default is ``operator`` (checked, 2.6-3.4)."""

    USER = "user"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Socket:
    """A runtime API socket, its address spelled as ocsptool's ``--socket`` takes it.

    ``/path`` (Unix), ``ipv4@127.0.0.1:9999`` or ``ipv6@[::1]:9999``. ``master`` is the
    master CLI of a master-worker instance (``-S``): commands need a ``@1`` prefix there.
    """

    address: str
    level: SocketLevel
    master: bool
    origin: str


@dataclass(frozen=True, slots=True)
class LoadedCert:
    """One certificate HAProxy loads, under ``name`` (as ``show ssl cert`` lists it).

    ``name`` is what ``set ssl cert`` needs; ``cert_file`` is the file to parse (the same
    path except for crt-store entries, named ``@store/alias``). ``key_file`` is the key
    named by a crt-store or crt-list ``key``; otherwise HAProxy takes the key from
    ``cert_file``, or from ``<cert_file>.key`` when that holds none. Paths are ``str``,
    as HAProxy spells them (``crt-base//x.pem`` stays), like the scan's (speed at 10k).
    """

    name: str
    cert_file: str
    key_file: str | None
    staple_path: str
    issuer_path: str
    ocsp_update: bool
    snis: tuple[str, ...]
    origin: str


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything one HAProxy instance's configuration says, in order of appearance."""

    instance: str
    config: Path
    certs: tuple[LoadedCert, ...]
    sockets: tuple[Socket, ...]
    warnings: tuple[str, ...]
    problems: tuple[str, ...]
    #: Every file it read or tried to: the configuration files and the crt-lists.
    inputs: tuple[str, ...] = ()
    #: The certificate files and directories it loads that this user may not look at
    #: (permission denied): a monitoring user without the keys, not a problem of HAProxy's.
    denied: tuple[str, ...] = ()
