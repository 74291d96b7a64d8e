"""`pip install .` into an empty virtualenv gives a working `ocsptool` (the Quickstart's path).

A real install with dependencies from the package index (pip's cache makes reruns quick),
from a copy of the source so the working tree gets no build/ or egg-info droppings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from ocsptool import __version__


def _run(*argv: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd="/",
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_pip_install_into_an_empty_venv(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "ocsptool", source / "ocsptool", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "--quiet", source)
    assert installed.returncode == 0, installed.stderr

    version = _run(venv / "bin" / "ocsptool", "--version")
    assert (version.returncode, version.stdout, version.stderr) == (
        0,
        f"ocsptool {__version__}\n",
        "",
    )
    module = _run(python, "-m", "ocsptool", "--help")
    assert module.returncode == 0, module.stderr
    assert "refresh" in module.stdout
    # The demo needs ocsptool.testing from the installed package, not from this checkout.
    where = _run(python, "-c", "import ocsptool.testing.pki as m; print(m.__file__)")
    assert where.stdout.startswith(str(venv)), where
    demo = _run(venv / "bin" / "ocsptool", "demo", timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "everything was cleaned up" in demo.stdout


def test_ci_proves_the_oldest_declared_dependencies() -> None:
    """`make oldest` (in .ci/run) installs exactly each `>=` bound of pyproject.toml, read
    from it at CI time, and the README names the same versions."""
    import re
    import tomllib

    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "oldest-constraints")],
        capture_output=True,
        text=True,
        check=True,
    )
    pins = done.stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = [*project["dependencies"], *extras["redis"], *extras["kubernetes"]]
    declared += extras["nginx"]
    expected = []
    for requirement in declared:
        match = re.fullmatch(r"([\w.-]+)(?:\[[^\]]*\])?(.*)", requirement)
        assert match is not None, requirement
        (bound,) = re.findall(r">=\s*([\w.]+)", match.group(2))
        expected.append(f"{match.group(1)}=={bound}")
    assert pins == expected
    assert re.search(r"^time make oldest$", (ROOT / ".ci" / "run").read_text(), re.M)
    readme = " ".join((ROOT / "README.md").read_text().split()).lower()
    for pin in pins:
        assert pin.replace("==", " ").lower() in readme, pin
