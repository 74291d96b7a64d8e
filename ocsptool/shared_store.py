"""The shared staple store of a fleet: one CA fetch per certificate, taken by every node.

Engine-independent: the ``SharedStore`` Protocol (Redis is ``redis_store``), the entry
encoding, and ``StoreRun.obtain``, the flow for one due certificate:

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

import datetime as dt
import enum
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from ocsptool.errors import OcspToolError, UsageError
from ocsptool.limits import MAX_RESPONSE_BYTES
from ocsptool.times import iso

if TYPE_CHECKING:
    from ocsptool.ocsp import Staple

_T = TypeVar("_T")

STAPLE_PREFIX = "ocsptool:staple:"
LEASE_PREFIX = "ocsptool:lease:"

#: Entry encoding: magic, version, then thisUpdate, nextUpdate, fetchedAt (epoch seconds,
#: signed 64-bit), the node name's length (16-bit), the node name (UTF-8), the DER.
MAGIC = b"OTS"
VERSION = 1
_HEADER = struct.Struct("!3sBqqqH")
MAX_NODE_BYTES = 255
#: The largest entry ``encode`` writes: an engine never reads more of a value than this
#: (plus one byte, to tell a larger one), whatever a writer to the store put there.
MAX_ENTRY_BYTES = _HEADER.size + MAX_NODE_BYTES + MAX_RESPONSE_BYTES

#: A lease outlives one CA exchange (the responder's total timeout) by a margin.
LEASE_TTL = 45.0
#: How long a run waits for other nodes' staples without seeing any of them appear.
PATIENCE = 5.0
#: How often a waiting certificate looks again.
POLL = 0.05
#: At most this many looks per wait, whatever the clock says: with each look bounded by
#: ``MAX_ENTRY_BYTES``, one wait reads at most ~13 MB however a store misbehaves.
MAX_LOOKS = 200

EXTRA_MISSING = "--store needs the redis extra: pip install 'ocsptool[redis]'"


class StoreError(OcspToolError):
    """The store cannot be used right now (down, slow, refusing): nodes fetch directly."""


class StoreConfigError(StoreError, UsageError):
    """``--store`` cannot work at all: a bad URL, or the engine's extra is not installed."""


def default_node() -> str:
    return socket.gethostname()


def staple_key(cert_id: str) -> str:
    return STAPLE_PREFIX + cert_id.lower()


def lease_key(cert_id: str) -> str:
    return LEASE_PREFIX + cert_id.lower()


@dataclass(frozen=True)
class StoredStaple:
    """A staple as published by ``fetched_by``: its claims are checked, never trusted."""

    der: bytes
    this_update: dt.datetime
    next_update: dt.datetime
    fetched_by: str
    fetched_at: dt.datetime


@dataclass(frozen=True)
class Malformed:
    """A store entry that is not one we could have written."""

    reason: str


class SharedStore(Protocol):
    """One engine of the shared store. Every method raises ``StoreError`` (one line)."""

    @property
    def name(self) -> str:
        """The store as messages name it (its URL without credentials)."""
        ...

    def get(self, cert_id: str) -> StoredStaple | Malformed | None: ...

    def try_lease(self, cert_id: str, node: str, ttl_s: float) -> bool:
        """Atomically take the certificate's lease unless someone holds it."""
        ...

    def release(self, cert_id: str, node: str) -> None:
        """Drop the lease, only if ``node`` still holds it."""
        ...

    def publish(self, cert_id: str, staple: StoredStaple) -> None:
        """Store the staple, expiring at its nextUpdate."""
        ...

    def close(self) -> None:
        """Drop the connections (at the end of a run); never raises."""
        ...


# -- encoding ---------------------------------------------------------------------------------


def encode(staple: StoredStaple) -> bytes:
    node = staple.fetched_by.encode("utf-8", "replace")[:MAX_NODE_BYTES]
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        int(staple.this_update.timestamp()),
        int(staple.next_update.timestamp()),
        int(staple.fetched_at.timestamp()),
        len(node),
    )
    return header + node + staple.der


def decode(value: bytes) -> StoredStaple | Malformed:
    """The entry ``value``, or why it is not one (never an exception)."""
    if len(value) < _HEADER.size or not value.startswith(MAGIC):
        return Malformed(f"not an ocsptool entry ({_describe(value)})")
    _magic, version, this, next_, at, node_len = _HEADER.unpack_from(value)
    if version != VERSION:
        return Malformed(f"entry version {version}, expected {VERSION} (a newer ocsptool?)")
    body = value[_HEADER.size :]
    if node_len > len(body):
        return Malformed("truncated entry")
    der = body[node_len:]
    if not der:
        return Malformed("entry without a staple")
    if len(der) > MAX_RESPONSE_BYTES:
        return Malformed(f"staple of {len(der)} bytes is over the {MAX_RESPONSE_BYTES}-byte cap")
    try:
        times = [dt.datetime.fromtimestamp(t, dt.UTC) for t in (this, next_, at)]
        node = body[:node_len].decode("utf-8")
    except (ValueError, OverflowError, OSError):
        return Malformed("entry with unreadable times or node name")
    if not node.isprintable():
        return Malformed("entry with an unprintable node name")
    return StoredStaple(der, times[0], times[1], node, times[2])


def _describe(value: bytes) -> str:
    return "empty" if not value else f"{len(value)} bytes starting {value[:8].hex()}"


# -- opening a store --------------------------------------------------------------------------


def _open_redis(url: str, timeout: float) -> SharedStore:
    from ocsptool.redis_store import RedisStore

    return RedisStore.from_url(url, timeout=timeout)


def _check_redis(url: str) -> None:
    from ocsptool.redis_store import check_url

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


def redact(url: str) -> str:
    """``url`` without a password, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


# -- the flow ---------------------------------------------------------------------------------


class Origin(enum.StrEnum):
    RESPONDER = "responder"  # this node fetched it from the CA
    STORE = "store"  # another node fetched it; taken from the store and verified here


@dataclass(frozen=True)
class Obtained:
    """What ``obtain`` got for one certificate: a staple and where it came from, or an error.

    ``problems`` are one-line notes for this certificate (a refused store entry); the
    store's own failure is reported once per run by ``StoreRun.problem`` instead.
    """

    staple: Staple | None
    origin: Origin
    fetched_by: str  # the node that fetched it from the CA
    fetched_at: dt.datetime
    problems: tuple[str, ...] = ()
    error: OcspToolError | None = None  # the fetch failed and nothing better was found


@dataclass
class StoreRun:
    """The store for one run of one node: the shared wait and the once-per-run report.

    Threads share one ``StoreRun``; it is the only mutable thing they share, under a lock.
    """

    store: SharedStore
    node: str = field(default_factory=default_node)
    lease_ttl: float = LEASE_TTL
    patience: float = PATIENCE
    poll: float = POLL
    max_looks: int = MAX_LOOKS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _failure: str | None = None
    _waiting: int = 0  # certificates waiting for another node's staple right now
    _mark: float | None = None
    _idle: float = 0.0  # wall seconds with someone waiting, since the last progress

    @property
    def problem(self) -> str | None:
        """The one line naming the store and why it was given up this run, if it was."""
        return self._failure

    @property
    def down(self) -> bool:
        return self._failure is not None

    def obtain(
        self,
        cert_id: str,
        held_this_update: dt.datetime | None,
        verify: Callable[[bytes], Staple],
        fetch: Callable[[], Staple],
        now: dt.datetime,
    ) -> Obtained:
        """A verified staple for the due certificate ``cert_id``: from the store if it has
        a fresher one, else fetched by whichever node gets the lease (see the module doc).

        ``verify`` checks DER against this node's certificate and issuer (raising
        ``OcspToolError``); ``fetch`` asks the CA and returns a verified staple.
        """
        job = _Job(cert_id, held_this_update, verify, fetch, now)
        found = self._look(job)
        if found is not None and _fresh(found, job):
            return found
        fallback = found  # fresher than held, but itself due: better than nothing
        leased = self._call(lambda: self.store.try_lease(cert_id, self.node, self.lease_ttl))
        if leased is False:
            leased, found = self._wait(job)
            if found is not None:
                return found
        if leased:
            return self._fetch_leased(job)
        return self._fetch(job, fallback)

    # -- steps --------------------------------------------------------------------------------

    def _look(self, job: _Job, *, quiet: bool = False) -> Obtained | None:
        """The store's staple if it verifies and is newer than the one held, else None.

        ``quiet`` looks again (while waiting): a refusal was already noted by the first.
        """
        entry = self._call(lambda: self.store.get(job.cert_id))
        if entry is None:
            return None
        if isinstance(entry, Malformed):
            if not quiet:
                job.problems.append(f"store entry refused: {entry.reason}")
            return None
        try:
            staple = job.verify(entry.der)
        except OcspToolError as e:
            if not quiet:
                job.problems.append(f"stored staple (from {entry.fetched_by}) refused: {e}")
            return None
        held = job.held_this_update
        if held is not None and staple.this_update <= held:
            if staple.this_update < held and not quiet:
                job.problems.append(
                    f"stored staple (from {entry.fetched_by}) refused: older than the one "
                    f"held (thisUpdate {iso(staple.this_update)} < {iso(held)})"
                )
            return None  # or the very staple we hold: nothing fresher
        return Obtained(
            staple, Origin.STORE, entry.fetched_by, entry.fetched_at, tuple(job.problems)
        )

    def _fetch_leased(self, job: _Job) -> Obtained:
        try:
            # Another node may have published between our look and our lease.
            found = self._look(job, quiet=True)
            if found is not None and _fresh(found, job):
                return found
            result = self._fetch(job, found)
            if result.error is None and result.origin is Origin.RESPONDER:
                assert result.staple is not None
                self._publish(job, result.staple)
            return result
        finally:
            self._call(lambda: self.store.release(job.cert_id, self.node))

    def _fetch(self, job: _Job, fallback: Obtained | None) -> Obtained:
        try:
            staple = job.fetch()
        except OcspToolError as e:
            if fallback is not None:
                note = f"fetch failed ({e}); took the store's staple"
                return replace(fallback, problems=(*job.problems, note))
            return Obtained(None, Origin.RESPONDER, self.node, job.now, tuple(job.problems), e)
        return Obtained(staple, Origin.RESPONDER, self.node, job.now, tuple(job.problems))

    def _publish(self, job: _Job, staple: Staple) -> None:
        entry = StoredStaple(staple.der, staple.this_update, staple.next_update, self.node, job.now)
        self._call(lambda: self.store.publish(job.cert_id, entry))

    # -- the shared wait and the once-per-run failure -------------------------------------------

    def _wait(self, job: _Job) -> tuple[bool, Obtained | None]:
        """Another node holds the lease: (True, None) once we took it over, (False, staple)
        when its staple appeared, (False, None) when patience ran out or the store failed."""
        self._tick(+1)
        try:
            for _ in range(self.max_looks):
                if not self._patient():
                    break
                self.sleep(self.poll)
                found = self._look(job, quiet=True)
                if found is not None and _fresh(found, job):
                    self._progress()
                    return False, found
                leased = self._call(
                    lambda: self.store.try_lease(job.cert_id, self.node, self.lease_ttl)
                )
                if leased is None:
                    return False, None
                if leased:  # the holder released without publishing, or its lease expired
                    return True, None
            return False, None
        finally:
            self._tick(-1)

    def _tick(self, waiters: int = 0) -> None:
        """Account the wall time during which at least one certificate was waiting."""
        with self._lock:
            now = self.clock()
            if self._waiting > 0 and self._mark is not None:
                self._idle += now - self._mark
            self._mark = now
            self._waiting += waiters

    def _patient(self) -> bool:
        """True while the run has waited less than ``patience`` since the last progress."""
        self._tick()
        with self._lock:
            return self._idle < self.patience

    def _progress(self) -> None:
        """Another node's staple appeared: the fleet is moving, so waiting is worth it."""
        self._tick()
        with self._lock:
            self._idle = 0.0

    def _call(self, operation: Callable[[], _T]) -> _T | None:
        """``operation()``, or None once the store has failed in this run (noted once)."""
        if self.down:
            return None
        try:
            return operation()
        except StoreError as e:
            with self._lock:
                if self._failure is None:
                    self._failure = f"{e}; fetched directly from the responders"
            return None


@dataclass(frozen=True)
class _Job:
    """One ``obtain`` call's inputs, and the notes it collects on the way."""

    cert_id: str
    held_this_update: dt.datetime | None
    verify: Callable[[bytes], Staple]
    fetch: Callable[[], Staple]
    now: dt.datetime
    problems: list[str] = field(default_factory=list)


def _fresh(found: Obtained, job: _Job) -> bool:
    """Not itself due yet (by the schedule's rule, keyed by CertID so nodes agree)."""
    from ocsptool.schedule import next_due

    staple = found.staple
    assert staple is not None
    return job.now < next_due(staple.this_update, staple.next_update, job.cert_id)
