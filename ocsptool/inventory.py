"""What a run serves: every certificate, where it came from, where its staple goes, and who
serves it. The one discovery every command builds (``ocsptool.sources.discover``), from
the same ``Inputs``, so ``refresh``, ``refresh --force``, ``renew``, ``status``, ``check``,
``show`` and ``--metrics`` never disagree about which certificates exist.

An ``Inventory`` holds, per certificate key (its absolute path):

- the scanned file (``scan.Found``: stat keys only, all a no-op run reads);
- its ``Route``: where it came from (``file:line``, or the PATH), the staple file the
  server reads (a crt-list, crt-store or server block may name another file than
  ``<cert>.ocsp``), its key and issuer files when a configuration names them, and the
  instances that load it and under which name;

and for the run: the consumers (each server's runtime address: HAProxy sockets, and
``nginx:<configuration>`` for an nginx), the
warnings (lines skipped, never a failure) and the problems (what would stop a server from
starting, or a PATH that cannot be read).

A certificate file's key is its absolute path. A certificate that is not a file has a key
that is never a path, ``SCHEME:...`` (a TLS Secret: ``kubernetes:NAMESPACE/NAME``); where
its staple lives is its part's ``home`` (``ocsptool.sinks.Home``), not a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ocsptool.route import Route, issuer_sources
from ocsptool.scan import DEFAULT_EXTENSIONS, Found
from ocsptool.sinks.file import FILE_HOME

if TYPE_CHECKING:
    from ocsptool.kubernetes.selection import Selection
    from ocsptool.sinks import Home
    from ocsptool.target import Target


@dataclass(frozen=True)
class Inputs:
    """What names the certificates of a run: the same for every command."""

    #: Certificate files, directories, crt-lists and bundle base names.
    paths: tuple[str, ...] = ()
    #: HAProxy runtime API addresses given with -s (every PATH certificate goes to each).
    sockets: tuple[str, ...] = ()
    #: HAProxy configurations, one per instance.
    haproxy_configs: tuple[Path, ...] = ()
    #: nginx configurations, one per instance (``-c``): their ``ssl_stapling_file``s.
    nginx_configs: tuple[Path, ...] = ()
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    excludes: tuple[str, ...] = ()
    #: The configurations are the servers' defaults (nothing named them).
    defaulted: bool = False
    #: ``--kubernetes``: the TLS Secrets to serve (None: no Secrets).
    kubernetes: Selection | None = None

    @property
    def named(self) -> bool:
        """Whether anything names certificates (else the defaults are read)."""
        return bool(self.paths or self.haproxy_configs or self.nginx_configs or self.kubernetes)


class Part(NamedTuple):
    """One source's share of the inventory: its certificates, in its order, how the
    source parses one (``Source.target``), and where their staples live (its ``Survey``'s
    home: the file home unless the source says otherwise)."""

    target: Callable[[Found, Route], Target]
    found: list[Found]
    home: Home = FILE_HOME


@dataclass
class Inventory:
    """Every certificate of a run, each once, and how to reach who serves it."""

    parts: list[Part] = field(default_factory=list)
    #: Per certificate key: its route, when a configuration says (else ``default_route``).
    routes: Mapping[str, Route] = field(default_factory=dict)
    #: What named the certificates (the -s addresses get every certificate that has no
    #: route of its own).
    inputs: Inputs = field(default_factory=Inputs)
    #: Every consumer (runtime address), in order: the -s ones, then each instance's.
    sockets: tuple[str, ...] = ()
    #: One line each, ``file:line: what was skipped``; never a failure.
    warnings: tuple[str, ...] = ()
    #: (path or ``file:line``, why): a certificate or PATH that cannot be used.
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: Certificate keys (and PATHs) that this user may not read: ``status`` and ``check``
    #: report them from the state (a monitoring user need not read the keys).
    unreadable: list[str] = field(default_factory=list)
    #: Temp files a killed run left behind (removed under the lock).
    leftovers: list[str] = field(default_factory=list)
    #: Keys served only by instances with no socket -> that instance's configuration.
    socketless: Mapping[str, str] = field(default_factory=dict)
    #: Keys a server staples itself, with no staple file ocsptool keeps (nginx's
    #: ``ssl_stapling on`` without ``ssl_stapling_file``) -> that server's consumer address.
    #: Not in ``parts`` unless a PATH names them: no run fetches them; ``status`` shows them.
    itself: Mapping[str, str] = field(default_factory=dict)
    #: Key prefixes a source listed whole in this run (``kubernetes:NAMESPACE/``): a
    #: record under one of them whose certificate was not found is gone (``gone``).
    listed: tuple[str, ...] = ()
    #: Other names of certificates that are not files (``NAMESPACE/NAME`` of a Secret) ->
    #: their keys: ``renew CERT`` and ``show CERT`` take them (``sources.select``).
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: Where the sources other than PATHs and configurations looked, for the line that
    #: says no certificate was found (``TLS Secrets of namespace "web"``).
    searched: tuple[str, ...] = ()

    @property
    def found(self) -> list[Found]:
        """Every certificate, in the order of the sources."""
        if len(self.parts) == 1:
            return self.parts[0].found
        return [f for part in self.parts for f in part.found]

    def keys(self) -> Iterator[str]:
        for part in self.parts:
            for f in part.found:
                yield f.path

    def __len__(self) -> int:
        return sum(len(part.found) for part in self.parts)

    def home(self, key: str) -> Home:
        """Where the staple of ``key`` lives (its part's home)."""
        for part in self.parts:
            if part.home is not FILE_HOME and any(f.path == key for f in part.found):
                return part.home
        return FILE_HOME

    def gone(self, key: str) -> bool:
        """Whether a recorded certificate that this inventory lacks no longer exists: a
        key under a prefix listed whole in this run, or a file that is gone. A key that is
        not a path (a Secret of a namespace not listed in this run) is never judged by
        the file system."""
        if self.listed and key.startswith(self.listed):
            return True
        return os.path.isabs(key) and not os.path.lexists(key)

    # -- routing -------------------------------------------------------------------------

    def route(self, key: str) -> Route:
        return self.routes.get(key) or self.default_route(key)

    def default_route(self, key: str) -> Route:
        """A PATH's certificate: ``<cert>.ocsp``, every -s socket."""
        return Route((), None, self.inputs.sockets)

    def sinks_of(self, key: str) -> Sequence[str]:
        route = self.routes.get(key)
        return self.inputs.sockets if route is None else route.sinks

    def staple_path(self, key: str) -> Path:
        route = self.routes.get(key)
        staple = route.staple_path if route is not None else None
        return Path(staple or key + ".ocsp")

    def issuers(self, key: str) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
        """Where else than the bundle and ``<cert>.issuer`` the issuer may be (files a
        configuration names, chain files of ``issuers-chain-path``): ``parse_bundle``'s."""
        route = self.routes.get(key)
        return issuer_sources(route) if route is not None else ((), ())

    def name_for(self, key: str, sink: str) -> str:
        """The name the instance behind ``sink`` loaded ``key`` under (else the key)."""
        route = self.routes.get(key)
        if route is None or not route.served:
            return key
        for sockets, name, _update in route.served:
            if sockets and sockets[0] == sink:
                return name
        return route.served[0][1]

    def served_by(self, key: str) -> list[str]:
        """The instances that load ``key``, for people: each one's socket, else its
        configuration (empty for a PATH's certificate)."""
        route = self.routes.get(key)
        if route is None:
            return []
        return [sockets[0] if sockets else name for sockets, name, _ in route.served]

    def unpushed_notes(self, written: Iterable[str]) -> list[str]:
        """One note per instance with no socket that this run wrote new staples for."""
        from collections import Counter

        counts = Counter(self.socketless[k] for k in written if k in self.socketless)
        return [
            f"{config}: {n} new staple{'s' if n > 1 else ''} written, not pushed: it names "
            "no stats socket (add 'stats socket ... level admin', or give -s); HAProxy "
            "serves them after its next reload"
            for config, n in sorted(counts.items())
        ]

    # -- selecting -----------------------------------------------------------------------

    def only(self, keys: Iterable[str]) -> Inventory:
        """This inventory restricted to ``keys`` (``renew``): nothing else is touched."""
        from dataclasses import replace

        wanted = set(keys)
        parts = [p._replace(found=[f for f in p.found if f.path in wanted]) for p in self.parts]
        return replace(self, parts=[p for p in parts if p.found], leftovers=[])

    # -- targets -------------------------------------------------------------------------

    def target(self, part: Part, found: Found) -> Target:
        """Parse one certificate (``CertificateError`` with a one-line cause)."""
        return part.target(found, self.route(found.path))
