"""What a refresh (or renew) run did: one ``Outcome`` per certificate and the ``RunReport``.

Plain values: ``refresh`` builds them, ``run_output`` prints them (``-v``, ``--json``),
``renew`` picks its certificates' lines from them. The per-certificate facts are the
view's (``view.recorded``), so a run and ``status`` say the same of a certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ocsptool.inventory import Inventory
from ocsptool.plan import Action
from ocsptool.state import Record, State
from ocsptool.times import from_epoch

if TYPE_CHECKING:
    from ocsptool.view import CertStatus


@dataclass
class Outcome:
    """What happened to one certificate in this run."""

    path: str
    action: Action
    name: str | None = None
    ocsp_url: str | None = None
    status: str | None = None  # the staple on disk: good | revoked | None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    next_due: dt.datetime | None = None
    error: str | None = None
    pushed: list[str] = field(default_factory=list)
    push_errors: list[str] = field(default_factory=list)
    #: Where the staple on disk came from: responder | store (None: not known).
    origin: str | None = None
    #: The node that fetched it from the responder (this one, or another via the store).
    fetched_by: str | None = None
    #: HAProxy addresses that staple this certificate themselves (``ocsp-update on``).
    self_stapled: list[str] = field(default_factory=list)
    #: HAProxy addresses that have not loaded this certificate (nothing pushed there).
    not_loaded: list[str] = field(default_factory=list)
    #: Of ``pushed``, where the renewed certificate itself replaced the one HAProxy held
    #: (``--update-certs``).
    certificate_loaded: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, view: CertStatus, action: Action, rec: Record) -> Outcome:
        """The outcome of ``action`` for the certificate ``view`` describes (``status.recorded``
        of its record: the same facts ``status`` reads). Only ``next_due`` reads ``rec``: a
        certificate never scheduled (due 0) says the epoch here, where the view says None."""
        return cls(
            path=view.path,
            action=action,
            name=view.name,
            ocsp_url=view.ocsp_url,
            status=None if view.status == "none" else view.status,  # None: no staple
            this_update=view.this_update,
            next_update=view.next_update,
            next_due=from_epoch(rec.get("due")) if view.ocsp_url else None,
            error=None if action is Action.FETCHED else view.last_error,
            origin=view.origin,
            fetched_by=view.fetched_by,
            self_stapled=list(view.self_stapled),
        )


@dataclass
class RunReport:
    #: One line each, ``<file>: <what went wrong>``; any problem makes the exit code 1.
    problems: list[str] = field(default_factory=list)
    #: One line each, worth saying but not a failure (e.g. a corrupt state moved aside).
    notes: list[str] = field(default_factory=list)
    fetched: int = 0
    #: The one line naming the shared store and why this run gave it up (exit 69).
    store_problem: str | None = None
    #: The staple files this run changed (what the on-change hook is given).
    changed: list[str] = field(default_factory=list)
    #: Builds the per-certificate outcomes when someone asks (a quiet no-op run never does).
    build_outcomes: Callable[[], list[Outcome]] = field(default=list, repr=False)
    #: What the run looked at, and the records it left: ``status.view(report.inventory,
    #: report.state, now)`` reads them without a second scan.
    inventory: Inventory = field(default_factory=Inventory, repr=False)
    load_state: Callable[[], State] = field(default=State, repr=False)

    @cached_property
    def state(self) -> State:
        """The records the run left (loaded when asked, after a run that needed none)."""
        return self.load_state()

    @property
    def ok(self) -> bool:
        return not self.problems

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """One ``Outcome`` per certificate, sorted by path."""
        return self.build_outcomes()
