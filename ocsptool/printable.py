"""Text from untrusted places (file names, a certificate's CN and SANs, a server's reply)
made safe to print: no control character, escape sequence, bidirectional override or
undecodable byte reaches a terminal, a log or a hook. What would be hidden or act is
shown as a ``\\xNN``/``\\uNNNN`` escape, so the operator sees that it is there.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters printed as they are: everything printable but the format controls (bidi
#: overrides, zero-width characters: category Cf) and the surrogates that stand for bytes
#: that were not UTF-8.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]|[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x80 or 0x80 <= code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF or code in (0x2028, 0x2029):
        return f"\\u{code:04x}"
    if unicodedata.category(char) in ("Cf", "Cc", "Co", "Cn", "Zl", "Zp"):
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char  # printable non-ASCII (accents, CJK) stays as it is


def printable(text: str) -> str:
    """``text`` with every character that a terminal would act on or hide escaped."""
    if text.isascii() and text.isprintable():
        return text  # the common case, at no cost
    return _UNSAFE.sub(_escape, text)


def shown(text: str, limit: int = 80) -> str:
    """``printable(text)``, cut to ``limit`` characters (with an ellipsis)."""
    clean = printable(text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def shown_lines(messages: list[str]) -> tuple[str, ...]:
    """Each message once, printable (paths may hold any byte, a terminal may not)."""
    return tuple(dict.fromkeys(shown(message, 4000) for message in messages))
