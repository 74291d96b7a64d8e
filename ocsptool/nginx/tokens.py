"""Split an nginx configuration file into statements, as nginx's tokenizer does.

The rules of ``ngx_conf_read_token`` (``src/core/ngx_conf_file.c``), read from its source
and checked against nginx 1.22.1 (``nginx -t``):

- Words are separated by spaces, tabs, CR and LF. ``;`` ends a directive, ``{`` opens a
  block (both also end a word), ``}`` closes one and must stand alone.
- ``#`` starts a comment only at the start of a word (``a#b`` is one word).
- ``"..."`` and ``'...'`` quote a whole word; the quote must be followed by a space,
  ``;``, ``{`` or ``)``, otherwise nginx stops with ``unexpected "x"``. A quote inside a
  word (``a"b``) is an ordinary character.
- A backslash protects the next character, in or out of quotes. In the word, ``\\"``,
  ``\\'`` and ``\\\\`` give the character, ``\\t \\r \\n`` the control character; any
  other pair stays as written (``\\d`` is ``\\d``, for regular expressions).
- ``${`` does not open a block: ``${name}`` stays in the word.
- A statement's line is the line of its ``;``, ``{`` or ``}``, as in nginx's messages.

Each file is tokenized on its own (an included file must balance its braces), so the
result is a flat list of statements; the reader nests them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

#: nginx reads a configuration through a 4 KiB buffer: a longer word is an error there.
MAX_WORD_BYTES = 4096

_SPACE = " \t\r\n"
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}
# An unquoted word: escaped pairs, "$" followed by any "{", anything else but the ends.
_WORD = re.compile(r"(?:\\.|\$\{*|[^ \t\r\n;{\\$])+", re.DOTALL)
_QUOTED = {'"': re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL),
           "'": re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL)}  # fmt: skip
_SPACES = re.compile(r"[ \t\r\n]*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class End(Enum):
    """How a statement ends."""

    DIRECTIVE = ";"
    BLOCK = "{"
    CLOSE = "}"


@dataclass(frozen=True, slots=True)
class Statement:
    """``words`` ended by ``end`` on ``line`` (``CLOSE`` has no words)."""

    words: tuple[str, ...]
    end: End
    line: int


class TokenError(ValueError):
    """What nginx would stop at, in its words, and the line (``unexpected "}"``)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def statements(text: str) -> tuple[list[Statement], TokenError | None]:
    """The statements of one file, in order, up to the first thing nginx refuses, and
    that refusal (None when the whole file reads).

    ``text`` is the file decoded with ``surrogateescape`` (nginx reads bytes).
    """
    found: list[Statement] = []
    try:
        _scan(text, found)
    except TokenError as error:
        return found, error
    return found, None


def _scan(text: str, found: list[Statement]) -> None:
    words: list[str] = []
    pos, line, end = 0, 1, len(text)
    while True:
        space = _SPACES.match(text, pos)
        assert space is not None  # matches the empty string at least
        line += text.count("\n", pos, space.end())
        pos = space.end()
        if pos >= end:
            if words:
                raise TokenError('unexpected end of file, expecting ";" or "}"', line)
            return
        char = text[pos]
        if char == "#":
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline
        elif char in ";{":
            if not words:
                raise TokenError(f'unexpected "{char}"', line)
            found.append(Statement(tuple(words), End(char), line))
            words = []
            pos += 1
        elif char == "}":
            if words:
                raise TokenError('unexpected "}"', line)
            found.append(Statement((), End.CLOSE, line))
            pos += 1
        elif char in _QUOTED:
            pos, line = _quoted(text, pos, line, words, found)
        else:
            word = _WORD.match(text, pos)
            if word is None:  # a lone backslash at the end of the file
                raise TokenError('unexpected end of file, expecting ";" or "}"', line)
            raw = word.group()
            line += raw.count("\n")  # escaped newlines
            words.append(_unescape(raw, line))
            pos = word.end()


def _quoted(
    text: str, pos: int, line: int, words: list[str], found: list[Statement]
) -> tuple[int, int]:
    """Read one quoted word at ``pos`` and what must follow it; returns (pos, line).

    When the quote is followed by ``;`` or ``{`` the statement is finished here
    (``words`` emptied, the statement appended to ``found``)."""
    match = _QUOTED[text[pos]].match(text, pos)
    if match is None:
        raise TokenError('unexpected end of file, expecting ";" or "}"', line)
    line += match.group().count("\n")
    words.append(_unescape(match.group(1), line))
    pos = match.end()
    if pos >= len(text):
        raise TokenError('unexpected end of file, expecting ";" or "}"', line)
    after = text[pos]
    if after in ";{":
        found.append(Statement(tuple(words), End(after), line))
        words.clear()
        return pos + 1, line
    if after in _SPACE or after == ")":
        return pos, line  # ")" starts the next word, as in nginx: if ($a = "b")
    raise TokenError(f'unexpected "{after}"', line)


def _unescape(raw: str, line: int) -> str:
    if len(raw.encode("utf-8", "surrogateescape")) >= MAX_WORD_BYTES:
        raise TokenError(f'too long parameter "{raw[:10]}..." started', line)
    if "\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group()), raw)
