"""One certificate's route: who serves it (each instance, under which name), the staple
file its servers read, where its issuer and key are, and where it came from (``file:line``).

A plain ``NamedTuple`` each source builds (a configuration knows it; a PATH's certificate
has the default), the inventory keeps per key, and the caches keep as JSON rows: it sits low
in the house, below the sources, the sinks and the inventory, and imports none of them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ocsptool.target import Consumer


#: One instance that serves a certificate: (its sockets, best first; the name it loaded
#: the certificate under; it staples it itself with ``ocsp-update on``). Plain tuples: cheap
#: to keep, cache and load at 100,000.
Served = tuple[tuple[str, ...], str, bool]


class Route(NamedTuple):
    """Who serves one certificate and where its staple goes."""

    served: tuple[Served, ...]
    #: The staple file the servers read (None: ``<cert>.ocsp``).
    staple_path: str | None
    #: The consumers (runtime addresses) that get its staple.
    sinks: tuple[str, ...]
    #: Where it came from: ``file:line`` of the line that loads it (None: a PATH).
    origin: str | None = None
    #: The key file a configuration names (None: in the bundle, or ``<cert>.key``).
    key_path: str | None = None
    #: The issuer file a configuration names (None: the chain, or ``<cert>.issuer``).
    issuer_path: str | None = None
    #: HAProxy's ``issuers-chain-path``: a directory of chains, each file's first
    #: certificate an issuer HAProxy may take (None: none).
    issuers_dir: str | None = None

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        from ocsptool.target import Consumer

        return tuple(Consumer(*s) for s in self.served)


def staple_file(key: str, route: Route) -> str:
    """The staple file ``route``'s servers read for the certificate ``key``."""
    return route.staple_path or key + ".ocsp"


def joined(key: str, old: Route, new: Route) -> Route | None:
    """One certificate's route when two places load it: ``old``'s, with ``new``'s servers
    and sinks added, when both read the same staple file; None when they read different
    files (ocsptool keeps one staple file per certificate: the other would go stale)."""
    if staple_file(key, old) != staple_file(key, new):
        return None
    return old._replace(
        served=(*old.served, *new.served), sinks=tuple(dict.fromkeys((*old.sinks, *new.sinks)))
    )


def issuer_sources(route: Route) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The issuer files ``route`` names and the chain files of its ``issuers_dir``."""
    files = (Path(route.issuer_path),) if route.issuer_path else ()
    return files, chain_files(route.issuers_dir) if route.issuers_dir else ()


#: At most this many files of an ``issuers-chain-path`` directory are looked at.
MAX_CHAIN_FILES = 10_000


@lru_cache(maxsize=16)
def chain_files(directory: str) -> tuple[Path, ...]:
    """The regular files of ``directory`` in HAProxy's order (alphabetical), once per run."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for _, e in zip(range(MAX_CHAIN_FILES), entries, strict=False))
    except OSError:
        return ()
    return tuple(Path(directory, n) for n in names if os.path.isfile(os.path.join(directory, n)))
