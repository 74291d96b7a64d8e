"""Fetch + verify: one ``Retrieved`` value per due target, from a pool of threads.

A thread fetches, verifies and checks the answer against the staple held (passed in as
a value); it reads no shared state and writes nothing: writing is the file sink's job.
With a fleet's shared store (``StoreRun``, the one thing the threads share, under its
own lock) each target goes through ``StoreRun.obtain`` around ``retrieve_one``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocsptool.errors import OcspToolError, ResponseRejected
from ocsptool.fleet.run import Origin
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts
from ocsptool.state import StapleRecord
from ocsptool.target import Target
from ocsptool.times import from_epoch, iso

if TYPE_CHECKING:
    import requests

    from ocsptool.fleet.run import StoreRun
    from ocsptool.ocsp import Staple
    from ocsptool.pacing import HostLimiter

Progress = Callable[[int, int], None]
_DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Retrieved:
    """The answer for one target: a verified staple, or the error (one line)."""

    target: Target
    staple: Staple | None = None
    error: OcspToolError | None = None
    #: Where the staple came from: this node asked the CA, or took it from the store.
    origin: Origin = Origin.RESPONDER
    #: The node that fetched it from the CA, and when (with a shared store only).
    fetched_by: str | None = None
    fetched_at: dt.datetime | None = None
    #: One-line notes on the way (a store entry refused), not failures.
    notes: tuple[str, ...] = ()
    #: The OCSP URL that gave the staple (one of ``target.ocsp_urls``).
    responder: str | None = None

    def provenance(self) -> StapleRecord:
        """The staple record's fields saying where it came from."""
        record: StapleRecord = {"origin": str(self.origin)}
        if self.fetched_by is not None:
            record["fetched_by"] = self.fetched_by
        if self.fetched_at is not None:
            record["fetched_at"] = int(self.fetched_at.timestamp())
        return record


def retrieve(
    due: Sequence[Target],
    held: Mapping[str, StapleRecord | None],
    session: requests.Session,
    *,
    now: dt.datetime,
    timeouts: Timeouts = _DEFAULT_TIMEOUTS,
    max_bytes: int = MAX_RESPONSE_BYTES,
    jobs: int = 8,
    progress: Progress | None = None,
    on_result: Callable[[Retrieved], None] | None = None,
    store: StoreRun | None = None,
    remembered: Mapping[str, str | None] | None = None,
    limiter: HostLimiter | None = None,
) -> list[Retrieved]:
    """Fetch and verify a staple for each of ``due``; ``held`` is the staple each has now,
    ``remembered`` the OCSP URL that worked last time (asked first), ``limiter`` the
    per-host bound. ``on_result`` sees each result in the calling thread as it arrives.
    With ``store``, each is first looked for in the fleet's shared store
    (``retrieve_shared``)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    last = remembered or {}

    def one(target: Target) -> Retrieved:
        fetch = functools.partial(
            retrieve_one,
            target,
            held.get(target.key),
            session,
            now=now,
            timeouts=timeouts,
            max_bytes=max_bytes,
            remembered=last.get(target.key),
            limiter=limiter,
        )
        if store is None:
            return fetch()
        return retrieve_shared(target, held.get(target.key), store, fetch, now=now)

    if store is not None:
        due = spread(due)
    results: list[Retrieved] = []
    if progress is not None and due:
        progress(0, len(due))  # the bar starts here, with its total: only when fetching
    with ThreadPoolExecutor(
        max_workers=max(1, min(jobs, len(due))), thread_name_prefix="fetch"
    ) as pool:
        for future in as_completed([pool.submit(one, t) for t in due]):
            results.append(future.result())
            if on_result is not None:
                on_result(results[-1])
            if progress is not None:
                progress(len(results), len(due))
    return results


def spread(due: Sequence[Target]) -> list[Target]:
    """``due`` in this run's own random order. Nodes of a fleet started together (the
    same certificates, due at once) then fetch different certificates first and take
    the rest from the store, instead of all queueing behind one node's leases in the
    same order (3 nodes x 1,000 at 100 ms per CA answer: 25 s per node in the same order)."""
    import random

    order = list(due)
    random.SystemRandom().shuffle(order)
    return order


def retrieve_one(
    target: Target,
    held: StapleRecord | None,
    session: requests.Session,
    *,
    now: dt.datetime,
    timeouts: Timeouts,
    max_bytes: int,
    remembered: str | None = None,
    limiter: HostLimiter | None = None,
) -> Retrieved:
    """Ask every OCSP URL of ``target`` in order (``remembered`` first) until one gives a
    verified staple. An error names every URL's cause (``URL1: cause; URL2: cause``)."""
    from ocsptool.fetch import fetch_first, order_urls
    from ocsptool.ocsp import build_request, verify

    bundle = target.bundle
    try:
        staple, url = fetch_first(
            session,
            order_urls(target.ocsp_urls, remembered),
            build_request(target),
            lambda body: verify(body, bundle, now),
            timeouts=timeouts,
            max_bytes=max_bytes,
            limiter=limiter,
        )
    except OcspToolError as e:
        return Retrieved(target, error=e)
    except Exception as e:  # one certificate never stops the others, not even a bug
        return Retrieved(target, error=unexpected(e))
    try:
        check_not_older(staple, held)
    except OcspToolError as e:
        return Retrieved(target, error=type(e)(f"{url}: {e}"), responder=url)
    return Retrieved(target, staple=staple, responder=url)


def retrieve_shared(
    target: Target,
    held: StapleRecord | None,
    store: StoreRun,
    fetch: Callable[[], Retrieved],
    *,
    now: dt.datetime,
) -> Retrieved:
    """``fetch`` (``retrieve_one``) wrapped in the shared store's flow: a fresher staple
    another node published is taken (verified against this node's own certificate and
    issuer, like a responder's answer), else this node fetches and publishes it."""
    from ocsptool.ocsp import verify

    def from_store(der: bytes) -> Staple:
        staple = verify(der, target.bundle, now)
        check_not_unrevoked(staple, held)
        return staple

    asked: list[str | None] = []  # the OCSP URL that answered, when this node fetched

    def from_responder() -> Staple:
        result = fetch()
        if result.error is not None:
            raise result.error
        assert result.staple is not None
        asked.append(result.responder)
        return result.staple

    try:
        held_this = from_epoch((held or {}).get("this_update"))
        got = store.obtain(target.certid, held_this, from_store, from_responder, now)
    except Exception as e:  # one certificate never stops the others, not even a bug
        return Retrieved(target, error=e if isinstance(e, OcspToolError) else unexpected(e))
    return Retrieved(
        target,
        got.staple,
        got.error,
        origin=got.origin,
        fetched_by=got.fetched_by,
        fetched_at=got.fetched_at,
        notes=got.problems,
        responder=asked[-1] if asked and got.origin is Origin.RESPONDER else None,
    )


def unexpected(error: Exception) -> OcspToolError:
    """A bug met while handling one certificate: report it on that certificate's line."""
    return OcspToolError(f"unexpected {type(error).__name__}: {error} (a bug; please report it)")


def check_not_older(new: Staple, held: StapleRecord | None) -> None:
    """Refuse a replay or a stale cache copy: it must not replace a newer staple we hold,
    and a 'good' never undoes a revocation (only certificateHold can be lifted)."""
    if not held:
        return
    held_this = from_epoch(held.get("this_update"))
    if held_this is not None and new.this_update < held_this:
        raise ResponseRejected(
            f"response is older than the staple we hold (thisUpdate {iso(new.this_update)} "
            f"< {iso(held_this)}); kept the newer one"
        )
    check_not_unrevoked(new, held)


def check_not_unrevoked(new: Staple, held: StapleRecord | None) -> None:
    """A 'good' never undoes a revocation we hold (only certificateHold can be lifted)."""
    if (
        held
        and held.get("status") == "revoked"
        and new.status == "good"
        and held.get("revocation_reason") != "certificate_hold"
    ):
        raise ResponseRejected(
            "responder now says good, but the staple we hold says REVOKED; kept the revocation"
        )
