"""Find certificate files: one ``os.scandir`` per directory, one ``stat`` per certificate.

HAProxy's side files (.ocsp .issuer .key .sctl) are never taken for certificates; their
presence is read from the same directory listing, so the scan costs no extra calls. A
multi-cert bundle's parts (``site.pem.rsa``, ``.ecdsa``, ``.dsa``) are certificates of
their own, as HAProxy loads them from a directory.

Symlinks (on a PATH, to a subdirectory, to a certificate) are followed only when
``trust.link_problem`` allows it: owned by root or this run's user, or by the owner of
what they point to. A refused one is a problem (one line) and the scan goes on without it.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ocsptool import trust
from ocsptool.files import READ_DENIED, is_temp_name

DEFAULT_EXTENSIONS = (".pem", ".crt")
#: The endings of a multi-cert bundle's parts, after a certificate's own ending.
BUNDLE_PARTS = (".rsa", ".ecdsa", ".dsa")
SIDE_FILES = (".ocsp", ".issuer", ".key", ".sctl")
_WANTED_SIDES = (".ocsp", ".issuer")

#: (device, inode, size, mtime_ns): a file whose key is unchanged is not parsed again.
#: A list, as the state file stores it, so the two compare without conversion.
StatKey = list[int]
#: A directory's names -> their inodes (``side_files``).
Inodes = dict[str, int]


class Found(NamedTuple):
    """One certificate file. A NamedTuple: 10,000 of them are made on every run."""

    path: str
    stat: StatKey
    #: Inode of ``<path>.ocsp``, or None when there is no staple file.
    ocsp_inode: int | None
    #: Stat key of ``<path>.issuer``, or None when there is none.
    issuer_stat: StatKey | None


@dataclass
class ScanResult:
    found: list[Found] = field(default_factory=list)
    #: (path, one-line problem)
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: Temp files a killed run left behind.
    leftovers: list[str] = field(default_factory=list)


def stat_key(st: os.stat_result) -> StatKey:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def scan(
    paths: Iterable[str],
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    excludes: Sequence[str] = (),
) -> ScanResult:
    """Certificate files under ``paths`` (files are taken as given, whatever their name)."""
    result = ScanResult()
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    exts = (*extensions, *(e + part for e in extensions for part in BUNDLE_PARTS))
    who = trust.running()
    for raw in paths:
        path = os.path.abspath(raw)
        if (refused := trust.path_problem(path, who)) is not None:
            result.problems.append(refused)
            continue
        try:
            st = os.stat(path)
        except FileNotFoundError:
            result.problems.append((path, "no such file or directory"))
            continue
        except OSError as e:
            result.problems.append((path, _describe(e)))
            continue
        if os.path.isdir(path):
            _scan_dir(path, exts, excludes, result, seen=(seen_dirs, seen_files), who=who)
        elif path not in seen_files:
            seen_files.add(path)
            result.found.append(
                Found(
                    path, stat_key(st), _side_inode(path + ".ocsp"), stat_key_at(path + ".issuer")
                )
            )
    return result


def _scan_dir(
    directory: str,
    exts: tuple[str, ...],
    excludes: Sequence[str],
    result: ScanResult,
    *,
    seen: tuple[set[tuple[int, int]], set[str]],
    who: trust.Who,
) -> None:
    seen_dirs, seen_files = seen
    subdirs: list[str] = []
    candidates: list[os.DirEntry[str]] = []
    #: The side files a certificate's row needs: ``<name>.ocsp`` and ``<name>.issuer``.
    sides: dict[str, os.DirEntry[str]] = {}
    try:
        st = os.stat(directory)
        if (st.st_dev, st.st_ino) in seen_dirs:
            return  # a symlink loop, or the same tree named twice
        seen_dirs.add((st.st_dev, st.st_ino))
        with os.scandir(directory) as it:
            for entry in it:  # one pass, no dict of every entry: 20,000+ on a big host
                name = entry.name
                if name[0] == ".":  # hidden: never a certificate; maybe a killed run's temp
                    if is_temp_name(name):
                        result.leftovers.append(entry.path)
                elif name.endswith(_WANTED_SIDES):
                    sides[name] = entry
                elif name.endswith(SIDE_FILES) or (
                    excludes and any(fnmatch.fnmatch(name, p) for p in excludes)
                ):
                    continue
                elif name.endswith(exts):
                    candidates.append(entry)
                else:
                    try:
                        if entry.is_dir() and not _refused(entry, who, result):
                            subdirs.append(entry.path)
                    except OSError as e:
                        result.problems.append((entry.path, _describe(e)))
    except OSError as e:
        result.problems.append((directory, _describe(e)))
        return
    found = result.found.append  # the hot loop: 10,000+ iterations on a big host
    new = tuple.__new__  # Found(...) without its Python-level __new__: 10,000 calls
    get_side = sides.get
    candidates.sort(key=_name)
    for entry in candidates:
        path = entry.path
        if path in seen_files:
            continue
        try:
            st = entry.stat()
            if entry.is_symlink() and _refused(entry, who, result):
                continue
        except OSError as e:
            result.problems.append((path, _describe(e)))
            continue
        if stat.S_ISDIR(st.st_mode):
            subdirs.append(path)
            continue
        seen_files.add(path)
        name = entry.name
        ocsp = get_side(name + ".ocsp")
        found(
            new(
                Found,
                (
                    path,
                    [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns],
                    ocsp.inode() if ocsp is not None else None,
                    stat_key_at(path + ".issuer") if name + ".issuer" in sides else None,
                ),
            )
        )
    for sub in sorted(subdirs):
        _scan_dir(sub, exts, excludes, result, seen=seen, who=who)


def _refused(entry: os.DirEntry[str], who: trust.Who, result: ScanResult) -> bool:
    """Whether ``entry``, a symlink, may not be followed (then said in ``result``)."""
    if not entry.is_symlink():
        return False
    uid = entry.stat(follow_symlinks=False).st_uid
    if uid in who.users:
        return False
    why = trust.link_problem(entry.path, os.readlink(entry.path), uid, entry.stat().st_uid, who)
    if why is not None:
        result.problems.append((entry.path, why))
    return why is not None


def side_files(directory: str, endings: tuple[str, ...] | None = _WANTED_SIDES) -> Inodes | None:
    """The inode of each name in ``directory`` that ends with one of ``endings`` (every
    name with None), from one ``scandir`` and no ``stat``; None when it cannot be listed.

    Names and ints only: a ``DirEntry`` per entry holds its full path too (a listing of
    100,000 certificates and their staples took 57 MB as ``DirEntry``s, 13 MB so)."""
    try:
        with os.scandir(directory) as it:
            if endings is None:
                return {entry.name: entry.inode() for entry in it}
            return {name: entry.inode() for entry in it if (name := entry.name).endswith(endings)}
    except OSError:
        return None


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _side_inode(path: str) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def stat_key_at(path: str) -> StatKey | None:
    """The stat key of ``path`` (following symlinks), None if it cannot be stat'ed."""
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


def _describe(error: OSError) -> str:
    if isinstance(error, PermissionError):
        return READ_DENIED
    if isinstance(error, FileNotFoundError):
        return "no such file or directory (a dangling symlink?)"
    if error.strerror and "symbolic links" in error.strerror:
        return "too many levels of symbolic links (a symlink loop)"
    return error.strerror or str(error)
