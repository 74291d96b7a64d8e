"""``python -m benchmarks.fleet``: 3 nodes x 1,000 certificates, with and without the store.

Each node is a thread pool (``--jobs`` workers) over its own copy of the certificate
directory and its own parsed bundles, verifying every staple against them. All nodes
start together, against one pre-signed loopback responder that counts requests (with
``--latency`` seconds per answer, to play a CA across the internet) and, for the store
run, one real ``redis-server``. The no-store run fetches every certificate on every node;
the store run goes through ``StoreRun.obtain``. Printed: responder requests, and the
wall time of each node, side by side.

``--cli`` runs each node as a real ``ocsptool refresh [--store URL] -j JOBS DIR`` process
with its own state file instead (the whole run: scan, parse, fetch, verify, write, record).

python -m benchmarks.fleet                          # 3 nodes x 1,000 certificates
python -m benchmarks.fleet --cli                    # the same, as ocsptool refresh processes
python -m benchmarks.fleet --nodes 2 --certs 50     # a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from benchmarks import fixtures as fx
from ocsptool.certs import Bundle, parse_bundle
from ocsptool.fetch import fetch, new_session
from ocsptool.fleet import open_store
from ocsptool.fleet.run import Origin, StoreRun
from ocsptool.haproxy import response_certid_key
from ocsptool.ocsp import Staple, build_request, verify
from ocsptool.testing.redis import RedisServer


@dataclass(frozen=True)
class NodeResult:
    name: str
    seconds: float
    fetched: int  # from the responder
    from_store: int
    failed: int


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--certs", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=8, help="requests in flight per node")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per CA answer")
    parser.add_argument(
        "--cli", action="store_true", help="each node an `ocsptool refresh` process"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="ocsptool-fleet-"))
    try:
        pki = fx.make_pki(workdir)
        with fx.serving(pki) as server:
            certs = fx.make_certs(pki, workdir / "certs", args.certs, server.url)
            cert_ids = [response_certid_key(der) for der in fx.warm(server, certs)]
            server.latency = args.latency
            if args.cli:
                dirs = [_node_dir(workdir, certs, n) for n in range(args.nodes)]
                server.requests = 0
                plain = _run_cli_fleet(workdir / "plain", dirs, args.jobs, None)
                without = server.requests
                for directory in dirs:
                    for staple in directory.glob("*.ocsp"):
                        staple.unlink()
                server.requests = 0
                with RedisServer() as redis_server:
                    shared = _run_cli_fleet(workdir / "shared", dirs, args.jobs, redis_server.url)
                with_store = server.requests
                misses = server.misses
                certs_count = sum(1 for _ in dirs[0].glob("*.ocsp"))
                if certs_count != args.certs:
                    print(f"node-0 wrote {certs_count} staples of {args.certs}")
                    return 1
            else:
                nodes = [_node_bundles(workdir, certs, n) for n in range(args.nodes)]
                server.requests = 0
                plain = _run_fleet(nodes, cert_ids, args.jobs, None)
                without = server.requests
                server.requests = 0
                with RedisServer() as redis_server:
                    shared = _run_fleet(nodes, cert_ids, args.jobs, redis_server.url)
                with_store = server.requests
                misses = server.misses
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"{args.nodes} nodes x {args.certs} certificates, {args.jobs} jobs per node, "
        f"{args.latency * 1000:g} ms per CA answer"
    )
    print(f"responder requests: {with_store} with the store, {without} without")
    print(f"{'node':<8} {'no store':>10} {'store':>10}  {'fetched':>8} {'from store':>10}")
    for a, b in zip(plain, shared, strict=True):
        print(
            f"{a.name:<8} {a.seconds:>9.2f}s {b.seconds:>9.2f}s  {b.fetched:>8} {b.from_store:>10}"
        )
    failed = sum(r.failed for r in (*plain, *shared))
    if failed or misses:
        print(f"failed: {failed}, unsigned requests: {misses}")
        return 1
    return 0 if with_store == args.certs and without == args.certs * args.nodes else 1


def _node_dir(workdir: Path, certs: fx.CertSet, n: int) -> Path:
    directory = workdir / f"node-{n}"
    shutil.copytree(certs.directory, directory)
    for staple in directory.glob("*.ocsp"):
        staple.unlink()
    return directory


def _run_cli_fleet(
    workdir: Path, dirs: list[Path], jobs: int, store_url: str | None
) -> list[NodeResult]:
    """Every node an ``ocsptool refresh`` process, all started together."""
    import json
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    procs = []
    for n, directory in enumerate(dirs):
        argv = [sys.executable, "-m", "ocsptool", "--config", "/dev/null", "refresh", "--json"]
        argv += ["--state", str(workdir / f"node-{n}.json"), "-j", str(jobs), str(directory)]
        if store_url is not None:
            argv[-1:-1] = ["--store", store_url]
        procs.append((time.monotonic(), subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)))
    results = []
    for n, (started, proc) in enumerate(procs):
        out, _ = proc.communicate(timeout=600)
        seconds = time.monotonic() - started
        report = json.loads(out)
        certs = report["certificates"]
        origins = [c.get("origin") for c in certs if c["action"] == "fetched"]
        results.append(
            NodeResult(
                f"node-{n}",
                seconds,
                origins.count("responder"),
                origins.count("store"),
                len(certs) - len(origins) + (proc.returncode != 0),
            )
        )
    return results


def _node_bundles(workdir: Path, certs: fx.CertSet, n: int) -> list[Bundle]:
    """Node ``n``'s own copy of the certificate directory, parsed."""
    directory = workdir / f"node-{n}"
    shutil.copytree(certs.directory, directory)
    return [parse_bundle(directory / path.name) for path in certs.paths]


def _run_fleet(
    nodes: list[list[Bundle]], cert_ids: list[str], jobs: int, store_url: str | None
) -> list[NodeResult]:
    start = threading.Barrier(len(nodes))
    results: list[NodeResult | None] = [None] * len(nodes)

    def node(n: int) -> None:
        name = f"node-{n}"
        run = StoreRun(open_store(store_url, timeout=10), name) if store_url else None
        with new_session() as session:
            start.wait()
            started = time.monotonic()
            result = _refresh(name, nodes[n], cert_ids, jobs, session, run=run)
            results[n] = replace(result, seconds=time.monotonic() - started)

    threads = [threading.Thread(target=node, args=(n,)) for n in range(len(nodes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


def _refresh(
    name: str,
    bundles: list[Bundle],
    cert_ids: list[str],
    jobs: int,
    session: requests.Session,
    *,
    run: StoreRun | None,
) -> NodeResult:
    now = dt.datetime.now(dt.UTC)

    def from_ca(bundle: Bundle) -> Callable[[], Staple]:
        url = bundle.ocsp_url
        assert url is not None
        return lambda: verify(fetch(session, url, build_request(bundle)).body, bundle, now)

    def one(item: tuple[Bundle, str]) -> Origin | None:
        bundle, cert_id = item
        if run is None:
            from_ca(bundle)()
            return Origin.RESPONDER
        got = run.obtain(cert_id, None, lambda der: verify(der, bundle, now), from_ca(bundle), now)
        return got.origin if got.staple is not None else None

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        origins = list(pool.map(one, zip(bundles, cert_ids, strict=True)))
    return NodeResult(
        name,
        0.0,
        origins.count(Origin.RESPONDER),
        origins.count(Origin.STORE),
        origins.count(None),
    )


if __name__ == "__main__":
    raise SystemExit(main())
