"""Is a staple fresh? The one place that says so: refresh's plan, the staple verifier and
the per-certificate view (``status``, ``check``, ``show``, the metrics, refresh's report)
all ask here.

- ``fresh_until(record)``: a recorded staple needs nothing until its refresh time or its
  certificate's notAfter, whichever comes first (epoch seconds; the plan and the fresh
  index compare ``now`` with it, so the no-op run stays a loop of integer compares).
- ``lapsing(next_update, now)``: HAProxy stops serving a staple this close to its
  nextUpdate (``HAPROXY_MARGIN``), or after it.
- ``overdue(this_update, next_update, now)``: past the latest refresh the schedule plans
  for its window (is refresh running?).
- ``cert_expired(not_after, now)``: the certificate itself is past its notAfter.

It sits at the bottom of the house: it imports nothing of ocsptool, and the schedule,
the verifier and the view import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

#: HAProxy stops serving 300 s before nextUpdate; plan to be well before that.
HAPROXY_MARGIN = dt.timedelta(seconds=300)
#: Never plan a refresh later than nextUpdate minus this (capped at a quarter of the window).
SAFETY_MARGIN = dt.timedelta(hours=1)


def latest_refresh(this_update: dt.datetime, next_update: dt.datetime) -> dt.datetime:
    """The last moment a refresh should be planned for this window."""
    window = next_update - this_update
    margin = min(SAFETY_MARGIN, window / 4)
    return next_update - HAPROXY_MARGIN - margin


def fresh_until(record: Mapping[str, Any]) -> int:
    """Epoch seconds until which the record's staple needs nothing: ``min(due,
    not_after)`` (KeyError when the record lacks one of them)."""
    due: int = record["due"]
    not_after: int = record["not_after"]
    return due if due < not_after else not_after


def lapsing(next_update: dt.datetime, now: dt.datetime) -> bool:
    return next_update - now <= HAPROXY_MARGIN


def overdue(this_update: dt.datetime, next_update: dt.datetime, now: dt.datetime) -> bool:
    return now > latest_refresh(this_update, next_update)


def cert_expired(not_after: dt.datetime | None, now: dt.datetime) -> bool:
    return not_after is not None and now > not_after
