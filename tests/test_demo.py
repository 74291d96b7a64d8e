"""`ocsptool demo`: the whole product on real parts, and nothing left behind, even on Ctrl-C."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_subprocess

from ocsptool.demo import run_demo


def _work_dir(output: str) -> Path:
    match = re.search(r"^Working in (\S+)$", output, re.MULTILINE)
    assert match, output
    return Path(match.group(1))


def _haproxy_dir(output: str) -> Path:
    match = re.search(r"admin socket (\S+)/admin\.sock;", output)
    assert match, output
    return Path(match.group(1))


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.haproxy
def test_demo_with_haproxy(haproxy_bin: str) -> None:
    done = run_subprocess("demo", timeout=120)
    out = done.stdout
    assert (done.returncode, done.stderr) == (0, ""), out
    assert "ocsptool demo: a real refresh against a throwaway CA, OCSP responder and HAProxy" in out
    assert "✓ exit 1, as it should be: old.example.test is REVOKED" in out
    assert "✓ plain.pem: no OCSP URL, skipped quietly, no staple file" in out
    assert "✓ nothing due: no request sent" in out
    for name, status in [("www", "GOOD"), ("shop", "GOOD"), ("api", "GOOD"), ("old", "REVOKED")]:
        assert re.search(
            rf"✓ {name}\.example\.test +stapled {status} +valid for \dd \d+h, "
            rf"same bytes as {name}\.pem\.ocsp",
            out,
        ), out
    assert "✓ plain.example.test   no staple, as expected" in out
    assert "Cert Status: good" in out  # openssl s_client -status saw it too
    assert re.search(r"Done in \d+\.\d s; everything was cleaned up\.$", out)
    assert not _work_dir(out).exists()
    assert not _haproxy_dir(out).exists()


def test_demo_without_haproxy_says_the_push_step_is_skipped() -> None:
    os.environ["OCSPTOOL_HAPROXY"] = "/nonexistent/haproxy"
    # The user's own settings never leak into the demo's commands.
    os.environ["OCSPTOOL_HAPROXY_SOCKET"] = "/nonexistent/admin.sock"
    try:
        done = run_subprocess("demo", timeout=120)
    finally:
        del os.environ["OCSPTOOL_HAPROXY"], os.environ["OCSPTOOL_HAPROXY_SOCKET"]
    out = done.stdout
    assert (done.returncode, done.stderr) == (0, ""), out
    assert "/nonexistent/admin.sock" not in out
    assert "==> HAProxy: push step skipped: haproxy is not installed" in out
    assert "✓ exit 1, as it should be: old.example.test is REVOKED" in out
    assert "TLS handshakes" not in out
    assert not _work_dir(out).exists()


def test_demo_keep_leaves_the_files(tmp_path: Path) -> None:
    os.environ["OCSPTOOL_HAPROXY"] = "/nonexistent/haproxy"
    try:
        stream = io.StringIO()
        assert run_demo(keep=True, stream=stream) == 0
    finally:
        del os.environ["OCSPTOOL_HAPROXY"]
    work = _work_dir(stream.getvalue())
    try:
        assert sorted(p.name for p in (work / "certs").iterdir()) == [
            "api.pem",
            "api.pem.ocsp",
            "old.pem",
            "old.pem.ocsp",
            "plain.pem",
            "shop.pem",
            "shop.pem.ocsp",
            "www.pem",
            "www.pem.ocsp",
        ]
        assert f"Kept {work} (HAProxy and the responder are stopped)." in stream.getvalue()
    finally:
        shutil.rmtree(work)


class _SignalAt(io.StringIO):
    """An output stream that sends this process a real signal when a given line is written."""

    def __init__(self, marker: str, signum: int) -> None:
        super().__init__()
        self.marker = marker
        self.signum = signum
        self.sent = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.sent and self.marker in text:
            self.sent = True
            os.kill(os.getpid(), self.signum)
        return written


@pytest.fixture
def restore_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    assert signal.getsignal(signal.SIGTERM) == previous  # the demo put its handler back
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.haproxy
@pytest.mark.parametrize(
    ("marker", "signum"),
    [
        ("admin socket", signal.SIGINT),  # Ctrl-C with HAProxy and the responder running
        ("$ ocsptool refresh", signal.SIGINT),  # Ctrl-C while the refresh subprocess runs
        ("==> TLS handshakes", signal.SIGTERM),  # `kill` cleans up just the same
    ],
)
def test_interrupted_demo_cleans_up_everything(
    haproxy_bin: str, restore_sigterm: None, marker: str, signum: int
) -> None:
    stream = _SignalAt(marker, signum)
    with pytest.raises(KeyboardInterrupt):
        run_demo(stream=stream)
    out = stream.getvalue()
    assert stream.sent, out
    assert "Done in" not in out
    assert not _work_dir(out).exists()
    haproxy_dir = _haproxy_dir(out)
    assert not haproxy_dir.exists()
    assert _processes_mentioning(str(haproxy_dir)) == []
