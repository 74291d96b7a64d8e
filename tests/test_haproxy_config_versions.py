"""``ocsptool.haproxy_config.versions``: which HAProxy's options name a staple file.

Real binaries (the matrix), a real running HAProxy for ``show version``; the version
unknown when no socket answers and no binary is found (``SBIN`` and PATH emptied).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PKI, haproxy_on_path, matrix_params

from ocsptool.haproxy_config import versions
from ocsptool.sources import haproxy_config as source
from ocsptool.testing.haproxy import HAProxy
from ocsptool.testing.matrix import Binary

URL = "http://127.0.0.1:9/"  # never asked: these tests only read configurations


def _config(tmp_path: Path, pki: PKI, *, socket: Path) -> tuple[Path, Path, Path]:
    """A configuration whose crt-list names the staple file of one of its two lines."""
    site = pki.direct.leaf("site.test", ocsp_url=URL).write_bundle(tmp_path / "site.pem")
    other = pki.direct.leaf("other.test", ocsp_url=URL).write_bundle(tmp_path / "other.pem")
    crt_list = tmp_path / "list"
    crt_list.write_text(f"{site} [ocsp {tmp_path}/site.der]\n{other}\n")
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {socket} level admin\n"
        f"frontend tls\n    bind 127.0.0.1:1 ssl crt-list {crt_list}\n"
    )
    return config, crt_list, site


def test_no_option_of_a_later_release_no_question(
    tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual configuration asks nothing: no socket, no binary (none on PATH here)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(versions, "SBIN", ())
    site = pki.direct.leaf("site.test", ocsp_url=URL).write_bundle(tmp_path / "site.pem")
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"frontend tls\n    bind 127.0.0.1:1 ssl crt {site}\n")
    found = source.HAProxyConfigSource.read([config])
    assert (found.warnings, found.problems) == ((), ())
    assert found.routes[str(site)].staple_path is None  # <cert>.ocsp


def test_an_unknown_version_is_said_and_the_staple_goes_to_the_default_file(
    tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(versions, "SBIN", ())
    socket = tmp_path / "admin.sock"
    config, crt_list, site = _config(tmp_path, pki, socket=socket)
    found = source.HAProxyConfigSource.read([config])
    assert found.problems == ()
    assert found.warnings == (
        f"{config}: the HAProxy version is unknown (HAProxy socket {socket}: no such socket "
        "(is HAProxy running with this 'stats socket'?); no haproxy binary on PATH or in "
        "/usr/sbin), so the staple files named by options of HAProxy 3.0+ ('crt-list ocsp' "
        f"at {crt_list}:1) are not written: their certificates' staples go to <cert>.ocsp",
    )
    assert found.routes[str(site)].staple_path is None  # <cert>.ocsp
    assert versions.learn([str(socket)]).inputs == (str(socket),)  # SBIN emptied here


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_the_running_instance_is_asked_first_then_the_binary_on_path(
    binary: Binary, tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = haproxy_on_path(binary.path, tmp_path, monkeypatch)
    site = pki.direct.leaf("site.test", ocsp_url=URL).write_bundle(tmp_path / "site.pem")
    with HAProxy(site, binary=binary.path) as proxy:
        running = versions.learn([proxy.socket])
        assert running.dialect is not None
        assert running.dialect.version.startswith(binary.version)
        assert (running.source, running.inputs) == (proxy.socket, (proxy.socket,))
    stopped = versions.learn([proxy.socket])
    assert stopped.dialect is not None
    assert stopped.dialect.version.startswith(binary.version)
    assert stopped.source == f"{on_path}/haproxy -v"
    assert stopped.inputs == (proxy.socket, f"{on_path}/haproxy")  # a change: read again


@pytest.mark.haproxy
@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_the_option_is_honoured_from_its_release_on(
    binary: Binary, tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    haproxy_on_path(binary.path, tmp_path, monkeypatch)
    config, crt_list, site = _config(tmp_path, pki, socket=tmp_path / "admin.sock")
    found = source.HAProxyConfigSource.read([config])
    if binary.release >= (3, 0):
        assert found.problems == ()
        assert found.routes[str(site)].staple_path == f"{tmp_path}/site.der"
    else:
        assert [where for where, _ in found.problems] == [f"{crt_list}:1"]
        assert str(site) not in found.routes  # not stapled: nothing written anywhere
    assert str(tmp_path / "other.pem") in found.routes  # the plain line, on every version
