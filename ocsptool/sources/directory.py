"""The directory source: certificate files and directories named on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool import scan as scanning
from ocsptool.scan import Found, ScanResult

if TYPE_CHECKING:
    from ocsptool.target import Target


@dataclass(frozen=True)
class DirectorySource:
    paths: tuple[str, ...]
    extensions: tuple[str, ...] = scanning.DEFAULT_EXTENSIONS
    excludes: tuple[str, ...] = ()

    def scan(self) -> ScanResult:
        return scanning.scan(self.paths, self.extensions, self.excludes)

    def target(self, found: Found) -> Target:
        from ocsptool.certs import parse_bundle
        from ocsptool.target import target_of

        return target_of(parse_bundle(Path(found.path)), found.path)
