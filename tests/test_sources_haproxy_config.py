"""HAProxy's configuration as the source of truth (issue 11), end to end.

``ocsptool refresh --haproxy-config cfg`` on real configurations, checked with
``haproxy -c`` and started on every binary of the matrix: every certificate HAProxy
loads gets its staple through the socket the configuration names, proven by TLS
handshakes per SNI name and key type; a second run prints nothing. Then the same
sources for ``status``, explicit crt-lists and bundle base names, and bad input.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import haproxy_on_path, matrix_params
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ocsptool.haproxy.readers import learn_names
from ocsptool.sources import haproxy_config as source
from ocsptool.testing.haproxy import free_port, tls_staple
from ocsptool.testing.haproxy_configs import (
    KeyType,
    Running,
    check_config,
    served_certificate,
)
from ocsptool.testing.matrix import Binary
from ocsptool.testing.pki import Leaf
from tests.conftest import PKI
from tests.conftest import RunCli as Run

DER = Encoding.DER
HEAD = """\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
"""


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: Unix socket paths are limited to ~107 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ocsptool-disc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _leaf(pki: PKI, url: str, path: Path, name: str, key_type: KeyType = KeyType.ECDSA) -> Leaf:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key_type == "rsa"
        else None
    )
    leaf = pki.direct.leaf(name, ocsp_url=url, key=key)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    leaf.write_bundle(path)
    return leaf


def _config(
    directory: Path, bind: str, *, port: int, stats: str = "level admin", global_lines: str = ""
) -> tuple[Path, str]:
    sock = f"{directory}/admin.sock"
    config = directory / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {sock} {stats}\n{global_lines}{HEAD}"
        f"frontend tls\n    bind 127.0.0.1:{port} ssl {bind}\n"
        "    http-request return status 200\n"
    )
    return config, sock


def _staple_serial(port: int, servername: str, key_type: KeyType) -> int | None:
    """The serial of the staple HAProxy sends a TLS 1.2 client of one key type (openssl)."""
    cipher = {
        KeyType.RSA: "ECDHE-RSA-AES128-GCM-SHA256",
        KeyType.ECDSA: "ECDHE-ECDSA-AES128-GCM-SHA256",
    }
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", servername,
         "-status", "-tls1_2", "-cipher", cipher[key_type]],
        input="", capture_output=True, text=True, timeout=20, check=False,
    ).stdout  # fmt: skip
    if "OCSP Response Status: successful" not in out or "Cert Status: good" not in out:
        return None
    found = re.search(r"Serial Number: ([0-9A-F]+)", out)
    return int(found[1], 16) if found else None


def _quiet(result: Result) -> None:
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def _pushed(state: Path) -> dict[str, list[str]]:
    certs = json.loads(state.read_text())["certs"]
    return {path: rec["pushed"] for path, rec in certs.items()}


# -- real HAProxy ----------------------------------------------------------------------------


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_crt_list_bundles_and_a_directory_all_stapled_through_the_configs_socket(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: object, run_cli: Run, state_file: Path
) -> None:
    url = responder.url  # type: ignore[attr-defined]
    certs, more = short_tmp / "c", short_tmp / "d"
    leaves = {
        ("site.test", KeyType.RSA): _leaf(
            pki, url, certs / "site.pem.rsa", "site.test", KeyType.RSA
        ),
        ("site.test", KeyType.ECDSA): _leaf(pki, url, certs / "site.pem.ecdsa", "site.test"),
        ("a.test", KeyType.ECDSA): _leaf(pki, url, more / "a.pem", "a.test"),
        ("b.test", KeyType.ECDSA): _leaf(pki, url, more / "b.pem", "b.test"),
    }
    crt_list = short_tmp / "list.txt"
    crt_list.write_text("# bundles\nsite.pem [alpn h2,http/1.1] site.test\n")
    port = free_port()
    config, sock = _config(
        short_tmp,
        f"crt-list {crt_list} crt {more}/",
        port=port,
        global_lines=f"    crt-base {certs}\n",
    )
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=sock):
        _quiet(run_cli("refresh", "--haproxy-config", config))
        for (name, key_type), leaf in leaves.items():
            assert served_certificate(port, name, key_type) == leaf.cert.public_bytes(DER)
            assert _staple_serial(port, name, key_type) == leaf.cert.serial_number, name
        assert tls_staple(port, "a.test") == (more / "a.pem.ocsp").read_bytes()
        assert tls_staple(port, "site.test") == (certs / "site.pem.ecdsa.ocsp").read_bytes()
        pushed = _pushed(state_file)
        assert sorted(pushed) == sorted(
            [f"{certs}/site.pem.rsa", f"{certs}/site.pem.ecdsa", f"{more}/a.pem", f"{more}/b.pem"]
        )
        assert all(sockets == [sock] for sockets in pushed.values())
        _quiet(run_cli("refresh", "--haproxy-config", config))
        assert responder.requests == 4  # type: ignore[attr-defined]


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_two_instances_each_through_its_own_socket_in_one_quiet_run(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: object, run_cli: Run, state_file: Path
) -> None:
    url = responder.url  # type: ignore[attr-defined]
    setups = []
    for n in ("one", "two"):
        base = short_tmp / n
        leaf = _leaf(pki, url, base / "site.pem", f"{n}.test")
        port = free_port()
        config, sock = _config(
            base, "crt site.pem", port=port, global_lines=f"    crt-base {base}\n"
        )
        assert check_config(binary.path, config).returncode == 0
        setups.append((config, sock, port, leaf, base / "site.pem"))
    (c1, s1, p1, _, f1), (c2, s2, p2, _, f2) = setups
    with Running(binary.path, c1, p1, stats=s1), Running(binary.path, c2, p2, stats=s2):
        _quiet(run_cli("refresh", "--haproxy-config", c1, "--haproxy-config", c2))
        assert _pushed(state_file) == {str(f1): [s1], str(f2): [s2]}
        assert tls_staple(p1, "one.test") == Path(f"{f1}.ocsp").read_bytes()
        assert tls_staple(p2, "two.test") == Path(f"{f2}.ocsp").read_bytes()
        _quiet(run_cli("refresh", "--haproxy-config", c1, "--haproxy-config", c2))
        status = run_cli("status", "--json", "--haproxy-config", c1, "--haproxy-config", c2)
        rows = {c["path"]: c["haproxy"] for c in json.loads(status.stdout)["certificates"]}
        assert (status.exit_code, rows) == (0, {str(f1): [s1], str(f2): [s2]})
        live = run_cli("status", "--live", "--haproxy-config", c1, "--haproxy-config", c2)
        assert (live.exit_code, live.stderr) == (0, "")


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_a_crt_store_entry_is_stapled_under_its_store_name(  # noqa: PLR0917 - fixtures
    binary: Binary, short_tmp: Path, pki: PKI, responder: object, run_cli: Run, state_file: Path
) -> None:
    url = responder.url  # type: ignore[attr-defined]
    certs = short_tmp / "c"
    one = _leaf(pki, url, certs / "one.pem", "one.test")
    _leaf(pki, url, certs / "two.pem", "two.test")
    (certs / "one.der").write_bytes(b"")  # the store names the staple file; empty: a slot
    port = free_port()
    config, sock = _config(short_tmp, "crt @web/first crt @web/two.pem", port=port)
    store = (
        f"crt-store web\n    crt-base {certs}\n"
        '    load crt "one.pem" ocsp "one.der" alias "first"\n'
        "    load crt two.pem\n"  # no ocsp: HAProxy reads no staple file for it
    )
    config.write_text(config.read_text().replace(HEAD, store + HEAD))
    assert check_config(binary.path, config).returncode == 0
    skipped = (
        f"ocsptool: {config}:6: its crt-store load line names no 'ocsp' file, and HAProxy never "
        "looks for <crt>.ocsp there (add 'ocsp <file>'); ocsptool does not staple '@web/two.pem'\n"
    )
    with Running(binary.path, config, port, stats=sock):
        result = run_cli("refresh", "--haproxy-config", config)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", skipped)
        assert tls_staple(port, "one.test") == (certs / "one.der").read_bytes() != b""
        assert _staple_serial(port, "one.test", KeyType.ECDSA) == one.cert.serial_number
        assert tls_staple(port, "two.test") is None
        assert not (certs / "two.pem.ocsp").exists()
        assert _pushed(state_file) == {f"{certs}/one.pem": [sock]}


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_the_master_socket_from_debians_defaults_is_used_over_a_user_level_one(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    pki: PKI,
    responder: object,
    run_cli: Run,
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leaf = _leaf(pki, responder.url, short_tmp / "site.pem", "site.test")  # type: ignore[attr-defined]
    port = free_port()
    config, stats = _config(short_tmp, f"crt {short_tmp}/site.pem", port=port, stats="level user")
    master = f"{short_tmp}/master.sock"
    defaults = short_tmp / "default"
    defaults.write_text(f'CONFIG="{config}"\nEXTRAOPTS="-S {master}"\n')
    monkeypatch.setattr(source, "DEFAULTS_FILE", defaults)
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=stats, master=master):
        _quiet(run_cli("refresh", "--haproxy-config", config))
        assert _pushed(state_file) == {f"{short_tmp}/site.pem": [master]}
        assert tls_staple(port, "site.test") == (short_tmp / "site.pem.ocsp").read_bytes()
        assert _staple_serial(port, "site.test", KeyType.ECDSA) == leaf.cert.serial_number
        _quiet(run_cli("refresh", "--haproxy-config", config))


# -- no HAProxy running: the sources themselves ------------------------------------------------


def _plain_config(tmp_path: Path, bind: str) -> Path:
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"global\n{HEAD}frontend tls\n    bind :443 ssl {bind}\n")
    return config


def _unpushed(config: Path, count: int) -> str:
    return (
        f"ocsptool: {config}: {count} new staple written, not pushed: it names no stats "
        "socket (add 'stats socket ... level admin', or give -s); HAProxy serves them after "
        "its next reload"
    )


def test_the_default_configuration_is_read_with_no_arguments(
    tmp_path: Path, cert_dir: object, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    config = _plain_config(tmp_path, f"crt {site}")
    monkeypatch.setattr(source, "DEFAULT_CONFIG", config)
    result = run_cli("refresh")
    assert (result.exit_code, result.stderr) == (0, _unpushed(config, 1) + "\n")
    assert Path(f"{site}.ocsp").stat().st_size > 0
    _quiet(run_cli("refresh"))  # nothing new: nothing to say
    status = run_cli("status", "--json")
    assert [c["path"] for c in json.loads(status.stdout)["certificates"]] == [str(site)]


def test_no_default_configuration_is_a_usage_error_saying_where_it_looked(run_cli: Run) -> None:
    result = run_cli("refresh")
    assert result.exit_code == 2
    assert f"{source.DEFAULT_CONFIG} does not exist" in result.stderr


def test_bad_lines_warn_a_missing_crt_fails_an_unreadable_config_exits_2(
    tmp_path: Path, cert_dir: object, run_cli: Run
) -> None:
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket ipv9@x level admin\n{HEAD}"
        f"frontend tls\n    bind :443 ssl crt {site}\n"
    )
    result = run_cli("refresh", "--haproxy-config", config)
    assert (result.exit_code, result.stderr.splitlines()) == (
        0,
        [
            f"ocsptool: {config}:2: stats socket skipped: 'ipv9@x' is not a Unix or TCP socket "
            "ocsptool can reach",
            _unpushed(config, 1),
        ],
    )
    assert Path(f"{site}.ocsp").stat().st_size > 0  # the run went on
    missing = tmp_path / "gone.pem"
    config.write_text(f"global\n{HEAD}frontend tls\n    bind :443 ssl crt {missing}\n")
    result = run_cli("refresh", "--haproxy-config", config)
    assert (result.exit_code, result.stderr.splitlines()) == (
        1,
        [
            f"ocsptool: {config}:8: unable to stat SSL certificate from file '{missing}': "
            "No such file or directory",
        ],
    )
    result = run_cli("refresh", "--haproxy-config", tmp_path / "nope.cfg")
    assert (result.exit_code, result.stderr) == (
        2,
        f"ocsptool: {tmp_path / 'nope.cfg'}: cannot read the HAProxy configuration: "
        "No such file or directory\n",
    )


def test_explicit_crt_lists_and_bundle_base_names(
    tmp_path: Path, pki: PKI, responder: object, run_cli: Run, state_file: Path
) -> None:
    url = responder.url  # type: ignore[attr-defined]
    certs = tmp_path / "c"
    _leaf(pki, url, certs / "site.pem.rsa", "site.test", KeyType.RSA)
    _leaf(pki, url, certs / "site.pem.ecdsa", "site.test")
    _leaf(pki, url, certs / "a.pem", "a.test")
    listed = tmp_path / "crt-list"
    listed.write_text("# comment\nc/a.pem [ocsp-update off] a.test !b.test\n")
    result = run_cli("refresh", certs / "site.pem", listed)
    assert (result.exit_code, result.stderr) == (0, "")
    assert sorted(_pushed(state_file)) == [
        f"{certs}/a.pem",
        f"{certs}/site.pem.ecdsa",
        f"{certs}/site.pem.rsa",
    ]
    for name in ("a.pem", "site.pem.rsa", "site.pem.ecdsa"):
        assert (certs / f"{name}.ocsp").stat().st_size > 0


def test_the_reading_is_kept_until_a_file_or_a_named_variable_changes(
    tmp_path: Path, pki: PKI, responder: object, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = responder.url  # type: ignore[attr-defined]
    certs = tmp_path / "c"
    _leaf(pki, url, certs / "a.pem", "a.test")
    listed = tmp_path / "list.txt"
    listed.write_text("a.pem\n")
    config = _plain_config(tmp_path, f"crt-list {listed}")
    config.write_text(config.read_text().replace("global\n", 'global\n    crt-base "${CERTS}"\n'))
    monkeypatch.setenv("CERTS", str(certs))
    monkeypatch.setenv("UNRELATED", "1")
    assert run_cli("refresh", "--haproxy-config", config).exit_code == 0
    # its staple changed the certificates' directory: read again, once, then kept
    _quiet(run_cli("refresh", "--haproxy-config", config))
    reads = []

    import ocsptool.haproxy_config as library

    original = library.read_haproxy_config

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(args[0])
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(library, "read_haproxy_config", counted)
    monkeypatch.setenv("UNRELATED", "2")  # not named by the configuration
    _quiet(run_cli("refresh", "--haproxy-config", config))
    assert reads == []
    _leaf(pki, url, certs / "b.pem", "b.test")
    listed.write_text("a.pem\nb.pem\n")  # a crt-list changed: read again, b stapled
    result = run_cli("refresh", "--haproxy-config", config)
    assert (result.exit_code, result.stderr) == (0, _unpushed(config, 1) + "\n")
    assert (reads, (certs / "b.pem.ocsp").stat().st_size > 0) == ([config], True)
    _quiet(run_cli("refresh", "--haproxy-config", config))
    _quiet(run_cli("refresh", "--haproxy-config", config))
    assert reads == [config, config]  # b's staple changed the directory, once
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.pem").write_bytes((certs / "a.pem").read_bytes())
    (other / "b.pem").write_bytes((certs / "b.pem").read_bytes())
    monkeypatch.setenv("CERTS", str(other))  # a variable it names changed: read again
    assert run_cli("refresh", "--haproxy-config", config).exit_code == 0
    assert reads == [config, config, config]
    assert (other / "a.pem.ocsp").stat().st_size > 0
    _quiet(run_cli("refresh", "--haproxy-config", config))
    cache = next(tmp_path.glob("state/*.discovery"))
    cache.write_bytes(b"\x00damaged")  # a damaged cache costs one reading, nothing else
    _quiet(run_cli("refresh", "--haproxy-config", config))
    _quiet(run_cli("refresh", "--haproxy-config", config))
    assert reads == [config, config, config, config, config]


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_with_sockets_only_a_relative_name_is_learned_from_show_ssl_cert(  # noqa: PLR0917 - fixtures
    binary: Binary,
    short_tmp: Path,
    tmp_path: Path,
    pki: PKI,
    responder: object,
    run_cli: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = short_tmp / "certs" / "site.pem"
    _leaf(pki, responder.url, site, "site.test")  # type: ignore[attr-defined]
    port = free_port()
    config, sock = _config(short_tmp, "crt certs/site.pem", port=port)  # HAProxy's cwd
    monkeypatch.chdir(short_tmp)
    assert check_config(binary.path, config).returncode == 0
    with Running(binary.path, config, port, stats=sock) as run:
        assert "certs/site.pem" in run.ask(sock, "show ssl cert").splitlines()
        monkeypatch.chdir(tmp_path)  # ours is another
        _quiet(run_cli("refresh", "-s", sock, site))
        assert tls_staple(port, "site.test") == Path(f"{site}.ocsp").read_bytes()
        _quiet(run_cli("refresh", "-s", sock, site))


def test_learned_names_symlinks_and_unique_tails_only(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    real.write_text("x")
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    ours = [f"{tmp_path}/link.pem", "/etc/a/site.pem", "/etc/b/other.pem", "/x/dup.pem"]
    loaded = [str(real), "a/site.pem", "one/dup.pem", "two/x/dup.pem", "@store/x.pem"]
    assert learn_names(ours, loaded) == {
        f"{tmp_path}/link.pem": str(real),
        "/etc/a/site.pem": "a/site.pem",
    }
    assert learn_names(["/p/x/dup.pem"], ["x/dup.pem", "dup.pem"]) == {}  # two fit: neither


def test_routes_ocsp_update_and_how_s_sockets_combine(tmp_path: Path, cert_dir: object) -> None:
    from ocsptool.sources.haproxy_config import HAProxyConfigSource
    from ocsptool.target import Consumer

    site = cert_dir.add("site")  # type: ignore[attr-defined]
    listed = tmp_path / "list.txt"
    listed.write_text(f"{site} [ocsp-update on] site.test\n")
    configs = []
    for n in ("one", "two"):
        (tmp_path / n).mkdir()
        config = tmp_path / n / "haproxy.cfg"
        config.write_text(
            f"global\n    stats socket /run/{n}-user.sock level user\n"
            f"    stats socket /run/{n}.sock level admin\n{HEAD}"
            f"frontend tls\n    bind :443 ssl crt-list {listed}\n"
        )
        configs.append(config)
    one = HAProxyConfigSource.read(configs[:1])
    route = one.routes[str(site)]
    assert route.consumers == (
        Consumer(("/run/one.sock", "/run/one-user.sock"), str(site), ocsp_update=True),
    )
    assert (route.sinks, one.sockets) == (("/run/one.sock",), ("/run/one.sock",))
    found = one.survey().found
    assert one.target(found[0], route).consumers == route.consumers
    replaced = HAProxyConfigSource.read(configs[:1], ["/run/given.sock"])
    assert replaced.routes[str(site)].sinks == ("/run/given.sock",)
    both = HAProxyConfigSource.read(configs, ["/run/given.sock"])
    assert both.routes[str(site)].sinks == ("/run/one.sock", "/run/given.sock", "/run/two.sock")
    assert both.sockets == ("/run/given.sock", "/run/one.sock", "/run/two.sock")


@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_a_cached_reading_is_the_reading(
    binary: Binary, tmp_path: Path, cert_dir: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything a reading says comes back the same from the cache (its compact columns):
    two instances sharing a crt-list with ocsp-update, one without a socket; a certificate
    both load, one each loads under another name, files a crt-store names, del-ext. (A
    crt-store's ``ocsp`` is honoured for HAProxy 3.0+: one is on PATH.)"""
    from ocsptool.sources.haproxy_config import HAProxyConfigSource

    haproxy_on_path(binary.path, tmp_path, monkeypatch)

    site, alias, shared = (cert_dir.add(n) for n in ("site", "alias", "shared"))  # type: ignore[attr-defined]
    crt = site.with_name("site.crt")
    site.rename(crt)
    (tmp_path / "ca.pem").write_text("")
    listed = tmp_path / "list.txt"
    listed.write_text(f"{shared} [ocsp-update on] shared.test\n{crt}\n")
    configs = []
    for n, socket in (("one", "    stats socket /run/one.sock level admin\n"), ("two", "")):
        (tmp_path / n).mkdir()
        config = tmp_path / n / "haproxy.cfg"
        config.write_text(
            f"global\n{socket}    ssl-load-extra-del-ext\n"
            f"crt-store s\n    load crt {alias} ocsp {tmp_path}/{n}.der issuer {tmp_path}/ca.pem"
            f" alias a\n{HEAD}frontend tls\n    bind :443 ssl crt-list {listed} crt @s/a\n"
        )
        configs.append(config)
    cache = tmp_path / "state.discovery"
    read = HAProxyConfigSource.read(configs, ["/run/given.sock"], cache=cache)
    assert cache.exists()
    assert read.problems == ()
    assert {k: [name for _, name, _ in r.served] for k, r in read.routes.items()} == {
        str(shared): [str(shared)] * 2,
        str(crt): [str(crt)] * 2,
        str(alias): ["@s/a"] * 2,
    }
    assert read.routes[str(alias)].staple_path == f"{tmp_path}/one.der"
    assert read.routes[str(crt)].staple_path == str(crt.with_name("site.ocsp"))
    assert read.socketless == {str(k): str(configs[1]) for k in (shared, crt, alias)}
    import ocsptool.haproxy_config as library

    def not_again(*args: object, **kwargs: object) -> object:
        raise AssertionError("read again")

    monkeypatch.setattr(library, "read_haproxy_config", not_again)
    cached = HAProxyConfigSource.read(configs, ["/run/given.sock"], cache=cache)
    assert cached == read
    assert list(cached.routes) == list(read.routes)
    assert list(cached.socketless) == list(read.socketless)


@pytest.mark.parametrize("command", ["refresh", "status", "check"])
def test_help_says_where_certificates_and_sockets_come_from(run_cli: Run, command: str) -> None:
    text = " ".join(run_cli(command, "--help", state=None).stdout.split())
    assert (
        "with none, from /etc/haproxy/haproxy.cfg and /etc/nginx/nginx.conf, those that exist"
    ) in text
    assert "else the master socket of -S in /etc/default/haproxy" in text
    assert "--haproxy-config FILE" in text and "--nginx-config FILE" in text


def test_show_names_the_instances_that_load_the_certificate(
    tmp_path: Path, cert_dir: object, run_cli: Run
) -> None:
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    other = cert_dir.add("other")  # type: ignore[attr-defined]
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket /run/x.sock level admin\n{HEAD}"
        f"frontend tls\n    bind :443 ssl crt {site}\n"
    )
    result = run_cli("show", site, "--haproxy-config", config)
    assert result.stdout.splitlines()[-1] == f"haproxy:     /run/x.sock as {site}"
    result = run_cli("show", other, "--haproxy-config", config)
    assert result.stdout.splitlines()[-1] == "haproxy:     not loaded by these configurations"


def test_the_status_table_has_a_haproxy_column_for_configured_certificates(
    tmp_path: Path, cert_dir: object, run_cli: Run
) -> None:
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket /run/x.sock level admin\n{HEAD}"
        f"frontend tls\n    bind :443 ssl crt {site}\n"
    )
    lines = run_cli("status", "--haproxy-config", config).stdout.splitlines()
    header = next(line for line in lines if line.startswith("certificate"))
    assert header.split()[-2:] == ["haproxy", "problem"]
    row = lines[lines.index(header) + 1]
    assert "/run/x.sock" in row.split()


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_routes_say_where_haproxy_reads_each_staple(
    tmp_path: Path, cert_dir: object, binary: Binary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """del-ext, issuers-chain-path and crt-store files become the routes' paths; a
    certificate HAProxy reads no staple for gets no route, and the cached reading agrees.
    No socket: the crt-store's ``ocsp`` (3.0+) is honoured by the version of the haproxy
    on PATH, and refused, in one line, by an older one."""
    on_path = haproxy_on_path(binary.path, tmp_path, monkeypatch)
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    crt = site.with_name("site.crt")
    site.rename(crt)
    other = cert_dir.add("other")  # type: ignore[attr-defined]
    bare = cert_dir.add("bare")  # type: ignore[attr-defined]
    chains = tmp_path / "chains"
    chains.mkdir()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    ssl-load-extra-del-ext\n    issuers-chain-path {chains}\n"
        f"crt-store s\n    load crt {other} ocsp {tmp_path}/other.der issuer {tmp_path}/ca.pem"
        f" alias o\n    load crt {bare} alias b\n"
        f"{HEAD}frontend tls\n    bind :443 ssl crt {crt} crt @s/o crt @s/b\n"
    )
    (tmp_path / "ca.pem").write_text("")
    routes = {
        str(crt): source.Route(
            (((), str(crt), False),),
            str(crt.with_name("site.ocsp")),
            (),
            f"{config}:13",
            str(crt.with_name("site.key")),
            str(crt.with_name("site.issuer")),
            str(chains),
        ),
    }
    problems: tuple[tuple[str, str], ...] = ()
    if binary.release >= (3, 0):
        routes[str(other)] = source.Route(
            (((), "@s/o", False),),
            f"{tmp_path}/other.der",
            (),
            f"{config}:13",
            None,
            f"{tmp_path}/ca.pem",
            str(chains),
        )
    else:
        full = subprocess.run(
            [binary.path, "-v"], capture_output=True, text=True, check=True
        ).stdout.split()[2]
        problems = (
            (
                f"{config}:5",
                f"'crt-store load ocsp' is an option of HAProxy 3.0+, and this HAProxy is "
                f"{full} ({on_path}/haproxy -v): the staple file it names is not written, and "
                "ocsptool does not staple '@s/o': upgrade HAProxy, or remove the option "
                f"(HAProxy {full} refuses it)",
            ),
        )
    cache = tmp_path / "state.discovery"
    for _ in range(2):  # read, then from the cache (a reading with a problem: read again)
        found = source.HAProxyConfigSource.read([config], cache=cache)
        assert (dict(found.routes), found.problems) == (routes, problems)
        assert found.warnings == (
            f"{config}:6: its crt-store load line names no 'ocsp' file, and HAProxy never looks "
            "for <crt>.ocsp there (add 'ocsp <file>'); ocsptool does not staple '@s/b'",
        )
        expected = {str(crt): str(config)} | ({} if problems else {str(other): str(config)})
        assert found.socketless == expected
    assert cache.exists() == (not problems)


@pytest.mark.parametrize("binary", matrix_params((3, 0)), indirect=True)
def test_the_scan_finds_each_staple_and_issuer_where_haproxy_reads_them(
    binary: Binary, tmp_path: Path, cert_dir: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each certificate's stat key, the inode of the staple file HAProxy reads (beside it,
    or one a crt-store names in another directory) and its issuer file's stat key (beside
    it, or named): as the files are, and None for those that are not there. (HAProxy 3.0+
    on PATH: a crt-store's ``ocsp`` is its option.)"""
    haproxy_on_path(binary.path, tmp_path, monkeypatch)
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    crt = site.with_name("site.crt")
    site.rename(crt)
    other = cert_dir.add("other")  # type: ignore[attr-defined]
    plain = cert_dir.add("plain")  # type: ignore[attr-defined]
    staples = tmp_path / "staples"
    staples.mkdir()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "global\n    ssl-load-extra-del-ext\n"
        f"crt-store s\n    load crt {other} ocsp {staples}/other.der issuer {tmp_path}/ca.pem"
        f" alias o\n{HEAD}frontend tls\n    bind :443 ssl crt {crt} crt @s/o crt {plain}\n"
    )

    def scanned() -> dict[str, tuple[object, ...]]:
        found = source.HAProxyConfigSource.read([config]).scan()
        assert found.problems == []
        return {Path(f.path).name: tuple(f[1:]) for f in found.found}

    def key(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]

    named_issuer = tmp_path / "ca.pem"  # HAProxy refuses to start without it
    named_issuer.write_text("")
    files = [crt, other, plain]
    assert scanned() == {
        "site.crt": (key(crt), None, None),
        "other.pem": (key(other), None, key(named_issuer)),
        "plain.pem": (key(plain), None, None),
    }
    written = [
        crt.with_name("site.ocsp"),
        staples / "other.der",
        plain.with_name("plain.pem.ocsp"),
        crt.with_name("site.issuer"),
        named_issuer,
        plain.with_name("plain.pem.issuer"),
        crt.with_name("site.crt.ocsp"),  # not the file del-ext makes HAProxy read
    ]
    for path in written:
        path.write_bytes(b"x")
    assert scanned() == {
        p.name: (key(p), written[n].stat().st_ino, key(written[n + 3])) for n, p in enumerate(files)
    }
    read = source.HAProxyConfigSource.read([config])
    plain.unlink()  # since the configuration was read (as a cached reading may be)
    found = read.scan()
    assert found.problems == [(str(plain), "no such file or directory (a dangling symlink?)")]
    assert [Path(f.path).name for f in found.found] == ["site.crt", "other.pem"]


def test_a_configuration_with_nothing_to_staple_names_each_line_not_understood(
    tmp_path: Path, cert_dir: object, run_cli: Run
) -> None:
    site = cert_dir.add("site")  # type: ignore[attr-defined]
    crt_list = tmp_path / "list"
    crt_list.write_text(f"{site} [ocsp-update maybe]\n{site} [bogus 1]\n")
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    ssl-load-extra-files key\n{HEAD}frontend tls\n"
        f"    bind :443 ssl crt-list {crt_list} crtt x.pem\n    bind :444 ssl crt {site}\n"
    )
    result = run_cli("refresh", "--haproxy-config", config)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"ocsptool: {config}: no certificate to staple (read its bind crt, default-crt and "
        f"crt-list, ssl-f-use and crt-store load lines); not understood: {crt_list}:1, "
        f"{crt_list}:2, {config}:9 (+1 more)",
        f"ocsptool: {crt_list}:1: 'ocsp-update maybe': expected on or off, line skipped",
        f"ocsptool: {crt_list}:2: unknown keyword 'bogus' (HAProxy refuses to start), line skipped",
        f"ocsptool: {config}:9: bind: unknown keyword 'crtt' (HAProxy 2.6 to 3.4 refuse it); "
        "the rest of the line is not read",
        f"ocsptool: {config}:2: ssl-load-extra-files leaves out 'ocsp': HAProxy reads no .ocsp "
        f"file (add 'ocsp' to it); ocsptool does not staple '{site}'",
    ]
    status = run_cli("status", "--haproxy-config", config)
    assert (status.exit_code, status.stderr.splitlines()[0]) == (1, result.stderr.splitlines()[0])


def test_the_issuer_and_staple_haproxy_reads_are_the_ones_every_command_uses(
    tmp_path: Path, pki: PKI, responder: object, run_cli: Run
) -> None:
    """del-ext: site.crt without its chain, the issuer in site.issuer, the staple site.ocsp:
    refresh, status and show all find them there (never site.crt.issuer or .ocsp)."""
    certs = tmp_path / "certs"
    certs.mkdir()
    leaf = pki.direct.leaf("site.test", ocsp_url=responder.url)  # type: ignore[attr-defined]
    leaf.write_bundle(certs / "site.crt", chain=False)
    (certs / "site.issuer").write_bytes(pki.direct.pem)
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    ssl-load-extra-del-ext\n{HEAD}"
        f"frontend tls\n    bind :443 ssl crt {certs}/site.crt\n"
    )
    result = run_cli("refresh", "--haproxy-config", config)
    assert (result.exit_code, result.stderr) == (0, _unpushed(config, 1) + "\n")
    assert (certs / "site.ocsp").stat().st_size > 0
    assert sorted(p.name for p in certs.iterdir()) == ["site.crt", "site.issuer", "site.ocsp"]
    status = run_cli("status", "--json", "--haproxy-config", config)
    (row,) = json.loads(status.stdout)["certificates"]
    assert (status.exit_code, row["path"], row["status"]) == (0, f"{certs}/site.crt", "good")
    shown = run_cli("show", "--haproxy-config", config, certs / "site.crt")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    assert f"{certs}/site.issuer" in shown.stdout and f"{certs}/site.ocsp" in shown.stdout
