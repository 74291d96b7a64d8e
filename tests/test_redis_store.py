"""The Redis engine on a real redis-server: keys, leases, expiry, and failures as one line."""

from __future__ import annotations

import datetime as dt
import shlex
import threading
import time
from pathlib import Path

import pytest
import redis
from conftest import ROOT

from ocsptool.redis_store import RedisStore
from ocsptool.shared_store import (
    Malformed,
    StoredStaple,
    StoreError,
    decode,
    lease_key,
    open_store,
    staple_key,
)
from ocsptool.testing.redis import RedisServer

CERT = "30410123abcd"


def entry(days: float = 4, node: str = "edge-1") -> StoredStaple:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return StoredStaple(b"\x30\x03abc", now, now + dt.timedelta(days=days), node, now)


@pytest.fixture
def store(redis_server: RedisServer) -> RedisStore:
    opened = open_store(redis_server.url, timeout=2)
    assert isinstance(opened, RedisStore)
    return opened


@pytest.fixture
def db(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


def test_keys_are_namespaced_by_certid() -> None:
    assert staple_key("30ABcd") == "ocsptool:staple:30abcd"
    assert lease_key("30ABcd") == "ocsptool:lease:30abcd"


def test_publish_then_get(store: RedisStore, db: redis.Redis) -> None:
    assert store.get(CERT) is None
    published = entry()
    store.publish(CERT, published)
    assert store.get(CERT) == published
    assert store.get(CERT.upper()) == published
    assert db.keys("*") == [f"ocsptool:staple:{CERT}".encode()]
    ttl = db.ttl(staple_key(CERT))
    assert 4 * 86400 - 5 <= ttl <= 4 * 86400


def test_a_lapsed_staple_is_not_published(store: RedisStore) -> None:
    store.publish(CERT, entry(days=-1))
    assert store.get(CERT) is None


def test_a_wrong_type_entry_is_malformed_not_a_failure(store: RedisStore, db: redis.Redis) -> None:
    db.rpush(staple_key(CERT), b"x")
    assert store.get(CERT) == Malformed("entry is not a string value (WRONGTYPE)")


def test_the_lease_is_set_if_absent_and_expires(store: RedisStore, db: redis.Redis) -> None:
    assert store.try_lease(CERT, "a", 0.3)
    assert not store.try_lease(CERT, "b", 0.3)
    assert db.get(lease_key(CERT)) == b"a"
    assert 0 < db.pttl(lease_key(CERT)) <= 300
    time.sleep(0.4)
    assert store.try_lease(CERT, "b", 5)


def test_release_drops_only_our_own_lease(store: RedisStore, db: redis.Redis) -> None:
    assert store.try_lease(CERT, "a", 5)
    store.release(CERT, "b")  # ours expired and b holds it now, say: hands off
    assert db.get(lease_key(CERT)) == b"a"
    store.release(CERT, "a")
    assert db.get(lease_key(CERT)) is None
    store.release(CERT, "a")  # already gone: fine


def test_one_winner_among_racing_nodes(redis_server: RedisServer) -> None:
    stores = [open_store(redis_server.url, timeout=2) for _ in range(12)]
    start = threading.Barrier(len(stores))
    won: list[str] = []

    def race(n: int) -> None:
        start.wait()
        if stores[n].try_lease(CERT, f"node-{n}", 5):
            won.append(f"node-{n}")

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1


def test_the_encoding_is_compact(store: RedisStore, db: redis.Redis) -> None:
    store.publish(CERT, entry(node="edge-1"))
    value = db.get(staple_key(CERT))
    assert value is not None
    assert value.startswith(b"OTS\x01")
    assert len(value) == 4 + 3 * 8 + 2 + len(b"edge-1") + 5
    assert isinstance(decode(value), StoredStaple)


def test_a_stopped_store_is_connection_refused(
    redis_server: RedisServer, store: RedisStore
) -> None:
    store.publish(CERT, entry())
    redis_server.stop()
    with pytest.raises(StoreError) as caught:
        store.get(CERT)
    assert str(caught.value) == f"store {redis_server.url}: connection refused"
    for operation in (
        lambda: store.try_lease(CERT, "a", 1),
        lambda: store.release(CERT, "a"),
        lambda: store.publish(CERT, entry()),
    ):
        with pytest.raises(StoreError, match=r": connection refused$"):
            operation()


def test_a_paused_store_times_out_once_without_retries(
    redis_server: RedisServer, store: RedisStore
) -> None:
    slow = open_store(redis_server.url, timeout=0.4)
    redis_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            slow.get(CERT)
        elapsed = time.monotonic() - started
    finally:
        redis_server.resume()
    assert str(caught.value) == f"store {redis_server.url}: timed out after 0.4s"
    assert 0.3 < elapsed < 1.2  # one timeout: no client-side retry
    assert store.get(CERT) is None  # and it works again once resumed


def test_a_missing_unix_socket(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nothing.sock?db=0"
    with pytest.raises(StoreError) as caught:
        open_store(url, timeout=1).get(CERT)
    assert str(caught.value) == f"store {url}: no such socket"


def test_databases_are_separate(redis_server: RedisServer) -> None:
    base = f"redis://127.0.0.1:{redis_server.port}"
    open_store(f"{base}/1", timeout=2).publish(CERT, entry())
    assert open_store(f"{base}/2", timeout=2).get(CERT) is None
    assert isinstance(open_store(f"{base}/1", timeout=2).get(CERT), StoredStaple)


def test_the_readmes_acl_is_enough(redis_server: RedisServer, db: redis.Redis) -> None:
    """The README's ``ACL SETUSER`` line, verbatim: every operation works, nothing else."""
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "redis-cli ACL SETUSER ocsptool" in x)
    args = shlex.split(line.strip())[2:]  # after "redis-cli ACL"
    assert db.execute_command("ACL", *args) == b"OK"
    url = f"redis://ocsptool:a-long-random-password@127.0.0.1:{redis_server.port}/0"
    store = open_store(url, timeout=2)
    store.publish(CERT, entry())
    assert isinstance(store.get(CERT), StoredStaple)
    assert store.try_lease(CERT, "a", 5)
    store.release(CERT, "a")
    assert db.get(lease_key(CERT)) is None
    denied = redis.Redis.from_url(url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        denied.set("other:key", b"x")
    denied.close()


def test_a_wrong_password(redis_server: RedisServer, db: redis.Redis) -> None:
    db.execute_command("ACL", "SETUSER", "ocsptool", "on", ">right", "~ocsptool:*", "+get")
    url = f"redis://ocsptool:wrong@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(StoreError) as caught:
        open_store(url, timeout=2).get(CERT)
    shown = f"redis://ocsptool:***@127.0.0.1:{redis_server.port}/0"
    assert str(caught.value) == f"store {shown}: authentication failed"


def test_rediss_is_tls_and_close_is_quiet(unused_port: int) -> None:
    store = open_store(f"rediss://127.0.0.1:{unused_port}/0", timeout=1)
    with pytest.raises(StoreError) as caught:
        store.get(CERT)
    assert str(caught.value) == f"store rediss://127.0.0.1:{unused_port}/0: connection refused"
    store.close()
    store.close()


# -- an entry is never read past MAX_ENTRY_BYTES ----------------------------------------------


def test_a_value_larger_than_any_entry_is_refused_unread(
    store: RedisStore, db: redis.Redis
) -> None:
    from ocsptool.limits import MAX_RESPONSE_BYTES
    from ocsptool.shared_store import MAX_ENTRY_BYTES, MAX_NODE_BYTES, encode

    small = entry()
    largest = StoredStaple(
        b"\x30" * MAX_RESPONSE_BYTES,
        small.this_update,
        small.next_update,
        "n" * MAX_NODE_BYTES,
        small.fetched_at,
    )
    assert len(encode(largest)) == MAX_ENTRY_BYTES
    store.publish(CERT, largest)
    assert store.get(CERT) == largest  # the largest entry we write is read whole
    db.set(staple_key(CERT), b"A" * (MAX_ENTRY_BYTES + 1))
    assert store.get(CERT) == Malformed(
        f"entry of more than {MAX_ENTRY_BYTES} bytes; not read further"
    )
    db.set(staple_key(CERT), b"")  # an empty value: nothing stored
    assert store.get(CERT) is None


def test_an_acl_without_getrange_names_the_fix(redis_server: RedisServer, db: redis.Redis) -> None:
    db.execute_command(
        "ACL", "SETUSER", "old", "on", ">pw", "~ocsptool:*", "+get", "+set", "+del", "+eval"
    )
    url = f"redis://old:pw@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(StoreError) as caught:
        open_store(url, timeout=2).get(CERT)
    shown = f"redis://old:***@127.0.0.1:{redis_server.port}/0"
    assert str(caught.value) == (
        f"store {shown}: its user may not run GETRANGE: add '+getrange' to its ACL (see the README)"
    )
