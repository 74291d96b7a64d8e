"""Per-host pacing: the counting responder proves at most ``per_host`` requests in flight."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ocsptool import fetch
from ocsptool.certs import parse_bundle
from ocsptool.ocsp import build_request, verify
from ocsptool.pacing import HostLimiter, host_of, jobs_per_host_problem
from ocsptool.testing.responder import Responder
from tests.conftest import PKI


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with fetch.new_session() as s:
        yield s


def _run(
    session: requests.Session,
    pki: PKI,
    tmp_path: Path,
    urls: list[str],
    limiter: HostLimiter | None,
    *,
    jobs: int = 8,
) -> float:
    """Fetch for every URL in ``urls`` (one task each) on ``jobs`` threads; the wall time."""
    bundle = parse_bundle(
        pki.direct.leaf("paced.test", ocsp_url=None).write_bundle(tmp_path / "paced.pem")
    )
    der = build_request(bundle)
    now = dt.datetime.now(dt.UTC)

    def one(url: str) -> str:
        _, used = fetch.fetch_first(
            session, [url], der, lambda body: verify(body, bundle, now), limiter=limiter
        )
        return used

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        assert list(pool.map(one, urls)) == urls
    return time.monotonic() - started


def test_per_host_bound_under_a_bigger_pool(
    session: requests.Session, pki: PKI, responder: Responder, tmp_path: Path
) -> None:
    """8 threads, 2 hosts (one responder under two names), 2 per host: 2 each, 4 at once."""
    responder.delay_ms = 50
    port = responder.url.split(":")[2].split("/")[0]
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}"]
    urls = [f"http://{hosts[i % 2]}/ocsp" for i in range(24)]
    elapsed = _run(session, pki, tmp_path, urls, HostLimiter(2))
    assert responder.peak == {hosts[0]: 2, hosts[1]: 2}
    assert responder.peak_total <= 4
    assert responder.requests == 24
    assert elapsed >= 12 / 2 * 0.050  # 12 answers per host, 2 at a time, 50 ms each


def test_without_a_limiter_the_pool_alone_bounds(
    session: requests.Session, pki: PKI, responder: Responder, tmp_path: Path
) -> None:
    """The control: the same run unpaced puts more than 2 in flight on one host."""
    responder.delay_ms = 50
    _run(session, pki, tmp_path, [responder.url] * 16, None)
    assert responder.peak[responder.url.split("/")[2]] > 2


def test_one_slot_per_host_serialises(
    session: requests.Session, pki: PKI, responder: Responder, tmp_path: Path
) -> None:
    responder.delay_ms = 20
    _run(session, pki, tmp_path, [responder.url] * 8, HostLimiter(1), jobs=4)
    assert responder.peak == {responder.url.split("/")[2]: 1}


def test_a_failed_fetch_frees_its_slot(session: requests.Session) -> None:
    limiter = HostLimiter(1)
    for _ in range(3):
        with pytest.raises(fetch.FetchError):
            fetch.fetch_first(
                session, ["http://127.0.0.1:9/ocsp"], b"\x30\x00", bytes, limiter=limiter
            )
    acquired = threading.Event()

    def take() -> None:
        with limiter.slot("http://127.0.0.1:9/"):
            acquired.set()

    worker = threading.Thread(target=take)
    worker.start()
    worker.join(2)
    assert acquired.is_set()


def test_hosts_are_keyed_by_host_and_port() -> None:
    assert host_of("http://OCSP.Example.test/x") == "ocsp.example.test:80"
    assert host_of("https://ocsp.example.test/x") == "ocsp.example.test:443"
    assert host_of("http://ocsp.example.test:8080/") == "ocsp.example.test:8080"
    assert host_of("http://[::1]:8080/") == "::1:8080"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (4, None),
        (0, "must be at least 1"),
        ("4", "must be a whole number without quotes, e.g. jobs_per_host = 4"),
        (True, "must be a whole number without quotes, e.g. jobs_per_host = 4"),
        (2.5, "must be a whole number without quotes, e.g. jobs_per_host = 4"),
    ],
)
def test_jobs_per_host_validation(value: object, problem: str | None) -> None:
    assert jobs_per_host_problem(value) == problem
