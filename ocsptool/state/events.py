"""What a run writes into the state: a certificate's record from its target, a staple's
record, and each event (parsed, adopted from disk, fetched, failed) applied to ``State``.

The state's format is ``ocsptool.state``'s; this module only builds and updates records,
so the stages that cause the events (targets, retrieval, delivery) never edit a record
field by field themselves.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ocsptool.errors import FetchError, OcspToolError
from ocsptool.scan import Found
from ocsptool.state import Record, StapleRecord, State
from ocsptool.times import from_epoch, to_epoch

if TYPE_CHECKING:
    from ocsptool.ocsp import Staple
    from ocsptool.target import Target

#: What a re-parsed certificate keeps of its record while its leaf is the same.
_HISTORY = ("staple", "due", "failures", "last_error", "pushed", "responder", "self_stapled")


def cache_valid(rec: Record, f: Found) -> bool:
    """The record describes the file as it is (same stat keys, same ``.issuer``)."""
    return rec["stat"] == f.stat and rec.get("issuer_stat") == f.issuer_stat


def describe_target(target: Target, f: Found) -> Record:
    """A fresh record for a parsed certificate: its facts, no staple, due now."""
    from cryptography.hazmat.primitives import hashes

    from ocsptool.certs import describe_name
    from ocsptool.target import has_crl

    bundle = target.bundle
    leaf = target.leaf
    return {
        "stat": f.stat,
        "issuer_stat": f.issuer_stat,
        "fingerprint": leaf.fingerprint(hashes.SHA256()).hex(),
        "name": bundle.name,
        "issuer": describe_name(leaf.issuer),
        "issuer_file": str(target.issuer_file) if target.issuer_file else None,
        "url": target.ocsp_url,
        "certid": target.certid,
        "serial": f"{leaf.serial_number:x}",
        "not_before": int(leaf.not_valid_before_utc.timestamp()),
        "not_after": int(leaf.not_valid_after_utc.timestamp()),
        "must_staple": bundle.must_staple,
        "crl": has_crl(leaf),
        "staple": None,
        "due": 0,
        "failures": 0,
        "last_error": None,
        "pushed": [],
    }


def describe_staple(staple: Staple, inode: int | None) -> StapleRecord:
    import hashlib

    return {
        "status": staple.status,
        "this_update": int(staple.this_update.timestamp()),
        "next_update": int(staple.next_update.timestamp()),
        "produced_at": to_epoch(staple.produced_at),
        "signer": staple.signer,
        "revocation_time": to_epoch(staple.revocation_time),
        "revocation_reason": staple.revocation_reason,
        "sha256": hashlib.sha256(staple.der).hexdigest(),
        "inode": inode,
    }


def due_of(target: Target, staple: Staple) -> int:
    """When the staple is next due (``schedule.next_due``), as epoch seconds."""
    from ocsptool.schedule import next_due

    not_after = target.leaf.not_valid_after_utc
    return int(
        next_due(
            staple.this_update, staple.next_update, target.key, not_after=not_after
        ).timestamp()
    )


# -- events ------------------------------------------------------------------------------


def parsed(state: State, target: Target, f: Found) -> Record:
    """Record a parsed certificate; its history stays while its leaf is the same one."""
    rec = describe_target(target, f)
    old = state.certs.get(target.key)
    if old is not None and old.get("fingerprint") == rec["fingerprint"]:
        for key in _HISTORY:
            if key in old:
                rec[key] = old[key]  # type: ignore[literal-required]
    state.put(target.key, rec)
    return rec


def unusable(state: State, f: Found, error: OcspToolError, now: dt.datetime) -> Record:
    """Record a certificate that cannot be used; a caIssuers fetch that failed is retried
    with the OCSP backoff (``plan.triage`` parses it again when its ``due`` comes)."""
    old = state.certs.get(f.path)
    rec: Record = {"stat": f.stat, "issuer_stat": f.issuer_stat, "cert_error": str(error)}
    if isinstance(error, FetchError):
        from ocsptool.schedule import retry_due

        failures = int(old.get("failures", 0)) + 1 if old and old.get("cert_error") else 1
        due = retry_due(failures, now, retry_after=error.retry_after)
        rec.update({"failures": failures, "due": int(due.timestamp())})
    state.put(f.path, rec)
    return rec


def adopted(state: State, target: Target, staple: Staple | None, inode: int | None) -> None:
    """The staple file on disk, verified (or None): kept with its schedule. We cannot know
    whether a server has it, so it is delivered once (``pushed`` empty)."""
    state.update(target.key, {"staple": None, "pushed": []})
    if staple is not None:
        state.update(
            target.key,
            {"staple": describe_staple(staple, inode), "due": due_of(target, staple)},
        )


def fetched(
    state: State, target: Target, staple: StapleRecord, *, due: int, now: int, responder: str | None
) -> bool:
    """Record a new staple written at its home; True when it differs from the one held."""
    old = state.certs[target.key]
    before = old.get("staple") or {}
    state.update(
        target.key,
        {
            "last_attempt": now,
            "staple": staple,
            "due": due,
            "failures": 0,
            "last_error": None,
            "last_success": now,
            "pushed": [],
            # From the store: keep the URL this node's last fetch worked with.
            "responder": responder or old.get("responder"),
        },
    )
    return before.get("sha256") != staple["sha256"]


def failed(state: State, key: str, message: str, error: OcspToolError, now: dt.datetime) -> None:
    """Record a failed fetch, verify or write; the retry backs off (``schedule``)."""
    from ocsptool.schedule import retry_due

    rec = state.certs[key]
    failures = int(rec.get("failures", 0)) + 1
    staple: StapleRecord = rec.get("staple") or {}
    retry = retry_due(
        failures,
        now,
        retry_after=error.retry_after if isinstance(error, FetchError) else None,
        staple_this_update=from_epoch(staple.get("this_update")),
        staple_next_update=from_epoch(staple.get("next_update")),
        not_after=from_epoch(rec.get("not_after")),
    )
    state.update(
        key,
        {
            "last_attempt": int(now.timestamp()),
            "failures": failures,
            "last_error": message,
            "due": int(retry.timestamp()),
        },
    )


def delivered(state: State, key: str, consumer: str, *, self_stapled: bool) -> list[str]:
    """A consumer has the staple (or needs none from us): its push problem is gone.
    Returns the consumers that staple it themselves afterwards."""
    rec = state.certs[key]
    fields: Record = {"pushed": [*rec.get("pushed", []), consumer], "push_error": None}
    errors = rec.get("push_errors")
    if errors and consumer in errors:
        fields["push_errors"] = {c: why for c, why in errors.items() if c != consumer}
    before = rec.get("self_stapled")
    others = [a for a in before if a != consumer] if before else []
    if self_stapled:
        others.append(consumer)
    if others or before:
        fields["self_stapled"] = others
    state.update(key, fields)
    return others


def undelivered(state: State, key: str, consumer: str, message: str) -> None:
    """A consumer could not be given the staple: the problem is kept for that consumer
    (``status`` shows it while the consumer is configured) and retried on the next run."""
    errors = dict(state.certs[key].get("push_errors") or {})
    errors[consumer] = message
    state.update(key, {"push_errors": errors, "push_error": None})


def staple_status(rec: Record) -> str | None:
    staple = rec.get("staple")
    return staple.get("status") if staple else None
