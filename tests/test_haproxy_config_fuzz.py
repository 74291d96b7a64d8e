"""Hostile HAProxy configurations and crt-lists: warnings and problems, never a crash or a hang."""

from __future__ import annotations

import re
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsptool.haproxy_config import parse_crt_list, read_haproxy_config
from ocsptool.haproxy_config.model import NOTHING_LOADED
from ocsptool.haproxy_config.words import WordError, split_words

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_VOCABULARY = [
    "global", "defaults", "frontend f", "listen l", "backend b", "crt-store", "crt-store s",
    "bind", ":443", "ssl", "crt", "crt-list", "default-crt", "crt-base", "key-base", "load",
    "key", "ocsp", "issuer", "alias", "ocsp-update", "on", "off", "ocsp-update.mode",
    "stats", "socket", "level", "admin", "user", "root", "ipv4@", "ipv6@[::1]:1", "unix@",
    "abns@x", "/", "/tmp", "/dev/null", "/proc/self/fd/0", "@s/x", "@nope/y", "'", '"',
    "\\", "#", "$", "${", "${X}", '"${X[*]}"', "${X-", "[", "]", "!", "*.x", ".if", ".endif",
    "setenv X", "unsetenv X", "resetenv", "ssl-load-extra-files", "none", "bundle",
    "unix-bind prefix", "\t", "\0", "\udcff", "é", "ssl-f-use", "peers p", "log-forward l",
    "default-bind", "ssl-load-extra-del-ext", "issuers-chain-path", "default-path", "config",
    "parent", "origin", "current", "generate-dummy", "sctl", "all", "x.crt", "alpn", "name",
]  # fmt: skip
_LINES = st.lists(st.one_of(st.sampled_from(_VOCABULARY), st.text(max_size=12)), max_size=12).map(
    " ".join
)
_TEXT = st.lists(_LINES, max_size=40).map("\n".join)
_ORIGIN = re.compile(r"^.+:(\d+|EXTRAOPTS): ")


@FUZZ
@given(line=st.text(max_size=200), value=st.text(max_size=50))
def test_split_words_returns_words_or_a_word_error(line: str, value: str) -> None:
    try:
        words = split_words(line, {"X": value})
    except WordError:
        return
    assert all(isinstance(word, str) for word in words)


@FUZZ
@given(text=st.one_of(_TEXT, st.text(max_size=2000)))
def test_crt_list_reader_never_crashes(text: str) -> None:
    entries, warnings = parse_crt_list(text, "/l")
    lines = text.split("\n")
    for entry in entries:
        assert entry.crt and not entry.crt.startswith("#")
        assert entry.crt in lines[entry.line - 1]
    assert all(re.match(r"^/l:\d+: ", warning) for warning in warnings)


@FUZZ
@given(text=_TEXT, value=st.text(max_size=30))
def test_config_reader_gives_warnings_never_a_crash(tmp_path: Path, text: str, value: str) -> None:
    config = tmp_path / "h.cfg"
    (tmp_path / "l").write_bytes(text.encode("utf-8", "surrogateescape"))
    text = text.replace("crt-list", f"crt-list {tmp_path}/l")
    config.write_bytes(text.encode("utf-8", "surrogateescape"))
    started = time.monotonic()
    found = read_haproxy_config(config, env={"X": value}, defaults_file=None)
    assert time.monotonic() - started < 2
    for line in (*found.warnings, *found.problems):
        assert _ORIGIN.match(line) or line == f"{config}: {NOTHING_LOADED}", line
        assert "\n" not in line


def test_expansion_bombs_and_long_lines_are_bounded(tmp_path: Path) -> None:
    config = tmp_path / "h.cfg"
    bomb = '"${X[*]}" ' * 5000
    config.write_text(f"global\n  stats socket {bomb}\n  crt-base {'a' * 70000}\nfrontend f\n")
    started = time.monotonic()
    found = read_haproxy_config(config, env={"X": "w " * 10000}, defaults_file=None)
    assert time.monotonic() - started < 2
    assert found.warnings == (
        f"{config}:2: variables expand past 1 MiB or 1024 words, line skipped",
        f"{config}:3: line longer than 65536, skipped",
        f"{config}: {NOTHING_LOADED}",
    )


def test_a_crt_list_named_many_times_is_read_once(tmp_path: Path) -> None:
    crt_list = tmp_path / "list"
    crt_list.write_text("".join(f"/nope/{i}.pem\n" for i in range(2000)))
    binds = "".join(f"  bind :{i} ssl crt-list {crt_list}\n" for i in range(2000))
    config = tmp_path / "h.cfg"
    config.write_text(f"frontend f\n{binds}")
    started = time.monotonic()
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert time.monotonic() - started < 2
    assert len(found.problems) == 2000


def test_messages_are_printable_whatever_bytes_the_paths_hold(tmp_path: Path) -> None:
    config = tmp_path / "h.cfg"
    config.write_bytes(b"frontend f\n  bind :1 ssl crt /x\xff\x1b[31m.pem\n")
    (problem,) = read_haproxy_config(config, env={}, defaults_file=None).problems
    assert problem == (
        f"{config}:2: unable to stat SSL certificate from file '/x\\xff\\x1b[31m.pem': "
        "No such file or directory"
    )
    problem.encode("utf-8")
