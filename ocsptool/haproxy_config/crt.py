"""What one ``crt`` argument loads, by HAProxy's rules (tests/test_haproxy_config.py proves
them on every binary of the matrix):

- An existing file: that file, under the path as written (``crt-base/x.pem`` with the
  crt-base's trailing slash kept: ``/etc/certs//x.pem``).
- A missing file whose ``.dsa``, ``.ecdsa`` or ``.rsa`` siblings exist (a multi-cert
  bundle, unless ``ssl-load-extra-files`` leaves out ``bundle``): one certificate per part,
  loaded and listed by ``show ssl cert`` under its full name ``site.pem.rsa``, with its own
  ``site.pem.rsa.ocsp``; HAProxy picks the part per client key type.
- A directory: every entry, in byte order, except names starting with ``.`` and names
  ending in ``.key``, ``.issuer``, ``.ocsp`` or ``.sctl``; entries that are not regular
  files after following symlinks (subdirectories, FIFOs, symlinks to directories) are
  ignored: HAProxy does not descend. Any other file must be a certificate (``.txt``,
  ``.csr``, ``.pem~``, ``.bak``: HAProxy refuses to start). Names are ``DIR/entry`` with
  the argument's trailing slashes dropped. Bundle parts in a directory are ordinary
  files there, each under its own name. An empty directory: "no SSL certificate".
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

KEY_TYPES = ("dsa", "ecdsa", "rsa")
SKIPPED_SUFFIXES = frozenset((".key", ".issuer", ".ocsp", ".sctl"))
#: Directories past this many entries are cut (bounded work on a hostile tree).
MAX_DIRECTORY_ENTRIES = 200_000


@dataclass(frozen=True, slots=True)
class Expansion:
    """The names one ``crt`` argument loads, or why HAProxy would refuse to start."""

    names: tuple[str, ...]
    problem: str | None = None
    #: The problem is that this user may not look (permission denied): HAProxy, started
    #: as root, may; what the path loads is not known here.
    denied: bool = False


def expand_crt(path: str, *, bundles: bool = True, directories: bool = True) -> Expansion:
    """Expand ``path`` (already joined with crt-base) as HAProxy's ``crt`` does."""
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        if bundles:
            parts = tuple(f"{path}.{kind}" for kind in KEY_TYPES if _exists(f"{path}.{kind}"))
            if parts:
                return Expansion(parts)
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Expansion(
            (),
            f"unable to stat SSL certificate from file '{path}': {cause}",
            denied=isinstance(exc, PermissionError),
        )
    if stat.S_ISDIR(info.st_mode):
        if not directories:
            return Expansion((), f"'{path}' is a directory, not a certificate")
        return _directory(path)
    return Expansion((path,))


def _exists(path: str) -> bool:
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def _directory(path: str) -> Expansion:
    base = path.rstrip("/") or "/"
    try:
        with os.scandir(path) as entries:
            names = []
            for count, entry in enumerate(entries):
                if count >= MAX_DIRECTORY_ENTRIES:
                    return Expansion((), f"'{path}': more than {MAX_DIRECTORY_ENTRIES} entries")
                names.append(entry.name)
    except OSError as exc:
        return Expansion(
            (),
            f"unable to scan directory '{path}': {exc.strerror or exc}",
            denied=isinstance(exc, PermissionError),
        )
    loaded: list[str] = []
    for name in sorted(names, key=os.fsencode):
        if name.startswith(".") or os.path.splitext(name)[1] in SKIPPED_SUFFIXES:
            continue
        full = f"{base}/{name}"
        try:
            mode = os.stat(full).st_mode
        except OSError as exc:
            return Expansion(
                tuple(loaded), f"unable to stat SSL certificate from file '{full}': {exc.strerror}"
            )
        if stat.S_ISREG(mode):
            loaded.append(full)
    if not loaded:
        return Expansion((), f"'{path}': no certificate in this directory")
    return Expansion(tuple(loaded))
