"""What held in the review, attacked again by the unprivileged user, so that it keeps holding.

- The responder's address is free (the CA's responder here is on loopback, and down): the
  attacker binds it and answers with a gzip bomb (the 64 KiB cap holds, decompressed) or a
  redirect to ``file:///etc/shadow`` (refused).
- It plants symlinks at the staple's path and at its temp path in a world-writable
  certificate directory (the staple is written with O_EXCL|O_NOFOLLOW and renamed over
  them; the link's target is never written).
- It drops hostile files into that directory: garbage PEM, a DER nesting bomb, a bundle
  past the size cap, and a crt-list past 32 MiB in a HAProxy configuration.

Each time the legitimate certificate beside them is fetched, written and stapled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsptool.testing.haproxy import HAProxy, free_port, tls_staple
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, run_subprocess
from tests.security.conftest import Attacker, Peer, elapsed, world_writable

pytestmark = pytest.mark.haproxy

#: An HTTP server of the attacker's on 127.0.0.1:argv[1]: argv[2] is "gzip" (a body of 48 MiB
#: of zeros, gzipped: ~48 KB on the wire, under the cap) or "redirect" (to file:///etc/shadow).
HOSTILE_RESPONDER = """
import gzip, http.server, io, sys
port, kind = int(sys.argv[1]), sys.argv[2]
if kind == "gzip":
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as packed:
        zeros = bytes(1 << 20)
        for _ in range(48):
            packed.write(zeros)
    BOMB = buffer.getvalue()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if kind == "gzip":
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
            self.end_headers()
            self.wfile.write(BOMB)
        else:
            self.send_response(302)
            self.send_header("Location", "file:///etc/shadow")
            self.send_header("Content-Length", "0")
            self.end_headers()
    do_GET = do_POST
    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
"""

SYMLINKS = """
import os, sys
victim, *links = sys.argv[1:]
for link in links:
    os.symlink(victim, link)
"""

DROP = """
import shutil, sys
for source, name in zip(sys.argv[1::2], sys.argv[2::2]):
    shutil.copyfile(source, name)
"""


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("gzip", "response is over the 65536-byte cap"),
        ("redirect", "refusing file URL 'file:///etc/shadow': only http and https"),
    ],
)
def test_a_responder_address_taken_by_the_attacker(  # noqa: PLR0917 - fixtures
    kind: str,
    why: str,
    attacker: Attacker,
    peers: list[Peer],
    pki: PKI,
    responder: Responder,
    haproxy_bin: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    peers.append(attacker.start(HOSTILE_RESPONDER, str(port), kind))
    certs = tmp_path / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    url = f"http://127.0.0.1:{port}/"
    other = pki.direct.leaf("other.test", ocsp_url=url).write_bundle(certs / "other.pem")
    with HAProxy(certs, binary=haproxy_bin) as proxy:
        started = time.monotonic()
        result = run_subprocess(
            "refresh", "--state", tmp_path / "state.json", "-s", proxy.socket, certs, timeout=60
        )
        assert elapsed(started) < 30
        assert (result.returncode, result.stderr) == (1, f"ocsptool: {other}: {url}: {why}\n")
        assert not Path(f"{other}.ocsp").exists()
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()


def test_symlinks_at_the_staple_and_temp_paths_are_never_followed(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    certs = world_writable(arena / "certs")
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    victim = arena / "victim"
    victim.write_bytes(b"root's file")
    victim.chmod(0o644)
    staple, temp = Path(f"{site}.ocsp"), certs / ".site.pem.ocsp.ocsptool-tmp.ocsp"
    attacker.run(SYMLINKS, victim, staple, temp)
    assert staple.is_symlink() and temp.is_symlink()
    with HAProxy(certs, binary=haproxy_bin) as proxy:
        result = run_subprocess(
            "refresh", "--state", arena / "state.json", "-s", proxy.socket, certs
        )
        assert (result.returncode, result.stderr) == (0, "")
        assert victim.read_bytes() == b"root's file"
        assert not staple.is_symlink() and not temp.exists()
        assert tls_staple(proxy.port, "site.test") == staple.read_bytes()


def der_bomb(depth: int) -> bytes:
    """SEQUENCEs nested ``depth`` deep (definite lengths): a DER parser's recursion test."""
    data = b""
    for _ in range(depth):
        length = len(data)
        size = (length.bit_length() + 7) // 8
        head = (
            bytes([length])
            if length < 0x80
            else bytes([0x80 | size]) + length.to_bytes(size, "big")
        )
        data = b"\x30" + head + data
    return data


def test_hostile_files_beside_a_good_certificate(
    attacker: Attacker, arena: Path, pki: PKI, responder: Responder, haproxy_bin: str
) -> None:
    """A tenant's directory that ocsptool scans (HAProxy itself refuses to start on such
    files, so it loads only the good one's)."""
    ours = arena / "ours"
    ours.mkdir()
    certs = world_writable(arena / "certs")
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(ours / "site.pem")
    good = site.read_bytes()
    hostile = {
        "garbage.pem": b"-----BEGIN CERTIFICATE-----\n"
        + b"A" * 5000
        + b"\n-----END CERTIFICATE-----\n",
        "nested.crt": der_bomb(50_000),
        "huge.pem": good + b"\n" * (2 * 1024 * 1024),
    }
    sources = []
    for name, data in hostile.items():
        source = arena / f"{name}.source"
        source.write_bytes(data)
        source.chmod(0o644)
        sources += [str(source), str(certs / name)]
    attacker.run(DROP, *sources)
    with HAProxy(ours, binary=haproxy_bin) as proxy:
        started = time.monotonic()
        result = run_subprocess(
            "refresh", "--state", arena / "state.json", "-s", proxy.socket, ours, certs
        )
        assert elapsed(started) < 30
        assert "Traceback" not in result.stderr
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert sorted(line.split(": ")[1] for line in lines) == sorted(
            str(certs / n) for n in hostile
        )
        assert (
            f"ocsptool: {certs}/huge.pem: over 1024 KiB; not a certificate bundle, skipped" in lines
        )
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()


def test_a_crt_list_past_the_size_cap(attacker: Attacker, arena: Path, tmp_path: Path) -> None:
    lair = arena / "lair"
    lair.mkdir()
    os.chown(lair, attacker.uid, attacker.gid)
    crt_list = lair / "list.txt"
    attacker.run(
        "import sys\nwith open(sys.argv[1], 'wb') as f:\n    f.truncate(33 * 1024 * 1024)\n",
        crt_list,
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "global\n    stats socket /nonexistent/admin.sock level admin\n\n"
        f"frontend tls\n    bind 127.0.0.1:8443 ssl crt-list {crt_list}\n"
    )
    started = time.monotonic()
    result = run_subprocess("refresh", "--state", tmp_path / "s.json", "--haproxy-config", config)
    assert elapsed(started) < 15
    assert f"{config}:5: cannot open crt-list '{crt_list}': larger than 32 MiB" in result.stderr
