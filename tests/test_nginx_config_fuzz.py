"""Hostile nginx configurations: problems and warnings, never a crash, a hang or a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsptool.nginx import read_nginx_config
from ocsptool.nginx.tokens import End, statements

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_VOCABULARY = [
    "http", "server", "location", "stream", "events", "include", "listen", "server_name",
    "ssl_certificate", "ssl_certificate_key", "ssl_stapling", "ssl_stapling_file",
    "ssl_trusted_certificate", "ssl", "pid", "error_log", "on", "off", "443", "[::]:443",
    "unix:/x", "*.conf", "self.conf", "/dev/null", "$ssl_server_name", "${", "data:x",
    "{", "}", ";", "'", '"', "\\", "#", "(", ")", "\n", "\t", "\0", "\udcff", "é",
]  # fmt: skip
_TEXT = st.lists(st.one_of(st.sampled_from(_VOCABULARY), st.text(max_size=8)), max_size=80).map(
    " ".join
)
_ORIGIN = re.compile(r"^(/[^:]+):(\d+): ")


@FUZZ
@given(text=st.one_of(_TEXT, st.text(max_size=2000)))
def test_statements_never_crash(text: str) -> None:
    found, error = statements(text)
    lines = text.count("\n") + 1
    assert all(1 <= s.line <= lines for s in found)
    assert all(s.words or s.end is End.CLOSE for s in found)
    assert error is None or 1 <= error.line <= lines


@FUZZ
@given(text=_TEXT)
def test_reader_gives_problems_never_a_crash(tmp_path: Path, text: str) -> None:
    main = tmp_path / "nginx.conf"
    main.write_bytes(text.encode("utf-8", "surrogateescape"))
    (tmp_path / "self.conf").write_bytes(main.read_bytes())  # "include self.conf" loops
    conf = read_nginx_config(main, prefix=tmp_path)
    for message in (*conf.problems, *conf.warnings):
        assert "\n" not in message and message.isprintable()
        origin = _ORIGIN.match(message)  # every message starts at a line of a file read
        assert origin and origin.group(1) in conf.inputs, message
