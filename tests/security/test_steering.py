"""Attack 4: files others may write decide where root writes and what it sends with a key.

A crt-list names certificates (a staple is written beside each) and, on 3.0+, the staple,
key and issuer files; a HAProxy configuration names those and the sockets keys go to; an
nginx configuration names each ``ssl_stapling_file``; ocsptool's own config file names
all of it and the hook a run executes. The attacker gets to write one of them (a file of
its own, or one in a directory it may write) and points it at a root-only directory. A
root run must not use that file: one line naming it (or the directory that lets others
replace it), its owner and mode, and the fix, while everything a trusted file names is
still stapled (TLS handshakes). ``ocsptool.trust.Steering`` is the rule.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, NginxHost, run_subprocess
from tests.security.conftest import Attacker, world_writable

pytestmark = pytest.mark.haproxy

WRITE = """
import os, sys
path, text = sys.argv[1], sys.argv[2]
with open(path + ".new", "w") as f:
    f.write(text)
os.chmod(path + ".new", 0o644)
os.replace(path + ".new", path)  # its own file, in place of whatever was there
"""

EDIT = """
import sys
with open(sys.argv[1], "w") as f:  # a file it may write: same inode, same owner
    f.write(sys.argv[2])
"""


def root_only(arena: Path, pki: PKI, url: str) -> tuple[Path, Path]:
    """A directory only root may enter, with a bundle of root's in it."""
    private = arena / "private"
    private.mkdir(mode=0o700)
    secret = pki.direct.leaf("secret.test", ocsp_url=url).write_bundle(private / "secret.pem")
    return private, secret


def untouched(private: Path) -> bool:
    return sorted(p.name for p in private.iterdir()) == ["secret.pem"]


def stapled(proxy: HAProxy, name: str, bundle: Path) -> bool:
    return tls_staple(proxy.port, name) == Path(f"{bundle}.ocsp").read_bytes()


def served_by(proxy: HAProxy, certs: Path, crt_list: Path) -> Path:
    """``proxy``'s configuration, serving ``certs`` and the crt-list, copied to ``certs``'s
    parent: the operator's (root's) configuration file."""
    config = certs.parent / "haproxy.cfg"
    text = proxy.config.read_text().replace(f"crt {certs}", f"crt {certs} crt-list {crt_list}")
    proxy.config.write_text(text)
    config.write_text(text)
    return config


def test_a_crt_list_in_a_directory_others_may_write_is_not_used(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    """The operator's crt-list lives in a directory anyone may write (not sticky): the
    attacker puts its own list in its place, naming a root-only bundle (root would write
    ``secret.pem.ocsp`` beside it, and with ``--update-certs`` send its key)."""
    url = responder.url
    certs = arena / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
    other = arena / "other.pem"
    pki.direct.leaf("other.test", ocsp_url=url).write_bundle(other)
    lists = world_writable(arena / "lists", sticky=False)
    crt_list = lists / "site.list"
    crt_list.write_text(f"{other} other.test\n")
    private, secret = root_only(arena, pki, url)
    proxy = HAProxy(certs, binary=haproxy_bin)
    config = served_by(proxy, certs, crt_list)
    try:
        proxy.start()
        attacker.run(WRITE, crt_list, f"{secret} secret.test\n")
        state = arena / "state" / "state.json"
        done = run_subprocess("refresh", "--state", state, "--haproxy-config", config)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (
            f"ocsptool: {crt_list}: crt-list not used (its certificates are not stapled): "
            f"{lists} is root:root 0777, writable by other users: sudo chmod go-w {lists}\n"
        )
        assert untouched(private)
        assert stapled(proxy, "site.test", site)
        assert tls_staple(proxy.port, "other.test") is None  # the cost, until it is fixed
    finally:
        proxy.close()


@pytest.mark.parametrize("given", ["configuration", "PATH"])
def test_a_crt_list_of_another_user_is_not_used(  # noqa: PLR0917 - fixtures
    given: str,
    attacker: Attacker,
    arena: Path,
    pki: PKI,
    responder: Responder,
    haproxy_bin: str,
) -> None:
    """A crt-list the attacker owns (in root's directory), named by the configuration or
    given as a PATH: it rewrites it to name a root-only bundle."""
    url = responder.url
    certs = arena / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
    other = arena / "other.pem"
    pki.direct.leaf("other.test", ocsp_url=url).write_bundle(other)
    crt_list = arena / "site.list"
    crt_list.write_text(f"{other} other.test\n")
    os.chown(crt_list, attacker.uid, attacker.gid)
    private, secret = root_only(arena, pki, url)
    proxy = HAProxy(certs, binary=haproxy_bin)
    config = served_by(proxy, certs, crt_list)
    state = arena / "state" / "state.json"
    try:
        proxy.start()
        attacker.run(EDIT, crt_list, f"{secret} secret.test\n")
        if given == "PATH":
            args = ["-s", proxy.socket, crt_list, site]
        else:
            args = ["--haproxy-config", config]
        done = run_subprocess("refresh", "--state", state, *args)
        owner = f"{attacker.name}:{attacker.name}"
        assert (done.returncode, done.stderr) == (
            1,
            f"ocsptool: {crt_list}: crt-list not used (its certificates are not stapled): "
            f"it is {owner} 0644, not root's: sudo chown root: {crt_list}\n",
        )
        assert untouched(private)
        assert stapled(proxy, "site.test", site)
    finally:
        proxy.close()


def test_a_haproxy_configuration_of_another_user_is_not_used(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    """Two instances: root's, and a configuration the attacker wrote into a shared
    (sticky) directory, loading a root-only bundle and naming a socket of its own. The
    attacker's loads nothing and gets nothing; root's is stapled."""
    url = responder.url
    certs = arena / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
    private, secret = root_only(arena, pki, url)
    shared = world_writable(arena / "shared")
    theirs = shared / "haproxy.cfg"
    trap = shared / "trap.sock"
    attacker.run(
        WRITE,
        theirs,
        f"global\n    stats socket {trap} level admin\n"
        f"frontend tls\n    bind 127.0.0.1:1 ssl crt {secret}\n",
    )
    with HAProxy(certs, binary=haproxy_bin) as proxy:
        state = arena / "state" / "state.json"
        done = run_subprocess(
            "refresh",
            "--state",
            state,
            "--haproxy-config",
            proxy.config,
            "--haproxy-config",
            theirs,
        )
        owner = f"{attacker.name}:{attacker.name}"
        assert (done.returncode, done.stderr) == (
            1,
            f"ocsptool: {theirs}: HAProxy configuration not used (nothing it loads is "
            f"stapled): it is {owner} 0644, not root's: sudo chown root: {theirs}\n",
        )
        assert untouched(private)
        assert not trap.exists()
        assert stapled(proxy, "site.test", site)


def test_an_ocsptool_config_file_of_another_user_stops_the_run(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder
) -> None:
    """ocsptool's own config file names paths, sockets and the hook a root run executes."""
    certs = arena / "certs"
    certs.mkdir()
    pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    shared = world_writable(arena / "shared")
    config = shared / "config.toml"
    proof = arena / "proof"
    attacker.run(WRITE, config, f'paths = ["{certs}"]\non_change = "touch {proof}"\n')
    state = arena / "state" / "state.json"
    done = run_subprocess("--config", config, "refresh", "--state", state)
    owner = f"{attacker.name}:{attacker.name}"
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"ocsptool: {config}: config file not used (the run stops): it is {owner} 0644, "
        f"not root's: sudo chown root: {config}\n",
    )
    assert not proof.exists()
    assert not (certs / "site.pem.ocsp").exists()


def test_an_nginx_include_of_another_user_is_not_used(
    attacker: Attacker, nginx_host: NginxHost, pki: PKI, arena: Path
) -> None:
    """nginx's ``conf.d`` is a shared, sticky directory: the attacker adds a server block
    whose ``ssl_stapling_file`` is a root-only file. The operator's two sites (their
    includes are root's) are stapled; the attacker's file is not read."""
    host = nginx_host
    nginx = host.nginx
    conf_d = world_writable(nginx.dir / "conf.d")
    private, secret = root_only(arena, pki, host.url)
    victim = private / "victim.ocsp"
    evil = conf_d / "evil.conf"
    attacker.run(
        WRITE,
        evil,
        f"server {{\n    listen 127.0.0.1:{host.port} ssl;\n    server_name evil.test;\n"
        f"    ssl_certificate {secret};\n    ssl_certificate_key {secret};\n"
        f"    ssl_stapling_file {victim};\n}}\n",
    )
    state = arena / "state" / "state.json"
    done = run_subprocess("refresh", "--state", state, "--nginx-config", nginx.config)
    owner = f"{attacker.name}:{attacker.name}"
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"ocsptool: nginx {nginx.config}: {nginx.pid_file}: no such file; nginx is not "
        "running; 2 staple files written, which nginx reads when it starts\n"
        f"ocsptool: {evil}: nginx include not used (what it configures is not read): it is "
        f"{owner} 0644, not root's: sudo chown root: {evil}\n"
    )
    assert untouched(private)
    evil.unlink()  # nginx itself (root) would load it: the operator removes it
    nginx.start()
    for site in host.sites.values():
        assert host.served(site.name) == site.staple.read_bytes()
