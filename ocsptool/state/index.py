"""The fresh index's entries: per certificate, what a run with nothing due compares
(``plan.all_fresh``), made from its record. ``state.file`` keeps them beside the state.
"""

from __future__ import annotations

from ocsptool.freshness import fresh_until
from ocsptool.state.records import Record

#: One entry of the fresh index: (stat, issuer_stat, staple inode, fresh until
#: (epoch; min of due and notAfter), the consumers that have the staple), or None for a
#: record that is not plainly fresh-able (no staple, broken, revoked...). A certificate
#: without OCSP URL has the inode NO_STAPLE: it needs nothing, ever, while unchanged.
IndexEntry = tuple[list[int], list[int] | None, int | None, int, tuple[str, ...]] | None
NO_STAPLE = -1


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
