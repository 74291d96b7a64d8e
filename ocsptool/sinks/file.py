"""The file sink: ``<cert>.ocsp``, written atomically, where HAProxy loads it at start."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ocsptool.errors import OcspToolError
from ocsptool.files import fsync_dir, read_regular, write_atomic
from ocsptool.sinks import Delivery, DeliveryState, Publication


class FileSink:
    name = "file"

    def __init__(self, jobs: int = 8) -> None:
        self.jobs = jobs

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        """Write each staple (in a few threads: each writes its own file, fsynced), then
        fsync each directory once."""
        if not items:
            return []
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, min(self.jobs, len(items))), "write") as pool:
            results = list(pool.map(_write, items))
        for directory in {item.staple_path.parent for item in items}:
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
