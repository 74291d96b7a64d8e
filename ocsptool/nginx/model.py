"""What an nginx configuration says about TLS and stapling: plain frozen values.

Paths are ``str`` as nginx opens them (already joined to the prefix or the configuration
directory, not normalized), like the HAProxy reader's. ``origin`` is ``file:line`` where
the line is the one nginx reports: the line of the statement's ``;`` or ``{``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_WILDCARDS = frozenset(("*", "0.0.0.0"))  # noqa: S104 - an address to read, not to bind


@dataclass(frozen=True, slots=True)
class Listen:
    """One ``listen`` of a server block.

    ``address`` is as written: ``*`` (a port alone), ``127.0.0.1``, ``[::1]``, a host
    name, or ``unix:/path`` (then ``port`` is None). ``ssl`` is whether connections
    there are TLS: ``ssl`` on this ``listen``, on the same address and port in any
    other block (nginx joins them), or ``ssl on;`` in the block (nginx < 1.25.1).
    """

    address: str
    port: int | None
    ssl: bool
    default_server: bool
    origin: str

    @property
    def host(self) -> str | None:
        """Where a local client connects to reach it (loopback for a wildcard), or None
        for a unix socket."""
        if self.port is None:
            return None
        if self.address in _WILDCARDS:
            return "127.0.0.1"
        if self.address.startswith("["):
            inner = self.address[1:-1]
            return "::1" if inner in ("::", "::0") else inner
        return self.address


@dataclass(frozen=True, slots=True)
class Certificate:
    """One ``ssl_certificate`` of a block and the ``ssl_certificate_key`` at its position.

    ``path`` holds the leaf first, then its chain. ``key`` is None when no key is given
    for it (nginx refuses that). ``variables``: the certificate or its key names a
    variable (``$ssl_server_name``), so nginx loads it per handshake and never staples
    it. ``inline``: a ``data:`` certificate, not a file.
    """

    path: str
    key: str | None
    origin: str
    variables: bool = False
    inline: bool = False


@dataclass(frozen=True, slots=True)
class ServerBlock:
    """One ``server {}`` of ``http``, with what it inherits from ``http`` merged in.

    ``stapling`` is ``ssl_stapling on``; ``stapling_file`` the ``ssl_stapling_file``
    (with ``stapling_file_origin``); ``certificates_inherited`` says the certificates
    come from ``http``. ``server_names`` are lower-cased as nginx does (regular
    expressions, ``~...``, are kept as written).
    """

    origin: str
    server_names: tuple[str, ...]
    listens: tuple[Listen, ...]
    certificates: tuple[Certificate, ...]
    stapling: bool
    stapling_file: str | None
    stapling_file_origin: str | None
    trusted_certificate: str | None
    certificates_inherited: bool = False

    @property
    def variables(self) -> bool:
        """nginx loads this block's certificates per handshake: it staples none of them."""
        return any(c.variables for c in self.certificates)

    @property
    def tls_listens(self) -> tuple[Listen, ...]:
        """The TCP listens that speak TLS (a handshake check connects to these)."""
        return tuple(lst for lst in self.listens if lst.ssl and lst.port is not None)

    @property
    def handshake_names(self) -> tuple[str, ...]:
        """The server names a client can send as SNI to reach this block: the exact
        names (``.example.com`` gives ``example.com``); no wildcards, regular
        expressions, variables, ``_`` or the empty name."""
        names: list[str] = []
        for name in self.server_names:
            exact = name[1:] if name.startswith(".") else name
            if exact and exact != "_" and not any(c in exact for c in "*~$"):
                names.append(exact)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class StapleFile:
    """An ``ssl_stapling_file`` ocsptool keeps: the response for ``certificate`` goes to
    ``path``; every block in ``servers`` staples it (one handshake check per name).

    ``trusted_certificate`` (``ssl_trusted_certificate``) is an issuer source besides
    the chain in the certificate file.
    """

    path: str
    origin: str
    certificate: Certificate
    trusted_certificate: str | None
    servers: tuple[ServerBlock, ...]


@dataclass(frozen=True, slots=True)
class NginxConfig:
    """Everything ocsptool reads from one nginx configuration.

    ``pid_path`` is the master's pid file (``pid``, else the build's default);
    ``error_logs`` the files of the main ``error_log`` lines (where a refused reload's
    reason goes). ``staple_files`` are the files ocsptool writes; ``problems`` what
    nginx refuses or what would staple a wrong response, ``warnings`` what was skipped
    or has no effect, each one line ``file:line: ...``. ``inputs`` every file read or
    tried, and the directory of every ``include`` glob (a new file there changes the
    result). ``untrusted``: the files not used because someone this run does not trust
    may write them (``trust.Steering``; each is one of the problems); when the
    configuration itself is one, nothing of it is used.
    """

    path: Path
    prefix: str
    conf_prefix: str
    pid_path: str
    error_logs: tuple[str, ...]
    servers: tuple[ServerBlock, ...]
    staple_files: tuple[StapleFile, ...]
    warnings: tuple[str, ...]
    problems: tuple[str, ...]
    inputs: tuple[str, ...]
    untrusted: tuple[str, ...] = ()
