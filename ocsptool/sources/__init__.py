"""Sources: where the certificates to staple come from.

A source does two things, cheaply first: ``scan()`` lists candidates with their stat
keys only (all a no-op run reads), and ``target(found)`` parses one candidate into a
``Target`` when it must be looked at. ``DirectorySource`` (certificate files and
directories) is the first; HAProxy configuration discovery is the next. New sources
are added in ``sources_for``, the one place sources are picked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocsptool.scan import Found, ScanResult
from ocsptool.sources.directory import DirectorySource
from ocsptool.sources.haproxy_config import HAProxyConfigSource, Route

if TYPE_CHECKING:
    from ocsptool.target import Target


class Source(Protocol):
    @property
    def routes(self) -> Mapping[str, Route]:
        """Per certificate key, who serves it and its staple file; empty: unknown."""
        ...

    def scan(self) -> ScanResult:
        """The candidates (path, stat keys), the paths that could not be read, and the
        temp files a killed run left (removed under the lock)."""
        ...

    def target(self, found: Found) -> Target:
        """Parse one candidate; raise ``CertificateError`` with a one-line cause."""
        ...


def sources_for(
    paths: Sequence[str],
    extensions: Sequence[str],
    excludes: Sequence[str],
    haproxy_configs: Sequence[Path] = (),
    sockets: Sequence[str] = (),
    *,
    cache: Path | None = None,
) -> list[Source]:
    """The sources of a run: the PATHs, then each HAProxy configuration (read here: a
    HAProxyConfigError when one cannot be read; ``cache`` keeps the reading for the next
    run). Add new sources here."""
    sources: list[Source] = []
    if paths:
        sources.append(DirectorySource(tuple(paths), tuple(extensions), tuple(excludes)))
    if haproxy_configs:
        sources.append(HAProxyConfigSource.read(haproxy_configs, sockets, cache=cache))
    return sources


__all__ = ["DirectorySource", "HAProxyConfigSource", "Route", "Source", "sources_for"]
