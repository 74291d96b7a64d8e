"""The default store: the JSON state file, and ``<state>.lock`` for the lock and last run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ocsptool import state as statefile
from ocsptool.files import RunLock, last_run, run_lock
from ocsptool.state import State


class JsonFileStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: RunLock | None = None

    @contextmanager
    def locked(self) -> Iterator[None]:
        with run_lock(self.path) as lock:
            self._lock = lock
            try:
                yield
            finally:
                self._lock = None

    def load(self, now: dt.datetime, *, read_only: bool = False) -> State:
        return statefile.load(self.path, now, read_only=read_only)

    def save(self, state: State) -> None:
        if state.dirty:
            statefile.save(self.path, state)

    def record_run(self, when: int, ok: bool) -> None:
        assert self._lock is not None, "record_run outside locked()"
        self._lock.record_run(when, ok)

    def last_run(self) -> dict[str, Any]:
        return last_run(self.path)
