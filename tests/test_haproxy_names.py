"""names.cli_word: the one way a name goes into a runtime-API command (what each HAProxy
does with it is proven on the real binaries in tests/security/test_cli_injection.py)."""

from __future__ import annotations

import pytest

from ocsptool.haproxy.names import MAX_NAME_BYTES, UnsafeName, cli_word, name_problem, refusal


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("/etc/haproxy/site.pem", "/etc/haproxy/site.pem"),
        ("/d/x;shutdown frontend tls;.pem", "/d/x\\;shutdown\\ frontend\\ tls\\;.pem"),
        ("/d/back\\slash.pem", "/d/back\\\\slash.pem"),
        ("/d/semi\\;x.pem", "/d/semi\\\\\\;x.pem"),
        ("/d/#'\"$`{}*?.pem", "/d/#'\"$`{}*?.pem"),  # nothing else means anything
        ("/d/a<b<.pem", "/d/a<b<.pem"),  # one '<' at a time is nothing
        ("@store/alias", "@store/alias"),
        ("/d/\udcff.pem", "/d/\udcff.pem"),  # not UTF-8: sent as the bytes it is
        ("/d/été.pem", "/d/été.pem"),
    ],
)
def test_names_are_spelled_as_one_word(name: str, word: str) -> None:
    assert cli_word(name) == word


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/d/end<<", "holds '<<', which HAProxy's runtime API takes for the start of a payload"),
        ("/d/a <<b", "holds '<<', which HAProxy's runtime API takes for the start of a payload"),
        ("/d/a\nb", "holds a control character"),
        ("/d/a\rb", "holds a control character"),
        ("/d/a\tb", "holds a control character"),
        ("/d/a\x00b", "holds a control character"),
        ("/d/a\x1b[31m", "holds a control character"),
        ("/d/a\x85b", "holds a control character"),  # C1: NEL
        ("", "is empty"),
        ("/" * (MAX_NAME_BYTES + 1), f"is longer than {MAX_NAME_BYTES} bytes"),
    ],
)
def test_names_that_cannot_be_one_word_are_refused(name: str, problem: str) -> None:
    assert name_problem(name) == problem
    with pytest.raises(UnsafeName) as raised:
        cli_word(name)
    assert str(raised.value) == problem


def test_the_refusal_is_one_printable_line() -> None:
    line = refusal("/d/a\nb\x1b.pem", "holds a control character")
    assert line == (
        "the name '/d/a\\x0ab\\x1b.pem' holds a control character, so it is never put into a "
        "HAProxy command; rename the file"
    )
    assert line.isprintable()
