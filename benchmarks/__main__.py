"""``python -m benchmarks``: run the workloads of issue 6 and print the table.

python -m benchmarks                     # the default sizes (about 2-3 minutes on 2 cores)
python -m benchmarks --full              # adds the 50,000-certificate scaling point
python -m benchmarks --size 20 --quick   # a smoke run: every workload, tiny
python -m benchmarks --write             # also store the table in benchmarks/results.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import fixtures as fx
from benchmarks import measure
from benchmarks.measure import machine
from benchmarks.workloads import Bench, Sizes

RESULTS = Path(__file__).resolve().parent / "results.md"
START = "<!-- results:start (written by python -m benchmarks --write) -->"
END = "<!-- results:end -->"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Benchmarks.")
    parser.add_argument("--size", type=int, help="one size for every workload (smoke runs)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="skip the profiles; 1 cold run")
    parser.add_argument("--full", action="store_true", help="add the 50,000-cert scaling point")
    parser.add_argument("--workdir", type=Path, help="keep fixtures here (default: a temp dir)")
    parser.add_argument("--write", action="store_true", help=f"store the result in {RESULTS.name}")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=[str(n) for n in range(1, 10)],
        help="workloads (default: all but 9, whose fixture takes minutes; a --size run: all)",
    )
    parser.add_argument(
        "--ocsptool",
        type=Path,
        metavar="DIR",
        help="time the ocsptool package in DIR/ocsptool instead (a copy with a change to try)",
    )
    args = parser.parse_args(argv)
    if args.ocsptool is not None and not (args.ocsptool / "ocsptool" / "__init__.py").exists():
        parser.error(f"--ocsptool: no ocsptool package in {args.ocsptool}")
    if args.runs < 1 or (args.size is not None and args.size < 1):
        parser.error("--runs and --size must be at least 1")
    return args


def sizes(args: argparse.Namespace) -> Sizes:
    runs = args.runs
    cold_runs = 1 if args.quick else min(3, runs)
    if args.size is not None:
        n = args.size
        return Sizes(
            n, n, min(100, n), n, (n,), runs, cold_runs, nginx=(n,), kube=n, large=n, smoke=True
        )
    scaling = (1_000, 10_000, 50_000) if args.full else (1_000, 10_000)
    return Sizes(scaling=scaling, runs=runs, cold_runs=cold_runs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    if args.ocsptool is not None:
        measure.PACKAGE_ROOT = args.ocsptool.resolve()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="ocsptool-bench-"))
    only = set(args.only or ("123456789" if args.size is not None else "12345678"))
    try:
        pki = fx.make_pki(workdir)
        with fx.serving(pki) as responder:
            bench = Bench(workdir, sizes(args), pki, responder)
            steps = [
                ("4", bench.workload_startup),
                ("1", bench.workload_noop),
                ("2", bench.workload_cold),
                ("3", bench.workload_push),
                ("5", bench.workload_scaling),
                ("6", bench.workload_paced),
                ("7", bench.workload_nginx),
                ("8", bench.workload_kubernetes),
                ("9", bench.workload_large),
            ]
            for key, step in steps:
                if key in only:
                    step()
            if not args.quick and "2" in only:
                bench.breakdown()
            if not args.quick and "5" in only:
                bench.profile()
            if not args.quick and bench.large_argv is not None:
                size = f"{bench.sizes.large:,}"
                bench.cprofile(bench.large_argv, f"no-op refresh at {size} certs from a crt-list")
    finally:
        if not args.workdir:
            fx.remove(workdir)
    text = render(bench, command, time.perf_counter() - started)
    print(text)
    if args.write:
        write_results(text)
        print(f"[bench] wrote {RESULTS}", file=sys.stderr)
    return 0


def render(bench: Bench, command: str, seconds: float) -> str:
    lines = [f"Command: `{command}` (took {seconds:.0f} s)", ""]
    lines += [f"- **{key}:** {value}" for key, value in machine().items()]
    smoke = bench.sizes.smoke
    if smoke:
        lines += [
            "",
            "A smoke run: it shows that every workload runs. Timings at this size say nothing "
            "about the targets, so each timing's verdict is `ran`; the targets are judged by "
            "the real run, `python -m benchmarks` (the default sizes), and results.md. A bound "
            "that holds at any size (peak requests in flight, nginx reloads, writes to the API "
            "server) is judged here too.",
        ]
    verdict = "Smoke verdict" if smoke else "Verdict"
    lines += [
        "",
        f"| Workload | ocsptool | Reference (same run) | Ratio | Target | {verdict} |",
        "|---|---|---|---|---|---|",
    ]
    order = sorted(bench.rows, key=lambda r: r.workload.split(".")[0])
    lines += [
        f"| {r.workload} | {r.ours} | {r.reference} | {r.ratio} | {r.target} | "
        f"{r.smoke_verdict if smoke else r.verdict} |"
        for r in order
    ]
    lines.append("")
    lines.append(
        f"Times are medians of {bench.sizes.runs} runs of whole processes "
        f"({bench.sizes.cold_runs} for the cold refresh and the whole-process push)."
    )
    for title, body in bench.sections:
        lines += ["", f"### {title}", "", body]
    return "\n".join(lines)


def write_results(text: str, path: Path = RESULTS) -> None:
    """Replace the generated block of results.md, keeping the hand-written analysis around it."""
    old = path.read_text() if path.exists() else f"# Benchmark results\n\n{START}\n{END}\n"
    if START not in old or END not in old:
        old = f"{old.rstrip()}\n\n{START}\n{END}\n"
    head, rest = old.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
