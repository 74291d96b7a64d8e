"""crt-list files, as HAProxy's ``crtlist_parse_line`` reads them (2.6 to 3.4).

One certificate a line: ``<crt> [<options>] [[!]<sni filter> ...]``. A line whose first
character is ``#`` and a blank line are skipped. There is no quoting and no ``${VAR}``:
spaces split words, and ``[`` / ``]`` split words wherever they are. Words between the
certificate and ``[`` are dropped by HAProxy (3.x warns "filters can't be between filename
and options"): the SNI filters are the words after ``]``. A relative ``<crt>`` is joined to
the global ``crt-base`` unless it starts with ``@`` (a crt-store reference, 3.0+).

Options: the SSL ones (``keywords.CRT_LIST_SSL_OPTIONS``, each with its number of
arguments), then the certificate keywords (``keywords.CERT_OPTIONS``, one argument each,
3.0+; ``ocsp-update`` 2.8+). A line with ``key``, ``ocsp``, ``issuer`` or ``sctl`` turns
HAProxy's lookup of ``<crt>.ocsp`` and the other siblings off. Those file names are
relative to HAProxy's working directory (``default-path``), never to crt-base or the
list's directory. An option HAProxy does not know stops HAProxy: the line is skipped
with a warning.
"""

from __future__ import annotations

from typing import NamedTuple

from ocsptool.haproxy_config.files import MAX_LINE_CHARS, shown
from ocsptool.haproxy_config.keywords import CERT_OPTIONS, CRT_LIST_SSL_OPTIONS, FILE_OPTIONS


class CrtListLine(NamedTuple):
    """One crt-list line (a NamedTuple, not a dataclass: 10,000 of them per no-op run)."""

    line: int
    crt: str
    snis: tuple[str, ...]
    ocsp_update: bool | None
    files: tuple[tuple[str, str], ...]  # key/ocsp/issuer/sctl given on the line: (keyword, path)
    #: ``generate-dummy on`` (3.4): HAProxy makes the certificate itself, no file is read.
    generated: bool = False


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
        entry, problem = parse_options_line(line, number)
        if problem:
            warnings.append(f"{name}:{number}: {problem}")
        elif entry is not None:
            entries.append(entry)
    return entries, warnings


def parse_options_line(line: str, number: int) -> tuple[CrtListLine | None, str | None]:
    """A crt-list line with ``[...]``: the entry, or why the line is skipped."""
    head, bracket, rest = line.partition("[")
    if not bracket:
        return None, "']' without '[', line skipped"
    options, closing, tail = rest.partition("]")
    if not closing:
        return None, "'[' without ']', line skipped"
    if "[" in options or "[" in tail or "]" in tail:
        return None, "more than one '[...]', line skipped"
    words = head.split()
    if not words:
        return None, "'[' before the certificate, line skipped"
    if words[0].startswith("#"):
        return None, None
    parsed = parse_cert_options(options.split())
    if isinstance(parsed, str):
        return None, f"{parsed}, line skipped"
    entry = CrtListLine(
        number, words[0], tuple(tail.split()), parsed.ocsp_update, parsed.files, parsed.generated
    )
    return entry, None


class CertOptions(NamedTuple):
    """What a crt-list line's ``[...]`` or an ``ssl-f-use`` line says of its certificate."""

    crt: str | None  # ``crt <file>`` (ssl-f-use's certificate; ignored in a crt-list)
    ocsp_update: bool | None
    files: tuple[tuple[str, str], ...]
    generated: bool


def parse_cert_options(tokens: list[str]) -> CertOptions | str:
    """SSL options and certificate keywords, as a crt-list line or ``ssl-f-use`` takes
    them, in any order; or why HAProxy would refuse them."""
    crt: str | None = None
    ocsp_update: bool | None = None
    files: list[tuple[str, str]] = []
    generated = False
    i = 0
    while i < len(tokens):
        keyword = tokens[i]
        arity = CRT_LIST_SSL_OPTIONS.get(keyword)
        if arity is None:
            if keyword not in CERT_OPTIONS:
                return f"unknown keyword '{shown(keyword)}' (HAProxy refuses to start)"
            arity = 1
        if i + arity >= len(tokens):
            return f"'{shown(keyword)}' needs an argument"
        value = tokens[i + 1] if arity else ""
        if keyword == "ocsp-update":
            if value not in ("on", "off"):
                return f"'ocsp-update {shown(value)}': expected on or off"
            ocsp_update = value == "on"
        elif keyword in FILE_OPTIONS:
            files = [f for f in files if f[0] != keyword]  # HAProxy: the last one wins
            files.append((keyword, value))
        elif keyword == "generate-dummy":
            if value not in ("on", "off"):
                return f"'generate-dummy {shown(value)}': expected on or off"
            generated = value == "on"
        elif keyword == "crt" and crt is None:
            crt = value
        i += 1 + arity
    return CertOptions(crt, ocsp_update, tuple(files), generated)
