"""Time helpers shared by every module: ISO 8601 UTC text and epoch seconds."""

from __future__ import annotations

import datetime as dt
from typing import Any


def iso(moment: dt.datetime | None) -> str | None:
    """``2026-11-28T20:31:00Z``, or None."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_epoch(moment: dt.datetime | None) -> int | None:
    """Times are kept as integer epoch seconds in the state: cheap to load and compare."""
    return None if moment is None else int(moment.timestamp())


def as_json_fields(data: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready fields: datetimes as ISO 8601 UTC (the one converter)."""
    from dataclasses import asdict

    return {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in asdict(data).items()}


def from_epoch(value: Any) -> dt.datetime | None:
    """Epoch seconds as a UTC datetime; None for anything else (None, a bool, a string)."""
    kind = value.__class__
    if kind is int or kind is float:  # JSON's: seven per certificate of a status report
        return _fromtimestamp(value, _UTC)
    if value is None or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return _fromtimestamp(value, _UTC)


_fromtimestamp = dt.datetime.fromtimestamp
_UTC = dt.UTC


def span(delta: dt.timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``45s``: the two largest units (status, check)."""
    seconds = int(abs(delta.total_seconds()))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size}{name}")
            seconds %= size
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0"):
        parts.pop()
    return " ".join(parts)


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def format_duration(value: dt.timedelta) -> str:
    """A duration as ``parse_duration`` reads it, in the largest whole unit (``12h``)."""
    seconds = int(value.total_seconds())
    for unit in "wdhm":
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
