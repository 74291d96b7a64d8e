"""The HAProxy configuration source: the certificates each instance loads, and who serves them.

``HAProxyConfigSource.read(configs, sockets)`` reads each instance's configuration with
``ocsptool.haproxy_config`` (crt, default-crt, crt-base, directories, crt-lists and their
options, multi-cert bundles, crt-stores, ssl-f-use, ssl-load-extra-files and -del-ext,
issuers-chain-path, default-path, stats sockets, Debian's master socket). A certificate
HAProxy reads no staple file for is left out (the reading's warning says why): a staple
pushed at run time would be lost at HAProxy's next reload. ``scan()`` is as cheap as the
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
from typing import TYPE_CHECKING, Any

from ocsptool.files import READ_DENIED
from ocsptool.route import Route
from ocsptool.scan import Found, ScanResult
from ocsptool.sources.routes import absolute, split
from ocsptool.sources.types import Survey, file_target

if TYPE_CHECKING:
    from ocsptool.haproxy_config import Discovery, LoadedCert, Socket
    from ocsptool.route import Served
    from ocsptool.target import Target

#: Read when no PATH, no ``paths`` and no ``haproxy_configs`` are given (Debian, Ubuntu).
DEFAULT_CONFIG = Path("/etc/haproxy/haproxy.cfg")
#: Debian's unit options (``-S`` master socket); read by ``read_haproxy_config``.
DEFAULTS_FILE = Path("/etc/default/haproxy")

#: Socket levels, best first (the master CLI, admin by default, comes between admin
#: and operator). The reader is imported only when a configuration is read.
_PREFERENCE = {"admin": 0, "operator": 2, "user": 3}


def instance_sockets(discovery: Discovery) -> tuple[str, ...]:
    """The instance's sockets, best first: admin stats, master CLI, operator, user."""

    def rank(socket: Socket) -> int:
        return 1 if socket.master else _PREFERENCE[str(socket.level)]

    ordered = sorted(discovery.sockets, key=rank)
    return tuple(dict.fromkeys(s.address for s in ordered))


@dataclass(frozen=True)
class HAProxyConfigSource:
    #: Per certificate key (its absolute path): who serves it.
    routes: Mapping[str, Route] = field(default_factory=dict)
    #: Every sink's socket: each instance's best, and the -s ones.
    sockets: tuple[str, ...] = ()
    #: One line each, ``file:line: ...``: lines skipped; never a failure.
    warnings: tuple[str, ...] = ()
    #: What would stop HAProxy from starting: (``file:line``, why).
    problems: tuple[tuple[str, str], ...] = ()
    #: Certificate keys of instances with no usable socket -> that instance's configuration.
    socketless: Mapping[str, str] = field(default_factory=dict)
    #: Files and directories an instance loads that this user may not look at: routed (a
    #: record under one is reported with its instance), never scanned.
    denied: frozenset[str] = frozenset()

    @classmethod
    def read(
        cls,
        configs: Sequence[Path],
        override: Sequence[str] = (),
        *,
        cache: Path | None = None,
    ) -> HAProxyConfigSource:
        """Read every configuration (HAProxyConfigError when one cannot be read: exit 2).

        With ``cache`` (``<state>.discovery``), what was read last time is reused while
        every file and directory it came from is unchanged (their stat keys), and so are
        the variables they name, the working directory and the -s sockets."""
        paths = tuple(dict.fromkeys(os.path.abspath(c) for c in configs))
        question = (paths, tuple(override), os.getcwd(), str(DEFAULTS_FILE))
        if cache is not None and (cached := _load(cache, question)) is not None:
            return cached
        from ocsptool.haproxy_config import read_haproxy_config
        from ocsptool.haproxy_config.versions import honour

        discoveries = [
            read_haproxy_config(Path(c), env=os.environ, defaults_file=DEFAULTS_FILE) for c in paths
        ]
        replaced = bool(override) and len(discoveries) == 1
        discoveries = [
            honour(d, tuple(override) if replaced else instance_sockets(d)) for d in discoveries
        ]
        found = cls._of(discoveries, tuple(override))
        if cache is not None and not found.problems:
            _save(cache, question, discoveries, found)
        return found

    @classmethod
    def _of(
        cls, discoveries: Sequence[Discovery], override: tuple[str, ...]
    ) -> HAProxyConfigSource:
        routes: dict[str, Route] = {}
        warnings: list[str] = []
        problems: list[tuple[str, str]] = []
        socketless: dict[str, str] = {}
        denied: set[str] = set()
        replaced = bool(override) and len(discoveries) == 1
        sockets: list[str] = list(override)  # every -s socket gets every certificate
        for discovery in discoveries:
            own = override if replaced else instance_sockets(discovery)
            warnings += discovery.warnings
            problems += [split(problem) for problem in discovery.problems]
            first = (own[0], *override) if own and not replaced else override
            sinks = tuple(dict.fromkeys(first))
            sockets += own[:1]
            for name in discovery.denied:  # this user may not look; the instance loads it
                path = absolute(name)
                problems.append((path, READ_DENIED))
                routes.setdefault(path, Route(((own, name, False),), None, sinks))
                denied.add(path)
            seen: set[str] = set()
            chains = discovery.issuers_dir
            for cert in discovery.certs:
                if cert.staple_path is None:  # HAProxy reads no staple: the reader says why
                    continue
                key = absolute(cert.cert_file)
                if key in seen:  # loaded twice by one instance: pushed once, the first name
                    continue
                seen.add(key)
                if not own:
                    socketless.setdefault(key, discovery.instance)
                served = (own, key if cert.name == key else cert.name, cert.ocsp_update)
                old = routes.get(key)
                if old is None:
                    routes[key] = _route(key, cert, served, sinks, chains)
                else:
                    routes[key] = old._replace(
                        served=(*old.served, served),
                        sinks=tuple(dict.fromkeys((*old.sinks, *sinks))),
                    )
        return cls(
            routes,
            tuple(dict.fromkeys(sockets)),
            tuple(dict.fromkeys(warnings)),
            tuple(problems),
            socketless,
            frozenset(denied),
        )

    def survey(self) -> Survey:
        from ocsptool.sources.routes import survey_of

        return survey_of(
            self.scan(), self.routes, self.sockets, self.warnings, socketless=self.socketless
        )

    def scan(self) -> ScanResult:
        from ocsptool.sources.routes import scan_routes

        return scan_routes(self.routes.items(), self.problems, skip=self.denied)

    def target(self, found: Found, route: Route) -> Target:
        return file_target(found, route)


def _route(
    key: str, cert: LoadedCert, served: Served, sinks: tuple[str, ...], chains: str | None
) -> Route:
    """A certificate's route; paths that are the default (``<cert>.ocsp``) kept as None."""
    staple = absolute(cert.staple_path) if cert.staple_path else key + ".ocsp"
    issuer = absolute(cert.issuer_path) if cert.issuer_path else None
    return Route(
        (served,),
        None if staple == key + ".ocsp" else staple,
        sinks,
        cert.origin,
        absolute(cert.key_file) if cert.key_file else None,
        None if issuer in (None, key + ".issuer") else issuer,
        absolute(chains) if chains else None,
    )


def _variables(paths: Sequence[str]) -> list[str]:
    """The environment variables the files name (``${VAR}``): a reading depends on them."""
    import re

    from ocsptool.files import read_regular

    names: set[str] = set()
    for path in paths:
        try:
            text = read_regular(path).decode("utf-8", errors="replace")
        except OSError:
            continue
        names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    return sorted(names)


def _values(names: Sequence[str]) -> list[str | None]:
    return [os.environ.get(name) for name in names]


#: What a cached reading answers: the configurations, the -s sockets, the working
#: directory and the defaults file.
Question = tuple[tuple[str, ...], tuple[str, ...], str, str]

#: Bumped whenever the cache's layout or meaning changes (4: compact JSON, read only when
#: ours; Route.issuers_dir, certificates without a staple file left out, crt-list and
#: ssl-f-use files relative to default-path. 5: columns, each distinct route shape once).
_CACHE_VERSION = 5


def _inputs(discoveries: Sequence[Discovery]) -> list[str]:
    """Every file and directory a reading depended on: the configurations (and their
    directory), the crt-lists, the directory of every certificate (a new bundle part or
    file in a ``crt DIR`` changes it), the defaults file."""
    paths = [str(DEFAULTS_FILE)]
    for discovery in discoveries:
        paths += [os.fspath(discovery.config), *discovery.inputs]
        paths += {os.path.dirname(c.cert_file) for c in discovery.certs}
    return list(dict.fromkeys(paths))


def _stat_keys(paths: Sequence[str]) -> list[list[int] | None]:
    keys: list[list[int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            keys.append(None)
            continue
        keys.append([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return keys


def _save(
    cache: Path, question: Question, discoveries: Sequence[Discovery], found: HAProxyConfigSource
) -> None:
    """Keep the reading as compact JSON columns: the keys, each route's shape (its sinks,
    the sockets and ``ocsp-update`` of each instance that serves it, its
    ``issuers-chain-path``, the configuration of its instance without a socket: a table,
    each distinct shape once, most certificates sharing one) and its origin; then, only
    for the routes that have them, the names the instances load it under when not its
    key, and its staple, key and issuer files."""
    from ocsptool.sources import cache as kept

    inputs = _inputs(discoveries)
    names = _variables(inputs)
    socketless = found.socketless
    tables: dict[tuple[str, ...], int] = {}

    def ref(value: tuple[str, ...]) -> int:
        return tables.setdefault(tuple(value), len(tables))

    shapes: dict[tuple[int, tuple[tuple[int, bool], ...], str | None, str | None], int] = {}
    shape_of: list[int] = []
    named: list[list[object]] = []
    paths: list[list[object]] = []
    for n, (key, route) in enumerate(found.routes.items()):
        served = tuple((ref(own), update) for own, _name, update in route.served)
        shape = (ref(route.sinks), served, route.issuers_dir, socketless.get(key))
        shape_of.append(shapes.setdefault(shape, len(shapes)))
        loaded_as = [None if name == key else name for _own, name, _update in route.served]
        if any(name is not None for name in loaded_as):
            named.append([n, loaded_as])
        files = [route.staple_path, route.key_path, route.issuer_path]
        if any(path is not None for path in files):
            paths.append([n, *files])
    routes = found.routes
    answer = [
        list(tables),
        [[sinks, [list(s) for s in served], *rest] for sinks, served, *rest in shapes],
        list(routes),
        shape_of,
        [route.origin for route in routes.values()],
        named,
        paths,
        found.sockets,
        found.warnings,
        {key: config for key, config in socketless.items() if key not in routes},
    ]
    depends = [inputs, _stat_keys(inputs), names, _values(names)]
    kept.save(cache, [_CACHE_VERSION, question, depends, answer])


def _load(cache: Path, question: Question) -> HAProxyConfigSource | None:
    """The cached reading when it answers ``question`` and no input changed, else None.

    A hint, never authority (``ocsptool.sources.cache``: ours only, bounded, JSON); any row
    that is not the shape ``_save`` writes makes the configurations be read again."""
    from ocsptool.sources import cache as kept

    value = kept.load(cache)
    if value is None:
        return None
    try:
        version, asked, depends, answer = value
        if version != _CACHE_VERSION or not kept.same(question, asked):
            return None
        inputs, keys, names, values = depends
        if _stat_keys(inputs) != keys or _values(names) != values:
            return None
        table_list, shape_list, keys, shape_of, origins, named, paths, *rest = answer
        sockets, warnings, unrouted = rest
        routes, socketless = _routes(table_list, shape_list, keys, shape_of, origins)
        socketless.update(unrouted)
        for n, loaded_as in named:
            key = keys[n]
            route = routes[key]
            served = zip(route.served, loaded_as, strict=True)
            routes[key] = route._replace(
                served=tuple(
                    (own, key if name is None else name, up) for (own, _, up), name in served
                )
            )
        for n, staple, key_path, issuer in paths:
            key = keys[n]
            routes[key] = routes[key]._replace(
                staple_path=staple, key_path=key_path, issuer_path=issuer
            )
        return HAProxyConfigSource(routes, tuple(sockets), tuple(warnings), (), socketless)
    except (ValueError, TypeError, IndexError, KeyError):
        return None


def _routes(
    table_list: list[list[str]],
    shape_list: list[list[Any]],
    keys: list[str],
    shape_of: list[int],
    origins: list[str | None],
) -> tuple[dict[str, Route], dict[str, str]]:
    """Each key's route from its shape and origin (served under its key; no files named),
    and the keys of instances without a socket: the hot loop of a cached reading."""
    tables = [tuple(t) for t in table_list]
    shapes = []
    instances: list[str | None] = []
    for sinks, served, chains, instance in shape_list:
        by = tuple((tables[own], bool(update)) for own, update in served)
        shapes.append((tables[sinks], by, chains, by[0] if len(by) == 1 else None))
        instances.append(instance)
    new = tuple.__new__  # Route(*r) without its Python-level __new__: 100,000 calls
    routes: dict[str, Route] = {}
    for key, shape, origin in zip(keys, shape_of, origins, strict=True):
        sinks, by, chains, one = shapes[shape]
        served = ((one[0], key, one[1]),) if one is not None else tuple((o, key, u) for o, u in by)
        routes[key] = new(Route, (served, None, sinks, origin, None, None, chains))
    socketless: dict[str, str] = {}
    if any(instance is not None for instance in instances):
        for key, shape in zip(keys, shape_of, strict=True):
            if (instance := instances[shape]) is not None:
                socketless[key] = instance
    return routes, socketless
