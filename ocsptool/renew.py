"""``renew --dry-run``: fetch and verify one certificate's response, write nothing.

This is how an operator debugs a CA's responder: it shows what came back (decoded even
when it fails verification), the responder's HTTP cache headers, and the exact reason
a response would be refused. It takes no lock and never touches the state or a staple.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.errors import OcspToolError
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts

if TYPE_CHECKING:
    import requests

    from ocsptool.responders import Overrides

#: The responder's HTTP headers worth showing (RFC 5019 caching).
CACHE_HEADERS = ("cache-control", "expires", "etag", "last-modified", "date", "content-type")


@dataclass
class DryRun:
    path: str
    url: str | None = None
    #: Labelled lines: what the responder sent, decoded.
    received: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    #: Why the response (or the certificate) cannot be used; None when it verified.
    error: str | None = None
    status: str | None = None
    signer: str | None = None
    next_update: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def dry_run(
    path: Path,
    session: requests.Session,
    *,
    now: dt.datetime,
    timeouts: Timeouts,
    max_bytes: int = MAX_RESPONSE_BYTES,
    url: str | None = None,
    overrides: Overrides | None = None,
) -> DryRun:
    """Fetch and verify a response for the certificate at ``path`` from its first OCSP
    URL, its issuer's override, or ``url`` (``renew --responder``); never raises ours."""
    from ocsptool.certs import parse_bundle
    from ocsptool.fetch import fetch
    from ocsptool.ocsp import build_request, verify
    from ocsptool.show import decode
    from ocsptool.target import NO_OCSP

    result = DryRun(str(path))
    try:
        bundle = parse_bundle(path)
    except OcspToolError as e:
        result.error = str(e)
        return result
    if url is None and bundle.ocsp_url is not None and overrides:
        from ocsptool.responders import urls_for

        url = urls_for(bundle.leaf, bundle.issuer, overrides)[0]
    result.url = url = url or bundle.ocsp_url
    if url is None:
        result.error = f"{NO_OCSP}; nothing to fetch"
        return result
    try:
        fetched = fetch(session, url, build_request(bundle), timeouts=timeouts, max_bytes=max_bytes)
    except OcspToolError as e:
        result.error = f"{url}: {e}"
        return result
    result.headers = {k: v for k, v in fetched.headers.items() if k in CACHE_HEADERS}
    result.received = [("fetched from", fetched.url), ("bytes", str(len(fetched.body)))]
    result.received += decode(fetched.body)
    try:
        staple = verify(fetched.body, bundle, now)
    except OcspToolError as e:
        result.error = f"{url}: {e}"
        return result
    result.status = staple.status
    result.signer = staple.signer
    result.next_update = staple.next_update
    result.received.append(("signer", staple.signer))
    return result
