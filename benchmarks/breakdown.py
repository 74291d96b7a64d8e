"""Where a cold refresh spends its time, per certificate and per step, timed one at a time.

    python -m benchmarks.breakdown URL DIR COUNT

Runs in its own process (so the OCSP server, in the benchmark's process, does not share
this interpreter's lock) and prints a Markdown table. The stdlib ``http.client`` row is a
reference: the same GET with a bare keep-alive connection.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(url: str, directory: str, count: int) -> str:
    started = time.perf_counter()
    import requests  # noqa: F401 - timed: what a cold run imports before its first fetch

    from ocsptool.certs import parse_bundle
    from ocsptool.fetch import fetch, new_session
    from ocsptool.files import write_atomic
    from ocsptool.ocsp import build_request, verify

    imports = time.perf_counter() - started
    paths = sorted(Path(directory).glob("*.pem"))[:count]
    n = len(paths)
    rows: list[tuple[str, float]] = []

    def step(label: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = work()
        rows.append((label, (time.perf_counter() - start) / n))
        return out

    bundles = step("`certs.parse_bundle`", lambda: [parse_bundle(p) for p in paths])
    ders = step("`ocsp.build_request`", lambda: [build_request(b) for b in bundles])
    session = new_session()
    bodies = step(
        "`fetch.fetch` (the session `new_session()` makes)",
        lambda: [fetch(session, url, der).body for der in ders],
    )
    session.close()
    step("reference: the same GETs with stdlib `http.client`", lambda: _http_client(url, ders))
    now = _now()
    step(
        "`ocsp.verify`",
        lambda: [verify(body, b, now) for body, b in zip(bodies, bundles, strict=True)],
    )

    def write_all() -> None:
        for path, body in zip(paths, bodies, strict=True):
            write_atomic(Path(f"{path}.ocsp"), body, sync_dir=False)

    step("`files.write_atomic` (with its fsync)", write_all)
    lines = [
        f"Timed one certificate at a time over {n} certificates, in a fresh process; "
        f"importing cryptography, requests and the modules below took {imports * 1000:.0f} ms.",
        "",
        "| Step | µs per certificate |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {seconds * 1e6:,.0f} |" for label, seconds in rows]
    return "\n".join(lines)


def _http_client(url: str, ders: list[bytes]) -> list[bytes]:
    import http.client
    import urllib.parse

    from ocsptool.fetch import request_url

    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    out = []
    for der in ders:
        target = request_url(url, der)
        if target is None:
            connection.request(
                "POST", parts.path, der, {"Content-Type": "application/ocsp-request"}
            )
        else:
            connection.request("GET", urllib.parse.urlsplit(target).path)
        out.append(connection.getresponse().read())
    connection.close()
    return out


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
