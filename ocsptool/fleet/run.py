"""The flow of one run with a fleet's shared store: ``StoreRun.obtain`` for each due
certificate (look, lease, fetch and publish, or wait for another node's staple; fall back
to the CA when the store fails), the one shared, locked thing the fetch threads use.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from ocsptool.errors import OcspToolError
from ocsptool.fleet.store import (
    LEASE_TTL,
    MAX_LOOKS,
    PATIENCE,
    POLL,
    Malformed,
    SharedStore,
    StoredStaple,
    StoreError,
    default_node,
)
from ocsptool.times import iso

if TYPE_CHECKING:
    from ocsptool.ocsp import Staple

_T = TypeVar("_T")


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
