"""The HAProxy configuration source: the certificates each instance loads, and who serves them.

``HAProxyConfigSource.read(configs, sockets)`` reads each instance's configuration with
``ocsptool.haproxy_config`` (crt, crt-base, directories, crt-lists, multi-cert bundles,
crt-stores, stats sockets, Debian's master socket). ``scan()`` is as cheap as the
directory scan: one ``scandir`` per directory that holds certificates or staples, one
``stat`` per certificate. ``routes`` says, per certificate, which instances serve it and
under which name (``Consumer``) and where its staple lives, so each staple is pushed only
to the instances that load it.

An instance is reached through its best socket: an admin-level stats socket, else the
master CLI (``-S``, admin by default), else an operator one. With one configuration, ``-s``
sockets replace the ones it names; with several, ``-s`` sockets get every certificate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ocsptool.haproxy_config import Discovery, Socket, SocketLevel, read_haproxy_config
from ocsptool.scan import Found, ScanResult
from ocsptool.target import Consumer

if TYPE_CHECKING:
    from ocsptool.target import Target

#: Read when no PATH, no ``paths`` and no ``haproxy_configs`` are given (Debian, Ubuntu).
DEFAULT_CONFIG = Path("/etc/haproxy/haproxy.cfg")
#: Debian's unit options (``-S`` master socket); read by ``read_haproxy_config``.
DEFAULTS_FILE = Path("/etc/default/haproxy")

#: A file with one of these endings is always read as a crt-list when it is not PEM/DER.
CRT_LIST_ENDINGS = (".txt", ".list", ".lst", ".crtlist", ".crt-list")
_PREFERENCE = {SocketLevel.ADMIN: 0, SocketLevel.OPERATOR: 2, SocketLevel.USER: 3}


class Route(NamedTuple):
    """Who serves one certificate (each instance, under its name), its staple file, and
    the sinks (socket addresses) that get its staple."""

    consumers: tuple[Consumer, ...]
    staple_path: str
    sinks: tuple[str, ...]


def instance_sockets(discovery: Discovery) -> tuple[str, ...]:
    """The instance's sockets, best first: admin stats, master CLI, operator, user."""

    def rank(socket: Socket) -> int:
        return 1 if socket.master else _PREFERENCE[socket.level]

    ordered = sorted(discovery.sockets, key=rank)
    return tuple(dict.fromkeys(s.address for s in ordered))


@dataclass(frozen=True)
class HAProxyConfigSource:
    discoveries: tuple[Discovery, ...]
    #: ``-s`` sockets: with one configuration they replace its sockets.
    override: tuple[str, ...] = ()
    routes: Mapping[str, Route] = field(default_factory=dict)
    #: One line each, ``file:line: ...``: lines skipped; never a failure.
    warnings: tuple[str, ...] = ()

    @classmethod
    def read(
        cls, configs: Sequence[Path], override: Sequence[str] = (), env: Mapping[str, str] = {}
    ) -> HAProxyConfigSource:
        """Read every configuration (HAProxyConfigError when one cannot be read: exit 2)."""
        discoveries = tuple(
            read_haproxy_config(Path(c), env=env or os.environ, defaults_file=DEFAULTS_FILE)
            for c in dict.fromkeys(os.path.abspath(c) for c in configs)
        )
        routes: dict[str, Route] = {}
        warnings: list[str] = []
        replaced = bool(override) and len(discoveries) == 1
        extra = tuple(override)  # every -s socket gets every certificate
        for discovery in discoveries:
            sockets = extra if replaced else instance_sockets(discovery)
            warnings += discovery.warnings
            if not sockets:
                warnings.append(
                    f"{discovery.instance}: no stats socket: its staples are written, "
                    "not pushed (add 'stats socket ... level admin' or give -s)"
                )
            seen: set[str] = set()
            for cert in discovery.certs:
                key = os.path.abspath(cert.cert_file)
                if key in seen:  # loaded twice by one instance: pushed once, the first name
                    continue
                seen.add(key)
                consumer = Consumer(sockets, cert.name, cert.ocsp_update)
                old = routes.get(key)
                if old is None:
                    sinks = (sockets[0], *extra) if sockets and not replaced else extra
                    routes[key] = Route(
                        (consumer,), os.path.abspath(cert.staple_path), tuple(dict.fromkeys(sinks))
                    )
                else:
                    sinks = (*old.sinks, sockets[0]) if sockets else old.sinks
                    routes[key] = old._replace(
                        consumers=(*old.consumers, consumer), sinks=tuple(dict.fromkeys(sinks))
                    )
        return cls(discoveries, tuple(override), routes, tuple(dict.fromkeys(warnings)))

    @property
    def sockets(self) -> tuple[str, ...]:
        """Every sink's socket: each instance's best, and the -s ones."""
        sinks = (s for r in self.routes.values() for s in r.sinks)
        return tuple(dict.fromkeys((*self.override, *sinks)))

    def instance_of(self, socket: str) -> str | None:
        """The configuration of the instance reached through ``socket``."""
        for route in self.routes.values():
            for consumer in route.consumers:
                if consumer.sockets and consumer.sockets[0] == socket:
                    return self._config_of(consumer.name)
        return None

    def _config_of(self, name: str) -> str | None:
        for discovery in self.discoveries:
            if any(c.name == name for c in discovery.certs):
                return discovery.instance
        return None

    def scan(self) -> ScanResult:
        result = ScanResult()
        for discovery in self.discoveries:
            for problem in discovery.problems:
                where, _, why = problem.partition(": ")
                result.problems.append((where, why))
        listings: dict[str, dict[str, os.DirEntry[str]] | None] = {}
        found = result.found.append
        new = tuple.__new__
        for key, route in self.routes.items():
            staple_path = route.staple_path
            directory, name = os.path.split(key)
            if directory in listings:
                listing = listings[directory]
            else:
                listing = listings[directory] = _listing(directory)
            entry = listing.get(name) if listing else None
            try:
                st = entry.stat() if entry is not None else os.stat(key)
            except OSError as e:
                from ocsptool.scan import _describe

                result.problems.append((key, _describe(e)))
                continue
            sdir, sname = os.path.split(staple_path)
            if sdir not in listings:
                listings[sdir] = _listing(sdir)
            slisting = listings[sdir]
            ocsp = slisting.get(sname) if slisting else None
            issuer = _issuer_stat(key, listing)
            stat = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
            found(new(Found, (key, stat, ocsp.inode() if ocsp else None, issuer)))
        return result

    def target(self, found: Found) -> Target:
        from dataclasses import replace

        from ocsptool.certs import parse_bundle
        from ocsptool.target import target_of

        route = self.routes[found.path]
        target = target_of(parse_bundle(Path(found.path)), found.path, Path(route.staple_path))
        return replace(target, consumers=route.consumers)


def _listing(directory: str) -> dict[str, os.DirEntry[str]] | None:
    try:
        with os.scandir(directory) as it:
            return {entry.name: entry for entry in it}
    except OSError:
        return None


def _issuer_stat(key: str, listing: dict[str, os.DirEntry[str]] | None) -> list[int] | None:
    if listing is not None and os.path.basename(key) + ".issuer" not in listing:
        return None
    try:
        st = os.stat(key + ".issuer")
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def explicit_paths(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """PATHs as the directory scan takes them, with crt-lists and bundle base names
    expanded: a file whose first line is not PEM or DER is read as a crt-list (relative
    entries under the list's directory); a missing ``site.pem`` whose ``site.pem.rsa``,
    ``.ecdsa`` or ``.dsa`` exist is those parts. Also the problems: (path, why)."""
    from ocsptool.haproxy_config import expand_crt, parse_crt_list

    out: list[str] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        path = os.path.abspath(raw)
        if not os.path.lexists(path):
            parts = expand_crt(path, directories=False).names
            out.extend(parts or (raw,))  # nothing: the scan says "no such file"
            continue
        text = _crt_list_text(path)
        if text is None:
            out.append(raw)
            continue
        entries, warnings = parse_crt_list(text, path)
        base = os.path.dirname(path)
        expansions = [(e.line, expand_crt(os.path.join(base, e.crt))) for e in entries]
        if not path.endswith(CRT_LIST_ENDINGS) and not any(x.names for _, x in expansions):
            out.append(raw)  # no line names a file: not a crt-list (the parse says why)
            continue
        problems += [(w.partition(": ")[0], w.partition(": ")[2]) for w in warnings]
        for line, expansion in expansions:
            if expansion.problem:
                problems.append((f"{path}:{line}", expansion.problem))
            out.extend(expansion.names)
    return out, problems


def _crt_list_text(path: str) -> str | None:
    """The text of a crt-list, or None for anything else (a certificate, a directory)."""
    try:
        if os.path.isdir(path):
            return None
        with open(path, "rb") as f:
            head = f.read(4096)
            if not head or head[0] == 0x30 or b"-----BEGIN" in head or b"\0" in head:
                return None
            data = head + f.read()
    except OSError:
        return None  # the scan says why
    first = next((ln for ln in data.split(b"\n") if ln.strip() and not ln.startswith(b"#")), b"")
    if b"-----BEGIN" in data[:65536] or not first:
        return None
    return data.decode("utf-8", errors="replace")
