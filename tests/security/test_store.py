"""Attack 7: the shared store hands a node a huge value.

Anyone who can write to the store (here: any local user, since a loopback Redis without
a password takes every connection) puts a 256 MB value where a certificate's staple
goes and holds its lease, so the node waits and looks again every 50 ms. A whole ``GET``
took 1.6 GB per node for a 500 MB value; now an entry is never read past
``MAX_ENTRY_BYTES``, and a wait looks a bounded number of times.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.x509 import ocsp

from ocsptool.certs import parse_bundle
from ocsptool.haproxy import certid_key
from ocsptool.ocsp import build_request
from ocsptool.shared_store import MAX_ENTRY_BYTES, lease_key, staple_key
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.redis import RedisServer
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, ROOT
from tests.security.conftest import Attacker

pytestmark = pytest.mark.haproxy

HUGE = 256 * 1024 * 1024

#: A stdlib RESP client: SET argv[3] to argv[4] bytes of "A", and the lease argv[5].
STUFF = """
import socket, sys
host, port, key, size, lease = sys.argv[1:]
port, size = int(port), int(size)
def command(sock, *parts, tail=0):
    head = b"*%d\\r\\n" % (len(parts) + (1 if tail else 0))
    for part in parts:
        head += b"$%d\\r\\n%s\\r\\n" % (len(part), part)
    if tail:
        head += b"$%d\\r\\n" % tail
    sock.sendall(head)
with socket.create_connection((host, port)) as sock:
    command(sock, b"SET", key.encode(), tail=size)
    block = b"A" * (1 << 20)
    left = size
    while left:
        sock.sendall(block[: min(left, len(block))])
        left -= min(left, len(block))
    sock.sendall(b"\\r\\n")
    command(sock, b"SET", lease.encode(), b"other-node", b"EX", b"600")
    answers = b""
    while answers.count(b"\\r\\n") < 2:
        answers += sock.recv(100)
    print(answers.decode().replace("\\r\\n", " ").strip())
"""


def cert_id(path: Path) -> str:
    request = ocsp.load_der_ocsp_request(build_request(parse_bundle(path)))
    return certid_key(request.issuer_name_hash, request.issuer_key_hash, request.serial_number)


def test_a_huge_store_value_is_never_read(  # noqa: PLR0917 - fixtures
    attacker: Attacker,
    redis_server: RedisServer,
    pki: PKI,
    responder: Responder,
    haproxy_bin: str,
    tmp_path: Path,
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    site = pki.direct.leaf("site.test", ocsp_url=responder.url).write_bundle(certs / "site.pem")
    key = cert_id(site)
    said = attacker.run(
        STUFF, "127.0.0.1", str(redis_server.port), staple_key(key), str(HUGE), lease_key(key)
    )
    assert said.strip() == "+OK +OK"

    with HAProxy(certs, binary=haproxy_bin) as proxy:
        argv = ["refresh", "--state", tmp_path / "state.json", "--store", redis_server.url]
        argv += ["-s", proxy.socket, certs]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "ocsptool", *map(str, argv)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)  # this run's own peak memory
        took = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        process.stderr.close()

        assert usage.ru_maxrss < 150 * 1024, usage.ru_maxrss  # KiB: the value was never read
        assert (process.returncode, stderr) == (
            0,
            f"ocsptool: {site}: store entry refused: entry of more than {MAX_ENTRY_BYTES} "
            "bytes; not read further\n",
        )
        assert took < 30  # the wait for the lease holder: its patience (5 s), not forever
        assert tls_staple(proxy.port, "site.test") == Path(f"{site}.ocsp").read_bytes()
