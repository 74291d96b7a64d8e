"""A fleet through the CLI: nodes sharing a real redis-server and one counting responder.

Each simulated node has its own copy of the same certificate files, its own state file
and (in the tests marked ``haproxy``) its own HAProxy process; every node is driven with
``ocsptool refresh --store redis://... -s SOCK DIR``, as an operator sets it up.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from conftest import CertDir, run_subprocess
from test_fleet import forged

from ocsptool import exitcodes
from ocsptool.certs import parse_bundle
from ocsptool.cli import cli
from ocsptool.fleet.store import StoredStaple, encode, staple_key
from ocsptool.ocsp import verify
from ocsptool.target import target_of
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.redis import RedisServer
from ocsptool.testing.responder import Responder

HOST = socket.gethostname()
NAMES = ("www", "api", "shop")


@dataclass
class Node:
    """One machine of the fleet: its own certificate directory and state file."""

    certs: Path
    state: Path
    proxy: HAProxy | None = None

    def argv(self, command: str, *args: object, store: str | None = None) -> list[str]:
        argv = [command, "--state", str(self.state)]
        if store is not None:
            argv += ["--store", store]
        if self.proxy is not None and command != "status":
            argv += ["-s", self.proxy.socket]
        return [*argv, *map(str, args)]

    def run(self, command: str, *args: object, store: str | None = None) -> Result:
        argv = self.argv(command, *args, store=store)
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    def refresh(self, store: str | None) -> Result:
        return self.run("refresh", self.certs, store=store)

    def status(self, code: int = 0) -> dict[str, dict[str, object]]:
        result = self.run("status", "--json", self.certs)
        assert result.exit_code == code, result.output
        return {Path(c["path"]).stem: c for c in json.loads(result.stdout)["certificates"]}

    def make_due(self) -> None:
        """The next refresh interval: every record due now (as days later)."""
        data = json.loads(self.state.read_text())
        for record in data["certs"].values():
            record["due"] = 0
        self.state.write_text(json.dumps(data))


@pytest.fixture
def fleet(tmp_path: Path, cert_dir: CertDir) -> Callable[[int], list[Node]]:
    """``fleet(n)``: n nodes with copies of the same bundles (www, api, shop)."""
    for name in NAMES:
        cert_dir.add(name)

    def make(n: int) -> list[Node]:
        nodes = []
        for i in range(n):
            certs = tmp_path / f"node-{i}" / "certs"
            shutil.copytree(cert_dir.path, certs)
            nodes.append(Node(certs, tmp_path / f"node-{i}" / "state.json"))
        return nodes

    return make


def on_disk(node: Node, name: str) -> bytes:
    return (node.certs / f"{name}.pem.ocsp").read_bytes()


def certid(path: Path) -> str:
    return target_of(parse_bundle(path)).certid


# -- one fetch per certificate, every node's HAProxy serves it --------------------------------


@pytest.mark.haproxy
def test_three_nodes_fetch_each_certificate_once_and_every_haproxy_serves_it(
    fleet: Callable[[int], list[Node]],
    responder: Responder,
    redis_server: RedisServer,
    start_haproxy: Callable[..., HAProxy],
) -> None:
    nodes = fleet(3)
    for node in nodes:
        node.proxy = start_haproxy(node.certs)
    for node in nodes:
        result = node.refresh(redis_server.url)
        assert (result.exit_code, result.stderr) == (0, "")
    assert responder.requests == len(NAMES)  # not 3 x 3
    now = dt.datetime.now(dt.UTC)
    for node in nodes:
        assert node.proxy is not None
        for name in NAMES:
            served = tls_staple(node.proxy.port, f"{name}.test")
            assert served == on_disk(node, name) == on_disk(nodes[0], name)
            assert verify(served, parse_bundle(node.certs / f"{name}.pem"), now).status == "good"
    # status says where each came from: the first node asked the responder, the others
    # took its staples from the store.
    first, *others = [node.status() for node in nodes]
    assert {(c["origin"], c["fetched_by"]) for c in first.values()} == {("responder", HOST)}
    for view in others:
        assert {(c["origin"], c["fetched_by"]) for c in view.values()} == {("store", HOST)}
    table = nodes[1].run("status", nodes[1].certs)
    assert table.exit_code == 0
    assert table.stdout.count(f"store ({HOST})") == len(NAMES)
    assert "from" in table.stdout.splitlines()[1]
    # the next run of each node has nothing due: no request, no store
    redis_server.stop()
    for node in nodes:
        assert node.refresh(redis_server.url).exit_code == 0
    assert responder.requests == len(NAMES)


def test_each_certificate_is_fetched_once_per_refresh_interval(
    fleet: Callable[[int], list[Node]], responder: Responder, redis_server: RedisServer
) -> None:
    nodes = fleet(3)
    for node in nodes:
        assert node.refresh(redis_server.url).exit_code == 0
    assert responder.requests == len(NAMES)
    time.sleep(1.1)  # the responder's thisUpdate has whole seconds: the next one is newer
    for node in nodes:
        node.make_due()
    for node in nodes:
        result = node.refresh(redis_server.url)
        assert (result.exit_code, result.stderr) == (0, "")
    assert responder.requests == 2 * len(NAMES)
    for name in NAMES:
        assert on_disk(nodes[0], name) == on_disk(nodes[1], name) == on_disk(nodes[2], name)


def test_nodes_started_together_share_the_leases(
    fleet: Callable[[int], list[Node]], responder: Responder, redis_server: RedisServer
) -> None:
    """Three real processes at once: each certificate is still fetched exactly once."""
    nodes = fleet(3)
    responder.delay_ms = 200  # a CA across the internet: the leases are contended
    results: list[int] = []

    def run(node: Node) -> None:
        done = run_subprocess(*node.argv("refresh", node.certs, store=redis_server.url))
        assert done.stderr == ""
        results.append(done.returncode)

    threads = [threading.Thread(target=run, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [0, 0, 0]
    assert responder.requests == len(NAMES)
    origins = sorted(str(c["origin"]) for node in nodes for c in node.status().values())
    assert origins == ["responder"] * 3 + ["store"] * 6


def test_renew_takes_a_fresher_staple_from_the_store(
    fleet: Callable[[int], list[Node]], responder: Responder, redis_server: RedisServer
) -> None:
    first, second = fleet(2)
    assert first.refresh(redis_server.url).exit_code == 0
    result = second.run("renew", second.certs / "www.pem", store=redis_server.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{second.certs / 'www.pem'}: fetched: good")
    assert responder.requests == len(NAMES)
    view = second.status(code=1)  # api and shop have no staple on this node yet
    assert (view["www"]["origin"], view["api"]["origin"]) == ("store", None)


# -- the store down or stopped: fetch directly, one line, exit 69 -----------------------------


def test_a_store_down_at_start_is_one_line_and_exit_69(
    fleet: Callable[[int], list[Node]], responder: Responder, unused_port: int
) -> None:
    (node,) = fleet(1)
    url = f"redis://ocsp:secret@127.0.0.1:{unused_port}/0"
    result = node.refresh(url)
    assert result.exit_code == exitcodes.STORE == 69
    assert result.stderr == (
        f"ocsptool: store redis://ocsp:***@127.0.0.1:{unused_port}/0: connection refused; "
        "fetched directly from the responders\n"
    )
    assert responder.requests == len(NAMES)
    assert {c["origin"] for c in node.status().values()} == {"responder"}


def test_a_certificate_failure_comes_before_the_store(
    fleet: Callable[[int], list[Node]], responder: Responder, unused_port: int
) -> None:
    (node,) = fleet(1)
    responder.mode = "tryLater"
    result = node.refresh(f"redis://127.0.0.1:{unused_port}/0")
    assert result.exit_code == exitcodes.FAILURE
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"ocsptool: store redis://127.0.0.1:{unused_port}/0: connection refused; "
        "fetched directly from the responders"
    )
    assert len(lines) == 1 + len(NAMES)
    assert all(line.endswith("responder said tryLater") for line in lines[1:])


def test_the_store_stopped_mid_run(
    fleet: Callable[[int], list[Node]], responder: Responder, redis_server: RedisServer
) -> None:
    (node,) = fleet(1)
    responder.delay_ms = 300

    def stop_after_first_request() -> None:
        deadline = time.monotonic() + 10
        while responder.requests < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        redis_server.stop()

    stopper = threading.Thread(target=stop_after_first_request)
    stopper.start()
    result = node.run("refresh", "-j", "1", "--json", node.certs, store=redis_server.url)
    stopper.join()
    assert result.exit_code == 69
    line = f"store {redis_server.url}: connection refused; fetched directly from the responders"
    assert result.stderr == f"ocsptool: {line}\n"
    report = json.loads(result.stdout)
    assert (report["exit_code"], report["store_problem"], report["fetched"]) == (69, line, 3)
    assert responder.requests == len(NAMES)
    now = dt.datetime.now(dt.UTC)
    for name in NAMES:
        assert verify(on_disk(node, name), parse_bundle(node.certs / f"{name}.pem"), now)
    # restarted (empty): the next due run uses it again, and exits 0
    redis_server.start()
    node.make_due()
    time.sleep(1.1)
    again = node.refresh(redis_server.url)
    assert (again.exit_code, again.stderr) == (0, "")
    assert redis.Redis.from_url(redis_server.url).exists(
        *(staple_key(certid(node.certs / f"{n}.pem")) for n in NAMES)
    ) == len(NAMES)


# -- nothing from the store is trusted --------------------------------------------------------


def test_tampered_entries_are_refused_with_their_line_and_fetched_directly(
    fleet: Callable[[int], list[Node]], responder: Responder, redis_server: RedisServer
) -> None:
    first, second = fleet(2)
    assert first.refresh(redis_server.url).exit_code == 0
    db = redis.Redis.from_url(redis_server.url)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    www, api, shop = (second.certs / f"{n}.pem" for n in NAMES)

    def lie(der: bytes) -> bytes:
        return encode(StoredStaple(der, dt.datetime.now(dt.UTC), later, "mallory", later))

    db.set(staple_key(certid(www)), b"<html>hello</html>")
    db.set(staple_key(certid(api)), lie(on_disk(first, "shop")))
    db.set(staple_key(certid(shop)), lie(forged(parse_bundle(shop))))
    result = second.refresh(redis_server.url)
    assert result.exit_code == 0
    serial = f"{parse_bundle(shop).leaf.serial_number:#x}"
    api_serial = f"{parse_bundle(api).leaf.serial_number:#x}"
    assert sorted(result.stderr.splitlines()) == sorted(
        [
            f"ocsptool: {www}: store entry refused: not an ocsptool entry "
            "(18 bytes starting 3c68746d6c3e6865)",
            f"ocsptool: {api}: stored staple (from mallory) refused: CertID serial {serial} "
            f"does not match {api_serial}",
            f"ocsptool: {shop}: stored staple (from mallory) refused: bad signature "
            "(signer CN=Direct Intermediate)",
        ]
    )
    assert responder.requests == 2 * len(NAMES)  # the second node fetched each itself
    view = second.status()
    assert {c["origin"] for c in view.values()} == {"responder"}
    now = dt.datetime.now(dt.UTC)
    for name in NAMES:
        assert verify(on_disk(second, name), parse_bundle(second.certs / f"{name}.pem"), now)


def test_an_older_stored_staple_is_refused(
    fleet: Callable[[int], list[Node]], responder: Responder, redis_server: RedisServer
) -> None:
    first, second = fleet(2)
    assert first.refresh(redis_server.url).exit_code == 0  # the store holds T1
    time.sleep(1.1)
    assert second.refresh(None).exit_code == 0  # the second node holds T2 > T1, alone
    held = second.status()["www"]["this_update"]
    stored = first.status()["www"]["this_update"]
    time.sleep(1.1)
    second.make_due()
    result = second.refresh(redis_server.url)
    assert result.exit_code == 0
    www = second.certs / "www.pem"
    assert f"ocsptool: {www}: stored staple (from {HOST}) refused: older than the one held " in (
        result.stderr
    )
    assert f"(thisUpdate {stored} < {held})" in result.stderr
    assert result.stderr.count("\n") == len(NAMES)
    assert responder.requests == 3 * len(NAMES)
    assert second.status()["www"]["this_update"] > held


def test_a_good_stored_staple_never_undoes_a_revocation_held(
    fleet: Callable[[int], list[Node]],
    responder: Responder,
    redis_server: RedisServer,
    cert_dir: CertDir,
) -> None:
    first, second = fleet(2)
    serial = cert_dir.leaves["www"].cert.serial_number
    responder.revoked = {serial}
    assert second.refresh(None).exit_code == 1  # the second node holds REVOKED for www
    responder.revoked = set()
    time.sleep(1.1)
    assert first.refresh(redis_server.url).exit_code == 0  # the store: a newer good one
    responder.revoked = {serial}
    time.sleep(1.1)
    second.make_due()
    result = second.refresh(redis_server.url)
    assert result.exit_code == 1
    www = second.certs / "www.pem"
    lines = result.stderr.splitlines()
    assert (
        f"ocsptool: {www}: stored staple (from {HOST}) refused: responder now says good, "
        "but the staple we hold says REVOKED; kept the revocation"
    ) in lines
    assert any(line.startswith(f"ocsptool: {www}: REVOKED since ") for line in lines)
    view = second.status(code=1)
    assert (view["www"]["status"], view["www"]["origin"]) == ("revoked", "responder")
    assert (view["api"]["status"], view["api"]["origin"]) == ("good", "store")


def test_status_takes_store_and_never_connects(
    fleet: Callable[[int], list[Node]], responder: Responder, unused_port: int
) -> None:
    (node,) = fleet(1)
    assert node.refresh(None).exit_code == 0
    result = node.run("status", node.certs, store=f"redis://127.0.0.1:{unused_port}/0")
    assert (result.exit_code, result.stderr) == (0, "")
    header = result.stdout.splitlines()[1].split()
    assert header[:4] == ["certificate", "responder", "staple", "from"]
    assert result.stdout.count("responder") == 1 + len(NAMES)
    plain = node.run("status", node.certs)
    assert "from" not in plain.stdout.splitlines()[1].split()  # no store: as before


# -- a --store that cannot work at all: exit 2 ------------------------------------------------


def test_a_bad_store_url_or_the_missing_extra_is_a_usage_error(
    fleet: Callable[[int], list[Node]], responder: Responder, monkeypatch: pytest.MonkeyPatch
) -> None:
    (node,) = fleet(1)
    result = node.refresh("http://127.0.0.1:6379/0")
    assert (result.exit_code, result.stderr) == (
        2,
        "ocsptool: store 'http://127.0.0.1:6379/0': unknown scheme 'http'; use "
        "redis://HOST:PORT/DB, rediss://HOST:PORT/DB or unix:///path/redis.sock?db=N\n",
    )
    monkeypatch.setitem(sys.modules, "redis", None)  # the redis extra is not installed
    result = node.refresh("redis://127.0.0.1:6379/0")
    assert (result.exit_code, result.stderr) == (
        2,
        "ocsptool: --store needs the redis extra: pip install 'ocsptool[redis]'\n",
    )
    assert responder.requests == 0  # nothing was fetched, and nothing written
    assert not list(node.certs.glob("*.ocsp"))


def test_a_bad_store_is_a_usage_error_on_a_no_op_run_too(
    fleet: Callable[[int], list[Node]], responder: Responder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing due, so the store is never opened: the URL and the extra are still checked."""
    (node,) = fleet(1)
    assert node.refresh(None).exit_code == 0  # every staple fresh from here on
    before = responder.requests
    result = node.refresh("redis://127.0.0.1:6379/zero")
    assert (result.exit_code, result.stderr) == (
        2,
        "ocsptool: store redis://127.0.0.1:6379/zero: database 'zero' is not a number\n",
    )
    monkeypatch.setitem(sys.modules, "redis", None)  # the redis extra is not installed
    result = node.refresh("redis://127.0.0.1:6379/0")
    assert (result.exit_code, result.stderr) == (
        2,
        "ocsptool: --store needs the redis extra: pip install 'ocsptool[redis]'\n",
    )
    monkeypatch.delitem(sys.modules, "redis")
    assert node.refresh("redis://127.0.0.1:6379/0").exit_code == 0  # a good one: quiet no-op
    assert responder.requests == before
