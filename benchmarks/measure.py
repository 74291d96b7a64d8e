"""Timing whole processes: wall time and the child's own peak RSS, median of several runs."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


#: Where the timed processes import ``ocsptool`` from: this checkout, or (``--ocsptool``) a
#: copy with a change to try. The benchmark's own process always uses this checkout.
PACKAGE_ROOT = ROOT


def env() -> dict[str, str]:
    """The environment a user's run would have, with the package under test on the path."""
    path = os.pathsep.join(dict.fromkeys([str(PACKAGE_ROOT), str(ROOT)]))
    return dict(os.environ, PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="")


def ocsptool(*args: object) -> list[str]:
    return [sys.executable, "-m", "ocsptool", *map(str, args)]


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_mb: float
    #: User + system CPU seconds: steadier than wall time on a shared machine.
    cpu: float = 0.0


class ProcessFailed(RuntimeError):
    pass


#: GNU time reports the child's own peak RSS. ``wait4`` alone would not: a child spawned
#: with vfork from this (large) process inherits its high-water mark on exec.
GNU_TIME = "/usr/bin/time"


def run_once(
    argv: Sequence[str], *, check: bool = True, environ: Mapping[str, str] | None = None
) -> Run:
    """Run ``argv`` to the end (in ``environ``, default ``env()``); its wall time and its
    own peak RSS."""
    rss_file = None
    wrapped = list(argv)
    if os.access(GNU_TIME, os.X_OK):
        fd, rss_file = tempfile.mkstemp(prefix="ocsptool-bench-rss-")
        os.close(fd)
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss_file, *argv]
    try:
        start = time.perf_counter()
        process = subprocess.Popen(
            wrapped,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env() if environ is None else dict(environ),
            cwd=PACKAGE_ROOT,  # ``-m`` puts the working directory first on sys.path
        )
        assert process.stderr is not None
        err = process.stderr.read()  # drain first: a full pipe would block the child
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stderr.close()
        max_rss_kib = usage.ru_maxrss  # KiB on Linux; an upper bound without GNU time
        if rss_file is not None:
            text = Path(rss_file).read_text().split()
            max_rss_kib = int(text[-1]) if text and text[-1].isdigit() else max_rss_kib
    finally:
        if rss_file is not None:
            os.unlink(rss_file)
    if check and process.returncode != 0:
        raise ProcessFailed(
            f"{shlex.join(argv[:6])}... exited {process.returncode}: {err.decode()[-500:]}"
        )
    return Run(seconds, max_rss_kib / 1024, usage.ru_utime + usage.ru_stime)


@dataclass(frozen=True)
class Timing:
    median: float
    runs: tuple[float, ...]
    max_rss_mb: float
    cpu: float = 0.0  # median user + system CPU seconds


def median_of(
    runs: int, once: Callable[[], Run], before: Callable[[], None] | None = None
) -> Timing:
    """Median wall time over ``runs`` runs (``before`` resets state, untimed)."""
    results = []
    for _ in range(runs):
        if before is not None:
            before()
        results.append(once())
    return _timing(results)


def time_process(
    argv: Sequence[str], runs: int, before: Callable[[], None] | None = None
) -> Timing:
    return median_of(runs, lambda: run_once(argv), before)


def time_pair(
    ours: Sequence[str],
    reference: Sequence[str],
    runs: int,
    before: Callable[[], None] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[Timing, Timing]:
    """Time two commands in alternation, so both see the same load on a shared machine.

    ``before`` runs (untimed) before each run of ``ours``; ``environ``: both run in it.
    """
    mine: list[Run] = []
    theirs: list[Run] = []
    for _ in range(runs):
        if before is not None:
            before()
        mine.append(run_once(ours, environ=environ))
        theirs.append(run_once(reference, environ=environ))
    return _timing(mine), _timing(theirs)


def _timing(results: list[Run]) -> Timing:
    seconds = tuple(r.seconds for r in results)
    return Timing(
        statistics.median(seconds),
        seconds,
        max(r.max_rss_mb for r in results),
        statistics.median(r.cpu for r in results),
    )


def time_call(
    runs: int, call: Callable[[], object], before: Callable[[], None] | None = None
) -> Timing:
    """Median wall time of an in-process call (for the HAProxy push comparison)."""

    def once() -> Run:
        start = time.perf_counter()
        call()
        return Run(time.perf_counter() - start, 0.0)

    return median_of(runs, once, before)


def machine() -> dict[str, str]:
    """CPU model, cores, Python, OS and the ocsptool commit, for the table's header."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "CPU": cpu,
        "Load average (1, 5, 15 min)": " ".join(f"{n:.2f}" for n in os.getloadavg()),
        "Cores": str(os.cpu_count()),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": platform.platform(),
        "ocsptool commit": _commit(),
        "cryptography": _version("cryptography"),
        "HAProxy": _haproxy_version(),
        "OpenSSL": _output(["openssl", "version"]),
    }


def _commit() -> str:
    if PACKAGE_ROOT != ROOT:
        return f"the copy in {PACKAGE_ROOT} (--ocsptool)"
    commit = _output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(ROOT), "status", "--porcelain", "--", "ocsptool"])
    return f"{commit} (+ uncommitted changes in ocsptool/)" if dirty else commit


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _haproxy_version() -> str:
    from ocsptool.testing.haproxy import haproxy_binary

    binary = haproxy_binary()
    if binary is None:
        return "not installed"
    first = _output([binary, "-v"]).splitlines()
    return first[0] if first else "unknown"


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip()
