"""The nginx source: the certificates whose ``ssl_stapling_file`` ocsptool keeps.

``NginxSource.read(configs)`` reads each nginx configuration as nginx does
(``ocsptool.nginx.read_nginx_config``: includes, ``http`` -> ``server`` inheritance,
several certificates per block) and routes each certificate of a block with
``ssl_stapling on`` and an ``ssl_stapling_file`` to that file: the file sink writes the
staple there (DER, atomically, verified like every staple) and the nginx consumer
(``nginx:<configuration>``, ``ocsptool.sinks.nginx``) reloads nginx once when it does
not serve it yet.

The traps are the engine's (``ocsptool.nginx.stapling``): a block whose certificates
share one staple file is a problem and none of its certificates is routed, so no file
is written that would staple one certificate's response for another; a file without
``ssl_stapling on`` is a warning; a certificate loaded per handshake (variables) is a
warning. A block with ``ssl_stapling on`` and no file is nginx's own business: its
certificates are listed in ``itself`` (``status`` shows them), never fetched.

One certificate stapled from two different files (two blocks) is a problem: ocsptool
keeps one staple file per certificate, and the other would go stale.

``scan()`` costs what the HAProxy source's does: one ``scandir`` per directory of
certificates and staple files, one ``stat`` per certificate. The reading is kept in
``<state>.discovery-nginx`` while every file read (and every ``include`` glob's
directory) is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.route import Route, Served, joined
from ocsptool.scan import Found, ScanResult
from ocsptool.sources.routes import absolute, split
from ocsptool.sources.types import Survey, file_target

if TYPE_CHECKING:
    from ocsptool.nginx import NginxConfig
    from ocsptool.target import Target

#: Read when no PATH and no configuration is given (Debian, Ubuntu), beside HAProxy's.
DEFAULT_CONFIG = Path("/etc/nginx/nginx.conf")


@dataclass(frozen=True)
class NginxSource:
    #: Per certificate key (its absolute path): its staple file and the nginx serving it.
    routes: Mapping[str, Route] = field(default_factory=dict)
    #: Each configuration's consumer address (``nginx:<configuration>``).
    sockets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: (``file:line``, why): what nginx refuses, or what would staple a wrong response.
    problems: tuple[tuple[str, str], ...] = ()
    #: Certificates nginx staples itself (no ``ssl_stapling_file``) -> consumer address.
    itself: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, configs: Sequence[Path], *, cache: Path | None = None) -> NginxSource:
        """Read every configuration (``NginxConfigError`` when one cannot be read at all:
        exit 2). With ``cache``, the last reading is reused while every file it read is
        unchanged (their stat keys)."""
        paths = tuple(dict.fromkeys(os.path.abspath(c) for c in configs))
        if cache is not None and (cached := _load(cache, paths)) is not None:
            return cached
        from ocsptool.nginx import read_nginx_config

        read = [read_nginx_config(Path(path)) for path in paths]
        found = cls.of(read)
        if cache is not None and not any(conf.untrusted for conf in read):
            _save(cache, paths, read, found)  # a refusal is said again until it is fixed
        return found

    @classmethod
    def of(cls, configs: Sequence[NginxConfig]) -> NginxSource:
        """The routes, consumers and findings of configurations already read."""
        from ocsptool.sinks.nginx import address_of

        routes: dict[str, Route] = {}
        itself: dict[str, str] = {}
        warnings: list[str] = []
        problems: list[tuple[str, str]] = []
        for conf in configs:
            address = address_of(conf.path)
            sinks = (address,)  # one object for all its routes (the cache keeps it once)
            warnings += conf.warnings
            problems += [split(problem) for problem in conf.problems]
            for staple in conf.staple_files:
                cert = staple.certificate
                key, path = absolute(cert.path), absolute(staple.path)
                served = (sinks, cert.path, False)
                old = routes.get(key)
                if old is None:
                    key_path = absolute(cert.key) if cert.key and cert.key[:1] == "/" else None
                    trusted = staple.trusted_certificate  # an issuer source, as nginx takes it
                    issuer = absolute(trusted) if trusted else None
                    routes[key] = Route((served,), path, sinks, staple.origin, key_path, issuer)
                elif both := joined(key, old, Route((served,), path, sinks)):
                    routes[key] = both  # another instance reads the same file
                else:
                    problems.append(_two_files(staple.origin, key, path, old))
            for block in conf.servers:
                if block.stapling and block.stapling_file is None and not block.variables:
                    for cert in block.certificates:
                        if not cert.inline:
                            itself.setdefault(absolute(cert.path), address)
        return cls(
            routes,
            tuple(dict.fromkeys(address_of(c.path) for c in configs if not _refused(c))),
            tuple(dict.fromkeys(warnings)),
            tuple(problems),
            {k: a for k, a in itself.items() if k not in routes},
        )

    def survey(self) -> Survey:
        from ocsptool.sources.routes import survey_of

        return survey_of(self.scan(), self.routes, self.sockets, self.warnings, itself=self.itself)

    def scan(self) -> ScanResult:
        """Each certificate's stat key, its staple file's inode and its issuer file's."""
        from ocsptool.sources.routes import scan_routes

        return scan_routes(
            self.routes.items(), self.problems, missing="nginx cannot load this ssl_certificate"
        )

    def target(self, found: Found, route: Route) -> Target:
        return file_target(found, route)


def _refused(conf: NginxConfig) -> bool:
    """Whether nothing of ``conf`` is used: the configuration itself may not steer the run."""
    return str(conf.path) in conf.untrusted


def _two_files(origin: str, key: str, path: str, old: Route) -> tuple[str, str]:
    return (
        origin,
        f"ssl_stapling_file {path} staples {key}, which {old.staple_path} ({old.origin}) "
        "staples too; ocsptool keeps one staple file per certificate, so this one would "
        f"go stale: point this block's ssl_stapling_file at {old.staple_path}",
    )


# -- the discovery cache -------------------------------------------------------------------

#: Bumped whenever the cache's layout or meaning changes.
_CACHE_VERSION = 4
#: A file that cannot be stat'ed, in the packed stat keys.
_MISSING = (-1, -1, -1, -1, -1)
_BITS63 = (1 << 63) - 1


def _stat_keys(paths: Sequence[str]) -> bytes:
    """The stat keys (device, inode, size, mtime, ctime) of ``paths``, packed: one
    ``bytes`` compares at once (10,000 configuration files are a few milliseconds)."""
    from array import array

    keys = array("q")
    extend, stat = keys.extend, os.stat
    for path in paths:
        try:
            st = stat(path)
        except OSError:
            extend(_MISSING)
            continue
        extend(
            (st.st_dev & _BITS63, st.st_ino & _BITS63, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        )
    return keys.tobytes()


def _save(
    cache: Path, paths: tuple[str, ...], configs: Sequence[NginxConfig], found: NginxSource
) -> None:
    """Keep the reading: every file it read (or tried), every include glob's directory.
    The routes are kept as columns, a served entry only when it is not the usual one
    (the one configuration that names the certificate by its own path): 10,000 routes
    load in a few milliseconds. JSON (``ocsptool.sources.cache``); the packed stat keys
    as hex."""
    from ocsptool.sources import cache as kept

    inputs = list(dict.fromkeys(p for conf in configs for p in (str(conf.path), *conf.inputs)))
    routes = found.routes
    keys = list(routes)
    columns = [
        keys,
        [routes[k].staple_path for k in keys],
        [routes[k].origin for k in keys],
        [routes[k].key_path for k in keys],
        [routes[k].issuer_path for k in keys],
        [routes[k].sinks for k in keys],
        {k: routes[k].served for k in keys if routes[k].served != _usual(k, routes[k].sinks)},
    ]
    answer = [columns, found.sockets, found.warnings, found.problems, dict(found.itself)]
    depends = ["\0".join(inputs), _stat_keys(inputs).hex()]
    kept.save(cache, [_CACHE_VERSION, paths, depends, answer])


def _usual(key: str, sinks: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], str, bool], ...]:
    return ((sinks, key, False),)


def _load(cache: Path, paths: tuple[str, ...]) -> NginxSource | None:
    """The cached reading of ``paths`` when no file it read has changed, else None (a
    hint, never authority: ``ocsptool.sources.cache``)."""
    from ocsptool.sources import cache as kept

    value = kept.load(cache)
    if value is None:
        return None
    try:
        version, asked, depends, answer = value
        if version != _CACHE_VERSION or not kept.same(paths, asked):
            return None
        inputs, stat_keys = depends
        if _stat_keys(inputs.split("\0")).hex() != stat_keys:
            return None
        columns, sockets, warnings, problems, itself = answer
        keys, staples, origins, key_paths, issuers, sinks, unusual = columns
        new = tuple.__new__  # Route(...) without its Python-level __new__: 10,000 calls
        get = unusual.get

        def served(key: str, sink: tuple[str, ...]) -> tuple[Served, ...]:
            found = get(key)
            if found is None:
                return ((sink, key, False),)
            return tuple((tuple(s), str(n), bool(u)) for s, n, u in found)

        routes = {
            key: new(Route, (served(key, sink), staple, sink, origin, kpath, issuer, None))
            for key, staple, origin, kpath, issuer, sink in zip(
                keys, staples, origins, key_paths, issuers, map(tuple, sinks), strict=True
            )
        }
        return NginxSource(
            routes,
            tuple(sockets),
            tuple(warnings),
            tuple(tuple(p) for p in problems),
            dict(itself),
        )
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None
