"""crt-list files, as HAProxy's ``crtlist_parse_file`` reads them.

One certificate a line: ``<crt> [<ssl options>] [[!]<sni filter> ...]``. A line whose
first character is ``#`` and a blank line are skipped. There is no quoting: spaces
split words, and ``[`` / ``]`` split words wherever they are. A relative ``<crt>`` is
joined to the global ``crt-base`` (``crt-base/<crt>``) unless it starts with ``@``
(a crt-store reference, 3.0+). Options of note: ``ocsp-update on|off`` (2.8+), and on
3.0+ the crt-store keywords ``key``, ``ocsp``, ``issuer``, ``sctl``.
"""

from __future__ import annotations

from typing import NamedTuple

from ocsptool.haproxy_config.files import MAX_LINE_CHARS

#: crt-list ssl options that take no argument; every other keyword takes one.
_FLAGS = frozenset(("allow-0rtt", "no-ca-names", "no-alpn"))
_STORE_FILES = frozenset(("key", "ocsp", "issuer", "sctl"))


class CrtListLine(NamedTuple):
    """One crt-list line (a NamedTuple, not a dataclass: 10,000 of them per no-op run)."""

    line: int
    crt: str
    snis: tuple[str, ...]
    ocsp_update: bool | None
    files: tuple[tuple[str, str], ...]  # crt-store keywords given on the line: (key, path)


def parse_crt_list(text: str, name: str) -> tuple[list[CrtListLine], list[str]]:
    """The entries of a crt-list and one warning ``name:line: ...`` per line skipped."""
    entries: list[CrtListLine] = []
    warnings: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line[0] == "#":
            continue
        if len(line) > MAX_LINE_CHARS:
            warnings.append(f"{name}:{number}: line longer than {MAX_LINE_CHARS}, skipped")
            continue
        if "[" not in line and "]" not in line:
            words = line.split()
            if words and not words[0].startswith("#"):
                entries.append(CrtListLine(number, words[0], tuple(words[1:]), None, ()))
            continue
        entry, problem = _parse_options(line, number)
        if problem:
            warnings.append(f"{name}:{number}: {problem}, line skipped")
        elif entry is not None:
            entries.append(entry)
    return entries, warnings


def _parse_options(line: str, number: int) -> tuple[CrtListLine | None, str | None]:
    head, bracket, rest = line.partition("[")
    if not bracket:
        return None, "']' without '['"
    options, closing, tail = rest.partition("]")
    if not closing:
        return None, "'[' without ']'"
    if "[" in options or "[" in tail or "]" in tail:
        return None, "more than one '[...]'"
    words = head.split()
    if not words:
        return None, "'[' before the certificate"
    if words[0].startswith("#"):
        return None, None
    crt, filters = words[0], words[1:] + tail.split()
    ocsp_update: bool | None = None
    files: list[tuple[str, str]] = []
    tokens = options.split()
    i = 0
    while i < len(tokens):
        keyword = tokens[i]
        if keyword in _FLAGS:
            i += 1
            continue
        if i + 1 >= len(tokens):
            return None, f"'{keyword}' needs an argument"
        value = tokens[i + 1]
        if keyword == "ocsp-update":
            if value not in ("on", "off"):
                return None, f"'ocsp-update {value}': expected on or off"
            ocsp_update = value == "on"
        elif keyword in _STORE_FILES:
            files.append((keyword, value))
        i += 2
    return CrtListLine(number, crt, tuple(filters), ocsp_update, tuple(files)), None
