"""Stores: where the records and the last run live, and who holds the run lock.

A store is the last stage of a run. ``JsonFileStore`` (the state file beside its lock
file) is the default; a network store for a fleet implements the same ``Store``
Protocol and is chosen in ``store_for``, the one place stores are picked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ocsptool.plan import IndexEntry
from ocsptool.state import State
from ocsptool.store.json_file import JsonFileStore


class Store(Protocol):
    def locked(self) -> AbstractContextManager[None]:
        """Hold the run lock for a run; raise ``LockHeld`` at once if another run has it."""
        ...

    def load(self, now: dt.datetime, *, read_only: bool = False) -> State:
        """The records. ``read_only``: take no lock, move nothing aside (status, check)."""
        ...

    def index(self) -> Mapping[str, IndexEntry] | None:
        """The fresh index (``plan.all_fresh``), or None when the store has none that is
        up to date: then the run loads the records. A store may always return None."""
        ...

    def save(self, state: State) -> None:
        """Write the records if they changed (``state.dirty``); only under ``locked()``."""
        ...

    def record_run(self, when: int, ok: bool) -> None:
        """Remember this run (epoch seconds, success); only under ``locked()``."""
        ...

    def last_run(self) -> dict[str, Any]:
        """The last run recorded: ``{"time": epoch, "ok": bool}``, or {}."""
        ...


def store_for(state_path: Path) -> Store:
    """The store a run uses. New stores (e.g. a shared Redis one) are chosen here."""
    return JsonFileStore(state_path)


__all__ = ["JsonFileStore", "Store", "store_for"]
