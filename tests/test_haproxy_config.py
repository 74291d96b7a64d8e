"""The HAProxy configuration reader: unit tests on plain files, then real HAProxy binaries.

The second half writes real configurations of every shape, has each binary of the matrix
check them (``haproxy -c``), starts them and compares what the reader says HAProxy loads
with what HAProxy lists (``show ssl cert``) and serves (TLS handshakes per SNI and key type).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import PKI, haproxy_on_path, matrix_params, since_params
from cryptography.hazmat.primitives.serialization import Encoding

from ocsptool.haproxy_config import (
    Discovery,
    HAProxyConfigError,
    LoadedCert,
    Socket,
    SocketLevel,
    expand_crt,
    parse_crt_list,
    read_haproxy_config,
)
from ocsptool.haproxy_config.keywords import EVERY_RELEASE, SINCE
from ocsptool.haproxy_config.words import WordError, split_words
from ocsptool.testing.haproxy import free_port, tls_staple
from ocsptool.testing.haproxy_configs import (
    KeyType,
    Running,
    check_config,
    good_staple,
    issue,
    served_certificate,
    write_cert,
)
from ocsptool.testing.issuers import CaIssuers
from ocsptool.testing.matrix import Binary
from ocsptool.testing.pki import Authority, Leaf, key_pem
from ocsptool.testing.responder import Responder

DER = Encoding.DER
PEM = Encoding.PEM

HEAD = """\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
"""


def read(config: Path, text: str, **env: str) -> Discovery:
    config.write_text(text)
    return read_haproxy_config(config, env=env, defaults_file=None)


def names(discovery: Discovery) -> list[str]:
    return [cert.name for cert in discovery.certs]


# -- words: HAProxy's quoting --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("  bind :443 ssl crt /a.pem   # comment", ["bind", ":443", "ssl", "crt", "/a.pem"]),
        ('crt "/my certs/a.pem"', ["crt", "/my certs/a.pem"]),
        ("crt '/my certs/a.pem'", ["crt", "/my certs/a.pem"]),
        (r"crt /my\ certs/a\#1.pem", ["crt", "/my certs/a#1.pem"]),
        ('crt "${DIR}/a.pem" "$DIR/b"', ["crt", "/etc/c/a.pem", "/etc/c/b"]),
        ("crt ${DIR}/a.pem '$DIR'", ["crt", "${DIR}/a.pem", "$DIR"]),  # only inside "..."
        ('crt "${UNSET}x" "${UNSET-/d/f.pem}"', ["crt", "x", "/d/f.pem"]),
        ('"${LIST[*]}" z', ["p", "q", "z"]),
        ('a"b"c \'\' ""', ["abc", "", ""]),
        (r"\x41\t\q", ["A\t\\q"]),
        ('"cost $5"', ["cost $5"]),
        ("# only a comment", []),
    ],
)
def test_words_follow_haproxys_quoting_and_expansion(line: str, words: list[str]) -> None:
    assert split_words(line, {"DIR": "/etc/c", "LIST": "p  q"}) == words


@pytest.mark.parametrize("line", ['crt "/a.pem', "crt '/a.pem", 'x "${BAD"'])
def test_words_refuse_unmatched_quotes_and_bad_variables(line: str) -> None:
    with pytest.raises(WordError):
        split_words(line, {})


# -- expand_crt: files, bundles, directories ------------------------------------------------


def test_a_missing_crt_with_key_type_parts_is_a_bundle_in_haproxys_order(tmp_path: Path) -> None:
    for part in ("rsa", "ecdsa", "dsa"):
        (tmp_path / f"site.pem.{part}").write_text("x")
    base = f"{tmp_path}/site.pem"
    assert expand_crt(base).names == (f"{base}.dsa", f"{base}.ecdsa", f"{base}.rsa")
    assert expand_crt(base, bundles=False).problem == (
        f"unable to stat SSL certificate from file '{base}': No such file or directory"
    )
    (tmp_path / "site.pem").write_text("x")
    assert expand_crt(base).names == (base,)


def test_a_directory_loads_what_haproxy_loads(tmp_path: Path) -> None:
    for name in ("b.crt", "a.pem", "noext", "x.pem.rsa", ".hidden.pem"):
        (tmp_path / name).write_text("x")
    for name in ("a.pem.key", "a.pem.issuer", "a.pem.ocsp", "a.pem.sctl"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.pem").write_text("x")
    os.mkfifo(tmp_path / "fifo.pem")
    os.symlink(tmp_path / "sub", tmp_path / "linkdir")
    os.symlink(tmp_path / "a.pem", tmp_path / "link.pem")
    expected = tuple(
        f"{tmp_path}/{n}" for n in ("a.pem", "b.crt", "link.pem", "noext", "x.pem.rsa")
    )
    assert expand_crt(str(tmp_path)) == expand_crt(f"{tmp_path}//")
    assert expand_crt(str(tmp_path)).names == expected


def test_a_directory_problem_names_it(tmp_path: Path) -> None:
    assert expand_crt(str(tmp_path)).problem == f"'{tmp_path}': no certificate in this directory"
    os.symlink(tmp_path / "gone", tmp_path / "broken.pem")
    assert expand_crt(str(tmp_path)).problem == (
        f"unable to stat SSL certificate from file '{tmp_path}/broken.pem': "
        "No such file or directory"
    )


# -- crt-list files -------------------------------------------------------------------------


def test_crt_list_lines_options_and_filters() -> None:
    text = (
        "# comment\n"
        "\n"
        "a.pem\n"
        "b.pem [alpn h2,http/1.1 ocsp-update on] b.test *.b.test !no.b.test\n"
        "c.pem [allow-0rtt ocsp-update off]\n"
        "d.pem c.test [verify none]\n"
        "e.pem [ocsp-update maybe]\n"
        "f.pem [alpn h2\n"
        "g.pem ] x\n"
        "h.pem [a b] [c d]\n"
        "i.pem [ocsp /s/i.der key i.key]\r\n"
        "  j.pem   j.test\n"
    )
    entries, warnings = parse_crt_list(text, "/l.txt")
    got = [(e.line, e.crt, e.snis, e.ocsp_update, e.files) for e in entries]
    assert got == [
        (3, "a.pem", (), None, ()),
        (4, "b.pem", ("b.test", "*.b.test", "!no.b.test"), True, ()),
        (5, "c.pem", (), False, ()),
        (6, "d.pem", (), None, ()),  # HAProxy drops the words before "["
        (11, "i.pem", (), None, (("ocsp", "/s/i.der"), ("key", "i.key"))),
        (12, "j.pem", ("j.test",), None, ()),
    ]
    assert warnings == [
        "/l.txt:7: 'ocsp-update maybe': expected on or off, line skipped",
        "/l.txt:8: '[' without ']', line skipped",
        "/l.txt:9: ']' without '[', line skipped",
        "/l.txt:10: more than one '[...]', line skipped",
    ]


def test_a_crt_list_on_a_bind_line_with_crt_base(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("a.pem", "b.pem", "abs.pem"):
        (certs / name).write_text("x")
    crt_list = tmp_path / "list.txt"
    crt_list.write_text(
        f"a.pem [ocsp-update on] a.test !x.a.test\nb.pem\n{certs}/abs.pem *.abs.test\nmissing.pem\n"
    )
    found = read(
        tmp_path / "h.cfg",
        f"global\n    crt-base {certs}/\n{HEAD}frontend f\n"
        f"    bind :443 ssl crt-list {crt_list} crt-list {crt_list}\n"
        f"    bind :444 ssl crt-list {tmp_path}/none.txt\n",
    )
    assert found.certs[0] == LoadedCert(
        name=f"{certs}//a.pem",
        cert_file=f"{certs}//a.pem",
        key_file=None,
        staple_path=f"{certs}//a.pem.ocsp",
        issuer_path=f"{certs}//a.pem.issuer",
        ocsp_update=True,
        snis=("a.test", "!x.a.test"),
        origin=f"{crt_list}:1",
    )
    assert names(found) == [f"{certs}//a.pem", f"{certs}//b.pem", f"{certs}/abs.pem"]
    assert found.certs[2].snis == ("*.abs.test",)
    assert found.problems == (  # the crt-list twice on one line: its problem once
        f"{crt_list}:4: unable to stat SSL certificate from file '{certs}//missing.pem': "
        "No such file or directory",
        f"{tmp_path}/h.cfg:10: cannot open crt-list '{tmp_path}/none.txt': "
        "No such file or directory",
    )


def test_a_bundle_in_a_crt_list_is_one_entry_per_part(tmp_path: Path) -> None:
    for part in ("ecdsa", "rsa"):
        (tmp_path / f"site.pem.{part}").write_text("x")
    (tmp_path / "dir").mkdir()
    crt_list = tmp_path / "list"
    crt_list.write_text("site.pem [ocsp-update on] site.test\ndir\n")
    found = read(
        tmp_path / "h.cfg",
        f"global\n  crt-base {tmp_path}\nfrontend f\n  bind :1 ssl crt-list {crt_list}\n",
    )
    assert [(c.name, c.staple_path, c.snis, c.ocsp_update) for c in found.certs] == [
        (f"{tmp_path}/site.pem.ecdsa", f"{tmp_path}/site.pem.ecdsa.ocsp", ("site.test",), True),
        (f"{tmp_path}/site.pem.rsa", f"{tmp_path}/site.pem.rsa.ocsp", ("site.test",), True),
    ]
    assert found.problems == (f"{crt_list}:2: '{tmp_path}/dir' is a directory, not a certificate",)


# -- configuration files --------------------------------------------------------------------


def test_bind_lines_crt_base_env_and_sections(tmp_path: Path) -> None:
    certs = tmp_path / "c"
    certs.mkdir()
    for name in ("a.pem", "b.pem", "srv.pem", "k.pem", "k.pem.key"):
        (certs / name).write_text("x")
    found = read(
        tmp_path / "h.cfg",
        f"global\n  crt-base {certs}\n  setenv B b.pem\n{HEAD}"
        'frontend f\n  bind :443,:8443 ssl crt a.pem crt "$B" alpn h2 crt k.pem\n'
        f"backend b\n  server s 1.2.3.4:443 ssl crt srv.pem\n"
        f'listen l\n  bind :1 ssl crt "${{CERTS}}/a.pem"\n',
        CERTS=str(certs),
    )
    assert names(found) == [f"{certs}/a.pem", f"{certs}/b.pem", f"{certs}/k.pem"]
    assert found.certs[2].key_file is None  # HAProxy finds k.pem.key itself; only a key it is told
    assert found.certs[0].origin == f"{tmp_path}/h.cfg:10"
    assert (found.warnings, found.problems) == ((), ())


def test_lines_that_cannot_be_read_are_warned_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f'global\n  stats socket "/unterminated\n  stats socket abns@foo level admin\n'
        f"  stats socket /ok.sock level root\n  stats socket\n{HEAD}"
        f"frontend f\n  bind :1 ssl crt\n  bind :2 ssl crt {tmp_path}/a.pem\n"
        "  bind :3 ssl crt /nonexistent.pem\n",
    )
    assert found.warnings == (
        f"{config}:2: unmatched quote, line skipped",
        f"{config}:3: stats socket skipped: "
        "'abns@foo' is not a Unix or TCP socket ocsptool can reach",
        f"{config}:4: stats socket skipped: unknown level 'root'",
        f"{config}:5: 'stats socket' without an address, skipped",
        f"{config}:12: 'crt' without a file, skipped",
    )
    assert found.problems == (
        f"{config}:14: unable to stat SSL certificate from file '/nonexistent.pem': "
        "No such file or directory",
    )
    assert names(found) == [f"{tmp_path}/a.pem"]


@pytest.mark.parametrize(
    ("address", "spelled"),
    [
        ("/run/haproxy/admin.sock", "/run/haproxy/admin.sock"),
        ("unix@/run/x.sock", "/run/x.sock"),
        ("ipv4@127.0.0.1:9999", "ipv4@127.0.0.1:9999"),
        ("ipv4@:9999", "ipv4@127.0.0.1:9999"),
        ("*:9999", "ipv4@127.0.0.1:9999"),
        ("10.0.0.1:9999", "ipv4@10.0.0.1:9999"),
        ("ipv6@::1:9999", "ipv6@[::1]:9999"),
        ("ipv6@[::]:9999", "ipv6@[::1]:9999"),
        ("[2001:db8::1]:9999", "ipv6@[2001:db8::1]:9999"),
        ("rel.sock", "/prefix/rel.sock"),
    ],
)
def test_stats_socket_addresses_in_ocsptools_spelling(
    tmp_path: Path, address: str, spelled: str
) -> None:
    found = read(
        tmp_path / "h.cfg",
        f"global\n  unix-bind prefix /prefix/\n  stats socket {address} mode 600 level admin\n"
        "  stats socket /b.sock\n  stats socket /c.sock level user expose-fd listeners\n",
    )
    assert found.sockets == (
        Socket(spelled, SocketLevel.ADMIN, master=False, origin=f"{tmp_path}/h.cfg:3"),
        Socket("/b.sock", SocketLevel.OPERATOR, master=False, origin=f"{tmp_path}/h.cfg:4"),
        Socket("/c.sock", SocketLevel.USER, master=False, origin=f"{tmp_path}/h.cfg:5"),
    )


def test_the_master_socket_comes_from_debians_defaults_for_its_config(tmp_path: Path) -> None:
    config = tmp_path / "h.cfg"
    config.write_text("global\n")
    defaults = tmp_path / "default"

    def masters(text: str | None) -> list[tuple[str, SocketLevel]]:
        if text is not None:
            defaults.write_text(text)
        found = read_haproxy_config(config, env={}, defaults_file=defaults)
        return [(s.address, s.level) for s in found.sockets if s.master]

    assert masters(None) == []  # no defaults file: not Debian's unit
    assert masters("# stock file\n") == []  # the unit runs /etc/haproxy/haproxy.cfg
    assert masters(f'CONFIG="{config}"\n') == [("/run/haproxy-master.sock", SocketLevel.ADMIN)]
    assert masters(f"CONFIG={config}\nEXTRAOPTS='-S /tmp/m.sock,mode,600,level,operator'\n") == [
        ("/tmp/m.sock", SocketLevel.OPERATOR)
    ]
    assert masters(f"export CONFIG={config}\nEXTRAOPTS=\n") == []
    assert masters(f'CONFIG={config}\nEXTRAOPTS="-f /etc/more.cfg -S /m"\n') == [
        ("/m", SocketLevel.ADMIN)
    ]
    assert read_haproxy_config(config, env={}, defaults_file=defaults).warnings == (
        f"{defaults}:EXTRAOPTS: the '-f' configuration files it adds are not read",
        f"{config}: no bind line or ssl-f-use loads a certificate",
    )


def test_a_defaults_file_others_may_write_names_no_master_socket(tmp_path: Path) -> None:
    """``/etc/default/haproxy`` names the master socket keys may go to: it must be root's
    (or this user's) and nobody else's to write (``trust.Steering``)."""
    config = tmp_path / "h.cfg"
    config.write_text("global\n")
    defaults = tmp_path / "default"
    defaults.write_text(f'CONFIG="{config}"\nEXTRAOPTS="-S /tmp/m.sock"\n')
    defaults.chmod(0o666)
    found = read_haproxy_config(config, env={}, defaults_file=defaults)
    assert [s for s in found.sockets if s.master] == []
    assert found.warnings == (
        f"{defaults}: defaults file not used (its master socket is not used): it is "
        f"root:root 0666, writable by other users: sudo chmod go-w {defaults}",
        f"{config}: no bind line or ssl-f-use loads a certificate",
    )


def test_an_unreadable_configuration_raises_one_line(tmp_path: Path) -> None:
    with pytest.raises(HAProxyConfigError) as missing:
        read_haproxy_config(tmp_path / "no.cfg", env={})
    assert str(missing.value) == (
        f"{tmp_path}/no.cfg: cannot read the HAProxy configuration: No such file or directory"
    )
    fifo = tmp_path / "fifo.cfg"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(HAProxyConfigError) as not_regular:
        read_haproxy_config(fifo, env={})
    assert time.monotonic() - started < 1
    assert str(not_regular.value) == (
        f"{fifo}: cannot read the HAProxy configuration: not a regular file"
    )
    (tmp_path / "d").mkdir()
    with pytest.raises(HAProxyConfigError) as empty_dir:
        read_haproxy_config(tmp_path / "d", env={})
    assert str(empty_dir.value) == f"{tmp_path}/d: no .cfg file in this configuration directory"


def test_a_configuration_directory_is_read_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text("x")
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10-global.cfg").write_text(f"global\n  crt-base {tmp_path}\n  stats socket /s\n")
    (conf / "20-front.cfg").write_text("frontend f\n  bind :1 ssl crt a.pem\n")
    (conf / "README").write_text("frontend g\n  bind :2 ssl crt nope.pem\n")
    found = read_haproxy_config(conf, env={}, defaults_file=None)
    assert names(found) == [f"{tmp_path}/a.pem"]
    assert found.certs[0].origin == f"{conf}/20-front.cfg:2"


def test_crt_store_references(tmp_path: Path) -> None:
    certs, keys = tmp_path / "certs", tmp_path / "keys"
    certs.mkdir()
    keys.mkdir()
    for name in ("one.crt", "two.pem", "three.pem", "x.pem"):
        (certs / name).write_text("x")
    (keys / "one.key").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f"global\n  ocsp-update.mode on\n"
        f"crt-store web\n  crt-base {certs}\n  key-base {keys}\n"
        f'  load crt "one.crt" key one.key ocsp {tmp_path}/one.der alias first ocsp-update off\n'
        f"  load crt two.pem issuer {tmp_path}/ca.pem\n"
        f"  load crt three.pem ocsp missing.der\n  load crt\n  load crt x.pem bogus 1\n"
        f"{HEAD}frontend f\n  bind :1 ssl crt @web/first crt @web/two.pem crt @web/nope\n"
        "  bind :2 ssl crt @web/three.pem\n",
    )
    assert found.certs == (
        LoadedCert(
            "@web/first",
            f"{certs}/one.crt",
            f"{keys}/one.key",
            f"{tmp_path}/one.der",  # an absolute ocsp: as written; a missing one ocsptool writes
            None,
            ocsp_update=False,
            snis=(),
            origin=f"{config}:17",
            staple_from=("crt-store load ocsp", f"{config}:6"),
        ),
        LoadedCert(  # no ocsp on its load line: HAProxy reads no staple (nor <crt>.ocsp)
            "@web/two.pem",
            f"{certs}/two.pem",
            None,
            None,
            None,
            ocsp_update=True,
            snis=(),
            origin=f"{config}:17",
            staple_from=("crt-store load", f"{config}:7"),
        ),
        LoadedCert(
            "@web/three.pem",
            f"{certs}/three.pem",
            None,
            f"{certs}/missing.der",  # relative: under the store's crt-base
            None,
            ocsp_update=True,
            snis=(),
            origin=f"{config}:18",
            staple_from=("crt-store load ocsp", f"{config}:8"),
        ),
    )
    assert found.warnings == (  # two.pem: ocsp-update on, HAProxy staples it itself
        f"{config}:9: load: expected 'crt <file>' and keyword/value pairs, line skipped",
        f"{config}:10: load: unknown keyword 'bogus' (HAProxy refuses to start), line skipped",
    )
    assert found.problems == (
        f"{config}:17: '@web/nope' is not in any crt-store defined before it",
    )


# -- keywords that change which certificates load, their names, and where their staples are


def _files(found: Discovery) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(c.name, c.cert_file, c.key_file, c.staple_path, c.issuer_path) for c in found.certs]


@pytest.mark.parametrize(
    ("words", "staple", "issuer", "problem"),
    [
        ("all", ".ocsp", ".issuer", None),
        ("ocsp", ".ocsp", None, None),
        ("key ocsp issuer", ".ocsp", ".issuer", None),
        ("key sctl", None, None, None),
        ("none", None, None, None),
        ("none ocsp", ".ocsp", ".issuer", "'none' and 'all' can be only used alone"),
        ("ocsp all", ".ocsp", ".issuer", "'none' and 'all' can be only used alone"),
        ("ocsp certs", ".ocsp", ".issuer", "unknown 'certs'"),
    ],
)
def test_ssl_load_extra_files_chooses_the_staple_and_issuer_files(
    tmp_path: Path, words: str, staple: str | None, issuer: str | None, problem: str | None
) -> None:
    (tmp_path / "a.pem").write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f"global\n  crt-base {tmp_path}\n  ssl-load-extra-files {words}\n"
        "frontend f\n  bind :1 ssl crt a.pem\n",
    )
    cert = found.certs[0]
    base = f"{tmp_path}/a.pem"
    assert (cert.staple_path, cert.issuer_path) == (
        staple and base + staple,
        issuer and base + issuer,
    )
    if problem:
        assert found.problems == (
            f"{config}:3: ssl-load-extra-files: {problem} (HAProxy refuses to start)",
        )
    elif staple is None:
        assert cert.staple_from == ("ssl-load-extra-files", f"{config}:3")
        assert found.warnings == (
            f"{config}:3: ssl-load-extra-files leaves out 'ocsp': HAProxy reads no .ocsp file "
            f"(add 'ocsp' to it); ocsptool does not staple '{base}'",
        )
    else:
        assert (found.warnings, found.problems, cert.staple_from) == ((), (), None)


def test_without_bundle_in_ssl_load_extra_files_parts_are_not_looked_for(tmp_path: Path) -> None:
    (tmp_path / "site.pem.rsa").write_text("x")
    config = tmp_path / "h.cfg"
    body = f"frontend f\n  bind :1 ssl crt {tmp_path}/site.pem\n"
    assert names(read(config, f"global\n{body}")) == [f"{tmp_path}/site.pem.rsa"]
    found = read(config, f"global\n  ssl-load-extra-files key ocsp\n{body}")
    assert (names(found), found.problems) == (
        [],
        (
            f"{config}:4: unable to stat SSL certificate from file '{tmp_path}/site.pem': "
            "No such file or directory",
        ),
    )


def test_ssl_load_extra_del_ext_strips_crt_for_every_sibling(tmp_path: Path) -> None:
    for name in ("site.crt", "other.pem", "dir/d.crt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f"global\n  crt-base {tmp_path}\n  ssl-load-extra-del-ext\n"
        "frontend f\n  bind :1 ssl crt site.crt crt other.pem crt dir\n",
    )
    t = tmp_path
    assert _files(found) == [  # the name stays x.crt; HAProxy reads x.key, x.ocsp, x.issuer
        (f"{t}/site.crt", f"{t}/site.crt", f"{t}/site.key", f"{t}/site.ocsp", f"{t}/site.issuer"),
        (f"{t}/other.pem", f"{t}/other.pem", None, f"{t}/other.pem.ocsp", f"{t}/other.pem.issuer"),
        (
            f"{t}/dir/d.crt",
            f"{t}/dir/d.crt",
            f"{t}/dir/d.key",
            f"{t}/dir/d.ocsp",
            f"{t}/dir/d.issuer",
        ),
    ]
    assert found.certs[0].staple_from == ("ssl-load-extra-del-ext", f"{config}:3")
    assert found.certs[1].staple_from is None
    assert (found.warnings, found.problems) == ((), ())


def test_bind_lines_in_every_section_that_serves_tls(tmp_path: Path) -> None:
    for name in ("fe.pem", "dflt.pem", "li.pem", "peer.pem", "peerdef.pem", "lf.pem", "srv.pem"):
        (tmp_path / name).write_text("x")
    found = read(
        tmp_path / "h.cfg",
        f"global\n  crt-base {tmp_path}\n{HEAD}"
        "frontend f\n  bind :1 ssl crt fe.pem default-crt dflt.pem\n"
        "listen l\n  bind :2 ssl crt li.pem\n  server s 1.2.3.4:443 ssl crt srv.pem\n"
        "backend b\n  server s 1.2.3.4:443 ssl crt srv.pem\n  default-server ssl crt srv.pem\n"
        "peers p\n  bind :3 ssl crt peer.pem\n  server local\n"
        "peers q\n  default-bind ssl crt peerdef.pem\n  peer x 1.2.3.4:5\n"
        "log-forward lf\n  bind :4 ssl crt lf.pem\n  log stdout format raw local0\n",
    )
    assert names(found) == [
        f"{tmp_path}/{n}"
        for n in ("fe.pem", "dflt.pem", "li.pem", "peer.pem", "peerdef.pem", "lf.pem")
    ]  # server and default-server crt: client certificates, never stapled


def test_bind_options_are_read_by_their_number_of_arguments(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f"global\n  crt-base {tmp_path}\nfrontend f\n"
        "  bind :1 name crt ssl alpn crt-list crt a.pem strict-sni\n"  # values named crt
        "  bind :2 ssl crt a.pem crtt b.pem crt c.pem\n"
        "  bind :3 ssl crt-list\n",
    )
    assert names(found) == [f"{tmp_path}/a.pem"]
    assert found.warnings == (
        f"{config}:5: bind: unknown keyword 'crtt' (HAProxy 2.6 to 3.4 refuse it); "
        "the rest of the line is not read",
        f"{config}:6: 'crt-list' without a file, skipped",
    )
    assert found.problems == ()


def test_ssl_f_use_loads_like_a_crt_list_line_when_its_section_ends(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("a.pem", "b.pem", "c.pem", "k.pem"):
        (certs / name).write_text("x")
    (tmp_path / "k.key").write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f"global\n  crt-base {certs}\n{HEAD}"
        "frontend f\n"
        "  ssl-f-use crt a.pem alpn h2 ocsp-update on\n"
        f"  ssl-f-use ocsp {tmp_path}/b.der crt b.pem\n"
        f"  ssl-f-use crt k.pem key {tmp_path}/k.key\n"
        "  ssl-f-use crt c.pem bogus 1\n"
        "  ssl-f-use alpn h2\n"
        "  bind :1 ssl crt c.pem\n"
        "backend b\n  ssl-f-use crt a.pem\n",
    )
    t = certs
    assert [(c.name, c.staple_path, c.ocsp_update, c.origin) for c in found.certs] == [
        (f"{t}/c.pem", f"{t}/c.pem.ocsp", False, f"{config}:14"),  # the bind line first
        (f"{t}/k.pem", None, False, f"{config}:11"),  # then ssl-f-use, last line first
        (f"{t}/b.pem", f"{tmp_path}/b.der", False, f"{config}:10"),
        (f"{t}/a.pem", f"{t}/a.pem.ocsp", True, f"{config}:9"),
    ]
    assert found.certs[1].key_file == f"{tmp_path}/k.key"
    assert found.certs[2].staple_from == ("ssl-f-use ocsp", f"{config}:10")
    assert found.warnings == (
        f"{config}:13: ssl-f-use (HAProxy 3.2+) without 'crt', skipped",
        f"{config}:12: ssl-f-use (HAProxy 3.2+): unknown keyword 'bogus' (HAProxy refuses to "
        "start), line skipped",
        f"{config}:11: 'key' without 'ocsp': HAProxy does not look for <crt>.ocsp (add 'ocsp "
        f"<file>'); ocsptool does not staple '{t}/k.pem'",
    )


def test_crt_list_file_options_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("a.pem", "b.pem", "c.pem", "d.pem", "e.pem"):
        (certs / name).write_text("x")
    (tmp_path / "k.key").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    monkeypatch.chdir(tmp_path)
    crt_list = tmp_path / "list"
    crt_list.write_text(
        "a.pem [ocsp a.der issuer ca.pem] a.test\n"  # cwd, not crt-base: HAProxy reads ./a.der
        "b.pem [key k.key]\n"  # a file keyword and no ocsp: no staple at all
        "c.pem [ocsp-update on crt nonexistent.pem]\n"  # siblings still looked for
        "d.pem [issuer missing.pem ocsp d.der]\n"
        "e.pem [alpn h2 ocsp e1.der ocsp e2.der]\n"  # the last one wins
    )
    config = tmp_path / "h.cfg"
    found = read(
        config, f"global\n  crt-base {certs}\nfrontend f\n  bind :1 ssl crt-list {crt_list}\n"
    )
    c = certs
    assert _files(found) == [
        (f"{c}/a.pem", f"{c}/a.pem", None, "a.der", "ca.pem"),
        (f"{c}/b.pem", f"{c}/b.pem", "k.key", None, None),
        (f"{c}/c.pem", f"{c}/c.pem", None, f"{c}/c.pem.ocsp", f"{c}/c.pem.issuer"),
        (f"{c}/d.pem", f"{c}/d.pem", None, "d.der", "missing.pem"),
        (f"{c}/e.pem", f"{c}/e.pem", None, "e2.der", None),
    ]
    assert [c.staple_from for c in found.certs] == [
        ("crt-list ocsp", f"{crt_list}:1"),
        ("crt-list key", f"{crt_list}:2"),
        None,
        ("crt-list ocsp", f"{crt_list}:4"),
        ("crt-list ocsp", f"{crt_list}:5"),
    ]
    assert found.problems == (
        f"{crt_list}:4: crt-list issuer: 'missing.pem' cannot be read (HAProxy refuses to start)",
    )
    assert found.warnings == (
        f"{crt_list}:2: 'key' without 'ocsp': HAProxy does not look for <crt>.ocsp (add 'ocsp "
        f"<file>'); ocsptool does not staple '{c}/b.pem'",
    )


def test_crt_list_options_haproxy_does_not_know_skip_the_line(tmp_path: Path) -> None:
    for name in ("a.pem", "b.pem"):
        (tmp_path / name).write_text("x")
    (tmp_path / "site.pem.rsa").write_text("x")
    crt_list = tmp_path / "list"
    crt_list.write_text("a.pem [ocsp-update on bogus 1]\nb.pem [alpn]\nsite.pem [ocsp s.der]\n")
    found = read(
        tmp_path / "h.cfg",
        f"global\n  crt-base {tmp_path}\nfrontend f\n  bind :1 ssl crt-list {crt_list}\n",
    )
    assert (names(found), found.warnings) == (
        [],
        (
            f"{crt_list}:1: unknown keyword 'bogus' (HAProxy refuses to start), line skipped",
            f"{crt_list}:2: 'alpn' needs an argument, line skipped",
        ),
    )
    assert found.problems == (
        f"{crt_list}:3: '{tmp_path}/site.pem' is a multi-cert bundle: "
        "HAProxy 3.0+ refuses ocsp with it",
    )


def test_crt_store_sections_names_and_bases(tmp_path: Path) -> None:
    g, s, k = tmp_path / "global", tmp_path / "store", tmp_path / "keys"
    for directory, name in ((s, "a.pem"), (g, "u.pem"), (s, "u.pem"), (k, "a.key"), (s, "abs.pem")):
        directory.mkdir(exist_ok=True)
        (directory / name).write_text("x")
    (k / "g.key").write_text("x")
    (s / "gen.pem").write_text("x")
    config = tmp_path / "h.cfg"
    found = read(
        config,
        f"global\n  crt-base {g}\n  key-base {k}\n"
        f"crt-store web\n  crt-base {s}\n"
        "  load crt a.pem key a.key ocsp a.der issuer i.pem\n"  # key: the global key-base
        f"  load crt {s}/abs.pem ocsp-update on ocsp abs.der\n"
        "  load crt gen.pem alias g generate-dummy on keytype ECDSA\n"
        "  crt-base /elsewhere\n"
        "  verify none\n"
        "crt-store\n  load crt u.pem alias un ocsp u.der\n  load crt u.pem ocsp plain.der\n"
        f"{HEAD}frontend f\n"
        f"  bind :1 ssl crt @web/a.pem crt @web{s}/abs.pem crt @web/g crt @/un crt u.pem\n",
    )
    assert _files(found) == [
        ("@web/a.pem", f"{s}/a.pem", f"{k}/a.key", f"{s}/a.der", f"{s}/i.pem"),
        (f"@web{s}/abs.pem", f"{s}/abs.pem", None, f"{s}/abs.der", None),
        ("@web/g", f"{s}/gen.pem", None, None, None),
        ("@/un", f"{g}/u.pem", None, f"{g}/u.der", None),  # an unnamed store: global bases
        (f"{g}/u.pem", f"{g}/u.pem", None, f"{g}/plain.der", None),  # named by crt-base/crt
    ]
    assert found.certs[1].ocsp_update is True
    assert found.certs[2].staple_from == ("generate-dummy", f"{config}:8")
    assert found.problems == (
        f"{config}:6: crt-store (HAProxy 3.0+): '{s}/i.pem' cannot be read "
        "(HAProxy refuses to start)",
        f"{config}:9: crt-store: 'crt-base' after a load line (HAProxy 3.0+ refuses to start)",
    )
    assert found.warnings == (
        f"{config}:10: crt-store: unknown keyword 'verify' (HAProxy refuses to start), "
        "line skipped",
        f"{config}:8: HAProxy generates this certificate itself (generate-dummy on); ocsptool does "
        "not staple '@web/g'",
    )


@pytest.mark.parametrize(
    ("line", "base"),
    [
        ("", None),
        ("default-path current", None),
        ("default-path config", "{conf}"),
        ("default-path parent", "{conf}/.."),
        ("default-path origin {root}/o", "{root}/o"),
    ],
)
def test_default_path_is_where_relative_names_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, base: str | None
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")  # where HAProxy (and ocsptool) were started
    line, base = (x.format(conf=conf, root=tmp_path) if x else x for x in (line, base))
    where = Path(base or tmp_path / "run")
    (where / "certs").mkdir(parents=True, exist_ok=True)
    (where / "certs" / "site.pem").write_text("x")
    (where / "list").write_text("certs/site.pem [ocsp site.der]\n")
    found = read(conf / "h.cfg", f"global\n  {line}\nfrontend f\n  bind :1 ssl crt-list list\n")
    prefix = f"{base}/" if base else ""
    assert _files(found) == [  # the name stays as written: show ssl cert lists it so
        ("certs/site.pem", f"{prefix}certs/site.pem", None, f"{prefix}site.der", None)
    ]
    assert found.problems == ()


def test_every_option_that_chooses_a_staple_file_names_its_first_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam for per-version trust: each LoadedCert says which option chose its staple
    file and where, and ``keywords.SINCE`` knows which release has that option."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.crt", "b.pem", "c.pem", "d.pem", "e.pem", "f.pem", "k"):
        (tmp_path / name).write_text("x")
    (tmp_path / "list").write_text("c.pem [ocsp c.der]\nd.pem [key k]\n")
    found = read(
        tmp_path / "h.cfg",
        "global\n  ssl-load-extra-del-ext\n"
        "crt-store s\n  load crt e.pem ocsp e.der\n  load crt f.pem\n"
        "  load crt g.pem generate-dummy on\n"
        "frontend f\n  bind :1 ssl crt a.crt crt-list list crt @s/e.pem crt @s/f.pem crt @s/g.pem\n"
        "  ssl-f-use crt b.pem ocsp b.der\n",
    )
    options = {c.staple_from[0] for c in found.certs if c.staple_from}
    assert options == {
        "ssl-load-extra-del-ext", "crt-list ocsp", "crt-list key", "crt-store load ocsp",
        "crt-store load", "generate-dummy", "ssl-f-use ocsp",
    }  # fmt: skip
    assert options <= SINCE.keys() | EVERY_RELEASE
    found = read(
        tmp_path / "h.cfg", "global\n  ssl-load-extra-files none\nfrontend f\n  bind :1 crt b.pem\n"
    )
    assert found.certs[0].staple_from == ("ssl-load-extra-files", f"{tmp_path}/h.cfg:2")
    assert "ssl-load-extra-files" in EVERY_RELEASE


def test_issuers_chain_path_is_kept_for_finding_issuers(tmp_path: Path) -> None:
    (tmp_path / "chains").mkdir()
    config = tmp_path / "h.cfg"
    found = read(config, f"global\n  issuers-chain-path {tmp_path}/chains/\n")
    assert (found.issuers_dir, found.problems) == (f"{tmp_path}/chains", ())
    found = read(config, f"global\n  issuers-chain-path {tmp_path}/none\n")
    assert found.problems == (
        f"{config}:2: issuers-chain-path '{tmp_path}/none' is not a directory "
        "(HAProxy refuses to start)",
    )


# -- the real binaries ----------------------------------------------------------------------


def _config(tmp_path: Path, body: str, *, port: int, global_lines: str = "") -> tuple[Path, str]:
    sock = f"{tmp_path}/admin.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {sock} level admin\n{global_lines}{HEAD}"
        f"frontend tls\n    bind 127.0.0.1:{port} ssl {body}\n"
        "    http-request return status 200\n"
    )
    return config, sock


def _listed(run: Running, sock: str) -> list[str]:
    reply = run.ask(sock, "show ssl cert")
    return sorted(line for line in reply.splitlines() if line and not line.startswith("#"))


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: Unix socket paths are limited to ~107 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ocsptool-hacfg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_directory_rules(binary: Binary, short_tmp: Path) -> None:
    certs = short_tmp / "certs"
    served = {n: write_cert(certs / f"{n}.pem", f"{n}.test") for n in ("a", "b")}
    served["noext"] = write_cert(certs / "noext", "noext.test")
    write_cert(certs / "sub" / "deep.pem", "deep.test")
    write_cert(certs / ".hidden.pem", "hidden.test")
    for junk in ("a.pem.key", "a.pem.issuer", "x.ocsp", "x.sctl"):
        (certs / junk).write_text("not a certificate\n")
    os.mkfifo(certs / "fifo.pem")
    port = free_port()
    config, sock = _config(short_tmp, f"crt {certs}/", port=port)
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert names(found) == [f"{certs}/a.pem", f"{certs}/b.pem", f"{certs}/noext"]
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=sock) as run:
        assert _listed(run, sock) == sorted(names(found))
        for name, der in served.items():
            assert served_certificate(port, f"{name}.test") == der
    (certs / "junk.txt").write_text("not a certificate\n")
    assert check_config(binary.path, config).returncode == 1  # anything else must be a cert


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_bundles_serve_each_part_per_key_type(binary: Binary, short_tmp: Path) -> None:
    root = Authority.root()
    certs = short_tmp / "c"
    rsa = issue(root, certs / "site.pem.rsa", "site.test", KeyType.RSA)
    ecdsa = issue(root, certs / "site.pem.ecdsa", "site.test", KeyType.ECDSA)
    port = free_port()
    config, sock = _config(
        short_tmp, "crt site.pem", port=port, global_lines=f"    crt-base {certs}\n"
    )
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert names(found) == [f"{certs}/site.pem.ecdsa", f"{certs}/site.pem.rsa"]
    staples = {}
    for cert, leaf in zip(found.certs, (ecdsa, rsa), strict=True):
        staples[cert.name] = good_staple(leaf, root)
        Path(cert.staple_path).write_bytes(staples[cert.name])
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=sock) as run:
        assert _listed(run, sock) == sorted(names(found))
        assert served_certificate(port, "site.test", KeyType.RSA) == rsa.cert.public_bytes(DER)
        assert served_certificate(port, "site.test", KeyType.ECDSA) == ecdsa.cert.public_bytes(DER)
        # tls_staple offers ECDSA first: HAProxy serves the .ecdsa part and its own staple
        assert tls_staple(port, "site.test") == staples[f"{certs}/site.pem.ecdsa"]


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_crt_list_with_options_and_filters(binary: Binary, short_tmp: Path) -> None:
    root = Authority.root()
    certs = short_tmp / "c"
    leaves = {n: issue(root, certs / f"{n}.pem", f"{n}.test") for n in ("a", "b", "c", "d")}
    update = " ocsp-update on" if binary.release >= (3, 0) else ""
    crt_list = short_tmp / "list.txt"
    crt_list.write_text(
        "# the default certificate comes first\n"
        "c.pem\n"
        "\n"
        f"a.pem [alpn h2,http/1.1{update}] a.test *.a.test !no.a.test\n"
        "b.pem [ciphers ECDHE-ECDSA-AES128-GCM-SHA256] no.a.test b.test\n"
        "d.pem dropped.test [alpn h2]\n"  # HAProxy drops the words before '['
    )
    port = free_port()
    config, sock = _config(
        short_tmp, f"crt-list {crt_list}", port=port, global_lines=f"    crt-base {certs}\n"
    )
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert [(c.name, c.snis, c.ocsp_update) for c in found.certs] == [
        (f"{certs}/c.pem", (), False),
        (f"{certs}/a.pem", ("a.test", "*.a.test", "!no.a.test"), bool(update)),
        (f"{certs}/b.pem", ("no.a.test", "b.test"), False),
        (f"{certs}/d.pem", (), False),
    ]
    staple = good_staple(leaves["b"], root)
    Path(found.certs[2].staple_path).write_bytes(staple)
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=sock) as run:
        assert _listed(run, sock) == sorted(names(found))
        der = {n: leaf.cert.public_bytes(DER) for n, leaf in leaves.items()}
        assert served_certificate(port, "x.a.test") == der["a"]
        assert served_certificate(port, "no.a.test") == der["b"]  # the negation holds
        assert served_certificate(port, "other.test") == der["c"]
        assert served_certificate(port, "dropped.test") == der["c"]
        assert served_certificate(port, "d.test") == der["d"]  # its own name
        assert tls_staple(port, "b.test") == staple


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_real_crt_store(binary: Binary, short_tmp: Path) -> None:
    root = Authority.root()
    certs, keys = short_tmp / "certs", short_tmp / "keys"
    one = issue(root, certs / "one.crt", "one.test")
    (certs / "one.crt").write_bytes(one.bundle_pem(key=False))
    keys.mkdir()
    (keys / "one.key").write_bytes(key_pem(one.key))
    two = issue(root, certs / "two.pem", "two.test")
    staple = good_staple(one, root)
    (certs / "one.der").write_bytes(staple)  # a relative ocsp is under the store's crt-base
    port = free_port()
    store = (
        f"crt-store web\n    crt-base {certs}\n    key-base {keys}\n"
        '    load crt "one.crt" key "one.key" ocsp "one.der" alias "first"\n'
        "    load crt two.pem\n"
        # an unnamed store: HAProxy names its entry by the global crt-base, as a bind line would
        f"crt-store\n    crt-base {short_tmp / 'other'}\n    load crt three.pem\n"
    )
    three = issue(root, short_tmp / "other" / "three.pem", "three.test")
    config, sock = _config(
        short_tmp,
        f"crt @web/first crt-list {short_tmp / 'l'} crt three.pem",
        port=port,
        global_lines=f"    crt-base {short_tmp}/global\n",
    )
    (short_tmp / "l").write_text("@web/two.pem two.test\n")
    text = config.read_text().replace(HEAD, store + HEAD)
    config.write_text(text)
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert [(c.name, c.cert_file, c.key_file, c.staple_path) for c in found.certs] == [
        ("@web/first", f"{certs}/one.crt", f"{keys}/one.key", f"{certs}/one.der"),
        ("@web/two.pem", f"{certs}/two.pem", None, None),  # no ocsp on its load line
        (f"{short_tmp}/global/three.pem", f"{short_tmp}/other/three.pem", None, None),
    ]
    assert found.problems == ()
    assert len(found.warnings) == 2  # two certificates HAProxy reads no staple for
    # a valid staple beside them is not read: the store never looks for <crt>.ocsp
    (certs / "two.pem.ocsp").write_bytes(good_staple(two, root))
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=sock) as run:
        assert _listed(run, sock) == sorted(names(found))
        assert served_certificate(port, "one.test") == one.cert.public_bytes(DER)
        assert served_certificate(port, "two.test") == two.cert.public_bytes(DER)
        assert served_certificate(port, "three.test") == three.cert.public_bytes(DER)
        assert tls_staple(port, "two.test") is None
        assert tls_staple(port, "one.test") == staple


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_two_instances_and_socket_levels(binary: Binary, short_tmp: Path) -> None:
    runs = []
    tcp = free_port()
    for n, extra in (("one", ""), ("two", f"    stats socket ipv4@:{tcp} level user\n")):
        base = short_tmp / n
        der = write_cert(base / "site.pem", f"{n}.test")
        port = free_port()
        config, sock = _config(
            base, "crt site.pem", port=port, global_lines=f"    crt-base {base}\n{extra}"
        )
        config.write_text(config.read_text().replace(" level admin", ""))  # the default level
        runs.append((read_haproxy_config(config, env={}, defaults_file=None), config, port, der))
    one, two = runs
    assert names(one[0]) == [f"{short_tmp}/one/site.pem"]
    assert names(two[0]) == [f"{short_tmp}/two/site.pem"]
    assert [(s.address, s.level) for s in two[0].sockets] == [
        (f"{short_tmp}/two/admin.sock", SocketLevel.OPERATOR),
        (f"ipv4@127.0.0.1:{tcp}", SocketLevel.USER),
    ]
    with (
        Running(binary.path, one[1], one[2], stats=one[0].sockets[0].address) as first,
        Running(binary.path, two[1], two[2], stats=two[0].sockets[0].address),
    ):
        for found, _config_path, port, der in runs:
            sock = found.sockets[0]
            assert first.ask(sock.address, "show cli level").strip() == "operator"
            assert first.ask(sock.address, "show ssl cert").splitlines()[1:2] == names(found)
            assert served_certificate(port, "x.test") == der
        with socket.create_connection(("127.0.0.1", tcp), timeout=5) as conn:
            conn.sendall(b"show cli level\n")
            assert conn.makefile("rb").read().decode().strip() == "user"


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_master_socket_from_the_defaults_file(binary: Binary, short_tmp: Path) -> None:
    der = write_cert(short_tmp / "site.pem", "site.test")
    port = free_port()
    config, stats = _config(short_tmp, 'crt "${CERTS}/site.pem"', port=port)
    master = f"{short_tmp}/master.sock"
    defaults = short_tmp / "default"
    defaults.write_text(f'CONFIG="{config}"\nEXTRAOPTS="-S {master}"\n')
    found = read_haproxy_config(config, env={"CERTS": str(short_tmp)}, defaults_file=defaults)
    assert found.sockets[1] == Socket(
        master, SocketLevel.ADMIN, master=True, origin=f"{defaults}:EXTRAOPTS"
    )
    env = {**os.environ, "CERTS": str(short_tmp)}
    with Running(binary.path, config, port, stats=stats, master=master, env=env) as run:
        # the master CLI's default level is admin, and so is a command it routes to a worker
        assert run.ask(master, "show cli level").strip() == "admin"
        assert run.ask(master, "@1 show cli level").strip() == "admin"
        reply = run.ask(master, "@1 show ssl cert")
        assert [line for line in reply.splitlines() if line.startswith("/")] == names(found)
        assert served_certificate(port, "site.test") == der


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((2, 8)), indirect=True)
def test_real_ocsp_update_flags_match_haproxys_updater(binary: Binary, short_tmp: Path) -> None:
    ca = Authority.root().intermediate("Updating Intermediate")
    for name in ("a", "b", "c"):
        issue(ca, short_tmp / f"{name}.pem", f"{name}.test")
    crt_list = short_tmp / "list"
    crt_list.write_text("b.pem [ocsp-update on]\nc.pem [ocsp-update off]\n")
    # ocsp-update.mode (3.0+) is the default of every certificate, plain crt included
    mode = "    ocsp-update.mode on\n" if binary.release >= (3, 0) else ""
    port = free_port()
    config, sock = _config(
        short_tmp,
        f"crt a.pem crt-list {crt_list}",
        port=port,
        global_lines=f"    crt-base {short_tmp}\n{mode}",
    )
    found = read_haproxy_config(config, env={}, defaults_file=None)
    updated = sorted(cert.name for cert in found.certs if cert.ocsp_update)
    assert updated == ([f"{short_tmp}/a.pem"] if mode else []) + [f"{short_tmp}/b.pem"]
    with Running(binary.path, config, port, stats=sock) as run:
        rows = run.ask(sock, "show ssl ocsp-updates").splitlines()[1:]
        assert sorted(row.split(" | ")[1] for row in rows if " | " in row) == updated


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_quoting_and_environment(binary: Binary, short_tmp: Path) -> None:
    served = {
        "space": write_cert(short_tmp / "a b.pem", "space.test"),
        "hash": write_cert(short_tmp / "c#1.pem", "hash.test"),
        "env": write_cert(short_tmp / "env.pem", "env.test"),
        "default": write_cert(short_tmp / "dflt.pem", "default.test"),
    }
    port = free_port()
    body = (
        f'crt "${{DIR}}/a b.pem" crt \'{short_tmp}/c#1.pem\' crt "$DIR"/env.pem '
        f'crt "${{UNSET-{short_tmp}}}/dflt.pem" crt {short_tmp}/c\\#1.pem # comment'
    )
    config, sock = _config(short_tmp, body, port=port)
    env = {"DIR": str(short_tmp)}
    found = read_haproxy_config(config, env=env, defaults_file=None)
    expected = [f"{short_tmp}/{n}" for n in ("a b.pem", "c#1.pem", "env.pem", "dflt.pem")]
    assert (names(found), found.warnings, found.problems) == (expected, (), ())
    with Running(binary.path, config, port, stats=sock, env={**os.environ, **env}) as run:
        assert _listed(run, sock) == sorted(expected)
        for name, der in served.items():
            assert served_certificate(port, f"{name}.test") == der


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_variables_outside_double_quotes_stay_literal(binary: Binary, tmp_path: Path) -> None:
    write_cert(tmp_path / "env.pem", "env.test")
    config, _sock = _config(tmp_path, "crt ${DIR}/env.pem", port=1)
    found = read_haproxy_config(config, env={"DIR": str(tmp_path)}, defaults_file=None)
    assert found.problems == (
        f"{config}:9: unable to stat SSL certificate from file '${{DIR}}/env.pem': "
        "No such file or directory",
    )
    result = subprocess.run(
        [binary.path, "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "DIR": str(tmp_path)},
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "unable to stat SSL certificate from file '${DIR}/env.pem'" in result.stderr


def test_ten_thousand_crt_list_entries_cost_a_no_op_run_little(tmp_path: Path) -> None:
    """A guard against quadratic work (measured: ~40-80 ms CPU on a busy 2-core box)."""
    lines = []
    for i in range(10_000):
        (tmp_path / f"s{i}.pem").write_text("x")
        lines.append(f"s{i}.pem [alpn h2 ocsp-update on] s{i}.test\n" if i % 2 else f"s{i}.pem\n")
    (tmp_path / "list").write_text("".join(lines))
    config = tmp_path / "h.cfg"
    config.write_text(
        f"global\n  crt-base {tmp_path}\nfrontend f\n  bind :1 ssl crt-list {tmp_path}/list\n"
    )
    timings = []
    for _ in range(3):
        started = time.process_time()
        found = read_haproxy_config(config, env={}, defaults_file=None)
        timings.append(time.process_time() - started)
    assert len(found.certs) == 10_000
    assert min(timings) < 0.5


# -- each keyword against each binary of the matrix -----------------------------------------
# ``haproxy -c`` accepts the configuration, HAProxy starts, ``ocsptool refresh
# --haproxy-config`` writes each staple where HAProxy reads it and pushes it, a TLS
# handshake per name shows exactly that staple, and a HAProxy started afresh serves it from
# the file (so the file is where HAProxy reads it, not only in its memory).

Run = Callable[..., Result]


def _issued(pki: PKI, url: str, path: Path, name: str, **bundle: bool) -> Leaf:
    """A leaf from ``pki.direct`` (OCSP at ``url``, no caIssuers) written to ``path``."""
    leaf = pki.direct.leaf(name, ocsp_url=url)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaf.write_bundle(path, **bundle)
    return leaf


def _tls_config(
    directory: Path, body: str, *, port: int, global_lines: str = "", more: str = ""
) -> tuple[Path, str]:
    """A configuration with one TLS frontend (``bind ... ssl <body>``) and ``more`` after it."""
    sock = f"{directory}/admin.sock"
    config = directory / "haproxy.cfg"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"global\n    stats socket {sock} level admin\n{global_lines}{HEAD}"
        f"frontend tls\n    bind 127.0.0.1:{port} ssl {body}\n"
        f"    http-request return status 200\n{more}"
    )
    return config, sock


def _accepted(binary: Binary, config: Path) -> None:
    checked = check_config(binary.path, config)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _refused(binary: Binary, config: Path) -> str:
    """``haproxy -c`` refuses ``config``: its messages."""
    checked = check_config(binary.path, config)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    return checked.stdout + checked.stderr


def _refreshed(run_cli: Run, config: Path, stderr: str = "") -> None:
    result = run_cli("refresh", "--haproxy-config", config)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", stderr)


def _pushed(state: Path) -> dict[str, list[str]]:
    certs = json.loads(state.read_text())["certs"]
    return {path: rec["pushed"] for path, rec in certs.items()}


def _stapled(port: int, staples: dict[str, Path]) -> None:
    for name, path in staples.items():
        assert tls_staple(port, name) == path.read_bytes() != b"", name


def _proved(  # noqa: PLR0917 - the whole proof in one place
    binary: Binary,
    config: Path,
    port: int,
    sock: str,
    staples: dict[str, Path],
    run_cli: Run,
    state_file: Path,
    *,
    pushed: dict[str, list[str]],
    stderr: str = "",
    env: dict[str, str] | None = None,
) -> None:
    """The proof for one configuration, HAProxy running while ocsptool writes and pushes."""
    _accepted(binary, config)
    with Running(binary.path, config, port, stats=sock, env=env):
        _refreshed(run_cli, config, stderr)
        _stapled(port, staples)
        assert _pushed(state_file) == pushed
    with Running(binary.path, config, port, stats=sock, env=env):  # read from the files
        _stapled(port, staples)


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_ssl_load_extra_files(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: Responder, run_cli: Run, state_file: Path
) -> None:
    site = short_tmp / "site.pem"
    _issued(pki, responder.url, site, "site.test")
    port = free_port()
    config, sock = _tls_config(
        short_tmp, f"crt {site}", port=port, global_lines="    ssl-load-extra-files key ocsp\n"
    )
    _proved(
        binary, config, port, sock, {"site.test": Path(f"{site}.ocsp")}, run_cli, state_file,
        pushed={str(site): [sock]},
    )  # fmt: skip
    # without 'ocsp' HAProxy reads no .ocsp file: ocsptool says so and staples nothing
    config.write_text(config.read_text().replace("key ocsp", "key sctl"))
    _accepted(binary, config)
    with Running(binary.path, config, port, stats=sock) as run:
        assert tls_staple(port, "site.test") is None  # the valid site.pem.ocsp is not read
        result = run_cli("refresh", "--haproxy-config", config)
        assert (result.exit_code, result.stderr.splitlines()) == (
            1,
            [
                f"ocsptool: {config}: no certificate to staple (read its bind crt, default-crt "
                f"and crt-list, ssl-f-use and crt-store load lines); not understood: {config}:3",
                f"ocsptool: {config}:3: ssl-load-extra-files leaves out 'ocsp': HAProxy reads no "
                f".ocsp file (add 'ocsp' to it); ocsptool does not staple '{site}'",
            ],
        )
        # HAProxy takes a staple at run time (a transaction) and serves it...
        b64 = base64.b64encode(Path(f"{site}.ocsp").read_bytes()).decode()
        assert "Transaction created" in run.ask(sock, f"set ssl cert {site}.ocsp <<\n{b64}\n")
        assert "Success!" in run.ask(sock, f"commit ssl cert {site}")
        assert tls_staple(port, "site.test") == Path(f"{site}.ocsp").read_bytes()
    with Running(binary.path, config, port, stats=sock):
        assert tls_staple(port, "site.test") is None  # ...and loses it when it starts again


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_ssl_load_extra_del_ext(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    pki: PKI,
    responder: Responder,
    server: CaIssuers,
    run_cli: Run,
    state_file: Path,
) -> None:
    c = short_tmp / "c"
    site = _issued(pki, responder.url, c / "site.crt", "site.test", key=False)
    (c / "site.key").write_bytes(key_pem(site.key))  # site.crt.key would not be read
    # no chain in the file: the issuer is in other.issuer, where HAProxy (and ocsptool) look
    other = _issued(pki, responder.url, c / "other.crt", "other.test", chain=False)
    (c / "other.issuer").write_bytes(other.chain[0].public_bytes(PEM))
    # no chain, no issuer file: fetched from caIssuers into aia.issuer, where HAProxy reads it
    # (in aia.crt.issuer, HAProxy would refuse to start once aia.ocsp exists)
    aia = pki.direct.leaf("aia.test", ocsp_url=responder.url, ca_issuers=server.url("/ca.der"))
    aia.write_bundle(c / "aia.crt", chain=False)
    port = free_port()
    config, sock = _tls_config(
        short_tmp,
        "crt site.crt crt other.crt crt aia.crt",
        port=port,
        global_lines=f"    crt-base {c}\n    ssl-load-extra-del-ext\n",
    )
    staples = {n: c / f"{n[:-5]}.ocsp" for n in ("site.test", "other.test", "aia.test")}
    pushed = {f"{c}/{n}.crt": [sock] for n in ("site", "other", "aia")}
    fetched = (
        f"ocsptool: aia.crt: the bundle lacks its chain; fetched the issuer CN=Direct "
        f"Intermediate from {server.url('/ca.der')} into aia.issuer (TLS clients may fail to "
        "build the chain too: append the intermediate)\n"
    )
    _proved(binary, config, port, sock, staples, run_cli, state_file, pushed=pushed, stderr=fetched)
    assert (c / "aia.issuer").read_bytes() == pki.direct.pem
    assert not any(c.glob("*.crt.*"))  # never site.crt.ocsp, other.crt.issuer, ...


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_real_default_crt(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: Responder, run_cli: Run, state_file: Path
) -> None:
    _issued(pki, responder.url, short_tmp / "a.pem", "a.test")
    _issued(pki, responder.url, short_tmp / "b.pem", "b.test")
    port = free_port()
    config, sock = _tls_config(
        short_tmp,
        "default-crt b.pem crt a.pem",  # after a crt it is no default (3.0-3.4)
        port=port,
        global_lines=f"    crt-base {short_tmp}\n",
    )
    staples = {n: short_tmp / f"{n[0]}.pem.ocsp" for n in ("a.test", "b.test")}
    staples["unknown.test"] = short_tmp / "b.pem.ocsp"  # the default certificate's
    pushed = {f"{short_tmp}/a.pem": [sock], f"{short_tmp}/b.pem": [sock]}
    _proved(binary, config, port, sock, staples, run_cli, state_file, pushed=pushed)


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_peers_and_log_forward_bind_lines_staple_too(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: Responder, run_cli: Run, state_file: Path
) -> None:
    for name in ("fe", "peer", "peerdef", "lf"):
        _issued(pki, responder.url, short_tmp / f"{name}.pem", f"{name}.test")
    port, peer, peerdef, lf = (free_port() for _ in range(4))
    config, sock = _tls_config(
        short_tmp,
        "crt fe.pem",
        port=port,
        global_lines=f"    crt-base {short_tmp}\n    localpeer me\n",
        more=(
            f"peers p\n    bind 127.0.0.1:{peer} ssl crt peer.pem\n    server me\n"
            f"peers q\n    default-bind ssl crt peerdef.pem\n    peer me 127.0.0.1:{peerdef}\n"
            f"log-forward lf\n    bind 127.0.0.1:{lf} ssl crt lf.pem\n"
            "    log stdout format raw local0\n"
        ),
    )
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert names(found) == [f"{short_tmp}/{n}.pem" for n in ("fe", "peer", "peerdef", "lf")]
    listeners = [("fe", port), ("peer", peer), ("peerdef", peerdef), ("lf", lf)]
    if binary.version == "2.6.0":  # its log-forward closes TLS handshakes (2.6.12 serves them)
        listeners.pop()
    _accepted(binary, config)
    with Running(binary.path, config, port, stats=sock):
        _refreshed(run_cli, config)
        assert len(_pushed(state_file)) == 4
        for name, at in listeners:
            assert tls_staple(at, f"{name}.test") == (short_tmp / f"{name}.pem.ocsp").read_bytes()
    with Running(binary.path, config, port, stats=sock):
        for name, at in listeners:
            assert tls_staple(at, f"{name}.test") == (short_tmp / f"{name}.pem.ocsp").read_bytes()


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_real_crt_store_staples_written_before_haproxy_can_start(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    pki: PKI,
    responder: Responder,
    run_cli: Run,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    haproxy_on_path(binary.path, short_tmp, monkeypatch)  # not running: this one starts next
    store, keys, base = short_tmp / "store", short_tmp / "keys", short_tmp / "global"
    # a leaf without its chain and without its key: the load line names both files
    a = _issued(pki, responder.url, store / "a.pem", "a.test", chain=False, key=False)
    keys.mkdir()
    (keys / "a.key").write_bytes(key_pem(a.key))
    (store / "a.issuer").write_bytes(a.chain[0].public_bytes(PEM))
    _issued(pki, responder.url, base / "u.pem", "u.test")
    port = free_port()
    config, sock = _tls_config(
        short_tmp, "crt @web/a crt u.pem", port=port, global_lines=f"    crt-base {base}\n"
    )
    sections = (
        f"crt-store web\n    crt-base {store}\n    key-base {keys}\n"
        "    load crt a.pem key a.key ocsp a.der issuer a.issuer alias a\n"
        "crt-store\n    load crt u.pem ocsp u.der\n"  # no name, no alias: crt-base/u.pem
    )
    config.write_text(config.read_text().replace(HEAD, sections + HEAD))
    # the staple files must exist first
    assert "a.der' cannot be read or parsed" in _refused(binary, config)  # 3.0: full path
    result = run_cli("refresh", "--haproxy-config", config)  # HAProxy is not running:
    assert (result.exit_code, result.stderr) == (  # written, and the push says it failed
        1,
        f"ocsptool: HAProxy socket {sock}: no such socket (is HAProxy running with this "
        "'stats socket'?)\n",
    )
    staples = {"a.test": store / "a.der", "u.test": base / "u.der"}
    assert all(path.stat().st_size > 0 for path in staples.values())
    _accepted(binary, config)
    with Running(binary.path, config, port, stats=sock) as run:
        _stapled(port, staples)
        assert _listed(run, sock) == sorted(["@web/a", f"{base}/u.pem"])
        _refreshed(run_cli, config)  # nothing new to write; each staple pushed once
        assert _pushed(state_file) == {f"{store}/a.pem": [sock], f"{base}/u.pem": [sock]}


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_real_crt_list_line_files_relative_to_the_working_directory(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    pki: PKI,
    responder: Responder,
    run_cli: Run,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(short_tmp)  # HAProxy's working directory (and ocsptool's)
    haproxy_on_path(binary.path, short_tmp, monkeypatch)  # not running: this one starts next
    certs = short_tmp / "certs"
    a = _issued(pki, responder.url, certs / "a.pem", "a.test", chain=False)
    (short_tmp / "a.issuer").write_bytes(a.chain[0].public_bytes(PEM))
    b = _issued(pki, responder.url, certs / "b.pem", "b.test", key=False)
    (short_tmp / "b.key").write_bytes(key_pem(b.key))
    (certs / "b.pem.ocsp").write_bytes(good_staple(b, pki.direct))  # never read: [key]
    _issued(pki, responder.url, certs / "c.pem", "c.test")
    crt_list = short_tmp / "list"
    crt_list.write_text(
        "a.pem [ocsp a.der issuer a.issuer] a.test\n"  # ./a.der, not certs/a.der
        "b.pem [key b.key] b.test\n"
        "c.pem [ocsp-update off] c.test\n"  # HAProxy still looks for certs/c.pem.ocsp
    )
    port = free_port()
    config, sock = _tls_config(
        short_tmp, f"crt-list {crt_list}", port=port, global_lines=f"    crt-base {certs}\n"
    )
    assert "'a.der' cannot be read or parsed" in _refused(binary, config)
    skipped = (
        f"ocsptool: {crt_list}:2: 'key' without 'ocsp': HAProxy does not look for <crt>.ocsp "
        f"(add 'ocsp <file>'); ocsptool does not staple '{certs}/b.pem'"
    )
    result = run_cli("refresh", "--haproxy-config", config)  # HAProxy cannot start yet
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == skipped
    staples = {"a.test": short_tmp / "a.der", "c.test": certs / "c.pem.ocsp"}
    pushed = {f"{certs}/a.pem": [sock], f"{certs}/c.pem": [sock]}
    _accepted(binary, config)
    with Running(binary.path, config, port, stats=sock):
        _stapled(port, staples)
        assert tls_staple(port, "b.test") is None
        _refreshed(run_cli, config, skipped + "\n")
        assert _pushed(state_file) == pushed
    with Running(binary.path, config, port, stats=sock):
        _stapled(port, staples)


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((2, 8)), indirect=True)
def test_real_crt_list_ocsp_update_keeps_the_ocsp_file(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: Responder, run_cli: Run, state_file: Path
) -> None:
    _issued(pki, responder.url, short_tmp / "c.pem", "c.test")
    crt_list = short_tmp / "list"
    crt_list.write_text("c.pem [ocsp-update off] c.test\n")
    port = free_port()
    config, sock = _tls_config(
        short_tmp, f"crt-list {crt_list}", port=port, global_lines=f"    crt-base {short_tmp}\n"
    )
    staples = {"c.test": short_tmp / "c.pem.ocsp"}
    pushed = {f"{short_tmp}/c.pem": [sock]}
    _proved(binary, config, port, sock, staples, run_cli, state_file, pushed=pushed)


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", since_params("3.2"), indirect=True)
def test_real_ssl_f_use(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    pki: PKI,
    responder: Responder,
    run_cli: Run,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(short_tmp)
    haproxy_on_path(binary.path, short_tmp, monkeypatch)  # not running: this one starts next
    certs = short_tmp / "certs"
    _issued(pki, responder.url, certs / "a.pem", "a.test")
    _issued(pki, responder.url, certs / "b.pem", "b.test")
    port = free_port()
    config, sock = _tls_config(
        short_tmp,
        "",  # no crt on the bind line: the frontend's ssl-f-use lines are its certificates
        port=port,
        global_lines=f"    crt-base {certs}\n",
    )
    config.write_text(
        config.read_text().replace(
            "    http-request", "    ssl-f-use crt a.pem\n    ssl-f-use crt b.pem ocsp b.der\n"
            "    http-request",
        )
    )  # fmt: skip
    assert "'b.der' cannot be read or parsed" in _refused(binary, config)  # ./b.der first
    assert run_cli("refresh", "--haproxy-config", config).exit_code == 1  # no HAProxy yet
    staples = {"a.test": certs / "a.pem.ocsp", "b.test": short_tmp / "b.der"}
    _accepted(binary, config)
    with Running(binary.path, config, port, stats=sock) as run:
        _stapled(port, staples)
        assert _listed(run, sock) == [f"{certs}/a.pem", f"{certs}/b.pem"]
        _refreshed(run_cli, config)
        assert _pushed(state_file) == {f"{certs}/a.pem": [sock], f"{certs}/b.pem": [sock]}


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_issuers_chain_path_gives_the_issuer(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: Responder, run_cli: Run, state_file: Path
) -> None:
    # no chain in the file, no .issuer, no caIssuers URL: only issuers-chain-path has it
    site = short_tmp / "site.pem"
    _issued(pki, responder.url, site, "site.test", chain=False)
    chains = short_tmp / "chains"
    chains.mkdir()
    (chains / "direct.pem").write_bytes(pki.direct.pem + pki.root.pem)
    (chains / "other.pem").write_bytes(pki.delegated.pem)
    port = free_port()
    config, sock = _tls_config(
        short_tmp, f"crt {site}", port=port, global_lines=f"    issuers-chain-path {chains}\n"
    )
    staples = {"site.test": Path(f"{site}.ocsp")}
    _proved(binary, config, port, sock, staples, run_cli, state_file, pushed={str(site): [sock]})
    assert not Path(f"{site}.issuer").exists()


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_default_path_config_keeps_relative_names(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    pki: PKI,
    responder: Responder,
    run_cli: Run,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf = short_tmp / "conf"
    _issued(pki, responder.url, conf / "certs" / "site.pem", "site.test")
    _issued(pki, responder.url, conf / "certs" / "other.pem", "other.test")
    (conf / "lists").mkdir()
    (conf / "lists" / "l.txt").write_text("certs/other.pem other.test\n")
    (short_tmp / "elsewhere").mkdir()
    monkeypatch.chdir(short_tmp / "elsewhere")  # where HAProxy and ocsptool are started
    port = free_port()
    config, sock = _tls_config(
        conf,
        "crt certs/site.pem crt-list lists/l.txt",
        port=port,
        global_lines="    default-path config\n",
    )
    site, other = conf / "certs" / "site.pem", conf / "certs" / "other.pem"
    staples = {"site.test": Path(f"{site}.ocsp"), "other.test": Path(f"{other}.ocsp")}
    pushed = {str(site): [sock], str(other): [sock]}
    _proved(binary, config, port, sock, staples, run_cli, state_file, pushed=pushed)
    with Running(binary.path, config, port, stats=sock) as run:
        assert _listed(run, sock) == ["certs/other.pem", "certs/site.pem"]  # as written


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_real_a_server_certificate_never_gets_a_staple(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: Responder, run_cli: Run, state_file: Path
) -> None:
    site, client = short_tmp / "site.pem", short_tmp / "client.pem"
    _issued(pki, responder.url, site, "site.test")
    _issued(pki, responder.url, client, "client.test")
    Path(f"{client}.issuer").write_text("not a certificate\n")  # harmless without an .ocsp
    port = free_port()
    config, sock = _tls_config(
        short_tmp,
        f"crt {site}",
        port=port,
        more=f"backend b\n    server s 127.0.0.1:1 ssl verify none crt {client}\n",
    )
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert names(found) == [str(site)]
    staples = {"site.test": Path(f"{site}.ocsp")}
    _proved(binary, config, port, sock, staples, run_cli, state_file, pushed={str(site): [sock]})
    assert not Path(f"{client}.ocsp").exists()
    # what a staple written beside it would do: HAProxy reads the .issuer and refuses to start
    Path(f"{client}.ocsp").write_bytes(Path(f"{site}.ocsp").read_bytes())
    assert f"'{client}.issuer' cannot be read or parsed" in _refused(binary, config)


#: Options only some releases have: (first release, bind options, crt-list line, global
#: lines, sections before the frontend, frontend lines, what an older release says).
_VERSIONED = [
    pytest.param(
        (3, 0), "default-crt a.pem", None, "", "", "", "unknown keyword 'default-crt'",
        id="default-crt",
    ),
    pytest.param(
        (2, 8), "crt-list list", "a.pem [ocsp-update off]", "", "", "",
        "unknown ssl keyword ocsp-update", id="crt-list-ocsp-update",
    ),
    pytest.param(
        (3, 0), "crt-list list", "a.pem [ocsp a.der]", "", "", "", "unknown ssl keyword ocsp",
        id="crt-list-ocsp",
    ),
    pytest.param(
        (3, 0), "crt @s/a.pem", None, "", "crt-store s\n    load crt a.pem\n", "",
        "unknown keyword 'crt-store'", id="crt-store",
    ),
    pytest.param(
        (3, 0), "crt a.pem", None, "    key-base .\n", "", "", "unknown keyword 'key-base'",
        id="key-base",
    ),
    pytest.param(
        (3, 2), "", None, "", "", "    ssl-f-use crt a.pem\n", "unknown keyword 'ssl-f-use'",
        id="ssl-f-use",
    ),
]  # fmt: skip


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
@pytest.mark.parametrize(
    ("since", "bind", "line", "global_lines", "sections", "frontend", "refusal"), _VERSIONED
)
def test_real_options_a_release_lacks_are_refused_as_it_refuses_them(  # noqa: PLR0917
    binary: Binary,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    since: tuple[int, int],
    bind: str,
    line: str | None,
    global_lines: str,
    sections: str,
    frontend: str,
    refusal: str,
) -> None:
    monkeypatch.chdir(short_tmp)
    issue(Authority.root(), short_tmp / "a.pem", "a.test")  # with its chain: OCSP works
    (short_tmp / "a.der").write_bytes(b"")
    if line is not None:
        (short_tmp / "list").write_text(line + "\n")
    config, _sock = _tls_config(
        short_tmp, bind, port=free_port(), global_lines=f"    crt-base {short_tmp}\n{global_lines}"
    )
    text = config.read_text().replace(HEAD, sections + HEAD)
    config.write_text(text.replace("    http-request", frontend + "    http-request"))
    # the reader has no version: it reads what the first release that accepts it means
    found = read_haproxy_config(config, env={}, defaults_file=None)
    assert [c.cert_file for c in found.certs] == [f"{short_tmp}/a.pem"]
    if binary.release < since:
        assert refusal in _refused(binary, config)
    else:
        _accepted(binary, config)
