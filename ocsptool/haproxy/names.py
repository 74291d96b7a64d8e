"""A certificate name as one word of a runtime-API command, or why it cannot be one.

Every name or path that goes into a command (``show ssl cert <name>``, ``set ssl cert
<name> <<``, ``commit``/``abort ssl cert <name>``) goes through ``cli_word``: nothing else
puts a name into a command.

What HAProxy's CLI parser does with a command line, the same in 2.6, 2.8, 3.0, 3.2 and 3.4
(``src/cli.c``; 2.6.12 and 3.0.11 checked against the real binaries, see
``tests/security/test_cli_injection.py``):

- A command ends at a newline or at a ``;`` that no backslash precedes: ``show ssl cert
  /d/x;shutdown frontend tls;.pem`` is three commands, the second shuts the frontend down.
  On the master CLI the master splits the same way before it forwards to ``@1``.
- Words are split on spaces and tabs not preceded by a backslash; then ``\\x`` becomes
  ``x`` (so ``\\\\`` is one backslash). ``#``, quotes, ``$`` and braces mean nothing.
- ``<<`` is looked for in the raw line, BEFORE any unescaping: 2.6 enters payload mode
  when a command line ends with ``<<`` (``show ssl cert /d/end<<`` and ``/d/end\\<<``
  alike); 3.0+ when the raw text after the last space or tab starts with ``<<``
  (``/d/sp\\ <<`` does, and ``<<xyz`` picks ``xyz`` as the end-of-payload marker); the
  2.6 master CLI when the first ``<<`` of the command is at its end. Payload mode
  swallows the next lines (our next commands) as data. No escape prevents it.
- Control characters: a newline ends the command; CR, NUL and the others have no safe
  spelling either.

So a name is sent with a backslash before each space, backslash and ``;``, and refused
when it holds ``<<`` or a control character (or is longer than any path can be).
"""

from __future__ import annotations

import re

from ocsptool.errors import HAProxyError

#: PATH_MAX: no file name HAProxy loaded is longer; keeps every command small.
MAX_NAME_BYTES = 4096
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_ESCAPED = str.maketrans({" ": "\\ ", "\\": "\\\\", ";": "\\;"})


class UnsafeName(HAProxyError):
    """A name that cannot be put into a command safely; the message says why (one line)."""


def cli_word(name: str) -> str:
    """``name`` spelled as one word of a command, or ``UnsafeName`` saying why not."""
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeName(problem)
    return name.translate(_ESCAPED)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be one word of a runtime-API command, or None."""
    if not name:
        return "is empty"
    if _CONTROL.search(name):
        return "holds a control character"
    if "<<" in name:
        return "holds '<<', which HAProxy's runtime API takes for the start of a payload"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    return None


def refusal(name: str, problem: str) -> str:
    """The one line for a name refused: ``name`` shown safely, the problem, the fix."""
    return (
        f"the name {shown(name)} {problem}, so it is never put into a HAProxy command; "
        "rename the file"
    )


def shown(name: str, limit: int = 200) -> str:
    """``name`` quoted and printable on one line (control characters and undecodable bytes
    as ``\\x..`` escapes: ``ocsptool.printable``), cut at ``limit`` characters."""
    from ocsptool.printable import shown as printable

    return f"'{printable(name, limit)}'"
