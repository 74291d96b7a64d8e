"""A source's discovery cache (``<state>.discovery``, ``<state>.discovery-nginx``): what it
read last time, kept so a run with nothing due does not parse every configuration again.

A hint, never authority: it says where staples are written and where they are sent, so it
is read only when root or this run's user wrote it (a root run never takes it from the
job user's state directory), bounded in size, and decoded in linear time (JSON). A file
that someone with no business in the state directory planted is said in one warning and
removed; anything else that is not ours, or not the shape written, is simply read again.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def load(cache: Path) -> Any | None:
    """What ``save`` wrote at ``cache``, or None (then the configurations are read)."""
    from ocsptool.files import MAX_READ_BYTES, read_own
    from ocsptool.trust import Untrusted

    try:
        data = read_own(cache, MAX_READ_BYTES, strict=True)
    except Untrusted as e:
        if _foreign(cache):  # planted by a user who has no business in the state directory
            from ocsptool.console import line

            line(f"{cache}: not used: it {e} (the configurations are read instead)")
            with contextlib.suppress(OSError):
                os.unlink(cache)  # never keep a planted file's owner or mode
        return None  # else the job user's own cache: root reads the configurations itself
    except OSError:
        return None
    try:
        text = data.decode("utf-8", "surrogateescape")
        del data  # not kept while the text is parsed: 27 MB at 100,000 certificates
        return json.loads(text)
    except (ValueError, RecursionError, UnicodeError):
        return None


def save(cache: Path, value: Any) -> None:
    """Keep ``value`` (plain lists, dicts, strs, ints, bools, None) at ``cache``, 0600."""
    from ocsptool.errors import OcspToolError
    from ocsptool.files import write_atomic

    data = json.dumps(value, separators=(",", ":")).encode("utf-8", "surrogateescape")
    with contextlib.suppress(OSError, OcspToolError):  # only a cache: the next run reads again
        write_atomic(cache, data, mode=0o600, sync_dir=False)


def same(value: Any, other: Any) -> bool:
    """``value`` (tuples and all) equals ``other`` as JSON reads it back (lists)."""
    return bool(json.loads(json.dumps(value)) == other)


def _foreign(cache: Path) -> bool:
    """Whether even the state directory's owner or group could not have written ``cache``."""
    from ocsptool.files import trust_problem

    try:
        return trust_problem(os.stat(cache), cache.parent) is not None
    except OSError:
        return False
