"""The fresh index's entries: per certificate, what a run with nothing due compares
(``plan.all_fresh``), made from its record; and ``FreshIndex``, the index as a run reads
it, packed. ``state.file`` keeps it beside the state.

Packed, because at 100,000 certificates an entry per key as JSON lists of ints took 59 MB
and 113 ms to decode: the common entry (no issuer file, plain ints) is a row of integer
columns, each one base64 string of packed integers of the smallest size that holds the
column, and its key is its folder (a table: most keys share a few) and its name; any
other entry (an issuer file, a value an int64 does not hold, a record that is not plainly
fresh-able) stays as it was, an ``IndexEntry`` in ``others``.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ocsptool.freshness import fresh_until
from ocsptool.state.records import Record

#: One entry of the fresh index: (stat, issuer_stat, staple inode, fresh until
#: (epoch; min of due and notAfter), the consumers that have the staple), or None for a
#: record that is not plainly fresh-able (no staple, broken, revoked...). A certificate
#: without OCSP URL has the inode NO_STAPLE: it needs nothing, ever, while unchanged.
IndexEntry = tuple[list[int], list[int] | None, int | None, int, tuple[str, ...]] | None
NO_STAPLE = -1

#: The packed columns, in order: the key's folder (a row of ``FreshIndex.folders``), the
#: stat key's four fields, the staple's inode (or NO_STAPLE), fresh until, and the row of
#: ``FreshIndex.consumers`` that has the staple.
COLUMNS = ("folder", "dev", "ino", "size", "mtime_ns", "inode", "until", "consumers")
_INT64 = (-(2**63), 2**63 - 1)
#: The integer arrays a column may be, smallest first, and their sizes in bytes.
_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8}


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


def _smallest(values: list[int]) -> array[int]:
    """``values`` in the smallest integer array that holds them all."""
    low, high = (min(values), max(values)) if values else (0, 0)
    for code, size in _SIZES.items():
        bits = 8 * size
        if code.islower():
            fits = -(2 ** (bits - 1)) <= low and high < 2 ** (bits - 1)
        else:
            fits = low >= 0 and high < 2**bits
        if fits:
            return array(code, values)
    raise AssertionError("only int64 values are packed")


def _columns() -> tuple[array[int], ...]:
    return tuple(array("q") for _ in COLUMNS)


@dataclass(frozen=True)
class FreshIndex:
    """Every record's entry: the key ``folders[folder[r]] + names[r]``'s in row ``r`` of
    ``columns`` (``COLUMNS``), the rest in ``others``."""

    #: Each distinct beginning of a key, up to and with its last "/" ("" for none), once.
    folders: list[str] = field(default_factory=list)
    #: The rest of each row's key.
    names: list[str] = field(default_factory=list)
    #: One integer array per name of ``COLUMNS``, each ``len(names)`` long.
    columns: tuple[array[int], ...] = field(default_factory=_columns)
    #: Each distinct set of consumers that has a staple, once (the last column's rows).
    consumers: list[tuple[str, ...]] = field(default_factory=list)
    others: dict[str, IndexEntry] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names) + len(self.others)

    def rows(self) -> dict[str, int]:
        """Each packed key's row."""
        folders, rows = self.folders, zip(self.columns[0], self.names, strict=True)
        return {folders[f] + n: r for r, (f, n) in enumerate(rows)}

    @classmethod
    def of(cls, entries: Mapping[str, IndexEntry]) -> FreshIndex:
        """The index of ``entries``, packed (each that packs as a row)."""
        index = cls()
        folders: dict[str, int] = {}
        tables: dict[tuple[str, ...], int] = {}
        columns: list[list[int]] = [[] for _ in COLUMNS]
        appends = [column.append for column in columns]
        low, high = _INT64
        for key, entry in entries.items():
            if entry is not None and entry[1] is None and len(entry[0]) == 4:
                values: list[Any] = [*entry[0], entry[2], entry[3]]
                if all(type(v) is int and low <= v <= high for v in values):
                    head, slash, name = key.rpartition("/")
                    values.insert(0, folders.setdefault(head + slash, len(folders)))
                    values.append(tables.setdefault(tuple(entry[4]), len(tables)))
                    for append, value in zip(appends, values, strict=True):
                        append(value)
                    index.names.append(name)
                    continue
            index.others[key] = entry
        index.folders.extend(folders)
        index.consumers.extend(tables)
        return replace(index, columns=tuple(_smallest(column) for column in columns))

    def dumps(self) -> list[Any]:
        """As JSON values: the folders, the names, the consumers, each column as its array
        type and its bytes (little-endian) in base64, the others."""
        from binascii import b2a_base64

        columns = []
        for column in self.columns:
            packed = array(column.typecode, column)
            if sys.byteorder == "big":  # kept little-endian whatever the machine
                packed.byteswap()
            text = b2a_base64(packed.tobytes(), newline=False).decode("ascii")
            columns.append([column.typecode, text])
        consumers = [list(c) for c in self.consumers]
        return [self.folders, self.names, consumers, columns, self.others]

    @classmethod
    def loads(cls, value: Any) -> FreshIndex:
        """What ``dumps`` gave, as JSON read it back; ValueError or TypeError when it is
        not that."""
        from binascii import a2b_base64

        folders, names, consumers, packed, others = value
        if not (isinstance(names, list) and isinstance(others, dict)):
            raise TypeError("not an index")
        if not (isinstance(folders, list) and all(isinstance(f, str) for f in folders)):
            raise TypeError("not an index")
        if len(packed) != len(COLUMNS):
            raise ValueError("not an index")
        columns = []
        for n, (code, text) in enumerate(packed):
            if code not in _SIZES:
                raise ValueError("not an index")
            column = array(code)
            if column.itemsize != _SIZES[code]:
                raise ValueError("not an index")
            column.frombytes(a2b_base64(text))
            packed[n] = None  # each text let go as soon as it is decoded
            if sys.byteorder == "big":
                column.byteswap()
            if len(column) != len(names):
                raise ValueError("not an index")
            columns.append(column)
        for column, table in ((columns[0], folders), (columns[-1], consumers)):
            if column and not (min(column) >= 0 and max(column) < len(table)):
                raise ValueError("not an index")
        return cls(folders, names, tuple(columns), [tuple(c) for c in consumers], others)
