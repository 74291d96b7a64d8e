"""Every hostile responder, end to end through ``ocsptool refresh``.

Each case starts from a good staple on disk that is due for refresh, lets the responder
misbehave, and proves: exit 1, exactly one line ``ocsptool: <file>: <url>: <cause>`` on
stderr, no traceback, and the good staple byte-identical.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from ocsptool.certs import parse_bundle
from ocsptool.ocsp import build_request
from ocsptool.testing.responder import Responder
from tests.conftest import PKI, RunCli

#: mode -> the cause after ``<file>: <url>: `` (a regex, anchored at both ends)
HOSTILE = {
    "unknown": r"responder does not know this certificate \(status unknown\)",
    "malformedRequest": r"responder said malformedRequest",
    "internalError": r"responder said internalError",
    "tryLater": r"responder said tryLater",
    "sigRequired": r"responder said sigRequired",
    "unauthorized": r"responder said unauthorized",
    "garbage": r"not an OCSP response \(got HTML or XML\)",
    "empty": r"not an OCSP response \(empty body\)",
    "truncated": r"not an OCSP response \(\d+ bytes starting [0-9a-f]{16}\)",
    "bad_signature": r"bad signature \(signer CN=Direct Intermediate\)",
    "stranger": r"signed by CN=Stranger CA, which is not authorised for this issuer",
    "delegate_no_eku": r"signed by CN=No EKU, which lacks the OCSPSigning extended key usage",
    "delegate_other_ca": r"signed by CN=Other CA OCSP, which is not authorised for this issuer",
    "delegate_expired": r"signed by CN=Expired OCSP, whose certificate is not valid now "
    r"\(valid \S+Z to \S+Z\)",
    "future": r"thisUpdate \S+Z is in the future",
    "no_next_update": r"nextUpdate missing; the response cannot be scheduled or served",
    "expired": r"nextUpdate \S+Z has already passed",
    "short": r"nextUpdate \S+Z is less than 5 minutes away; HAProxy would not serve it",
    "sha256": r"CertID uses SHA256, but SHA-1 was asked \(HAProxy matches only SHA-1 CertIDs\)",
    "other_cert": r"CertID serial 0x[0-9a-f]+ does not match 0x[0-9a-f]+",
    "multi": r"2 SingleResponses in one response; expected exactly one",
    "http404": r"HTTP 404",
    "http500": r"HTTP 500",
    "http503": r"HTTP 503 \(Retry-After: 120 s\)",
    "redirect_loop": r"redirect loop at http://127\.0\.0\.1:\d+/ocsp/\S+",
    "redirect_ftp": r"refusing ftp URL 'ftp://127\.0\.0\.1/ocsp': only http and https",
    "huge": r"response of 20971520 bytes is over the 65536-byte cap",
    "huge_stream": r"response is over the 65536-byte cap",
    "hang": r"timed out waiting for 127\.0\.0\.1:\d+ to answer",
    "drip": r"response too slow; gave up",
    "drip_headers": r"response too slow; gave up",
}

DELEGATE_MODES = {"delegate_no_eku", "delegate_other_ca", "delegate_expired"}


class Site:
    """One certificate with a good, due staple, and a way to run refresh on it."""

    def __init__(self, path: Path, state: Path, run_cli: RunCli) -> None:
        self.path = path
        self.state = state
        self.run_cli = run_cli

    @property
    def staple(self) -> Path:
        return Path(f"{self.path}.ocsp")

    def make_due(self) -> None:
        data = json.loads(self.state.read_text())
        for record in data["certs"].values():
            record["due"] = 0
        self.state.write_text(json.dumps(data))

    def refresh(self, *extra: object) -> Result:
        return self.run_cli("refresh", "--timeout", "1", *extra, self.path.parent)


def good_staple_for(path: Path, responder: Responder) -> bytes:
    """A good response made by the responder directly, not over HTTP."""
    saved, responder.mode = responder.mode, "good"
    try:
        return responder.answer(build_request(parse_bundle(path)))[2]
    finally:
        responder.mode = saved


@pytest.fixture
def make_site(
    tmp_path: Path, pki: PKI, responder: Responder, state_file: Path, run_cli: RunCli
) -> Callable[..., Site]:
    def make(url: str | None = None, *, delegated: bool = False) -> Site:
        ca = pki.delegated if delegated else pki.direct
        directory = tmp_path / "certs"
        directory.mkdir(exist_ok=True)
        leaf = ca.leaf("site.test", ocsp_url=url or responder.url)
        path = leaf.write_bundle(directory / "site.pem")
        Path(f"{path}.ocsp").write_bytes(good_staple_for(path, responder))
        site = Site(path, state_file, run_cli)
        first = site.refresh()  # adopts the staple on disk: valid, not due, no request
        assert (first.exit_code, first.stderr) == (0, "")
        site.make_due()
        return site

    return make


def assert_one_line_failure(result: Result, site: Site, url: str, cause: str) -> None:
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    pattern = f"ocsptool: {re.escape(str(site.path))}: {re.escape(url)}: {cause}\n"
    assert re.fullmatch(pattern, result.stderr), result.stderr


@pytest.mark.parametrize("mode", sorted(HOSTILE))
def test_hostile_responder_keeps_the_good_staple(
    mode: str, make_site: Callable[..., Site], responder: Responder
) -> None:
    site = make_site(delegated=mode in DELEGATE_MODES)
    before = site.staple.read_bytes()
    inode = site.staple.stat().st_ino
    responder.mode = mode
    started = time.monotonic()
    result = site.refresh()
    assert_one_line_failure(result, site, responder.url, HOSTILE[mode])
    assert site.staple.read_bytes() == before
    assert site.staple.stat().st_ino == inode  # not even rewritten with the same bytes
    assert time.monotonic() - started < 6  # --timeout 1: connect 1 s, read 1 s, total 3 s
    assert responder.requests >= 1


def test_failure_is_recorded_with_backoff_and_the_old_staple_stays_scheduled(
    make_site: Callable[..., Site], responder: Responder, state_file: Path
) -> None:
    site = make_site()
    responder.mode = "http503"
    site.refresh()
    record = json.loads(state_file.read_text())["certs"][str(site.path)]
    assert record["failures"] == 1
    assert record["last_error"].endswith("HTTP 503 (Retry-After: 120 s)")
    assert record["staple"]["status"] == "good"
    assert record["due"] >= time.time() + 115  # Retry-After 120 s honoured
    # Backing off, with a valid staple on disk: the next run sends nothing, says nothing.
    requests = responder.requests
    again = site.refresh()
    assert responder.requests == requests
    assert (again.exit_code, again.stderr) == (0, "")


def test_recovery_after_failures_writes_the_new_staple(
    make_site: Callable[..., Site], responder: Responder, state_file: Path
) -> None:
    site = make_site()
    before = site.staple.read_bytes()
    responder.mode = "tryLater"
    assert site.refresh().exit_code == 1
    responder.mode = "good"
    time.sleep(1.1)  # a new thisUpdate second, so the new response differs
    site.make_due()
    result = site.refresh()
    assert (result.exit_code, result.stderr) == (0, "")
    assert site.staple.read_bytes() != before
    record = json.loads(state_file.read_text())["certs"][str(site.path)]
    assert (record["failures"], record["last_error"]) == (0, None)


def test_redirect_within_http_is_followed(
    make_site: Callable[..., Site], responder: Responder
) -> None:
    site = make_site()
    responder.mode = "redirect"
    result = site.refresh()
    assert (result.exit_code, result.stderr) == (0, "")


def test_revoked_is_the_truth_written_and_reported(
    make_site: Callable[..., Site], responder: Responder
) -> None:
    site = make_site()
    before = site.staple.read_bytes()
    responder.mode = "revoked"
    result = site.refresh()
    assert result.exit_code == 1
    assert re.fullmatch(
        f"ocsptool: {re.escape(str(site.path))}: REVOKED since .* UTC \\(key_compromise\\); "
        "the staple tells clients so; replace this certificate\n",
        result.stderr,
    )
    assert site.staple.read_bytes() != before
    assert ocsp.load_der_ocsp_response(site.staple.read_bytes()).certificate_status == (
        ocsp.OCSPCertStatus.REVOKED
    )


# -- network faults: nothing (or nothing useful) at the other end -----------------------------


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so connects time out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        server.close()


def test_connection_refused(make_site: Callable[..., Site], closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/ocsp"
    site = make_site(url)
    before = site.staple.read_bytes()
    result = site.refresh()
    assert_one_line_failure(result, site, url, f"connection refused by 127.0.0.1:{closed_port}")
    assert site.staple.read_bytes() == before


def test_dns_failure(make_site: Callable[..., Site]) -> None:
    url = "http://ocsp.no-such-host.invalid/"
    site = make_site(url)
    before = site.staple.read_bytes()
    result = site.refresh()
    assert_one_line_failure(result, site, url, "DNS lookup failed for ocsp.no-such-host.invalid")
    assert site.staple.read_bytes() == before


def test_connect_timeout(make_site: Callable[..., Site], full_backlog: int) -> None:
    url = f"http://127.0.0.1:{full_backlog}/ocsp"
    site = make_site(url)
    before = site.staple.read_bytes()
    started = time.monotonic()
    result = site.refresh()
    assert time.monotonic() - started < 4
    assert_one_line_failure(result, site, url, f"timed out connecting to 127.0.0.1:{full_backlog}")
    assert site.staple.read_bytes() == before


def test_one_dead_responder_does_not_hold_up_the_others(
    tmp_path: Path, pki: PKI, responder: Responder, state_file: Path, run_cli: RunCli
) -> None:
    """Eight certificates hang, eight answer: the run takes about one timeout, not eight."""
    directory = tmp_path / "certs"
    directory.mkdir()
    hanging = []
    for i in range(16):
        leaf = pki.direct.leaf(f"s{i}.test", ocsp_url=responder.url)
        leaf.write_bundle(directory / f"s{i:02}.pem")
        if i % 2:
            responder.modes[leaf.cert.serial_number] = "hang"
            hanging.append(directory / f"s{i:02}.pem")
    started = time.monotonic()
    result = run_cli("refresh", "--timeout", "1", "--jobs", "16", directory)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert sorted(lines) == sorted(
        f"ocsptool: {p}: {responder.url}: timed out waiting for "
        f"{responder.url.split('/')[2]} to answer"
        for p in hanging
    )
    assert elapsed < 5
    assert len(list(directory.glob("*.ocsp"))) == 8


def test_multi_response_is_validly_signed(pki: PKI, responder: Responder) -> None:
    """The 'multi' case is rejected for having two answers, not for a broken signature."""
    leaf = pki.direct.leaf("multi.test", ocsp_url=responder.url)
    from ocsptool.certs import Bundle

    bundle = Bundle(Path("multi.pem"), leaf.cert, pki.direct.cert, None)
    responder.mode = "multi"
    response = ocsp.load_der_ocsp_response(responder.answer(build_request(bundle))[2])
    singles = list(response.responses)
    assert [s.serial_number - leaf.cert.serial_number for s in singles] == [0, 7]
    algorithm = response.signature_hash_algorithm
    assert algorithm is not None
    key = pki.direct.cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))


# -- replays: valid responses older than the staple we hold ----------------------------------


def test_an_older_response_never_replaces_a_newer_staple(
    make_site: Callable[..., Site], responder: Responder
) -> None:
    """A stale CDN copy or a replay is valid but older: keep the newer staple."""
    site = make_site()
    before = site.staple.read_bytes()
    responder.mode = "stale"
    result = site.refresh()
    assert result.exit_code == 1
    assert "older than the staple" in result.stderr
    assert site.staple.read_bytes() == before


def test_a_replayed_good_response_never_undoes_a_revocation(
    make_site: Callable[..., Site], responder: Responder
) -> None:
    site = make_site()
    responder.mode = "revoked"
    site.refresh()
    revoked = site.staple.read_bytes()
    assert ocsp.load_der_ocsp_response(revoked).certificate_status == ocsp.OCSPCertStatus.REVOKED
    site.make_due()
    responder.mode = "stale"  # an attacker on the http path replays an old 'good'
    result = site.refresh()
    assert result.exit_code == 1
    assert site.staple.read_bytes() == revoked


# -- things that are not HTTP responders at all ----------------------------------------------


RAW_ANSWERS = {
    "ssh-banner": (
        b"SSH-2.0-OpenSSH_9.2\r\n",
        r"127\.0\.0\.1:\d+ closed the connection without an answer",
    ),
    "bad-status-line": (
        b"HTTP/1.1 OK\r\n\r\n",
        r"127\.0\.0\.1:\d+ closed the connection without an answer",
    ),
    "short-body": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0\x82\x03\xe8",
        r"127\.0\.0\.1:\d+ broke off the answer \(ProtocolError\)",
    ),
    "bad-chunking": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        r"127\.0\.0\.1:\d+ broke off the answer \(\w+\)",
    ),
    "huge-header": (
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200_000 + b"\r\n\r\n",
        r"127\.0\.0\.1:\d+ closed the connection without an answer",
    ),
}


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], str]]:
    """A TCP server that answers every connection with fixed bytes, then closes."""
    servers: list[socket.socket] = []

    def serve(answer: bytes) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def loop() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(2)
                    with contextlib.suppress(OSError):
                        conn.recv(65536)
                        conn.sendall(answer)

        threading.Thread(target=loop, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}/ocsp"

    yield serve
    for server in servers:
        server.close()


@pytest.mark.parametrize("kind", sorted(RAW_ANSWERS))
def test_not_an_http_responder(
    kind: str, make_site: Callable[..., Site], raw_server: Callable[[bytes], str]
) -> None:
    answer, cause = RAW_ANSWERS[kind]
    url = raw_server(answer)
    site = make_site(url)
    before = site.staple.read_bytes()
    assert_one_line_failure(site.refresh(), site, url, cause)
    assert site.staple.read_bytes() == before
