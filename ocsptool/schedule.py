"""When is a staple due: the midpoint of its window, with jitter, and backoff after failures."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

from ocsptool.freshness import latest_refresh
from ocsptool.times import iso

if TYPE_CHECKING:
    from cryptography import x509

    from ocsptool.ocsp import Staple

#: Backoff after a failure: FIRST_RETRY, doubling, capped at MAX_RETRY.
FIRST_RETRY = dt.timedelta(minutes=5)
MAX_RETRY = dt.timedelta(hours=4)
#: Jitter spreads a fleet's requests: up to this fraction of the window, either side.
JITTER = 0.05
#: A response valid for less than this is worth a warning: the timer must run very often.
SHORT_RESPONSE = dt.timedelta(hours=1)


def _fraction(key: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (no global RNG state)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def next_due(
    this_update: dt.datetime,
    next_update: dt.datetime,
    key: str,
    *,
    not_after: dt.datetime | None = None,
) -> dt.datetime:
    """Midpoint of the validity window, jittered by ``key``, never past ``latest_refresh``.

    With ``not_after`` (the certificate's expiry), never past that either: a short-lived
    certificate's staple may outlive it, and a refresh after the expiry is pointless.
    """
    window = next_update - this_update
    jitter = window * JITTER * (2 * _fraction(key) - 1)
    due = this_update + window / 2 + jitter
    due = min(due, latest_refresh(this_update, next_update))
    return due if not_after is None else min(due, not_after)


def retry_due(
    failures: int,
    now: dt.datetime,
    *,
    retry_after: float | None = None,
    staple_next_update: dt.datetime | None = None,
    staple_this_update: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> dt.datetime:
    """When to try again after ``failures`` consecutive failures (>= 1).

    Doubles from FIRST_RETRY up to MAX_RETRY, honours a responder's Retry-After, and
    never waits past the point where the staple we still hold would lapse, nor past
    ``not_after`` (the certificate's expiry; ``now`` at the earliest).
    """
    delay: dt.timedelta = min(FIRST_RETRY * 2 ** max(failures - 1, 0), MAX_RETRY)
    if retry_after is not None:
        delay = max(delay, min(dt.timedelta(seconds=retry_after), MAX_RETRY))
    due = now + delay
    if staple_next_update is not None and staple_this_update is not None:
        due = min(
            due, max(latest_refresh(staple_this_update, staple_next_update), now + FIRST_RETRY)
        )
    if not_after is not None:
        due = min(due, max(not_after, now))
    return due


def response_warnings(staple: Staple, leaf: x509.Certificate) -> list[str]:
    """What an operator should hear about a verified response for ``leaf`` (one line each).

    - its nextUpdate lies beyond the certificate's expiry (a short-lived certificate:
      the staple outlives it, so renewing the certificate matters more than the staple);
    - it is valid for under an hour (the timer must run often enough to keep up).
    """
    warnings = []
    not_after = leaf.not_valid_after_utc
    if staple.next_update > not_after:
        warnings.append(
            f"response nextUpdate {iso(staple.next_update)} lies beyond the certificate's "
            f"expiry {iso(not_after)}; renew the certificate before then"
        )
    window = staple.next_update - staple.this_update
    if window < SHORT_RESPONSE:
        minutes = int(window.total_seconds() // 60)
        every = max(1, minutes // 8)
        warnings.append(
            f"response valid for only {minutes} min (thisUpdate to nextUpdate); "
            f"run refresh at least every {every} min to keep a staple"
        )
    return warnings
