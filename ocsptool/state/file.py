"""The default store: the JSON state file, ``<state>.lock`` for the lock and last run,
and ``<state>.index``: the fresh index, a slim JSON copy of what a no-op run checks,
valid only for the exact state file it was written with (its inode, size and mtime).

The index is believed (a run that finds everything fresh by it does nothing), so it is
read only when no other user could have written it (``files.read_own``: owned by this
user, root or the state directory's owner, not writable by group or others, no symlink),
and decoded with bounded work: JSON, whose cost is linear in the bytes, and at most about
twice the state file's size of them (an index is smaller than the state it indexes). A
marshal index could declare a list of 2^31 items in five bytes and stall every run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ocsptool import state as statefile
from ocsptool.errors import OcspToolError
from ocsptool.files import MAX_READ_BYTES, read_own, write_atomic
from ocsptool.state import State
from ocsptool.state.index import FreshIndex, index_entry
from ocsptool.state.lock import RunLock, last_run, run_lock
from ocsptool.trust import Untrusted

#: 1 was marshal: never decoded again; 2 a JSON list per entry; 3 int64 columns.
_INDEX_VERSION = 4
#: The index may be this much larger than its state file (a tiny state, small entries).
_INDEX_SLACK = 64 * 1024


class JsonStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: RunLock | None = None
        self._index_valid = False
        self._index_foreign = False
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

    def index(self) -> FreshIndex | None:
        """The fresh index, if it matches the state file as it is now (and only we could
        have written it: see the module's doc; one warning line when another could)."""
        self._index_valid = False
        try:
            st = os.stat(self.path)
            limit = min(MAX_READ_BYTES, 2 * st.st_size + _INDEX_SLACK)
            data = read_own(self.index_path, limit)
        except Untrusted as e:
            self._index_foreign = True
            from ocsptool.console import line

            line(f"{self.index_path}: not used: it {e} (the state file is read instead)")
            return None
        except OSError:  # missing, not a regular file, a symlink, larger than the limit
            return None
        try:
            text = data.decode()
            del data  # not kept while the text is parsed, nor the text after
            version, key, *packed = json.loads(text)
            del text
            if (version, key) != (_INDEX_VERSION, [st.st_ino, st.st_size, st.st_mtime_ns]):
                return None
            index = FreshIndex.loads(packed)
        except (ValueError, TypeError, RecursionError):
            return None
        self._index_valid = True
        return index

    def _write_index(self, state: State) -> None:
        with contextlib.suppress(OSError, OcspToolError):  # only a cache: never fails a run
            if self._index_foreign:  # never keep a planted file's owner or mode
                self.index_path.unlink()
                self._index_foreign = False
            st = os.stat(self.path)
            index = FreshIndex.of({key: index_entry(rec) for key, rec in state.certs.items()})
            key = [st.st_ino, st.st_size, st.st_mtime_ns]
            value = [_INDEX_VERSION, key, *index.dumps()]
            data = json.dumps(value, separators=(",", ":")).encode()
            write_atomic(self.index_path, data, mode=0o600, sync_dir=False)
            self._index_valid = True

    def record_run(self, when: int, ok: bool) -> None:
        assert self._lock is not None, "record_run outside locked()"
        self._lock.record_run(when, ok)

    def last_run(self) -> dict[str, Any]:
        return last_run(self.path)
