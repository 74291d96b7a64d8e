"""Decide, with no I/O: which certificates are fresh, due, backing off or unusable.

Two pure functions over plain values, in the order a run meets them:

- ``triage(found, records, now, force)`` looks at every scanned file and its record:
  an unchanged file is settled from its record (fresh, no OCSP URL, broken, waiting);
  the rest must be parsed. This is the no-op path: 10,000 iterations, so it touches
  tuples and dicts only.
- ``decide(targets, records, now, force)`` looks at the parsed targets (their records
  updated, a staple on disk adopted): due, fresh, waiting, expired or without OCSP URL.

Both return a ``Plan``; a run ``merge``s them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ocsptool.freshness import cert_expired, fresh_until
from ocsptool.scan import Found
from ocsptool.state.index import NO_STAPLE, FreshIndex
from ocsptool.state.records import Record

if TYPE_CHECKING:
    from ocsptool.target import Target


class Action(StrEnum):
    """What a run did with one certificate."""

    FETCHED = "fetched"
    FRESH = "fresh"
    NO_OCSP = "no-ocsp"
    FAILED = "failed"  # the fetch, verify or write failed
    SKIPPED = "skipped"  # the certificate cannot be used, or is waiting for its retry


@dataclass
class Plan:
    #: Files to parse (``triage`` only).
    parse: list[Found] = field(default_factory=list)
    #: Targets to fetch a staple for (``decide`` only).
    due: list[Target] = field(default_factory=list)
    #: Keys with a staple that needs nothing (``revoked``: those of them that say so).
    fresh: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    no_ocsp: list[str] = field(default_factory=list)
    #: Keys whose record holds a ``cert_error``.
    broken: list[str] = field(default_factory=list)
    #: Keys with no staple yet, whose last try failed and whose retry time has not come.
    waiting: list[str] = field(default_factory=list)
    #: (key, why): certificates past their notAfter; not fetched.
    expired: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: Plan) -> None:
        self.parse += other.parse
        self.due += other.due
        self.fresh += other.fresh
        self.revoked += other.revoked
        self.no_ocsp += other.no_ocsp
        self.broken += other.broken
        self.waiting += other.waiting
        self.expired += other.expired


def all_fresh(
    found: Collection[Found],
    index: FreshIndex,
    now: dt.datetime,
    force: Collection[str],
    consumers: Collection[str],
    *,
    routed: Mapping[str, Collection[str]] | None = None,
) -> Plan | None:
    """A plan of only fresh and no-OCSP keys when every file of ``found`` is one of those
    by ``index``, no record is left to prune and every consumer has every staple; else
    None (then triage and decide over the full records). The no-op run in one loop,
    without loading the records. ``routed``: the consumers of each key that has its own
    (a HAProxy configuration's certificates), instead of ``consumers``."""
    if force or len(index) != len(found):
        return None
    epoch = int(now.timestamp())
    plan = Plan()
    fresh, no_ocsp = plan.fresh.append, plan.no_ocsp.append
    names, folders, others, tables = index.names, index.folders, index.others, index.consumers
    folder, devs, inos, sizes, mtimes, inodes, untils, has = index.columns
    count = len(names)
    at = 0  # the index is in the state's order, most often the order found: row by row
    rows: dict[str, int] | None = None
    for path, stat, inode, issuer_stat in found:
        if others and path in others:
            entry = others[path]
            if entry is None or entry[0] != stat or entry[1] != issuer_stat:
                return None
            if entry[2] == NO_STAPLE:
                no_ocsp(path)
                continue
            if entry[2] != inode or epoch >= entry[3]:
                return None
            had: Collection[str] = entry[4]
        else:
            if at < count and folders[folder[at]] + names[at] == path:
                row = at
                at += 1
            else:
                if rows is None:
                    rows = index.rows()
                if (found_row := rows.get(path)) is None:
                    return None
                row = found_row
            dev, ino, size, mtime_ns = stat
            if (
                issuer_stat is not None  # a row's certificate has no issuer file
                or dev != devs[row]
                or ino != inos[row]
                or size != sizes[row]
                or mtime_ns != mtimes[row]
            ):
                return None
            if (staple := inodes[row]) == NO_STAPLE:
                no_ocsp(path)
                continue
            if staple != inode or epoch >= untils[row]:
                return None
            had = tables[has[row]]
        wanted = routed.get(path, consumers) if routed else consumers
        if wanted and not all(c in had for c in wanted):
            return None
        fresh(path)
    return plan


def triage(
    found: Iterable[Found], records: Mapping[str, Record], now: dt.datetime, force: Collection[str]
) -> Plan:
    """Settle unchanged files from their records; list the rest to parse."""
    plan = Plan()
    fresh, revoked = plan.fresh.append, plan.revoked.append
    get = records.get
    epoch = int(now.timestamp())
    slow, until = _triage_one, fresh_until
    for f in found:  # the hot loop of a no-op run: tuples and subscripts only
        path, stat, inode, issuer_stat = f
        rec = get(path)
        try:  # a fresh staple; state.valid_record ensures a staple means a URL, no cert_error
            staple = rec["staple"]  # type: ignore[index]
            if (
                rec["stat"] == stat  # type: ignore[index]
                and rec["issuer_stat"] == issuer_stat  # type: ignore[index]
                and staple["inode"] == inode  # type: ignore[index]
                and epoch < until(rec)  # type: ignore[arg-type]
                and not (force and path in force)
            ):
                fresh(path)
                if staple["status"] == "revoked":  # type: ignore[index]
                    revoked(path)
                continue
        except (KeyError, TypeError):  # no record, no staple, a field missing: the rules
            pass
        slow(plan, f, rec, epoch, force)
    return plan


def _triage_one(
    plan: Plan, f: Found, rec: Record | None, epoch: int, force: Collection[str]
) -> None:
    """The full rules for one file (everything but a plainly fresh staple)."""
    path, stat, inode, issuer_stat = f
    if (
        rec is None
        or rec["stat"] != stat
        or rec.get("issuer_stat") != issuer_stat
        or (force and path in force)
    ):
        plan.parse.append(f)
    elif rec.get("cert_error"):
        if "due" in rec and epoch >= rec["due"]:
            plan.parse.append(f)  # a caIssuers fetch that failed: its retry is due
        else:
            plan.broken.append(path)
    elif not rec.get("url"):
        plan.no_ocsp.append(path)
    elif (staple := rec.get("staple")) is not None:
        if (
            staple.get("inode") != inode
            or "due" not in rec
            or "not_after" not in rec
            or epoch >= fresh_until(rec)
        ):
            plan.parse.append(f)  # the staple was replaced or is due; or the cert expired
        else:
            plan.fresh.append(path)
            if staple.get("status") == "revoked":
                plan.revoked.append(path)
    elif inode is None and _backing_off(rec, epoch):
        plan.waiting.append(path)
    else:
        plan.parse.append(f)  # a staple file appeared, or it is time to try again


def decide(
    targets: Iterable[Target],
    records: Mapping[str, Record],
    now: dt.datetime,
    force: Collection[str],
) -> Plan:
    """What to do with each parsed target, from its (updated) record."""
    plan = Plan()
    epoch = int(now.timestamp())
    for target in targets:
        key = target.key
        rec = records[key]
        if not target.ocsp_urls:
            plan.no_ocsp.append(key)
            continue
        if cert_expired(target.leaf.not_valid_after_utc, now):
            from ocsptool.certs import validity_problem

            plan.expired.append((key, f"{validity_problem(target.leaf, now)}; not fetching"))
        elif key in force or epoch >= rec.get("due", 0):
            plan.due.append(target)
        elif (staple := rec.get("staple")) is None:
            if _backing_off(rec, epoch):
                plan.waiting.append(key)
            else:
                plan.due.append(target)
        else:
            plan.fresh.append(key)
            if staple.get("status") == "revoked":
                plan.revoked.append(key)
    return plan


def _backing_off(rec: Record, epoch: int) -> bool:
    """A recent failure, and its retry time has not come yet."""
    return bool(rec.get("failures")) and epoch < rec.get("due", 0)
