"""Sinks: where a verified staple goes, each reporting one ``Delivery`` per staple.

``FileSink`` writes ``<cert>.ocsp`` (the staple's home: every fetched staple goes there
first). The consumer sinks get every staple they do not have yet, as the record's
``pushed`` list says: today one ``HAProxySink`` per runtime API socket; change hooks
and other servers later. New sinks are added in ``sinks_for``, the one place sinks are
picked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Publication:
    """One staple to publish."""

    key: str  # Target.key
    cert_path: str
    staple_path: Path
    der: bytes
    #: The issuer as PEM when a consumer needs it (HAProxy's first-staple transaction).
    issuer_pem: bytes | None = None
    #: The name the consumer loaded it under, when a configuration says (else cert_path).
    name: str | None = None
    #: The leaf's serial: a consumer holding another one has an older certificate.
    serial: int | None = None


class DeliveryState(StrEnum):
    PUBLISHED = "published"
    #: The consumer does not serve this certificate: nothing to do, counted as done.
    NOT_SERVED = "not-served"
    #: The consumer staples this certificate itself (HAProxy's ``ocsp-update on``):
    #: nothing pushed, nothing to retry, counted as done.
    SELF_STAPLED = "self-stapled"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    key: str
    state: DeliveryState
    error: str | None = None
    #: How it was published (a sink's own vocabulary, e.g. ``PushMethod``).
    method: str | None = None
    #: The staple file's inode, from the file sink.
    inode: int | None = None

    @property
    def done(self) -> bool:
        """The consumer has (or needs no) staple: the record lists it in ``pushed``."""
        return self.state is not DeliveryState.FAILED


class Sink(Protocol):
    #: How records and messages name the sink (``pushed`` lists it): e.g. the socket.
    name: str

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        """One Delivery per item, in any order. Raise ``OcspToolError`` (one line) only
        when the sink as a whole cannot be used (e.g. HAProxy unreachable)."""
        ...


def sinks_for(
    sockets: Sequence[str],
    *,
    timeout: float,
    now: dt.datetime | None = None,
    update_certs: bool = False,
) -> list[Sink]:
    """The consumer sinks of a run (the file sink always comes first). Add new ones here."""
    from ocsptool.sinks.haproxy import HAProxySink

    return [
        HAProxySink(address, timeout=timeout, now=now, update_certs=update_certs)
        for address in sockets
    ]


__all__ = ["Delivery", "DeliveryState", "Publication", "Sink", "sinks_for"]
