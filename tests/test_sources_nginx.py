"""The nginx source (no nginx needed: configurations on disk): each certificate routed to its
block's ssl_stapling_file, the traps, the discovery cache, and a certificate two sources
name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PKI

from ocsptool.inventory import Inputs
from ocsptool.nginx.errors import NginxConfigError
from ocsptool.route import Route
from ocsptool.sources import default_inputs, discover
from ocsptool.sources import haproxy_config as haproxy_source
from ocsptool.sources import nginx as nginx_source
from ocsptool.sources.nginx import NginxSource
from ocsptool.testing.pki import Leaf


def block(name: str, certs: list[Path], staple: str | None, extra: str = "") -> str:
    lines = [f"server {{ listen 127.0.0.1:8443 ssl; server_name {name};"]
    lines += [f"  ssl_certificate {c}; ssl_certificate_key {c.with_suffix('.key')};" for c in certs]
    if staple:
        lines.append(f"  ssl_stapling_file {staple};")
    return "\n".join([*lines, extra, "}", ""])


@pytest.fixture
def conf(tmp_path: Path, pki: PKI) -> Path:
    """nginx.conf including sites/*.conf; certificates in tls/, files in staples/."""
    (tmp_path / "sites").mkdir()
    (tmp_path / "tls").mkdir()
    for name in ("a", "b", "c"):
        leaf: Leaf = pki.direct.leaf(f"{name}.test", ocsp_url="http://127.0.0.1:9/")
        (tmp_path / f"tls/{name}.crt").write_bytes(leaf.bundle_pem(key=False))
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
        "http {\n  ssl_stapling on;\n  include sites/*.conf;\n}\n"
    )
    return main


def site(conf: Path, name: str, text: str) -> Path:
    path = conf.parent / "sites" / f"{name}.conf"
    path.write_text(text)
    return path


def test_each_certificate_goes_to_its_blocks_file(conf: Path) -> None:
    tls = conf.parent / "tls"
    a = site(conf, "a", block("a.test", [tls / "a.crt"], "../staples/a.ocsp"))
    site(conf, "b", block("b.test", [tls / "b.crt"], "/srv/b.ocsp"))
    source = NginxSource.read([conf])
    address = f"nginx:{conf}"
    assert source.sockets == (address,)
    assert dict(source.routes) == {
        f"{tls}/a.crt": Route(
            (((address,), f"{tls}/a.crt", False),),
            os.path.abspath(f"{conf.parent}/../staples/a.ocsp"),
            (address,),
            f"{a}:3",
            f"{tls}/a.key",
        ),
        f"{tls}/b.crt": Route(
            (((address,), f"{tls}/b.crt", False),),
            "/srv/b.ocsp",
            (address,),
            f"{conf.parent}/sites/b.conf:3",
            f"{tls}/b.key",
        ),
    }
    assert (source.warnings, source.problems, dict(source.itself)) == ((), (), {})


def test_the_traps(conf: Path) -> None:
    tls = conf.parent / "tls"
    dual = site(conf, "a", block("a.test", [tls / "a.crt", tls / "b.crt"], "/srv/a.ocsp"))
    off = site(conf, "c", block("c.test", [tls / "c.crt"], "/srv/c.ocsp", "ssl_stapling off;"))
    own = site(conf, "d", block("d.test", [tls / "c.crt"], None))
    source = NginxSource.read([conf])
    assert dict(source.routes) == {}  # no file would staple one certificate's response for another
    ((where, why),) = source.problems
    assert where == f"{dual}:1"
    assert why.startswith("2 certificates share one ssl_stapling_file /srv/a.ocsp")
    assert why.endswith("or remove ssl_stapling_file there and let nginx staple them itself")
    (warning,) = source.warnings
    assert warning.startswith(f"{off}:3: ssl_stapling_file /srv/c.ocsp has no effect")
    assert dict(source.itself) == {f"{tls}/c.crt": f"nginx:{conf}"}  # d's block
    assert own.exists()


def test_one_certificate_from_two_files_is_a_problem(conf: Path) -> None:
    tls = conf.parent / "tls"
    site(conf, "a", block("a.test", [tls / "a.crt"], "/srv/a.ocsp"))
    other = site(conf, "b", block("www.a.test", [tls / "a.crt"], "/srv/www.a.ocsp"))
    source = NginxSource.read([conf])
    assert source.routes[f"{tls}/a.crt"].staple_path == "/srv/a.ocsp"
    assert source.problems == (
        (
            f"{other}:3",
            f"ssl_stapling_file /srv/www.a.ocsp staples {tls}/a.crt, which /srv/a.ocsp "
            f"({conf.parent}/sites/a.conf:3) staples too; ocsptool keeps one staple file per "
            "certificate, so this one would go stale: point this block's ssl_stapling_file at "
            "/srv/a.ocsp",
        ),
    )


def test_a_configuration_that_cannot_be_read_exits_2(tmp_path: Path) -> None:
    with pytest.raises(NginxConfigError, match="cannot read the nginx configuration"):
        NginxSource.read([tmp_path / "nginx.conf"])


def test_a_configuration_others_may_write_is_not_used_nor_its_nginx_reloaded(
    conf: Path, tmp_path: Path
) -> None:
    """An untrusted configuration names no staple file and no nginx to reload; an
    untrusted include is skipped alone; a reading with a refusal is not kept, so the line
    is said again until it is fixed (``trust.Steering``)."""
    tls = conf.parent / "tls"
    site(conf, "a", block("a.test", [tls / "a.crt"], "/srv/a.ocsp"))
    b = site(conf, "b", block("b.test", [tls / "b.crt"], "/srv/b.ocsp"))
    b.chmod(0o646)
    cache = tmp_path / "state.json.discovery-nginx"
    found = NginxSource.read([conf], cache=cache)
    assert set(found.routes) == {f"{tls}/a.crt"}
    assert found.problems == (
        (
            str(b),
            "nginx include not used (what it configures is not read): it is root:root 0646, "
            f"writable by other users: sudo chmod go-w {b}",
        ),
    )
    assert found.sockets == (f"nginx:{conf}",)
    assert not cache.exists()
    conf.chmod(0o666)
    refused = NginxSource.read([conf], cache=cache)
    assert (refused.routes, refused.sockets) == ({}, ())
    assert refused.problems == (
        (
            str(conf),
            "nginx configuration not used (nothing it staples from a file is kept): it is "
            f"root:root 0666, writable by other users: sudo chmod go-w {conf}",
        ),
    )


def test_the_cache_is_kept_while_nothing_read_changes(
    conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = conf.parent / "tls"
    site(conf, "a", block("a.test", [tls / "a.crt"], "/srv/a.ocsp"))
    cache = tmp_path / "state.json.discovery-nginx"
    first = NginxSource.read([conf], cache=cache)
    assert cache.exists()
    calls: list[Path] = []
    import ocsptool.nginx as engine

    real = engine.read_nginx_config

    def counting(path: Path) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(engine, "read_nginx_config", counting)
    assert NginxSource.read([conf], cache=cache) == first
    assert calls == []  # reused
    site(conf, "b", block("b.test", [tls / "b.crt"], "/srv/b.ocsp"))  # a new file in the glob
    second = NginxSource.read([conf], cache=cache)
    assert len(calls) == 1 and set(second.routes) == {f"{tls}/a.crt", f"{tls}/b.crt"}
    (conf.parent / "sites/b.conf").write_text(block("b.test", [tls / "b.crt"], "/srv/B.ocsp"))
    third = NginxSource.read([conf], cache=cache)
    assert len(calls) == 2 and third.routes[f"{tls}/b.crt"].staple_path == "/srv/B.ocsp"
    cache.write_bytes(b"\x00damaged")
    assert NginxSource.read([conf], cache=cache) == third and len(calls) == 3


def test_scan_stats_each_certificate_and_its_staple_file(conf: Path, tmp_path: Path) -> None:
    tls = conf.parent / "tls"
    staples = tmp_path / "staples"
    staples.mkdir()
    site(conf, "a", block("a.test", [tls / "a.crt"], f"{staples}/a.ocsp"))
    site(conf, "b", block("b.test", [tls / "gone.crt"], f"{staples}/b.ocsp"))
    (staples / "a.ocsp").write_bytes(b"x")
    survey = NginxSource.read([conf]).survey()
    (found,) = survey.found
    assert found.path == f"{tls}/a.crt"
    assert found.ocsp_inode == (staples / "a.ocsp").stat().st_ino
    assert survey.problems == [
        (f"{tls}/gone.crt", "no such file or directory; nginx cannot load this ssl_certificate")
    ]


# -- the inventory: defaults, two sources -----------------------------------------------------


def test_the_defaults_that_exist(
    conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    haproxy = tmp_path / "haproxy.cfg"
    monkeypatch.setattr(nginx_source, "DEFAULT_CONFIG", conf)
    assert default_inputs(Inputs()).nginx_configs == (conf,)
    assert default_inputs(Inputs()).haproxy_configs == ()
    haproxy.write_text("global\n")
    monkeypatch.setattr(haproxy_source, "DEFAULT_CONFIG", haproxy)
    both = default_inputs(Inputs())
    assert (both.haproxy_configs, both.nginx_configs, both.defaulted) == ((haproxy,), (conf,), True)
    named = Inputs(nginx_configs=(conf,))
    assert default_inputs(named) is named


def test_a_certificate_haproxy_and_nginx_both_serve(conf: Path, tmp_path: Path) -> None:
    """The same staple file: one route, both consumers. Different files: a problem."""
    tls = conf.parent / "tls"
    cert = tls / "a.crt"
    haproxy = tmp_path / "haproxy.cfg"
    haproxy.write_text(
        f"global\n    stats socket {tmp_path}/admin.sock level admin\ndefaults\n    mode http\n"
        f"frontend tls\n    bind :443 ssl crt {cert}\n"
    )
    site(conf, "a", block("a.test", [cert], f"{cert}.ocsp"))
    inputs = Inputs(haproxy_configs=(haproxy,), nginx_configs=(conf,))
    inventory = discover(inputs)
    route = inventory.route(str(cert))
    assert route.sinks == (f"{tmp_path}/admin.sock", f"nginx:{conf}")
    assert inventory.staple_path(str(cert)) == Path(f"{cert}.ocsp")
    assert [f.path for f in inventory.found] == [str(cert)]
    assert inventory.problems == []
    site(conf, "a", block("a.test", [cert], "/srv/a.ocsp"))
    inventory = discover(inputs)
    assert inventory.route(str(cert)).sinks == (f"{tmp_path}/admin.sock",)
    assert inventory.problems == [
        (
            f"{conf.parent}/sites/a.conf:3",
            f"{cert} is stapled from /srv/a.ocsp here and from {cert}.ocsp "
            f"({haproxy}:6); ocsptool keeps one staple file per certificate, so /srv/a.ocsp "
            f"would go stale: make both read {cert}.ocsp",
        )
    ]


def test_a_cache_another_user_wrote_is_not_believed(conf: Path, tmp_path: Path) -> None:
    """``<state>.discovery-nginx`` is read only when this user (or root) wrote it: one
    planted by another user, or writable by others, is ignored and the configuration is
    read again (and the cache rewritten)."""
    tls = conf.parent / "tls"
    site(conf, "a", block("a.test", [tls / "a.crt"], "/srv/a.ocsp"))
    cache = tmp_path / "state.json.discovery-nginx"
    NginxSource.read([conf], cache=cache)
    forged = NginxSource({f"{tls}/x.crt": Route((), "/srv/x.ocsp", ())}, (f"nginx:{conf}",))
    from ocsptool.nginx import read_nginx_config
    from ocsptool.sources.nginx import _save

    _save(cache, (str(conf),), [read_nginx_config(conf)], forged)  # current, but forged
    assert set(NginxSource.read([conf], cache=cache).routes) == {f"{tls}/x.crt"}  # ours: believed
    _save(cache, (str(conf),), [read_nginx_config(conf)], forged)
    cache.chmod(0o666)
    assert set(NginxSource.read([conf], cache=cache).routes) == {f"{tls}/a.crt"}
    if os.geteuid() == 0:  # another owner: only root can make one here
        _save(cache, (str(conf),), [read_nginx_config(conf)], forged)
        os.chown(cache, 65534, 65534)
        assert set(NginxSource.read([conf], cache=cache).routes) == {f"{tls}/a.crt"}
    info = cache.stat()  # written again, this user's own
    assert (info.st_uid, info.st_mode & 0o777) == (os.geteuid(), 0o600)
