"""The transport: sockets that cannot be used, timeouts, addresses (fake servers stand in
for sockets that misbehave in ways a real HAProxy will not on demand).

The push itself is in tests/test_haproxy_push.py.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import CertDir
from test_haproxy_push import StartHAProxy

from ocsptool.errors import HAProxyError, UsageError
from ocsptool.haproxy import (
    PushItem,
    parse_address,
    push_staples,
    show_ocsp_responses,
)
from ocsptool.testing.haproxy import free_port

pytestmark = pytest.mark.haproxy


# -- sockets that cannot be used -----------------------------------------------------------


def some_item(tmp_path: Path) -> list[PushItem]:
    return [PushItem(str(tmp_path / "site.pem"), b"\x30\x03\x0a\x01\x06", None)]


def test_missing_socket(tmp_path: Path) -> None:
    address = str(tmp_path / "nope.sock")
    with pytest.raises(HAProxyError) as info:
        push_staples(address, some_item(tmp_path))
    assert str(info.value) == (
        f"HAProxy socket {address}: no such socket (is HAProxy running with this 'stats socket'?)"
    )


@contextmanager
def unix_server(path: Path, *, listen: bool = True) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        if listen:
            server.listen(4)
        yield server


def test_nobody_listening(tmp_path: Path) -> None:
    address = str(tmp_path / "stale.sock")
    with unix_server(Path(address), listen=False), pytest.raises(HAProxyError) as info:
        push_staples(address, some_item(tmp_path))
    assert str(info.value) == f"HAProxy socket {address}: connection refused (nothing is listening)"


def test_nobody_listening_on_tcp(tmp_path: Path) -> None:
    address = f"ipv4@127.0.0.1:{free_port()}"
    with pytest.raises(HAProxyError, match="connection refused"):
        push_staples(address, some_item(tmp_path))


@contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with the effective uid of nobody (root bypasses file permissions)."""
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_permission_denied(cert_dir: CertDir, start_haproxy: StartHAProxy, tmp_path: Path) -> None:
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path)  # "mode 600" socket in a private directory
    expected = f"HAProxy socket {proxy.socket}: permission denied"
    if os.geteuid() == 0:
        with as_nobody(), pytest.raises(HAProxyError) as info:
            push_staples(proxy.socket, some_item(tmp_path))
    else:
        Path(proxy.socket).chmod(0)
        with pytest.raises(HAProxyError) as info:
            push_staples(proxy.socket, some_item(tmp_path))
    assert str(info.value).startswith(expected)


def test_socket_that_never_answers_times_out(tmp_path: Path) -> None:
    address = str(tmp_path / "silent.sock")
    started = time.monotonic()
    with unix_server(Path(address)), pytest.raises(HAProxyError) as info:
        push_staples(address, some_item(tmp_path), timeout=0.3)
    assert time.monotonic() - started < 2
    assert str(info.value) == f"HAProxy socket {address}: timed out after 0.3s waiting for HAProxy"
    with unix_server(tmp_path / "silent2.sock"), pytest.raises(HAProxyError, match="timed out"):
        show_ocsp_responses(str(tmp_path / "silent2.sock"), timeout=0.3)


def serve_once(server: socket.socket, reply: bytes | None, done: threading.Event) -> None:
    """Accept one client; send ``reply`` (or hang up at once), then wait until ``done``."""
    client, _ = server.accept()
    with client:
        if reply is not None:
            client.recv(65536)
            client.sendall(reply)
            done.wait(5)


@contextmanager
def fake_haproxy(path: Path, reply: bytes | None) -> Iterator[str]:
    done = threading.Event()
    with unix_server(path) as server:
        thread = threading.Thread(target=serve_once, args=(server, reply, done), daemon=True)
        thread.start()
        try:
            yield str(path)
        finally:
            done.set()
            thread.join(5)


def test_connection_closed_before_any_reply(tmp_path: Path) -> None:
    with fake_haproxy(tmp_path / "rude.sock", None) as address, pytest.raises(HAProxyError) as info:
        push_staples(address, some_item(tmp_path), timeout=2)
    assert (
        str(info.value) == f"HAProxy socket {address}: HAProxy closed the connection unexpectedly"
    )


def test_hang_after_the_prompt_raises_within_the_timeout(tmp_path: Path) -> None:
    items = some_item(tmp_path) * 3
    with fake_haproxy(tmp_path / "slow.sock", b"\n> ") as address:
        started = time.monotonic()
        with pytest.raises(HAProxyError) as info:
            push_staples(address, items, timeout=0.3)
    assert time.monotonic() - started < 2
    assert str(info.value) == f"HAProxy socket {address}: timed out after 0.3s waiting for HAProxy"


def test_no_items_means_no_connection(tmp_path: Path) -> None:
    assert push_staples(str(tmp_path / "nope.sock"), []) == []


# -- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("/run/haproxy/admin.sock", (socket.AF_UNIX, "/run/haproxy/admin.sock")),
        ("unix@/run/haproxy/admin.sock", (socket.AF_UNIX, "/run/haproxy/admin.sock")),
        ("relative.sock", (socket.AF_UNIX, "relative.sock")),
        ("ipv4@127.0.0.1:9999", (socket.AF_INET, ("127.0.0.1", 9999))),
        ("ipv4@localhost:9999", (socket.AF_INET, ("localhost", 9999))),
        ("ipv6@[::1]:9999", (socket.AF_INET6, ("::1", 9999))),
    ],
)
def test_parse_address(address: str, expected: tuple[int, object]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    "address",
    ["", "127.0.0.1:9999", "ipv4@127.0.0.1", "ipv4@127.0.0.1:0", "ipv4@127.0.0.1:70000",
     "ipv6@::1:9999", "ipv6@[::1]", "tcp@127.0.0.1:9999", "unix@"],
)  # fmt: skip
def test_parse_address_rejects_bad_syntax(address: str) -> None:
    with pytest.raises(UsageError, match="bad HAProxy socket address") as info:
        parse_address(address)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


# -- replies: cut once, bounded, within one deadline ------------------------------------------


def test_replies_are_cut_at_each_prompt_however_the_bytes_arrive() -> None:
    import re

    from ocsptool.haproxy.transport import _Replies

    stream = b"2.6.12\n\n> admin\n\n> # filename\n/d/a.pem\n/d/b.pem\n\n> \n> tail"
    for size in (1, 2, 3, 5, 64):
        replies = _Replies(re.compile(rb"\n> "), HAProxyError)
        found: list[bytes] = []
        for start in range(0, len(stream), size):
            found += replies.feed(stream[start : start + size])
        assert found == [b"2.6.12\n", b"admin\n", b"# filename\n/d/a.pem\n/d/b.pem\n", b""]
        assert replies.pending == b"tail"


def test_a_reply_without_a_prompt_is_cut_off_in_linear_time() -> None:
    import re

    from ocsptool.haproxy.transport import MAX_REPLY_BYTES, _Replies

    replies = _Replies(re.compile(rb"\n> "), HAProxyError)
    chunk = b"A" * 65536
    started = time.process_time()
    with pytest.raises(HAProxyError, match="sent more than 16 MiB without a prompt"):
        for _ in range(MAX_REPLY_BYTES // len(chunk) + 1):
            assert replies.feed(chunk) == []
    assert time.process_time() - started < 1.0  # each byte scanned once, not each read


def trickle(server: socket.socket, done: threading.Event) -> None:
    """Answer ``prompt`` at once, then one byte every 0.1 s: each read gets data."""
    client, _ = server.accept()
    with client:
        client.recv(65536)
        client.sendall(b"\n> ")
        while not done.wait(0.1):
            try:
                client.sendall(b"2")
            except OSError:
                return


def test_a_trickle_is_given_up_at_the_exchange_deadline(tmp_path: Path) -> None:
    done = threading.Event()
    with unix_server(tmp_path / "trickle.sock") as server:
        thread = threading.Thread(target=trickle, args=(server, done), daemon=True)
        thread.start()
        started = time.monotonic()
        try:
            with pytest.raises(HAProxyError, match=r"timed out after 0\.5s"):
                push_staples(str(tmp_path / "trickle.sock"), some_item(tmp_path), timeout=0.5)
        finally:
            done.set()
            thread.join(5)
    assert time.monotonic() - started < 1.5
