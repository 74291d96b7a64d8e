"""Sinks: where a verified staple goes, each reporting one ``Delivery`` per staple.

``FileSink`` writes the staple file (its home: every fetched staple goes there first).
The consumer sinks (the servers) get every staple they do not have yet, as the record's
``pushed`` list says (``ocsptool.sinks.delivery``): one sink per consumer address. The
seam knows nothing of any one server; new kinds of consumer are added in ``sinks_for``,
the one place sinks are picked.
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
    #: The issuer as PEM, for a consumer that must be given it with a first staple.
    issuer_pem: bytes | None = None
    #: The name the consumer loaded it under, when a configuration says (else cert_path).
    name: str | None = None
    #: The leaf's serial: a consumer holding another one has an older certificate.
    serial: int | None = None


class DeliveryState(StrEnum):
    PUBLISHED = "published"
    #: The consumer does not serve this certificate: nothing to do, counted as done.
    NOT_SERVED = "not-served"
    #: The consumer staples this certificate itself (e.g. HAProxy's ``ocsp-update on``):
    #: nothing pushed, nothing to retry, counted as done.
    SELF_STAPLED = "self-stapled"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    key: str
    state: DeliveryState
    error: str | None = None
    #: How it was published (a sink's own vocabulary).
    method: str | None = None
    #: The staple file's inode, from the file sink.
    inode: int | None = None

    @property
    def done(self) -> bool:
        """The consumer has (or needs no) staple: the record lists it in ``pushed``."""
        return self.state is not DeliveryState.FAILED


class Sink(Protocol):
    #: The consumer's address: records name it (``pushed``) and routes point at it.
    name: str
    #: How people name it, e.g. ``HAProxy /run/haproxy/admin.sock``.
    label: str

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        """One Delivery per item, in any order; called once per run with everything the
        consumer lacks. Raise ``OcspToolError`` (one line) only when the consumer as a
        whole cannot be used (e.g. unreachable). A sink may also keep ``notes``, a list
        of one-line notes on the consumer as a whole (e.g. "nginx is not running"),
        which the run says once."""
        ...


@dataclass(frozen=True)
class SinkOptions:
    """What every consumer sink of a run is given."""

    timeout: float = 10.0
    now: dt.datetime | None = None
    #: Load a renewed certificate into the server with its staple (``--update-certs``).
    update_certs: bool = False
    #: How to reload nginx (argv); None: SIGHUP to its master after ``nginx -t``.
    nginx_reload: tuple[str, ...] | None = None


def sinks_for(consumers: Sequence[str], options: SinkOptions) -> list[Sink]:
    """One sink per consumer address (the file sink always comes first, in the run):
    ``nginx:<configuration>`` is an nginx (``ocsptool.sinks.nginx``), every other address
    a HAProxy runtime API. Add new kinds of consumer here."""
    from ocsptool.sinks.haproxy import HAProxySink
    from ocsptool.sinks.nginx import NginxSink, is_nginx

    return [
        NginxSink(address, options) if is_nginx(address) else HAProxySink(address, options)
        for address in consumers
    ]


__all__ = ["Delivery", "DeliveryState", "Publication", "Sink", "SinkOptions", "sinks_for"]
