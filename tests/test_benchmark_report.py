"""The benchmark report: the profile names ocsptool's functions (even in a clone named
``ocsptool``), and a missed target says why.

A real profile of a real process whose heaviest code lives under ``<tmp>/ocsptool/.venv``,
as a venv does in ``git clone …/ocsptool``: the old filter (any path containing
``ocsptool/``) put that code at the top and pushed ocsptool's own functions out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.workloads import WHY_HAPROXY, Row, pstats

ROOT = Path(__file__).resolve().parent.parent

HEAVY = """
def burn():
    return sum(i * i for i in range(300_000))


def more():
    return [burn() for _ in range(3)]
"""

RUN = """
import heavy
heavy.more()
import ocsptool.cli
"""


def profile_in_a_clone_named_ocsptool(tmp_path: Path) -> Path:
    venv = tmp_path / "ocsptool" / ".venv" / "lib"
    venv.mkdir(parents=True)
    (venv / "heavy.py").write_text(HEAVY)
    (venv / "run.py").write_text(RUN)
    out = tmp_path / "noop.prof"
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), str(venv / "run.py")],
        env=dict(os.environ, PYTHONPATH=f"{venv}{os.pathsep}{ROOT}"),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return out


def test_the_profile_lists_only_the_package(tmp_path: Path) -> None:
    text = pstats(profile_in_a_clone_named_ocsptool(tmp_path))
    ours = text.split("all functions by own time:")[0]
    rows = [line for line in ours.splitlines() if line[:1] == " " and "(" in line]
    rows = [line for line in rows if "ncalls" not in line]
    assert rows, ours
    names = [line.split()[-1] for line in rows]
    assert all(name.startswith("ocsptool/") for name in names), names
    assert any(name.startswith("ocsptool/cli.py:") for name in names), names
    assert "heavy.py" not in ours and "run.py" not in ours
    assert "heavy.py" in text  # it is the heaviest code overall: the profile did see it


def test_a_missed_target_says_why() -> None:
    row = Row("3. Push", "1 s", "2 s", "2x", ">= 10x faster", False, WHY_HAPROXY)
    assert row.verdict == f"NOT met: {WHY_HAPROXY}"
    assert Row("x", "", "", "", "", True, WHY_HAPROXY).verdict == "met"
    assert Row("x", "", "", "", "-", None).verdict == "-"


def test_every_missed_target_in_the_results_says_why() -> None:
    table = (ROOT / "benchmarks" / "results.md").read_text()
    missed = [line for line in table.splitlines() if "| NOT met" in line]
    assert missed
    bare = [line for line in missed if not line.split(" | ")[-1].startswith("NOT met: ")]
    assert bare == []
