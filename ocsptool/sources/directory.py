"""The directory source: certificate files and directories named on the command line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool import scan as scanning
from ocsptool.scan import Found, ScanResult

if TYPE_CHECKING:
    from ocsptool.sources.haproxy_config import Route
    from ocsptool.target import Target


@dataclass(frozen=True)
class DirectorySource:
    paths: tuple[str, ...]
    extensions: tuple[str, ...] = scanning.DEFAULT_EXTENSIONS
    excludes: tuple[str, ...] = ()

    def scan(self) -> ScanResult:
        from ocsptool.sources.haproxy_config import explicit_paths

        paths, problems = explicit_paths(self.paths)
        result = scanning.scan(paths, self.extensions, self.excludes)
        result.problems[:0] = problems
        return result

    @property
    def routes(self) -> Mapping[str, Route]:
        """Who serves each certificate: unknown here (every socket gets every staple)."""
        return {}

    def target(self, found: Found) -> Target:
        from ocsptool.certs import parse_bundle
        from ocsptool.target import target_of

        return target_of(parse_bundle(Path(found.path)), found.path)
