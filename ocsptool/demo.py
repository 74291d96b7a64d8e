"""``ocsptool demo``: the real thing, end to end, with no CA and no HAProxy of your own.

It builds a throwaway PKI and a handful of HAProxy bundles in a temporary directory,
serves OCSP on loopback with the same responder the tests use, starts a real HAProxy
when one is installed, then runs the real ``ocsptool refresh`` and ``ocsptool status``
as subprocesses (the production code paths) and proves with a TLS handshake that
HAProxy staples what was fetched. Everything is removed at the end, even on Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from ocsptool.errors import OcspToolError

#: (file stem, DNS name, what it shows)
SITES = (
    ("www", "www.example.test", "good"),
    ("shop", "shop.example.test", "good"),
    ("api", "api.example.test", "good, Must-Staple"),
    ("old", "old.example.test", "revoked by the CA"),
    ("plain", "plain.example.test", "no OCSP URL, like Let's Encrypt since 2025"),
)


class DemoFailed(OcspToolError):
    """Something the demo expected did not happen."""


@dataclass
class _Out:
    """Plain text with a little colour on a terminal (and never with NO_COLOR)."""

    stream: TextIO
    color: bool

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def step(self, title: str, detail: str = "") -> None:
        self.line(f"{self._paint('1;36', '==>')} {self._paint('1', title)}" + detail)

    def ok(self, text: str) -> None:
        self.line(f"    {self._paint('32', '✓')} {text}")

    def bad(self, text: str) -> None:
        self.line(f"    {self._paint('31', '✗')} {text}")

    def note(self, text: str) -> None:
        self.line(f"    {self._paint('2', text)}")

    def command(self, argv: list[str]) -> None:
        self.line(f"    {self._paint('2', '$ ' + shlex.join(argv))}")

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def run_demo(*, keep: bool = False, stream: TextIO | None = None) -> int:
    """Run the whole demo; return 0 when every step did what it should."""
    stream = stream or sys.stdout
    out = _Out(stream, stream.isatty() and "NO_COLOR" not in os.environ)
    started = time.monotonic()
    with _sigterm_as_interrupt():
        work = Path(tempfile.mkdtemp(prefix="ocsptool-demo-"))
        try:
            _demo(work, out)
        finally:
            if keep:
                out.line(f"\nKept {work} (HAProxy and the responder are stopped).")
            else:
                shutil.rmtree(work, ignore_errors=True)
    out.line(f"\nDone in {time.monotonic() - started:.1f} s; everything was cleaned up.")
    return 0


def _demo(work: Path, out: _Out) -> None:
    from ocsptool.testing.haproxy import HAProxy, haproxy_binary
    from ocsptool.testing.pki import Authority
    from ocsptool.testing.responder import Responder

    out.line("ocsptool demo: a real refresh against a throwaway CA, OCSP responder and HAProxy")
    out.line(f"Working in {work}\n")

    out.step("A throwaway PKI", ": a root, an intermediate, and a delegated OCSP signer")
    root = Authority.root("Demo Root CA")
    intermediate = root.intermediate("Demo Intermediate CA")
    signer = intermediate.ocsp_signer("Demo OCSP Signer")

    responder = Responder()
    responder.add_issuer(intermediate, signer)
    with responder.serving() as url:
        certs = work / "certs"
        certs.mkdir()
        out.step("HAProxy bundles", f" (leaf + chain + key) in {certs}")
        for stem, dns, what in SITES:
            leaf = intermediate.leaf(
                dns, ocsp_url=None if stem == "plain" else url, must_staple=stem == "api"
            )
            if stem == "old":
                responder.revoked.add(leaf.cert.serial_number)
            leaf.write_bundle(certs / f"{stem}.pem")
            out.note(f"{stem + '.pem':<10} {dns:<20} {what}")
        out.step("OCSP responder", f" on {url}, answers signed by the delegated signer")

        binary = haproxy_binary()
        proxy_cm = HAProxy(certs, binary=binary) if binary else nullcontext(None)
        with proxy_cm as proxy:
            if proxy is None:
                out.step("HAProxy", ": push step skipped: haproxy is not installed")
                out.note("(apt-get install haproxy, or set OCSPTOOL_HAPROXY to its path)")
            else:
                out.step("HAProxy", f" {binary} serving {certs} on 127.0.0.1:{proxy.port}")
                out.note(f"admin socket {proxy.socket}; no .ocsp files at start, no reload later")
            sockets = [] if proxy is None else ["-s", proxy.socket]
            state = work / "state.json"
            # Run from the work directory, so the commands and their output stay short.
            base = ["refresh", "--state", state.name, *sockets, certs.name]
            _refresh(out, work, [*base, "-v"], certs)
            _second_run(out, work, base)
            _status(out, work, state, certs, sockets)
            if proxy is not None:
                _handshakes(out, proxy.port, certs)


def _ocsptool(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "ocsptool", *args]


def _env(out: _Out) -> dict[str, str]:
    """The same ocsptool package as this process, and none of the user's OCSPTOOL_* settings
    (the demo must never push into a real HAProxy named in the environment)."""
    here = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCSPTOOL_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = here + (os.pathsep + path if path else "")
    # Tables get the width of the terminal (less the indent), and colour when it has it.
    width = shutil.get_terminal_size((166, 24)).columns if out.color else 166
    env["COLUMNS"] = str(max(width - 6, 60))
    if out.color:
        env["FORCE_COLOR"] = "1"
    return env


def _show(out: _Out, cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    out.command(["ocsptool", *args])
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments, no shell
        _ocsptool(["--config", os.devnull, *args]),
        capture_output=True,
        text=True,
        env=_env(out),
        cwd=cwd,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    for text in (done.stdout, done.stderr):
        for line in text.splitlines():
            out.line(f"      {line}")
    return done


def _refresh(out: _Out, cwd: Path, args: list[str], certs: Path) -> None:
    out.step("ocsptool refresh", ": fetch, verify, write <cert>.ocsp, push into HAProxy")
    done = _show(out, cwd, args)
    if done.returncode != 1:
        raise DemoFailed(f"refresh exited {done.returncode}; expected 1 for the revoked one")
    out.ok("exit 1, as it should be: old.example.test is REVOKED (stapled anyway: it is the truth)")
    for stem, _dns, _what in SITES:
        staple = certs / f"{stem}.pem.ocsp"
        if stem == "plain":
            if staple.exists():
                raise DemoFailed(f"{staple}: written for a certificate without OCSP URL")
            out.ok("plain.pem: no OCSP URL, skipped quietly, no staple file")
        elif not staple.exists():
            raise DemoFailed(f"{staple}: not written")
    out.ok("staples written atomically next to each certificate, the schedule in state.json")


def _second_run(out: _Out, cwd: Path, args: list[str]) -> None:
    out.step("ocsptool refresh -q", ": again, as the timer does 15 minutes later")
    started = time.monotonic()
    done = _show(out, cwd, [*args, "-q"])
    took = time.monotonic() - started
    if "old.pem" not in done.stderr:
        raise DemoFailed("the second run did not report the revoked certificate")
    out.ok(f"nothing due: no request sent, {took:.2f} s; only the revoked one is named")


def _status(out: _Out, cwd: Path, state: Path, certs: Path, sockets: list[str]) -> None:
    live = ["--live", *sockets] if sockets else []
    what = "and what HAProxy serves (--live)" if live else "no network"
    out.step("ocsptool status", f": staple health from the files and the state, {what}")
    done = _show(out, cwd, ["status", "--state", state.name, *live, certs.name])
    if done.returncode != 1 or "old.example.test" not in done.stdout:
        raise DemoFailed(f"status exited {done.returncode}; expected 1 naming old.example.test")


def _handshakes(out: _Out, port: int, certs: Path) -> None:
    from cryptography.x509 import ocsp

    from ocsptool.testing.haproxy import tls_staple

    out.step("TLS handshakes", f" with 127.0.0.1:{port}, asking for a staple (status_request)")
    for stem, dns, _what in SITES:
        der = tls_staple(port, dns)
        on_disk = certs / f"{stem}.pem.ocsp"
        if stem == "plain":
            if der is not None:
                raise DemoFailed(f"{dns}: HAProxy stapled something for a certificate without OCSP")
            out.ok(f"{dns:<20} no staple, as expected")
            continue
        if der is None:
            raise DemoFailed(f"{dns}: HAProxy stapled nothing")
        if der != on_disk.read_bytes():
            raise DemoFailed(f"{dns}: the stapled response differs from {on_disk}")
        single = ocsp.load_der_ocsp_response(der)
        status = single.certificate_status.name.lower()
        left = _until(single.next_update_utc)
        out.ok(f"{dns:<20} stapled {status.upper():<7} valid {left}, same bytes as {on_disk.name}")
    _openssl(out, port, "www.example.test")


def _openssl(out: _Out, port: int, servername: str) -> None:
    """What `openssl s_client -status` shows, for people who know that incantation."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return
    argv = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", servername]
    argv += ["-status", "-tls1_2"]
    out.command(["openssl", *argv[1:]])
    done = subprocess.run(  # noqa: S603 - openssl from PATH with fixed arguments, no shell
        argv, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL
    )
    wanted = ("OCSP Response Status", "Cert Status", "This Update", "Next Update")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith(wanted)]
    if not lines:
        raise DemoFailed(f"openssl s_client saw no staple for {servername}")
    for line in lines:
        out.line(f"      {line}")


def _until(moment: dt.datetime | None) -> str:
    if moment is None:
        return "forever?"
    left = moment - dt.datetime.now(dt.UTC)
    return f"for {left.days}d {left.seconds // 3600}h"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so `kill` cleans up as well."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. under a test runner thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
