"""One discovery for every command (``ocsptool.inventory``, built by ``sources.discover``
through ``refresh.inventory_of``), end to end with a real HAProxy of the matrix.

- A table: each command (refresh, refresh --force, renew, status, status --live, check,
  show, refresh --metrics) by each way of naming certificates (a directory, a crt-list, a
  bundle's base name, --haproxy-config, the config file's ``paths`` and
  ``haproxy_configs``, no argument at all with a stand-in default configuration) reports
  the same certificates: the paths of ``--json``, of ``show``, of the metrics file. For
  ``refresh --force`` and ``renew``, a revocation at the CA reaches HAProxy (a TLS
  handshake) and ``check`` goes CRITICAL.
- ``-s A -s B`` with one directory: each instance gets the staples of what it loads,
  quietly; a certificate neither loads is one note naming both.
- A configuration that yields no certificate: one line naming it and what was not
  understood, for refresh, status and check.
- ``renew CERT`` of a certificate that a configuration named in the config file loads:
  pushed to that instance, and ``status --live`` sees it served.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import PKI, given_binary, matrix_params
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from ocsptool.cli import cli
from ocsptool.sources import haproxy_config as source
from ocsptool.testing.haproxy import free_port, tls_staple
from ocsptool.testing.haproxy_configs import Running, check_config
from ocsptool.testing.matrix import Binary
from ocsptool.testing.pki import Leaf
from ocsptool.testing.responder import Responder

#: The certificate directory: file -> the SNI name HAProxy serves it under.
FILES = {
    "a.pem": "a.test",
    "b.pem": "b.test",
    "site.pem.rsa": "rsa.site.test",  # the multi-cert bundle site.pem, RSA part
    "site.pem.ecdsa": "ecdsa.site.test",  # and its ECDSA part
    "other.pem": "other.test",  # in the directory, loaded by no HAProxy
}
LOADED = ("a.pem", "b.pem", "site.pem.rsa", "site.pem.ecdsa")
BUNDLE = ("site.pem.rsa", "site.pem.ecdsa")

#: Each way of naming certificates -> the certificates it names.
WAYS = {
    "directory": tuple(FILES),
    "crt-list": LOADED,
    "bundle": BUNDLE,
    "haproxy-config": LOADED,
    "config-paths": tuple(FILES),
    "config-haproxy-configs": LOADED,
    "default": LOADED,
}
COMMANDS = (
    "refresh",
    "refresh --force",
    "renew",
    "status",
    "status --live",
    "check",
    "show",
    "refresh --metrics",
)
HEAD = """\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
"""


def invoke(*argv: object) -> Result:
    """``ocsptool ARGV...`` in process (a patched default configuration holds)."""
    return CliRunner().invoke(cli, [str(a) for a in argv], catch_exceptions=False)


def staple_status(der: bytes | None) -> str | None:
    """What the staple a handshake returned says: good, revoked, unknown (None: none)."""
    if der is None:
        return None
    return ocsp.load_der_ocsp_response(der).certificate_status.name.lower()


def not_loaded(path: str, sock: str) -> str:
    return (
        f"ocsptool: {path}: not pushed: HAProxy {sock} has not loaded this certificate "
        "(not in 'show ssl cert')"
    )


@dataclass
class World:
    """A certificate directory, a crt-list and a HAProxy configuration loading it (a real
    HAProxy runs it), and the config files naming them."""

    binary: Binary
    root: Path
    certs: Path
    leaves: dict[str, Leaf]
    crt_list: Path
    config: Path
    socket: str
    port: int
    #: way -> (state, the refresh that filled it): for the commands that only read.
    filled: dict[str, tuple[Path, Result]] = field(default_factory=dict)

    def path(self, file: str) -> str:
        return str(self.certs / file)

    def expected(self, way: str) -> set[str]:
        return {self.path(f) for f in WAYS[way]}

    def config_file(self, way: str) -> list[object]:
        """``--config FILE`` for the ways that name certificates there."""
        if way == "config-paths":
            return ["--config", self.root / "paths.toml"]
        if way == "config-haproxy-configs":
            return ["--config", self.root / "configs.toml"]
        return []

    def sources(self, way: str) -> list[object]:
        """What refresh, status and check are given after the command."""
        return {
            "directory": [self.certs, "-s", self.socket],
            "crt-list": [self.crt_list, "-s", self.socket],
            "bundle": [self.certs / "site.pem", "-s", self.socket],
            "haproxy-config": ["--haproxy-config", self.config],
        }.get(way, [])

    def names(self, way: str) -> tuple[list[object], list[object]]:
        """What renew and show are given: the CERTs, and the sources they select from."""
        site = self.certs / "site.pem"
        plain: list[object] = [self.certs / "a.pem", self.certs / "b.pem", site]
        every = [*plain, self.certs / "other.pem"]
        return {
            "directory": (every, ["-s", self.socket]),
            "crt-list": ([self.crt_list], ["-s", self.socket]),
            "bundle": ([site], ["-s", self.socket]),
            "haproxy-config": (plain, ["--haproxy-config", self.config]),
            "config-paths": (every, []),
        }.get(way, (plain, []))

    def run(self, way: str, command: str, *flags: object, state: Path | None = None) -> Result:
        """``ocsptool [--config FILE] COMMAND [--state STATE] FLAGS... SOURCES...``."""
        given = ["--state", state] if state is not None else []
        return invoke(*self.config_file(way), command, *given, *flags, *self.sources(way))

    def quiet(self, way: str) -> str:
        """What a first refresh says: a certificate no HAProxy loads, when -s gets it."""
        if way in ("directory", "config-paths"):
            return not_loaded(self.path("other.pem"), self.socket) + "\n"
        return ""

    def fill(self, way: str) -> Path:
        """The state of one refresh of ``way`` (run once per way, then shared)."""
        if way not in self.filled:
            state = self.root / f"state-{way}" / "state.json"
            self.filled[way] = (state, self.run(way, "refresh", state=state))
        state, done = self.filled[way]
        assert (done.exit_code, done.stderr) == (0, self.quiet(way))
        return state


def instance(binary: Binary, directory: Path, bind: str) -> tuple[Path, str, int]:
    """A HAProxy configuration in ``directory`` serving ``bind`` (``crt ...``), checked
    with ``haproxy -c``: (the file, its admin socket, its TLS port)."""
    port, sock = free_port(), f"{directory}/admin.sock"
    config = directory / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {sock} level admin\n{HEAD}frontend tls\n"
        f"    bind 127.0.0.1:{port} ssl {bind}\n"
        "    http-request return status 200\n"
    )
    assert check_config(binary.path, config).returncode == 0
    return config, sock, port


@contextmanager
def new_world(binary: Binary, pki: PKI, url: str, rsa_key: rsa.RSAPrivateKey) -> Iterator[World]:
    """``FILES`` issued against ``url``, the crt-list (all but other.pem), a configuration
    loading it and the two config files, with a real HAProxy running it."""
    root = Path(tempfile.mkdtemp(prefix="ocsptool-inv-"))  # short: a Unix socket lives here
    try:
        certs = root / "certs"
        certs.mkdir()
        leaves = {}
        for file, name in FILES.items():
            key = rsa_key if file.endswith(".rsa") else None
            leaves[file] = pki.direct.leaf(name, ocsp_url=url, key=key)  # type: ignore[arg-type]
            leaves[file].write_bundle(certs / file)
        crt_list = root / "list.txt"
        crt_list.write_text(  # a.pem and b.pem, and the bundle by its base name
            f"# the certificates HAProxy serves\n{certs}/a.pem\n{certs}/b.pem\n"
            f"{certs}/site.pem [alpn h2,http/1.1]\n"
        )
        config, sock, port = instance(binary, root, f"crt-list {crt_list}")
        (root / "paths.toml").write_text(f'paths = ["{certs}"]\nhaproxy_sockets = ["{sock}"]\n')
        (root / "configs.toml").write_text(f'haproxy_configs = ["{config}"]\n')
        with Running(binary.path, config, port, stats=sock):
            yield World(binary, root, certs, leaves, crt_list, config, sock, port)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA key for every bundle's RSA part (a new one per world costs time only)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def module_responder(pki: PKI) -> Iterator[Responder]:
    """The shared world's responder: nothing revokes its certificates."""
    r = Responder()
    r.add_issuer(pki.direct)
    with r.serving():
        yield r


@pytest.fixture(scope="module", params=matrix_params())
def world(
    request: pytest.FixtureRequest,
    haproxy_bin: str,
    pki: PKI,
    module_responder: Responder,
    rsa_key: rsa.RSAPrivateKey,
) -> Iterator[World]:
    """One world per binary, for the commands that change nothing at the CA."""
    binary = given_binary(request.param)
    with new_world(binary, pki, module_responder.url, rsa_key) as shared:
        yield shared


# -- how each command says which certificates it saw ------------------------------------------


def json_paths(result: Result) -> set[str]:
    return {c["path"] for c in json.loads(result.stdout)["certificates"]}


def metrics_paths(path: Path) -> set[str]:
    """The ``path`` label of every certificate in a metrics file."""
    return set(re.findall(r'^ocsptool_certificate_info\{path="([^"]*)"', path.read_text(), re.M))


def read_refresh(world: World, way: str, tmp: Path) -> set[str]:
    done = world.run(way, "refresh", "--json", state=tmp / "state.json")
    assert (done.exit_code, done.stderr) == (0, world.quiet(way))
    return json_paths(done)


def read_metrics(world: World, way: str, tmp: Path) -> set[str]:
    metrics = tmp / "ocsptool.prom"
    done = world.run(way, "refresh", "--metrics", metrics, state=tmp / "state.json")
    assert (done.exit_code, done.stdout, done.stderr) == (0, "", world.quiet(way))
    return metrics_paths(metrics)


def read_status(world: World, way: str, tmp: Path) -> set[str]:
    done = world.run(way, "status", "--json", state=world.fill(way))
    assert (done.exit_code, done.stderr) == (0, "")
    return json_paths(done)


def read_live(world: World, way: str, tmp: Path) -> set[str]:
    done = world.run(way, "status", "--live", "--json", state=world.fill(way))
    assert (done.exit_code, done.stderr) == (0, "")
    report = json.loads(done.stdout)
    served = {
        c["path"]: [(f["address"], f["served"]) for f in c["served_by"]]
        for c in report["certificates"]
    }
    loaded = {world.path(f) for f in LOADED}
    assert served == {p: [(world.socket, "same")] if p in loaded else [] for p in served}
    return set(served)


def read_check(world: World, way: str, tmp: Path) -> set[str]:
    metrics = tmp / "check.prom"
    done = world.run(way, "check", "--metrics", metrics, state=world.fill(way))
    assert (done.exit_code, done.stderr) == (0, "")
    assert done.stdout.startswith("OCSP OK - ")
    assert f"| certificates={len(WAYS[way])};" in done.stdout
    return metrics_paths(metrics)


def read_show(world: World, way: str, tmp: Path) -> set[str]:
    world.fill(way)  # the staples on disk
    names, options = world.names(way)
    shown: set[str] = set()
    for name in names:
        done = invoke(*world.config_file(way), "show", name, *options)
        assert (done.exit_code, done.stderr) == (0, ""), name
        blocks = done.stdout.split("\n\n")
        for block in blocks:
            fields = dict(
                line.split(":", 1) for line in block.splitlines() if not line.startswith(" ")
            )
            path = fields["certificate"].strip()
            shown.add(path)
            assert fields["staple"].strip() == "good"
            if way in ("haproxy-config", "config-haproxy-configs", "default"):
                assert fields["haproxy"].strip() == f"{world.socket} as {path}"
            else:
                assert "haproxy" not in fields
    return shown


READERS: dict[str, Callable[[World, str, Path], set[str]]] = {
    "refresh": read_refresh,
    "refresh --metrics": read_metrics,
    "status": read_status,
    "status --live": read_live,
    "check": read_check,
    "show": read_show,
}


# -- refresh --force and renew: a revocation at the CA reaches HAProxy ------------------------


def revoke_and_fetch(
    world: World, way: str, command: str, responder: Responder, tmp: Path
) -> set[str]:
    """Fill the state, revoke one certificate at the CA, then ``refresh --force`` or
    ``renew`` it with the others: HAProxy serves the revoked staple, ``check`` is CRITICAL."""
    state = tmp / "state.json"
    first = world.run(way, "refresh", state=state)
    assert (first.exit_code, first.stderr) == (0, world.quiet(way))
    file = "site.pem.ecdsa" if way == "bundle" else "a.pem"
    revoked, sni = world.path(file), FILES[file]
    assert staple_status(tls_staple(world.port, sni)) == "good"
    responder.revoked.add(world.leaves[file].cert.serial_number)

    if command == "renew":
        names, options = world.names(way)
        done = invoke(
            *world.config_file(way), "renew", "--state", state, "--json", *names, *options
        )
    else:
        done = world.run(way, "refresh", "--force", "--json", state=state)
    assert done.exit_code == 1, done.stderr
    report = json.loads(done.stdout)
    assert [p.partition(": REVOKED since ")[0] for p in report["problems"]] == [revoked]
    outcomes = {c["path"]: c for c in report["certificates"]}
    assert {p: o["action"] for p, o in outcomes.items()} == dict.fromkeys(outcomes, "fetched")
    loaded = {world.path(f) for f in LOADED}
    assert {p: o["pushed"] for p, o in outcomes.items()} == {
        p: [world.socket] if p in loaded else [] for p in outcomes
    }
    assert staple_status(tls_staple(world.port, sni)) == "revoked"
    assert tls_staple(world.port, sni) == Path(f"{revoked}.ocsp").read_bytes()

    check = world.run(way, "check", state=state)
    assert (check.exit_code, check.stderr) == (2, "")
    assert check.stdout.startswith(f"OCSP CRITICAL - {sni}: ")
    return set(outcomes)


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.haproxy
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_sees_the_same_certificates_whatever_names_them(  # noqa: PLR0917 - fixtures
    command: str,
    way: str,
    world: World,
    pki: PKI,
    rsa_key: rsa.RSAPrivateKey,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if command in ("refresh --force", "renew"):  # a world of its own: its CA revokes
        responder: Responder = request.getfixturevalue("responder")
        with new_world(world.binary, pki, responder.url, rsa_key) as own:
            if way == "default":
                monkeypatch.setattr(source, "DEFAULT_CONFIG", own.config)
            seen = revoke_and_fetch(own, way, command, responder, tmp_path)
            assert seen == own.expected(way)
        return
    if way == "default":
        monkeypatch.setattr(source, "DEFAULT_CONFIG", world.config)
    assert READERS[command](world, way, tmp_path) == world.expected(way)


# -- -s A -s B with one directory -------------------------------------------------------------


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: Unix socket paths are limited to ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ocsptool-inv-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_two_sockets_and_one_directory_each_instance_gets_what_it_loads(
    binary: Binary, short_tmp: Path, tmp_path: Path, pki: PKI, responder: Responder
) -> None:
    certs = short_tmp / "certs"
    certs.mkdir()
    for name in ("one", "two"):
        pki.direct.leaf(f"{name}.test", ocsp_url=responder.url).write_bundle(certs / f"{name}.pem")
    setups = []
    for name in ("one", "two"):  # instance one loads one.pem, two loads two.pem
        (short_tmp / name).mkdir()
        setups.append(instance(binary, short_tmp / name, f"crt {certs}/{name}.pem"))
    (c1, s1, p1), (c2, s2, p2) = setups
    state = tmp_path / "state.json"

    def refresh() -> Result:
        return invoke("refresh", "--state", state, "-s", s1, "-s", s2, certs)

    with Running(binary.path, c1, p1, stats=s1), Running(binary.path, c2, p2, stats=s2):
        first = refresh()
        assert (first.exit_code, first.stdout, first.stderr) == (0, "", "")
        assert tls_staple(p1, "one.test") == (certs / "one.pem.ocsp").read_bytes()
        assert tls_staple(p2, "two.test") == (certs / "two.pem.ocsp").read_bytes()
        live = invoke("status", "--state", state, "--live", "--json", "-s", s1, "-s", s2, certs)
        assert (live.exit_code, live.stderr) == (0, "")
        served = {
            c["path"]: [(f["address"], f["served"]) for f in c["served_by"]]
            for c in json.loads(live.stdout)["certificates"]
        }
        assert served == {f"{certs}/one.pem": [(s1, "same")], f"{certs}/two.pem": [(s2, "same")]}

        three = certs / "three.pem"  # loaded by neither
        pki.direct.leaf("three.test", ocsp_url=responder.url).write_bundle(three)
        noted = refresh()
        assert (noted.exit_code, noted.stdout) == (0, "")
        assert noted.stderr == (
            f"ocsptool: {three}: not pushed: HAProxy {s1} and HAProxy {s2} each has not loaded "
            "this certificate (not in 'show ssl cert')\n"
        )
        assert Path(f"{three}.ocsp").stat().st_size > 0
        again = refresh()  # said once per new staple
        assert (again.exit_code, again.stdout, again.stderr) == (0, "", "")
        status = invoke("status", "--state", state, "-s", s1, "-s", s2, certs)
        assert (status.exit_code, status.stderr) == (0, "")


# -- a configuration that yields no certificate -----------------------------------------------


@pytest.mark.parametrize("named", ["--haproxy-config", "haproxy_configs", "default"])
def test_a_configuration_that_loads_nothing_names_the_lines_not_understood(
    named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "global\n    stats socket /run/x.sock level admin\n"
        f'{HEAD}frontend tls\n    bind :443 ssl crt "/etc/haproxy/site.pem\n'
    )
    line = (
        f"{config}: no certificate to staple (read its bind crt, default-crt and crt-list, "
        f"ssl-f-use and crt-store load lines); not understood: {config}:9"
    )
    skipped = f"{config}:9: unmatched quote, line skipped"
    head: list[object] = []
    tail: list[object] = []
    if named == "--haproxy-config":
        tail = ["--haproxy-config", config]
    elif named == "haproxy_configs":
        toml = tmp_path / "config.toml"
        toml.write_text(f'haproxy_configs = ["{config}"]\n')
        head = ["--config", toml]
    else:
        monkeypatch.setattr(source, "DEFAULT_CONFIG", config)
    state = tmp_path / "state.json"
    for command, code in (("refresh", 1), ("status", 1)):
        done = invoke(*head, command, "--state", state, *tail)
        assert (done.exit_code, done.stdout, done.stderr) == (
            code,
            "",
            f"ocsptool: {line}\nocsptool: {skipped}\n",
        )
    done = invoke(*head, "check", "--state", state, *tail)
    assert (done.exit_code, done.stdout, done.stderr) == (
        3,
        f"OCSP UNKNOWN - {line} (+1 more)\n",
        "",
    )


# -- renew CERT of a certificate a configured HAProxy loads -----------------------------------


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_renew_of_a_certificate_a_configured_haproxy_loads_is_pushed_and_served(  # noqa: PLR0917 - fixtures
    binary: Binary,
    pki: PKI,
    responder: Responder,
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with new_world(binary, pki, responder.url, rsa_key) as w:
        toml, state = w.root / "configs.toml", tmp_path / "state.json"
        first = invoke("--config", toml, "refresh", "--state", state)
        assert (first.exit_code, first.stdout, first.stderr) == (0, "", "")
        before = tls_staple(w.port, "b.test")
        assert before == (w.certs / "b.pem.ocsp").read_bytes()

        monkeypatch.chdir(w.certs)  # CERT as an operator types it
        renewed = invoke("--config", toml, "renew", "--state", state, "b.pem")
        assert (renewed.exit_code, renewed.stderr) == (0, "")
        assert renewed.stdout.startswith(f"{w.path('b.pem')}: fetched: good, valid until ")
        assert renewed.stdout.endswith(f", pushed to {w.socket}\n")
        after = (w.certs / "b.pem.ocsp").read_bytes()
        assert tls_staple(w.port, "b.test") == after != before

        live = invoke("--config", toml, "status", "--state", state, "--live", "--json")
        assert (live.exit_code, live.stderr) == (0, "")
        rows = {c["path"]: c for c in json.loads(live.stdout)["certificates"]}
        assert set(rows) == w.expected("config-haproxy-configs")
        fact = rows[w.path("b.pem")]["served_by"]
        assert [(f["address"], f["served"], f["status"]) for f in fact] == [
            (w.socket, "same", "good")
        ]
        assert fact[0]["this_update"] == rows[w.path("b.pem")]["this_update"]
        assert rows[w.path("b.pem")]["haproxy"] == [w.socket]
