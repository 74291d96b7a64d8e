"""The fresh index's entries: per certificate, what a run with nothing due compares
(``plan.all_fresh``), made from its record; and ``FreshIndex``, the index as a run reads
it, packed. ``state.file`` keeps it beside the state.

Packed, because at 100,000 certificates an entry per key as JSON lists of ints took 59 MB
and 113 ms to decode: the common entry (no issuer file, plain ints) is a row of seven
int64 columns, each stored as one base64 string of packed integers (17 MB, 34 ms); any
other entry (an issuer file, a value an int64 does not hold, a record that is not plainly
fresh-able) stays as it was, an ``IndexEntry`` in ``others``.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ocsptool.freshness import fresh_until
from ocsptool.state.records import Record

#: One entry of the fresh index: (stat, issuer_stat, staple inode, fresh until
#: (epoch; min of due and notAfter), the consumers that have the staple), or None for a
#: record that is not plainly fresh-able (no staple, broken, revoked...). A certificate
#: without OCSP URL has the inode NO_STAPLE: it needs nothing, ever, while unchanged.
IndexEntry = tuple[list[int], list[int] | None, int | None, int, tuple[str, ...]] | None
NO_STAPLE = -1

#: The packed columns, in order: the stat key's four fields, the staple's inode (or
#: NO_STAPLE), fresh until, and the row of ``FreshIndex.consumers`` that has the staple.
COLUMNS = ("dev", "ino", "size", "mtime_ns", "inode", "until", "consumers")
_INT64 = (-(2**63), 2**63 - 1)


def index_entry(rec: Record) -> IndexEntry:
    """A record's entry in the fresh index (see ``all_fresh``)."""
    staple = rec.get("staple")
    if rec.get("cert_error"):
        return None
    if not rec.get("url"):
        return (rec["stat"], rec.get("issuer_stat"), NO_STAPLE, 0, ())
    if staple is None:
        return None
    if staple.get("status") != "good" or "due" not in rec or "not_after" not in rec:
        return None
    return (
        rec["stat"],
        rec.get("issuer_stat"),
        staple.get("inode"),
        fresh_until(rec),
        tuple(rec.get("pushed", ())),
    )


def _columns() -> tuple[array[int], ...]:
    return tuple(array("q") for _ in COLUMNS)


@dataclass(frozen=True)
class FreshIndex:
    """Every record's entry: ``keys[r]``'s in row ``r`` of ``columns`` (``COLUMNS``),
    the rest in ``others``."""

    keys: list[str] = field(default_factory=list)
    #: One int64 array per name of ``COLUMNS``, each ``len(keys)`` long.
    columns: tuple[array[int], ...] = field(default_factory=_columns)
    #: Each distinct set of consumers that has a staple, once (the last column's rows).
    consumers: list[tuple[str, ...]] = field(default_factory=list)
    others: dict[str, IndexEntry] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys) + len(self.others)

    @classmethod
    def of(cls, entries: Mapping[str, IndexEntry]) -> FreshIndex:
        """The index of ``entries``, packed (each that packs as a row)."""
        index = cls()
        tables: dict[tuple[str, ...], int] = {}
        appends = [column.append for column in index.columns]
        low, high = _INT64
        for key, entry in entries.items():
            if entry is not None and entry[1] is None and len(entry[0]) == 4:
                values: list[Any] = [*entry[0], entry[2], entry[3]]
                if all(type(v) is int and low <= v <= high for v in values):
                    values.append(tables.setdefault(tuple(entry[4]), len(tables)))
                    for append, value in zip(appends, values, strict=True):
                        append(value)
                    index.keys.append(key)
                    continue
            index.others[key] = entry
        index.consumers.extend(tables)
        return index

    def dumps(self) -> list[Any]:
        """As JSON values: the keys, the consumers, each column in base64, the others."""
        from binascii import b2a_base64

        columns = []
        for column in self.columns:
            packed = array("q", column)
            if sys.byteorder == "big":  # kept little-endian whatever the machine
                packed.byteswap()
            columns.append(b2a_base64(packed.tobytes(), newline=False).decode("ascii"))
        return [self.keys, [list(c) for c in self.consumers], columns, self.others]

    @classmethod
    def loads(cls, value: Any) -> FreshIndex:
        """What ``dumps`` gave, as JSON read it back; ValueError or TypeError when it is
        not that."""
        from binascii import a2b_base64

        keys, consumers, packed, others = value
        if not (isinstance(keys, list) and isinstance(others, dict)):
            raise TypeError("not an index")
        if len(packed) != len(COLUMNS):
            raise ValueError("not an index")
        columns = []
        for text in packed:
            column = array("q")
            column.frombytes(a2b_base64(text))
            if sys.byteorder == "big":
                column.byteswap()
            if len(column) != len(keys):
                raise ValueError("not an index")
            columns.append(column)
        rows = columns[-1]
        if rows and not (min(rows) >= 0 and max(rows) < len(consumers)):
            raise ValueError("not an index")
        return cls(keys, tuple(columns), [tuple(c) for c in consumers], others)
