"""The seam of a fleet's shared staple store: what an engine provides (``SharedStore``),
the entry encoding every engine stores, the keys, and the errors. Engines live beside it
(``ocsptool.fleet.redis``); ``ocsptool.fleet`` picks one from a URL's scheme, and
``ocsptool.fleet.run`` is the flow a run follows with it.
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

from ocsptool.errors import OcspToolError, UsageError
from ocsptool.limits import MAX_RESPONSE_BYTES

STAPLE_PREFIX = "ocsptool:staple:"
LEASE_PREFIX = "ocsptool:lease:"

#: Entry encoding: magic, version, then thisUpdate, nextUpdate, fetchedAt (epoch seconds,
#: signed 64-bit), the node name's length (16-bit), the node name (UTF-8), the DER.
MAGIC = b"OTS"
VERSION = 1
_HEADER = struct.Struct("!3sBqqqH")
MAX_NODE_BYTES = 255
#: The largest entry ``encode`` writes: an engine never reads more of a value than this
#: (plus one byte, to tell a larger one), whatever a writer to the store put there.
MAX_ENTRY_BYTES = _HEADER.size + MAX_NODE_BYTES + MAX_RESPONSE_BYTES

#: A lease outlives one CA exchange (the responder's total timeout) by a margin.
LEASE_TTL = 45.0
#: How long a run waits for other nodes' staples without seeing any of them appear.
PATIENCE = 5.0
#: How often a waiting certificate looks again.
POLL = 0.05
#: At most this many looks per wait, whatever the clock says: with each look bounded by
#: ``MAX_ENTRY_BYTES``, one wait reads at most ~13 MB however a store misbehaves.
MAX_LOOKS = 200

EXTRA_MISSING = "--store needs the redis extra: pip install 'ocsptool[redis]'"


class StoreError(OcspToolError):
    """The store cannot be used right now (down, slow, refusing): nodes fetch directly."""


class StoreConfigError(StoreError, UsageError):
    """``--store`` cannot work at all: a bad URL, or the engine's extra is not installed."""


def default_node() -> str:
    return socket.gethostname()


def staple_key(cert_id: str) -> str:
    return STAPLE_PREFIX + cert_id.lower()


def lease_key(cert_id: str) -> str:
    return LEASE_PREFIX + cert_id.lower()


@dataclass(frozen=True)
class StoredStaple:
    """A staple as published by ``fetched_by``: its claims are checked, never trusted."""

    der: bytes
    this_update: dt.datetime
    next_update: dt.datetime
    fetched_by: str
    fetched_at: dt.datetime


@dataclass(frozen=True)
class Malformed:
    """A store entry that is not one we could have written."""

    reason: str


class SharedStore(Protocol):
    """One engine of the shared store. Every method raises ``StoreError`` (one line)."""

    @property
    def name(self) -> str:
        """The store as messages name it (its URL without credentials)."""
        ...

    def get(self, cert_id: str) -> StoredStaple | Malformed | None: ...

    def try_lease(self, cert_id: str, node: str, ttl_s: float) -> bool:
        """Atomically take the certificate's lease unless someone holds it."""
        ...

    def release(self, cert_id: str, node: str) -> None:
        """Drop the lease, only if ``node`` still holds it."""
        ...

    def publish(self, cert_id: str, staple: StoredStaple) -> None:
        """Store the staple, expiring at its nextUpdate."""
        ...

    def close(self) -> None:
        """Drop the connections (at the end of a run); never raises."""
        ...


# -- encoding ---------------------------------------------------------------------------------


def encode(staple: StoredStaple) -> bytes:
    node = staple.fetched_by.encode("utf-8", "replace")[:MAX_NODE_BYTES]
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        int(staple.this_update.timestamp()),
        int(staple.next_update.timestamp()),
        int(staple.fetched_at.timestamp()),
        len(node),
    )
    return header + node + staple.der


def decode(value: bytes) -> StoredStaple | Malformed:
    """The entry ``value``, or why it is not one (never an exception)."""
    if len(value) < _HEADER.size or not value.startswith(MAGIC):
        return Malformed(f"not an ocsptool entry ({_describe(value)})")
    _magic, version, this, next_, at, node_len = _HEADER.unpack_from(value)
    if version != VERSION:
        return Malformed(f"entry version {version}, expected {VERSION} (a newer ocsptool?)")
    body = value[_HEADER.size :]
    if node_len > len(body):
        return Malformed("truncated entry")
    der = body[node_len:]
    if not der:
        return Malformed("entry without a staple")
    if len(der) > MAX_RESPONSE_BYTES:
        return Malformed(f"staple of {len(der)} bytes is over the {MAX_RESPONSE_BYTES}-byte cap")
    try:
        times = [dt.datetime.fromtimestamp(t, dt.UTC) for t in (this, next_, at)]
        node = body[:node_len].decode("utf-8")
    except (ValueError, OverflowError, OSError):
        return Malformed("entry with unreadable times or node name")
    if not node.isprintable():
        return Malformed("entry with an unprintable node name")
    return StoredStaple(der, times[0], times[1], node, times[2])


def _describe(value: bytes) -> str:
    return "empty" if not value else f"{len(value)} bytes starting {value[:8].hex()}"


def redact(url: str) -> str:
    """``url`` without a password, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))
