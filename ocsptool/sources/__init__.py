"""Sources: where the certificates to staple come from.

A source does two things, cheaply first: ``scan()`` lists candidates with their stat
keys only (all a no-op run reads), and ``target(found)`` parses one candidate into a
``Target`` when it must be looked at. ``DirectorySource`` (certificate files and
directories) is the first; HAProxy configuration discovery is the next. New sources
are added in ``sources_for``, the one place sources are picked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ocsptool.scan import Found, ScanResult
from ocsptool.sources.directory import DirectorySource

if TYPE_CHECKING:
    from ocsptool.target import Target


class Source(Protocol):
    def scan(self) -> ScanResult:
        """The candidates (path, stat keys), the paths that could not be read, and the
        temp files a killed run left (removed under the lock)."""
        ...

    def target(self, found: Found) -> Target:
        """Parse one candidate; raise ``CertificateError`` with a one-line cause."""
        ...


def sources_for(
    paths: Sequence[str], extensions: Sequence[str], excludes: Sequence[str]
) -> list[Source]:
    """The sources of a run. Add new sources here."""
    return [DirectorySource(tuple(paths), tuple(extensions), tuple(excludes))]


__all__ = ["DirectorySource", "Source", "sources_for"]
