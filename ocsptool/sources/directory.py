"""The directory source: certificate files, directories, crt-lists and multi-cert bundle
base names named as PATHs (on the command line, or ``paths`` in the config file).

Each PATH certificate's staple is ``<cert>.ocsp`` and goes to every -s socket.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocsptool import scan as scanning
from ocsptool.files import READ_DENIED
from ocsptool.route import Route
from ocsptool.scan import Found
from ocsptool.sources.types import Survey, file_target

if TYPE_CHECKING:
    from ocsptool.target import Target

#: A file with one of these endings is always read as a crt-list when it is not PEM/DER.
CRT_LIST_ENDINGS = (".txt", ".list", ".lst", ".crtlist", ".crt-list")


@dataclass(frozen=True)
class DirectorySource:
    paths: tuple[str, ...]
    extensions: tuple[str, ...] = scanning.DEFAULT_EXTENSIONS
    excludes: tuple[str, ...] = ()

    def survey(self) -> Survey:
        paths, problems = explicit_paths(self.paths)
        result = scanning.scan(paths, self.extensions, self.excludes)
        problems += result.problems
        return Survey(found=result.found, problems=problems, leftovers=result.leftovers)

    def target(self, found: Found, route: Route) -> Target:
        return file_target(found, route)


def explicit_paths(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """PATHs as the directory scan takes them, with crt-lists and bundle base names
    expanded: a file whose first line is not PEM or DER is read as a crt-list (relative
    entries under the list's directory), when it may steer this run (``trust``); a
    missing ``site.pem`` whose ``site.pem.rsa``, ``.ecdsa`` or ``.dsa`` exist is those
    parts. Also the problems: (path, why)."""
    out: list[str] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        path = os.path.abspath(raw)
        if os.path.isdir(path):  # a directory (the usual PATH): as the scan takes it
            out.append(raw)
            continue
        from ocsptool.haproxy_config import expand_crt, parse_crt_list

        if not os.path.lexists(path):
            parts = expand_crt(path, directories=False).names
            out.extend(parts or (raw,))  # nothing: the scan says "no such file"
            continue
        text = _crt_list_text(path)
        if text is None:
            out.append(raw)
            continue
        entries, warnings = parse_crt_list(text, path)
        base = os.path.dirname(path)
        crts = [(e.line, os.path.join(base, e.crt)) for e in entries]
        expansions = [(line, crt, expand_crt(crt)) for line, crt in crts]
        if not path.endswith(CRT_LIST_ENDINGS) and not any(x.names for *_, x in expansions):
            out.append(raw)  # no line names a file: not a crt-list (the parse says why)
            continue
        if (untrusted := _untrusted(path)) is not None:
            problems.append(untrusted)
            continue
        problems += [(w.partition(": ")[0], w.partition(": ")[2]) for w in warnings]
        for line, crt, expansion in expansions:
            if expansion.denied:  # this user may not look: status reports it from the state
                problems.append((os.path.abspath(crt), READ_DENIED))
            elif expansion.problem:
                problems.append((f"{path}:{line}", expansion.problem))
            out.extend(expansion.names)
    return out, problems


def _untrusted(path: str) -> tuple[str, str] | None:
    """(the crt-list, why) when it may not steer this run (``trust.Steering``)."""
    from ocsptool.haproxy_config.reader import UNTRUSTED_LIST
    from ocsptool.trust import Steering

    problem = Steering().problem(path, *UNTRUSTED_LIST)
    if problem is None:
        return None
    where, _, why = problem.partition(": ")
    return where, why


def _crt_list_text(path: str) -> str | None:
    """The text of a crt-list, or None for anything else (a certificate, a directory, a
    FIFO or a device: the scan says why). Non-blocking and bounded, like every read."""
    from ocsptool.files import read_regular
    from ocsptool.haproxy_config.files import MAX_FILE_BYTES

    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except OSError:
        return None  # the scan says why
    head = data[:4096]
    if not head or head[0] == 0x30 or b"-----BEGIN" in head or b"\0" in head:
        return None
    first = next((ln for ln in data.split(b"\n") if ln.strip() and not ln.startswith(b"#")), b"")
    if b"-----BEGIN" in data[:65536] or not first:
        return None
    return data.decode("utf-8", errors="replace")
