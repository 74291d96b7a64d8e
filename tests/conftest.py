"""Shared fixtures: a real PKI, a real OCSP responder on loopback, CLI helpers.

HAProxy fixtures live at the end of this file. Add new fixtures in their own section;
don't reshape the ones above them, other test modules rely on them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click.testing
import pytest
from click.testing import Result

from ocsptool.cli import cli
from ocsptool.testing.clirunner import CliRunner
from ocsptool.testing.pki import Authority, Leaf
from ocsptool.testing.responder import Responder

# Every test module's ``from click.testing import CliRunner`` gets the same runner: click
# 8.2's behaviour on every click this project supports (8.1.3, Debian 12's, included).
click.testing.CliRunner = CliRunner  # type: ignore[misc]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class PKI:
    """Two CAs, as in production: one signs its own OCSP answers, one uses a delegate."""

    root: Authority
    direct: Authority  # intermediate that signs OCSP responses itself
    delegated: Authority  # intermediate whose responses a delegated responder signs
    signer: Authority  # the delegated responder certificate of ``delegated``


@pytest.fixture(autouse=True)
def _no_host_haproxy(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's /etc/haproxy/haproxy.cfg, /etc/default/haproxy and /etc/nginx/nginx.conf
    never leak into a test (tests that want a default configuration patch these to their
    own)."""
    from ocsptool.sources import haproxy_config, nginx

    missing = tmp_path_factory.getbasetemp() / "no-host-haproxy"
    monkeypatch.setattr(haproxy_config, "DEFAULT_CONFIG", missing / "haproxy.cfg")
    monkeypatch.setattr(haproxy_config, "DEFAULTS_FILE", missing / "default-haproxy")
    monkeypatch.setattr(nginx, "DEFAULT_CONFIG", missing / "nginx.conf")


@pytest.fixture(scope="session")
def pki() -> PKI:
    root = Authority.root()
    delegated = root.intermediate("Delegating Intermediate")
    return PKI(root, root.intermediate("Direct Intermediate"), delegated, delegated.ocsp_signer())


@pytest.fixture
def responder(pki: PKI) -> Iterator[Responder]:
    """A fresh responder per test (so modes and counters never leak), answering for both CAs."""
    r = Responder()
    r.add_issuer(pki.direct)
    r.add_issuer(pki.delegated, pki.signer)
    with r.serving():
        yield r


@dataclass
class CertDir:
    """A directory of HAProxy bundles issued against the ``responder`` fixture."""

    path: Path
    pki: PKI
    url: str
    leaves: dict[str, Leaf] = field(default_factory=dict)

    def add(
        self,
        name: str,
        *,
        ca: Authority | None = None,
        ocsp: bool = True,
        must_staple: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        **bundle: bool,
    ) -> Path:
        """Issue ``<name>.pem`` (leaf, chain, key unless told otherwise)."""
        leaf = (ca or self.pki.direct).leaf(
            f"{name}.test",
            ocsp_url=self.url if ocsp else None,
            must_staple=must_staple,
            not_before=not_before,
            not_after=not_after,
        )
        self.leaves[name] = leaf
        return leaf.write_bundle(self.path / f"{name}.pem", **bundle)

    def staple(self, name: str) -> Path:
        return self.path / f"{name}.pem.ocsp"


@pytest.fixture
def cert_dir(tmp_path: Path, pki: PKI, responder: Responder) -> CertDir:
    path = tmp_path / "certs"
    path.mkdir()
    return CertDir(path, pki, responder.url)


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.json"


#: The type of the ``run_cli`` fixture (one definition for every test module).
RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(state_file: Path) -> Iterator[object]:
    """Run ocsptool in-process with click's CliRunner: ``run_cli("refresh", dir)``."""
    runner = CliRunner()

    def run(*args: object, state: Path | None = state_file) -> Result:
        argv = [str(a) for a in args]
        if state is not None and argv and argv[0] in ("refresh", "renew", "status", "check"):
            argv[1:1] = ["--state", str(state)]
        return runner.invoke(cli, argv, catch_exceptions=False)

    yield run


def run_subprocess(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ocsptool`` as a real process, as cron would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "ocsptool", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# -- HAProxy: a real haproxy process (tests marked ``haproxy``) ------------------------------
# Needs the ``haproxy`` binary. Without it these fixtures skip, except under CI=true, where a
# missing binary fails the test: CI must prove the HAProxy behaviour, not quietly skip it.

from collections.abc import Callable  # noqa: E402 - kept with the section that uses it
from typing import Any  # noqa: E402

from ocsptool.testing.haproxy import HAProxy, haproxy_binary  # noqa: E402


def haproxy_on_path(binary: str, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``binary`` as the first ``haproxy`` on PATH, as a host that runs it has it: when no
    running instance answers ``show version``, its version decides which staple-file
    options are honoured (``ocsptool.haproxy_config.versions``). The directory of it."""
    on_path = directory / "bin"
    on_path.mkdir(exist_ok=True)
    (on_path / "haproxy").symlink_to(binary)
    monkeypatch.setenv("PATH", f"{on_path}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    return on_path


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    """The haproxy executable; skips (fails under CI=true) when it is missing."""
    binary = haproxy_binary()
    if binary is None:
        configured = os.environ.get("OCSPTOOL_HAPROXY")
        message = (
            f"OCSPTOOL_HAPROXY={configured} is not an executable"
            if configured
            else "haproxy is not installed (apt-get install haproxy)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return binary


# -- the version matrix: every binary this run tests (``ocsptool.testing.matrix``) ---------

from ocsptool.testing.matrix import Binary, candidates, not_given, of_release  # noqa: E402

#: The binaries this run tests: the matrix (Debian's and ../shared/haproxy/*), or the
#: one ``$OCSPTOOL_HAPROXY`` names during a ``make matrix`` pass. An entry that cannot
#: be run raises here, so CI fails at collection instead of skipping.
CANDIDATES = candidates()


def matrix_params(minimum: tuple[int, int] = (0, 0)) -> list[Any]:
    """``binary`` parameters: every candidate from ``minimum`` on, or one placeholder that
    fails under CI (in the whole-matrix pass) and skips elsewhere."""
    found = [pytest.param(b, id=f"haproxy-{b.version}") for b in CANDIDATES if b.release >= minimum]
    return found or [pytest.param(minimum, id=f"no-haproxy-{minimum[0]}.{minimum[1]}+")]


def release_params(release: str) -> list[Any]:
    """``binary`` parameters for a test of what only ``release`` does (``"3.4"``,
    ``"2.8.0"``): each candidate of it, or one placeholder reported as not run."""
    found = [pytest.param(b, id=f"haproxy-{b.version}") for b in of_release(CANDIDATES, release)]
    return found or [pytest.param(release, id=f"no-haproxy-{release}")]


def since_params(release: str) -> list[Any]:
    """``binary`` parameters for a test of what ``release`` (``"3.2"``) and every later
    release do, when the CI matrix holds none of them: each candidate from it on, or one
    placeholder reported as not run (like ``release_params``)."""
    minimum = tuple(int(part) for part in release.split("."))
    found = [pytest.param(b, id=f"haproxy-{b.version}") for b in CANDIDATES if b.release >= minimum]
    return found or [pytest.param(f"{release}+", id=f"no-haproxy-{release}+")]


@pytest.fixture
def binary(request: pytest.FixtureRequest, haproxy_bin: str) -> Binary:
    """The parametrized binary (``matrix_params`` or ``release_params``, indirect)."""
    return given_binary(request.param)


def given_binary(found: Binary | tuple[int, int] | str) -> Binary:
    """A ``matrix_params`` or ``release_params`` value as the binary to test: a placeholder
    skips, or fails under CI (for a module-scoped fixture parametrized by the matrix)."""
    if isinstance(found, str):
        pytest.skip(not_given(found))
    if isinstance(found, tuple):
        names = ", ".join(str(b) for b in CANDIDATES) or "none"
        message = f"no haproxy {found[0]}.{found[1]}+ in this run ({names})"
        if os.environ.get("CI") == "true" and not os.environ.get("OCSPTOOL_HAPROXY"):
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return found


@pytest.fixture
def start_haproxy(haproxy_bin: str) -> Iterator[Callable[..., HAProxy]]:
    """Start a real HAProxy on a crt file, directory or crt-list: ``start_haproxy(path)``.

    Keyword arguments go to ``HAProxy`` (``crt_list=True``, ``tcp_socket=True``,
    ``levels=("user",)``, ``master=True``, ``global_lines=(...)``). Every process started
    is stopped and its temporary directory removed after the test. A binary that fails to
    start fails the test (never a skip).
    """
    started: list[HAProxy] = []

    def start(crt: Path, **options: Any) -> HAProxy:
        proxy = HAProxy(crt, binary=haproxy_bin, **options)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.close()


# -- Redis: a real redis-server (the shared store's tests) ------------------------------------
# Needs Debian's ``redis-server``. Skips without it, except under CI=true, where it fails.

from ocsptool.testing.redis import RedisServer, redis_binary  # noqa: E402


@pytest.fixture(scope="session")
def redis_bin() -> str:
    """The redis-server executable; skips (fails under CI=true) when it is missing."""
    binary = redis_binary()
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return binary


@pytest.fixture
def redis_server(redis_bin: str) -> Iterator[RedisServer]:
    """A fresh, empty redis-server on a loopback port, stopped after the test."""
    with RedisServer(binary=redis_bin) as server:
        yield server


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on: a store that is down."""
    from ocsptool.testing.haproxy import free_port

    return free_port()


# -- caIssuers: a real server publishing the issuer certificate (AIA), and worse --------------

from ocsptool.testing.issuers import CaIssuers  # noqa: E402


@pytest.fixture(scope="session")
def stranger() -> Authority:
    """A CA that issued none of the test leaves."""
    return Authority.root("Stranger CA")


@pytest.fixture
def server(pki: PKI, stranger: Authority) -> Iterator[CaIssuers]:
    """The caIssuers server of ``pki.direct`` (routes: ``ocsptool.testing.issuers``)."""
    ca_issuers = CaIssuers(pki.direct.cert, stranger.cert, root=pki.root.cert)
    with ca_issuers.serving():
        yield ca_issuers


# -- Kubernetes: a real kube-apiserver with Debian's etcd (ocsptool.testing.kubernetes) -------
# Needs etcd (apt-get install etcd-server) and the kube-apiserver archive in
# ../shared/kubernetes/ (or $OCSPTOOL_KUBE_APISERVER). One server per test session: it is
# heavy (~3.5 s to start, ~350 MB). Skips without them, except under CI=true, where it fails.

from ocsptool.testing.kubernetes import (  # noqa: E402
    KubeApiServer,
    apiserver_archive,
    apiserver_binary,
    etcd_binary,
)


def _kube_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~/.cache/ocsptool-tests (kept between sessions), else the session's basetemp."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    cache = Path(base) / "ocsptool-tests"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if os.access(cache, os.W_OK):
            return cache
    except OSError:
        pass
    return tmp_path_factory.getbasetemp() / "kube-apiserver"


@pytest.fixture(scope="session")
def kube_apiserver_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked kube-apiserver; skips (fails under CI=true) without it or etcd."""
    archive = apiserver_archive()
    missing = []
    if archive is None:
        missing.append("the kube-apiserver archive (../shared/kubernetes/kube-apiserver-v*.xz)")
    if etcd_binary() is None:
        missing.append("etcd (apt-get install etcd-server)")
    if missing:
        message = " and ".join(missing) + " missing"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    assert archive is not None
    return apiserver_binary(archive, _kube_cache(tmp_path_factory))


@pytest.fixture(scope="session")
def kube(kube_apiserver_bin: Path) -> Iterator[KubeApiServer]:
    """The session's API server (RBAC on). Tests take fresh namespaces from it."""
    with KubeApiServer(kube_apiserver_bin) as server:
        yield server


@pytest.fixture
def kube_ns(kube: KubeApiServer) -> str:
    """A fresh namespace of the session's API server, for one test."""
    return kube.admin.namespace()


# -- nginx: a real nginx process (tests marked ``nginx``) -------------------------------------
# Needs the ``nginx`` binary (Debian's nginx, or ``$OCSPTOOL_NGINX``). Skips without it, except
# under CI=true, where a missing binary fails the test.

from ocsptool.testing.nginx import Nginx, nginx_binary  # noqa: E402


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    """The nginx executable; skips (fails under CI=true) when it is missing."""
    binary = nginx_binary()
    if binary is None:
        configured = os.environ.get("OCSPTOOL_NGINX")
        message = (
            f"OCSPTOOL_NGINX={configured} is not an executable"
            if configured
            else "nginx is not installed (apt-get install nginx)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return binary


@pytest.fixture
def start_nginx(nginx_bin: str) -> Iterator[Callable[..., Nginx]]:
    """A real nginx per call, on its own directory: ``nginx = start_nginx(sites={...})``.

    ``sites`` maps file names under the nginx directory (``conf.d/a.conf``, ``a.ocsp``)
    to their contents, written before nginx starts; ``start=False`` leaves it stopped
    (to test ``nginx -t`` or a start that must fail). Other keyword arguments go to
    ``Nginx`` (``main_lines``, ``http_lines``). Every nginx is stopped and its directory
    removed after the test.
    """
    made: list[Nginx] = []

    def start(
        sites: dict[str, str | bytes] | None = None, *, start: bool = True, **options: Any
    ) -> Nginx:
        nginx = Nginx(binary=nginx_bin, **options)
        made.append(nginx)
        for name, text in (sites or {}).items():
            nginx.write(name, text)
        return nginx.start() if start else nginx

    yield start
    for nginx in made:
        nginx.close()


# -- nginx as a target: sites whose staple files ocsptool keeps -----------------------------

import re  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from ocsptool.testing.nginx import free_port as nginx_port  # noqa: E402

#: The master logs this at ``notice`` for each SIGHUP (the harness logs at notice).
RELOAD_LINE = re.compile(r"\[notice\] \d+#\d+: signal 1 \(SIGHUP\) received")


@dataclass
class NginxSite:
    name: str
    leaf: Leaf
    cert: Path
    key: Path
    staple: Path


@dataclass
class NginxHost:
    """An nginx whose ``conf.d/<name>.conf`` blocks each staple their own certificate
    (``tls/<name>.crt``, leaf and chain) from their own file (``staples/<name>.ocsp``,
    named relative to the configuration's directory), all on one port, two names each."""

    nginx: Nginx
    port: int
    url: str
    sites: dict[str, NginxSite] = field(default_factory=dict)

    def add(self, name: str, ca: Authority, *, rsa_key: bool = False) -> NginxSite:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else None
        leaf = ca.leaf(name, ocsp_url=self.url, key=key)  # type: ignore[arg-type]
        tls = self.nginx.dir / "tls"
        tls.mkdir(exist_ok=True)
        (self.nginx.dir / "staples").mkdir(exist_ok=True)
        cert, key_file = leaf.write_tls(tls)
        site = NginxSite(
            name,
            leaf,
            cert.rename(tls / f"{name}.crt"),
            key_file.rename(tls / f"{name}.key"),
            self.nginx.dir / "staples" / f"{name}.ocsp",
        )
        self.nginx.write(
            f"conf.d/{name}.conf",
            f"server {{\n    listen 127.0.0.1:{self.port} ssl;\n"
            f"    server_name {name} www.{name};\n"
            f"    ssl_certificate {site.cert};\n    ssl_certificate_key {site.key};\n"
            f"    ssl_stapling_file staples/{name}.ocsp;\n}}\n",
        )
        self.sites[name] = site
        return site

    @property
    def address(self) -> str:
        """Its consumer address, as ocsptool names it."""
        return f"nginx:{self.nginx.config}"

    @property
    def reloads(self) -> int:
        """SIGHUPs the master received (each one a reload, taken or refused)."""
        return len(RELOAD_LINE.findall(self.nginx.output))

    def served(self, name: str) -> bytes | None:
        """What nginx staples for ``name`` (a real handshake)."""
        from ocsptool.nginx.served import served_staple

        return served_staple("127.0.0.1", self.port, name, timeout=5)


@pytest.fixture
def nginx_host(start_nginx: Callable[..., Nginx], pki: PKI, responder: Responder) -> NginxHost:
    """Two sites (RSA from the direct CA, ECDSA from the delegating one), ``ssl_stapling
    on`` in ``http``; nginx not started and no staple file yet."""
    nginx = start_nginx(start=False, http_lines=("ssl_stapling on;",))
    made = NginxHost(nginx, nginx_port(), responder.url)
    made.add("rsa.test", pki.direct, rsa_key=True)
    made.add("ec.test", pki.delegated)
    return made
