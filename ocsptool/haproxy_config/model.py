"""What a HAProxy configuration says it loads: certificates, sockets, warnings, problems."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ocsptool.errors import ConfigError

#: The warning for a configuration that loads no certificate (``file: ...``).
NOTHING_LOADED = "no bind line or ssl-f-use loads a certificate"


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

    ``name`` is what ``set ssl cert`` needs (relative when the configuration spells it
    so); ``cert_file`` is the file to parse: the same path, except for crt-store entries
    (``@store/alias``) and with ``default-path``, which HAProxy resolves relative names
    against. ``key_file`` is the separate key file HAProxy reads when ``cert_file`` holds
    no key, when it is not ``<cert_file>.key`` (a crt-store, crt-list or ssl-f-use
    ``key``, or ``ssl-load-extra-del-ext``). ``staple_path`` is the staple file HAProxy
    reads at start, None when it reads none (then a staple pushed at run time is lost at
    the next reload); ``issuer_path`` the issuer file it reads with it (None: none).
    ``staple_from`` says which option chose the staple file, or that there is none, and
    where: (``"crt-list ocsp"``, ``file:line``); None for HAProxy's own ``<crt>.ocsp``
    (``keywords.SINCE`` has the first release of each option). Paths are ``str``, as
    HAProxy spells them (``crt-base//x.pem`` stays), like the scan's (speed at 100k).
    """

    name: str
    cert_file: str
    key_file: str | None
    staple_path: str | None
    issuer_path: str | None
    ocsp_update: bool
    snis: tuple[str, ...]
    origin: str
    staple_from: tuple[str, str] | None = None


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
    #: ``issuers-chain-path``: a directory of issuer chains HAProxy completes chains from.
    issuers_dir: str | None = None
