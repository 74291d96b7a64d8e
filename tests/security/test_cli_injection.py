"""Attack 1: HAProxy admin commands through a file name, on every binary of the matrix.

The attacker may add files to a directory HAProxy loads (a world-writable, sticky one
here). It drops valid bundles there whose names are commands: ``x;shutdown frontend
tls;.pem`` (HAProxy's CLI ends a command at ``;``), a name with ``<<`` (payload mode), one
with a tab. HAProxy, as root, loads them all. Then the operator runs ``refresh -s``
and ``status --live``: the names must reach HAProxy as names (escaped), or not at all (one
line naming the file), the frontend must stay up and every certificate that can be
stapled must be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsptool.printable import printable
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.matrix import Binary
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, matrix_params, run_subprocess
from tests.security.conftest import Attacker, world_writable

pytestmark = pytest.mark.haproxy

INJECTED = "x;shutdown frontend tls;.pem"
ESCAPES = "back\\slash;semi colon.pem"  # every character that needs a backslash
PAYLOAD = "y <<z.pem"  # '<<' after a space: payload mode on 3.0+, and 2.6's master CLI
CONTROL = "t\tab.pem"  # a tab: a control character that survives HAProxy's listing

COPY = """
import shutil, sys
for source, name in zip(sys.argv[1::2], sys.argv[2::2]):
    shutil.copyfile(source, name)
"""


def frontend_up(proxy: HAProxy) -> bool:
    """The TLS frontend is listed and open (``shutdown frontend`` would stop it)."""
    rows = [line.split(",") for line in proxy.command("show stat").splitlines()]
    return any(row[:2] == ["tls", "FRONTEND"] and row[17:18] == ["OPEN"] for row in rows)


@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_names_that_are_commands_never_run_as_commands(  # noqa: PLR0917 - fixtures
    binary: Binary, attacker: Attacker, arena: Path, pki: PKI, responder: Responder, tmp_path: Path
) -> None:
    url = responder.url
    certs = world_writable(arena / "certs")
    site = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
    hostile = {}
    for number, name in enumerate([INJECTED, ESCAPES, PAYLOAD, CONTROL]):
        source = arena / f"bundle{number}"
        pki.direct.leaf(f"evil{number}.test", ocsp_url=url).write_bundle(source)
        source.chmod(0o644)
        hostile[name] = source
    attacker.run(COPY, *[str(p) for pair in hostile.items() for p in (pair[1], certs / pair[0])])
    assert all((certs / name).stat().st_uid == attacker.uid for name in hostile)

    proxy = HAProxy(certs, binary=binary.path).start()
    try:
        loaded = proxy.command("show ssl cert")
        assert f"{certs}/{INJECTED}" in loaded and f"{certs}/{PAYLOAD}" in loaded
        state = tmp_path / "state.json"
        result = run_subprocess("refresh", "--state", state, "-s", proxy.socket, certs)
        assert frontend_up(proxy), result.stderr

        refused = "so it is never put into a HAProxy command; rename the file"
        assert result.returncode == 1
        assert sorted(result.stderr.splitlines()) == sorted(
            [
                f"ocsptool: {printable(f'{certs}/{CONTROL}')}: HAProxy {proxy.socket}: the name "
                f"'{printable(str(certs / CONTROL))}' holds a control character, {refused}",
                f"ocsptool: {certs}/{PAYLOAD}: HAProxy {proxy.socket}: the name "
                f"'{certs / PAYLOAD}' holds '<<', which HAProxy's runtime API takes for "
                f"the start of a payload, {refused}",
            ]
        )
        # The legitimate certificate, and the hostile names that can be spelled safely, are
        # stapled: what HAProxy serves is exactly the staple on disk.
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
        assert tls_staple(proxy.port, "evil0.test") == (certs / f"{INJECTED}.ocsp").read_bytes()
        assert tls_staple(proxy.port, "evil1.test") == (certs / f"{ESCAPES}.ocsp").read_bytes()
        assert tls_staple(proxy.port, "evil2.test") is None  # refused: nothing was pushed

        live = run_subprocess("status", "--state", state, "--live", "-s", proxy.socket, certs)
        assert frontend_up(proxy), live.stderr
        warnings = [line for line in live.stderr.splitlines() if "never put into" in line]
        assert warnings == [
            f"ocsptool: HAProxy socket {proxy.socket}: the name '{printable(str(certs / name))}' "
            + (
                "holds a control character"
                if name == CONTROL
                else "holds '<<', which HAProxy's runtime API takes for the start of a payload"
            )
            + f", {refused}"
            for name in sorted([CONTROL, PAYLOAD], key=lambda n: str(certs / n))
        ], live.stderr
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
        assert proxy.running
    finally:
        proxy.close()


@pytest.mark.parametrize("binary", matrix_params(), indirect=True)
def test_a_name_with_a_semicolon_through_the_master_cli(  # noqa: PLR0917 - fixtures
    binary: Binary, attacker: Attacker, arena: Path, pki: PKI, responder: Responder, tmp_path: Path
) -> None:
    """On a master CLI an unescaped ``;`` ends the routed command and runs the rest on the
    MASTER (``reload``, ``@!<pid> ...``): the same escaping holds there."""
    url = responder.url
    certs = world_writable(arena / "certs")
    site = pki.direct.leaf("site.test", ocsp_url=url).write_bundle(certs / "site.pem")
    source = pki.direct.leaf("evil.test", ocsp_url=url).write_bundle(arena / "bundle")
    source.chmod(0o644)
    name = "x;reload;@1 shutdown frontend tls;.pem"
    attacker.run(COPY, source, certs / name)
    proxy = HAProxy(certs, binary=binary.path, master=True).start()
    try:
        before = proxy.worker_pid()
        assert proxy.master_socket is not None
        result = run_subprocess(
            "refresh", "--state", tmp_path / "state.json", "-s", proxy.master_socket, certs
        )
        assert (result.returncode, result.stderr) == (0, "")
        assert frontend_up(proxy) and proxy.worker_pid() == before  # no reload, no shutdown
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
        assert tls_staple(proxy.port, "evil.test") == (certs / f"{name}.ocsp").read_bytes()
    finally:
        proxy.close()


def test_the_unescaped_name_does_shut_the_frontend_down(
    attacker: Attacker, arena: Path, pki: PKI, haproxy_bin: str
) -> None:
    """The attack is real: the very command ocsptool used to send shuts the frontend down
    (so the tests above would fail without the escaping)."""
    certs = world_writable(arena / "certs")
    pki.direct.leaf("site.test", ocsp_url=None).write_bundle(certs / "site.pem")
    source = pki.direct.leaf("evil.test", ocsp_url=None).write_bundle(arena / "bundle")
    source.chmod(0o644)
    attacker.run(COPY, source, certs / INJECTED)
    with HAProxy(certs, binary=haproxy_bin) as proxy:
        assert frontend_up(proxy)
        proxy.command(f"show ssl cert {certs}/{INJECTED}")
        assert not frontend_up(proxy)
