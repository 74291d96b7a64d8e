"""The file sink: ``<cert>.ocsp``, written atomically, where HAProxy loads it at start."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ocsptool.errors import OcspToolError
from ocsptool.files import fsync_dir, read_regular, write_atomic
from ocsptool.sinks import Delivery, DeliveryState, Publication


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
        for directory in {item.staple_path.parent for item, _ in pending}:
            fsync_dir(directory)
        return results

    @staticmethod
    def read(item: Publication) -> bytes:
        """The staple on disk (FIFO-safe); raises ``OSError``."""
        return read_regular(item.staple_path)


def _write(item: Publication) -> Delivery:
    try:
        write_atomic(item.staple_path, item.der, sync_dir=False)
        inode = os.stat(item.staple_path).st_ino
    except OcspToolError as e:
        return Delivery(item.key, DeliveryState.FAILED, str(e))
    except OSError as e:
        return Delivery(item.key, DeliveryState.FAILED, f"cannot write {item.staple_path}: {e}")
    return Delivery(item.key, DeliveryState.PUBLISHED, inode=inode)
