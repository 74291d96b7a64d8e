"""The HAProxy version matrix: whatever binaries are there, each named by its version.

- ``matrix()``: Debian's ``haproxy`` (``PATH``, then the usual sbin directories) plus
  every ``../shared/haproxy/*/haproxy`` beside the project, found by glob, or plus the
  binaries ``$HAPROXY_VERSIONS`` names (space-separated) instead of the glob. A version
  added to ``../shared/haproxy/`` is tested with no code change.
- ``candidates()``: what this pytest run tests: ``$OCSPTOOL_HAPROXY`` alone during a
  ``make matrix`` pass (one binary per pass), else the whole matrix.
- ``of_release(binaries, "3.4")``: the binaries of one release line, for the tests that
  prove what only that version does (reported as not run, with the reason, when none is
  given).

A matrix entry that is not an executable, or whose ``-v`` fails, raises ``MatrixError``:
under CI an empty or unstartable entry must fail the run, never skip.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Where the shared binaries live: ``<project>/../shared/haproxy/<dir>/haproxy``.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "haproxy"
_DEBIAN = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")


class MatrixError(RuntimeError):
    """A matrix entry that cannot be used (missing, not executable, ``-v`` fails)."""


@dataclass(frozen=True)
class Binary:
    path: str
    #: The version it reports, e.g. ``3.0.11`` (``2.6.12-1+deb12u2`` is ``2.6.12``).
    version: str

    @property
    def release(self) -> tuple[int, int]:
        """The release line, e.g. (3, 0)."""
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    def __str__(self) -> str:
        return f"haproxy {self.version}"


def version_of(path: str) -> str:
    """The version ``path -v`` reports (``HAProxy version 3.0.11-9e587df ...`` -> 3.0.11)."""
    if not os.access(path, os.X_OK):
        raise MatrixError(f"{path}: not an executable haproxy")
    try:
        out = subprocess.run(
            [path, "-v"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise MatrixError(f"{path}: 'haproxy -v' failed: {e}") from None
    found = re.search(r"version (\d+\.\d+(?:\.\d+)?)", out)
    if found is None:
        raise MatrixError(f"{path}: 'haproxy -v' reports no version: {out[:200]!r}")
    return found[1]


def debian_binary() -> str | None:
    """The system's haproxy (Debian's package): ``PATH``, then the usual sbin dirs."""
    found = shutil.which("haproxy")
    if found:
        return found
    return next((path for path in _DEBIAN if os.access(path, os.X_OK)), None)


def extra_paths() -> list[str]:
    """The binaries beside Debian's: ``$HAPROXY_VERSIONS`` when set, else the glob."""
    given = os.environ.get("HAPROXY_VERSIONS")
    if given is not None:
        return [os.path.abspath(p) for p in given.split()]
    return sorted(glob.glob(str(SHARED / "*" / "haproxy")))


def matrix() -> list[Binary]:
    """Debian's haproxy (when installed) and every extra binary, each once, by version."""
    paths = [p for p in (debian_binary(), *extra_paths()) if p]
    unique = list(dict.fromkeys(os.path.realpath(p) for p in paths))
    return [Binary(path, version_of(path)) for path in unique]


def candidates() -> list[Binary]:
    """The binaries this run tests: ``$OCSPTOOL_HAPROXY`` alone (a ``make matrix`` pass),
    else the whole matrix."""
    chosen = os.environ.get("OCSPTOOL_HAPROXY")
    if chosen:
        path = os.path.abspath(chosen)
        return [Binary(path, version_of(path))]
    return matrix()


def of_release(binaries: list[Binary], release: str) -> list[Binary]:
    """The binaries of one release line (``"3.4"``) or one exact version (``"2.8.0"``)."""
    wanted = release.split(".")
    return [b for b in binaries if b.version.split(".")[: len(wanted)] == wanted]


def not_given(release: str) -> str:
    """Why a test of what only ``release`` does was not run."""
    return (
        f"not run: no HAProxy {release} binary given (CI proves the matrix it has; run "
        f"`make matrix HAPROXY_VERSIONS=/path/to/haproxy-{release}/haproxy` to prove it)"
    )
