"""ocsptool.nginx.config, .tokens and .stapling: nginx's configuration read as nginx reads it.

Plain files first (tokenizer, includes, inheritance, traps, bad input), then the same
configurations checked against the real nginx: what ``nginx -t`` accepts, refuses (at
the same ``file:line`` the reader reports) and resolves (relative paths).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PKI

from ocsptool.errors import ConfigError
from ocsptool.nginx import (
    NginxConfigError,
    findings,
    read_nginx_config,
    staple_files,
)
from ocsptool.nginx import config as nginx_config
from ocsptool.nginx.model import Certificate, Listen, ServerBlock
from ocsptool.nginx.tokens import End, Statement, statements
from ocsptool.testing.haproxy_configs import good_staple
from ocsptool.testing.nginx import Nginx, free_port, issue


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root``; return the first (the main configuration)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / next(iter(files))


# -- the tokenizer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b;", [(("a", "b"), ";", 1)]),
        ("a b; # c d;\nd;", [(("a", "b"), ";", 1), (("d",), ";", 2)]),
        ("a#b c;", [(("a#b", "c"), ";", 1)]),  # '#' starts a comment only at a word's start
        ("a \"b c\" 'd;e';", [(("a", "b c", "d;e"), ";", 1)]),
        ("a \"x\\\"y\" 'it\\'s';", [(("a", 'x"y', "it's"), ";", 1)]),
        ("a b\\ c;", [(("a", "b\\ c"), ";", 1)]),  # a kept pair: nginx copies both
        ("a \\t\\n\\\\ \\d;", [(("a", "\t\n\\", "\\d"), ";", 1)]),
        ('a"b c;', [(('a"b', "c"), ";", 1)]),  # a quote inside a word is a character
        ("set $a ${b}c;", [(("set", "$a", "${b}c"), ";", 1)]),
        ("a\n  b\n  ;", [(("a", "b"), ";", 3)]),  # a statement's line is its ';'
        ("server\n{\n}\n", [(("server",), "{", 2), ((), "}", 3)]),
        ("a {b;}", [(("a",), "{", 1), (("b",), ";", 1), ((), "}", 1)]),
        ("a}b;", [(("a}b",), ";", 1)]),  # '}' inside a word is a character
        ('if ($a = "b") { }', [(("if", "($a", "=", "b", ")"), "{", 1), ((), "}", 1)]),
        ('a "";', [(("a", ""), ";", 1)]),
        ('a "x\ny";', [(("a", "x\ny"), ";", 2)]),
        ("", []),
        ("# only a comment", []),
    ],
)
def test_statements(text: str, expected: list[tuple[tuple[str, ...], str, int]]) -> None:
    found, error = statements(text)
    assert error is None
    assert found == [Statement(words, End(end), line) for words, end, line in expected]


@pytest.mark.parametrize(
    ("text", "message", "line", "kept"),
    [
        ('a "b"c;', 'unexpected "c"', 1, 0),
        ("a }", 'unexpected "}"', 1, 0),
        ("a;\n;", 'unexpected ";"', 2, 1),
        ("{", 'unexpected "{"', 1, 0),
        ("a b", 'unexpected end of file, expecting ";" or "}"', 1, 0),
        ('a "b', 'unexpected end of file, expecting ";" or "}"', 1, 0),
        ("a b\\", 'unexpected end of file, expecting ";" or "}"', 1, 0),
        ('a "b"#c;', 'unexpected "#"', 1, 0),
        ("a " + "x" * 5000 + ";", 'too long parameter "xxxxxxxxxx..." started', 1, 0),
    ],
)
def test_statements_nginx_refuses(text: str, message: str, line: int, kept: int) -> None:
    found, error = statements(text)
    assert error is not None
    assert (str(error), error.line, len(found)) == (message, line, kept)


# -- includes, paths, the Debian layout -------------------------------------------------------


DEBIAN_MAIN = """\
user www-data;
worker_processes auto;
pid /run/nginx.pid;
include modules-enabled/*.conf;
events { worker_connections 768; }
http {
    sendfile on;
    include mime.types;
    ssl_protocols TLSv1.2 TLSv1.3;
    access_log /var/log/nginx/access.log;
    error_log /var/log/nginx/error.log;
    include conf.d/*.conf;
    include sites-enabled/*;
}
"""


def test_debian_layout(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "nginx.conf": DEBIAN_MAIN,
            "mime.types": "types { text/html html; }\n",
            "conf.d/stapling.conf": "ssl_stapling on;\n",
            "sites-enabled/b-site": (
                "server {\n"
                "    listen 443 ssl;\n"
                "    server_name B.example;\n"
                "    include snippets/b-tls.conf;\n"
                "}\n"
            ),
            "sites-enabled/a-site": (
                "server { listen 80; server_name a.example; }\n"
                "server { listen [::]:443 ssl; server_name a.example;\n"
                "    ssl_certificate /etc/ssl/a.pem; ssl_certificate_key /etc/ssl/a.key;\n"
                "    ssl_stapling_file /var/lib/ocsp/a.der; }\n"
            ),
            "sites-enabled/.hidden": "server { listen 1; }\n",
            "snippets/b-tls.conf": (
                "ssl_certificate certs/b.pem;\nssl_certificate_key certs/b.key;\n"
                "ssl_stapling_file b.ocsp;\n"
            ),
        },
    )
    conf = read_nginx_config(main)
    assert conf.problems == ()
    assert conf.warnings == ()
    assert conf.pid_path == "/run/nginx.pid"
    assert conf.error_logs == ()  # the http-level error_log is not the master's
    d = f"{tmp_path}/"
    # globs in byte order, hidden files skipped, no match (modules-enabled) is no error
    assert [s.origin for s in conf.servers] == [
        f"{d}sites-enabled/a-site:1",
        f"{d}sites-enabled/a-site:2",
        f"{d}sites-enabled/b-site:1",
    ]
    plain, a, b = conf.servers
    assert plain.certificates == () and plain.tls_listens == ()
    assert a.certificates == (
        Certificate("/etc/ssl/a.pem", "/etc/ssl/a.key", f"{d}sites-enabled/a-site:3"),
    )
    assert a.listens == (Listen("[::]", 443, True, False, f"{d}sites-enabled/a-site:2"),)
    assert a.tls_listens[0].host == "::1"
    assert (a.stapling, a.stapling_file) == (True, "/var/lib/ocsp/a.der")
    # relative to the configuration's directory, never to the including file's
    assert b.certificates == (
        Certificate(f"{d}certs/b.pem", f"{d}certs/b.key", f"{d}snippets/b-tls.conf:1"),
    )
    assert (b.stapling_file, b.stapling_file_origin) == (f"{d}b.ocsp", f"{d}snippets/b-tls.conf:3")
    assert b.server_names == ("b.example",)
    assert [(f.path, f.certificate.path) for f in conf.staple_files] == [
        ("/var/lib/ocsp/a.der", "/etc/ssl/a.pem"),
        (f"{d}b.ocsp", f"{d}certs/b.pem"),
    ]
    assert conf.inputs == (
        f"{d}nginx.conf",
        f"{d}modules-enabled",
        f"{d}mime.types",
        f"{d}conf.d",
        f"{d}conf.d/stapling.conf",
        f"{d}sites-enabled",
        f"{d}sites-enabled/a-site",
        f"{d}sites-enabled/b-site",
        f"{d}snippets/b-tls.conf",
    )


def test_pid_and_error_log_are_relative_to_the_prefix(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "conf/nginx.conf": (
                "pid run/nginx.pid;\nerror_log logs/error.log;\nerror_log stderr;\n"
                "error_log syslog:server=unix:/dev/log;\nevents {}\n"
            )
        },
    )
    conf = read_nginx_config(main, prefix=tmp_path / "prefix")
    assert conf.pid_path == f"{tmp_path}/prefix/run/nginx.pid"
    assert conf.error_logs == (f"{tmp_path}/prefix/logs/error.log",)
    assert (conf.prefix, conf.conf_prefix) == (f"{tmp_path}/prefix/", f"{tmp_path}/conf/")


def test_default_pid_and_prefix(tmp_path: Path) -> None:
    conf = read_nginx_config(write(tmp_path, {"nginx.conf": "events {}\n"}))
    assert (conf.pid_path, conf.prefix) == ("/run/nginx.pid", "/usr/share/nginx/")
    other = read_nginx_config(tmp_path / "nginx.conf", default_pid="logs/nginx.pid", prefix="/p")
    assert other.pid_path == "/p/logs/nginx.pid"


def test_a_relative_main_path_is_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"etc/nginx.conf": "http { include x.conf; }\n", "etc/x.conf": ""})
    monkeypatch.chdir(tmp_path)
    conf = read_nginx_config(Path("etc/nginx.conf"))
    assert conf.path == tmp_path / "etc/nginx.conf"
    assert conf.inputs == (f"{tmp_path}/etc/nginx.conf", f"{tmp_path}/etc/x.conf")


# -- inheritance and what a block holds ---------------------------------------------------


def test_http_settings_are_inherited_even_after_the_blocks(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "http {\n"
                "  ssl_certificate shared.pem;\n"
                "  ssl_certificate_key shared.key;\n"
                "  server { listen 443 ssl; server_name one.test; }\n"
                "  server { listen 8443 ssl; server_name two.test;\n"
                "           ssl_certificate own.pem; ssl_certificate_key own.key;\n"
                "           ssl_stapling_file own.ocsp; ssl_stapling off; }\n"
                "  ssl_stapling on;\n"
                "  ssl_stapling_file /srv/shared.ocsp;\n"
                "  ssl_trusted_certificate ca.pem;\n"
                "}\n"
            )
        },
    )
    conf = read_nginx_config(main)
    d = f"{tmp_path}/"
    one, two = conf.servers
    assert one.certificates_inherited and not two.certificates_inherited
    assert [c.path for c in one.certificates] == [f"{d}shared.pem"]
    assert (one.stapling, one.stapling_file, one.stapling_file_origin) == (
        True,
        "/srv/shared.ocsp",
        f"{d}nginx.conf:9",
    )
    assert one.trusted_certificate == two.trusted_certificate == f"{d}ca.pem"
    assert (two.stapling, two.stapling_file) == (False, f"{d}own.ocsp")
    assert [(f.path, f.trusted_certificate, len(f.servers)) for f in conf.staple_files] == [
        ("/srv/shared.ocsp", f"{d}ca.pem", 1)
    ]
    assert conf.warnings == (
        f"{d}nginx.conf:7: ssl_stapling_file {d}own.ocsp has no effect in the block at "
        f'{d}nginx.conf:5: without "ssl_stapling on;" nginx ignores the file; add it to '
        "the block",
    )


def test_keys_pair_by_position_and_may_come_from_http(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "http { ssl_certificate_key /k/http.key;\n"
                "  server { ssl_certificate /c/rsa.pem; ssl_certificate /c/ec.pem; }\n"
                "  server { ssl_certificate /c/a.pem; ssl_certificate_key data:xyz; }\n"
                "  server { ssl_certificate /c/b.pem; ssl_certificate_key engine:pkcs11:k; }\n"
                "}\n"
            )
        },
    )
    first, second, third = read_nginx_config(main).servers
    assert [(c.path, c.key) for c in first.certificates] == [
        ("/c/rsa.pem", "/k/http.key"),
        ("/c/ec.pem", None),
    ]
    assert second.certificates[0].key == "data:xyz"
    assert third.certificates[0].key == "engine:pkcs11:k"
    assert read_nginx_config(main).problems == (
        f'{tmp_path}/nginx.conf:2: no "ssl_certificate_key" is defined for certificate '
        f'"/c/ec.pem" ({tmp_path}/nginx.conf:2); nginx refuses this configuration',
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("listen 443 ssl;", ("*", 443, True, False)),
        ("listen 127.0.0.1:8443 ssl default_server;", ("127.0.0.1", 8443, True, True)),
        ("listen 127.0.0.1;", ("127.0.0.1", 80, False, False)),
        ("listen [::1]:443 ssl http2;", ("[::1]", 443, True, False)),
        ("listen [::];", ("[::]", 80, False, False)),
        ("listen *:8443 default ssl;", ("*", 8443, True, True)),
        ("listen Localhost:8443;", ("localhost", 8443, False, False)),
        ("listen unix:/run/x.sock ssl;", ("unix:/run/x.sock", None, True, False)),
    ],
)
def test_listen(tmp_path: Path, line: str, expected: tuple[Any, ...]) -> None:
    main = write(tmp_path, {"nginx.conf": f"http {{ server {{ {line} }} }}\n"})
    (block,) = read_nginx_config(main).servers
    (listen,) = block.listens
    assert (listen.address, listen.port, listen.ssl, listen.default_server) == expected


def test_listen_quic_and_bad_ports(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {"nginx.conf": "http { server {\nlisten 443 quic;\nlisten 99999;\nlisten [::1;\n} }\n"},
    )
    conf = read_nginx_config(main)
    assert conf.servers[0].listens == ()
    assert conf.problems == (
        f'{tmp_path}/nginx.conf:3: invalid port in "99999" of the "listen" directive',
        f'{tmp_path}/nginx.conf:4: invalid host in "[::1" of the "listen" directive',
    )


def test_ssl_joins_listens_on_one_address(tmp_path: Path) -> None:
    """nginx makes an address TLS for every block when one block says ``ssl`` there;
    ``ssl on;`` (nginx < 1.25.1) makes a block's listens TLS."""
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "http {\n"
                "  server { listen 127.0.0.1:8443 ssl; }\n"
                "  server { listen 127.0.0.1:8443; listen 0.0.0.0:9443; }\n"
                "  server { listen 9443 ssl; }\n"
                "  server { listen 7443; ssl on; }\n"
                "  server { listen 6443; }\n"
                "}\n"
            )
        },
    )
    servers = read_nginx_config(main).servers
    assert [[lst.ssl for lst in s.listens] for s in servers] == [
        [True],
        [True, True],
        [True],
        [True],
        [False],
    ]


def test_server_names_and_handshake_names(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "http { server { server_name WWW.Example.com .example.org *.example.net\n"
                '  ~^(?<Sub>.+)\\.example\\.com$ _ "" $hostname;\n'
                "  server_name www.example.com; } }\n"
            )
        },
    )
    (block,) = read_nginx_config(main).servers
    assert block.server_names == (
        "www.example.com",
        ".example.org",
        "*.example.net",
        "~^(?<Sub>.+)\\.example\\.com$",
        "_",
        "",
        "$hostname",
        "www.example.com",
    )
    assert block.handshake_names == ("www.example.com", "example.org")


def test_stream_and_mail_servers_are_not_read(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "stream { server { listen 9000 ssl; ssl_certificate /s.pem; } }\n"
                "mail { server { listen 993 ssl; } }\n"
                "http { upstream u { server 127.0.0.1:80; }\n"
                "  map $a $b { default x; ssl_certificate y; }\n"
                "  server { location / { if ($x) { return 404; } } }\n"
                "}\n"
            )
        },
    )
    conf = read_nginx_config(main)
    assert [s.origin for s in conf.servers] == [f"{tmp_path}/nginx.conf:5"]
    assert conf.problems == ()


# -- the traps ------------------------------------------------------------------------------


def _block(
    origin: str,
    certs: tuple[str, ...],
    *,
    stapling: bool = True,
    file: str | None = "/s/x.ocsp",
    variables: bool = False,
    key: bool = True,
) -> ServerBlock:
    return ServerBlock(
        origin=origin,
        server_names=("x.test",),
        listens=(Listen("*", 443, True, False, origin),),
        certificates=tuple(
            Certificate(c, f"{c}.key" if key else None, f"{origin}+{i}", variables=variables)
            for i, c in enumerate(certs)
        ),
        stapling=stapling,
        stapling_file=file,
        stapling_file_origin=f"{origin}~file" if file else None,
        trusted_certificate=None,
    )


SPLIT = (
    "nginx staples that one response for each of them, so all but one get a response for "
    "another certificate; split the block into one server block per certificate, each with "
    "its own ssl_stapling_file, or remove ssl_stapling_file there and let nginx staple them "
    "itself"
)


@pytest.mark.parametrize(
    ("blocks", "problems", "warnings", "kept"),
    [
        pytest.param([_block("a:1", ("/rsa.pem",))], [], [], ["/s/x.ocsp"], id="one-cert"),
        pytest.param(
            [_block("a:1", ("/rsa.pem", "/ec.pem"))],
            [
                "a:1: 2 certificates share one ssl_stapling_file /s/x.ocsp (a:1~file): "
                f"/rsa.pem (a:1+0), /ec.pem (a:1+1); {SPLIT}"
            ],
            [],
            [],
            id="two-certs-one-file",
        ),
        pytest.param(
            [_block("a:1", ("/rsa.pem",), stapling=False)],
            [],
            [
                "a:1~file: ssl_stapling_file /s/x.ocsp has no effect in the block at a:1: "
                'without "ssl_stapling on;" nginx ignores the file; add it to the block'
            ],
            [],
            id="file-without-stapling",
        ),
        pytest.param(
            [_block("a:1", ("/$ssl_server_name.pem",), variables=True)],
            [],
            [
                'a:1+0: ssl_certificate "/$ssl_server_name.pem" (or its key) has variables: '
                "nginx loads it at each handshake and cannot staple it; ocsptool skips the "
                "block at a:1"
            ],
            [],
            id="variables",
        ),
        pytest.param(
            [_block("a:1", ("/a.pem", "/b.pem"), stapling=False, file=None, variables=True)],
            [],
            [],
            [],
            id="variables-without-stapling-is-no-news",
        ),
        pytest.param(
            [_block("a:1", ("/rsa.pem", "/ec.pem"), file=None)],
            [],
            [],
            [],
            id="stapling-without-file-nginx-staples-itself",
        ),
        pytest.param(
            [_block("a:1", ("/a.pem",)), _block("b:1", ("/b.pem",))],
            [
                "a:1~file: ssl_stapling_file /s/x.ocsp is used for different certificates: "
                "/a.pem in a:1, /b.pem in b:1; nginx staples that one response for each, so "
                "all but one get a response for another certificate; give each certificate "
                "its own ssl_stapling_file"
            ],
            [],
            [],
            id="one-file-two-blocks-two-certs",
        ),
        pytest.param(
            [_block("a:1", ("/a.pem",)), _block("b:1", ("/a.pem",))],
            [],
            [],
            ["/s/x.ocsp"],
            id="one-file-two-blocks-one-cert",
        ),
        pytest.param(
            [_block("a:1", ("/a.pem",)), _block("b:1", ("/a.pem", "/ec.pem"))],
            [
                "b:1: 2 certificates share one ssl_stapling_file /s/x.ocsp (b:1~file): "
                f"/a.pem (b:1+0), /ec.pem (b:1+1); {SPLIT}"
            ],
            [],
            ["/s/x.ocsp"],
            id="kept-for-the-single-block-only",
        ),
        pytest.param(
            [_block("a:1", ("/a.pem",), key=False)],
            [
                'a:1: no "ssl_certificate_key" is defined for certificate "/a.pem" (a:1+0); '
                "nginx refuses this configuration"
            ],
            [],
            ["/s/x.ocsp"],
            id="no-key",
        ),
        pytest.param([_block("a:1", ())], [], [], [], id="no-certificate"),
    ],
)
def test_traps(
    blocks: list[ServerBlock], problems: list[str], warnings: list[str], kept: list[str]
) -> None:
    found = findings(blocks)
    assert (list(found.problems), list(found.warnings)) == (problems, warnings)
    files = staple_files(blocks)
    assert [f.path for f in files] == kept
    for staple in files:  # only the single-certificate blocks are checked by handshake
        assert all(len(b.certificates) == 1 for b in staple.servers)


def test_traps_from_a_file(tmp_path: Path) -> None:
    """The issue's cases, read from one configuration: one problem per block."""
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "http { ssl_stapling on;\n"
                "  server { listen 443 ssl; server_name both.test;\n"
                "    ssl_certificate rsa.pem; ssl_certificate_key rsa.key;\n"
                "    ssl_certificate ec.pem; ssl_certificate_key ec.key;\n"
                "    ssl_stapling_file both.ocsp; }\n"
                "  server { listen 443 ssl; server_name var.test;\n"
                "    ssl_certificate /c/$ssl_server_name.pem; ssl_certificate_key k.key;\n"
                "    ssl_stapling_file var.ocsp; }\n"
                "  server { listen 443 ssl; server_name self.test;\n"
                "    ssl_certificate self.pem; ssl_certificate_key self.key; }\n"
                "}\n"
            )
        },
    )
    conf = read_nginx_config(main)
    d = f"{tmp_path}/"
    assert conf.problems == (
        f"{d}nginx.conf:2: 2 certificates share one ssl_stapling_file {d}both.ocsp "
        f"({d}nginx.conf:5): {d}rsa.pem ({d}nginx.conf:3), {d}ec.pem ({d}nginx.conf:4); "
        f"{SPLIT}",
    )
    assert conf.warnings == (
        f'{d}nginx.conf:7: ssl_certificate "/c/$ssl_server_name.pem" (or its key) has '
        "variables: nginx loads it at each handshake and cannot staple it; ocsptool skips "
        f"the block at {d}nginx.conf:6",
    )
    assert conf.staple_files == ()
    assert conf.servers[1].variables


# -- bad input ----------------------------------------------------------------------------


def test_unreadable_main_configuration(tmp_path: Path) -> None:
    with pytest.raises(NginxConfigError) as missing:
        read_nginx_config(tmp_path / "nope.conf")
    assert str(missing.value) == (
        f"{tmp_path}/nope.conf: cannot read the nginx configuration: No such file or directory"
    )
    assert isinstance(missing.value, ConfigError)
    with pytest.raises(NginxConfigError, match="is a directory"):
        read_nginx_config(tmp_path)
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    with pytest.raises(NginxConfigError, match="not a regular file"):
        read_nginx_config(fifo)


def test_unreadable_included_file_is_a_problem_and_the_rest_is_read(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "nginx.conf": (
                "http {\n  include missing.conf;\n  include dir;\n"
                "  server { server_name kept.test; }\n}\n"
            ),
            "dir/x": "",
        },
    )
    conf = read_nginx_config(main)
    d = f"{tmp_path}/"
    assert conf.problems == (
        f"{d}nginx.conf:2: cannot read the included {d}missing.conf: No such file or directory",
        f"{d}nginx.conf:3: cannot read the included {d}dir: is a directory",
    )
    assert conf.servers[0].server_names == ("kept.test",)
    assert f"{d}missing.conf" in conf.inputs


def test_include_loop(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {"nginx.conf": "http { include a.conf; }\n", "a.conf": "include b.conf;\n",
         "b.conf": "include a.conf;\nserver { }\n"},
    )  # fmt: skip
    conf = read_nginx_config(main)
    assert conf.problems == (
        f"{tmp_path}/b.conf:1: include loop: {tmp_path}/a.conf includes itself",
    )
    assert len(conf.servers) == 1


def test_bounded_files_and_depth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"nginx.conf": "http { include conf.d/*.conf; }\n"}
    files |= {f"conf.d/{i:02}.conf": "server { }\n" for i in range(10)}
    main = write(tmp_path, files)
    monkeypatch.setattr(nginx_config, "MAX_FILES", 4)
    conf = read_nginx_config(main)
    assert len(conf.servers) == 3
    assert conf.problems == (
        f"{tmp_path}/nginx.conf:1: more than 4 configuration files; the rest is not read",
    )
    deep = write(tmp_path / "deep", {"nginx.conf": "a {" * 70 + "}" * 70 + "\n"})
    assert read_nginx_config(deep).problems == (
        f"{tmp_path}/deep/nginx.conf:1: blocks and includes nested too deep",
    )


def test_non_utf8_paths_survive_and_messages_are_printable(tmp_path: Path) -> None:
    main = tmp_path / "nginx.conf"
    main.write_bytes(
        b"http { server { ssl_certificate /c/\xff.pem; ssl_certificate_key /k;\n"
        b"ssl_stapling on; ssl_stapling_file /s/\x1b.ocsp; ssl_stapling_file /again; } }\n"
    )
    conf = read_nginx_config(main)
    cert = conf.servers[0].certificates[0].path
    assert os.fsencode(cert) == b"/c/\xff.pem"
    assert conf.problems == (f'{main}:2: "ssl_stapling_file" directive is duplicate',)
    assert conf.staple_files[0].path == "/s/\x1b.ocsp"


# -- against the real nginx -----------------------------------------------------------------

NGINX_EMERG = re.compile(r"\[emerg\] \d+#\d+: (.*?)(?: in (\S+:\d+))?$", re.MULTILINE)


def nginx_refusal(result: Any) -> tuple[str, str | None]:
    """nginx -t's first [emerg] message and its file:line."""
    match = NGINX_EMERG.search(result.stderr)
    assert match, result.stderr
    return match.group(1), match.group(2)


@pytest.fixture
def make_nginx(nginx_bin: str) -> Any:
    made: list[Nginx] = []

    def make(**options: Any) -> Nginx:
        nginx = Nginx(binary=nginx_bin, **options)
        made.append(nginx)
        return nginx

    yield make
    for nginx in made:
        nginx.close()


@pytest.mark.nginx
@pytest.mark.parametrize(
    "site",
    [
        pytest.param("server {\n  listen 80 }\n", id="unexpected-close"),
        pytest.param('server { server_name "a"b; }\n', id="after-quote"),
        pytest.param("server {\n  listen 80;\n", id="unclosed-block"),
        pytest.param("server { listen 80;\n  ssl_stapling\n    yes\n  ;\n}\n", id="bad-flag"),
        pytest.param("server { ssl_stapling_file a b; }\n", id="arguments"),
        pytest.param(
            "server {\n  ssl_stapling_file\n   a;\n  ssl_stapling_file b\n;\n}\n", id="duplicate"
        ),
        pytest.param("server { location / {\n ssl_certificate a; } }\n", id="wrong-context"),
        pytest.param("server { include\n  nothere.conf; }\n", id="missing-include"),
        pytest.param("}\n", id="stray-close"),
    ],
)
def test_refusals_match_nginx(make_nginx: Callable[..., Nginx], site: str) -> None:
    """Bad input: nginx -t refuses it, and the reader reports nginx's message at nginx's
    file:line (the line of the ';', '{' or '}')."""
    nginx = make_nginx()
    nginx.write("conf.d/site.conf", site)
    result = nginx.check()
    assert result.returncode == 1
    message, where = nginx_refusal(result)
    conf = read_nginx_config(nginx.config, prefix=nginx.prefix)
    assert conf.problems, message
    first = conf.problems[0]
    if message.startswith("open()"):  # nginx's words for an unreadable include
        assert first == (
            f"{where}: cannot read the included {nginx.dir}/nothere.conf: No such file or directory"
        )
        assert message.startswith(f'open() "{nginx.dir}/nothere.conf" failed')
    else:
        assert first == f"{where}: {message}"


@pytest.mark.nginx
def test_paths_resolve_as_nginx_resolves_them(
    make_nginx: Callable[..., Nginx], pki: PKI, tmp_path: Path
) -> None:
    """``nginx -t -c CONF -p PREFIX`` with everything relative: includes, certificates,
    staple files from the configuration's directory; the pid file from the prefix (nginx
    -t leaves an empty one there, which proves where it looked)."""
    nginx = make_nginx()
    conf_dir = nginx.dir / "etc"
    site = issue(pki.direct, conf_dir / "tls", "site.test")
    (conf_dir / "tls/site.ocsp").write_bytes(good_staple(site.leaf, pki.direct))
    port = free_port()
    write(
        conf_dir,
        {
            "main.conf": (
                "pid run/nginx.pid;\n"
                f"error_log {nginx.error_log};\n"
                "events {}\n"
                "http {\n"
                "  access_log off;\n"
                + "".join(
                    f"  {n}_temp_path {nginx.dir}/temp/{n};\n"
                    for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                )
                + "  ssl_stapling on;\n  include sites/*.conf;\n}\n"
            ),
            "sites/site.conf": (
                f"server {{ listen 127.0.0.1:{port} ssl; server_name site.test;\n"
                "  include snippets/tls.conf; }\n"
            ),
            "snippets/tls.conf": (
                "ssl_certificate tls/site.test.crt;\nssl_certificate_key tls/site.test.key;\n"
                "ssl_stapling_file tls/site.ocsp;\n"
            ),
        },
    )
    prefix = tmp_path / "prefix"
    (prefix / "run").mkdir(parents=True)
    result = subprocess.run(
        [nginx.binary, "-t", "-c", str(conf_dir / "main.conf"), "-p", str(prefix)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    conf = read_nginx_config(conf_dir / "main.conf", prefix=prefix)
    assert conf.problems == () and conf.warnings == ()
    assert Path(conf.pid_path).exists() and conf.pid_path == f"{prefix}/run/nginx.pid"
    (staple,) = conf.staple_files
    assert (staple.path, staple.certificate.path) == (
        f"{conf_dir}/tls/site.ocsp",
        f"{conf_dir}/tls/site.test.crt",
    )
    # and nginx did read that staple file: removing it makes nginx -t fail on that path
    Path(staple.path).unlink()
    result = subprocess.run(
        [nginx.binary, "-t", "-c", str(conf_dir / "main.conf"), "-p", str(prefix)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f'BIO_new_file("{staple.path}") failed' in result.stderr


@pytest.mark.nginx
def test_missing_or_broken_staple_file_stops_nginx(
    make_nginx: Callable[..., Nginx], pki: PKI
) -> None:
    """The fact the reload logic rests on: nginx -t (so start and reload) fails when the
    staple file is missing or not an OCSP response, and names the file."""
    nginx = make_nginx()
    site = issue(pki.direct, nginx.dir / "tls", "site.test")
    nginx.write(
        "conf.d/site.conf",
        f"server {{ listen 127.0.0.1:{free_port()} ssl; ssl_stapling on;\n"
        f"  ssl_certificate {site.cert}; ssl_certificate_key {site.key};\n"
        "  ssl_stapling_file tls/site.ocsp; }\n",
    )
    staple = nginx.dir / "tls/site.ocsp"
    result = nginx.check()
    assert result.returncode == 1
    assert nginx_refusal(result)[0].startswith(f'BIO_new_file("{staple}") failed')
    staple.write_bytes(b"not DER")
    result = nginx.check()
    assert result.returncode == 1
    assert nginx_refusal(result)[0].startswith(f'd2i_OCSP_RESPONSE_bio("{staple}") failed')
    staple.write_bytes(good_staple(site.leaf, pki.direct))
    assert nginx.check().returncode == 0


@pytest.mark.nginx
@pytest.mark.parametrize(
    ("lines", "warning"),
    [
        pytest.param("ssl_stapling off;", "has no effect", id="file-without-stapling"),
        pytest.param(
            "ssl_stapling on; ssl_certificate_key $ssl_server_name.key;",
            "has variables",
            id="variables",
        ),
    ],
)
def test_ignored_staple_files_are_not_read_by_nginx(
    make_nginx: Callable[..., Nginx], pki: PKI, lines: str, warning: str
) -> None:
    """What the warnings say, proven: with stapling off, or a certificate loaded per
    handshake, nginx starts although the staple file does not exist (it never reads it)."""
    nginx = make_nginx()
    site = issue(pki.direct, nginx.dir / "tls", "site.test")
    has_key = "ssl_certificate_key" in lines
    nginx.write(
        "conf.d/site.conf",
        f"server {{ listen 127.0.0.1:{free_port()} ssl; {lines}\n"
        f"  ssl_certificate {site.cert};"
        + ("" if has_key else f" ssl_certificate_key {site.key};")
        + "\n  ssl_stapling_file /nonexistent/site.ocsp; }\n",
    )
    assert nginx.check().returncode == 0
    conf = read_nginx_config(nginx.config, prefix=nginx.prefix)
    assert conf.staple_files == ()
    assert len(conf.warnings) == 1 and warning in conf.warnings[0]


@pytest.mark.nginx
def test_files_read_are_the_files_nginx_reads(make_nginx: Callable[..., Nginx]) -> None:
    """``nginx -T`` lists every configuration file it read: globs in order (hidden files
    skipped), relative includes from the configuration's directory, nested includes."""
    nginx = make_nginx()
    for name in ("b.conf", "a.conf", ".hidden.conf", "c.conf.off"):
        nginx.write(f"conf.d/{name}", "")
    nginx.write("conf.d/a.conf", "include snippets/*.inc;\ninclude snippets/one.inc;\n")
    nginx.write("snippets/one.inc", "")
    nginx.write("snippets/two.inc", "# a comment only\n")
    result = subprocess.run(
        [*nginx.argv("-T")], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^# configuration file (.*):$", result.stdout, re.MULTILINE)
    conf = read_nginx_config(nginx.config, prefix=nginx.prefix)
    d = f"{nginx.dir}/"
    assert listed == [
        f"{d}nginx.conf",
        f"{d}conf.d/a.conf",
        f"{d}snippets/one.inc",
        f"{d}snippets/two.inc",
        f"{d}conf.d/b.conf",
    ]
    assert [name for name in conf.inputs if os.path.isfile(name)] == listed
    assert conf.problems == ()
