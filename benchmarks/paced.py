"""The fetch layer of a cold refresh, as the new pipeline will drive it (workload 6).

python -m benchmarks.paced paced DIR JOBS PER_HOST   # fetch_first + HostLimiter(PER_HOST)
python -m benchmarks.paced plain DIR JOBS            # today's path: fetch.fetch, JOBS threads

Each certificate in DIR is parsed, its request built, fetched, verified and its staple
written, on a thread pool; the process exits non-zero if any certificate failed.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(argv: list[str]) -> int:
    from ocsptool import fetch
    from ocsptool.certs import ocsp_urls, parse_bundle
    from ocsptool.files import write_atomic
    from ocsptool.ocsp import build_request, verify
    from ocsptool.pacing import HostLimiter

    mode, directory, jobs = argv[0], argv[1], int(argv[2])
    limiter = HostLimiter(int(argv[3])) if mode == "paced" else None
    paths = sorted(Path(directory, name) for name in os.listdir(directory) if name.endswith(".pem"))
    now = dt.datetime.now(dt.UTC)
    session = fetch.new_session()

    def one(path: Path) -> None:
        bundle = parse_bundle(path)
        der = build_request(bundle)
        if limiter is None:
            url = bundle.ocsp_url
            assert url is not None
            staple = verify(fetch.fetch(session, url, der).body, bundle, now)
        else:
            staple, _ = fetch.fetch_first(
                session,
                ocsp_urls(bundle.leaf),
                der,
                lambda body: verify(body, bundle, now),
                limiter=limiter,
            )
        write_atomic(Path(f"{path}.ocsp"), staple.der, sync_dir=False)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, paths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
