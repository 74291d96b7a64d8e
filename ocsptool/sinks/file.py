"""The file home: ``<cert>.ocsp`` (or the staple file a configuration names), written
atomically by the file sink, where HAProxy loads it at start."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocsptool.errors import OcspToolError
from ocsptool.files import fsync_dir, read_regular, write_atomic
from ocsptool.sinks import Delivery, DeliveryState, Publication

if TYPE_CHECKING:
    from ocsptool.route import Route


class FileHome:
    """Staple files: the route's staple file, else ``<cert>.ocsp`` beside the certificate."""

    missing = "no staple file"
    label = "staple file"

    @staticmethod
    def path(key: str, route: Route) -> Path:
        return Path(route.staple_path or key + ".ocsp")

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
    once. ``publish`` writes a batch; a run that streams uses ``submit`` as each staple
    arrives (writes overlap the fetches) and ``collect`` at the end."""

    name = "file"

    def __init__(self, jobs: int = 8) -> None:
        from concurrent.futures import Future

        self.jobs = jobs
        self._pool: Any = None
        self._pending: list[tuple[Publication, Future[Delivery]]] = []

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        for item in items:
            self.submit(item)
        return self.collect()

    def submit(self, item: Publication) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max(1, self.jobs), "write")
        self._pending.append((item, self._pool.submit(_write, item)))

    def collect(self) -> list[Delivery]:
        """The deliveries of everything submitted (waits for the writes)."""
        pending, self._pending = self._pending, []
        results = [future.result() for _, future in pending]
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for directory in {item.staple_path.parent for item, _ in pending if item.staple_path}:
            fsync_dir(directory)
        return results

    @staticmethod
    def read(item: Publication) -> bytes:
        """The staple on disk (FIFO-safe); raises ``OSError``."""
        assert item.staple_path is not None, "the file sink writes staple files only"
        return read_regular(item.staple_path)


def _write(item: Publication) -> Delivery:
    if item.staple_path is None:  # a publication for another home: never a guessed path
        return Delivery(item.key, DeliveryState.FAILED, "no staple file to write")
    try:
        write_atomic(item.staple_path, item.der, sync_dir=False)
        inode = os.stat(item.staple_path).st_ino
    except OcspToolError as e:
        return Delivery(item.key, DeliveryState.FAILED, str(e))
    except OSError as e:
        return Delivery(item.key, DeliveryState.FAILED, f"cannot write {item.staple_path}: {e}")
    return Delivery(item.key, DeliveryState.PUBLISHED, inode=inode)
