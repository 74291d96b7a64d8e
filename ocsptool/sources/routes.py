"""Scanning the certificates a configuration routes (HAProxy's, nginx's): for each, its stat
key, the inode of the staple file its servers read (beside it, or the one a configuration
names) and the stat key of its issuer file. As cheap as the directory scan: one listing
per directory that holds certificates or staples, one ``stat`` per certificate.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ocsptool.route import Route
from ocsptool.scan import Found, Inodes, ScanResult, stat_key_at
from ocsptool.sources.types import Survey


def survey_of(
    scanned: ScanResult,
    routes: Mapping[str, Route],
    sockets: tuple[str, ...],
    warnings: tuple[str, ...],
    **more: Any,
) -> Survey:
    """A configuration source's survey: what ``scan_routes`` found, its routes and sockets,
    and what this user may not read (``status`` reports those from the state)."""
    return Survey(
        found=scanned.found,
        routes=routes,
        sockets=sockets,
        warnings=warnings,
        problems=scanned.problems,
        **more,
    )


def scan_routes(
    routes: Iterable[tuple[str, Route]],
    problems: Iterable[tuple[str, str]],
    *,
    skip: Collection[str] = (),
    missing: str | None = None,
) -> ScanResult:
    """Scan ``routes`` (key, route); ``problems`` the configuration already has come first.
    ``skip``: keys not to look at (this user may not); ``missing``: what a certificate that
    is not there means for its server (said after "no such file or directory")."""
    from ocsptool.scan import _describe, side_files

    result = ScanResult(problems=list(problems))
    #: Per directory of certificates: its ``.ocsp`` and ``.issuer`` files' inodes.
    listings: dict[str, Inodes | None] = {}
    #: Per directory of staple files a configuration names: every name's inode.
    named: dict[str, Inodes | None] = {}
    found = result.found.append
    new = tuple.__new__
    stat_of = os.stat
    for key, route in routes:
        if skip and key in skip:
            continue
        directory, name = key.rsplit("/", 1)
        if directory in listings:
            listing = listings[directory]
        else:
            listing = listings[directory] = side_files(directory or "/")
        try:
            st = stat_of(key)
        except OSError as e:
            why = _describe(e)  # READ_DENIED as it is: status reports it from the state
            if missing and isinstance(e, FileNotFoundError):
                why = f"{'no such file or directory' if listing is not None else why}; {missing}"
            result.problems.append((key, why))
            continue
        staple_path = route.staple_path
        if staple_path is None:
            slisting, sname = listing, name + ".ocsp"
        else:
            sdir, sname = staple_path.rsplit("/", 1)
            if sdir not in named:
                named[sdir] = side_files(sdir or "/", None)
            slisting = named[sdir]
        issuer_path = route.issuer_path  # the issuer file a configuration names, if any
        if issuer_path is not None:
            issuer = stat_key_at(issuer_path)
        elif listing is not None and name + ".issuer" not in listing:
            issuer = None
        else:
            issuer = stat_key_at(key + ".issuer")
        stat = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
        found(new(Found, (key, stat, slisting.get(sname) if slisting else None, issuer)))
    return result


def absolute(path: str) -> str:
    """``os.path.abspath``, skipped for a path that is plainly absolute and normal."""
    if path[:1] == "/" and "//" not in path and "/." not in path:
        return path
    return os.path.abspath(path)


def split(problem: str) -> tuple[str, str]:
    """``file:line: why`` as (``file:line``, why)."""
    where, _, why = problem.partition(": ")
    return where, why
