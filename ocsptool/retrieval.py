"""Fetch + verify: one ``Retrieved`` value per due target, from a pool of threads.

A thread fetches, verifies and checks the answer against the staple held (passed in as
a value); it reads no shared state and writes nothing: writing is the file sink's job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocsptool.errors import OcspToolError, ResponseRejected
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts
from ocsptool.state import StapleRecord
from ocsptool.target import Target
from ocsptool.times import from_epoch, iso

if TYPE_CHECKING:
    import requests

    from ocsptool.ocsp import Staple

Progress = Callable[[int, int], None]
_DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Retrieved:
    """The answer for one target: a verified staple, or the error (one line)."""

    target: Target
    staple: Staple | None = None
    error: OcspToolError | None = None

    @property
    def url(self) -> str | None:
        return self.target.ocsp_url


def retrieve(
    due: Sequence[Target],
    held: Mapping[str, StapleRecord | None],
    session: requests.Session,
    *,
    now: dt.datetime,
    timeouts: Timeouts = _DEFAULT_TIMEOUTS,
    max_bytes: int = MAX_RESPONSE_BYTES,
    jobs: int = 8,
    progress: Progress | None = None,
    on_result: Callable[[Retrieved], None] | None = None,
) -> list[Retrieved]:
    """Fetch and verify a staple for each of ``due``; ``held`` is the staple each has now.
    ``on_result`` sees each result in the calling thread as it arrives."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    def one(target: Target) -> Retrieved:
        return retrieve_one(
            target, held.get(target.key), session, now=now, timeouts=timeouts, max_bytes=max_bytes
        )

    results: list[Retrieved] = []
    with ThreadPoolExecutor(
        max_workers=max(1, min(jobs, len(due))), thread_name_prefix="fetch"
    ) as pool:
        for future in as_completed([pool.submit(one, t) for t in due]):
            results.append(future.result())
            if on_result is not None:
                on_result(results[-1])
            if progress is not None:
                progress(len(results), len(due))
    return results


def retrieve_one(
    target: Target,
    held: StapleRecord | None,
    session: requests.Session,
    *,
    now: dt.datetime,
    timeouts: Timeouts,
    max_bytes: int,
) -> Retrieved:
    from ocsptool.fetch import fetch
    from ocsptool.ocsp import build_request, verify

    url = target.ocsp_url
    assert url is not None
    try:
        fetched = fetch(session, url, build_request(target), timeouts=timeouts, max_bytes=max_bytes)
        staple = verify(fetched.body, target.bundle, now)
        check_not_older(staple, held)
    except OcspToolError as e:
        return Retrieved(target, error=e)
    except Exception as e:  # one certificate never stops the others, not even a bug
        return Retrieved(target, error=unexpected(e))
    return Retrieved(target, staple=staple)


def unexpected(error: Exception) -> OcspToolError:
    """A bug met while handling one certificate: report it on that certificate's line."""
    return OcspToolError(f"unexpected {type(error).__name__}: {error} (a bug; please report it)")


def check_not_older(new: Staple, held: StapleRecord | None) -> None:
    """Refuse a replay or a stale cache copy: it must not replace a newer staple we hold,
    and a 'good' never undoes a revocation (only certificateHold can be lifted)."""
    if not held:
        return
    held_this = from_epoch(held.get("this_update"))
    if held_this is not None and new.this_update < held_this:
        raise ResponseRejected(
            f"response is older than the staple we hold (thisUpdate {iso(new.this_update)} "
            f"< {iso(held_this)}); kept the newer one"
        )
    if (
        held.get("status") == "revoked"
        and new.status == "good"
        and held.get("revocation_reason") != "certificate_hold"
    ):
        raise ResponseRejected(
            "responder now says good, but the staple we hold says REVOKED; kept the revocation"
        )
