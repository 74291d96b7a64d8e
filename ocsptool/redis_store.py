"""The Redis engine of the shared store (``redis://``, ``rediss://``, ``unix://``).

Through redis-py (the ``redis`` extra), with the responders' timeouts as socket timeouts
and no client-side retries: a store that is down or slow costs one timeout, and the run
goes on without it. Keys: ``ocsptool:staple:<certid hex>`` (the encoded entry, expiring
at the staple's nextUpdate) and ``ocsptool:lease:<certid hex>`` (the holder's node name,
``SET NX PX``). Release deletes the lease only if it still names us, atomically in Lua.
An entry is read with ``GETRANGE``, never past ``MAX_ENTRY_BYTES``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import urllib.parse
from typing import TYPE_CHECKING, Any

from ocsptool.shared_store import (
    EXTRA_MISSING,
    MAX_ENTRY_BYTES,
    Malformed,
    StoreConfigError,
    StoredStaple,
    StoreError,
    decode,
    encode,
    lease_key,
    redact,
    staple_key,
)

if TYPE_CHECKING:
    import redis

#: Delete the lease only if it is still ours (another node may hold it since ours expired).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

_SCHEMES = ("redis", "rediss", "unix")

#: An ACL made for ocsptool before entries were read with GETRANGE.
NO_GETRANGE = "its user may not run GETRANGE: add '+getrange' to its ACL (see the README)"


class RedisStore:
    """A ``SharedStore`` on one Redis database."""

    def __init__(self, client: redis.Redis, name: str, timeout: float) -> None:
        self._client = client
        self._name = name
        self._timeout = timeout

    @classmethod
    def from_url(cls, url: str, *, timeout: float) -> RedisStore:
        name = redact(url)
        _check_url(url, name)
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise StoreConfigError(EXTRA_MISSING) from None
        try:
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
            )
        except (ValueError, TypeError) as e:
            raise StoreConfigError(f"store {name}: bad URL ({e})") from None
        return cls(client, name, timeout)

    @property
    def name(self) -> str:
        return self._name

    def get(self, cert_id: str) -> StoredStaple | Malformed | None:
        """The entry, read with ``GETRANGE 0 MAX_ENTRY_BYTES``: never more than one byte past
        the largest entry we write, however large the value a writer put there (a whole
        ``GET`` of a 500 MB value took 1.6 GB on each node). A missing key and an empty
        value both read as "" (nothing stored)."""
        try:
            value = self._run(self._client.getrange, staple_key(cert_id), 0, MAX_ENTRY_BYTES)
        except _WrongType:  # a writer put a list or a hash there
            return Malformed("entry is not a string value (WRONGTYPE)")
        if not isinstance(value, bytes):
            return Malformed(f"entry of type {type(value).__name__}")
        if not value:
            return None
        if len(value) > MAX_ENTRY_BYTES:
            return Malformed(f"entry of more than {MAX_ENTRY_BYTES} bytes; not read further")
        return decode(value)

    def try_lease(self, cert_id: str, node: str, ttl_s: float) -> bool:
        ttl_ms = max(1, int(ttl_s * 1000))
        return bool(self._run(self._client.set, lease_key(cert_id), node, nx=True, px=ttl_ms))

    def release(self, cert_id: str, node: str) -> None:
        # EVAL, not EVALSHA: the README's ACL then needs +eval only (no SCRIPT LOAD).
        self._run(self._client.eval, _RELEASE, 1, lease_key(cert_id), node)

    def publish(self, cert_id: str, staple: StoredStaple) -> None:
        expires = int(staple.next_update.timestamp())
        if expires <= int(dt.datetime.now(dt.UTC).timestamp()):
            return  # already lapsed: nothing worth sharing
        self._run(self._client.set, staple_key(cert_id), encode(staple), exat=expires)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may raise anything
            self._client.close()

    def _run(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return operation(*args, **kwargs)
        except redis.exceptions.ResponseError as e:
            if str(e).startswith("WRONGTYPE"):
                raise _WrongType(str(e)) from None
            if isinstance(e, redis.exceptions.NoPermissionError) and "getrange" in str(e):
                raise StoreError(f"store {self._name}: {NO_GETRANGE}") from None
            raise StoreError(f"store {self._name}: {_describe(e, self._timeout)}") from None
        except redis.exceptions.RedisError as e:
            raise StoreError(f"store {self._name}: {_describe(e, self._timeout)}") from None
        except OSError as e:  # raised below redis-py's wrapping on some paths
            raise StoreError(f"store {self._name}: {_describe(e, self._timeout)}") from None


class _WrongType(StoreError):
    """A key holds another Redis type than the string we write."""


def check_url(url: str) -> None:
    """Raise ``StoreConfigError`` for a Redis URL that ``from_url`` would refuse, or when
    the redis extra is missing; imports nothing of redis-py (it costs ~125 ms)."""
    import importlib.util

    _check_url(url, redact(url))
    if importlib.util.find_spec("redis") is None:
        raise StoreConfigError(EXTRA_MISSING)


def _check_url(url: str, name: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        query = urllib.parse.parse_qs(parts.query)
    except ValueError as e:
        raise StoreConfigError(f"store {name}: bad URL ({e})") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise StoreConfigError(f"store {name}: not a Redis URL")
    if parts.scheme.lower() == "unix":
        if not parts.path:
            raise StoreConfigError(f"store {name}: no socket path (unix:///path/redis.sock?db=N)")
        db = query.get("db", ["0"])[-1]
    else:
        if not parts.hostname:
            raise StoreConfigError(f"store {name}: no host (redis://HOST:PORT/DB)")
        if port == 0:
            raise StoreConfigError(f"store {name}: port 0")
        db = parts.path.strip("/") or query.get("db", ["0"])[-1]
    if not db.isdigit():
        raise StoreConfigError(f"store {name}: database {db!r} is not a number")


def _describe(error: Exception, timeout: float) -> str:
    import redis

    text = str(error)
    if isinstance(error, OSError) and not isinstance(error, redis.exceptions.RedisError):
        text = error.strerror or text
    timed_out = isinstance(error, redis.exceptions.TimeoutError | TimeoutError)
    if timed_out or "timed out" in text.lower():
        return f"timed out after {timeout:g}s"
    if isinstance(error, redis.exceptions.AuthenticationError):
        return "authentication failed"
    if isinstance(error, redis.exceptions.ConnectionError | OSError):
        if "refused" in text.lower():
            return "connection refused"
        if "No such file" in text:
            return "no such socket"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return "DNS lookup failed"
        if "Closed by server" in text or "closed" in text.lower():
            return "the server closed the connection"
        first = text.splitlines()[0] if text else type(error).__name__
        return f"cannot connect ({first})"
    first = text.splitlines()[0][:200] if text else type(error).__name__
    return f"refused the command ({first})"
