"""ocsptool.schedule: midpoint with jitter, the latest safe refresh, backoff."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsptool import schedule

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
MIN = dt.timedelta(minutes=1)


def test_due_near_the_midpoint() -> None:
    due = schedule.next_due(T0, T0 + 4 * DAY, "/c/a.pem")
    jitter = 4 * DAY * schedule.JITTER
    assert T0 + 2 * DAY - jitter <= due <= T0 + 2 * DAY + jitter


def test_jitter_is_stable_per_key_and_spreads_keys() -> None:
    one = schedule.next_due(T0, T0 + 4 * DAY, "/c/a.pem")
    assert schedule.next_due(T0, T0 + 4 * DAY, "/c/a.pem") == one
    spread = {schedule.next_due(T0, T0 + 4 * DAY, f"/c/{i}.pem") for i in range(50)}
    assert len(spread) == 50


def test_short_windows_stay_clear_of_haproxy_margin() -> None:
    """A 20-minute window: due well before HAProxy stops serving (nextUpdate - 300 s)."""
    next_update = T0 + 20 * MIN
    due = schedule.next_due(T0, next_update, "k")
    assert due <= next_update - schedule.HAPROXY_MARGIN - 5 * MIN
    assert due == schedule.latest_refresh(T0, next_update)


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(min_value=600, max_value=30 * 86400),
    key=st.text(max_size=20),
)
def test_due_is_always_inside_the_safe_window(window: int, key: str) -> None:
    next_update = T0 + dt.timedelta(seconds=window)
    due = schedule.next_due(T0, next_update, key)
    assert T0 < due <= next_update - schedule.HAPROXY_MARGIN


def test_surrogate_keys_are_fine() -> None:
    schedule.next_due(T0, T0 + DAY, "/c/caf\udce9.pem")


@pytest.mark.parametrize(
    ("failures", "minutes"), [(1, 5), (2, 10), (3, 20), (4, 40), (6, 160), (7, 240), (30, 240)]
)
def test_backoff_doubles_and_caps(failures: int, minutes: int) -> None:
    assert schedule.retry_due(failures, T0) == T0 + minutes * MIN


def test_retry_after_is_honoured_but_capped() -> None:
    assert schedule.retry_due(1, T0, retry_after=1800) == T0 + 30 * MIN
    assert schedule.retry_due(1, T0, retry_after=60) == T0 + 5 * MIN
    assert schedule.retry_due(1, T0, retry_after=10**9) == T0 + schedule.MAX_RETRY


def test_backoff_never_lets_the_held_staple_lapse() -> None:
    """With 90 minutes of staple left, the 4-hour backoff is cut to before it lapses."""
    this_update = T0 - 4 * DAY
    next_update = T0 + 90 * MIN
    due = schedule.retry_due(10, T0, staple_this_update=this_update, staple_next_update=next_update)
    assert due == max(schedule.latest_refresh(this_update, next_update), T0 + 5 * MIN)
    assert due < next_update - schedule.HAPROXY_MARGIN
