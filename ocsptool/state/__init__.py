"""The state file: each certificate's record (``records``), the run lock and the last run
(``lock``), the fresh index a run with nothing due reads (``file``), and what each event of
a run does to a record (``events``). (Not a fleet's shared staple store: that is
``ocsptool.fleet``.)

``state_file(path)`` gives the run its ``StateFile``: the JSON file beside its lock and
index by default; another kind of state is one module and one line there.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ocsptool.state.records import (
    VERSION,
    Record,
    StapleRecord,
    State,
    default_path,
    load,
    save,
    valid_record,
)

if TYPE_CHECKING:
    from ocsptool.state.index import FreshIndex


class StateFile(Protocol):
    def locked(self) -> AbstractContextManager[None]:
        """Hold the run lock for a run; raise ``LockHeld`` at once if another run has it."""
        ...

    def load(self, now: dt.datetime, *, read_only: bool = False) -> State:
        """The records. ``read_only``: take no lock, move nothing aside (status, check)."""
        ...

    def index(self) -> FreshIndex | None:
        """The fresh index (``plan.all_fresh``), or None when there is none that is up to
        date: then the run loads the records. May always return None."""
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


def state_file(path: Path) -> StateFile:
    """The state a run keeps at ``path``. Other kinds of state are chosen here."""
    from ocsptool.state.file import JsonStateFile

    return JsonStateFile(path)


__all__ = [
    "VERSION",
    "Record",
    "StapleRecord",
    "State",
    "StateFile",
    "default_path",
    "load",
    "save",
    "state_file",
    "valid_record",
]
