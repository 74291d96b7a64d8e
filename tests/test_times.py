from __future__ import annotations

import datetime as dt

from ocsptool.times import from_epoch, iso, to_epoch

NOW = dt.datetime(2026, 11, 28, 20, 31, 5, tzinfo=dt.UTC)


def test_epoch_round_trip() -> None:
    assert to_epoch(None) is None
    assert from_epoch(to_epoch(NOW)) == NOW


def test_from_epoch_refuses_what_is_not_a_number() -> None:
    assert from_epoch("x") is None
    assert from_epoch(True) is None
    assert from_epoch(None) is None


def test_from_epoch_takes_ints_floats_and_their_kinds() -> None:
    class Seconds(int):
        pass

    stamp = to_epoch(NOW)
    assert stamp is not None
    assert from_epoch(Seconds(stamp)) == NOW
    assert from_epoch(stamp + 0.5) == NOW + dt.timedelta(seconds=0.5)
    assert from_epoch(stamp).tzinfo is dt.UTC  # type: ignore[union-attr]


def test_iso_is_utc_with_z() -> None:
    assert iso(NOW) == "2026-11-28T20:31:05Z"
    assert iso(None) is None
