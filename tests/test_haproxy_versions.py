"""What differs between HAProxy 2.6 and 3.4, proven against the real binary under test.

``make matrix`` runs them against every binary of the matrix (``OCSPTOOL_HAPROXY=PATH
pytest -m haproxy`` for one). Each test asks the binary its version and asserts what
that version must do: the window, read-back, levels, the master CLI, renewed
certificates, ``ocsp-update on``. The last section proves what only 3.4, 2.8.0 or
3.2.0 does, against a binary of that version when one is given (not run otherwise).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CertDir, release_params, run_subprocess
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from test_haproxy_push import StartHAProxy, good_response, item, served, staple

from ocsptool.haproxy import (
    WINDOW,
    Dialect,
    Method,
    PushItem,
    SocketLevelError,
    dialect_for,
    loaded_certs,
    ocsp_updated_paths,
    push_staples,
    response_certid_key,
    show_ocsp_responses,
    show_ssl_certs,
)
from ocsptool.haproxy.transport import Connection
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.haproxy_configs import served_certificate
from ocsptool.testing.matrix import Binary
from ocsptool.testing.pki import Authority, Leaf
from ocsptool.testing.responder import Responder

pytestmark = pytest.mark.haproxy


def dialect_of(proxy: HAProxy) -> Dialect:
    return dialect_for(proxy.command("show version"))


def fix(address: str, level: str, needs: str) -> str:
    return (
        f"HAProxy socket {address} is at level {level}, but {needs} needs level admin: "
        f"configure it as `stats socket {address} level admin`"
    )


# -- dialects (pure) -----------------------------------------------------------------------


def test_dialects_of_each_version() -> None:
    old, lts = dialect_for("2.6.12-1+deb12u4\n"), dialect_for("3.2.0-e134140d2")
    new = dialect_for("3.4.0-64a335366")
    assert not dialect_for("2.8.0-fdd8154ed").staples_replaced_certs
    assert old.staples_replaced_certs and lts.staples_replaced_certs
    assert (old.release, old.reads_der, old.ocsp_updates, old.ocsp_needs_admin) == (
        (2, 6),
        False,
        False,
        False,
    )
    assert (lts.reads_der, lts.ocsp_updates, lts.ocsp_needs_admin) == (True, True, False)
    assert new.ocsp_needs_admin and new.max_command > 100_000 > lts.max_command
    assert old.window == lts.window == new.window == WINDOW == 8192
    assert old.served_command("30ab") == "show ssl ocsp-response 30ab\n"
    assert lts.served_command("30ab") == "show ssl ocsp-response base64 30ab\n"
    assert "tune.bufsize" in old.too_large(17000)
    assert "tune.bufsize" not in new.too_large(140000)
    assert "tune.cli.max-payload-size" in new.too_large(140000)


# -- the window, against a server that measures it -------------------------------------------


def test_never_more_than_the_window_unanswered(tmp_path: Path) -> None:
    """A fake 3.2.0 that counts the bytes it received and has not answered yet."""
    path = str(tmp_path / "counting.sock")
    most = [0]

    def serve(server: socket.socket) -> None:
        client, _ = server.accept()
        with client:
            buffer = b""
            unanswered = 0
            while True:
                data = client.recv(65536)
                if not data:
                    return
                buffer += data
                unanswered += len(data)
                most[0] = max(most[0], unanswered)
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    unanswered -= len(line) + 1
                    reply = {
                        b"prompt": b"\n> ",
                        b"show version": b"3.2.0-e134140d2\n\n> ",
                        b"show cli level": b"admin\n\n> ",
                    }.get(line, b"OCSP Response updated!\n\n> ")
                    client.sendall(reply)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        connection = Connection(path, 5)
        commands = [f"set ssl ocsp-response {'A' * 700}\n"] * 300
        commands.insert(150, f"set ssl ocsp-response {'B' * 12000}\n")  # alone
        replies = connection.exchange(commands)
        connection.close()
        thread.join(5)
    assert replies == ["OCSP Response updated!"] * 301
    assert most[0] == 12000 + len("set ssl ocsp-response \n")  # the large one went alone
    assert most[0] > WINDOW  # which shows the counting sees what was in flight


# -- realistic responses, in bulk --------------------------------------------------------------


def rsa_delegate(ca: Authority) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """An RSA-2048 delegated responder certificate, as commercial CAs include in responses."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test OCSP Responder")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


def realistic(
    leaf: Leaf, ca: Authority, delegate: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> bytes:
    cert, key = delegate
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (
        good_response(leaf, ca, now)
        .responder_id(ocsp.OCSPResponderEncoding.NAME, cert)
        .certificates([cert, ca.cert])
        .add_extension(x509.OCSPNonce(b"\x5a" * 32), critical=False)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_200_realistic_staples_pushed_read_back_and_served(
    cert_dir: CertDir, start_haproxy: StartHAProxy
) -> None:
    ca = cert_dir.pki.direct
    delegate = rsa_delegate(ca)
    names = [f"site{i}" for i in range(200)]
    for number, name in enumerate(names):
        cert_dir.add(name)
        if number % 10:  # every tenth has no slot yet: a first-staple transaction
            cert_dir.staple(name).write_bytes(b"")
    proxy = start_haproxy(cert_dir.path)
    ders = {name: realistic(cert_dir.leaves[name], ca, delegate) for name in names}
    assert all(2000 <= len(base64.b64encode(der)) <= 3000 for der in ders.values())

    results = push_staples(proxy.socket, [item(cert_dir, n, ders[n]) for n in names])

    assert [r for r in results if not r.ok] == []
    methods = [r.method for r in results]
    assert methods.count(Method.TRANSACTION) == 20
    assert methods.count(Method.UPDATE) == 180
    served_now = show_ocsp_responses(proxy.socket)
    for name in names:
        key = response_certid_key(ders[name])
        assert served_now[key].status == "good", name
    for name in names[::20]:
        assert served(proxy, name) == ders[name]
    assert proxy.running
    assert "Name: HAProxy" in proxy.command("show info")


def test_a_too_large_staple_fails_alone_with_this_versions_limit(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    from test_haproxy_push import big_staple

    for name in ("small", "huge"):
        cert_dir.add(name)
        cert_dir.staple(name).write_bytes(b"")
    proxy = start_haproxy(cert_dir.path)
    dialect = dialect_of(proxy)
    small = staple(responder, cert_dir.leaves["small"])
    size = (dialect.max_command + 100) // 4 * 4  # just past what this version takes
    huge = big_staple(cert_dir, cert_dir.leaves["huge"], size)

    results = push_staples(
        proxy.socket, [item(cert_dir, "huge", huge), item(cert_dir, "small", small)]
    )

    command = len(f"set ssl ocsp-response <<\n{'x' * size}\n\n")
    assert results[0].method == Method.TOO_LARGE
    assert results[0].error == dialect.too_large(command)
    assert results[1].ok
    assert served(proxy, "small") == small
    assert proxy.running


# -- levels --------------------------------------------------------------------------------------


def test_operator_and_user_sockets_are_named_with_the_fix(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("slot")
    cert_dir.staple("slot").write_bytes(b"")
    cert_dir.add("first")
    proxy = start_haproxy(cert_dir.path, levels=("operator", "user"))
    dialect = dialect_of(proxy)
    user, operator = proxy.level_socket("user"), proxy.level_socket("operator")
    slot = staple(responder, cert_dir.leaves["slot"])
    first = staple(responder, cert_dir.leaves["first"])
    items = [item(cert_dir, "slot", slot), item(cert_dir, "first", first)]

    with pytest.raises(SocketLevelError) as info:
        show_ssl_certs(user)
    assert str(info.value) == fix(user, "user", "`show ssl cert`")

    for address, level in ((operator, "operator"), (user, "user")):
        if dialect.ocsp_needs_admin:  # 3.4: every OCSP command
            with pytest.raises(SocketLevelError) as info:
                push_staples(address, items)
            assert str(info.value) == fix(
                address, level, f"setting OCSP responses on HAProxy {dialect.version}"
            )
            with pytest.raises(SocketLevelError):
                show_ocsp_responses(address)
            assert served(proxy, "slot") is None
        else:  # an update works; a first staple needs `set ssl cert`, admin only
            slot_result, first_result = push_staples(address, items)
            assert slot_result.ok, slot_result
            assert served(proxy, "slot") == slot
            assert first_result.ok is False
            assert first_result.error == fix(address, level, "a first staple (`set ssl cert`)")
        assert served(proxy, "first") is None


# -- the master CLI ------------------------------------------------------------------------------


def test_master_cli_routes_to_the_worker_also_after_a_reload(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("site")
    cert_dir.add("first")
    cert_dir.staple("site").write_bytes(b"")
    proxy = start_haproxy(cert_dir.path, master=True)
    assert proxy.master_socket is not None
    master = proxy.master_socket
    der = staple(responder, cert_dir.leaves["site"])

    connection = Connection(master, 2)
    assert connection.master
    connection.close()
    assert push_staples(master, [item(cert_dir, "site", der)])[0].ok
    assert served(proxy, "site") == der
    assert set(show_ssl_certs(master)[0]) == set(show_ssl_certs(proxy.socket)[0])

    proxy.reload()  # a new worker, which read the empty .ocsp files again

    again = staple(responder, cert_dir.leaves["first"])
    results = push_staples(master, [item(cert_dir, "site", der), item(cert_dir, "first", again)])
    assert [(r.ok, r.method) for r in results] == [
        (True, Method.UPDATE),
        (True, Method.TRANSACTION),
    ]
    assert served(proxy, "site") == der
    assert served(proxy, "first") == again
    assert response_certid_key(der) in show_ocsp_responses(master)


# -- renewed certificates --------------------------------------------------------------------


def test_renewed_certificate_reported_then_loaded_with_update_certs(
    cert_dir: CertDir,
    responder: Responder,
    start_haproxy: StartHAProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = cert_dir.add("site")
    cert_dir.staple("site").write_bytes(b"")
    proxy = start_haproxy(cert_dir.path)
    old_serial = cert_dir.leaves["site"].cert.serial_number
    cert_dir.add("site")  # renewed on disk: a new key and serial; HAProxy holds the old one
    leaf = cert_dir.leaves["site"]
    der = staple(responder, leaf)
    bundle = path.read_bytes()
    renewed = PushItem(str(path), der, None, serial=leaf.cert.serial_number, bundle_pem=bundle)

    result = push_staples(proxy.socket, [renewed])[0]
    assert (result.ok, result.method) == (False, Method.RENEWED)
    assert result.error == (
        f"{path}: HAProxy still holds the certificate with serial {old_serial:X}, but the "
        f"file has serial {leaf.cert.serial_number:X} (renewed): reload HAProxy to load it, "
        "or use --update-certs"
    )
    assert served(proxy, "site") is None

    # Without the serial, the staple's own serial tells the same: never "pushed".
    blind = push_staples(proxy.socket, [PushItem(str(path), der, None)])[0]
    assert (blind.ok, blind.method, blind.error) == (False, Method.RENEWED, result.error)
    assert served(proxy, "site") is None

    dialect = dialect_of(proxy)
    with caplog.at_level(logging.DEBUG, logger="ocsptool"):
        loaded = push_staples(proxy.socket, [renewed], update_certs=True)[0]
    if not dialect.staples_replaced_certs:  # 2.8.0: the new certificate would go unstapled
        assert (loaded.ok, loaded.method) == (False, Method.RENEWED)
        assert loaded.error == result.error.replace(
            "or use --update-certs",
            f"(HAProxy {dialect.version} does not staple a certificate replaced at runtime)",
        ).replace(": reload HAProxy to load it, (", ": reload HAProxy to load it (")
        assert (str(path), old_serial) in loaded_certs(proxy.socket)
        return
    assert (loaded.ok, loaded.method, loaded.error) == (True, Method.CERT_LOADED, None)
    assert served(proxy, "site") == der
    assert (str(path), leaf.cert.serial_number) in loaded_certs(proxy.socket)
    key_pem = bundle.decode().split("-----BEGIN PRIVATE KEY-----")[1]
    key_lines = [line for line in key_pem.splitlines() if line and "-----" not in line]
    assert key_lines  # the key's base64 lines must appear nowhere but in HAProxy
    for line in key_lines:
        assert line not in caplog.text
        assert line not in repr(renewed)
    assert "site.pem <<" in caplog.text  # the debug log did see the command, first line only


# -- ocsp-update on ------------------------------------------------------------------------------


def test_ocsp_update_on_is_left_to_haproxy(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy, haproxy_bin: str
) -> None:
    mine, theirs = cert_dir.add("mine"), cert_dir.add("theirs")
    on_disk = staple(responder, cert_dir.leaves["theirs"])
    cert_dir.staple("theirs").write_bytes(on_disk)
    cert_dir.staple("mine").write_bytes(b"")
    probe = start_haproxy(mine)
    dialect = dialect_of(probe)
    if not dialect.ocsp_updates:
        assert ocsp_updated_paths(probe.socket) == []  # 2.6: no such command, nothing asked
        pytest.skip(f"HAProxy {dialect.version} has no ocsp-update (2.8+)")
    probe.close()
    crt_list = cert_dir.path.parent / "certs.list"
    crt_list.write_text(f"{mine}\n{theirs} [ocsp-update on]\n")
    proxy = start_haproxy(crt_list, crt_list=True)
    assert ocsp_updated_paths(proxy.socket) == [str(theirs)]
    mine_der = staple(responder, cert_dir.leaves["mine"])
    newer = staple(responder, cert_dir.leaves["theirs"])

    results = push_staples(
        proxy.socket, [item(cert_dir, "mine", mine_der), item(cert_dir, "theirs", newer)]
    )

    assert (results[0].ok, results[0].method) == (True, Method.UPDATE)
    assert (results[1].ok, results[1].method) == (True, Method.HAPROXY_UPDATES)
    assert results[1].note == "HAProxy staples it itself (ocsp-update on); not pushed"
    assert served(proxy, "mine") == mine_der
    # HAProxy serves what it loaded from the .ocsp (or its own fetch), never our push.
    assert tls_staple(proxy.port, "theirs.test") != newer


# -- What only one version does ------------------------------------------------------------
# Each test runs against every binary of its version this run is given (the matrix, or
# `$OCSPTOOL_HAPROXY` in a `make matrix` pass), and is reported as not run, with the reason,
# when there is none: CI's matrix (2.6.12, 3.0.11) holds none of them. The tests above prove
# the same code paths on whatever binary runs; these prove the facts ocsptool's dialect
# relies on, against the version that has them.

StartBinary = Callable[..., HAProxy]


@pytest.fixture
def start_binary() -> Iterator[StartBinary]:
    """``start_binary(binary, crt, **options)``: a real HAProxy of the parametrized binary
    (not ``haproxy_bin``), stopped and removed after the test."""
    started: list[HAProxy] = []

    def start(binary: Binary, crt: Path, **options: Any) -> HAProxy:
        proxy = HAProxy(crt, binary=binary.path, **options)
        started.append(proxy)
        proxy.start()
        assert proxy.command("show version").startswith(f"{binary.version}-")
        return proxy

    yield start
    for proxy in started:
        proxy.close()


def ask(address: str, text: str) -> str:
    """HAProxy's raw reply to ``text`` on ``address`` (non-interactive: it hangs up after)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(address)
        sock.sendall(text.encode())
        return read_for(sock, 5.0)


def read_for(sock: socket.socket, seconds: float) -> str:
    """Everything ``sock`` receives within ``seconds`` (or until the peer hangs up)."""
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    return received.decode()


def b64(der: bytes) -> str:
    return base64.b64encode(der).decode()


def refresh(state: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """``ocsptool refresh --state STATE ARGS...`` as a real process, as cron runs it."""
    return run_subprocess("refresh", "--state", state, *args)


@pytest.mark.parametrize("binary", release_params("3.4"), indirect=True)
def test_3_4_ocsp_commands_need_level_admin(
    binary: Binary,
    cert_dir: CertDir,
    responder: Responder,
    state_file: Path,
    start_binary: StartBinary,
) -> None:
    cert_dir.add("slot")
    cert_dir.staple("slot").write_bytes(b"")  # a stapling slot from the start
    cert_dir.add("first")
    proxy = start_binary(binary, cert_dir.path, levels=("operator", "user"))
    version = dialect_of(proxy).version
    der = staple(responder, cert_dir.leaves["slot"])

    for level in ("operator", "user"):
        address = proxy.level_socket(level)
        assert ask(address, "show cli level\n") == f"{level}\n\n"
        # Every OCSP command, read or write, is refused below admin (2.6 to 3.2 take both).
        assert ask(address, "show ssl ocsp-response\n") == "Permission denied\n\n"
        assert ask(address, f"set ssl ocsp-response {b64(der)}\n") == "Permission denied\n\n"
        assert served(proxy, "slot") is None

        result = refresh(state_file, "-s", address, cert_dir.path)

        assert (result.returncode, result.stdout) == (1, "")
        needs = f"setting OCSP responses on HAProxy {version}"
        assert result.stderr == f"ocsptool: {fix(address, level, needs)}\n"  # one line
        assert served(proxy, "slot") is None
        assert served(proxy, "first") is None

    # The same command at level admin, then ocsptool through the admin socket.
    assert ask(proxy.socket, f"set ssl ocsp-response {b64(der)}\n") == "OCSP Response updated!\n\n"
    assert served(proxy, "slot") == der
    fixed = refresh(state_file, "-s", proxy.socket, cert_dir.path)
    assert (fixed.returncode, fixed.stdout, fixed.stderr) == (0, "", "")
    for name in ("slot", "first"):  # an update, and a first staple (a transaction)
        assert served(proxy, name) == cert_dir.staple(name).read_bytes()


@pytest.mark.parametrize("binary", release_params("2.8.0"), indirect=True)
def test_2_8_0_keeps_the_old_certid_after_a_runtime_replace(
    binary: Binary,
    cert_dir: CertDir,
    responder: Responder,
    state_file: Path,
    start_binary: StartBinary,
) -> None:
    """Every other version serves the renewed certificate with its staple after the same
    transaction: ``tests/test_refresh_haproxy.py``'s renewed-certificate test."""
    path = cert_dir.add("site")
    old_staple = staple(responder, cert_dir.leaves["site"])
    cert_dir.staple("site").write_bytes(old_staple)
    proxy = start_binary(binary, cert_dir.path)
    version = dialect_of(proxy).version
    old = cert_dir.leaves["site"]
    assert served(proxy, "site") == old_staple
    cert_dir.add("site")  # renewed on disk: a new key and serial
    new = cert_dir.leaves["site"]
    new_der = new.cert.public_bytes(serialization.Encoding.DER)

    # ocsptool does not replace it at runtime: it says why, and the fix, never success.
    result = refresh(state_file, "--update-certs", "-s", proxy.socket, cert_dir.path)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"ocsptool: {path}: HAProxy {proxy.socket}: HAProxy still holds the certificate "
        f"with serial {old.cert.serial_number:X}, but the file has serial "
        f"{new.cert.serial_number:X} (renewed): reload HAProxy to load it (HAProxy "
        f"{version} does not staple a certificate replaced at runtime)\n"
    )
    assert loaded_certs(proxy.socket) == [(str(path), old.cert.serial_number)]
    assert served(proxy, "site") == old_staple
    new_staple = cert_dir.staple("site").read_bytes()
    assert ocsp.load_der_ocsp_response(new_staple).serial_number == new.cert.serial_number

    # Why: the transaction that loads a renewed certificate with its staple elsewhere.
    bundle = path.read_text().rstrip("\n")
    assert ask(proxy.socket, f"set ssl cert {path} <<\n{bundle}\n\n") == (
        f"Transaction created for certificate {path}!\n\n"
    )
    assert ask(proxy.socket, f"set ssl cert {path}.ocsp <<\n{b64(new_staple)}\n\n") == (
        f"Transaction updated for certificate {path}!\n\n"
    )
    assert ask(proxy.socket, f"commit ssl cert {path}\n") == f"Committing {path}.\nSuccess!\n\n"
    assert loaded_certs(proxy.socket) == [(str(path), new.cert.serial_number)]
    # The new certificate is served with the OLD certificate's staple: the CertID kept.
    assert served_certificate(proxy.port, "site.test") == new_der
    assert served(proxy, "site") == old_staple
    assert set(show_ocsp_responses(proxy.socket)) == {response_certid_key(old_staple)}
    assert ask(proxy.socket, f"set ssl ocsp-response {b64(new_staple)}\n") == (
        "OCSP single response: Certificate ID does not match any certificate or issuer.\n\n"
    )
    assert served(proxy, "site") == old_staple

    # The fix ocsptool names: HAProxy reads the files again.
    proxy.restart()
    again = refresh(state_file, "--update-certs", "-s", proxy.socket, cert_dir.path)
    assert (again.returncode, again.stderr) == (0, "")
    assert served_certificate(proxy.port, "site.test") == new_der
    assert served(proxy, "site") == cert_dir.staple("site").read_bytes() == new_staple


@pytest.mark.parametrize("binary", release_params("3.2.0"), indirect=True)
def test_3_2_0_stalls_past_17_kb_unanswered_and_the_window_does_not(
    binary: Binary,
    cert_dir: CertDir,
    start_binary: StartBinary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More than ~17 KB of commands unanswered on one ``prompt`` connection: 3.2.0 stops
    answering it, and closing it aborts the process (HAProxy issue #3064, fixed after
    3.2.0). ``push_staples`` never has more than ``WINDOW`` (8 KB) unanswered, so the same
    staples go through; 200 of them, read back and served, on every binary of a
    ``make matrix`` pass: ``test_200_realistic_staples_pushed_read_back_and_served``."""
    ca = cert_dir.pki.direct
    delegate = rsa_delegate(ca)
    names = [f"site{i}" for i in range(12)]
    for name in names:
        cert_dir.add(name)
        cert_dir.staple(name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)  # where the aborted process would leave a core file
    proxy = start_binary(binary, cert_dir.path)
    ders = {name: realistic(cert_dir.leaves[name], ca, delegate) for name in names}
    commands = [f"set ssl ocsp-response {b64(ders[name])}\n" for name in names]
    assert sum(map(len, commands)) > 24_000  # all of it sent, none of it read yet

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(proxy.socket)
        sock.sendall(b"prompt\n")
        assert read_for(sock, 1.0) == "\n> "
        sock.sendall("".join(commands).encode())
        replies = read_for(sock, 3.0)
        answered = replies.count("OCSP Response updated!")
        assert replies == "OCSP Response updated!\n\n> " * answered
        assert 0 < answered < len(names)  # it stopped answering: stalled, not slow
        assert sum(map(len, commands[:answered])) > WINDOW  # the window stays below it
        assert read_for(sock, 2.0) == ""
        assert proxy.command("show version").startswith(binary.version)  # only this one
    deadline = time.monotonic() + 10
    while proxy.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proxy.running  # closing the stalled connection aborted the process
    assert "refuses to die, aborting now!" in proxy.output

    proxy.restart()  # the same version, and ocsptool's window, for the same staples
    results = push_staples(proxy.socket, [item(cert_dir, name, ders[name]) for name in names])

    assert [(r.ok, r.method) for r in results] == [(True, Method.UPDATE)] * len(names)
    assert set(show_ocsp_responses(proxy.socket)) == {
        response_certid_key(der) for der in ders.values()
    }
    for name in names:
        assert served(proxy, name) == ders[name]
    assert proxy.running
