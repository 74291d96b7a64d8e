"""Sinks: where a verified staple goes, each reporting one ``Delivery`` per staple.

Every fetched staple goes first to its home (``Home``): where it lives, the one copy the
run writes, adopts and reads back. The file home (``sinks.file``) is a staple file beside
each certificate, or the one a configuration names; a TLS Secret's data key is another
(``sinks.kubernetes``). Each source says its home (``sources.types.Survey.home``).
The consumer sinks (the servers) then get every staple they do not have yet, as the
record's ``pushed`` list says (``ocsptool.sinks.delivery``): one sink per consumer address.
The seam knows nothing of any one server; new kinds of consumer are added in ``sinks_for``,
the one place sinks are picked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ocsptool.route import Route


@dataclass(frozen=True)
class Publication:
    """One staple to publish."""

    key: str  # Target.key
    cert_path: str
    #: The staple file (``Target.staple_path``); None: a home that is not a file.
    staple_path: Path | None
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
    #: From a home: the identity of the staple it now holds, as the source's ``Found``
    #: shows it (``ocsp_inode``: the staple file's inode; a digest of a Secret's staple).
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


class HomeWriter(Protocol):
    """A home's writer for one run: each staple ``submit``ted as it arrives (writes
    overlap the fetches), every ``Delivery`` at ``collect``: PUBLISHED with the new
    ``inode``; FAILED with a one-line cause (recorded, retried); NOT_SERVED when the
    certificate's home no longer wants it (deleted, or holding another certificate or a
    better staple since it was read): its ``error`` says so in one line, nothing was written
    and nothing failed."""

    def submit(self, item: Publication) -> None: ...

    def collect(self) -> list[Delivery]: ...


class Home(Protocol):
    """Where the staples of one source's certificates live.

    The run writes each new staple there first (``writer``), before any consumer; what
    reads a staple back (the run adopting the one held, delivery to a consumer that lacks
    it, ``status``, ``check``, ``show``) reads it there (``read``). ``route`` is the
    certificate's route in the inventory (its staple file, when a configuration names one).
    """

    #: How a report says that no staple is there (``no staple file``), and how ``show``
    #: names where it is (``staple file``).
    missing: str
    label: str

    def read(self, key: str, route: Route) -> bytes | None:
        """The staple held now; None when there is none; ``OSError`` when it cannot be
        read (a one-line ``strerror``)."""
        ...

    def where(self, key: str, route: Route) -> str:
        """The staple's address: what the on-change hook is given, and what ``show``
        names (the staple file's path; a Secret's key)."""
        ...

    def readable(self, key: str) -> bool:
        """Whether this user may read the certificate (else ``status`` reports its record)."""
        ...

    def writer(self, jobs: int, now: dt.datetime) -> HomeWriter:
        """A writer for this run (``jobs``: writes in flight at once)."""
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


__all__ = [
    "Delivery",
    "DeliveryState",
    "Home",
    "HomeWriter",
    "Publication",
    "Sink",
    "SinkOptions",
    "sinks_for",
]
