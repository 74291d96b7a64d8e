"""A fleet's shared staple store (``--store``): one CA fetch per certificate, taken by every
node. (Not the state file: that is ``ocsptool.state``.)

``open_store``/``check_store_url`` pick the engine from the URL's scheme (here, the
registry); ``ocsptool.fleet.store`` is the seam (the ``SharedStore`` Protocol, the entry
encoding); ``ocsptool.fleet.redis`` the Redis engine; ``ocsptool.fleet.run`` has
``StoreRun.obtain``, the flow for one due certificate:

1. Look in the store (never more than ``MAX_ENTRY_BYTES`` of an entry is read). A stored
   staple is verified with the node's own ``verify`` (its own certificate and issuer),
   exactly like a responder's answer; garbage, another certificate's staple, a forged
   signature or one older than the staple held is refused with one line, and the node
   goes on as if the store were empty.
2. Nothing fresher: take the certificate's lease (set-if-absent with expiry). Got it:
   fetch from the CA, publish (expiring at nextUpdate), release. A holder that dies
   leaves a lease that expires on its own.
3. Another node holds it: poll the store until its staple appears, or the lease frees up
   (we take it and fetch), or the fleet makes no progress for ``patience`` seconds, or
   after ``MAX_LOOKS`` looks. The patience is per run, not per certificate: N
   certificates waiting never wait N times.
4. The store down or slow at any step: fetch directly. The first failure marks the store
   down for the rest of the run (one line names it and the cause), so a dead store costs
   one timeout per run, and staples never go stale because of it.

Nothing read from the store is trusted: at worst a writer to it makes nodes fetch.

Benchmark design (``benchmarks/fleet.py``): 3 nodes x 1,000 certificates, one redis-server,
one pre-signed responder on loopback that counts requests. Each node is a thread pool
(``jobs`` workers) running ``StoreRun.obtain`` over its own copy of the 1,000 targets,
with ``verify`` = ``ocsp.verify`` against its own bundles and ``fetch`` = a real HTTP
exchange. All three start together (the worst case: every lease is contended).
Expected: responder requests = 1,000 with the store (each certificate exactly once,
whichever node won its lease), against 3,000 without it (each node fetches all); the
wall time per node is printed beside the no-store run's. The store adds two or three
round trips per certificate (get, lease, publish, release: ~0.1 ms each on loopback),
while the waiting nodes trade a CA round trip for polling. Measured (2 cores, 8 jobs per
node, 20 ms per CA answer): 1,000 requests with the store against 3,000 without; wall
time per node 4.3 s with the store against 6.0 s without.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

from ocsptool.fleet.store import SharedStore, StoreConfigError, redact

# -- opening a store --------------------------------------------------------------------------


def _open_redis(url: str, timeout: float) -> SharedStore:
    from ocsptool.fleet.redis import RedisStore

    return RedisStore.from_url(url, timeout=timeout)


def _check_redis(url: str) -> None:
    from ocsptool.fleet.redis import check_url

    check_url(url)


class Engine(NamedTuple):
    open: Callable[[str, float], SharedStore]
    #: Raises ``StoreConfigError`` for what ``open`` would refuse, without importing the
    #: engine's client (a run checks its ``--store`` at start, also when nothing is due).
    check: Callable[[str], None]


_REDIS = Engine(_open_redis, _check_redis)

#: URL scheme -> engine. Another engine is one module and one line here.
ENGINES: dict[str, Engine] = {"redis": _REDIS, "rediss": _REDIS, "unix": _REDIS}


def _engine(url: str) -> Engine:
    """The engine for ``url``'s scheme; ``StoreConfigError`` for a bad URL or scheme."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as e:
        raise StoreConfigError(f"store {url!r}: bad URL ({e})") from None
    engine = ENGINES.get(scheme)
    if engine is None:
        raise StoreConfigError(
            f"store {redact(url)!r}: unknown scheme {scheme or '(none)'!r}; use "
            "redis://HOST:PORT/DB, rediss://HOST:PORT/DB or unix:///path/redis.sock?db=N"
        )
    return engine


def open_store(url: str, *, timeout: float) -> SharedStore:
    """The store at ``url``; raises ``StoreConfigError`` for a bad URL or a missing extra.

    Connects lazily: a store that is down fails its first operation (``StoreError``).
    """
    return _engine(url).open(url, timeout)


def check_store_url(url: str) -> None:
    """Raise ``StoreConfigError`` for what ``open_store`` would refuse (a bad URL, a missing
    extra), without importing the engine's client."""
    _engine(url).check(url)


__all__ = ["ENGINES", "Engine", "check_store_url", "open_store", "redact"]
