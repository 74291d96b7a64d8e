"""ocsptool.schedule: midpoint with jitter, the latest safe refresh, backoff."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsptool import freshness, schedule
from ocsptool.ocsp import Staple
from ocsptool.times import iso
from tests.conftest import PKI

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
    assert due <= next_update - freshness.HAPROXY_MARGIN - 5 * MIN
    assert due == freshness.latest_refresh(T0, next_update)


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(min_value=600, max_value=30 * 86400),
    key=st.text(max_size=20),
)
def test_due_is_always_inside_the_safe_window(window: int, key: str) -> None:
    next_update = T0 + dt.timedelta(seconds=window)
    due = schedule.next_due(T0, next_update, key)
    assert T0 < due <= next_update - freshness.HAPROXY_MARGIN


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
    assert due == max(freshness.latest_refresh(this_update, next_update), T0 + 5 * MIN)
    assert due < next_update - freshness.HAPROXY_MARGIN


# -- short-lived certificates and short responses --------------------------------------------


def test_never_due_after_the_certificate_expires() -> None:
    """A 7-day response for a certificate that expires in 2 days: due by the expiry."""
    expiry = T0 + 2 * DAY
    due = schedule.next_due(T0, T0 + 7 * DAY, "k", not_after=expiry)
    assert due == expiry
    assert schedule.next_due(T0, T0 + 7 * DAY, "k", not_after=T0 + 30 * DAY) == (
        schedule.next_due(T0, T0 + 7 * DAY, "k")
    )


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(min_value=600, max_value=30 * 86400),
    life=st.integers(min_value=0, max_value=60 * 86400),
)
def test_due_is_never_past_expiry(window: int, life: int) -> None:
    expiry = T0 + dt.timedelta(seconds=life)
    due = schedule.next_due(T0, T0 + dt.timedelta(seconds=window), "k", not_after=expiry)
    assert due <= expiry
    assert due <= T0 + dt.timedelta(seconds=window) - freshness.HAPROXY_MARGIN


def test_retry_never_past_expiry() -> None:
    assert schedule.retry_due(7, T0, not_after=T0 + 30 * MIN) == T0 + 30 * MIN
    assert schedule.retry_due(1, T0, not_after=T0 + DAY) == T0 + 5 * MIN
    assert schedule.retry_due(3, T0, not_after=T0 - DAY) == T0  # expired: not later than now


def _staple(this_update: dt.datetime, next_update: dt.datetime) -> Staple:
    return Staple(b"", "good", this_update, next_update, this_update, "the issuer")


def _leaf(pki: PKI, not_after: dt.datetime) -> x509.Certificate:
    return pki.direct.leaf("short.test", ocsp_url=None, not_after=not_after).cert


def test_warns_when_the_response_outlives_the_certificate(pki: PKI) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    leaf = _leaf(pki, now + 2 * DAY)
    staple = _staple(now, now + 7 * DAY)
    assert schedule.response_warnings(staple, leaf) == [
        f"response nextUpdate {iso(now + 7 * DAY)} lies beyond the certificate's expiry "
        f"{iso(now + 2 * DAY)}; renew the certificate before then"
    ]


def test_warns_when_the_response_is_valid_under_an_hour(pki: PKI) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    leaf = _leaf(pki, now + 30 * DAY)
    assert schedule.response_warnings(_staple(now, now + 40 * MIN), leaf) == [
        "response valid for only 40 min (thisUpdate to nextUpdate); "
        "run refresh at least every 5 min to keep a staple"
    ]
    assert schedule.response_warnings(_staple(now, now + 60 * MIN), leaf) == []
    assert schedule.response_warnings(_staple(now, now + 4 * DAY), leaf) == []
