"""ocsptool.nginx.served: the OCSP response a real nginx staples, read in a real handshake."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PKI
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from ocsptool.files import write_atomic
from ocsptool.nginx import TLSClientMissing, read_nginx_config
from ocsptool.nginx.control import check_command, reload_nginx
from ocsptool.nginx.errors import HandshakeFailed
from ocsptool.nginx.model import Certificate, Listen, ServerBlock, StapleFile
from ocsptool.nginx.served import (
    Probe,
    ServedCheck,
    handshake,
    probes,
    served_staple,
    wait_until_served,
)
from ocsptool.testing.haproxy import tls_staple
from ocsptool.testing.haproxy_configs import good_staple
from ocsptool.testing.nginx import Nginx, Site, free_port, issue

pytestmark = pytest.mark.nginx


def server_block(
    port: int, name: str, sites: list[Site], staple: str | None, extra: str = ""
) -> str:
    certs = "".join(f"  ssl_certificate {s.cert}; ssl_certificate_key {s.key};\n" for s in sites)
    stapling = f"  ssl_stapling on; ssl_stapling_file {staple};\n" if staple else ""
    return (
        f"server {{ listen 127.0.0.1:{port} ssl; server_name {name};\n{certs}{stapling}{extra}}}\n"
    )


def test_each_name_gets_its_staple_rsa_and_ecdsa(
    start_nginx: Callable[..., Nginx], pki: PKI
) -> None:
    nginx = start_nginx(start=False)
    port = free_port()
    rsa = issue(pki.direct, nginx.dir / "tls", "rsa.test", rsa_key=True)
    ec = issue(pki.delegated, nginx.dir / "tls", "ec.test")
    staples = {
        "rsa.test": nginx.write("tls/rsa.ocsp", good_staple(rsa.leaf, pki.direct)),
        "ec.test": nginx.write("tls/ec.ocsp", good_staple(ec.leaf, pki.delegated)),
    }
    nginx.write("conf.d/rsa.conf", server_block(port, "rsa.test", [rsa], "tls/rsa.ocsp"))
    nginx.write("conf.d/ec.conf", server_block(port, "ec.test", [ec], "tls/ec.ocsp"))
    nginx.start()
    for name, site in (("rsa.test", rsa), ("ec.test", ec)):
        shook = handshake("127.0.0.1", port, name, timeout=5)
        assert shook.staple == staples[name].read_bytes()
        assert shook.certificate == site.leaf.cert.public_bytes(Encoding.DER)
        # the hand-written TLS 1.2 client of the HAProxy harness sees the same bytes
        assert tls_staple(port, name) == shook.staple
    assert served_staple("127.0.0.1", port, "ec.test") == staples["ec.test"].read_bytes()


def test_tls13_only(start_nginx: Callable[..., Nginx], pki: PKI) -> None:
    """In TLS 1.3 the staple travels encrypted in the Certificate message: OpenSSL reads
    it; a TLS 1.2 client cannot even connect."""
    nginx = start_nginx(start=False)
    port = free_port()
    site = issue(pki.direct, nginx.dir / "tls", "site.test")
    staple = nginx.write("tls/site.ocsp", good_staple(site.leaf, pki.direct))
    block = server_block(port, "site.test", [site], "tls/site.ocsp", "  ssl_protocols TLSv1.3;\n")
    nginx.write("conf.d/site.conf", block)
    nginx.start()
    shook = handshake("127.0.0.1", port, "site.test")
    assert (shook.protocol, shook.staple) == ("TLSv1.3", staple.read_bytes())
    with pytest.raises(ConnectionError, match="alert"):
        tls_staple(port, "site.test")


def test_no_staple(start_nginx: Callable[..., Nginx], pki: PKI) -> None:
    nginx = start_nginx(start=False)
    port = free_port()
    site = issue(pki.direct, nginx.dir / "tls", "site.test")
    nginx.write("conf.d/site.conf", server_block(port, "site.test", [site], None))
    nginx.start()
    assert served_staple("127.0.0.1", port, "site.test") is None
    check = wait_until_served("127.0.0.1", port, "site.test", b"expected", timeout=0.2)
    assert not check.ok
    assert check.problem == f"site.test on 127.0.0.1:{port}: nginx staples no OCSP response"


def test_a_reload_serves_the_new_bytes(start_nginx: Callable[..., Nginx], pki: PKI) -> None:
    nginx = start_nginx(start=False)
    port = free_port()
    site = issue(pki.direct, nginx.dir / "tls", "site.test")
    first = good_staple(site.leaf, pki.direct)
    staple = nginx.write("tls/site.ocsp", first)
    nginx.write("conf.d/site.conf", server_block(port, "site.test", [site], "tls/site.ocsp"))
    nginx.start()
    second = good_staple(site.leaf, pki.direct)
    assert second != first
    staple.write_bytes(second)
    before = wait_until_served("127.0.0.1", port, "site.test", second, timeout=0.3)
    assert (before.ok, before.served) == (False, first)
    assert before.attempts > 1
    assert before.problem == (
        f"site.test on 127.0.0.1:{port}: nginx staples a different OCSP response than the "
        "one written"
    )
    nginx.hangup()  # no waiting for the workers: the retries absorb it
    after = wait_until_served("127.0.0.1", port, "site.test", second, timeout=10)
    assert after.ok and after.problem is None and after.served == second


def test_several_certificates_one_file_staples_the_wrong_response(
    start_nginx: Callable[..., Nginx], pki: PKI
) -> None:
    """The trap the reader reports, shown on the real nginx: an ECDSA client of a block
    with an RSA and an ECDSA certificate gets the RSA certificate's response."""
    nginx = start_nginx(start=False)
    port = free_port()
    rsa = issue(pki.direct, nginx.dir / "tls", "rsa.both", rsa_key=True)
    ec = issue(pki.direct, nginx.dir / "tls", "ec.both")
    rsa_staple = nginx.write("tls/both.ocsp", good_staple(rsa.leaf, pki.direct))
    nginx.write("conf.d/both.conf", server_block(port, "both.test", [rsa, ec], "tls/both.ocsp"))
    nginx.start()
    for ciphers, site in (
        ("ECDHE-RSA-AES128-GCM-SHA256", rsa),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", ec),
    ):
        certificate, staple = _tls12(port, "both.test", ciphers)
        assert certificate == site.leaf.cert.public_bytes(Encoding.DER)
        assert staple == rsa_staple.read_bytes()


def _tls12(port: int, name: str, ciphers: str) -> tuple[bytes, bytes]:
    """A TLS 1.2 handshake offering only ``ciphers``: (leaf DER, staple)."""
    stapled: list[bytes] = []
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.set_cipher_list(ciphers.encode())
    context.set_ocsp_client_callback(lambda _c, data, _d: stapled.append(data) or True)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        connection = SSL.Connection(context, sock)
        connection.set_tlsext_host_name(name.encode())
        connection.request_ocsp()
        connection.set_connect_state()
        sock.settimeout(None)
        connection.do_handshake()
        cert = connection.get_peer_certificate(as_cryptography=True)
    assert cert is not None
    return cert.public_bytes(Encoding.DER), stapled[0]


def test_handshake_failures() -> None:
    port = free_port()
    with pytest.raises(HandshakeFailed) as refused:
        handshake("127.0.0.1", port, "x.test", timeout=2)
    assert str(refused.value) == (
        f"TLS handshake with 127.0.0.1:{port} (x.test) failed: Connection refused"
    )
    check = wait_until_served("127.0.0.1", port, "x.test", b"x", timeout=0.2, interval=0.05)
    assert check.problem == (
        f"x.test on 127.0.0.1:{port}: TLS handshake with 127.0.0.1:{port} (x.test) failed: "
        "Connection refused"
    )
    assert check.attempts >= 2


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(HandshakeFailed, match=r"\(x.test\) failed: timed out$"):
            handshake("127.0.0.1", port, "x.test", timeout=0.3)


def test_a_server_that_is_not_tls() -> None:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        port = plain.getsockname()[1]

        def answer() -> None:
            client, _ = plain.accept()
            with client:
                client.recv(4096)
                client.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        with pytest.raises(
            HandshakeFailed, match=r"^TLS handshake with 127\.0\.0\.1:\d+ \(x\.test\) failed: "
        ):
            handshake("127.0.0.1", port, "x.test", timeout=2)
        thread.join()


def test_without_pyopenssl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "OpenSSL", None)
    with pytest.raises(TLSClientMissing) as missing:
        served_staple("127.0.0.1", 1, "x.test")
    assert str(missing.value) == (
        "the nginx handshake check needs pyOpenSSL, which is not installed: "
        "pip install 'ocsptool[nginx]'"
    )
    with pytest.raises(TLSClientMissing):
        wait_until_served("127.0.0.1", 1, "x.test", b"x", timeout=5)


def test_served_check_is_ok_only_on_equal_bytes() -> None:
    check = ServedCheck("h", 1, "n", b"a", b"a", None, 1)
    assert check.ok and check.problem is None
    assert not ServedCheck("h", 1, "n", b"a", b"b", None, 1).ok
    assert not ServedCheck("h", 1, "n", b"a", None, None, 1).ok
    assert not ServedCheck("h", 1, "n", b"a", b"a", "failed", 1).ok


def test_probes_one_per_name_on_the_first_tls_listen() -> None:
    cert = Certificate("/c.pem", "/c.key", "f:2")

    def block(origin: str, names: tuple[str, ...], listens: tuple[Listen, ...]) -> ServerBlock:
        return ServerBlock(origin, names, listens, (cert,), True, "/s", "f:3", None)

    tls = Listen("*", 8443, True, False, "f:1")
    plain = Listen("127.0.0.2", 80, False, False, "f:1")
    six = Listen("[::]", 443, True, False, "f:1")
    staple = StapleFile(
        "/s",
        "f:3",
        cert,
        None,
        (
            block("a:1", ("www.a.test", ".a.test", "*.a.test"), (plain, tls, six)),
            block("b:1", ("_",), (tls,)),
            block("c:1", ("c.test",), (plain,)),
            block("d:1", ("www.a.test",), (tls,)),
            block("e:1", ("e.test",), (six,)),
        ),
    )
    assert probes(staple) == (
        Probe("127.0.0.1", 8443, "www.a.test", "a:1"),
        Probe("127.0.0.1", 8443, "a.test", "a:1"),
        Probe("::1", 443, "e.test", "e:1"),
    )


def test_read_write_reload_prove(start_nginx: Callable[..., Nginx], pki: PKI) -> None:
    """The whole path the sink takes: read the configuration, write each staple file,
    reload once, prove each name's staple by handshake."""
    nginx = start_nginx(start=False, http_lines=("ssl_stapling on;",))
    port = free_port()
    rsa = issue(pki.direct, nginx.dir / "tls", "rsa.test", rsa_key=True)
    ec = issue(pki.delegated, nginx.dir / "tls", "ec.test")
    for name, site, ca in (("rsa", rsa, pki.direct), ("ec", ec, pki.delegated)):
        nginx.write(f"staples/{name}.ocsp", good_staple(site.leaf, ca))
        nginx.write(
            f"conf.d/{name}.conf",
            f"server {{ listen 127.0.0.1:{port} ssl; server_name {name}.test www.{name}.test;\n"
            f"  ssl_certificate {site.cert}; ssl_certificate_key {site.key};\n"
            f"  ssl_stapling_file staples/{name}.ocsp; }}\n",
        )
    nginx.start()
    conf = read_nginx_config(nginx.config, prefix=nginx.prefix)
    assert conf.problems == () and conf.warnings == ()
    fresh = {
        f"{nginx.dir}/staples/rsa.ocsp": good_staple(rsa.leaf, pki.direct),
        f"{nginx.dir}/staples/ec.ocsp": good_staple(ec.leaf, pki.delegated),
    }
    assert sorted(f.path for f in conf.staple_files) == sorted(fresh)
    for staple in conf.staple_files:
        write_atomic(Path(staple.path), fresh[staple.path])
    reload_nginx(
        conf.pid_path,
        check=check_command(nginx.binary, nginx.config, nginx.prefix),
        error_logs=conf.error_logs,
    )
    checked = [
        wait_until_served(p.host, p.port, p.servername, fresh[staple.path], timeout=5)
        for staple in conf.staple_files
        for p in probes(staple)
    ]
    assert [(c.servername, c.ok) for c in checked] == [  # conf.d/*.conf in order
        ("ec.test", True),
        ("www.ec.test", True),
        ("rsa.test", True),
        ("www.rsa.test", True),
    ]
