"""The readers never parse an error reply as data: each refusal is a named error.

A scripted stand-in answers as a real HAProxy does at each level (the replies are the
literal ones of 2.6 to 3.4, see ../shared/notes/haproxy-ocsp.md); the real binaries
prove the same in tests/test_haproxy_versions.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ocsptool.haproxy import (
    SocketLevelError,
    UnexpectedReply,
    loaded_certs,
    ocsp_updated_paths,
    ocsp_updates,
    show_ocsp_responses,
    show_ssl_certs,
)
from ocsptool.haproxy.transport import Connection


@contextmanager
def scripted(path: Path, replies: dict[str, str], *, master: bool = False) -> Iterator[str]:
    """A socket answering each command line with ``replies[line]`` in prompt mode.

    A payload (``... <<`` up to an empty line) is answered as its first line.
    """
    prompt = b"\nmaster> " if master else b"\n> "

    def serve(server: socket.socket) -> None:
        client, _ = server.accept()
        with client:
            buffer = b""
            payload: str | None = None  # the first line of a payload being read
            while chunk := client.recv(65536):
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.decode()
                    if payload is not None:
                        if line:
                            continue
                        line, payload = payload, None
                    elif line.endswith(" <<"):
                        payload = line
                        continue
                    if line == "prompt":
                        client.sendall(b"master> " if master else b"\n> ")
                        continue
                    if master and line not in ("show version", "show cli level"):
                        assert line.startswith("@1 "), line  # to the worker
                        line = line[3:]
                    client.sendall(replies[line].encode() + b"\n" + prompt)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        yield str(path)


def haproxy(version: str, level: str, **replies: str) -> dict[str, str]:
    return {"show version": version, "show cli level": level, **replies}


def fix(address: str, level: str, needs: str) -> str:
    return (
        f"HAProxy socket {address} is at level {level}, but {needs} needs level admin: "
        f"configure it as `stats socket {address} level admin`"
    )


def test_user_level_show_ssl_cert_is_not_a_certificate_path(tmp_path: Path) -> None:
    replies = haproxy("2.6.12-1+deb12u4", "user", **{"show ssl cert": "Can't allocate memory!"})
    with scripted(tmp_path / "u.sock", replies) as address, pytest.raises(SocketLevelError) as e:
        show_ssl_certs(address)
    assert str(e.value) == fix(address, "user", "`show ssl cert`")


def test_permission_denied_on_3_4_is_named(tmp_path: Path) -> None:
    replies = haproxy(
        "3.4.0-64a335366", "operator", **{"show ssl ocsp-response": "Permission denied"}
    )
    with scripted(tmp_path / "o.sock", replies) as address, pytest.raises(SocketLevelError) as e:
        show_ocsp_responses(address)
    assert str(e.value) == fix(address, "operator", "`show ssl ocsp-response`")


def test_an_unknown_reply_is_unexpected_not_data(tmp_path: Path) -> None:
    replies = haproxy("2.6.12", "admin", **{"show ssl cert": "Unknown command, but maybe..."})
    with scripted(tmp_path / "x.sock", replies) as address, pytest.raises(UnexpectedReply) as e:
        show_ssl_certs(address)
    assert str(e.value) == (
        f"HAProxy socket {address}: cannot read the certificates (`show ssl cert`): "
        "HAProxy 2.6.12 answered 'Unknown command, but maybe...'"
    )


def test_loaded_certs_reads_each_serial_and_none_for_a_bundle(tmp_path: Path) -> None:
    replies = haproxy(
        "3.2.0-e134140d2",
        "admin",
        **{
            "show ssl cert": "# filename\n/etc/a.pem\n/etc/b.pem",
            "show ssl cert /etc/a.pem": "Filename: /etc/a.pem\nStatus: Used\nSerial: 0EA6\n",
            "show ssl cert /etc/b.pem": (
                "Can't display the certificate: Not found or the certificate is a bundle!"
            ),
        },
    )
    with scripted(tmp_path / "a.sock", replies) as address:
        assert loaded_certs(address) == [("/etc/a.pem", 0x0EA6), ("/etc/b.pem", None)]


def test_ocsp_updates_rows(tmp_path: Path) -> None:
    header = (
        "OCSP Certid | Path | Next Update | Last Update | Successes | Failures | "
        "Last Update Status | Last Update Status (str)"
    )
    row = "304d30AB | /etc/a.pem | 01/Dec/2026:22:00:00 +0000 | - | 1 | 0 | 1 | Update successful"
    replies = haproxy("2.8.0-fdd8154ed", "admin", **{"show ssl ocsp-updates": f"{header}\n{row}"})
    with scripted(tmp_path / "u.sock", replies) as address:
        (update,) = ocsp_updates(address)
    assert (update.cert_id, update.path, update.successes, update.status) == (
        "304d30ab",
        "/etc/a.pem",
        1,
        "Update successful",
    )
    with scripted(tmp_path / "v.sock", haproxy("2.6.12", "admin")) as address:
        assert ocsp_updated_paths(address) == []  # 2.6 has no ocsp-update: not even asked


def test_master_cli_is_detected_and_every_command_routed(tmp_path: Path) -> None:
    replies = haproxy("3.2.0-e134140d2", "admin", **{"show ssl cert": "# filename\n/etc/a.pem"})
    with scripted(tmp_path / "m.sock", replies, master=True) as address:
        connection = Connection(address, 2)
        assert connection.master
        assert connection.dialect.version == "3.2.0-e134140d2"
        connection.close()
    with scripted(tmp_path / "n.sock", replies, master=True) as address:
        assert show_ssl_certs(address) == (["/etc/a.pem"], [])
