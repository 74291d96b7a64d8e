"""Split one HAProxy configuration line into words, as HAProxy's ``parse_line`` does.

- ``#`` outside quotes ends the line; spaces and tabs separate words.
- ``'...'``: everything literal. ``"..."``: backslash escapes and ``$`` expansion.
- Backslash, outside single quotes: ``\\\\ \\  \\# \\' \\" \\$`` give the character,
  ``\\r \\n \\t`` the control character, ``\\xHH`` the byte; any other pair stays as is.
- Environment variables expand only inside double quotes (HAProxy's documentation):
  ``$NAME``, ``${NAME}``, ``${NAME-default}`` (the default is literal, checked on 3.x)
  and ``"${NAME[*]}"``, which splits the value into several words. An unset variable is
  empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\[\*\])?(?:-([^}]*))?\}")
_SIMPLE_ESCAPES = {"\\": "\\", " ": " ", "#": "#", "'": "'", '"': '"', "$": "$"}
_CONTROL = {"r": "\r", "n": "\n", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


#: Bounded work on hostile input: HAProxy itself takes at most 64 words a line.
MAX_WORDS = 1024
MAX_EXPANDED_CHARS = 1024 * 1024


class WordError(ValueError):
    """A line HAProxy's parser would reject (the message says why)."""


def split_words(line: str, env: Mapping[str, str]) -> list[str]:
    """The words of ``line`` (empty for a blank or comment line)."""
    words: list[str] = []
    current: list[str] = []
    in_word = squote = dquote = False
    i, end, expanded = 0, len(line), 0
    while i < end:
        char = line[i]
        if squote:
            squote = char != "'"
            if squote:
                current.append(char)
            i += 1
        elif char == "\\" and i + 1 < end:
            text, i = _escape(line, i)
            current.append(text)
            in_word = True
        elif char == '"':
            dquote = not dquote
            in_word = True
            i += 1
        elif dquote and char == "$":
            i, added = _expand(line, i, env, current, words)
            expanded += added
            if expanded > MAX_EXPANDED_CHARS or len(words) > MAX_WORDS:
                raise WordError("variables expand past 1 MiB or 1024 words")
        elif dquote:
            current.append(char)
            i += 1
        elif char == "'":
            squote = in_word = True
            i += 1
        elif char == "#":
            break
        elif char in " \t\r\n":
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
                if len(words) > MAX_WORDS:
                    raise WordError(f"more than {MAX_WORDS} words")
            i += 1
        else:
            current.append(char)
            in_word = True
            i += 1
    if squote or dquote:
        raise WordError("unmatched quote")
    if in_word:
        words.append("".join(current))
    return words


def _escape(line: str, i: int) -> tuple[str, int]:
    """The text of the backslash escape at ``line[i]`` and the index after it."""
    nxt = line[i + 1]
    if nxt in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[nxt], i + 2
    if nxt in _CONTROL:
        return _CONTROL[nxt], i + 2
    if nxt == "x" and len(digits := line[i + 2 : i + 4]) == 2 and set(digits) <= _HEX:
        return chr(int(digits, 16)), i + 4
    return "\\", i + 1


def _expand(
    line: str, i: int, env: Mapping[str, str], current: list[str], words: list[str]
) -> tuple[int, int]:
    """Expand the ``$`` at ``line[i]``; return the index after it and the length added."""
    rest = line[i + 1 :]
    braced = _BRACED.match(rest)
    if braced:
        name, split, default = braced.groups()
        value = env.get(name)
        if value is None:
            value = default or ""
        if split:
            parts = value.split()
            if parts:
                current.append(parts[0])
                for part in parts[1:]:
                    words.append("".join(current))
                    current.clear()
                    current.append(part)
        else:
            current.append(value)
        return i + 1 + braced.end(), len(value)
    simple = _NAME.match(rest)
    if simple:
        value = env.get(simple.group(), "")
        current.append(value)
        return i + 1 + simple.end(), len(value)
    if rest.startswith("{"):
        raise WordError("bad variable reference (missing '}' or a bad name)")
    current.append("$")
    return i + 1, 1
