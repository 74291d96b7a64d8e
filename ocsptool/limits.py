"""Network limits: timeouts and the response size cap (no imports, cheap for the fast path)."""

from __future__ import annotations

from dataclasses import dataclass

#: A staple is a few KiB; anything near this is an attack or a mistake.
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 10.0
    #: Wall-clock cap on one whole exchange, redirects included (defeats slow drips).
    total: float = 30.0
