"""The fleet flow on real parts: nodes sharing a real redis-server and one counting responder.

Each simulated node has its own copy of the certificate files, its own parsed bundles
(its ``verify`` checks against those), its own held staples and its own ``StoreRun``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from conftest import ROOT, CertDir
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import NameOID

from ocsptool.certs import Bundle, parse_bundle
from ocsptool.errors import UsageError
from ocsptool.fetch import fetch, new_session
from ocsptool.haproxy import certid_key
from ocsptool.ocsp import Staple, build_request, verify
from ocsptool.shared_store import (
    EXTRA_MISSING,
    Malformed,
    Obtained,
    Origin,
    SharedStore,
    StoreConfigError,
    StoredStaple,
    StoreError,
    StoreRun,
    decode,
    encode,
    open_store,
    staple_key,
)
from ocsptool.testing.pki import Authority
from ocsptool.testing.redis import RedisServer
from ocsptool.testing.responder import Responder
from ocsptool.times import iso

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def cert_id(bundle: Bundle) -> str:
    request = x509_ocsp.load_der_ocsp_request(build_request(bundle))
    return certid_key(request.issuer_name_hash, request.issuer_key_hash, request.serial_number)


@dataclass
class Node:
    """One machine of the fleet: its own files, bundles, held staples and store run."""

    name: str
    bundles: dict[str, Bundle]
    run: StoreRun
    session: requests.Session = field(default_factory=new_session)
    held: dict[str, Staple] = field(default_factory=dict)

    def fetch_from_ca(self, bundle: Bundle, now: dt.datetime) -> Staple:
        url = bundle.ocsp_url
        assert url is not None
        return verify(fetch(self.session, url, build_request(bundle)).body, bundle, now)

    def obtain(self, cert: str, now: dt.datetime = NOW) -> Obtained:
        bundle = self.bundles[cert]
        held = self.held.get(cert)
        result = self.run.obtain(
            cert_id(bundle),
            held.this_update if held else None,
            verify=lambda der: verify(der, bundle, now),
            fetch=lambda: self.fetch_from_ca(bundle, now),
            now=now,
        )
        if result.staple is not None:
            self.held[cert] = result.staple
        return result

    def refresh(self, *, jobs: int = 4, now: dt.datetime = NOW) -> dict[str, Obtained]:
        """Obtain every certificate, ``jobs`` at a time, as the pipeline's pool does."""
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            names = sorted(self.bundles)
            return dict(zip(names, pool.map(lambda n: self.obtain(n, now), names), strict=True))


@pytest.fixture
def make_node(tmp_path: Path, cert_dir: CertDir) -> Iterator[Any]:
    sessions: list[requests.Session] = []

    def make(name: str, store: SharedStore, **run_options: Any) -> Node:
        directory = tmp_path / name
        directory.mkdir()
        bundles = {}
        for cert, leaf in cert_dir.leaves.items():
            bundles[cert] = parse_bundle(leaf.write_bundle(directory / f"{cert}.pem"))
        node = Node(name, bundles, StoreRun(store, name, **run_options))
        sessions.append(node.session)
        return node

    yield make
    for session in sessions:
        session.close()


def issue(cert_dir: CertDir, count: int) -> list[str]:
    names = [f"site{n}" for n in range(count)]
    for name in names:
        cert_dir.add(name)
    return names


def raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


# -- the entry encoding -----------------------------------------------------------------------


def test_an_entry_round_trips() -> None:
    entry = StoredStaple(b"\x30\x03der", NOW, NOW + dt.timedelta(days=4), "edge-1", NOW)
    assert decode(encode(entry)) == entry


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "not an ocsptool entry (empty)"),
        (b"<html>hello</html>", "not an ocsptool entry (18 bytes starting 3c68746d6c3e6865)"),
        (b"OTS", "not an ocsptool entry (3 bytes starting 4f5453)"),
        ("version", "entry version 9, expected 1 (a newer ocsptool?)"),
        ("truncated", "truncated entry"),
        ("no der", "entry without a staple"),
        ("bad node", "entry with unreadable times or node name"),
        ("newline node", "entry with an unprintable node name"),
        ("huge", "staple of 65537 bytes is over the 65536-byte cap"),
    ],
)
def test_a_malformed_entry_is_a_typed_problem(value: bytes | str, reason: str) -> None:
    good = encode(StoredStaple(b"\x30\x00", NOW, NOW, "node", NOW))
    made = {
        "version": good[:3] + b"\x09" + good[4:],
        "truncated": good[:-6],
        "no der": good[:-2],
        "bad node": encode(StoredStaple(b"\x30\x00", NOW, NOW, "node", NOW)).replace(
            b"node", b"\xff\xfe\xfd\xfc"
        ),
        "newline node": encode(StoredStaple(b"\x30\x00", NOW, NOW, "a\nb", NOW)),
        "huge": encode(StoredStaple(b"\x30" * 65537, NOW, NOW, "node", NOW)),
    }
    data = made[value] if isinstance(value, str) else value
    assert decode(data) == Malformed(reason)


# -- one fetch per fleet ----------------------------------------------------------------------


def test_three_nodes_fetch_each_certificate_once(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    certs = issue(cert_dir, 6)
    nodes = [make_node(f"node-{n}", open_store(redis_server.url, timeout=5)) for n in "abc"]
    start = threading.Barrier(len(nodes))
    results: dict[str, dict[str, Obtained]] = {}

    def run(node: Node) -> None:
        start.wait()
        results[node.name] = node.refresh(jobs=3)

    threads = [threading.Thread(target=run, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert responder.requests == len(certs)
    for cert in certs:
        got = [results[node.name][cert] for node in nodes]
        assert all(r.staple is not None and r.error is None and not r.problems for r in got)
        fetchers = [
            node.name for node, r in zip(nodes, got, strict=True) if r.origin == "responder"
        ]
        assert len(fetchers) == 1, (cert, fetchers)
        assert {r.fetched_by for r in got} == set(fetchers)
        assert len({r.staple.der for r in got if r.staple}) == 1  # one staple for the fleet
        stored = nodes[0].run.store.get(cert_id(nodes[0].bundles[cert]))
        assert isinstance(stored, StoredStaple)
        assert stored.fetched_by == fetchers[0]
    assert all(node.run.problem is None for node in nodes)
    # A later node (a fourth machine, or a rebooted one) takes everything from the store.
    late = make_node("node-d", open_store(redis_server.url, timeout=5))
    assert {r.origin for r in late.refresh().values()} == {Origin.STORE}
    assert responder.requests == len(certs)


def test_a_published_staple_expires_with_its_next_update(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    issue(cert_dir, 1)
    node = make_node("node-a", open_store(redis_server.url, timeout=5))
    staple = node.obtain("site0").staple
    assert staple is not None
    ttl = raw(redis_server).ttl(staple_key(cert_id(node.bundles["site0"])))
    expected = (staple.next_update - dt.datetime.now(dt.UTC)).total_seconds()
    assert expected - 5 <= ttl <= expected + 1


def test_a_stored_staple_that_is_itself_due_is_fetched_anew(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    issue(cert_dir, 1)
    store = open_store(redis_server.url, timeout=5)
    make_node("node-a", store).obtain("site0")
    later = NOW + dt.timedelta(days=2, hours=12)  # past the midpoint of a 4-day window
    result = make_node("node-b", store).obtain("site0", later)
    assert (result.origin, result.fetched_by, responder.requests) == ("responder", "node-b", 2)


def test_the_same_staple_as_held_is_not_fresher(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    issue(cert_dir, 1)
    node = make_node("node-a", open_store(redis_server.url, timeout=5))
    node.obtain("site0")
    result = node.obtain("site0")  # due again (the pipeline says so): the store has only ours
    assert (result.origin, result.problems, responder.requests) == ("responder", (), 2)


# -- trust nothing from the store -------------------------------------------------------------


def forged(bundle: Bundle, *, delegate: bool = False) -> bytes:
    """A response for ``bundle`` from an impostor CA that bears the real issuer's name.

    Signed as that issuer (responder ID by name), or by a delegate the impostor issued.
    """
    impostor = Authority.root(
        bundle.issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    )
    signer = impostor.ocsp_signer("Impostor OCSP") if delegate else impostor
    builder = (
        x509_ocsp.OCSPResponseBuilder()
        .add_response(
            cert=bundle.leaf,
            issuer=bundle.issuer,
            algorithm=hashes.SHA1(),
            cert_status=x509_ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - dt.timedelta(minutes=1),
            next_update=NOW + dt.timedelta(days=7),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(x509_ocsp.OCSPResponderEncoding.NAME, signer.cert)
    )
    if delegate:
        builder = builder.certificates([signer.cert])
    response = builder.sign(signer.key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def serial(bundle: Bundle) -> str:
    return f"{bundle.leaf.serial_number:#x}"


@pytest.mark.parametrize(
    "kind", ["garbage", "wrongtype", "other", "older", "forged", "forged_delegate"]
)
def test_a_tampered_entry_is_refused_and_the_node_fetches(
    kind: str,
    redis_server: RedisServer,
    cert_dir: CertDir,
    responder: Responder,
    make_node: Any,
) -> None:
    issue(cert_dir, 2)
    node = make_node("node-a", open_store(redis_server.url, timeout=5))
    mine, other = node.bundles["site0"], node.bundles["site1"]
    key = staple_key(cert_id(mine))
    db = raw(redis_server)
    later = NOW + dt.timedelta(days=7)

    def lie(der: bytes) -> bytes:  # an entry whose header claims a fresh staple
        return encode(StoredStaple(der, NOW, later, "mallory", NOW))

    if kind == "garbage":
        db.set(key, b"<html>hello</html>")
        expected = "store entry refused: not an ocsptool entry (18 bytes starting 3c68746d6c3e6865)"
    elif kind == "wrongtype":
        db.hset(key, "der", b"x")
        expected = "store entry refused: entry is not a string value (WRONGTYPE)"
    elif kind == "other":
        db.set(key, lie(node.fetch_from_ca(other, NOW).der))
        expected = (
            f"stored staple (from mallory) refused: CertID serial {serial(other)} "
            f"does not match {serial(mine)}"
        )
    elif kind == "older":
        node.held["site0"] = node.fetch_from_ca(mine, NOW)
        responder.mode = "stale"
        stale = node.fetch_from_ca(mine, NOW)
        responder.mode = "good"
        db.set(key, lie(stale.der))
        expected = (
            "stored staple (from mallory) refused: older than the one held (thisUpdate "
            f"{iso(stale.this_update)} < {iso(node.held['site0'].this_update)})"
        )
    elif kind == "forged":
        db.set(key, lie(forged(mine)))
        expected = (
            "stored staple (from mallory) refused: bad signature (signer CN=Direct Intermediate)"
        )
    else:
        db.set(key, lie(forged(mine, delegate=True)))
        expected = (
            "stored staple (from mallory) refused: signed by CN=Impostor OCSP, "
            "which is not authorised for this issuer"
        )
    tampered = db.type(key)
    before = responder.requests

    result = node.obtain("site0")

    assert tampered in (b"string", b"hash")
    assert result.problems == (expected,)
    assert (result.origin, result.fetched_by, result.error) == ("responder", "node-a", None)
    assert responder.requests == before + 1
    assert result.staple is not None
    assert verify(result.staple.der, mine, NOW) == result.staple
    if kind != "wrongtype":  # our verified staple replaced the tampered entry
        stored = decode(db.get(key) or b"")
        assert isinstance(stored, StoredStaple)
        assert (stored.der, stored.fetched_by) == (result.staple.der, "node-a")
    assert node.run.problem is None


# -- the store down or slow -------------------------------------------------------------------


def test_the_store_stopped_mid_run_then_restarted(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    certs = issue(cert_dir, 5)
    node = make_node("node-a", open_store(redis_server.url, timeout=2))
    assert node.obtain(certs[0]).origin == "responder"
    redis_server.stop()
    results = [node.obtain(cert) for cert in certs[1:]]
    assert [(r.origin, r.problems, r.error is None) for r in results] == [
        ("responder", (), True)
    ] * 4
    assert node.run.problem == (
        f"store {redis_server.url}: connection refused; fetched directly from the responders"
    )
    assert responder.requests == 5

    redis_server.start()  # back, and empty: the next run uses it again
    second = make_node("node-b", open_store(redis_server.url, timeout=2))
    third = make_node("node-c", open_store(redis_server.url, timeout=2))
    assert second.obtain(certs[0]).origin == "responder"
    got = third.obtain(certs[0])
    assert (got.origin, got.fetched_by, responder.requests) == ("store", "node-b", 6)
    assert second.run.problem is None
    assert third.run.problem is None


def test_a_slow_store_costs_one_timeout_per_run_not_one_per_certificate(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    certs = issue(cert_dir, 6)
    node = make_node("node-a", open_store(redis_server.url, timeout=0.5))
    redis_server.pause()
    try:
        started = time.monotonic()
        results = node.refresh(jobs=1)
        elapsed = time.monotonic() - started
    finally:
        redis_server.resume()
    assert {r.origin for r in results.values()} == {Origin.RESPONDER}
    assert all(r.staple is not None for r in results.values())
    assert node.run.problem == (
        f"store {redis_server.url}: timed out after 0.5s; fetched directly from the responders"
    )
    assert elapsed < 2.5  # one 0.5 s timeout, not six (3 s)
    assert responder.requests == len(certs)


# -- leases -----------------------------------------------------------------------------------


def test_a_node_killed_holding_a_lease_lets_another_fetch_after_it_expires(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    issue(cert_dir, 1)
    node = make_node("node-b", open_store(redis_server.url, timeout=5), patience=10)
    holder_code = (
        "import sys, time\n"
        "from ocsptool.shared_store import open_store\n"
        "store = open_store(sys.argv[1], timeout=5)\n"
        "assert store.try_lease(sys.argv[2], 'doomed', 1.5)\n"
        "print('leased', flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder_code, redis_server.url, cert_id(node.bundles["site0"])],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "leased\n"
            holder.send_signal(signal.SIGKILL)
            assert holder.wait(10) == -signal.SIGKILL
            started = time.monotonic()
            result = node.obtain("site0")
            waited = time.monotonic() - started
        finally:
            holder.kill()
    assert (result.origin, result.fetched_by, result.problems) == ("responder", "node-b", ())
    assert 0.7 < waited < 5  # until the 1.5 s lease ran out, not the 10 s of patience
    assert responder.requests == 1
    stored = node.run.store.get(cert_id(node.bundles["site0"]))
    assert isinstance(stored, StoredStaple)
    assert stored.fetched_by == "node-b"


def test_waiting_for_other_nodes_is_bounded_per_run_not_per_certificate(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    certs = issue(cert_dir, 8)
    store = open_store(redis_server.url, timeout=5)
    node = make_node("node-a", store, patience=0.5)
    for bundle in node.bundles.values():  # a node that took every lease and then hung
        assert store.try_lease(cert_id(bundle), "hung", 60)
    started = time.monotonic()
    results = node.refresh(jobs=1)
    elapsed = time.monotonic() - started
    assert {(r.origin, r.fetched_by) for r in results.values()} == {("responder", "node-a")}
    assert responder.requests == len(certs)
    assert 0.5 <= elapsed < 2.5  # 0.5 s for the whole run; per certificate it would be 4 s


def test_a_released_lease_without_a_staple_is_taken_over(
    redis_server: RedisServer, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    issue(cert_dir, 1)
    store = open_store(redis_server.url, timeout=5)
    node = make_node("node-a", store, patience=10)
    key = cert_id(node.bundles["site0"])
    assert store.try_lease(key, "failing", 60)
    timer = threading.Timer(0.3, store.release, args=(key, "failing"))  # its fetch failed
    timer.start()
    started = time.monotonic()
    result = node.obtain("site0")
    timer.join()
    assert (result.origin, result.fetched_by) == ("responder", "node-a")
    assert time.monotonic() - started < 3


# -- URLs and the extra -----------------------------------------------------------------------


def test_a_unix_socket_store(
    redis_bin: str, cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    issue(cert_dir, 2)
    with RedisServer(unix=True, binary=redis_bin) as server:
        assert server.url.startswith("unix:///") and server.url.endswith("/redis.sock?db=0")
        first = make_node("node-a", open_store(server.url, timeout=5))
        second = make_node("node-b", open_store(server.url, timeout=5))
        assert {r.origin for r in first.refresh().values()} == {Origin.RESPONDER}
        assert {(r.origin, r.fetched_by) for r in second.refresh().values()} == {
            ("store", "node-a")
        }
    assert responder.requests == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "memcached://127.0.0.1/",
            "store 'memcached://127.0.0.1/': unknown scheme 'memcached'; use redis://HOST:PORT/DB, "
            "rediss://HOST:PORT/DB or unix:///path/redis.sock?db=N",
        ),
        (
            "/run/redis.sock",
            "store '/run/redis.sock': unknown scheme '(none)'; use redis://HOST:PORT/DB, "
            "rediss://HOST:PORT/DB or unix:///path/redis.sock?db=N",
        ),
        ("redis://", "store redis://: no host (redis://HOST:PORT/DB)"),
        (
            "redis://h:port/0",
            "store redis://h:port/0: bad URL (Port could not be cast to integer value as 'port')",
        ),
        ("redis://h:6379/zero", "store redis://h:6379/zero: database 'zero' is not a number"),
        ("unix://", "store unix://: no socket path (unix:///path/redis.sock?db=N)"),
        ("unix:///s.sock?db=x", "store unix:///s.sock?db=x: database 'x' is not a number"),
        (
            "redis://:hunter2@h:port/0",
            "store redis://***@h:port/0: bad URL "
            "(Port could not be cast to integer value as 'port')",
        ),
    ],
)
def test_a_bad_url_is_one_usage_line(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError) as caught:
        open_store(url, timeout=1)
    assert str(caught.value) == message
    assert isinstance(caught.value, UsageError)  # exit 2, like any bad option


def test_a_store_that_is_down_names_itself_without_the_password(unused_port: int) -> None:
    store = open_store(f"redis://ocsp:hunter2@127.0.0.1:{unused_port}/3", timeout=1)
    with pytest.raises(StoreError) as caught:
        store.get("00")
    assert (
        str(caught.value) == f"store redis://ocsp:***@127.0.0.1:{unused_port}/3: connection refused"
    )


def test_without_the_redis_extra_the_message_says_how_to_install_it() -> None:
    # The extra cannot be absent and present at once: block the import in a child process.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'redis' or name.startswith('redis.'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from ocsptool.shared_store import StoreConfigError, open_store\n"
        "try:\n"
        "    open_store('redis://127.0.0.1:6379/0', timeout=1)\n"
        "except StoreConfigError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
        check=False,
    )
    assert (done.stdout, done.stderr, done.returncode) == (EXTRA_MISSING + "\n", "", 0)
    assert EXTRA_MISSING == "--store needs the redis extra: pip install 'ocsptool[redis]'"


def test_the_forgery_really_claims_the_issuer(cert_dir: CertDir) -> None:
    """The forged-signature case names the real issuer; only the key differs."""
    cert_dir.add("site")
    bundle = parse_bundle(cert_dir.path / "site.pem")
    response = x509_ocsp.load_der_ocsp_response(forged(bundle))
    assert response.responder_name == bundle.issuer.subject
    assert response.serial_number == bundle.leaf.serial_number


def test_the_fleet_benchmark_smoke(redis_bin: str, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.fleet import main

    assert main(["--nodes", "3", "--certs", "12", "--latency", "0"]) == 0
    out = capsys.readouterr().out
    assert "responder requests: 12 with the store, 36 without\n" in out


def test_a_wait_looks_a_bounded_number_of_times(
    cert_dir: CertDir, responder: Responder, make_node: Any
) -> None:
    """A clock that never moves (or a store that always answers at once): the wait still
    ends after ``max_looks`` looks, then the node fetches itself."""

    class Held:
        name = "held"
        looks = 0

        def get(self, cert_id: str) -> None:
            Held.looks += 1

        def try_lease(self, cert_id: str, node: str, ttl_s: float) -> bool:
            return False

        def release(self, cert_id: str, node: str) -> None:
            pass

        def publish(self, cert_id: str, staple: object) -> None:
            pass

        def close(self) -> None:
            pass

    issue(cert_dir, 1)
    node = make_node("node-a", Held(), max_looks=7, clock=lambda: 0.0, sleep=lambda s: None)
    result = node.obtain("site0")
    assert (result.origin, result.fetched_by) == ("responder", "node-a")
    assert Held.looks == 1 + 7  # the first look, then one per poll
