"""The file home: ``<cert>.ocsp`` (or the staple file a configuration names), written
atomically by the file sink, where HAProxy loads it at start."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path
from typing import Any

from ocsptool.errors import OcspToolError, WriteError
from ocsptool.files import read_regular, write_atomic
from ocsptool.route import Route, staple_file
from ocsptool.sinks import Delivery, DeliveryState, Publication


class FileHome:
    """Staple files: the route's staple file, else ``<cert>.ocsp`` beside the certificate."""

    missing = "no staple file"
    label = "staple file"

    @staticmethod
    def path(key: str, route: Route) -> Path:
        return Path(staple_file(key, route))

    def read(self, key: str, route: Route) -> bytes | None:
        try:
            return read_regular(self.path(key, route))  # a FIFO must not hang the run
        except FileNotFoundError:
            return None

    def where(self, key: str, route: Route) -> str:
        return str(self.path(key, route))

    def readable(self, key: str) -> bool:
        return os.access(key, os.R_OK)

    def writer(self, jobs: int, now: dt.datetime) -> FileSink:
        return FileSink(jobs)


#: The home of every source that does not say otherwise.
FILE_HOME = FileHome()


class FileSink:
    """Writes in a few threads (each its own file, fsynced), then fsyncs each directory
    once: ``submit`` as each staple arrives (writes overlap the fetches), ``collect`` at
    the end.

    Each directory is opened once (``trust.open_directory``: a symlink on the way is
    followed only when it is safe) and every staple in it is written relative to it."""

    name = "file"

    def __init__(self, jobs: int = 8) -> None:
        from concurrent.futures import Future

        self.jobs = jobs
        self._pool: Any = None
        self._pending: list[tuple[Publication, Future[Delivery]]] = []
        self._directories = _Directories()

    def submit(self, item: Publication) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max(1, self.jobs), "write")
        self._pending.append((item, self._pool.submit(_write, item, self._directories)))

    def collect(self) -> list[Delivery]:
        """The deliveries of everything submitted (waits for the writes)."""
        pending, self._pending = self._pending, []
        results = [future.result() for _, future in pending]
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._directories.sync_and_close()
        return results


class _Directories:
    """The directories staples are written into, each opened once (by whichever thread
    needs it first), fsynced and closed at the end; a refusal is kept as its error."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._open: dict[Path, int | WriteError] = {}

    def get(self, staple: Path) -> int:
        """The open directory of ``staple``; raises ``WriteError`` (why not)."""
        from ocsptool.files import explain
        from ocsptool.trust import Untrusted, open_directory

        directory = staple.parent
        with self._lock:
            found = self._open.get(directory)
            if found is None:
                try:
                    found = open_directory(str(directory))
                except Untrusted as e:
                    found = WriteError(str(e))
                except OSError as e:
                    found = WriteError(explain(e, directory))
                self._open[directory] = found
        if isinstance(found, WriteError):
            raise WriteError(f"cannot write {staple}: {found}")
        return found

    def sync_and_close(self) -> None:
        with self._lock:
            opened, self._open = self._open, {}
        for fd in opened.values():
            if isinstance(fd, int):
                with contextlib.suppress(OSError):  # an O_PATH descriptor cannot fsync
                    os.fsync(fd)
                os.close(fd)


def _write(item: Publication, directories: _Directories) -> Delivery:
    if item.staple_path is None:  # a publication for another home: never a guessed path
        return Delivery(item.key, DeliveryState.FAILED, "no staple file to write")
    try:
        directory = directories.get(item.staple_path)
        write_atomic(item.staple_path, item.der, sync_dir=False, directory=directory)
        inode = os.stat(item.staple_path.name, dir_fd=directory).st_ino
    except OcspToolError as e:
        return Delivery(item.key, DeliveryState.FAILED, str(e))
    except OSError as e:
        return Delivery(item.key, DeliveryState.FAILED, f"cannot write {item.staple_path}: {e}")
    return Delivery(item.key, DeliveryState.PUBLISHED, inode=inode)
