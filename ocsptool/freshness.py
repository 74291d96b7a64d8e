"""Is a staple fresh? The one place that says so: refresh's plan, the staple verifier and
the per-certificate view (``status``, ``check``, ``show``, the metrics, refresh's report)
all ask here.

- ``fresh_until(record)``: a recorded staple needs nothing until its refresh time or its
  certificate's notAfter, whichever comes first (epoch seconds; the plan and the fresh
  index compare ``now`` with it, so the no-op run stays a loop of integer compares).
- ``lapsing(next_update, now)``: HAProxy stops serving a staple this close to its
  nextUpdate (``schedule.HAPROXY_MARGIN``), or after it.
- ``overdue(this_update, next_update, now)``: past the latest refresh the schedule plans
  for its window (is refresh running?).
- ``cert_expired(not_after, now)``: the certificate itself is past its notAfter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def fresh_until(record: Mapping[str, Any]) -> int:
    """Epoch seconds until which the record's staple needs nothing: ``min(due,
    not_after)`` (KeyError when the record lacks one of them)."""
    due: int = record["due"]
    not_after: int = record["not_after"]
    return due if due < not_after else not_after


def lapsing(next_update: dt.datetime, now: dt.datetime) -> bool:
    from ocsptool.schedule import HAPROXY_MARGIN  # not on the no-op run's path

    return next_update - now <= HAPROXY_MARGIN


def overdue(this_update: dt.datetime, next_update: dt.datetime, now: dt.datetime) -> bool:
    from ocsptool.schedule import latest_refresh

    return now > latest_refresh(this_update, next_update)


def cert_expired(not_after: dt.datetime | None, now: dt.datetime) -> bool:
    return not_after is not None and now > not_after
