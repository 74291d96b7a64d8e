"""What differs between HAProxy versions, in ONE place, chosen from ``show version``.

Nothing outside this module compares version numbers. The facts come from HAProxy's
releases 2.6 to 3.4 (``../shared/notes/haproxy-ocsp.md``); ``tests/test_haproxy_*.py`` prove
them against every binary of the matrix (CI: 2.6.12 and 3.0.11; see README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Never more than this many bytes of commands sent and not yet answered on one
#: connection. 3.2.0 stalls past ~17 KB in flight and aborts when the connection then
#: closes (HAProxy issue #3064, fixed after 3.2.0); 8 KB never triggered it.
WINDOW = 8192

_BUFSIZE_LIMIT = 16350  # a command with its payload must fit in tune.bufsize (16384)


@dataclass(frozen=True)
class Dialect:
    """One HAProxy version's CLI: limits, command spellings, what it can tell."""

    version: str  # as ``show version`` printed it, e.g. "2.6.12-1+deb12u4"
    release: tuple[int, int]
    max_command: int  # the largest command (with its payload) this version takes
    limit: str  # what sets max_command, for messages
    reads_der: bool  # ``show ssl ocsp-response base64 <id>`` returns the staple's DER
    ocsp_updates: bool  # has ``ocsp-update on`` and ``show ssl ocsp-updates``
    ocsp_needs_admin: bool  # OCSP commands answer ``Permission denied`` below level admin
    # A certificate replaced with ``set ssl cert`` gets its staple (2.8.0 keeps the old
    # CertID in its OCSP tree: the new certificate is served without any staple).
    staples_replaced_certs: bool
    window: int = WINDOW

    def has(self, since: tuple[int, int]) -> bool:
        """Whether this version has what came with release ``since`` (``keywords.SINCE``)."""
        return self.release >= since

    def served_command(self, cert_id: str) -> str:
        """The command that shows what HAProxy staples for ``cert_id``."""
        if self.reads_der:
            return f"show ssl ocsp-response base64 {cert_id}\n"
        return f"show ssl ocsp-response {cert_id}\n"

    def too_large(self, size: int) -> str:
        """Why a staple whose command is ``size`` bytes cannot be pushed to this version."""
        return (
            f"the OCSP response is too large for HAProxy {self.version}: its command is "
            f"{size} bytes, and {self.limit} allows at most {self.max_command}"
        )


def dialect_for(version: str) -> Dialect:
    """The Dialect of the ``show version`` reply ``version`` (unknown: the newest known)."""
    match = re.match(r"(\d+)\.(\d+)", version.strip())
    release = (int(match[1]), int(match[2])) if match else (99, 0)
    large_payloads = release >= (3, 4)
    return Dialect(
        version=version.strip().split()[0] if version.strip() else "?",
        release=release,
        max_command=130_000 if large_payloads else _BUFSIZE_LIMIT,
        limit=(
            "tune.cli.max-payload-size (128 KB)"
            if large_payloads
            else "tune.bufsize (16384 bytes by default)"
        ),
        reads_der=release >= (2, 8),
        ocsp_updates=release >= (2, 8),
        ocsp_needs_admin=release >= (3, 4),
        staples_replaced_certs=release[:2] != (2, 8),
    )
