"""The default store: the JSON state file, ``<state>.lock`` for the lock and last run,
and ``<state>.index``: the fresh index, a slim marshal copy of what a no-op run checks,
valid only for the exact state file it was written with (its inode, size and mtime)."""

from __future__ import annotations

import contextlib
import datetime as dt
import marshal
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ocsptool import state as statefile
from ocsptool.errors import OcspToolError
from ocsptool.files import RunLock, last_run, read_regular, run_lock, write_atomic
from ocsptool.plan import IndexEntry, index_entry
from ocsptool.state import State

_INDEX_VERSION = 1


class JsonFileStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: RunLock | None = None
        self._index_valid = False
        self.index_path = path.with_name(path.name + ".index")

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
        elif self._index_valid:
            return
        self._write_index(state)

    def index(self) -> dict[str, IndexEntry] | None:
        """The fresh index, if it matches the state file as it is now."""
        self._index_valid = False
        try:
            st = os.stat(self.path)
            # Only lists, tuples, ints and strs are ever written; marshal runs no code, and
            # whoever can write this 0600 file beside the state can write the state too.
            data = read_regular(self.index_path)
            version, key, entries = marshal.loads(data)  # noqa: S302
        except (OSError, ValueError, EOFError, TypeError):
            return None
        if (version, key) != (_INDEX_VERSION, [st.st_ino, st.st_size, st.st_mtime_ns]):
            return None
        if not isinstance(entries, dict):
            return None
        self._index_valid = True
        return entries

    def _write_index(self, state: State) -> None:
        with contextlib.suppress(OSError, OcspToolError):  # only a cache: never fails a run
            st = os.stat(self.path)
            entries = {key: index_entry(rec) for key, rec in state.certs.items()}
            key = [st.st_ino, st.st_size, st.st_mtime_ns]
            data = marshal.dumps((_INDEX_VERSION, key, entries))
            write_atomic(self.index_path, data, mode=0o600, sync_dir=False)
            self._index_valid = True

    def record_run(self, when: int, ok: bool) -> None:
        assert self._lock is not None, "record_run outside locked()"
        self._lock.record_run(when, ok)

    def last_run(self) -> dict[str, Any]:
        return last_run(self.path)
