"""The one verdict on a staple's freshness, at its boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from ocsptool.freshness import cert_expired, fresh_until, lapsing, overdue

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)


def test_fresh_until_is_the_earlier_of_due_and_not_after() -> None:
    assert fresh_until({"due": 100, "not_after": 200}) == 100
    assert fresh_until({"due": 300, "not_after": 200}) == 200
    with pytest.raises(KeyError):
        fresh_until({"due": 100})


def test_lapsing_within_five_minutes_of_next_update() -> None:
    assert lapsing(NOW + 300 * S, NOW) is True
    assert lapsing(NOW + 301 * S, NOW) is False
    assert lapsing(NOW - S, NOW) is True


def test_overdue_past_the_latest_refresh() -> None:
    this, nxt = NOW - dt.timedelta(days=4), NOW + dt.timedelta(hours=1, minutes=5)
    assert overdue(this, nxt, NOW) is False  # latest refresh: nextUpdate - 5 min - 1 h
    assert overdue(this, nxt, NOW + S) is True


def test_cert_expired_strictly_after_not_after() -> None:
    assert cert_expired(NOW, NOW) is False
    assert cert_expired(NOW - S, NOW) is True
    assert cert_expired(None, NOW) is False
