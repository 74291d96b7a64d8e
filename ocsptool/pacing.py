"""Per-host pacing: at most ``per_host`` requests in flight to one responder host.

The global ``--jobs`` pool bounds requests overall; one CA's responder serving thousands
of certificates should not see all of them at once. Make one ``HostLimiter`` per run and
pass it to ``fetch.fetch_first``: nothing here is global.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

#: Config ``jobs_per_host`` when unset: half the default ``--jobs``, as browsers do per host.
DEFAULT_JOBS_PER_HOST = 4


def host_of(url: str) -> str:
    """The key requests are paced by: lower-case host and port (the scheme's default if none)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    return f"{host}:{port}"


def jobs_per_host_problem(value: object) -> str | None:
    """Why ``value`` cannot be ``jobs_per_host``, or None (for config checks)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number without quotes, e.g. jobs_per_host = 4"
    if value < 1:
        return "must be at least 1"
    return None


class HostLimiter:
    """A semaphore per responder host, made on first use; safe to share between threads."""

    def __init__(self, per_host: int = DEFAULT_JOBS_PER_HOST) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host = per_host
        self._lock = threading.Lock()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}

    def _semaphore(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            semaphore = self._hosts.get(host)
            if semaphore is None:
                semaphore = self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return semaphore

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of ``url``'s host's slots for the duration of the block."""
        semaphore = self._semaphore(host_of(url))
        with semaphore:
            yield
